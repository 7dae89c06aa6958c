"""Only fetch the kernel source: for tests of kernel.org release resolution and checksums."""

from kdevbox.target import current_target
from kdevbox.tasks.kernel import kernel_fetch

target = current_target()
kernel_fetch(target.config.kernel, target)
