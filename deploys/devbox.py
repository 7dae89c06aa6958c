"""The whole kernel development box, on every host of the inventory.

pyinfra inventories/local.py deploys/devbox.py
"""

from kdevbox.target import current_target
from kdevbox.tasks.apt_proxy import apt_proxy
from kdevbox.tasks.git import git_setup

target = current_target()
apt_proxy(target.config.apt_proxy)
git_setup(target.config.git, target)
