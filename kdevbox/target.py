"""The current pyinfra host as kdevbox sees it: its validated config and its developer account.

Deploy files run once per host, in parallel. The first one to ask validates every host of the
inventory (settings on the controller, then the developer account on each connected host), so one bad
host stops the whole run before any operation is queued anywhere.

It also draws the root boundary, once for every operation and fact: what runs as root runs from `/`
with git's and Python's user-controlled inputs shut out (ROOT_SIDE), and what touches the developer's
home runs as the developer (Target.as_user). Under `_sudo` the shell starts in the developer's home,
where a `.git` or a `venv.py` of theirs would otherwise steer root's git or `python3 -m`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from weakref import WeakKeyDictionary

import gevent
from gevent.event import AsyncResult
from pyinfra import host as current_host
from pyinfra.api.host import Host
from pyinfra.api.state import State

from kdevbox.config import HostConfig
from kdevbox.facts import Account, DeveloperAccount
from kdevbox.inventory import ConfigError, Problem, validate_inventory
from kdevbox.shell import words

# The PATH the developer's commands run with (kdevbox's links in /usr/local/bin included).
USER_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

# Root's side of every command: a root-owned cwd, no git config but the repository's own (root runs
# git only on repositories it owns), no cwd or user site on Python's path.
ROOT_SIDE: dict[str, Any] = {
    "_chdir": "/",
    "_env": {
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": "/dev/null",
        "GIT_CEILING_DIRECTORIES": "/",
        "PYTHONSAFEPATH": "1",
        "PYTHONNOUSERSITE": "1",
    },
}


@dataclass(frozen=True)
class Target:
    name: str
    config: HostConfig
    account: Account

    @property
    def as_user(self) -> dict[str, Any]:
        """pyinfra global arguments that run an operation (and its facts) as the developer, in their
        home, with their own environment: everything under a home is written, read and run this way.

        The connection's effective user is root (directly or through `_sudo`) whenever it differs
        from the developer; su then needs no password, and sets HOME for git.
        """
        account = self.account
        own = {
            "_chdir": account.home,
            "_env": {},  # not ROOT_SIDE's: their git config is theirs
            # Nothing of the caller's environment (su keeps it; with @local that is the operator's,
            # secrets included): the shell starts from the account's own few variables.
            "_shell_executable": words(
                "env",
                "-i",
                f"HOME={account.home}",
                f"USER={account.name}",
                f"LOGNAME={account.name}",
                f"PATH={USER_PATH}",
                "LANG=C.UTF-8",
                "sh",
            ),
        }
        if account.is_effective:
            return own
        return {"_su_user": account.name, **own}


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


def _draw_root_boundary(host: Host) -> None:
    """ROOT_SIDE as the host's defaults for every later operation and fact (as_user overrides them);
    the inventory's own `_env` is kept beneath."""
    own_env = host.data.get("_env") or {}
    host.data._chdir = ROOT_SIDE["_chdir"]
    host.data._env = {**own_env, **ROOT_SIDE["_env"]}


def _resolve_all(state: State) -> dict[str, Target]:
    configs = validate_inventory(state.inventory)
    hosts = list(state.inventory.get_active_hosts())
    for host in hosts:
        _draw_root_boundary(host)
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
