"""The current pyinfra host as kdevbox sees it: its validated config and its developer account.

Deploy files run once per host, in parallel. The first one to ask validates every host of the
inventory (settings on the controller, then the developer account on each connected host), so one bad
host stops the whole run before any operation is queued anywhere.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TypedDict
from weakref import WeakKeyDictionary

import gevent
from gevent.event import AsyncResult
from pyinfra import host as current_host
from pyinfra.api.host import Host
from pyinfra.api.state import State

from kdevbox.config import HostConfig
from kdevbox.facts import Account, DeveloperAccount
from kdevbox.inventory import ConfigError, Problem, validate_inventory


class OwnedFile(TypedDict):
    user: str
    group: str
    mode: str


@dataclass(frozen=True)
class Target:
    name: str
    config: HostConfig
    account: Account

    @property
    def as_user(self) -> dict[str, Any]:
        """pyinfra global arguments that run an operation as the developer, in their home.

        The connection's effective user is root (directly or through `_sudo`) whenever it differs
        from the developer; su then needs no password, and sets HOME for git.
        """
        if self.account.is_effective:
            return {}
        return {"_su_user": self.account.name, "_chdir": self.account.home}

    def owned_file(self, mode: str) -> OwnedFile:
        """files.put arguments for a file in the developer's home: theirs, with this mode."""
        return OwnedFile(user=self.account.name, group=self.account.group, mode=mode)


def _resolve_account(host: Host, config: HostConfig) -> Account | Problem:
    probe = host.get_fact(DeveloperAccount, user=config.user)
    field = "user" if config.user else "user (default: the login user)"
    if probe.account is None:
        return Problem(
            host.name,
            field,
            probe.asked,
            "no such account on the host: create it first, or set `user` to an existing account",
        )
    if not probe.account.is_effective and probe.effective_user != "root":
        return Problem(
            host.name,
            field,
            probe.asked,
            f"the connection runs commands as '{probe.effective_user}', which cannot act as "
            "this account: connect as root, or set `_sudo = True` for this host",
        )
    return probe.account


def _resolve_all(state: State) -> dict[str, Target]:
    configs = validate_inventory(state.inventory)
    hosts = list(state.inventory.get_active_hosts())
    jobs = {host: gevent.spawn(_resolve_account, host, configs[host.name]) for host in hosts}
    gevent.joinall(list(jobs.values()), raise_error=True)
    results = {host: job.value for host, job in jobs.items()}
    problems = [r for r in results.values() if isinstance(r, Problem)]
    if problems:
        raise ConfigError(problems, headline="kdevbox settings do not fit the hosts")
    return {
        host.name: Target(host.name, configs[host.name], result)
        for host, result in results.items()
        if isinstance(result, Account)
    }


_RESOLVED: WeakKeyDictionary[State, AsyncResult] = WeakKeyDictionary()


def current_target() -> Target:
    """The Target of the host whose deploy file is running; validates all hosts on first use."""
    state = current_host.state
    pending = _RESOLVED.get(state)
    if pending is None:
        pending = _RESOLVED[state] = AsyncResult()
        try:
            pending.set(_resolve_all(state))
        except Exception as exc:
            pending.set_exception(exc)
    try:
        targets: dict[str, Target] = pending.get()
    except ConfigError as exc:
        raise exc.with_traceback(None) from None  # point at kdevbox, not at gevent's plumbing
    return targets[current_host.name]
