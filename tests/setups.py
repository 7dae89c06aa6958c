"""What integration tests and benchmarks set up: inventories of throwaway hosts, settings for the
stand-in upstreams, and the two ways a user runs kdevbox (pyinfra, then the verify suite).

A plain module (not a conftest) so bench/ shares it with tests/.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests import testhosts
from tests.data.upstream_facts import UPSTREAM_PINNED_HEADS
from tests.kernel_stand_in import TAG
from tests.neovim_stand_in import GRAMMAR, PLUGIN_FILES, ReleaseTarball, head_commit

REPO = Path(__file__).resolve().parents[1]
DEVBOX = REPO / "deploys" / "devbox.py"
APT_PROXY_ONLY = REPO / "tests" / "deploys" / "apt_proxy_only.py"
KERNEL = REPO / "deploys" / "kernel.py"
# Guest images have their own test (test_guest.py); other devbox tests leave them out to save minutes.
NO_GUEST = {"guest": {"enabled": False}}
# For tests about something else: no guest image, no patch mail tools, no low-level tools.
LEAN = {**NO_GUEST, "patch_mail": {"enabled": False}, "tools": {"packages": []}}


@dataclass(frozen=True)
class EditorUpstreams:
    """neovim's release downloads and the plugins' git repos, served on 127.0.0.1: the stand-ins,
    or (real) the upstreams' own repositories and a real neovim build."""

    repos: Path
    git_url: str
    release: ReleaseTarball
    release_url: str
    real: bool = False

    @property
    def plugin_names(self) -> list[str]:
        return list(PLUGIN_FILES)

    def neovim_settings(self, git_base: str | None = None, **overrides: Any) -> dict[str, Any]:
        """`neovim` settings that fetch everything from the stand-ins (release source by default);
        git_base: where the plugin and grammar repos are reached (default: the git daemon)."""
        base = git_base or self.git_url
        plugins: dict[str, dict[str, str]] = {name: {"url": f"{base}/{name}.git"} for name in PLUGIN_FILES}
        # A commit upstream's branch heads is not in the stand-in: its commit after the last tag is.
        # The real repositories have it: kdevbox's own pin holds.
        for name in () if self.real else UPSTREAM_PINNED_HEADS:
            plugins[name]["ref"] = head_commit(self.repos, name)
        settings: dict[str, Any] = {
            "source": "release",
            "release_version": self.release.version,
            "release_sha256": self.release.sha256,
            "release_url": self.release_url + "/v{version}/nvim-linux-x86_64.tar.gz",
            "plugins": plugins,
            "rst_parser": {"url": f"{base}/{GRAMMAR}.git"},
        }
        settings.update(overrides)
        return settings


InventoryHosts = list[tuple[str, dict[str, Any]]]


def guest_kernel_settings(git_url: str, **changes: Any) -> dict[str, Any]:
    """`kernel` settings for a small kernel that boots in kdevbox's guest: tinyconfig + guest, and
    debug (DWARF, gdb's helpers), so that one lab build serves the guest, gdb and dump tests; with
    module support and one module (dummy), which the guest loads and gdb's lx-symbols finds."""
    return {
        "source": "git",
        "git_url": git_url,
        "tag": TAG,
        "base": "tinyconfig",
        "fragments": ["guest", "debug"],
        "options": ["CONFIG_MODULES=y", "CONFIG_DUMMY=m"],
        "localversion": "-kdevbox-test",
        **changes,
    }


def write_inventory(
    workdir: Path,
    hosts: InventoryHosts | dict[str, InventoryHosts],
    group_data: dict[str, Any] | None = None,
    groups_data: dict[str, dict[str, Any]] | None = None,
) -> Path:
    """A user's setup in miniature: inventory.py (hosts, or groups of hosts) plus group_data/*.py."""
    workdir.mkdir(parents=True, exist_ok=True)
    inventory = workdir / "inventory.py"
    groups = hosts if isinstance(hosts, dict) else {"hosts": hosts}
    inventory.write_text("".join(f"{group} = {members!r}\n" for group, members in groups.items()))
    (workdir / "group_data").mkdir(exist_ok=True)
    for group, data in {"all": group_data or {}, **(groups_data or {})}.items():
        lines = [f"{key} = {value!r}" for key, value in data.items()]
        (workdir / "group_data" / f"{group}.py").write_text("\n".join(lines) + "\n")
    return inventory


def deploy(inventory: Path, deploy_file: Path = DEVBOX, netns: str | None = None) -> dict[str, Any]:
    """Run a deploy through pyinfra's API; per host: failed, changed operation names, operation count.
    With netns, pyinfra (and so every chroot host it reaches) runs in that network namespace."""
    proc = subprocess.run(
        testhosts.in_netns(
            [sys.executable, "-m", "tests.deploy_runner", str(inventory), str(deploy_file)], netns
        ),
        cwd=inventory.parent,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, f"deploy failed:\n{proc.stdout}\n{proc.stderr}"
    report: dict[str, Any] = json.loads(proc.stdout.splitlines()[-1])
    return report


def pyinfra_cli(
    inventory: Path, *args: str, deploy_file: Path = DEVBOX, yes: bool = True, netns: str | None = None
) -> subprocess.CompletedProcess[str]:
    """The command a user runs, for what a user sees: exit status and messages. Without `yes`
    (with --dry, say), pyinfra prints the changes it detects."""
    return subprocess.run(
        testhosts.in_netns(
            ["pyinfra", *(["-y"] if yes else []), *args, str(inventory), str(deploy_file)], netns
        ),
        cwd=inventory.parent,
        capture_output=True,
        text=True,
        timeout=900,
    )


@dataclass(frozen=True)
class VerifyRun:
    returncode: int
    passed: int
    failed: int
    skipped: int
    output: str
    ran: frozenset[str]  # names of the checks that ran (on any host)


def verify(
    inventory: Path, module: str = "kdevbox.verify", extra: list[str] | None = None, netns: str | None = None
) -> VerifyRun:
    """The user-facing check: `pytest --pyargs kdevbox.verify --inventory ...`, counted from junit XML.

    module narrows it to one capability's module (kdevbox.verify.test_apt_proxy) for hosts that only
    got that capability.
    """
    junit = inventory.parent / "verify.xml"
    proc = subprocess.run(
        testhosts.in_netns(
            [
                sys.executable,
                "-m",
                "pytest",
                "-p",
                "no:cacheprovider",
                "--pyargs",
                module,
                "--inventory",
                str(inventory),
                f"--junitxml={junit}",
                "-q",
                *(extra or []),
            ],
            netns,
        ),
        cwd=inventory.parent,
        capture_output=True,
        text=True,
        timeout=600,
    )
    suite = ET.parse(junit).getroot().find("testsuite")
    assert suite is not None, proc.stdout + proc.stderr
    tests, failures, errors, skipped = (
        int(suite.get(k, "0")) for k in ("tests", "failures", "errors", "skipped")
    )
    return VerifyRun(
        proc.returncode,
        tests - failures - errors - skipped,
        failures + errors,
        skipped,
        proc.stdout + proc.stderr,
        frozenset(case.get("name", "").split("[", 1)[0] for case in suite.iter("testcase")),
    )


@dataclass(frozen=True)
class Terminal:
    """A terminal a person types in (tmux on its own socket, 150x40), for what they see on screen."""

    socket: str

    def tmux(self, *args: str) -> str:
        return testhosts.run("tmux", "-L", self.socket, *args).stdout

    def keys(self, *names: str) -> None:
        """Keys by name, as tmux spells them (Space, Enter, Escape, C-c)."""
        self.tmux("send-keys", "-t", "kdevbox", *names)

    def type(self, text: str) -> None:
        self.tmux("send-keys", "-t", "kdevbox", "-l", text)

    def screen(self) -> str:
        return self.tmux("capture-pane", "-p", "-t", "kdevbox")

    def wait_for(self, *texts: str, gone: bool = False, bound: float = 120) -> str:
        """The screen once it shows every text (with gone: none of them). bound only ends a wait
        that would never end; nothing here depends on how fast the machine is."""
        deadline = time.monotonic() + bound
        while True:
            shown = self.screen()
            if all((text in shown) != gone for text in texts):
                return shown
            assert time.monotonic() < deadline, f"waited for {texts} (gone={gone}), the screen:\n{shown}"
            time.sleep(0.2)


@contextmanager
def terminal(root: Path, command: str, user: str = testhosts.DEV_USER) -> Iterator[Terminal]:
    """command as user on a chroot test host, in a login shell in a terminal; its tmux server is
    stopped by its PID afterwards."""
    term = Terminal(f"kdevbox-test-{os.getpid()}-{testhosts.free_port()}")
    term.tmux(
        "new-session", "-d", "-s", "kdevbox", "-x", "150", "-y", "40",
        shlex.join(["chroot", str(root), "su", "-l", user, "-c", command]),
    )  # fmt: skip
    server = int(term.tmux("display-message", "-p", "-t", "kdevbox", "#{pid}").strip())
    try:
        yield term
    finally:
        testhosts.stop_pid(server)
