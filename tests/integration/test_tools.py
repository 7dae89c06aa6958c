"""Low-level tools on a chroot host: what the archive has is installed and on PATH; what it lacks is
named in the deploy's output and by verification, and does not stop the rest."""

from __future__ import annotations

from pathlib import Path

from tests.setups import REPO, deploy, pyinfra_cli, verify, write_inventory

TOOLS_ONLY = REPO / "tests" / "deploys" / "tools_only.py"


def test_tools_installed_and_missing_named(chroot_root: Path, tmp_path: Path) -> None:
    name = f"@chroot{chroot_root}"
    tools = {"packages": ["cscope", "msr-tools", "kdevbox-no-such-tool"]}
    inventory = write_inventory(tmp_path, [(name, {"user": "dev"})], group_data={"tools": tools})

    run = pyinfra_cli(inventory, deploy_file=TOOLS_ONLY)
    assert run.returncode == 0, run.stdout + run.stderr
    output = run.stdout + run.stderr
    assert "not installed: kdevbox-no-such-tool" in output, output
    # A chroot has no modules for the running kernel: said, and nothing persisted for boot.
    assert "tools.load_msr: the running kernel has no msr module here" in output, output
    assert (chroot_root / "usr/bin/cscope").exists() and (chroot_root / "usr/sbin/rdmsr").exists()
    assert not (chroot_root / "etc/modules-load.d/kdevbox-msr.conf").exists()
    assert deploy(inventory, TOOLS_ONLY)[name]["changed"] == []

    checked = verify(inventory, "kdevbox.verify.test_tools")
    assert checked.failed == 1 and checked.passed == 1, checked.output
    assert "kdevbox-no-such-tool: not in this host's apt sources" in checked.output

    # Dropped from the list, the host verifies clean.
    write_inventory(tmp_path, [(name, {"user": "dev"})], group_data={"tools": {"packages": ["cscope"]}})
    assert verify(inventory, "kdevbox.verify.test_tools").returncode == 0
