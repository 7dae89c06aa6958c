"""One command as the developer, the way every task runs theirs (Target.as_user): it records the
environment it got in ~/developer.env, for tests of what reaches the developer's processes."""

from pyinfra.operations import server

from kdevbox.target import current_target

target = current_target()
server.shell(name="the developer's environment", commands=["env > ~/developer.env"], **target.as_user)
