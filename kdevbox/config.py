"""One typed schema for every host's settings, validated before any host is touched.

Host data keys are the field names of `HostConfig` at the top level (`user`, `apt_proxy`, `git`, ...).
Defaults live here and nowhere else.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import AnyUrl, BaseModel, ConfigDict, Field, StringConstraints, UrlConstraints, model_validator

_CREDENTIALS = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://)[^/@\s]+@", re.IGNORECASE)


def mask_credentials(text: str) -> str:
    """Hide the user:password part of every URL in text, for messages and operation names."""
    return _CREDENTIALS.sub(r"\g<scheme>***@", text)


class Model(BaseModel):
    """Base of every settings model: unknown keys are errors, so a typo cannot pass silently."""

    model_config = ConfigDict(extra="forbid", frozen=True)


Username = Annotated[str, StringConstraints(pattern=r"^[a-z_][a-z0-9_-]{0,31}$")]
Hostname = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9]([A-Za-z0-9.-]{0,252})$")]
ProxyUrl = Annotated[AnyUrl, UrlConstraints(allowed_schemes=["http", "https", "socks5h"], host_required=True)]
# pyinfra's git.config wraps values in double quotes for the shell: keep those characters out.
GitValue = Annotated[str, StringConstraints(min_length=1, pattern=r'^[^"\\$`\n]+$')]
EmailAddress = Annotated[str, StringConstraints(pattern=r"^[^@\s\"\\$`]+@[^@\s\"\\$`]+\.[^@\s\"\\$`]+$")]
IgnorePattern = Annotated[str, StringConstraints(min_length=1, pattern=r"^[^\n]+$")]


class AptProxy(Model):
    """apt's proxy: written to apt.conf.d when a URL is set, removed when none is."""

    http: ProxyUrl | None = None
    https: ProxyUrl | None = None
    no_proxy: list[Hostname] = Field(default_factory=list, description="hosts apt reaches directly")

    @property
    def enabled(self) -> bool:
        return self.http is not None or self.https is not None

    @property
    def has_credentials(self) -> bool:
        return any(url is not None and url.username is not None for url in (self.http, self.https))


class SendEmail(Model):
    """git send-email over SMTP. Passwords never live here: use a git credential helper."""

    smtp_server: GitValue
    smtp_port: Annotated[int, Field(ge=1, le=65535)] | None = None
    smtp_encryption: Literal["tls", "ssl"] | None = None
    smtp_user: GitValue | None = None
    suppresscc: Literal["author", "self", "cc", "bodycc", "sob", "cccmd", "body", "misc-by", "all"] = "self"
    chainreplyto: bool = False

    @model_validator(mode="before")
    @classmethod
    def _refuse_passwords(cls, data: Any) -> Any:
        if isinstance(data, dict):
            for key in data:
                if "pass" in str(key).lower():
                    raise ValueError(
                        f"'{key}': passwords are not kept in kdevbox settings; store them with a git "
                        "credential helper (e.g. `git config --global credential.helper store`, or "
                        "libsecret) and git send-email will ask it"
                    )
        return data

    def git_settings(self) -> dict[str, str]:
        """The sendemail.* keys these settings stand for, as git stores them."""
        settings = {
            "sendemail.smtpserver": self.smtp_server,
            "sendemail.suppresscc": self.suppresscc,
            "sendemail.chainreplyto": "true" if self.chainreplyto else "false",
        }
        if self.smtp_port is not None:
            settings["sendemail.smtpserverport"] = str(self.smtp_port)
        if self.smtp_encryption is not None:
            settings["sendemail.smtpencryption"] = self.smtp_encryption
        if self.smtp_user is not None:
            settings["sendemail.smtpuser"] = self.smtp_user
        return settings


DEFAULT_GITIGNORE: tuple[str, ...] = (
    # kernel build outputs
    "*.o",
    "*.o.*",
    "*.a",
    "*.so",
    "*.ko",
    "*.mod",
    "*.mod.c",
    "*.mod.o",
    "*.symtypes",
    "*.lst",
    "*.dtb",
    "*.dtbo",
    "*.s",
    "*.i",
    ".*.cmd",
    ".*.d",
    "*.dwo",
    "modules.order",
    "Module.symvers",
    "vmlinux",
    "vmlinux.*",
    "System.map",
    "*.tar.*",
    # editors, LSP and code navigation
    "compile_commands.json",
    ".cache/clangd/",
    ".clangd/",
    "tags",
    "TAGS",
    "GPATH",
    "GRTAGS",
    "GTAGS",
    "cscope.*",
    "ncscope.*",
    "*.swp",
    "*.swo",
    "*~",
    ".vscode/",
    # leftovers of patch work
    "*.orig",
    "*.rej",
    "*.patch~",
)


class Git(Model):
    """The developer's global git setup: identity, global gitignore, patch mailing."""

    name: GitValue | None = None
    email: EmailAddress | None = None
    excludesfile: str | None = Field(
        default=None,
        description="global gitignore; default: the user's current core.excludesfile, else "
        "~/.config/git/ignore. kdevbox manages one marked block in it.",
    )
    gitignore_extra: list[IgnorePattern] = Field(default_factory=list)
    sendemail: SendEmail | None = None

    @property
    def ignore_patterns(self) -> list[str]:
        return [*DEFAULT_GITIGNORE, *(p for p in self.gitignore_extra if p not in DEFAULT_GITIGNORE)]

    def global_settings(self) -> dict[str, str]:
        """The `git config --global` keys kdevbox sets from these settings (core.excludesfile aside,
        which depends on the host)."""
        settings = {}
        if self.name is not None:
            settings["user.name"] = self.name
        if self.email is not None:
            settings["user.email"] = self.email
        if self.sendemail is not None:
            settings.update(self.sendemail.git_settings())
        return settings


class HostConfig(Model):
    """Everything kdevbox does to one host. Field names are the host data keys."""

    user: Username | None = Field(
        default=None, description="developer account; default: the account the connection logs in as"
    )
    apt_proxy: AptProxy = Field(default_factory=AptProxy)
    git: Git = Field(default_factory=Git)
