"""Build the QEMU guest image and install kdevbox-vm on every host (also part of devbox.py).

pyinfra inventories/local.py deploys/guest_image.py
"""

from kdevbox.target import current_target
from kdevbox.tasks.guest import guest_setup

target = current_target()
guest_setup(target.config.guest, target.config.apt_proxy, target.config.kernel, target)
