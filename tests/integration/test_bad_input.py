"""Bad settings stop the whole run with a message naming host, field and value; no host changes."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

from tests import testhosts
from tests.setups import pyinfra_cli, write_inventory
from tests.testhosts import DEV_USER


@pytest.fixture()
def stack() -> Iterator[ExitStack]:
    with ExitStack() as exit_stack:
        yield exit_stack


CASES: list[tuple[str, dict[str, Any], list[str]]] = [
    ("invalid-url", {"apt_proxy": {"http": "not a url"}}, ["apt_proxy.http", "'not a url'", "URL"]),
    ("unknown-key", {"apt_prxy": {"http": "http://p:3128"}}, ["apt_prxy", "did you mean 'apt_proxy'"]),
    (
        "wrong-type",
        {"git": {"sendemail": {"smtp_server": "smtp.example.org", "smtp_port": "submission"}}},
        ["git.sendemail.smtp_port", "'submission'", "integer"],
    ),
    (
        "password-field",
        {"git": {"sendemail": {"smtp_server": "s.example.org", "smtp_pass": "x"}}},
        ["git.sendemail", "credential helper"],
    ),
    ("missing-user", {"user": "nosuchdev"}, ["user", "'nosuchdev'", "no such account"]),
    (
        "masked-credentials",
        {"apt_proxy": {"http": "ftp://ada:hunter2@proxy.example.org"}},
        ["apt_proxy.http", "ftp://***@proxy.example.org"],
    ),
    # Hostile values: each once ran as root or as the developer (issue 12); now refused up front.
    (
        "mirror-pipe",
        {"guest": {"mirror": "http://mirror.example/debian|id>/tmp/x"}},
        ["guest.mirror", "expected an http(s) URL"],
    ),
    ("build-root-semicolon", {"kernel": {"build_root": "~/build;rm -rf ~;#"}}, ["kernel.build_root", "path"]),
    ("ampersand-path", {"kernel": {"source_dir": "/home/dev/R&D/linux"}}, ["kernel.source_dir", "path"]),
    ("share-options", {"guest": {"share": "~/src,readonly=on,path=/"}}, ["guest.share", "path"]),
    ("share-home", {"guest": {"share": "~/"}}, ["guest.share", "not the whole root or home"]),
    ("dot-name", {"kernel": {"name": ".."}}, ["kernel.name", "not only dots"]),
    ("carriage-return", {"neovim": {"leader": "\r"}}, ["neovim.leader", "control character"]),
    ("wsl-kernel", {"kernel": {"wsl_kernel_path": "/mnt/c/k;id>/tmp/x"}}, ["kernel.wsl_kernel_path"]),
    ("excludesfile-quote", {"git": {"excludesfile": '~/x"; id >/tmp/x; echo "'}}, ["git.excludesfile"]),
    ("plain-http-releases", {"kernel": {"releases_url": "http://www.kernel.org/releases.json"}}, ["https"]),
    ("password-only-url", {"apt_proxy": {"http": "http://:hunter2@proxy:99999"}}, ["apt_proxy.http", "***@"]),
    ("slash-in-password", {"apt_proxy": {"http": "http://ada:hun/ter2@proxy"}}, ["apt_proxy.http", "***@"]),
    ("host-less-proxy", {"apt_proxy": {"http": "ada:hunter2@proxy:3128"}}, ["apt_proxy.http", "***@"]),
    (
        "socket-path-too-long",
        {"guest": {"image_dir": "~/" + "/".join(["guest-images"] * 8)}},
        ["guest.image_dir", "more than a unix socket's path holds (107)"],
    ),
    ("misplaced-password", {"apt_proxy": {"password": "hunter2"}}, ["apt_proxy.password", "'***'"]),
]


@pytest.mark.parametrize(("case", "bad", "expected"), CASES, ids=[c[0] for c in CASES])
def test_bad_settings_fail_clearly_and_touch_nothing(
    case: str, bad: dict[str, Any], expected: list[str], chroot_root: Path, tmp_path: Path, stack: ExitStack
) -> None:
    # A second, valid host: one bad host stops the run everywhere.
    good_root = stack.enter_context(testhosts.throwaway_rootfs(tmp_path / "good"))
    bad_name, good_name = f"@chroot{chroot_root}", f"@chroot{good_root}"
    inventory = write_inventory(
        tmp_path / "setup",
        [(bad_name, {"user": DEV_USER, **bad}), (good_name, {"user": DEV_USER})],
        group_data={"git": {"name": "Ada Kernel", "email": "ada@example.org"}},
    )
    before = {root: testhosts.tree_digest(root, "etc", "home") for root in (chroot_root, good_root)}

    result = pyinfra_cli(inventory)
    output = result.stdout + result.stderr

    assert result.returncode != 0
    problem_lines = [line for line in output.splitlines() if line.strip().startswith(f"- {bad_name}:")]
    assert problem_lines, output
    for text in expected:
        assert any(text in line for line in problem_lines), f"{text!r} not in {problem_lines}"
    assert "hunter2" not in output
    # The good host is not blamed (a task's own warnings may name it: a refusal by a task comes
    # after the tasks before it ran their checks for both hosts).
    assert not any(line.strip().startswith(f"- {good_name}:") for line in output.splitlines()), output
    for root, digest in before.items():
        assert testhosts.tree_digest(root, "etc", "home") == digest, f"{root} changed"


def test_hostile_dotfile_is_refused_escaped_before_any_change(chroot_root: Path, tmp_path: Path) -> None:
    """A value from the developer's own git config that kdevbox would paste into its output (an
    operation's name) and a command line: refused like a bad setting, shown escaped (no escape
    sequence reaches the operator's terminal), nothing changed."""
    gitconfig = chroot_root / "home" / DEV_USER / ".gitconfig"
    gitconfig.write_text("[core]\n\texcludesfile = ~/ignore\x1b]0;pwned\x07\n")
    os.chown(gitconfig, 1000, 1000)
    name = f"@chroot{chroot_root}"
    inventory = write_inventory(
        tmp_path,
        [(name, {"user": DEV_USER})],
        group_data={"git": {"name": "Ada", "email": "ada@example.org"}},
    )
    before = testhosts.tree_digest(chroot_root, "etc", "home")

    result = pyinfra_cli(inventory)
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert (
        f"{name}: git.excludesfile" in output and "core.excludesfile = '~/ignore\\x1b]0;pwned\\x07'" in output
    )
    assert "\x1b]0;pwned" not in output
    assert testhosts.tree_digest(chroot_root, "etc", "home") == before
