"""Steps composed of pyinfra operations that several capabilities take: distribution packages, a
tool from PyPI in its own virtualenv, a 0600 file for a secret, a marked block in a user's file."""

from __future__ import annotations

import posixpath
from typing import Any

from pyinfra.operations import apt, files, pip

from kdevbox.layout import LINK_DIR, VENV_ROOT
from kdevbox.operations import pip_package, secret_file, sha256_text
from kdevbox.secrets import mask_credentials
from kdevbox.templates import render

APT_CACHE_TIME = 3600  # seconds: one `apt-get update` an hour is enough for a dev box


def apt_install(name: str, packages: list[str]) -> None:
    """Distribution packages, without recommends, after an `apt-get update` at most hourly."""
    apt.packages(name=name, packages=packages, update=True, cache_time=APT_CACHE_TIME, no_recommends=True)


def pip_tool(
    package: str,
    version: str,
    present: bool = True,
    proxy: str | None = None,
    commands: tuple[str, ...] = (),
    hint: str = "",
) -> None:
    """A command-line tool from PyPI in a virtualenv of its own, linked into /usr/local/bin.

    Debian 12+ forbids system-wide pip installs, and a venv per tool keeps their dependencies apart.
    Needs python3-venv. present=False only drops the links: the venv stays, inert. proxy (a URL
    that may carry a password) goes into the venv's own pip.conf, 0600. commands: the programs
    linked (default: the one named like the package), every program the tool runs by name among
    them. hint: what the user can change when PyPI cannot be reached (a failed install is one line).
    """
    venv = posixpath.join(VENV_ROOT, package)
    if present:
        pip.venv(name=f"virtualenv for {package}", path=venv, python="python3")
        conf = posixpath.join(venv, "pip.conf")
        content = None if proxy is None else render("proxy/pip.conf.j2", proxy=proxy)
        private_file(f"proxy for {package}'s pip", conf, content, "root", "root")
        via = f" through proxy {mask_credentials(proxy)}" if proxy else ""
        pip_package(
            name=f"{package} {version} (pip, from PyPI)",
            venv=venv,
            package=package,
            version=version,
            hint=f"from PyPI{via}; {hint or 'check the network and `proxy`'}",
        )
    for command in commands or (package,):
        files.link(
            name=f"{command} on PATH",
            path=posixpath.join(LINK_DIR, command),
            target=posixpath.join(venv, "bin", command),
            present=present,
        )


def private_file(
    what: str, path: str, content: str | None, user: str, group: str, **global_args: Any
) -> None:
    """A 0600 file holding content (a secret) for user, or no file at all when content is None."""
    if content is None:
        files.file(name=f"no {path} ({what}: none)", path=path, present=False, **global_args)
        return
    secret_file(
        name=f"{what} in {path}",
        path=path,
        sha256=sha256_text(content),
        mode="600",
        user=user,
        group=group,
        _stdin=content,
        **global_args,
    )


def managed_block(
    name: str, path: str, content: str, marker: str, mode: str | None = None, **global_args: Any
) -> None:
    """kdevbox's marked block in a file that is not kdevbox's (a user's gitignore, init.lua, ssh
    config): the file is made when missing, every line outside the block stays as it was."""
    files.file(name=f"{path} exists", path=path, present=True, mode=mode, **global_args)
    files.block(name=name, path=path, content=content.rstrip("\n"), marker=marker, **global_args)
