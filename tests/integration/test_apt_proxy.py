"""apt in a test host really goes through the configured proxy, with credentials, and stops when unset."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.apt_stand_in import PACKAGE, REPO_HOST, build_repo
from tests.proxy_stand_in import Files, UpstreamProxy, upstream_proxy
from tests.setups import APT_PROXY_ONLY, deploy, pyinfra_cli, verify, write_inventory
from tests.testhosts import DEV_USER

PROXY_CONF = "etc/apt/apt.conf.d/80kdevbox-proxy"
SECRET = "s3cret-Pr0xy"


@pytest.fixture()
def stand_in_deb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_repo(tmp_path_factory.mktemp("apt"))


@pytest.fixture()
def proxy(stand_in_deb: Path) -> Iterator[UpstreamProxy]:
    with upstream_proxy({REPO_HOST: Files(stand_in_deb.parent)}, "ada", SECRET) as running:
        yield running


def chroot_apt(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    # The stand-in package must not join the download cache test hosts share.
    return subprocess.run(
        ["chroot", str(root), "apt-get", "-q", "-o", "APT::Keep-Downloaded-Packages=false", *args],
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_apt_goes_through_proxy_then_proxy_is_removed(
    chroot_root: Path, proxy: UpstreamProxy, stand_in_deb: Path, tmp_path: Path
) -> None:
    # The only apt source is on a made-up host name: reachable through the proxy, and only so.
    (chroot_root / "etc/apt/sources.list").unlink()
    (chroot_root / "etc/apt/sources.list.d/kdevbox-test.list").write_text(
        f"deb [trusted=yes] http://{REPO_HOST}/ ./\n"
    )
    name = f"@chroot{chroot_root}"
    settings = {
        "user": DEV_USER,
        "apt_proxy": {"http": f"http://ada:{SECRET}@127.0.0.1:{proxy.port}", "no_proxy": ["deb.example.org"]},
    }
    inventory = write_inventory(tmp_path, [(name, settings)])

    # What the user runs, with diffs and verbose output: the password never shows.
    run = pyinfra_cli(inventory, "--diff", "-vv", deploy_file=APT_PROXY_ONLY)
    assert run.returncode == 0, run.stdout + run.stderr
    assert SECRET not in run.stdout + run.stderr
    assert f"http://***@127.0.0.1:{proxy.port}" in run.stdout + run.stderr
    assert (chroot_root / PROXY_CONF).stat().st_mode & 0o777 == 0o600

    update = chroot_apt(chroot_root, "update")
    assert update.returncode == 0, update.stdout + update.stderr
    install = chroot_apt(chroot_root, "install", "-y", PACKAGE)
    assert install.returncode == 0, install.stdout + install.stderr
    assert (chroot_root / "usr/share" / PACKAGE / "hello.txt").is_file()
    fetched = [url for method, url, ok in proxy.log.requests if ok]
    assert any(url.endswith("/Packages") or "/Packages." in url for url in fetched), proxy.log.requests
    assert f"http://{REPO_HOST}/./{stand_in_deb.name}" in fetched, proxy.log.requests
    assert not (chroot_root / "var/cache/apt/archives" / stand_in_deb.name).exists()

    checked = verify(inventory, "kdevbox.verify.test_apt_proxy")
    assert checked.returncode == 0 and checked.failed == 0, checked.output
    assert deploy(inventory, APT_PROXY_ONLY)[name]["changed"] == []

    # Unset: the file goes, and apt no longer has a proxy.
    write_inventory(tmp_path, [(name, {"user": DEV_USER})])
    assert deploy(inventory, APT_PROXY_ONLY)[name]["changed"] == [
        [f"apt proxy | Remove /{PROXY_CONF} (no apt proxy configured)"]
    ]
    assert not (chroot_root / PROXY_CONF).exists()
    dump = subprocess.run(
        ["chroot", str(chroot_root), "apt-config", "dump", "Acquire"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "127.0.0.1" not in dump
    assert verify(inventory, "kdevbox.verify.test_apt_proxy").returncode == 0
