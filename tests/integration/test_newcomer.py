"""A newcomer's machine: a stock Debian root (python3 without pip or venv), a clone of kdevbox.

The README's command 2 must set itself up there from a fresh shell; the shipped settings must either
deploy and verify, or stop before any change naming what to fill in.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests import testhosts
from tests.setups import LEAN, REPO, pyinfra_cli, write_inventory

# What the machine's network needs of any client (a TLS-inspecting proxy's CA, a pip timeout): the
# newcomer on this machine has the same environment.
IDENTITY = {"name": "Ada Kernel", "email": "ada@example.org"}
NETWORK_ENV = ("PIP_CERT", "PIP_DEFAULT_TIMEOUT", "PIP_INDEX_URL", "http_proxy", "https_proxy", "no_proxy")


def _clone(root: Path) -> Path:
    """The repository's committed files, as a fresh clone has them, at /root/kdevbox in root."""
    dest = root / "root" / "kdevbox"
    dest.mkdir(parents=True)
    archive = subprocess.run(["git", "-C", str(REPO), "archive", "HEAD"], check=True, capture_output=True)
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive.stdout, check=True)
    return dest


@pytest.mark.slow
def test_readme_command_2_sets_itself_up_on_a_stock_machine(chroot_root: Path) -> None:
    assert not (chroot_root / "usr/lib/python3/dist-packages/pip").exists(), "the base should be stock"
    _clone(chroot_root)
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": "/root", "LANG": "C.UTF-8"}
    env |= {key: os.environ[key] for key in NETWORK_ENV if key in os.environ}
    shutil.copy("/etc/resolv.conf", chroot_root / "etc/resolv.conf")
    setup = subprocess.run(
        ["chroot", str(chroot_root), "bash", "-c", "cd /root/kdevbox && bash .ci/run --setup-only"],
        env=env,
        capture_output=True,
        text=True,
        timeout=1500,
    )
    assert setup.returncode == 0, setup.stdout[-3000:] + setup.stderr[-3000:]
    collect = subprocess.run(
        [
            "chroot",
            str(chroot_root),
            "bash",
            "-c",
            "cd /root/kdevbox && .venv/bin/python -m pytest --collect-only -q -p no:cacheprovider",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert collect.returncode == 0, collect.stdout[-3000:] + collect.stderr[-3000:]
    assert "tests collected" in collect.stdout, collect.stdout[-2000:]
    # The venv is the system python's, and the command-line tools the README names are in it.
    venv = chroot_root / "root/kdevbox/.venv"
    assert (venv / "pyvenv.cfg").read_text().count("home = /usr/bin") == 1
    for tool in ("pyinfra", "pytest", "ruff", "mypy"):
        assert (venv / "bin" / tool).exists(), tool


def test_shipped_settings_stop_up_front_naming_what_to_fill_in(chroot_root: Path, tmp_path: Path) -> None:
    """group_data/all.py as shipped, on a fresh host whose git knows nobody: one line naming the
    settings, nothing changed."""
    name = f"@chroot{chroot_root}"
    inventory = write_inventory(tmp_path, [(name, {})])
    shutil.copy(REPO / "group_data" / "all.py", tmp_path / "group_data" / "all.py")
    before = testhosts.tree_digest(chroot_root, "etc", "root", "home", "usr/local", "opt")

    run = pyinfra_cli(inventory)
    output = run.stdout + run.stderr

    assert run.returncode != 0
    lines = [line for line in output.splitlines() if line.strip().startswith(f"- {name}:")]
    assert len(lines) == 1, output
    for text in ("git.name and git.email", "patch_mail.enabled: False", "root's git has none"):
        assert text in lines[0], lines[0]
    assert testhosts.tree_digest(chroot_root, "etc", "root", "home", "usr/local", "opt") == before


def test_an_unreachable_upstream_is_one_line_naming_url_and_setting(
    chroot_root: Path, tmp_path: Path
) -> None:
    name = f"@chroot{chroot_root}"
    url = f"http://127.0.0.1:{testhosts.free_port()}/v0.12.5/nvim-linux-x86_64.tar.gz"  # nothing listens
    neovim = {"source": "release", "release_url": url}
    inventory = write_inventory(tmp_path, [(name, {"neovim": neovim, **LEAN})], group_data={"git": IDENTITY})

    run = pyinfra_cli(inventory)
    output = run.stdout + run.stderr

    assert run.returncode != 0
    lines = [line for line in output.splitlines() if "could not download" in line]
    assert len(lines) == 1, output
    assert f"kdevbox: could not download {url}" in lines[0]
    assert "set neovim.release_url to a mirror" in lines[0]
    assert "curl" not in output.replace(lines[0], ""), output


def test_pypi_out_of_reach_is_one_line_naming_package_proxy_and_setting(
    chroot_root: Path, tmp_path: Path
) -> None:
    name = f"@chroot{chroot_root}"
    dead = f"http://127.0.0.1:{testhosts.free_port()}"  # a proxy that is not there
    settings = {"git": IDENTITY, "proxy": {"http": dead, "https": dead}, "apt_proxy": {}}
    inventory = write_inventory(tmp_path, [(name, settings)])

    run = pyinfra_cli(inventory, deploy_file=REPO / "tests" / "deploys" / "patch_mail_only.py")
    output = run.stdout + run.stderr

    assert run.returncode != 0
    lines = [line for line in output.splitlines() if "kdevbox: could not install" in line]
    assert len(lines) == 1, output
    assert f"b4==0.14.3 from PyPI through proxy {dead}/; or patch_mail.enabled: False" in lines[0], lines[0]
    assert "Traceback" not in output and "ProxyError" not in output.replace(lines[0], "")
