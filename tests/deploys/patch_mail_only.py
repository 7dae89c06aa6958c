"""git and patch mailing only: for tests of git send-email and b4 without the rest of the box."""

from kdevbox.target import current_target
from kdevbox.tasks.git import git_setup
from kdevbox.tasks.patch_mail import patch_mail_setup

target = current_target()
git_setup(target.config.git, target)
patch_mail_setup(target.config.patch_mail, target.config.proxy)
