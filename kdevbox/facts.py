"""Custom pyinfra facts, and the shell probes they share with the testinfra checks."""

from __future__ import annotations

import shlex
from collections.abc import Iterable
from dataclasses import dataclass

from pyinfra.api import FactBase

LOGIN_USER = '"${SUDO_USER:-$(id -un)}"'


def account_probe(user: str | None) -> str:
    """Shell that prints who runs commands and the developer's passwd entry and primary group.

    Without a user, the developer is the account the connection logs in as: under sudo (pyinfra's
    `_sudo`, or `sudo pyinfra @local`) that is SUDO_USER, otherwise whoever runs the command.
    """
    who = shlex.quote(user) if user else LOGIN_USER
    return (
        f'u={who}; echo "effective=$(id -un)"; '
        'getent passwd "$u" | sed "s/^/passwd=/"; '
        'id -gn "$u" 2>/dev/null | sed "s/^/group=/"; echo "asked=$u"'
    )


@dataclass(frozen=True)
class Account:
    """The developer account on a host, and the account the connection runs commands as."""

    name: str
    group: str
    home: str
    effective_user: str

    @property
    def is_effective(self) -> bool:
        return self.name == self.effective_user


@dataclass(frozen=True)
class AccountProbe:
    """What account_probe found: the account, or the name that was asked for and is missing."""

    asked: str
    effective_user: str
    account: Account | None


def parse_account(lines: Iterable[str]) -> AccountProbe:
    values = dict(line.split("=", 1) for line in lines if "=" in line)
    effective = values.get("effective", "")
    account = None
    if "passwd" in values:
        fields = values["passwd"].split(":")
        account = Account(
            name=fields[0], group=values.get("group", fields[0]), home=fields[5], effective_user=effective
        )
    return AccountProbe(asked=values.get("asked", ""), effective_user=effective, account=account)


class DeveloperAccount(FactBase[AccountProbe]):
    """The developer's passwd entry (home is read from the host, never guessed)."""

    def command(self, user: str | None = None) -> str:
        return account_probe(user)

    def process(self, output: Iterable[str]) -> AccountProbe:
        return parse_account(output)
