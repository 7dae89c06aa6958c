"""Kernel settings, fragments and kernel.org resolution, without a host (kernel.org is a local
releases.json stand-in on 127.0.0.1)."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from kdevbox.config import Kernel
from kdevbox.facts import CHANGED_SHOWN, KernelBuild, KernelBuildState
from kdevbox.kconfig import fragment_text, requested_options
from kdevbox.kernel_org import KernelOrgError, resolve
from kdevbox.tasks.kernel import KernelSteps, decide, selftests_stamp, wslconfig_kernel_line
from tests import testhosts
from tests.kernel_stand_in import Release, serve_releases

LINES = [
    Release("6.13-rc1", "mainline", "t/linux-6.13-rc1.tar.gz"),
    Release("6.12.1", "stable", "v6.x/linux-6.12.1.tar.xz"),
    Release("6.11.10", "stable", "v6.x/linux-6.11.10.tar.xz"),
    Release("6.6.63", "longterm", "v6.x/linux-6.6.63.tar.xz"),
    Release("5.15.173", "longterm", "v5.x/linux-5.15.173.tar.xz"),
]


@pytest.fixture(scope="module")
def kernel_org(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str]]:
    """(the served folder, the releases.json URL)."""
    served = tmp_path_factory.mktemp("kernel.org")
    with testhosts.http_server(served) as url:
        serve_releases(served, url, LINES)
        yield served, f"{url}/releases.json"


@pytest.mark.parametrize(
    ("channel", "version"),
    [("stable", "6.12.1"), ("longterm", "6.6.63"), ("longterm:5.15", "5.15.173"), ("stable:6.11", "6.11.10")],
)
def test_channels_resolve_with_published_sums(
    kernel_org: tuple[Path, str], channel: str, version: str
) -> None:
    served, url = kernel_org
    release = resolve(channel, url)
    tarball = next(line.tarball for line in LINES if line.version == version)
    assert (release.version, release.tarball_url) == (version, url.replace("releases.json", tarball))
    assert release.sha256 == hashlib.sha256((served / tarball).read_bytes()).hexdigest()


def test_unknown_channel_lists_what_exists(kernel_org: tuple[Path, str]) -> None:
    with pytest.raises(KernelOrgError, match=r"no release on channel 'longterm:4\.4'.*longterm 5\.15\.173"):
        resolve("longterm:4.4", kernel_org[1])


def test_snapshot_without_sums_points_at_git(kernel_org: tuple[Path, str]) -> None:
    with pytest.raises(KernelOrgError, match=r"use kernel\.source 'git' with tag v6\.13-rc1"):
        resolve("mainline", kernel_org[1])


def test_unreachable_and_not_releases_json() -> None:
    port = testhosts.free_port()
    with pytest.raises(KernelOrgError, match=f"cannot fetch http://127.0.0.1:{port}/releases.json"):
        resolve("stable", f"http://127.0.0.1:{port}/releases.json")


def test_requested_options_normalise_and_last_wins() -> None:
    text = 'CONFIG_A=y\n# a comment\nCONFIG_B=n\n# CONFIG_C is not set\nCONFIG_A=m\nCONFIG_S="x y"\n'
    assert requested_options(text) == [
        ("CONFIG_A=m", "CONFIG_A"),
        ("# CONFIG_B is not set", "CONFIG_B"),
        ("# CONFIG_C is not set", "CONFIG_C"),
        ('CONFIG_S="x y"', "CONFIG_S"),
    ]


def test_guest_fragment_and_inline_options_merge() -> None:
    text = fragment_text(Kernel(fragments=["guest"], options=["CONFIG_VIRTIO_BLK=n"]))
    requested = dict((symbol, line) for line, symbol in requested_options(text))
    assert requested["CONFIG_DEVTMPFS_MOUNT"] == "CONFIG_DEVTMPFS_MOUNT=y"
    assert requested["CONFIG_VIRTIO_BLK"] == "# CONFIG_VIRTIO_BLK is not set"  # inline wins


def test_bad_kernel_settings_are_refused() -> None:
    for bad in (
        {"fragments": ["gust"]},
        {"options": ["CONFIG_X=maybe"]},
        {"source": "path"},
        {"channel": "lts"},
        {"wsl_kernel_path": "C:/kernel"},
    ):
        with pytest.raises(ValueError):
            Kernel.model_validate(bad)


def test_wslconfig_line_doubles_backslashes() -> None:
    assert (
        wslconfig_kernel_line("/mnt/c/Users/ada/kdevbox/bzImage")
        == r"kernel=C:\\Users\\ada\\kdevbox\\bzImage"
    )


@pytest.mark.parametrize(
    ("version", "source", "refusal"),
    [
        ("6.6.1/../../.ssh", "v6.x/linux-6.6.1.tar.xz", "not a kernel version"),
        ("6.6.1;id>x;#", "v6.x/linux-6.6.1.tar.xz", "not a kernel version"),
        ("6.6.1", "v6.x/../../etc/linux-6.6.2.tar.xz", "not linux-6.6.1.tar"),
        ("6.6.1", "OFFSITE/linux-6.6.1.tar.xz", "off http://127.0.0.1"),
    ],
)
def test_hostile_releases_json_names_no_path(tmp_path: Path, version: str, source: str, refusal: str) -> None:
    """releases.json is remote data: what it says must be a kernel version and a kernel.org tarball
    before it names a directory or reaches make."""
    with testhosts.http_server(tmp_path) as url:
        tarball = (
            source.replace("OFFSITE", "https://evil.example.org")
            if "OFFSITE" in source
            else f"{url}/{source}"
        )
        entry = {"moniker": "longterm", "version": version, "source": tarball, "iseol": False}
        (tmp_path / "releases.json").write_text(json.dumps({"releases": [entry]}))
        with pytest.raises(KernelOrgError, match=re.escape(refusal)):
            resolve.__wrapped__("longterm", f"{url}/releases.json")


def test_decide_does_no_more_than_make_needs() -> None:
    """The kernel run's steps from the build dir's state: what the no-op and one-file loops rely on."""
    stamp, kernel = "s1", Kernel(selftests=["size"])
    done = KernelBuild(
        "s1",
        "s1",
        changed=(),
        has_image=True,
        release="6.1",
        has_compile_commands=True,
        selftests=selftests_stamp("s1", kernel),
    )
    assert decide(kernel, done, stamp) == KernelSteps(False, False, False, False, False, False, rebuilt=False)
    # An edited .c file: make, no new database (its entries are the same), no new selftests.
    edited = decide(kernel, replace(done, changed=("kernel/fork.c",)), stamp)
    assert edited == KernelSteps(False, True, False, False, False, False, rebuilt=True)
    # A header, a Makefile, a selftest's source, or many files: the database and selftests too.
    for changed in (("include/uapi/linux/sched.h",), ("kernel/Makefile",), ("tools/testing/x.c",)):
        assert decide(kernel, replace(done, changed=changed), stamp) == KernelSteps(
            False, True, True, False, True, False, rebuilt=True
        ), changed
    many = tuple(f"kernel/f{n}.c" for n in range(CHANGED_SHOWN + 1))
    assert decide(kernel, replace(done, changed=many), stamp).compile_commands
    fresh = decide(kernel, KernelBuildState.default(), stamp)
    assert fresh.configure and fresh.compile and fresh.compile_commands and fresh.rebuilt and not fresh.clean
    # A recorder with no database to extend starts clean; gen just regenerates it.
    recorder = Kernel(compile_commands="compiledb")
    no_database = replace(done, has_compile_commands=False, selftests=None)
    assert decide(recorder, no_database, stamp).clean
    assert decide(Kernel(), no_database, stamp) == KernelSteps(
        False, True, True, False, False, False, rebuilt=False
    )
    assert decide(Kernel(), replace(no_database, changed=("kernel/fork.c",)), stamp).compile_commands
    # Selftests emptied: dropped, nothing rebuilt.
    assert decide(Kernel(), done, stamp) == KernelSteps(
        False, False, False, False, False, True, rebuilt=False
    )
