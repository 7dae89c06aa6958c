"""kdevbox-kernel, the program (kdevbox/kdevbox_kernel.py), on the controller: ranges, warnings and
their diff, checkpatch's summary, the table and JSON, bisect's step verdicts, the settings the deploy
writes; and whole runs in a real git repository against stand-ins for make, checkpatch.pl and
kdevbox-vm (scripts that read the commit they are given): series, bisect with skip and --tries, bad
input refused before anything is checked out, SIGTERM leaving everything as it was."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kdevbox import kdevbox_kernel as kk
from kdevbox.config import Kernel
from kdevbox.layout import KernelTree
from kdevbox.steps import launcher_script
from kdevbox.tasks.kernel import build_variables
from kdevbox.tasks.kernel_tool import render_tool_settings

PROGRAM = Path(kk.__file__)


# --- the program as shipped (standard library only: tests/unit/test_kdevbox_vm.py) ------------------
def test_deploy_writes_the_builds_own_make_variables(tmp_path: Path) -> None:
    """One owner: the settings carry the variables kdevbox's own build uses."""
    cfg = Kernel(localversion="-lab", name="k1")
    tree = KernelTree("/home/ada/src/linux", "/home/ada/build/k1", "")
    path = tmp_path / "s.json"
    path.write_text(render_tool_settings(cfg, tree, "/home/ada", build_variables(cfg)))
    settings = kk.Settings.load(str(path))
    assert settings.make_variables == ["LOCALVERSION=-lab", "CC=ccache gcc"]
    assert build_variables(Kernel(ccache=False)) == ["LOCALVERSION=-kdevbox"]
    assert settings.configured == "/home/ada/build/k1/.kdevbox-configured"
    assert (
        settings.work == "/home/ada/.cache/kdevbox/kernel/k1"
        and settings.vm == "/home/ada/.local/bin/kdevbox-vm"
    )
    path.write_text(json.dumps({**dataclasses.asdict(settings), "old": 1}))
    with pytest.raises(kk.Failure, match=r"another kdevbox version: run kdevbox's deploys/kernel\.py"):
        kk.Settings.load(str(path))


def test_launcher_passes_the_settings_file() -> None:
    launcher = launcher_script(
        "kdevbox-kernel", "/usr/local/lib/kdevbox/kdevbox_kernel.py", "/home/o'neil/k.json"
    )
    assert launcher.splitlines()[-1] == (
        "exec /usr/bin/python3 -I /usr/local/lib/kdevbox/kdevbox_kernel.py "
        "--settings '/home/o'\"'\"'neil/k.json' \"$@\""
    )


# --- pure parts ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (None, ("@{upstream}", "HEAD")),
        ("origin/master..HEAD", ("origin/master", "HEAD")),
        ("v6.1..topic", ("v6.1", "topic")),
        ("v6.1..", ("v6.1", "HEAD")),
        ("v6.1", ("v6.1", "HEAD")),
    ],
)
def test_ranges(text: str | None, expected: tuple[str, str]) -> None:
    assert kk.split_range(text) == expected


@pytest.mark.parametrize(("text", "said"), [("a...b", "not a symmetric"), ("..b", "has no base")])
def test_ranges_refused(text: str, said: str) -> None:
    with pytest.raises(kk.Failure, match=said) as raised:
        kk.split_range(text)
    assert raised.value.status == kk.EXIT_USAGE


def test_command_after_the_first_double_dash_is_untouched() -> None:
    assert kk.split_command(["series", "a..b", "--", "sh", "-c", "x -- y", "--"]) == (
        ["series", "a..b"],
        ["sh", "-c", "x -- y", "--"],
    )
    assert kk.split_command(["series"]) == (["series"], [])


SRC, BUILD = "/home/ada/.cache/kdevbox/kernel/k/src", "/home/ada/.cache/kdevbox/kernel/k/build"


def test_warnings_parsed_into_tree_paths_once_each() -> None:
    output = "\n".join(
        [
            f"{SRC}/kernel/exit.c: In function '__do_sys_exit':",
            f"{SRC}/kernel/exit.c:997:13: warning: unused variable 'x' [-Wunused-variable]",
            "../src/include/linux/a.h:3: warning: 'f' defined but not used [-Wunused-function]",
            "../src/include/linux/a.h:3: warning: 'f' defined but not used [-Wunused-function]",
            "  CC      kernel/exit.o",
            f"{SRC}/kernel/sys.c:5:1: error: expected ';'",
        ]
    )
    assert kk.parse_warnings(output, SRC, BUILD) == [
        kk.Warning("kernel/exit.c", 997, "unused variable 'x' [-Wunused-variable]"),
        kk.Warning("include/linux/a.h", 3, "'f' defined but not used [-Wunused-function]"),
    ]
    assert kk.first_error(output, SRC, BUILD) == "kernel/sys.c:5: expected ';'"
    assert kk.first_error("make: *** [Makefile:1] Error 2\n", SRC, BUILD) == "make: *** [Makefile:1] Error 2"


def test_new_warnings_only_in_touched_files_and_not_moved_ones() -> None:
    old = kk.Warning("a.c", 10, "unused variable 'x'")
    before = [old, kk.Warning("b.c", 1, "w")]
    moved = kk.Warning("a.c", 14, "unused variable 'x'")  # the commit added lines above it
    fresh = kk.Warning("a.c", 20, "unused variable 'y'")
    again = kk.Warning("a.c", 30, "unused variable 'x'")  # the same message once more: new
    elsewhere = kk.Warning("c.c", 1, "unused variable 'z'")  # a file the commit did not touch
    assert kk.new_warnings(before, [moved, fresh, again, elsewhere], ["a.c", "b.c"]) == [fresh, again]
    assert kk.objects_of(["a.c", "Documentation/x.rst", "include/h.h", "arch/x86/e.S"]) == ["a.o"]


def test_checkpatch_summary() -> None:
    clean = kk.parse_checkpatch("total: 0 errors, 0 warnings, 0 checks, 8 lines checked\n", 0)
    assert clean.ok and clean.summary == "ok" and clean.findings == []
    found = kk.parse_checkpatch(
        "abc:22: ERROR:TRAILING_WHITESPACE: trailing whitespace\n"
        "abc:30: CHECK:PARENTHESIS_ALIGNMENT: Alignment should match open parenthesis\n"
        "abc:31: CHECK:SPACING: spaces preferred\n"
        "total: 1 errors, 0 warnings, 2 checks, 40 lines checked\n",
        1,
    )
    assert (found.errors, found.warnings, found.checks) == (1, 0, 2)
    assert found.summary == "1 error, 2 checks"
    assert found.findings[0] == "ERROR: trailing whitespace"
    quiet = kk.parse_checkpatch("abc:3: WARNING:LONG_LINE: line too long\n", 1)  # no total line
    assert quiet.warnings == 1 and quiet.summary == "1 warning"
    assert kk.parse_checkpatch("Can't open patch\n", 2).summary == "exit 2"


def vm_run(status: int, outcome: str = "exited") -> kk.CommandRun:
    shown = json.dumps({"status": status, "outcome": outcome, "stdout": "out\n"}) if outcome else ""
    return kk.command_run(status, shown, "console tail", 1.0)


def test_command_runs_and_bisect_step_verdicts() -> None:
    assert vm_run(0).ok and vm_run(0).summary == "ok" and vm_run(0).stdout == "out\n"
    assert vm_run(1).summary == "exit 1"
    assert vm_run(120, "panic").summary == "panic" and vm_run(124, "timeout").summary == "timeout"
    assert vm_run(122, "boot-stalled").summary == "boot-stalled"
    assert (
        vm_run(125, "qemu-failed").summary == "qemu-failed" and vm_run(1, "").summary == "kdevbox-vm failed"
    )
    assert kk.step_verdict(False, []) == kk.STEP_SKIP == 125
    assert kk.step_verdict(True, [vm_run(0)]) == kk.STEP_GOOD
    assert kk.step_verdict(True, [vm_run(1), vm_run(0)]) == kk.STEP_GOOD  # --tries: flaky, passes once
    for failed in (vm_run(1), vm_run(125)):  # the command's own 125 is bad, never skip
        assert kk.step_verdict(True, [failed]) == kk.STEP_BAD
    for ended in ("panic", "oops", "timeout", "boot-stalled", "lost"):
        assert kk.step_verdict(True, [vm_run(120, ended)]) == kk.STEP_BAD
    assert kk.step_verdict(True, [vm_run(125, "qemu-failed")]) == kk.STEP_ABORT  # no verdict
    assert kk.step_verdict(True, [vm_run(1, "")]) == kk.STEP_ABORT  # kdevbox-vm said no result (no image)
    assert kk.step_verdict(True, [vm_run(130, "")]) == kk.STEP_ABORT  # interrupted


def test_bisect_answer() -> None:
    sha = "a" * 40
    assert kk.bisect_answer(
        f"Bisecting: 0 revisions left\n{sha} is the first bad commit\ncommit {sha}\n"
    ) == (
        sha,
        [],
    )
    skipped = "There are only 'skip'ped commits left to test.\nThe first bad commit could be any of:\n"
    skipped += f"{sha}\n{'b' * 40}\n"
    assert kk.bisect_answer(skipped) == (None, [sha, "b" * 40])
    assert kk.bisect_answer("bisect run failed") == (None, [])


def test_table_and_json() -> None:
    results = [
        kk.CommitResult(
            "1" * 40, "good one", True, 3.0, seconds=12.4, checkpatch=kk.Checkpatch(), command=vm_run(0)
        ),
        kk.CommitResult(
            "2" * 40,
            "warns",
            True,
            warnings=[kk.Warning("a.c", 3, "unused")],
            checkpatch=kk.Checkpatch(),
            command=vm_run(0),
        ),
        kk.CommitResult(
            "3" * 40, "x" * 50, False, build_error="a.c:1: nope", checkpatch=kk.Checkpatch(), log="/l/3.log"
        ),
        kk.CommitResult(
            "4" * 40,
            "style",
            True,
            checkpatch=kk.parse_checkpatch("s:1: ERROR:X: bad\n", 1),
            command=vm_run(0),
        ),
        kk.CommitResult(
            "5" * 40, "breaks", True, checkpatch=kk.Checkpatch(), command=vm_run(120, "panic"), log="/l/5.log"
        ),
    ]
    assert [r.ok for r in results] == [True, False, False, False, False]
    shown = kk.table(results, with_command=True).splitlines()
    assert shown[0].split() == ["commit", "subject", "build", "warnings", "checkpatch", "command", "seconds"]
    assert shown[1].split() == ["111111111111", "good", "one", "ok", "ok", "ok", "ok", "12"]
    assert shown[2].split()[2:6] == ["ok", "1", "new", "ok"]
    assert shown[3].split()[1] == "x" * 39 + "…" and shown[3].split()[2:6] == ["FAILED", "-", "ok", "-"]
    assert shown[4].split()[4] == "1" and shown[5].split()[5] == "panic"
    assert "    new warning: a.c:3: unused" in shown
    assert "    build failed: a.c:1: nope (log: /l/3.log)" in shown
    assert "    checkpatch ERROR: bad" in shown and "    command: panic (log: /l/5.log)" in shown
    assert "command" not in kk.table(results[:1], with_command=False).splitlines()[0]
    data = json.loads(json.dumps([r.as_json() for r in results]))
    assert data[1]["new_warnings"] == [{"file": "a.c", "line": 3, "message": "unused"}]
    assert (
        data[2]["build"] == {"ok": False, "seconds": 0.0, "error": "a.c:1: nope"}
        and data[2]["command"] is None
    )
    assert data[4]["command"]["outcome"] == "panic" and data[3]["checkpatch"]["errors"] == 1


# --- whole runs: a real repository, stand-ins for make, checkpatch.pl and kdevbox-vm ---------------
# make: a full build fails on a C file saying NOBUILD, warns for each saying WARN, and makes the
# bzImage; `make X.o` compiles only X; a tree with a HANG file starts a long build (pid in the build dir).
MAKE = r"""#!/bin/sh
src= build=; objs=
for arg; do
  case $arg in O=*) build=${arg#O=} ;; *.o) objs="$objs ${arg%.o}.c" ;; esac
done
src=$(echo "$*" | sed 's/.* -C \([^ ]*\) .*/\1/')
echo "$*" >> "$build/make.args"
[ -e "$src/HANG" ] && { echo $$ > "$build/make.pid"; sleep 600; }
cd "$src"; files=${objs:-$(git ls-files '*.c')}
for f in $files; do
  grep -q WARN "$f" && echo "$src/$f:2:5: warning: unused variable 'w' [-Wunused-variable]"
done
for f in $files; do grep -q NOBUILD "$f" && { echo "$src/$f:3:1: error: 'nobuild' undeclared"; exit 2; }; done
for f in $files; do mkdir -p "$build/$(dirname "$f")"; touch "$build/${f%.c}.o"; done
[ -n "$objs" ] && exit 0
image=$build/arch/x86/boot/bzImage; mkdir -p "${image%/*}"; cat $files > "$image"; rm -f "$image.runs"
"""
# checkpatch.pl: an error per added line with trailing whitespace.
CHECKPATCH = r"""#!/usr/bin/perl
my $sha = $ARGV[-1]; my $n = 0; my $e = 0;
for (`git show --format= $sha`) {
    $n++;
    if (/^\+.*[ \t]$/) { $e++; print "$sha:$n: ERROR:TRAILING_WHITESPACE: trailing whitespace\n"; }
}
print "total: $e errors, 0 warnings, 0 checks, $n lines checked\n"; exit($e ? 1 : 0);
"""
# kdevbox-vm exec --json: the "kernel" fails the test when it says BROKEN, panics when it says PANIC;
# FLAKY fails the first run on each build.
VM = r"""#!/bin/sh
while [ "$1" != "--kernel" ]; do shift; done; kernel=$2
status=0; outcome=exited
grep -q BROKEN "$kernel" && status=1
if grep -q FLAKY "$kernel" && [ ! -e "$kernel.runs" ]; then touch "$kernel.runs"; status=1; fi
if grep -q PANIC "$kernel"; then status=120; outcome=panic; echo "Kernel panic - not syncing" >&2; fi
echo "{\"status\": $status, \"outcome\": \"$outcome\", \"stdout\": \"\"}"
exit $status
"""


class Repo:
    """A developer's tree (a real git repository) with kdevbox's configured build, the stand-ins and
    the program's settings, under tmp."""

    def __init__(self, tmp: Path) -> None:
        self.tmp, self.source = tmp, tmp / "linux"
        bin_dir = tmp / "bin"
        bin_dir.mkdir()
        for name, text in (("make", MAKE), ("kdevbox-vm", VM)):
            (bin_dir / name).write_text(text)
            (bin_dir / name).chmod(0o755)
        (tmp / "build").mkdir()
        (tmp / "build/.config").write_text("CONFIG_X=y\n")
        (tmp / "build/.kdevbox-configured").write_text("stamp\n")
        self.settings = tmp / "settings.json"
        settings = kk.Settings(
            "k",
            str(self.source),
            str(tmp / "build"),
            str(tmp / "build/.kdevbox-configured"),
            str(tmp / "work"),
            ["LOCALVERSION=-t", "CC=ccache gcc"],
            str(bin_dir / "kdevbox-vm"),
        )
        self.settings.write_text(json.dumps(dataclasses.asdict(settings)))
        self.env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"}
        subprocess.run(["git", "init", "-q", "-b", "main", str(self.source)], check=True)
        self.write("scripts/checkpatch.pl", CHECKPATCH)
        self.write("kernel/a.c", "int a;\n")
        self.write("kernel/b.c", "int b;\n")
        self.commit("base")
        self.git("tag", "base")

    def git(self, *args: str) -> str:
        done = subprocess.run(
            ["git", "-C", str(self.source), "-c", "user.name=A", "-c", "user.email=a@example.org", *args],
            capture_output=True,
            text=True,
            check=True,
        )
        return done.stdout

    def write(self, path: str, text: str) -> None:
        (self.source / path).parent.mkdir(parents=True, exist_ok=True)
        (self.source / path).write_text(text)

    def commit(self, subject: str, **files: str) -> str:
        for path, text in files.items():
            self.write(path.replace("__", "/").replace("_c", ".c"), text)
        self.git("add", "-A")
        self.git("commit", "-qm", subject)
        return self.git("rev-parse", "HEAD").strip()

    def series(self) -> list[str]:
        """harmless, warns, does not build, fixes it, trailing whitespace, breaks the test."""
        return [
            self.commit("harmless", Documentation__x="text\n"),
            self.commit("warns", kernel__b_c="int b;\nWARN\n"),
            self.commit("nobuild", kernel__a_c="int a;\nNOBUILD\n"),
            self.commit("fixed", kernel__a_c="int a;\n"),
            self.commit("style", Documentation__x="text \n"),
            self.commit("breaks", kernel__a_c="int a;\nBROKEN\n"),
        ]

    def state(self) -> tuple[str, ...]:
        return (
            self.git("rev-parse", "HEAD"),
            self.git("symbolic-ref", "HEAD"),
            self.git("ls-files", "-s"),
            self.git("status", "--porcelain"),
        )

    def kernel(self, *args: str) -> subprocess.CompletedProcess[str]:
        argv = [sys.executable, "-I", str(PROGRAM), "--settings", str(self.settings), *args]
        return subprocess.run(argv, capture_output=True, text=True, env=self.env, timeout=120)

    def start(self, *args: str) -> subprocess.Popen[str]:
        argv = [sys.executable, "-I", str(PROGRAM), "--settings", str(self.settings), *args]
        return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=self.env)

    @property
    def worktree(self) -> Path:
        return self.tmp / "work/src"


@pytest.fixture()
def repo(tmp_path: Path) -> Repo:
    return Repo(tmp_path)


def test_series_flags_each_commit_for_its_reason(repo: Repo) -> None:
    commits = repo.series()
    before = repo.state()
    done = repo.kernel("series", "--json", "base..main", "--", "true")
    assert done.returncode == 1, done.stderr
    result = json.loads(done.stdout)
    failing = {c["subject"]: c for c in result["commits"] if not c["ok"]}
    assert list(failing) == ["warns", "nobuild", "style", "breaks"]
    assert [c["commit"] for c in result["commits"]] == commits and result["base"] == repo.git(
        "rev-parse", "base"
    ).strip()
    assert failing["warns"]["new_warnings"] == [
        {"file": "kernel/b.c", "line": 2, "message": "unused variable 'w' [-Wunused-variable]"}
    ]
    assert failing["nobuild"]["build"]["error"] == "kernel/a.c:3: 'nobuild' undeclared"
    assert failing["nobuild"]["command"] is None and failing["nobuild"]["new_warnings"] == []
    assert failing["style"]["checkpatch"]["findings"] == ["ERROR: trailing whitespace"]
    assert failing["breaks"]["command"]["status"] == 1 and failing["breaks"]["checkpatch"]["ok"]
    # "fixed" touches a.c again: b.c's warning (a file it does not touch) is not its.
    assert {c["subject"] for c in result["commits"] if c["ok"]} == {"harmless", "fixed"}
    assert repo.state() == before
    assert (repo.tmp / "work/logs/series" / f"{commits[2][:12]}.log").read_text().count("undeclared") == 1
    table = repo.kernel("series", "base..main", "--", "true")
    assert table.returncode == 1 and table.stdout.splitlines()[-1].startswith("2 of 6 commits pass; logs and")
    kept = json.loads((repo.tmp / "work/logs/series/series.json").read_text())  # a table run's data
    assert [(c["commit"], c["ok"]) for c in kept["commits"]] == [
        (c["commit"], c["ok"]) for c in result["commits"]
    ]
    # No command: its column is not there; the default range is the branch since its upstream.
    repo.git("branch", "-q", "upstream", "base")
    repo.git("branch", "-q", "--set-upstream-to", "upstream")
    # --w1: W=1 on make's command line, in a build dir of its own.
    w1 = repo.kernel("series", "--w1", "main~1..main")
    assert w1.returncode == 0, w1.stderr
    assert all(
        " W=1 " in f" {line} " for line in (repo.tmp / "work/build-W1/make.args").read_text().splitlines()
    )
    assert "W=1" not in (repo.tmp / "work/build/make.args").read_text()
    assert " LOCALVERSION=-t CC=ccache gcc " in (repo.tmp / "work/build/make.args").read_text()
    plain = repo.kernel("series")
    assert plain.returncode == 1 and "command" not in plain.stdout.splitlines()[0], plain.stderr
    assert plain.stdout.splitlines()[-1].startswith("3 of 6 commits pass")


def test_bisect_skips_what_does_not_build_and_names_the_first_bad(repo: Repo) -> None:
    commits = repo.series()
    before = repo.state()
    done = repo.kernel("bisect", "base", "main", "--", "true")
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.splitlines()[-1] == f"first bad commit: {commits[5][:12]} breaks"
    rows = [line.split() for line in done.stdout.splitlines()[1:-1]]
    # The ends are checked first: BAD fails the test, GOOD passes it; then git bisect's steps.
    assert [row[:2] + row[-2:-1] for row in rows[:2]] == [
        ["BAD", commits[5][:12], "bad"],
        ["GOOD", repo.git("rev-parse", "--short=12", "base").strip(), "good"],
    ]
    steps = rows[2:]
    assert steps[0][:4] == ["1", commits[2][:12], "nobuild", "FAILED"] and steps[0][-2] == "skip"
    assert {step[-2] for step in steps[1:]} == {"good"}
    logs = repo.tmp / "work/logs/bisect"
    assert len(list(logs.glob("step-*.log"))) == len(steps)
    assert [len(list(logs.glob(f"{end}-*.log"))) for end in ("bad", "good")] == [1, 1]
    assert repo.state() == before
    assert (
        subprocess.run(["git", "-C", str(repo.worktree), "bisect", "log"], capture_output=True).returncode
        != 0
    )
    # An earlier bisect left in the tool's worktree (the run was killed): the next starts clean.
    subprocess.run(
        ["git", "-C", str(repo.worktree), "bisect", "start", "main", commits[4]],
        check=True,
        capture_output=True,
    )
    again = repo.kernel("bisect", "base", "main", "--", "true")
    assert again.returncode == 0 and "an earlier bisect was interrupted: starting clean" in again.stderr
    assert again.stdout.splitlines()[-1] == f"first bad commit: {commits[5][:12]} breaks"


def test_bisect_tries_flaky_tests_and_counts_a_panic_bad(repo: Repo) -> None:
    repo.commit("one", kernel__b_c="int b;\n/* FLAKY */\n")
    flaky = repo.commit("two", kernel__a_c="int a;\nPANIC\n")
    repo.commit("three", kernel__a_c="int a;\nPANIC 2\n")
    once = repo.kernel("bisect", "base", "main", "--", "true")
    assert once.returncode == 0 and once.stdout.splitlines()[-1].startswith(
        f"first bad commit: {repo.git('rev-parse', '--short=12', 'main~2').strip()} one"
    )
    retried = repo.kernel("bisect", "--tries", "3", "base", "main", "--", "true")
    assert retried.stdout.splitlines()[-1] == f"first bad commit: {flaky[:12]} two", retried.stdout
    assert "panic" in retried.stdout


def test_bisect_refuses_ends_that_are_not_what_they_say(repo: Repo) -> None:
    """A BAD that passes would come out as its own first bad commit, a GOOD that fails as the one
    after it: each is built and run first, and a wrong one stops the bisect, saying which and why."""
    commits = repo.series()
    commits.append(repo.commit("still broken", kernel__b_c="int b;\n/* later */\n"))
    before = repo.state()
    # main~1: breaks (fails the test), main~2: style (passes), main~4: nobuild.
    for good, bad, said in (
        ("base", "main~2", "BAD main~2 passes CMD: nothing to bisect (CMD tests something else"),
        ("base", "main~4", "BAD main~4 does not build: give one that builds, or --trust-ends"),
        ("main~1", "main", "GOOD main~1 fails CMD too: give an older good commit, or --trust-ends"),
        ("main~4", "main", "GOOD main~4 does not build: give one that builds"),
    ):
        done = repo.kernel("bisect", good, bad, "--", "true")
        assert done.returncode == kk.EXIT_FAILED and said in done.stderr, done.stderr
        assert done.stdout == "" and said in done.stderr.splitlines()[-1]
        assert Path(done.stderr.rsplit("its log: ", 1)[1].rstrip(")\n")).is_file(), done.stderr
    bisecting = subprocess.run(["git", "-C", str(repo.worktree), "bisect", "log"], capture_output=True)
    assert bisecting.returncode != 0 and repo.state() == before
    # --trust-ends: git bisect takes them as given, two builds and boots fewer, and a BAD that passes
    # comes out as its own first bad commit.
    trusted = repo.kernel("bisect", "--trust-ends", "base", "main~2", "--", "true")
    assert trusted.returncode == 0, trusted.stderr
    assert trusted.stdout.splitlines()[-1] == f"first bad commit: {commits[4][:12]} style"
    assert [row.split()[0] for row in trusted.stdout.splitlines()[1:-1]] == ["1", "2"], trusted.stdout


def test_bad_input_refused_before_anything_is_checked_out(repo: Repo) -> None:
    repo.series()
    before = repo.state()
    repo.write("kernel/a.c", "int a; /* edited */\n")
    refusals = [(repo.kernel("series", "base..main"), "has uncommitted changes: commit or stash them first")]
    repo.git("checkout", "kernel/a.c")
    repo.git("bisect", "start")
    refusals.append((repo.kernel("bisect", "base", "main", "--", "true"), "a bisect of yours is in progress"))
    repo.git("bisect", "reset")
    refusals += [
        (repo.kernel("series", "main..main"), "RANGE main..main has no commits"),
        (repo.kernel("series"), "your branch has no upstream: give RANGE"),
        (repo.kernel("series", "nope..main"), "BASE 'nope' is no commit in"),
        (repo.kernel("bisect", "main", "base", "--", "true"), "GOOD main is not an ancestor of BAD base"),
        (repo.kernel("bisect", "base", "main"), "give the test: bisect GOOD BAD -- CMD"),
    ]
    (repo.tmp / "build/.kdevbox-configured").unlink()
    refusals.append(
        (repo.kernel("series", "base..main"), "is not configured by kdevbox: run kdevbox's deploys/kernel.py")
    )
    for done, said in refusals:
        assert done.returncode == kk.EXIT_USAGE and said in done.stderr, done.stderr
        assert len(done.stderr.splitlines()) == 1 and done.stdout == ""
    assert not (repo.tmp / "work").exists() and repo.state() == before


def wait_for(path: Path, bound: float = 60) -> str:
    """path's content once it has some (the stand-in make writes it when the build starts)."""
    deadline = time.monotonic() + bound
    while not (path.exists() and path.read_text().strip()):
        assert time.monotonic() < deadline, f"no {path}"
        time.sleep(0.05)
    return path.read_text().strip()


@pytest.mark.parametrize("command", ["series", "bisect"])
def test_sigterm_stops_the_build_and_leaves_everything_as_it_was(repo: Repo, command: str) -> None:
    repo.series()
    repo.commit("hangs", HANG="x\n")
    repo.commit("after", kernel__b_c="int b;\n")
    before = repo.state()
    # The build of "hangs" starts and does not end: the series' second commit; bisect's check of BAD
    # (its tree has HANG too).
    args = ["series", "main~2..main"] if command == "series" else ["bisect", "main~2", "main", "--", "true"]
    running = repo.start(*args)
    make = int(wait_for(repo.tmp / "work/build/make.pid"))
    running.send_signal(signal.SIGTERM)
    _, stderr = running.communicate(timeout=60)
    assert running.returncode == kk.EXIT_INTERRUPTED, stderr
    assert "interrupted: your tree, index and branch are as they were" in stderr
    assert not Path(f"/proc/{make}").exists() or "Z" in Path(f"/proc/{make}/stat").read_text().split()[2]
    assert repo.state() == before
    bisecting = subprocess.run(["git", "-C", str(repo.worktree), "bisect", "log"], capture_output=True)
    assert bisecting.returncode != 0  # no half-done bisect left
