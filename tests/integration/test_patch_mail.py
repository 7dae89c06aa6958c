"""Patch mailing on a chroot host: b4 and git send-email installed as configured, and a real
`git send-email` of a series arriving at a local SMTP server with the headers a list expects."""

from __future__ import annotations

import mailbox
from email.message import Message
from pathlib import Path

from tests.setups import REPO, deploy, verify, write_inventory
from tests.testhosts import run_as, smtp_server

PATCH_MAIL_ONLY = REPO / "tests" / "deploys" / "patch_mail_only.py"
SERIES = (
    "rm -rf series && git init -q series && cd series && "
    "echo 'int a;' > a.c && git add a.c && git commit -qm 'base' && "
    "echo 'int b;' > b.c && git add b.c && git commit -qm 'lib: add b' && "
    "echo 'int c;' > c.c && git add c.c && git commit -qm 'lib: add c' && "
    "git format-patch -q --cover-letter -2 -o ../out && "
    # send-email refuses a cover letter still carrying format-patch's placeholders.
    "sed -i 's/[*]* SUBJECT HERE [*]*/lib: add b and c/; s/[*]* BLURB HERE [*]*/Two files./' "
    "../out/0000-cover-letter.patch"
)
SEND = "cd series && git send-email --confirm=never --to=maintainer@example.org --cc=list@lists.example.org"


def received(maildir: Path) -> list[Message]:
    return sorted(mailbox.Maildir(maildir, create=False), key=lambda m: str(m["Subject"]))


def test_send_email_series_reaches_smtp(chroot_root: Path, tmp_path: Path) -> None:
    maildir = tmp_path / "mail"
    with smtp_server(maildir) as port:
        name = f"@chroot{chroot_root}"
        git = {
            "name": "Ada Kernel",
            "email": "ada@example.org",
            "sendemail": {"smtp_server": "127.0.0.1", "smtp_port": port},
        }
        inventory = write_inventory(tmp_path / "inv", [(name, {"user": "dev"})], group_data={"git": git})

        first = deploy(inventory, PATCH_MAIL_ONLY)[name]
        assert not first["failed"]
        changed = {op for names in first["changed"] for op in names}
        assert {"patch mail | b4 0.14.3 (pip, from PyPI)", "patch mail | b4 on PATH"} <= changed, changed
        checked = verify(inventory, "kdevbox.verify.test_patch_mail", extra=["kdevbox.verify.test_git"])
        assert checked.returncode == 0 and checked.failed == 0 and checked.passed >= 4, checked.output
        assert deploy(inventory, PATCH_MAIL_ONLY)[name]["changed"] == []

        made = run_as(chroot_root, SERIES)
        assert made.returncode == 0, made.stderr
        dry = run_as(chroot_root, f"{SEND} --dry-run ../out/*.patch")
        assert dry.returncode == 0, dry.stderr
        assert dry.stdout.count("Dry-OK") == 3 and received(maildir) == [], dry.stdout
        sent = run_as(chroot_root, f"{SEND} ../out/*.patch")
        assert sent.returncode == 0, sent.stdout + sent.stderr

    cover, first_patch, second_patch = received(maildir)
    assert cover["Subject"] == "[PATCH 0/2] lib: add b and c"
    assert first_patch["Subject"] == "[PATCH 1/2] lib: add b"
    assert second_patch["Subject"] == "[PATCH 2/2] lib: add c"
    for message in (cover, first_patch, second_patch):
        assert message["From"] == "Ada Kernel <ada@example.org>"
        assert message["To"] == "maintainer@example.org"
        assert message["Cc"] == "list@lists.example.org"
    # chainreplyto false (the kernel's convention): every patch answers the cover letter.
    assert cover["In-Reply-To"] is None
    assert first_patch["In-Reply-To"] == second_patch["In-Reply-To"] == cover["Message-Id"]
    assert "+int b;" in first_patch.get_payload()
