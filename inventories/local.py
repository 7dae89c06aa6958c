"""This machine (for example a WSL2 distro). Run as root, or as yourself with `--sudo`:

    sudo pyinfra inventories/local.py deploys/devbox.py

Under sudo the developer account defaults to you (SUDO_USER); set `user` in group_data to choose.
"""

hosts = ["@local"]
