"""Behind a corporate proxy: every download kdevbox makes goes through it, with credentials that
never show; without it, the one line that says what failed; and proxy.system for the shells."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import testhosts
from tests.kernel_stand_in import Release, serve_releases
from tests.neovim_stand_in import GRAMMAR
from tests.proxy_stand_in import Files, GitRepos, Route, UpstreamProxy, upstream_proxy
from tests.setups import (
    NO_GUEST,
    REPO,
    EditorUpstreams,
    deploy,
    pyinfra_cli,
    verify,
    write_inventory,
)
from tests.testhosts import DEV_USER

SECRET = "Pr0xy-s3cret"
KERNEL_FETCH = REPO / "tests" / "deploys" / "kernel_fetch_only.py"
PROXY_ONLY = REPO / "tests" / "deploys" / "proxy_only.py"
IDENTITY = {"name": "Ada Kernel", "email": "ada@example.org"}


class ArgvWatch:
    """Samples every process's command line while a deploy runs: a secret must never be in one."""

    def __init__(self, secret: str) -> None:
        self.secret, self.samples = secret.encode(), 0
        self.seen: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def _watch(self) -> None:
        while not self._stop.is_set():
            for pid in os.listdir("/proc"):
                try:
                    cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
                except OSError:
                    continue
                if self.secret in cmdline:
                    self.seen.append(cmdline.replace(b"\0", b" ").decode(errors="replace"))
            self.samples += 1
            self._stop.wait(0.02)

    def __enter__(self) -> ArgvWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


@pytest.fixture()
def proxied(editor_upstreams: EditorUpstreams, tmp_path: Path) -> Iterator[tuple[UpstreamProxy, str]]:
    """The proxy, and the loopback address only it serves kernel.org's files at."""
    kernel_org = tmp_path / "kernel.org"
    kernel_netloc = f"127.0.0.1:{testhosts.free_port()}"  # nothing listens there: only the proxy knows it
    serve_releases(
        kernel_org,
        f"http://{kernel_netloc}",
        [Release("6.6.63", "longterm", "pub/linux/kernel/v6.x/linux-6.6.63.tar.xz")],
    )
    routes: dict[str, Route] = {
        "nvim.invalid": Files(editor_upstreams.release.path.parent.parent),
        "plugins.invalid": GitRepos(editor_upstreams.repos),
        kernel_netloc: Files(kernel_org),
    }
    with upstream_proxy(routes, "ada", SECRET) as proxy:
        yield proxy, f"http://{kernel_netloc}"


def _settings(
    editor_upstreams: EditorUpstreams, kernel_url: str, proxy: dict[str, object]
) -> dict[str, object]:
    neovim = editor_upstreams.neovim_settings(
        git_base="http://plugins.invalid",
        release_url="http://nvim.invalid/v{version}/nvim-linux-x86_64.tar.gz",
    )
    kernel = {"source": "release", "channel": "longterm", "releases_url": f"{kernel_url}/releases.json"}
    return {
        "user": DEV_USER,
        "git": IDENTITY,
        "neovim": neovim,
        "kernel": kernel,
        "tools": {"packages": []},
        **NO_GUEST,
        **({"proxy": proxy} if proxy else {}),
    }


def _files_holding(root: Path, secret: str) -> dict[str, int]:
    """Every file under the host's etc, home, root and opt that holds secret, with its mode."""
    found = {}
    for top in ("etc", "home", "root", "opt"):
        for path in (root / top).rglob("*"):
            if path.is_file() and not path.is_symlink():
                try:
                    if secret.encode() in path.read_bytes():
                        found[f"/{path.relative_to(root)}"] = path.stat().st_mode & 0o777
                except OSError:
                    continue
    return found


@pytest.mark.slow
def test_every_download_goes_through_the_proxy(
    chroot_root: Path, tmp_path: Path, editor_upstreams: EditorUpstreams, proxied: tuple[UpstreamProxy, str]
) -> None:
    proxy, kernel_url = proxied
    name = f"@chroot{chroot_root}"

    # Without the proxy: the upstreams resolve nowhere; one line says what and which setting.
    direct = write_inventory(tmp_path / "direct", [(name, _settings(editor_upstreams, kernel_url, {}))])
    failed = pyinfra_cli(direct)
    said = failed.stdout + failed.stderr
    assert failed.returncode != 0
    lines = [line for line in said.splitlines() if "kdevbox: could not download" in line]
    assert len(lines) == 1 and "http://nvim.invalid/" in lines[0] and "neovim.release_url" in lines[0], said

    settings = _settings(
        editor_upstreams, kernel_url, {"http": proxy.url("ada", SECRET), "https": proxy.url("ada", SECRET)}
    )
    inventory = write_inventory(tmp_path / "proxied", [(name, settings)])
    with ArgvWatch(SECRET) as argv:
        run = pyinfra_cli(inventory, "-vv", "--diff")
        fetched = pyinfra_cli(inventory, deploy_file=KERNEL_FETCH)
    output = run.stdout + run.stderr + fetched.stdout + fetched.stderr
    assert run.returncode == 0 and fetched.returncode == 0, output[-4000:]
    assert SECRET not in output
    assert argv.samples > 10 and argv.seen == []
    assert deploy(inventory)[name]["changed"] == []

    authorized = proxy.log.urls()
    assert any(url.startswith("http://nvim.invalid/v") for url in authorized), authorized
    for plugin in [*editor_upstreams.plugin_names, GRAMMAR]:
        assert any(url.startswith(f"http://plugins.invalid/{plugin}.git/") for url in authorized), plugin
    assert any(url.startswith("pypi.org:") for url in authorized), "pip (b4) did not go through the proxy"
    # apt (test_apt_proxy proves it goes where its file says) got `proxy`, as apt_proxy is unset.
    apt_conf = chroot_root / "etc/apt/apt.conf.d/80kdevbox-proxy"
    assert f"@127.0.0.1:{proxy.port}" in apt_conf.read_text() and apt_conf.stat().st_mode & 0o777 == 0o600
    assert any(url == f"{kernel_url}/releases.json" for url in authorized), "the controller asked direct"
    assert any(url.endswith("linux-6.6.63.tar.xz") for url in authorized)
    assert (chroot_root / f"home/{DEV_USER}/src/linux-6.6.63/KDEVBOX_STAND_IN").read_text() == "6.6.63\n"

    # Files holding the password are 0600, all of them.
    holding = _files_holding(chroot_root, SECRET)
    assert "/etc/kdevbox/proxy.env" in holding and f"/home/{DEV_USER}/.config/kdevbox/proxy.env" in holding
    assert {path: mode for path, mode in holding.items() if mode != 0o600} == {}

    # A proxy that refuses (a rotated password not yet in the settings): one line naming it, masked.
    settings["proxy"] = {"http": proxy.url("ada", "old-password"), "https": proxy.url("ada", "old-password")}
    refused = pyinfra_cli(write_inventory(tmp_path / "refused", [(name, settings)]), deploy_file=KERNEL_FETCH)
    said = refused.stdout + refused.stderr
    assert refused.returncode != 0
    lines = [line for line in said.splitlines() if "through proxy http://***@127.0.0.1" in line]
    assert len(lines) == 1 and "407" in lines[0], said
    assert "old-password" not in said


def test_proxy_for_the_developers_shells_and_sudo(chroot_root: Path, tmp_path: Path) -> None:
    name = f"@chroot{chroot_root}"
    url = f"http://ada:{SECRET}@proxy.example.org:3128"

    def setup(system: bool) -> Path:
        proxy = {"http": url, "https": url, "no_proxy": ["git.example.org"], "system": system}
        return write_inventory(tmp_path, [(name, {"user": DEV_USER, "proxy": proxy})])

    def shell(command: str) -> str:
        result = testhosts.run_as(chroot_root, command)
        assert result.returncode == 0, result.stderr
        return result.stdout

    inventory = setup(system=True)
    assert deploy(inventory, PROXY_ONLY)[name]["changed"]
    assert deploy(inventory, PROXY_ONLY)[name]["changed"] == []
    expected = f"http_proxy=http://ada:{SECRET}@proxy.example.org:3128/"
    for variables in (shell("env"), shell("sudo -n env")):
        lines = variables.splitlines()
        assert expected in lines and expected.replace("http_proxy", "HTTPS_PROXY") in lines, variables
        assert "no_proxy=git.example.org" in lines
    assert _files_holding(chroot_root, SECRET) == {
        "/etc/kdevbox/proxy.env": 0o600,
        f"/home/{DEV_USER}/.config/kdevbox/proxy.env": 0o600,
    }
    checked = verify(inventory, "kdevbox.verify.test_proxy")
    assert checked.returncode == 0 and checked.passed == 2, checked.output
    assert SECRET not in checked.output

    inventory = setup(system=False)
    assert deploy(inventory, PROXY_ONLY)[name]["changed"]
    assert deploy(inventory, PROXY_ONLY)[name]["changed"] == []
    assert "http_proxy" not in shell("env")
    assert not (chroot_root / "etc/profile.d/kdevbox-proxy.sh").exists()
    assert not (chroot_root / "etc/sudoers.d/kdevbox-proxy").exists()
    checked = verify(inventory, "kdevbox.verify.test_proxy")
    assert checked.returncode == 0 and checked.passed == 2, checked.output
