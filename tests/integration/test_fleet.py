"""Four SSH hosts in two groups, one inventory, one parallel run: a broken host fails alone, the run
names it, and the verification report says which host and capability failed."""

from __future__ import annotations

import fcntl
import json
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from tests import testhosts
from tests.setups import LEAN, EditorUpstreams, pyinfra_cli, verify, write_inventory
from tests.testhosts import DEV_USER

pytestmark = pytest.mark.slow

GROUPS = {"lab": ["lab1", "lab2"], "cloud": ["cloud1", "cloud2"]}
BROKEN = "cloud2"


@pytest.fixture()
def fleet(
    tmp_path_factory: pytest.TempPathFactory, base_rootfs: Path
) -> Iterator[dict[str, testhosts.SshHost]]:
    with ExitStack() as stack:
        hosts = {}
        for name in [name for names in GROUPS.values() for name in names]:
            root = stack.enter_context(testhosts.throwaway_rootfs(tmp_path_factory.mktemp(name)))
            hosts[name] = stack.enter_context(
                testhosts.ssh_host(root, tmp_path_factory.mktemp(f"{name}-ssh"), name)
            )
        yield hosts


def test_parallel_run_isolates_a_broken_host(
    fleet: dict[str, testhosts.SshHost], tmp_path: Path, editor_upstreams: EditorUpstreams
) -> None:
    login = {name: {**host.inventory_data(user=DEV_USER), "_sudo": True} for name, host in fleet.items()}
    inventory = write_inventory(
        tmp_path,
        {group: [(name, login[name]) for name in names] for group, names in GROUPS.items()},
        group_data={"neovim": editor_upstreams.neovim_settings(), **LEAN},
        groups_data={"lab": {"git": {"name": "Lab Dev"}}, "cloud": {"git": {"name": "Cloud Dev"}}},
    )

    # The broken host: something else holds dpkg's lock for the whole run, as a stuck apt would.
    with open(fleet[BROKEN].root / "var/lib/dpkg/lock-frontend", "a") as lock:
        fcntl.lockf(lock, fcntl.LOCK_EX)
        run = pyinfra_cli(inventory, "--json")
    assert run.returncode != 0
    assert f"[{BROKEN}] E: Could not get lock /var/lib/dpkg/lock-frontend" in run.stderr
    # The run's summary names the failed host, and only it; every other host ran every operation.
    results = json.loads(run.stdout[run.stdout.index("{") :])["results"]
    assert results["failed_hosts"] == [BROKEN]
    assert {host for op in results["operations"] for host in op["error"]} == {BROKEN}
    last = results["operations"][-1]  # the others ran to the end of the deploy
    assert sorted(last["success"] + last["no_change"]) == sorted(fleet.keys() - {BROKEN}), last

    report_file = tmp_path / "report.json"
    checked = verify(inventory, extra=[f"--kdevbox-report={report_file}"])
    assert checked.returncode != 0
    report = json.loads(report_file.read_text())["hosts"]
    assert sorted(report) == sorted(fleet)
    for name in fleet:
        statuses = {cap: cell["status"] for cap, cell in report[name].items()}
        if name == BROKEN:
            # git's first step installs git (a fresh host has none): it and every later task fail.
            assert statuses["git"] == statuses["clangd"] == statuses["neovim"] == "fail", statuses
            assert statuses["apt_proxy"] == "pass", statuses  # the tasks before apt did run
        else:
            assert set(statuses.values()) == {"pass"}, (name, report[name])
    # The summary table names the failing host and expectation.
    table = checked.output[checked.output.index("kdevbox verification") :]
    assert any(line.startswith(BROKEN) and "FAIL" in line for line in table.splitlines()), table
    assert f"{BROKEN} / clangd / " in table

    # Per-group settings reached their hosts.
    for name in GROUPS["lab"]:
        assert "name = Lab Dev" in (fleet[name].root / f"home/{DEV_USER}/.gitconfig").read_text()
    assert "name = Cloud Dev" in (fleet["cloud1"].root / f"home/{DEV_USER}/.gitconfig").read_text()
