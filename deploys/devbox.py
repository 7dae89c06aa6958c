"""The whole kernel development box, on every host of the inventory.

pyinfra inventories/local.py deploys/devbox.py
"""

from kdevbox.target import current_target
from kdevbox.tasks.apt_proxy import apt_proxy
from kdevbox.tasks.clangd import clangd_setup
from kdevbox.tasks.git import git_setup
from kdevbox.tasks.guest import guest_setup
from kdevbox.tasks.neovim import neovim_setup
from kdevbox.tasks.patch_mail import patch_mail_setup, require_identity
from kdevbox.tasks.proxy import proxy_setup
from kdevbox.tasks.tools import tools_setup
from kdevbox.tasks.wsl import wsl_setup

target = current_target()
require_identity(target.config.patch_mail, target.config.git, target)  # before any change
wsl_setup(target.config.wsl, target)
proxy_setup(target.config.proxy, target)
apt_proxy(target.config.apt_proxy)
git_setup(target.config.git, target)
if target.config.clangd.enabled:
    clangd_setup(target.config.clangd, target)
if target.config.neovim.enabled:
    neovim_setup(target.config.neovim, target)
patch_mail_setup(target.config.patch_mail, target.config.proxy)
tools_setup(target.config.tools)
if target.config.guest.enabled:
    guest_setup(target.config.guest, target.config.apt_proxy, target.config.kernel, target)
