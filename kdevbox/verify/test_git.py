"""git: identity, send-email settings and a global gitignore git really applies, for the developer."""

from __future__ import annotations

import pytest

from kdevbox.layout import GITIGNORE_MARKER, excludesfile
from kdevbox.verify.targets import VerifyTarget


def _git_global(target: VerifyTarget, key: str) -> str | None:
    result = target.run_as_user("git config --global --get %s", key)
    return result.stdout.strip() if result.rc == 0 else None


def test_git_settings(kdevbox_target: VerifyTarget) -> None:
    expected = kdevbox_target.config.git.global_settings()
    actual = {key: _git_global(kdevbox_target, key) for key in expected}
    assert actual == expected


def test_global_gitignore_is_wired_and_owned(kdevbox_target: VerifyTarget) -> None:
    path = _git_global(kdevbox_target, "core.excludesfile")
    assert path, "core.excludesfile is not set for the developer"
    account = kdevbox_target.account
    ignore = kdevbox_target.host.file(path)
    assert ignore.is_file, f"core.excludesfile points at {path}, which is not a file"
    assert ignore.user == account.name
    if kdevbox_target.config.git.excludesfile is not None:  # else the user's own file is kept
        assert path == excludesfile(kdevbox_target.config.git.excludesfile, None, account.home)
    content = (kdevbox_target.user_text(path) or "").splitlines()
    marked = GITIGNORE_MARKER.format(mark="BEGIN") in content
    assert marked, f"{path} has no kdevbox block"
    missing = [p for p in kdevbox_target.config.git.ignore_patterns if p not in content]
    assert not missing, f"{path} lacks {missing}"


KERNEL_ARTIFACTS = [
    "init/main.o",
    "drivers/x/.foo.o.cmd",
    "net/x.ko",
    "compile_commands.json",
    ".cache/clangd/index/x.idx",
    "fs/inode.c.orig",
]


@pytest.mark.parametrize("sample", KERNEL_ARTIFACTS)
def test_git_ignores_kernel_artifacts(kdevbox_target: VerifyTarget, sample: str) -> None:
    """git itself, run as the developer in a scratch repo, ignores what a kernel build leaves."""
    result = kdevbox_target.run_as_user(
        'd=$(mktemp -d) && git -C "$d" init -q && git -C "$d" check-ignore -q --no-index %s; rc=$?; '
        'rm -rf "$d"; exit $rc',
        sample,
    )
    assert result.rc == 0, f"git does not ignore {sample} for {kdevbox_target.account.name}: {result.stderr}"
