#!/usr/bin/python3 -I
"""kdevbox-kernel: check a patch series commit by commit, and bisect a regression, on kdevbox's build.

What maintainers expect of a series before it is sent (each commit builds, adds no compiler warning
in the files it touches, passes `checkpatch.pl --strict`, and the kernel still runs the test) and
what a regression asks for after (`git bisect run` with a script that builds, boots and tests) both
need the same step: build one commit with kdevbox's configuration, then boot it one shot with
`kdevbox-vm exec`. This program does that step in a `git worktree` and a build dir of its own (both
kept between runs, so a step rebuilds only what the commit changed, through ccache): the
developer's work tree, index, branch and their kdevbox build are never touched.

Like kdevbox-vm, this file runs on the dev box as the developer with the standard library only: the
deploy copies it root-owned into /usr/local/lib/kdevbox and writes its settings (the tree, kdevbox's
build of it, the make variables of that build, kdevbox-vm) as JSON into the developer's home.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import fcntl
import json
import os
import posixpath
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import IO, Any, NoReturn

EXIT_FAILED = 1  # a commit failed a check (series), no first bad commit found (bisect), a tool failed
EXIT_USAGE = 2  # bad arguments or input, said in one line before anything is checked out or built
EXIT_INTERRUPTED = 130  # Ctrl-C, SIGTERM or SIGHUP: the tool's worktree is left as it was

# git bisect run's verdicts for one step (git-bisect(1)).
STEP_GOOD = 0
STEP_BAD = 1
STEP_SKIP = 125  # the commit does not build: git bisect tries one beside it
STEP_ABORT = 128  # the step could not be judged (kdevbox-vm could not boot anything): stop the bisect
VERDICT_NAMES = {STEP_GOOD: "good", STEP_BAD: "bad", STEP_SKIP: "skip", STEP_ABORT: "abort"}
# What a judged commit was to the bisect: a step git bisect run chose, or an end checked first.
STEP_ROLE, BAD_END, GOOD_END = "step", "BAD", "GOOD"

# kdevbox-vm exec --json's outcome (kdevbox/kdevbox_vm.py) says what ended the run: "exited" is the
# command's own status; the guest's end (panic, oops, boot-stalled, lost, timeout) fails the commit;
# these judge nothing about it, nor does a kdevbox-vm that printed no result (no image, Ctrl-C).
NO_VERDICT = ("qemu-failed", "kdevbox-vm failed")
COMMAND_TIMEOUT = 300.0
BOOT_IMAGE = "arch/x86/boot/bzImage"
LOG_TAIL = 15  # lines of a failed build or command shown under the table

ERROR = re.compile(r"^(?P<file>[^\s:][^:]*):(?P<line>\d+):(?:\d+:)? (?:fatal )?error: (?P<message>.*)$")
WARNING = re.compile(r"^(?P<file>[^\s:][^:]*):(?P<line>\d+):(?:\d+:)? warning: (?P<message>.*)$")
CHECKPATCH_FINDING = re.compile(r"^[^:]*:\d+: (?P<level>ERROR|WARNING|CHECK):(?:[A-Z0-9_]+:)? (?P<text>.*)$")
CHECKPATCH_TOTAL = re.compile(r"^total: (\d+) errors, (\d+) warnings, (?:(\d+) checks, )?\d+ lines checked")


class Failure(Exception):
    """A run that ends with a message for the developer and an exit status."""

    def __init__(self, message: str, status: int = EXIT_FAILED) -> None:
        super().__init__(message)
        self.status = status


def usage(message: str) -> Failure:
    return Failure(message, EXIT_USAGE)


class Interrupted(BaseException):
    """SIGTERM or SIGHUP, turned into an exception so children are stopped on the way out."""


# --- settings --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Settings:
    """One kernel configuration's paths, written by kdevbox's kernel deploy as JSON."""

    name: str  # the configuration's name (kernel.name)
    source: str  # the developer's tree (never checked out, built or written here)
    build: str  # kdevbox's build of it: its .config is what every step builds with
    configured: str  # the stamp kdevbox leaves in build once it configured it
    work: str  # this program's own dir: its worktree, build dirs, logs and lock
    make_variables: list[str]  # the same variables as kdevbox's build (LOCALVERSION, CC=ccache gcc)
    vm: str  # the developer's kdevbox-vm

    @classmethod
    def load(cls, path: str) -> Settings:
        redo = "run kdevbox's deploys/kernel.py"
        try:
            with open(path, encoding="utf-8") as file:
                data = json.load(file)
        except OSError as error:
            raise usage(f"no kernel settings in {path} ({error.strerror}): {redo}") from None
        except ValueError as error:
            raise usage(f"{path} is not JSON ({error}): {redo}") from None
        names = {f.name for f in dataclasses.fields(cls)}
        if not isinstance(data, dict) or set(data) != names:
            raise usage(f"{path} is from another kdevbox version: {redo}")
        return cls(**data)

    @property
    def worktree(self) -> str:
        return posixpath.join(self.work, "src")

    def build_dir(self, w1: bool) -> str:
        """W=1 builds apart: switching the flag in one dir would recompile everything each time."""
        return posixpath.join(self.work, "build-W1" if w1 else "build")

    def logs(self, command: str) -> str:
        return posixpath.join(self.work, "logs", command)


# --- pure parts: ranges, warnings, checkpatch, verdicts -------------------------------------------
def split_range(text: str | None) -> tuple[str, str]:
    """(base, tip) of a series RANGE: `A..B`, `A..` (to HEAD), or `A` (A..HEAD); none: the branch's
    commits since its upstream. `A...B` (symmetric) names no series and is refused."""
    if text is None:
        return "@{upstream}", "HEAD"
    if "..." in text:
        raise usage(f"RANGE {text!r}: give BASE..TIP (e.g. origin/master..HEAD), not a symmetric A...B")
    base, dots, tip = text.partition("..")
    if not base:
        raise usage(f"RANGE {text!r} has no base: give BASE..TIP, e.g. origin/master..HEAD")
    return base, (tip or "HEAD") if dots else "HEAD"


@dataclass(frozen=True)
class Warning:
    """A compiler warning, located by file (in the tree) and told by its message: line numbers move
    with every commit, so two builds' warnings are compared by (file, message)."""

    file: str
    line: int
    message: str

    @property
    def key(self) -> tuple[str, str]:
        return self.file, self.message


def tree_path(path: str, source: str, build: str) -> str:
    """A path gcc printed (absolute in the tree, or relative to the build dir make ran in) as a path
    in the tree; anything outside it is kept as printed."""
    full = posixpath.normpath(posixpath.join(build, path))
    for root in (source, build):
        if full.startswith(root.rstrip("/") + "/"):
            return full[len(root.rstrip("/")) + 1 :]
    return path


def parse_warnings(text: str, source: str, build: str) -> list[Warning]:
    """The compiler's warnings in a build's output, once each (a header's warning repeats per file
    that includes it)."""
    found: dict[tuple[str, int, str], Warning] = {}
    for line in text.splitlines():
        match = WARNING.match(line.strip())
        if match:
            path = tree_path(match["file"], source, build)
            warning = Warning(path, int(match["line"]), match["message"].strip())
            found.setdefault((path, warning.line, warning.message), warning)
    return list(found.values())


def first_error(text: str, source: str, build: str) -> str:
    """The first compiler error of a failed build (what a person looks for in its log), else its last
    line (make's own)."""
    for line in text.splitlines():
        match = ERROR.match(line.strip())
        if match:
            return f"{tree_path(match['file'], source, build)}:{match['line']}: {match['message'].strip()}"
    lines = text.strip().splitlines()
    return lines[-1] if lines else ""


def new_warnings(before: list[Warning], after: list[Warning], touched: Sequence[str]) -> list[Warning]:
    """after's warnings in the touched files that before did not have as often (by file and message)."""
    files = set(touched)
    left = Counter(w.key for w in before if w.file in files)
    fresh = []
    for warning in after:
        if warning.file not in files:
            continue
        if left[warning.key] > 0:
            left[warning.key] -= 1
        else:
            fresh.append(warning)
    return fresh


def objects_of(touched: Sequence[str]) -> list[str]:
    """The objects whose compile tells the touched C files' warnings."""
    return [path[:-2] + ".o" for path in touched if path.endswith(".c")]


@dataclass
class Checkpatch:
    """`checkpatch.pl --strict` on one commit: its findings, counted by level."""

    errors: int = 0
    warnings: int = 0
    checks: int = 0
    findings: list[str] = field(default_factory=list)
    status: int = 0

    @property
    def ok(self) -> bool:
        return self.status == 0 and not (self.errors or self.warnings or self.checks)

    @property
    def summary(self) -> str:
        if self.ok:
            return "ok"
        counts = ((self.errors, "error"), (self.warnings, "warning"), (self.checks, "check"))
        said = [f"{n} {word}{'s' if n != 1 else ''}" for n, word in counts if n]
        return ", ".join(said) or f"exit {self.status}"


def parse_checkpatch(text: str, status: int) -> Checkpatch:
    """checkpatch's --terse --show-types output: one line per finding, then its total."""
    result = Checkpatch(status=status)
    for line in text.splitlines():
        finding, total = CHECKPATCH_FINDING.match(line), CHECKPATCH_TOTAL.match(line)
        if finding:
            result.findings.append(f"{finding['level']}: {finding['text']}")
        elif total:
            result.errors, result.warnings = int(total[1]), int(total[2])
            result.checks = int(total[3] or 0)
    if not (result.errors or result.warnings or result.checks):  # no total line (-q, old checkpatch)
        levels = Counter(f.split(":", 1)[0] for f in result.findings)
        result.errors, result.warnings, result.checks = levels["ERROR"], levels["WARNING"], levels["CHECK"]
    return result


@dataclass
class CommandRun:
    """CMD in a one-shot guest on one commit's kernel: kdevbox-vm exec's status and what ended it."""

    status: int
    outcome: str  # exited, or what the guest did instead (panic, timeout, ...)
    seconds: float
    stdout: str = ""
    stderr: str = ""

    @property
    def ok(self) -> bool:
        return self.outcome == "exited" and self.status == 0

    @property
    def summary(self) -> str:
        if self.ok:
            return "ok"
        return f"exit {self.status}" if self.outcome == "exited" else self.outcome


def command_run(status: int, shown: str, stderr: str, seconds: float) -> CommandRun:
    """kdevbox-vm exec --json's result; without JSON (it failed before running anything) its own."""
    try:
        result = json.loads(shown)
    except ValueError:
        result = {}
    if isinstance(result, dict) and "outcome" in result:
        return CommandRun(status, str(result["outcome"]), seconds, str(result.get("stdout", "")), stderr)
    return CommandRun(status, NO_VERDICT[-1], seconds, "", stderr)


def step_verdict(built: bool, runs: Sequence[CommandRun]) -> int:
    """git bisect run's exit status for a step: a commit that does not build is skipped; one run that
    passes makes it good (--tries is for flaky tests); a panic, oops, stall or timeout is bad, like a
    failing command; a run kdevbox-vm could not make judges nothing and stops the bisect."""
    if not built:
        return STEP_SKIP
    if any(run.ok for run in runs):
        return STEP_GOOD
    if any(run.outcome in NO_VERDICT for run in runs):
        return STEP_ABORT
    return STEP_BAD


# --- results: one row per commit ------------------------------------------------------------------
@dataclass
class CommitResult:
    commit: str
    subject: str
    built: bool | None = None  # None: not built (an earlier interruption)
    build_seconds: float = 0.0
    build_error: str = ""
    warnings: list[Warning] = field(default_factory=list)
    checkpatch: Checkpatch | None = None
    command: CommandRun | None = None
    seconds: float = 0.0
    log: str = ""

    @property
    def ok(self) -> bool:
        return (
            bool(self.built)
            and not self.warnings
            and (self.checkpatch is None or self.checkpatch.ok)
            and (self.command is None or self.command.ok)
        )

    def as_json(self) -> dict[str, Any]:
        return {
            "commit": self.commit,
            "subject": self.subject,
            "ok": self.ok,
            "build": {"ok": self.built, "seconds": round(self.build_seconds, 1), "error": self.build_error},
            "new_warnings": [dataclasses.asdict(w) for w in self.warnings],
            "checkpatch": None
            if self.checkpatch is None
            else {
                "ok": self.checkpatch.ok,
                "errors": self.checkpatch.errors,
                "warnings": self.checkpatch.warnings,
                "checks": self.checkpatch.checks,
                "findings": self.checkpatch.findings,
            },
            "command": None
            if self.command is None
            else {
                "ok": self.command.ok,
                "status": self.command.status,
                "outcome": self.command.outcome,
                "seconds": round(self.command.seconds, 1),
                "stdout": self.command.stdout,
            },
            "seconds": round(self.seconds, 1),
            "log": self.log,
        }


def _cell(result: CommitResult) -> list[str]:
    build = "-" if result.built is None else "ok" if result.built else "FAILED"
    warnings = "-" if not result.built else f"{len(result.warnings)} new" if result.warnings else "ok"
    checkpatch = "-" if result.checkpatch is None else result.checkpatch.summary
    command = "-" if result.command is None else result.command.summary
    subject = result.subject if len(result.subject) <= 40 else result.subject[:39] + "…"
    return [result.commit[:12], subject, build, warnings, checkpatch, command, f"{result.seconds:.0f}"]


def table(results: Sequence[CommitResult], with_command: bool) -> str:
    """The per-commit table, then what failed and where its log is."""
    head = ["commit", "subject", "build", "warnings", "checkpatch", "command", "seconds"]
    rows = [head, *(_cell(r) for r in results)]
    if not with_command:
        rows = [row[:5] + row[6:] for row in rows]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows]
    for result in results:
        told = []
        if result.built is False:
            told.append(f"build failed: {result.build_error} (log: {result.log})")
        told += [f"new warning: {w.file}:{w.line}: {w.message}" for w in result.warnings]
        told += [f"checkpatch {f}" for f in (result.checkpatch.findings if result.checkpatch else [])]
        if result.command and not result.command.ok:
            told.append(f"command: {result.command.summary} (log: {result.log})")
        if told:
            lines.append(f"{result.commit[:12]} {result.subject}")
            lines += [f"    {line}" for line in told]
    return "\n".join(lines)


# --- children: make, git, checkpatch, kdevbox-vm --------------------------------------------------
def say(message: str) -> None:
    print(f"kdevbox-kernel: {message}", file=sys.stderr, flush=True)


# What is parsed (gcc's, git's, checkpatch's words and quotes) is said in English and ASCII. Not LC_ALL
# alone: the kernel's Makefile unexports it, and gcc would take LANG's UTF-8 quotes.
C_LOCALE = {**{k: v for k, v in os.environ.items() if not k.startswith("LC_")}, "LANG": "C", "LC_ALL": "C"}


def run(argv: Sequence[str], cwd: str | None = None, log: IO[str] | None = None) -> tuple[int, str]:
    """argv in its own session (Ctrl-C reaches this program, which stops it and its children: make's
    compilers too), its output and errors together; appended to log as it goes."""
    process = subprocess.Popen(
        argv,
        cwd=cwd,
        env=C_LOCALE,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        errors="replace",
        start_new_session=True,
    )
    output: list[str] = []
    try:
        assert process.stdout is not None
        for line in process.stdout:
            output.append(line)
            if log:
                log.write(line)
        return process.wait(), "".join(output)
    except BaseException:
        _stop_group(process)
        raise


def _stop_group(process: subprocess.Popen[str], grace: float = 10.0) -> None:
    """The child's session (its process group: the child's PID), TERM then KILL."""
    for signum in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signum)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(grace)
            return


# The developer's hooks (post-checkout, ...) are theirs to run on their checkouts, not on each of the
# tool's: off for every git the tool runs.
GIT = ("git", "-c", "core.hooksPath=/dev/null")


def git(tree: str, *args: str) -> str:
    """git in tree; a failure is a Failure with git's own message."""
    status, output = run([*GIT, "-C", tree, *args])
    if status != 0:
        raise Failure(f"git {' '.join(args)} in {tree}: {output.strip().splitlines()[-1:] or ['failed']}")
    return output


def git_ok(tree: str, *args: str) -> bool:
    return run([*GIT, "-C", tree, *args])[0] == 0


def subject(tree: str, commit: str) -> str:
    return git(tree, "log", "-1", "--format=%s", commit).strip()


# --- before anything is checked out or built -----------------------------------------------------
def check_tree(settings: Settings, command: Sequence[str]) -> None:
    """Refusals about the developer's tree and kdevbox's build, each one line naming what to do."""
    source = settings.source
    if not git_ok(source, "rev-parse", "--verify", "-q", "HEAD"):
        raise usage(
            f"{source} is no git checkout with commits: kdevbox-kernel checks commits (kernel.source: git)"
        )
    if not (
        os.path.exists(settings.configured) and os.path.exists(posixpath.join(settings.build, ".config"))
    ):
        raise usage(f"{settings.build} is not configured by kdevbox: run kdevbox's deploys/kernel.py first")
    dirty = run([*GIT, "-C", source, "status", "--porcelain", "--untracked-files=no"])[1].strip()
    if dirty:
        raise usage(
            f"{source} has uncommitted changes: commit or stash them first (series and bisect check commits)"
        )
    bisecting = git(source, "rev-parse", "--git-path", "BISECT_START").strip()
    if os.path.exists(posixpath.join(source, bisecting)):
        raise usage(f"a bisect of yours is in progress in {source}: end it with `git bisect reset` first")
    if command and not os.access(settings.vm, os.X_OK):
        raise usage(f"no {settings.vm} to boot CMD with: run kdevbox's deploys/guest_image.py first")


def resolve(source: str, rev: str, what: str) -> str:
    status, output = run([*GIT, "-C", source, "rev-parse", "--verify", "-q", f"{rev}^{{commit}}"])
    if status != 0:
        if rev == "@{upstream}":
            raise usage(
                "your branch has no upstream: give RANGE, e.g. `kdevbox-kernel series origin/master..HEAD`"
            )
        raise usage(f"{what} {rev!r} is no commit in {source}: give a branch, tag or commit id")
    return output.strip()


def series_commits(source: str, base: str, tip: str, text: str) -> list[str]:
    """The commits of base..tip, oldest first; empty ranges and merges refused."""
    commits = git(source, "rev-list", "--reverse", "--topo-order", f"{base}..{tip}").split()
    if not commits:
        raise usage(
            f"RANGE {text} has no commits: give BASE..TIP with commits in it, e.g. origin/master..HEAD"
        )
    merges = git(source, "rev-list", "--merges", f"{base}..{tip}").split()
    if merges:
        raise usage(
            f"RANGE {text} holds merge {merges[0][:12]}: check a linear series (BASE..TIP on one branch)"
        )
    return commits


# --- the tool's own worktree and build dir -------------------------------------------------------
@contextlib.contextmanager
def locked(settings: Settings) -> Iterator[None]:
    """One run at a time on the tool's worktree and build dirs."""
    os.makedirs(settings.work, exist_ok=True)
    with open(posixpath.join(settings.work, "lock"), "a+") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise Failure(f"another kdevbox-kernel run uses {settings.work}: wait for it to end") from None
        yield


def ensure_worktree(settings: Settings, commit: str) -> None:
    """The tool's detached worktree of the developer's repository (shared objects: the developer's
    commits are there at once), made when missing, left on its commit between runs. An interrupted
    bisect in it is ended, so a run starts clean."""
    tree = settings.worktree
    if not is_our_worktree(settings):
        shutil.rmtree(tree, ignore_errors=True)
        # --force: this path may still be registered (its dir gone); the developer's other
        # worktrees stay registered (no prune: theirs may be on a disk not mounted now).
        git(settings.source, "worktree", "add", "--force", "-q", "--detach", tree, commit)
        return
    started = git(tree, "rev-parse", "--git-path", "BISECT_START").strip()
    if os.path.exists(posixpath.join(tree, started)):
        say("an earlier bisect was interrupted: starting clean")
        git(tree, "bisect", "reset")


def is_our_worktree(settings: Settings) -> bool:
    """Whether the tool's worktree is one of the developer's repository (not gone, not a stray dir
    inside some other repository, not left from a tree since cloned again)."""
    tree = settings.worktree
    status, top = run([*GIT, "-C", tree, "rev-parse", "--show-toplevel"])
    if status != 0 or not os.path.isdir(tree) or top.strip() != os.path.realpath(tree):
        return False
    common = ["rev-parse", "--path-format=absolute", "--git-common-dir"]
    ours, theirs = run([*GIT, "-C", settings.source, *common])[1], run([*GIT, "-C", tree, *common])[1]
    return os.path.realpath(ours.strip()) == os.path.realpath(theirs.strip())


def checkout(settings: Settings, commit: str) -> None:
    """Only the tool's worktree moves (git changes only the files that differ: make sees those)."""
    git(settings.worktree, "checkout", "-q", "--force", "--detach", commit)


def prepare_build(settings: Settings, w1: bool) -> str:
    """The build dir, with kdevbox's .config when it differs (a changed config rebuilds what it
    changes; an unchanged one is left alone, so make's timestamps hold)."""
    build = settings.build_dir(w1)
    os.makedirs(build, exist_ok=True)
    ours, theirs = posixpath.join(build, ".config"), posixpath.join(settings.build, ".config")
    with open(theirs, "rb") as file:
        wanted = file.read()
    try:
        with open(ours, "rb") as file:
            same = file.read() == wanted
    except FileNotFoundError:
        same = False
    if not same:
        shutil.copyfile(theirs, ours)
    return build


def make_argv(settings: Settings, build: str, w1: bool, *targets: str) -> list[str]:
    """kdevbox's own make command line, on the tool's worktree and build dir."""
    jobs = f"-j{os.cpu_count() or 1}"
    extra = ["W=1"] if w1 else []
    return [
        "make",
        "-s",
        jobs,
        "-C",
        settings.worktree,
        f"O={build}",
        *settings.make_variables,
        *extra,
        *targets,
    ]


def build(settings: Settings, build_dir: str, w1: bool, log: IO[str]) -> tuple[bool, str, float]:
    """make (incremental): whether it built, its output, its seconds."""
    begun = time.monotonic()
    log.write(f"$ {shlex.join(make_argv(settings, build_dir, w1))}\n")
    status, output = run(make_argv(settings, build_dir, w1), log=log)
    return status == 0, output, time.monotonic() - begun


def compile_objects(settings: Settings, build_dir: str, w1: bool, objects: list[str], log: IO[str]) -> str:
    """The output of compiling objects afresh at the worktree's commit (their warnings): only
    objects this configuration builds (they are in the build dir)."""
    present = [o for o in objects if os.path.exists(posixpath.join(build_dir, o))]
    if not present:
        return ""
    for obj in present:
        os.remove(posixpath.join(build_dir, obj))
    argv = make_argv(settings, build_dir, w1, *present)
    log.write(f"$ {shlex.join(argv)}\n")
    return run(argv, log=log)[1]


def checkpatch(settings: Settings, commit: str, log: IO[str]) -> Checkpatch:
    argv = ["perl", "scripts/checkpatch.pl", "--strict", "--terse", "--show-types", "-g", commit]
    log.write(f"$ {shlex.join(argv)}\n")
    status, output = run(argv, cwd=settings.worktree, log=log)
    return parse_checkpatch(output, status)


def boot(
    settings: Settings, build_dir: str, command: Sequence[str], timeout: float, log: IO[str]
) -> CommandRun:
    """CMD in a one-shot guest on the build's kernel (kdevbox-vm exec --json)."""
    argv = [settings.vm, "exec", "--kernel", posixpath.join(build_dir, BOOT_IMAGE), "--json"]
    argv += ["--timeout", f"{timeout:g}", "--", *command]
    log.write(f"$ {shlex.join(argv)}\n")
    begun = time.monotonic()
    process = subprocess.Popen(
        argv,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        errors="replace",
    )
    try:
        shown, stderr = process.communicate()
    except BaseException:  # kdevbox-vm stops its QEMU on SIGTERM
        process.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(30)
        raise
    log.write(shown + stderr)
    return command_run(process.returncode, shown, stderr, time.monotonic() - begun)


# --- series ----------------------------------------------------------------------------------------
def check_commit(
    settings: Settings, args: argparse.Namespace, build_dir: str, parent: str, commit: str, logs: str
) -> CommitResult:
    """One commit: its touched files' warnings at its parent (the worktree is there), then checkout,
    build, its new warnings, checkpatch, CMD."""
    begun = time.monotonic()
    result = CommitResult(
        commit, subject(settings.worktree, commit), log=posixpath.join(logs, f"{commit[:12]}.log")
    )
    touched = git(settings.worktree, "diff", "--name-only", "--no-renames", parent, commit).split()
    with open(result.log, "w", encoding="utf-8") as log:
        before = parse_warnings(
            compile_objects(settings, build_dir, args.w1, objects_of(touched), log),
            settings.worktree,
            build_dir,
        )
        checkout(settings, commit)
        result.built, output, result.build_seconds = build(settings, build_dir, args.w1, log)
        if result.built:
            after = parse_warnings(output, settings.worktree, build_dir)
            result.warnings = new_warnings(before, after, touched)
        else:
            result.build_error = first_error(output, settings.worktree, build_dir)
        result.checkpatch = checkpatch(settings, commit, log)
        if result.built and args.command:
            result.command = boot(settings, build_dir, args.command, args.timeout, log)
    result.seconds = time.monotonic() - begun
    return result


def cmd_series(settings: Settings, args: argparse.Namespace) -> int:
    check_tree(settings, args.command)
    base_rev, tip_rev = split_range(args.range)
    text = args.range or "@{upstream}..HEAD"
    base, tip = resolve(settings.source, base_rev, "BASE"), resolve(settings.source, tip_rev, "TIP")
    commits = series_commits(settings.source, base, tip, text)
    results: list[CommitResult] = []
    with locked(settings):
        ensure_worktree(settings, base)
        build_dir = prepare_build(settings, args.w1)
        logs = settings.logs("series")
        shutil.rmtree(logs, ignore_errors=True)
        os.makedirs(logs)
        checkout(settings, base)
        with open(posixpath.join(logs, "base.log"), "w", encoding="utf-8") as log:
            say(f"building the base {base[:12]} ({subject(settings.worktree, base)}) in {build_dir}")
            built, _, seconds = build(settings, build_dir, args.w1, log)
        say(f"base {'built' if built else 'does NOT build'} in {seconds:.0f} s; {len(commits)} to check")
        parent = base
        for number, commit in enumerate(commits, 1):
            say(f"[{number}/{len(commits)}] {commit[:12]} {subject(settings.worktree, commit)}")
            results.append(check_commit(settings, args, build_dir, parent, commit, logs))
            parent = commit
    ok = all(r.ok for r in results)
    shown = {"range": text, "base": base, "ok": ok, "w1": args.w1, "commits": [r.as_json() for r in results]}
    report = json.dumps(shown, indent=2)
    with open(posixpath.join(logs, "series.json"), "w", encoding="utf-8") as file:  # a table run's data too
        file.write(report + "\n")
    if args.json:
        print(report)
    else:
        print(table(results, bool(args.command)))
        print(f"{sum(r.ok for r in results)} of {len(results)} commits pass; logs and series.json in {logs}")
    return 0 if ok else EXIT_FAILED


# --- bisect ----------------------------------------------------------------------------------------
def step_record(path: str, record: dict[str, Any]) -> None:
    with open(path, "a", encoding="utf-8") as file:
        file.write(json.dumps(record) + "\n")


def judge(settings: Settings, args: argparse.Namespace, role: str) -> tuple[int, str]:
    """Build the worktree's commit and boot CMD up to --tries times: its verdict (git bisect run's
    exit status) and its log; its record kept with role (a step, or an end checked first)."""
    begun = time.monotonic()
    commit = git(settings.worktree, "rev-parse", "HEAD").strip()
    logs = settings.logs("bisect")
    steps = read_steps(posixpath.join(logs, "steps.jsonl"))
    label = f"step-{sum(step['role'] == STEP_ROLE for step in steps) + 1:02d}" if role == STEP_ROLE else role
    log_path = posixpath.join(logs, f"{label.lower()}-{commit[:12]}.log")
    build_dir = settings.build_dir(args.w1)
    runs: list[CommandRun] = []
    with open(log_path, "w", encoding="utf-8") as log:
        built, _, build_seconds = build(settings, build_dir, args.w1, log)
        for _ in range(args.tries if built else 0):
            runs.append(boot(settings, build_dir, args.command, args.timeout, log))
            if runs[-1].ok or runs[-1].outcome in NO_VERDICT:
                break
    verdict = step_verdict(built, runs)
    named = VERDICT_NAMES[verdict]
    seconds = time.monotonic() - begun
    step_record(
        posixpath.join(logs, "steps.jsonl"),
        {
            "role": role,
            "commit": commit,
            "subject": subject(settings.worktree, commit),
            "built": built,
            "build_seconds": round(build_seconds, 1),
            "tries": [run.summary for run in runs],
            "verdict": named,
            "seconds": round(seconds, 1),
            "log": log_path,
        },
    )
    shown = label.replace("-", " ") if role == STEP_ROLE else f"checking {role}"
    say(f"{shown}: {commit[:12]} {named} ({seconds:.0f} s, log: {log_path})")
    return verdict, log_path


def cmd_bisect_step(settings: Settings, args: argparse.Namespace) -> int:
    """One step of `git bisect run` (this program runs itself): judge the worktree's commit."""
    return judge(settings, args, STEP_ROLE)[0]


def check_ends(settings: Settings, args: argparse.Namespace, good: str, bad: str) -> None:
    """BAD must fail CMD and GOOD pass it before git bisect takes them on trust: a BAD that passes (a
    flaky test, a CMD that tests something else) would come out as its own first bad commit, a GOOD
    that fails as the commit after it. BAD first: it is built already when the series was."""
    for role, commit, wanted in ((BAD_END, bad, STEP_BAD), (GOOD_END, good, STEP_GOOD)):
        checkout(settings, commit)
        verdict, log = judge(settings, args, role)
        given = args.bad if role == BAD_END else args.good
        if verdict == wanted:
            continue
        if verdict == STEP_SKIP:
            raise Failure(
                f"{role} {given} does not build: give one that builds, or --trust-ends (its log: {log})"
            )
        if verdict == STEP_ABORT:
            raise Failure(f"{role} {given} could not be judged: kdevbox-vm ran nothing (its log: {log})")
        if role == BAD_END:
            raise Failure(
                f"BAD {given} passes CMD: nothing to bisect (CMD tests something else, or fails only now "
                f"and then: give a BAD where it fails each time, or --trust-ends; its log: {log})"
            )
        raise Failure(
            f"GOOD {given} fails CMD too: give an older good commit, or --trust-ends (its log: {log})"
        )


FIRST_BAD = re.compile(r"^([0-9a-f]{40}) is the first bad commit$", re.M)
ONLY_SKIPPED = "There are only 'skip'ped commits left to test."


def bisect_answer(output: str) -> tuple[str | None, list[str]]:
    """git bisect run's answer: the first bad commit, or (all skipped) the candidates it names."""
    found = FIRST_BAD.search(output)
    if found:
        return found[1], []
    if ONLY_SKIPPED in output:
        tail = output.split(ONLY_SKIPPED, 1)[1]
        return None, re.findall(r"^([0-9a-f]{40})$", tail, re.M)
    return None, []


def read_steps(path: str) -> list[dict[str, Any]]:
    try:
        with open(path, encoding="utf-8") as file:
            return [json.loads(line) for line in file if line.strip()]
    except FileNotFoundError:
        return []


def steps_table(steps: list[dict[str, Any]]) -> str:
    """One row per commit judged: the ends checked first (BAD, GOOD), then the steps as git bisect
    run took them."""
    if not steps:
        return "no step ran"
    head = ["step", "commit", "subject", "build", "tries", "verdict", "seconds"]
    numbers = iter(range(1, len(steps) + 1))
    rows = [head] + [
        [
            str(next(numbers)) if step["role"] == STEP_ROLE else step["role"],
            step["commit"][:12],
            step["subject"][:40],
            "ok" if step["built"] else "FAILED",
            ", ".join(step["tries"]) or "-",
            step["verdict"],
            f"{step['seconds']:.0f}",
        ]
        for step in steps
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(head))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows)


def cmd_bisect(settings: Settings, args: argparse.Namespace) -> int:
    if not args.command:
        raise usage("give the test: bisect GOOD BAD -- CMD [ARG...] (its exit status judges each commit)")
    check_tree(settings, args.command)
    good = resolve(settings.source, args.good, "GOOD")
    bad = resolve(settings.source, args.bad, "BAD")
    if good == bad or not git_ok(settings.source, "merge-base", "--is-ancestor", good, bad):
        raise usage(f"GOOD {args.good} is not an ancestor of BAD {args.bad}: give an older good commit first")
    with locked(settings):
        ensure_worktree(settings, bad)
        prepare_build(settings, args.w1)
        logs = settings.logs("bisect")
        shutil.rmtree(logs, ignore_errors=True)
        os.makedirs(logs)
        checkout(settings, bad)
        if not args.trust_ends:
            check_ends(settings, args, good, bad)
        step = [sys.executable, "-I", os.path.abspath(__file__), "--settings", args.settings, "bisect-step"]
        step += ["--tries", str(args.tries), "--timeout", f"{args.timeout:g}", *(["--w1"] if args.w1 else [])]
        step += ["--", *args.command]
        try:
            git(settings.worktree, "bisect", "start", bad, good)
            say(f"bisecting {good[:12]}..{bad[:12]} in {settings.worktree} (your checkout stays where it is)")
            status, output = run([*GIT, "-C", settings.worktree, "bisect", "run", *step], log=sys.stderr)
            with open(posixpath.join(logs, "bisect-run.log"), "w", encoding="utf-8") as log:
                log.write(output + git(settings.worktree, "bisect", "log"))
        finally:
            with contextlib.suppress(Failure):
                git(settings.worktree, "bisect", "reset")
    print(steps_table(read_steps(posixpath.join(logs, "steps.jsonl"))))
    first, candidates = bisect_answer(output)
    if first:
        print(f"first bad commit: {first[:12]} {subject(settings.source, first)}")
        return 0
    if candidates:
        print("the first bad commit is one of (the others did not build):")
        for commit in candidates:
            print(f"    {commit[:12]} {subject(settings.source, commit)}")
        return EXIT_FAILED
    say(f"git bisect run ended with {status} and no first bad commit: see {logs}/bisect-run.log")
    return EXIT_FAILED


# --- the command line ------------------------------------------------------------------------------
EXIT_HELP = f"""exit statuses:
  0    every commit passed (series); the first bad commit was found (bisect)
  {EXIT_FAILED}    a commit failed (series); no single first bad commit (bisect); a tool failed
  {EXIT_USAGE}    usage or bad input (a dirty tree, an empty range, ...): nothing was checked out or built
  {EXIT_INTERRUPTED}  interrupted: your tree, index and branch are as they were"""


def _number(kind: type[float] | type[int], least: float, most: float, unit: str) -> Callable[[str], float]:
    """An argparse type: a number of unit from least to most, said back when it is not."""

    def parse(text: str) -> float:
        try:
            value = kind(text)
        except ValueError:
            value = least - 1
        if not least <= value <= most:
            raise argparse.ArgumentTypeError(f"{text!r}: give a number of {unit} from {least:g} to {most:g}")
        return value

    return parse


SECONDS = _number(float, 1, 24 * 3600, "seconds")
TRIES = _number(int, 1, 20, "tries")


def build_parser() -> argparse.ArgumentParser:
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(
        prog="kdevbox-kernel",
        description="Check a series commit by commit, or bisect a regression, with your kdevbox build's\n"
        "configuration, in a worktree and build dir of kdevbox-kernel's own: your checkout, index and\n"
        "branch are never touched. `kdevbox-kernel COMMAND --help` tells more.",
        epilog=EXIT_HELP,
        formatter_class=formatter,
    )
    parser.add_argument("--settings", required=True, metavar="FILE", help=argparse.SUPPRESS)
    commands = parser.add_subparsers(dest="subcommand", required=True, metavar="COMMAND")

    def sub(name: str, text: str, hidden: bool = False) -> argparse.ArgumentParser:
        shown: dict[str, Any] = {} if hidden else {"help": text}
        command = commands.add_parser(
            name, description=text, epilog=EXIT_HELP, formatter_class=formatter, **shown
        )
        command.add_argument(
            "--w1", action="store_true", help="build with W=1 (more warnings; its own build dir)"
        )
        command.add_argument(
            "--timeout",
            type=SECONDS,
            default=COMMAND_TIMEOUT,
            metavar="SECONDS",
            help=f"CMD's bound in the guest (default {COMMAND_TIMEOUT:.0f}; past it the commit fails)",
        )
        return command

    series = sub(
        "series",
        "for each commit of RANGE (default: your branch since its upstream), oldest first: build it, its new "
        "compiler warnings in the files it touches, checkpatch.pl --strict, and CMD in a one-shot guest on "
        "its kernel; a table (or --json); exit 1 when a commit fails",
    )
    series.add_argument("--json", action="store_true", help="print the results as JSON")
    series.add_argument("range", nargs="?", metavar="RANGE", help="BASE..TIP, e.g. origin/master..HEAD")
    bisect = sub(
        "bisect",
        "git bisect run from GOOD to BAD: each step builds (a commit that does not build is skipped), boots "
        "one shot and runs CMD, whose exit status judges it (a panic, oops or timeout is bad); prints the "
        "first bad commit",
    )
    bisect.add_argument(
        "--tries", type=TRIES, default=1, help="runs of CMD before a commit is bad (flaky tests)"
    )
    bisect.add_argument(
        "--trust-ends",
        action="store_true",
        help="do not first check that BAD fails CMD and GOOD passes it (two builds and boots fewer)",
    )
    bisect.add_argument("good", metavar="GOOD")
    bisect.add_argument("bad", metavar="BAD")
    step = sub("bisect-step", "one step of git bisect run (kdevbox-kernel bisect runs it)", hidden=True)
    step.add_argument("--tries", type=TRIES, default=1)
    return parser


def split_command(argv: Sequence[str]) -> tuple[list[str], list[str]]:
    """(kdevbox-kernel's arguments, CMD): CMD is everything after the first `--`, untouched."""
    words = list(argv)
    if "--" not in words:
        return words, []
    at = words.index("--")
    return words[:at], words[at + 1 :]


def _interrupt(signum: int, frame: object) -> NoReturn:
    raise Interrupted(signum)


def main(argv: Sequence[str] | None = None) -> int:
    own, command = split_command(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(own)
    args.command = command
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _interrupt)
    try:
        settings = Settings.load(args.settings)
        if args.subcommand == "bisect-step":
            return cmd_bisect_step(settings, args)
        return cmd_series(settings, args) if args.subcommand == "series" else cmd_bisect(settings, args)
    except Failure as failure:
        say(str(failure))
        return failure.status
    except (KeyboardInterrupt, Interrupted):
        say("interrupted: your tree, index and branch are as they were")
        return STEP_ABORT if args.subcommand == "bisect-step" else EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
