"""Only the proxy capability: for tests of proxy.system."""

from kdevbox.target import current_target
from kdevbox.tasks.proxy import proxy_setup

target = current_target()
proxy_setup(target.config.proxy, target)
