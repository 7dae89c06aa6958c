"""A proxy password never shows: not in pyinfra's --diff or -vv output (the guest image build script
once carried it), not in the verification report or its JSON."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.setups import LEAN, REPO, deploy, pyinfra_cli, verify, write_inventory
from tests.testhosts import DEV_USER

SECRET = "Hunter2Secret"
IDENTITY = {"name": "Ada Kernel", "email": "ada@example.org"}


def test_proxy_password_absent_from_diff_verbose_output_and_report(chroot_root: Path, tmp_path: Path) -> None:
    name = f"@chroot{chroot_root}"
    settings = {
        "user": DEV_USER,
        "apt_proxy": {"http": f"http://ada:{SECRET}@proxy.example.org:3128"},
        "git": IDENTITY,
        "neovim": {"source": "apt"},
        "patch_mail": {"enabled": False},
        "tools": {"packages": []},
    }
    inventory = write_inventory(tmp_path, [(name, settings)])

    # --dry plans every operation (the guest build script included) and diffs every file it would write.
    run = pyinfra_cli(inventory, "--dry", "--diff", "-vv", yes=False)
    output = run.stdout + run.stderr
    assert run.returncode == 0, output
    assert "build-guest-dev-kdevbox-guest.sh" in output, "the build script is planned (and diffed)"
    assert "proxy.example.org" in output, "the proxy is named, masked"
    assert SECRET not in output

    # Verify against a host that was never deployed: the apt proxy checks fail, naming the proxy.
    report = tmp_path / "report.json"
    checked = verify(inventory, "kdevbox.verify.test_apt_proxy", extra=["--kdevbox-report", str(report)])
    assert checked.failed == 2, checked.output
    assert SECRET not in checked.output
    text = report.read_text()
    assert SECRET not in text
    assert json.loads(text)["hosts"][name]["apt_proxy"]["status"] == "fail"


def test_password_from_the_environment_absent_from_pyinfras_debug_output(
    chroot_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """pyinfra --debug logs group data (group_data/all.py, where the README puts settings): with
    `password_env`, that data holds the variable's name only, and the password reaches neither
    pyinfra's output nor a command line."""
    monkeypatch.setenv("KDEVBOX_TEST_PROXY_PASSWORD", SECRET)
    name = f"@chroot{chroot_root}"
    proxy = {"http": "http://ada@proxy.example.org:3128", "password_env": "KDEVBOX_TEST_PROXY_PASSWORD"}
    settings = {"git": IDENTITY, "apt_proxy": proxy, "proxy": proxy, **LEAN}
    inventory = write_inventory(tmp_path, [(name, {"user": DEV_USER})], group_data=settings)
    run = pyinfra_cli(inventory, "--dry", "--debug", yes=False)
    output = run.stdout + run.stderr
    assert run.returncode == 0, output[-3000:]
    assert "KDEVBOX_TEST_PROXY_PASSWORD" in output, "pyinfra --debug logs the group data"
    assert SECRET not in output

    # Nor does the developer get it: what they run starts from a clean environment, not the
    # operator's (su keeps the caller's, and with @chroot or @local that is pyinfra's).
    assert not deploy(inventory, REPO / "tests/deploys/developer_env.py")[name]["failed"]
    recorded = chroot_root / "home" / DEV_USER / "developer.env"
    assert recorded.stat().st_uid == 1000
    seen = recorded.read_text()
    assert f"HOME=/home/{DEV_USER}" in seen.splitlines()
    assert SECRET not in seen and "KDEVBOX_TEST_PROXY_PASSWORD" not in seen
