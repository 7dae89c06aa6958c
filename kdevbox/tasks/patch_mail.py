"""Mailing kernel patches: git send-email (Debian's git-email) and b4, on top of `git.sendemail`."""

from __future__ import annotations

from pyinfra import host
from pyinfra.api import deploy

from kdevbox.config import Git, PatchMail, Proxy
from kdevbox.facts import GlobalGitConfig
from kdevbox.inventory import refusal
from kdevbox.steps import apt_install, pip_tool
from kdevbox.target import Target


def require_identity(cfg: PatchMail, git: Git, target: Target) -> None:
    """Patches are mailed under the developer's name and address: with patch mail on and neither
    the settings nor the developer's git knowing them, stop before anything changes (a deploy that
    "succeeds" into a red verification helps nobody)."""
    if not cfg.enabled:
        return
    known = host.get_fact(GlobalGitConfig, **target.as_user)
    missing = [
        f"git.{field}"
        for field, setting in (("name", git.name), ("email", git.email))
        if setting is None and not known.get(f"user.{field}")
    ]
    if missing:
        raise refusal(
            host.name,
            " and ".join(missing),
            None,
            f"git send-email and b4 need your identity, and {target.account.name}'s git has none: set "
            f"{' and '.join(missing)} (group_data/all.py), or patch_mail.enabled: False",
            headline="patch mail needs an identity",
        )


@deploy("patch mail")
def patch_mail_setup(cfg: PatchMail, proxy: Proxy) -> None:
    if cfg.enabled:
        # git-email only recommends what send-email cannot run without (Mail::Address), and what
        # SMTP AUTH and TLS need; apt_install skips recommends, so they are asked for by name.
        apt_install(
            "git send-email, and a Python for b4",
            [
                "git",
                "git-email",
                "libmailtools-perl",
                "libemail-valid-perl",
                "libauthen-sasl-perl",
                "libio-socket-ssl-perl",
                "python3-venv",
            ],
        )
    pip_tool(
        "b4", cfg.b4_version, present=cfg.enabled, proxy=proxy.single, hint="or patch_mail.enabled: False"
    )
