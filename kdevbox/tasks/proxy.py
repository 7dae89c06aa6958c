"""The proxy for every download kdevbox makes on a host, and optionally for the developer's shells.

Proxy URLs may carry a password, so they reach commands only through 0600 files their account
reads (sourced by the command itself), never a command line, a diff or a world-readable file:
root's downloads read ROOT_ENV, the developer's (checkouts, the kernel tarball) their own USER_ENV,
each virtualenv's pip its own pip.conf.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass
from typing import Any

from pyinfra.api import deploy
from pyinfra.operations import files

from kdevbox.config import Proxy
from kdevbox.operations import private_file
from kdevbox.target import Target
from kdevbox.templates import render, rendered_file

ROOT_ENV = "/etc/kdevbox/proxy.env"
USER_ENV = ".config/kdevbox/proxy.env"  # in the developer's home
PROFILE = "/etc/profile.d/kdevbox-proxy.sh"
SUDOERS = "/etc/sudoers.d/kdevbox-proxy"


@dataclass(frozen=True)
class Downloads:
    """How a download command on a host finds the proxy: root's commands read root_env, the
    developer's (run with Target.as_user, or as the login user when that is the developer) user_env;
    via is the proxy as messages name it (masked). Files are None when no proxy is set."""

    root_env: str | None
    user_env: str | None
    via: str


def downloads(cfg: Proxy, home: str) -> Downloads:
    if not cfg.enabled:
        return Downloads(None, None, "")
    return Downloads(ROOT_ENV, posixpath.join(home, USER_ENV), cfg.shown)


@deploy("proxy")
def proxy_setup(cfg: Proxy, target: Target) -> None:
    """The env files every download sources; with `system`, the developer's shells and sudo too."""
    content = render("proxy/proxy.env.j2", environment=cfg.environment()) if cfg.enabled else None
    account = target.account
    user_env = posixpath.join(account.home, USER_ENV)
    readers: list[tuple[str, str, str, dict[str, Any]]] = [
        (ROOT_ENV, "root", "root", {}),
        (user_env, account.name, account.group, target.as_user),
    ]
    for path, user, group, as_user in readers:
        if content is not None:
            directory = posixpath.dirname(path)
            files.directory(name=directory, path=directory, present=True, **as_user)
        private_file("proxy for downloads", path, content, user, group, **as_user)

    if cfg.system and cfg.enabled:
        files.put(
            name=f"{PROFILE}: the proxy for login shells",
            src=rendered_file("proxy/profile.sh.j2", root_env=ROOT_ENV, user_env=USER_ENV),
            dest=PROFILE,
            user="root",
            group="root",
            mode="644",
        )
        files.put(
            name=f"{SUDOERS}: sudo keeps the proxy",
            src=rendered_file("proxy/sudoers.j2"),
            dest=SUDOERS,
            user="root",
            group="root",
            mode="440",
        )
    else:
        for path in (PROFILE, SUDOERS):
            files.file(name=f"no {path} (proxy.system is off)", path=path, present=False)
