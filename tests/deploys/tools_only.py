"""Only the low-level tools task: for tests of package availability reporting."""

from kdevbox.target import current_target
from kdevbox.tasks.tools import tools_setup

target = current_target()
tools_setup(target.config.tools)
