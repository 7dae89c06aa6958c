"""Fixtures for real throwaway hosts: a chroot copy and an sshd host per test module, the stand-in
upstreams, and the kernel lab. What tests do with them is in tests/setups.py."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import testhosts
from tests.kernel_stand_in import kernel_git_repo
from tests.neovim_stand_in import build_plugin_repos, build_release_tarball
from tests.real_upstreams import SKIP_REASON, real_neovim_release, unpack_upstreams, upstreams_dir
from tests.setups import EditorUpstreams


@pytest.fixture(scope="session")
def base_rootfs() -> Path:
    return testhosts.base_rootfs()


@pytest.fixture()
def chroot_root(tmp_path_factory: pytest.TempPathFactory, base_rootfs: Path) -> Iterator[Path]:
    """A fresh Debian root, reached with pyinfra's @chroot and testinfra's chroot backend."""
    with testhosts.throwaway_rootfs(tmp_path_factory.mktemp("host")) as root:
        yield root


def _served_host(factory: pytest.TempPathFactory, suite: str) -> Iterator[testhosts.SshHost]:
    with (
        testhosts.throwaway_rootfs(factory.mktemp("host"), suite=suite) as root,
        testhosts.ssh_host(root, factory.mktemp("ssh")) as host,
    ):
        yield host


@pytest.fixture(scope="module")
def ssh_host(tmp_path_factory: pytest.TempPathFactory, base_rootfs: Path) -> Iterator[testhosts.SshHost]:
    """A fresh Debian root served by its own sshd on 127.0.0.1."""
    yield from _served_host(tmp_path_factory, testhosts.SUITE)


@pytest.fixture(scope="module")
def trixie_ssh_host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[testhosts.SshHost]:
    """A fresh Debian 13 (trixie) root served by its own sshd on 127.0.0.1."""
    yield from _served_host(tmp_path_factory, "trixie")


@pytest.fixture(scope="session")
def editor_upstreams(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EditorUpstreams]:
    repos = build_plugin_repos(tmp_path_factory.mktemp("plugin-repos"))
    served = tmp_path_factory.mktemp("nvim-releases")
    release = build_release_tarball(served)
    with testhosts.git_daemon(repos) as git_url, testhosts.http_server(served) as http_url:
        yield EditorUpstreams(repos, git_url, release, http_url)


@pytest.fixture(scope="session")
def real_editor_upstreams(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EditorUpstreams]:
    """The plugins' and the grammar's real repositories and neovim 0.11.4's real build, on 127.0.0.1."""
    if upstreams_dir() is None:
        pytest.skip(SKIP_REASON)
    repos = unpack_upstreams(tmp_path_factory.mktemp("real-upstreams"))
    served = tmp_path_factory.mktemp("real-nvim-releases")
    release = real_neovim_release(served)
    with testhosts.git_daemon(repos) as git_url, testhosts.http_server(served) as http_url:
        yield EditorUpstreams(repos, git_url, release, http_url, real=True)


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
