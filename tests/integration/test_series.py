"""kdevbox-kernel for real on the kernel lab's tree: a six-commit series on top of the lab's kernel
(two harmless commits, one that adds a -Wunused-variable, one that does not build, one with a
checkpatch error, one that breaks what `uname -r` prints), checked commit by commit with the test
booted one shot on each commit's kernel, then bisected; refusals before anything is checked out; the
developer's branch, HEAD and index as they were, and the lab's checkout left as the deploy made it."""

from __future__ import annotations

import json
import os
import shlex
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.integration.test_guest import GUEST_IMAGE, SELFTESTS, guest_settings
from tests.kernel_stand_in import TAG
from tests.setups import KERNEL, deploy, guest_kernel_settings, verify, write_inventory
from tests.testhosts import DEV_USER, run_as

pytestmark = pytest.mark.slow
__all__ = ["guest_settings"]  # the guest fixture of test_guest: the same image, built once

HOME = f"/home/{DEV_USER}"
SOURCE = f"{HOME}/src/linux"
WORK = f"{HOME}/.cache/kdevbox/kernel/kdevbox"
BRANCH = "kdevbox-series"
# The test each commit's kernel runs: the release uname prints starts with its version number.
TEST = ["sh", "-c", "uname -r | grep -q '^[0-9]'"]
NEWUNAME = (
    "SYSCALL_DEFINE1(newuname, struct new_utsname __user *, name)\n{\n\tstruct new_utsname tmp;\n\n"
    "\tdown_read(&uts_sem);\n\tmemcpy(&tmp, utsname(), sizeof(tmp));\n"
)
EXIT = "SYSCALL_DEFINE1(exit, int, error_code)\n{\n"
# (subject, file, text, replaced by): the series, oldest first.
SERIES = [
    (
        "Documentation: howto: say be-all and end-all",
        "Documentation/process/howto.rst",
        "This is the be-all, end-all document",
        "This is the be-all and end-all document",
    ),
    ("exit: add a variable for later", "kernel/exit.c", EXIT, EXIT + "\tint exit_unused;\n\n"),
    ("uname: call a helper", "kernel/sys.c", NEWUNAME, NEWUNAME + "\tuname_no_such_helper();\n"),
    ("uname: drop the helper call", "kernel/sys.c", NEWUNAME + "\tuname_no_such_helper();\n", NEWUNAME),
    ("uname: comment the old syscall", "kernel/sys.c", "/*\n * Old cruft\n */", "/*\n * Old cruft \n */"),
    ("uname: mark the release", "kernel/sys.c", NEWUNAME, NEWUNAME + "\ttmp.release[0] = 'X';\n"),
]
TOUCHED = sorted({path for _, path, _, _ in SERIES})


@dataclass(frozen=True)
class Lab:
    root: Path

    def run(self, *argv: str, timeout: float = 1800) -> Any:
        """argv as the developer, in a login shell (kdevbox-kernel on PATH)."""
        return run_as(self.root, shlex.join(argv), timeout)

    def git(self, *args: str) -> str:
        done = self.run("git", "-C", SOURCE, *args)
        assert done.returncode == 0, done.stdout + done.stderr
        return str(done.stdout)

    def kernel(self, *args: str) -> Any:
        return self.run("kdevbox-kernel", *args)

    def developer_state(self) -> tuple[str, str, str, str]:
        """What the developer's checkout is: HEAD, its branch, the index, the work tree's status."""
        branch = self.run("git", "-C", SOURCE, "symbolic-ref", "-q", "HEAD").stdout
        return (
            self.git("rev-parse", "HEAD"),
            branch,
            self.git("ls-files", "-s"),
            self.git("status", "--porcelain"),
        )


@pytest.fixture()
def series_lab(
    kernel_lab: Path, kernel_repo_url: str, guest_settings: dict[str, Any], tmp_path: Path
) -> Iterator[Lab]:
    """The lab's kernel and guest image (test_guest's settings: the same build and image), and the
    series on a branch of the developer's checkout; afterwards the checkout is back on what the
    deploy checked out, with the edited files' times as the build saw them (no rebuild follows)."""
    name = f"@chroot{kernel_lab}"
    kernel = guest_kernel_settings(kernel_repo_url, selftests=SELFTESTS)
    inventory = write_inventory(
        tmp_path, [(name, {"user": DEV_USER, "kernel": kernel, "guest": guest_settings})]
    )
    for deploy_file in (KERNEL, GUEST_IMAGE):
        assert not deploy(inventory, deploy_file)[name]["failed"]
    checked = verify(inventory, "kdevbox.verify.kernel_checks", ["-k", "series_tool"])
    assert checked.returncode == 0 and checked.passed == 1, checked.output
    lab = Lab(kernel_lab)
    deployed = lab.git("rev-parse", "HEAD").strip()
    times = {path: os.stat(kernel_lab / SOURCE[1:] / path) for path in TOUCHED}
    lab.git("checkout", "-q", "-b", BRANCH)
    try:
        for subject, path, text, replaced in SERIES:
            edited = kernel_lab / SOURCE[1:] / path
            content = edited.read_text()
            assert content.count(text) == 1, (path, text)
            edited.write_text(content.replace(text, replaced))  # the developer's file, still theirs
            message = (
                f"{subject}\n\nWhat the test series needs.\n\nSigned-off-by: Dev Eloper <dev@example.org>"
            )
            lab.git(
                "-c", "user.name=Dev Eloper", "-c", "user.email=dev@example.org", "commit", "-qam", message
            )
        yield lab
    finally:
        lab.git("checkout", "-q", "--force", "--detach", deployed)
        lab.git("branch", "-q", "-D", BRANCH)
        for path, stat in times.items():
            os.utime(kernel_lab / SOURCE[1:] / path, ns=(stat.st_atime_ns, stat.st_mtime_ns))


def reasons(commit: dict[str, Any]) -> set[str]:
    """Why a commit of `series --json` failed."""
    failed = set()
    if not commit["build"]["ok"]:
        failed.add("build")
    if commit["new_warnings"]:
        failed.add("warnings")
    if not commit["checkpatch"]["ok"]:
        failed.add("checkpatch")
    if commit["command"] is not None and not commit["command"]["ok"]:
        failed.add("command")
    return failed


def test_series_check_and_bisect(series_lab: Lab) -> None:
    lab = series_lab
    series = f"{TAG}..{BRANCH}"
    before = lab.developer_state()

    # Bad input: one line each, naming what to do, before the tool's worktree is even made.
    edited = lab.root / SOURCE[1:] / "README"
    edited.write_text(edited.read_text() + "local change\n")
    dirty = lab.kernel("series", series)
    lab.git("checkout", "-q", "README")
    lab.git("bisect", "start")
    yours = lab.kernel("bisect", TAG, BRANCH, "--", "true")
    lab.git("bisect", "reset")
    runs = [
        (dirty, "has uncommitted changes: commit or stash them first"),
        (yours, "a bisect of yours is in progress in"),
        (lab.kernel("series", f"{BRANCH}..{BRANCH}"), f"RANGE {BRANCH}..{BRANCH} has no commits"),
        (lab.kernel("series"), "your branch has no upstream: give RANGE"),
        (lab.kernel("bisect", BRANCH, TAG, "--", "true"), f"GOOD {BRANCH} is not an ancestor of BAD {TAG}"),
        (lab.kernel("bisect", TAG, BRANCH), "give the test: bisect GOOD BAD -- CMD"),
    ]
    settings = json.loads((lab.root / HOME[1:] / ".config/kdevbox/kdevbox-kernel.json").read_text())
    unconfigured = lab.root / HOME[1:] / "unconfigured.json"
    unconfigured.write_text(json.dumps({**settings, "build": f"{HOME}/build/none", "configured": "/none"}))
    tool = [
        "python3",
        "-I",
        "/usr/local/lib/kdevbox/kdevbox_kernel.py",
        "--settings",
        f"{HOME}/unconfigured.json",
    ]
    runs.append((lab.run(*tool, "series", series), f"{HOME}/build/none is not configured by kdevbox: run"))
    for done, said in runs:
        assert done.returncode == 2 and said in done.stderr, done.stderr
        assert len(done.stderr.strip().splitlines()) == 1 and done.stdout == "", done.stderr
    assert not (lab.root / WORK[1:]).exists()
    assert lab.developer_state() == before

    # The series: each commit flagged for exactly what is wrong with it, in the table it prints and
    # the same data in series.json beside its logs.
    checked = lab.kernel("series", series, "--", *TEST)
    assert checked.returncode == 1, checked.stdout + checked.stderr
    print(checked.stdout + checked.stderr)  # the table and seconds per step, for the README
    rows = checked.stdout.splitlines()
    assert rows[0].split() == ["commit", "subject", "build", "warnings", "checkpatch", "command", "seconds"]
    result = json.loads((lab.root / WORK[1:] / "logs/series/series.json").read_text())
    commits = result["commits"]
    assert [c["subject"] for c in commits] == [subject for subject, *_ in SERIES]
    assert [row.split()[0] for row in rows[1:7]] == [c["commit"][:12] for c in commits]
    assert {c["subject"]: reasons(c) for c in commits if not c["ok"]} == {
        "exit: add a variable for later": {"warnings"},
        "uname: call a helper": {"build"},
        "uname: comment the old syscall": {"checkpatch"},
        "uname: mark the release": {"command"},
    }, checked.stdout
    warning, failed, whitespace, broken = (commits[i] for i in (1, 2, 4, 5))
    assert [(w["file"], w["message"]) for w in warning["new_warnings"]] == [
        ("kernel/exit.c", "unused variable 'exit_unused' [-Wunused-variable]")
    ]
    assert "kernel/sys.c" in failed["build"]["error"] and "uname_no_such_helper" in failed["build"]["error"]
    assert failed["command"] is None  # nothing to boot
    assert whitespace["checkpatch"]["errors"] == 1
    assert whitespace["checkpatch"]["findings"] == ["ERROR: trailing whitespace"]
    assert broken["command"]["outcome"] == "exited" and broken["command"]["status"] == 1
    assert all(c["command"]["ok"] for c in commits if c["build"]["ok"] and c is not broken)
    assert lab.developer_state() == before

    # Bisect: the commit that does not build is skipped, the breaking one named.
    bisected = lab.kernel("bisect", TAG, BRANCH, "--", *TEST)
    assert bisected.returncode == 0, bisected.stdout + bisected.stderr
    head = lab.git("rev-parse", "--short=12", BRANCH).strip()
    assert bisected.stdout.splitlines()[-1] == f"first bad commit: {head} uname: mark the release"
    steps = [line.split() for line in bisected.stdout.splitlines()[1:-1]]
    # Its ends judged first, on their own kernels: the commit named really fails the test.
    tag = lab.git("rev-parse", "--short=12", f"{TAG}^{{commit}}").strip()
    assert [step[:2] + step[-2:-1] for step in steps[:2]] == [["BAD", head, "bad"], ["GOOD", tag, "good"]]
    skipped = lab.git("rev-parse", "--short=12", f"{BRANCH}~3").strip()
    assert [step[1] for step in steps if step[-2] == "skip"] == [skipped], bisected.stdout
    assert lab.run("git", "-C", WORK + "/src", "bisect", "log").returncode != 0  # ended, not left
    print(bisected.stdout + bisected.stderr)
    assert lab.developer_state() == before
