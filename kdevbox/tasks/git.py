"""The developer's git: identity, a global gitignore wired with core.excludesfile, send-email."""

from __future__ import annotations

import posixpath
import re

from pyinfra import host
from pyinfra.api import deploy
from pyinfra.operations import files, git

from kdevbox.config import EXCLUDESFILE, Git
from kdevbox.facts import GlobalGitConfig
from kdevbox.inventory import refusal
from kdevbox.layout import GITIGNORE_MARKER, excludesfile
from kdevbox.steps import apt_install, managed_block
from kdevbox.target import Target
from kdevbox.templates import render


@deploy("git")
def git_setup(cfg: Git, target: Target) -> None:
    as_user = target.as_user
    current = host.get_fact(GlobalGitConfig, **as_user).get("core.excludesfile")
    if cfg.excludesfile is None and current is not None and not re.fullmatch(EXCLUDESFILE, current):
        # It would be pasted into operation names (the terminal) and git config's command line.
        raise refusal(
            host.name,
            "git.excludesfile",
            None,
            f"{target.account.name}'s git config has core.excludesfile = {current!r}, not a plain path "
            "kdevbox will write to: set git.excludesfile to the file to use",
            headline="git settings do not fit",
        )
    ignore_file = excludesfile(cfg.excludesfile, current, target.account.home)

    # A fresh minimal Debian (debootstrap, cloud and WSL images) has no git.
    apt_install("git", ["git"])
    # Every step runs as the developer, so whatever it creates belongs to them.
    files.directory(
        name="Directory of the global gitignore", path=posixpath.dirname(ignore_file), present=True, **as_user
    )
    managed_block(
        f"Kernel patterns in {ignore_file}",
        ignore_file,
        render("git/ignore.j2", patterns=cfg.ignore_patterns),
        GITIGNORE_MARKER,
        **as_user,
    )
    settings = {"core.excludesfile": ignore_file, **cfg.global_settings()}
    for key, value in settings.items():
        git.config(name=f"git config --global {key}", key=key, value=value, **as_user)
