"""Fetch, configure and build the `kernel` of every host (install it only with kernel.install).

pyinfra inventories/local.py deploys/kernel.py
"""

from kdevbox.target import current_target
from kdevbox.tasks.kernel import kernel_build

target = current_target()
kernel_build(target.config.kernel, target)
