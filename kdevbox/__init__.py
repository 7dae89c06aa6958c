"""kdevbox: provision Linux kernel development boxes with pyinfra and verify them with testinfra."""
