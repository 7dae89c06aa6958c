"""Fixtures for real throwaway hosts: a chroot copy and an sshd host per test module."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests import testhosts
from tests.kernel_stand_in import TAG, kernel_git_repo
from tests.neovim_stand_in import PLUGIN_FILES, ReleaseTarball, build_plugin_repos, build_release_tarball

REPO = Path(__file__).resolve().parents[2]
DEVBOX = REPO / "deploys" / "devbox.py"
APT_PROXY_ONLY = REPO / "tests" / "deploys" / "apt_proxy_only.py"
KERNEL = REPO / "deploys" / "kernel.py"
# Guest images have their own test (test_guest.py); other devbox tests leave them out to save minutes.
NO_GUEST = {"guest": {"enabled": False}}
# For tests about something else: no guest image, no patch mail tools, no low-level tools.
LEAN = {**NO_GUEST, "patch_mail": {"enabled": False}, "tools": {"packages": []}}


@pytest.fixture(scope="session")
def base_rootfs() -> Path:
    return testhosts.base_rootfs()


@pytest.fixture()
def chroot_root(tmp_path_factory: pytest.TempPathFactory, base_rootfs: Path) -> Iterator[Path]:
    """A fresh Debian root, reached with pyinfra's @chroot and testinfra's chroot backend."""
    with testhosts.throwaway_rootfs(tmp_path_factory.mktemp("host")) as root:
        yield root


@pytest.fixture(scope="module")
def ssh_host(tmp_path_factory: pytest.TempPathFactory, base_rootfs: Path) -> Iterator[testhosts.SshHost]:
    """A fresh Debian root served by its own sshd on 127.0.0.1."""
    with (
        testhosts.throwaway_rootfs(tmp_path_factory.mktemp("host")) as root,
        testhosts.ssh_host(root, tmp_path_factory.mktemp("ssh")) as host,
    ):
        yield host


@dataclass(frozen=True)
class EditorUpstreams:
    """Local stand-ins for neovim's release downloads and the plugins' git repos."""

    repos: Path
    git_url: str
    release: ReleaseTarball
    release_url: str

    @property
    def plugin_names(self) -> list[str]:
        return list(PLUGIN_FILES)

    def neovim_settings(self, **overrides: Any) -> dict[str, Any]:
        """`neovim` settings that fetch everything from the stand-ins (release source by default)."""
        settings: dict[str, Any] = {
            "source": "release",
            "release_version": self.release.version,
            "release_sha256": self.release.sha256,
            "release_url": self.release_url + "/v{version}/nvim-linux-x86_64.tar.gz",
            "plugins": {name: {"url": f"{self.git_url}/{name}.git"} for name in PLUGIN_FILES},
        }
        settings.update(overrides)
        return settings


@pytest.fixture(scope="session")
def editor_upstreams(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EditorUpstreams]:
    repos = build_plugin_repos(tmp_path_factory.mktemp("plugin-repos"))
    served = tmp_path_factory.mktemp("nvim-releases")
    release = build_release_tarball(served)
    with testhosts.git_daemon(repos) as git_url, testhosts.http_server(served) as http_url:
        yield EditorUpstreams(repos, git_url, release, http_url)


InventoryHosts = list[tuple[str, dict[str, Any]]]


@pytest.fixture(scope="session")
def kernel_repo_url() -> Iterator[str]:
    """Debian's linux-source-6.1 as a tagged git repo, served by git daemon on 127.0.0.1."""
    repo = kernel_git_repo()
    with testhosts.git_daemon(repo.parent, repo) as url:
        yield f"{url}/{repo.name}"


@pytest.fixture(scope="session")
def kernel_lab(tmp_path_factory: pytest.TempPathFactory, base_rootfs: Path) -> Iterator[Path]:
    """One chroot host for the kernel and guest tests (a kernel tree is fetched and built once),
    with caches shared by test runs: ccache (its keys hold in-host paths, so later runs hit) and
    the guest images' debootstrapped base."""
    shared = {
        testhosts.CACHE_DIR / "ccache": f"home/{testhosts.DEV_USER}/.cache/ccache",
        testhosts.CACHE_DIR / "guest-bases": "var/cache/kdevbox/guest-bases",
    }
    with testhosts.throwaway_rootfs(tmp_path_factory.mktemp("kernel-lab")) as root:
        for cache, inside in shared.items():
            cache.mkdir(exist_ok=True)
            (root / inside).mkdir(parents=True)
            subprocess.run(["mount", "--bind", str(cache), str(root / inside)], check=True)
        home_cache = root / f"home/{testhosts.DEV_USER}/.cache"
        subprocess.run(["chown", "-R", "1000:1000", str(home_cache)], check=True)
        try:
            yield root
        finally:
            for inside in shared.values():
                subprocess.run(["umount", "--lazy", str(root / inside)], check=True)


def guest_kernel_settings(git_url: str, **changes: Any) -> dict[str, Any]:
    """`kernel` settings for a small kernel that boots in kdevbox's guest: tinyconfig + guest."""
    return {
        "source": "git",
        "git_url": git_url,
        "tag": TAG,
        "base": "tinyconfig",
        "fragments": ["guest"],
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
