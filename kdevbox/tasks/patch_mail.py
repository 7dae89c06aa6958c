"""Mailing kernel patches: git send-email (Debian's git-email) and b4, on top of `git.sendemail`."""

from __future__ import annotations

from pyinfra.api import deploy

from kdevbox.config import PatchMail
from kdevbox.operations import apt_install, pip_tool


@deploy("patch mail")
def patch_mail_setup(cfg: PatchMail) -> None:
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
    pip_tool("b4", cfg.b4_version, present=cfg.enabled)
