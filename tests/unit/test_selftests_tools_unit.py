"""The kselftest TAP summary kdevbox-vm prints, and which tool packages count as missing."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from kdevbox.config import HostConfig
from kdevbox.facts import parse_availability
from kdevbox.templates import TEMPLATES


def _summary_module():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location(
        "kselftest_summary", TEMPLATES / "guest/kselftest_summary.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# run_kselftest.sh's shape: runner result lines, the tests' own TAP nested behind "# ".
TAP = """\
TAP version 13
1..4
# selftests: size: get_size
# TAP version 13
# 1..1
# ok 1 get runtime memory use
ok 1 selftests: size: get_size
# selftests: timens: timens
# not ok 1 clock_gettime # SKIP Time namespaces are not supported
ok 2 selftests: timens: timens # SKIP
# selftests: timens: exec
not ok 3 selftests: timens: exec # exit=1
# selftests: kcmp: kcmp_test
not ok 4 selftests: kcmp: kcmp_test # TIMEOUT 45 seconds
"""


def test_summary_counts_per_target_and_names_failures(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    summary = _summary_module()
    counts, failures = summary.summarize(TAP.splitlines())
    assert counts == {
        "size": {"pass": 1, "fail": 0, "skip": 0},
        "timens": {"pass": 0, "fail": 1, "skip": 1},
        "kcmp": {"pass": 0, "fail": 1, "skip": 0},
    }
    assert failures == ["timens: exec (exit=1)", "kcmp: kcmp_test (TIMEOUT 45 seconds)"]
    log = tmp_path / "tap"
    log.write_text(TAP)
    assert summary.main(["x", str(log)]) == 1
    printed = capsys.readouterr().out.splitlines()
    assert printed[0].split() == ["target", "pass", "fail", "skip"]
    assert printed[2].split() == ["timens", "0", "1", "1"]
    assert printed[-1] == "FAILED kcmp: kcmp_test (TIMEOUT 45 seconds)"


def test_summary_exit_status(tmp_path: Path) -> None:
    summary = _summary_module()
    passing = tmp_path / "pass"
    passing.write_text("\n".join(TAP.splitlines()[:9]) + "\n")
    assert summary.main(["x", str(passing)]) == 0
    empty = tmp_path / "empty"
    empty.write_text("ssh: connect to host 127.0.0.1 port 10022: Connection refused\n")
    assert summary.main(["x", str(empty)]) == 1  # nothing ran is not a pass


def test_missing_packages_only_known_with_package_lists() -> None:
    probe = ["lists=yes", "asked=gdb", "gdb=13.1-3", "asked=bpftrace"]
    assert parse_availability(probe).missing == ("bpftrace",)
    # Before the first `apt-get update` nothing is known: apt names what it cannot find.
    assert parse_availability(probe[1:]).missing == ()


def test_msr_loading_follows_msr_tools() -> None:
    assert HostConfig().tools.wants_msr
    assert not HostConfig.model_validate({"tools": {"packages": ["gdb"]}}).tools.wants_msr
    assert not HostConfig.model_validate({"tools": {"load_msr": False}}).tools.wants_msr
