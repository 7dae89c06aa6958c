"""Steps composed of pyinfra operations that several capabilities take: distribution packages, a
tool from PyPI in its own virtualenv, a 0600 file for a secret, a file in the developer's home, a
marked block in a user's file."""

from __future__ import annotations

import posixpath
from typing import Any

from pyinfra.api.operation import OperationMeta
from pyinfra.operations import apt, files, pip, server

from kdevbox.layout import LINK_DIR, VENV_ROOT
from kdevbox.operations import pip_package, sha256_text, text_file
from kdevbox.secrets import mask_credentials
from kdevbox.target import Target
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
    Installs python3-venv first. present=False only drops the links: the venv stays, inert. proxy (a URL
    that may carry a password) goes into the venv's own pip.conf, 0600. commands: the programs
    linked (default: the one named like the package), every program the tool runs by name among
    them. hint: what the user can change when PyPI cannot be reached (a failed install is one line).
    """
    venv = posixpath.join(VENV_ROOT, package)
    if present:
        apt_install(f"python3-venv for {package}'s virtualenv", ["python3-venv"])
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
    text_file(
        name=f"{what} in {path}" if content is not None else f"no {path} ({what}: none)",
        path=path,
        sha256=sha256_text(content or ""),
        mode="600",
        user=user,
        group=group,
        present=content is not None,
        _stdin=content or "",
        **global_args,
    )


def kvm_member(target: Target) -> None:
    """The developer in group kvm (made when missing), so QEMU may use /dev/kvm (root:kvm 0660).
    Their home is left as it is (pyinfra's ensure_home would chown it on every run)."""
    account = target.account
    server.group(name="kvm group", group="kvm", system=True)
    server.user(
        name=f"{account.name} in the kvm group",
        user=account.name,
        groups=["kvm"],
        append=True,
        ensure_home=False,
    )


def system_file(name: str, path: str, content: str, mode: str) -> OperationMeta:
    """A root-owned file outside any home, written from stdin into a temp file beside it and renamed:
    pyinfra's files.put over SSH with sudo stages an upload under /tmp, at a name another account can
    predict and race before root copies it into place."""
    return text_file(
        name=name,
        path=path,
        sha256=sha256_text(content),
        mode=mode,
        user="root",
        group="root",
        _stdin=content,
    )


def user_file(what: str, path: str, content: str, mode: str, target: Target) -> None:
    """A file in the developer's home, written by the developer: root never writes through (nor
    chowns) a link they planted there. The content goes on stdin, as for a secret."""
    account = target.account
    text_file(
        name=f"{what} {path}",
        path=path,
        sha256=sha256_text(content),
        mode=mode,
        user=account.name,
        group=account.group,
        _stdin=content,
        **target.as_user,
    )


def managed_block(
    name: str, path: str, content: str, marker: str, mode: str | None = None, **global_args: Any
) -> None:
    """kdevbox's marked block in a file that is not kdevbox's (a user's gitignore, init.lua, ssh
    config): the file is made when missing, every line outside the block stays as it was."""
    files.file(name=f"{path} exists", path=path, present=True, mode=mode, **global_args)
    files.block(name=name, path=path, content=content.rstrip("\n"), marker=marker, **global_args)


def launcher_script(command: str, program: str, settings: str) -> str:
    """~/.local/bin/<command>: runs root's program (isolated) with the developer's settings file."""
    return render("box-program.sh.j2", command=command, runner=program, settings=settings)


def box_program(
    command: str, program: str, source: str, settings: tuple[str, str], launcher: str, target: Target
) -> None:
    """A stdlib program kdevbox ships for the box (kdevbox-vm, kdevbox-kernel): root's copy of source
    at program, the settings file (path, JSON) and the launcher at launcher the developer's."""
    files.directory(
        name=posixpath.dirname(program), path=posixpath.dirname(program), present=True, mode="755"
    )
    system_file(f"{command} {program}", program, source, "755")
    path, text = settings
    for directory in sorted({posixpath.dirname(launcher), posixpath.dirname(path)}):
        files.directory(name=directory, path=directory, present=True, **target.as_user)
    user_file(f"{command} settings", path, text, "644", target)
    user_file(command, launcher, launcher_script(command, program, path), "755", target)
