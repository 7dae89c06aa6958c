"""Only the editor capabilities (clangd, its config and compile_db recorder; neovim with its
plugins and rst parser): for kernel tests of clangd and of the heading picker on a built tree."""

from kdevbox.target import current_target
from kdevbox.tasks.clangd import clangd_setup
from kdevbox.tasks.neovim import neovim_setup

target = current_target()
clangd_setup(target.config.clangd, target)
neovim_setup(target.config.neovim, target)
