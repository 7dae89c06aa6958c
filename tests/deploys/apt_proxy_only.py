"""Only the apt proxy task: for tests whose test host has nothing but a local apt repository."""

from kdevbox.target import current_target
from kdevbox.tasks.apt_proxy import apt_proxy

apt_proxy(current_target().config.apt_proxy)
