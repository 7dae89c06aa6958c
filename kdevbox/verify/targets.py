"""Map pyinfra inventory hosts to testinfra hosts, with the HostConfig each must match."""

from __future__ import annotations

import base64
import io
import os
import re
import tarfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, TypeVar

import pytest
import testinfra
from pyinfra.api import FactBase
from pyinfra.api.connectors import get_execution_connectors
from pyinfra.api.host import Host as PyinfraHost
from pyinfra.api.state import State
from pyinfra.context import ctx_state

from kdevbox.config import HostConfig
from kdevbox.facts import Account, account_probe, parse_account
from kdevbox.inventory import validate_inventory
from kdevbox.templates import render

_CONNECTORS = get_execution_connectors()
DATA = Path(__file__).resolve().parent / "data"


APPLIES_MARK = "kdevbox_applies"


def applies_when(predicate: Callable[[HostConfig], bool]) -> pytest.MarkDecorator:
    """Mark checks of a capability kdevbox leaves alone when it is off (a guest image is the
    developer's data): on hosts whose config fails predicate they are not run (deselected, "-" in
    the report) instead of passing without checking anything."""
    # with_args: called with one function, a mark would decorate it instead of holding it.
    return pytest.mark.kdevbox_applies.with_args(predicate)  # APPLIES_MARK


class UnsupportedHost(Exception):
    """A host whose pyinfra connector has no testinfra counterpart here."""


T = TypeVar("T")


@dataclass
class VerifyTarget:
    """One inventory host under test: its expected config and a testinfra handle on it."""

    name: str
    config: HostConfig
    host: Any  # testinfra.host.Host

    @cached_property
    def account(self) -> Account:
        """The developer account, found on the host the same way the deploy finds it."""
        probe = parse_account(self.host.check_output(account_probe(self.config.user)).splitlines())
        assert probe.account is not None, f"{self.name}: developer account {probe.asked!r} does not exist"
        return probe.account

    def fact(self, fact: type[FactBase[T]], as_user: bool = False, **arguments: Any) -> T:
        """A kdevbox fact, asked through testinfra: the same command and parsing the deploy uses, so
        deploy and verify ask a host a question one way. as_user: asked as the developer."""
        asking = fact()
        command = str(asking.command(**arguments))
        result = self.run_as_user(command) if as_user else self.host.run(command)
        lines = result.stdout.splitlines()
        return asking.process(lines) if lines else asking.default()

    def run_as_user(self, command: str, *args: str) -> Any:
        """Run command as the developer, in a login environment (HOME, cwd = home). Everything in
        their home is read and run this way: root would follow the links they plant."""
        quoted = self.host.backend.quote(command, *args)
        if self.account.is_effective:
            return self.host.run("cd && " + quoted)
        return self.host.run("su -l -s /bin/sh %s -c %s", self.account.name, quoted)

    def user_text(self, path: str) -> str | None:
        """A regular file the developer can read, read as the developer; None when path is missing
        or not a regular file (a FIFO would hang the read). Checks compare it and print only what
        they expected: the file may hold anything its owner linked it to."""
        result = self.run_as_user("[ -f %s ] && cat -- %s", path, path)
        return result.stdout if result.rc == 0 else None

    @contextmanager
    def scratch_dir(self, *names: str) -> Iterator[str]:
        """A temp dir on the host, owned by the developer, holding copies of files from data/.

        Checks that run real tools (a build under Bear, neovim loading its config) run in it; it is
        removed afterwards.
        """
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
            for name in names:
                tar.add(DATA / name, arcname=name)
        payload = base64.b64encode(buffer.getvalue()).decode()
        made = self.run_as_user(
            'd=$(mktemp -d) && echo %s | base64 -d | tar -xzf - -C "$d" --no-same-owner && echo "$d"',
            payload,
        )
        assert made.rc == 0, f"{self.name}: cannot make a scratch dir: {made.stderr}"
        path = made.stdout.strip()
        try:
            yield path
        finally:
            self.run_as_user("rm -rf %s", path)


def _ssh_config(host: PyinfraHost, workdir: Path) -> Path:
    data = host.data
    alias = "kdevbox-" + re.sub(r"[^A-Za-z0-9_.-]", "_", host.name)
    path = workdir / f"{alias}.ssh_config"
    path.write_text(
        render(
            "verify/ssh_config.j2",
            alias=alias,
            hostname=data.get("ssh_hostname") or host.name,
            port=data.get("ssh_port"),
            user=data.get("ssh_user"),
            key=data.get("ssh_key"),
            known_hosts=data.get("ssh_known_hosts_file"),
            strict_host_key_checking=data.get("ssh_strict_host_key_checking") or "accept-new",
        )
    )
    return path


def testinfra_host(host: PyinfraHost, workdir: Path) -> Any:
    """The testinfra host that reaches what pyinfra's connector reaches, with the same sudo."""
    sudo = bool(host.data.get("_sudo"))
    if host.connector_cls is _CONNECTORS["local"]:
        return testinfra.get_host("local://", sudo=sudo)
    if host.connector_cls is _CONNECTORS["chroot"]:
        return testinfra.get_host(host.data.get("chroot_directory"), connection="chroot", sudo=sudo)
    if host.connector_cls is _CONNECTORS["ssh"]:
        config = _ssh_config(host, workdir)
        return testinfra.get_host(f"ssh://{config.stem}", ssh_config=str(config), sudo=sudo)
    raise UnsupportedHost(f"{host.name}: kdevbox.verify supports @local, @chroot and SSH hosts")


def load_targets(inventory_path: str, workdir: Path) -> list[VerifyTarget]:
    """Every host of a pyinfra inventory (with cwd's and the inventory's group_data), validated."""
    # pyinfra_cli patches the process for gevent on import: only a verify run should pay for that.
    from pyinfra_cli.inventory import make_inventory

    with ctx_state.use(State()):
        inventory = make_inventory(inventory_path, cwd=os.getcwd())
    configs = validate_inventory(inventory)
    return [VerifyTarget(host.name, configs[host.name], testinfra_host(host, workdir)) for host in inventory]
