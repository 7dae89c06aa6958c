"""Fetch, configure and build the `kernel` of every host (install it only with kernel.install).

pyinfra inventories/local.py deploys/kernel.py
"""

from kdevbox.target import current_target
from kdevbox.tasks.kernel import kernel_build
from kdevbox.tasks.proxy import proxy_setup

target = current_target()
proxy_setup(target.config.proxy, target)
kernel_build(target.config.kernel, target)
