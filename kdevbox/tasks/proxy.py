"""The proxy for every download kdevbox makes on a host, and optionally for the developer's shells.

Proxy URLs may carry a password, so they reach commands only through 0600 files their account
reads (sourced by the command itself), never a command line, a diff or a world-readable file:
root's downloads read layout.PROXY_ROOT_ENV, the developer's (checkouts, the kernel tarball) their
own file (layout.Home.proxy_env), each virtualenv's pip its own pip.conf (see layout.downloads).
"""

from __future__ import annotations

import posixpath
from typing import Any

from pyinfra.api import deploy
from pyinfra.operations import files

from kdevbox.config import Proxy
from kdevbox.layout import PROXY_PROFILE, PROXY_ROOT_ENV, PROXY_SUDOERS, PROXY_USER_ENV, Home
from kdevbox.steps import private_file, system_file
from kdevbox.target import Target
from kdevbox.templates import render


@deploy("proxy")
def proxy_setup(cfg: Proxy, target: Target) -> None:
    """The env files every download sources; with `system`, the developer's shells and sudo too."""
    content = render("proxy/proxy.env.j2", environment=cfg.environment()) if cfg.enabled else None
    account = target.account
    user_env = Home(account.home).proxy_env
    readers: list[tuple[str, str, str, dict[str, Any]]] = [
        (PROXY_ROOT_ENV, "root", "root", {}),
        (user_env, account.name, account.group, target.as_user),
    ]
    for path, user, group, as_user in readers:
        if content is not None:
            directory = posixpath.dirname(path)
            files.directory(name=directory, path=directory, present=True, **as_user)
        private_file("proxy for downloads", path, content, user, group, **as_user)

    if cfg.system and cfg.enabled:
        system_file(
            f"{PROXY_PROFILE}: the proxy for login shells",
            PROXY_PROFILE,
            render("proxy/profile.sh.j2", root_env=PROXY_ROOT_ENV, user_env=PROXY_USER_ENV),
            "644",
        )
        sudoers = render("proxy/sudoers.j2")
        system_file(f"{PROXY_SUDOERS}: sudo keeps the proxy", PROXY_SUDOERS, sudoers, "440")
    else:
        for path in (PROXY_PROFILE, PROXY_SUDOERS):
            files.file(name=f"no {path} (proxy.system is off)", path=path, present=False)
