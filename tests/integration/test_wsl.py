"""The WSL2 branch on a real test host made to look like WSL2 (its /proc shows WSLInterop, as every
WSL distro's does): wsl.conf gains kdevbox's keys and keeps the user's, kvm access, a clear warning."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import testhosts
from tests.setups import REPO, deploy, pyinfra_cli, verify, write_inventory
from tests.testhosts import DEV_USER

WSL_ONLY = REPO / "tests" / "deploys" / "wsl_only.py"
USER_WSL_CONF = """# written by the user
[network]
generateResolvConf = false

[boot]
command = service ssh start
systemd=false
"""


@pytest.fixture()
def wsl_root(tmp_path_factory: pytest.TempPathFactory, base_rootfs: Path) -> Iterator[Path]:
    with testhosts.throwaway_rootfs(tmp_path_factory.mktemp("wsl"), proc=False) as root:
        interop = root / "proc/sys/fs/binfmt_misc/WSLInterop"
        interop.parent.mkdir(parents=True)
        interop.write_text("enabled\ninterpreter /init\n")
        yield root


def test_wsl_conf_kvm_group_and_warning(wsl_root: Path, tmp_path: Path) -> None:
    (wsl_root / "etc/wsl.conf").write_text(USER_WSL_CONF)
    name = f"@chroot{wsl_root}"
    settings = {
        "user": DEV_USER,
        "wsl": {"settings": {"network": {"hostname": "kbox"}, "interop": {"appendWindowsPath": False}}},
    }
    inventory = write_inventory(tmp_path, [(name, settings)])

    run = pyinfra_cli(inventory, deploy_file=WSL_ONLY)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "WSL2 has no /dev/kvm" in run.stdout + run.stderr
    assert "nestedVirtualization=true" in run.stdout + run.stderr

    assert (wsl_root / "etc/wsl.conf").read_text() == (
        "# written by the user\n"
        "[network]\n"
        "generateResolvConf = false\n"
        "hostname = kbox\n"
        "\n"
        "[boot]\n"
        "command = service ssh start\n"
        "systemd = true\n"
        "\n"
        "[user]\n"
        f"default = {DEV_USER}\n"
        "\n"
        "[interop]\n"
        "appendWindowsPath = false\n"
    )
    group = (wsl_root / "etc/group").read_text()
    assert any(
        line.startswith("kvm:") and DEV_USER in line.split(":")[3].split(",") for line in group.splitlines()
    )

    checked = verify(inventory, "kdevbox.verify.test_wsl")
    assert checked.returncode == 0 and checked.passed == 2, checked.output
    assert deploy(inventory, WSL_ONLY)[name]["changed"] == []


def test_not_wsl_changes_nothing(chroot_root: Path, tmp_path: Path) -> None:
    name = f"@chroot{chroot_root}"
    inventory = write_inventory(tmp_path, [(name, {"user": DEV_USER})])
    before = testhosts.tree_digest(chroot_root, "etc")
    report = deploy(inventory, WSL_ONLY)[name]
    assert (report["operations"], report["changed"]) == (0, [])
    assert testhosts.tree_digest(chroot_root, "etc") == before
