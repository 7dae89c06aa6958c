"""Patch mailing: b4 at the configured version and git send-email, run as the developer, turning a
real commit into a mail (a dry run: nothing is sent)."""

from __future__ import annotations

import posixpath

from kdevbox.layout import LINK_DIR
from kdevbox.verify.targets import VerifyTarget, applies_when

# A scratch repo with one commit, then send-email's dry run; the configured identity and SMTP
# settings apply, as they would for a real series.
DRY_RUN = (
    'd=$(mktemp -d) && cd "$d" && git init -q && echo "int x;" > a.c && git add a.c && '
    "git -c user.name=kdevbox -c user.email=verify@example.invalid commit -qm 'kdevbox: verify patch' && "
    "git send-email --dry-run --confirm=never --to=list@example.invalid %s -1; rc=$?; "
    'cd / && rm -rf "$d"; exit $rc'
)


def test_b4_at_configured_version(kdevbox_target: VerifyTarget) -> None:
    cfg = kdevbox_target.config.patch_mail
    link = kdevbox_target.host.file(posixpath.join(LINK_DIR, "b4"))
    if not cfg.enabled:
        assert not link.is_symlink or "/opt/kdevbox/" not in link.linked_to, "kdevbox's b4 is still linked"
        return
    version = kdevbox_target.run_as_user("b4 --version")
    assert version.rc == 0, f"b4 does not run for the developer: {version.stderr}"
    assert version.stdout.strip() == cfg.b4_version


@applies_when(lambda config: config.patch_mail.enabled)  # git-email stays when it goes off
def test_git_send_email_dry_run(kdevbox_target: VerifyTarget) -> None:
    # Without a configured address send-email would ask who the mail is from.
    sender = "" if kdevbox_target.config.git.email else "--from=verify@example.invalid"
    result = kdevbox_target.run_as_user(DRY_RUN % sender)
    assert result.rc == 0, f"git send-email --dry-run fails for the developer: {result.stderr}"
    assert "Subject: [PATCH] kdevbox: verify patch" in result.stdout, result.stdout
    assert "Dry-OK" in result.stdout or "Dry-Sent" in result.stdout, result.stdout
