"""Remove installed kernels: the releases in kernel.uninstall, never the running or the last one.

pyinfra --dry inventories/local.py deploys/kernel_uninstall.py \
    --data 'kernel={"uninstall": ["6.1.0-kdevbox"]}'
(--dry lists what would go; run it again without --dry to remove them.)
"""

from kdevbox.target import current_target
from kdevbox.tasks.kernel_uninstall import kernel_uninstall

kernel_uninstall(current_target().config.kernel)
