"""Only the WSL2 task: for tests of the WSL branch on a host made to look like WSL2."""

from kdevbox.target import current_target
from kdevbox.tasks.wsl import wsl_setup

target = current_target()
wsl_setup(target.config.wsl, target)
