"""Only fetch the kernel source (through `proxy` when set): for tests of kernel.org release
resolution, checksums and proxies."""

from kdevbox.target import current_target
from kdevbox.tasks.kernel import kernel_fetch
from kdevbox.tasks.proxy import proxy_setup

target = current_target()
proxy_setup(target.config.proxy, target)
kernel_fetch(target.config.kernel, target)
