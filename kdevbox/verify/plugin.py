"""pytest plugin (entry point `pytest11`): `--inventory` turns a pyinfra inventory into test params."""

from __future__ import annotations

from collections.abc import Generator
from pathlib import Path

import pytest

from kdevbox.inventory import ConfigError
from kdevbox.verify.report import VerifyReport, record
from kdevbox.verify.targets import APPLIES_MARK, UnsupportedHost, VerifyTarget, load_targets


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("kdevbox", "kdevbox host verification")
    group.addoption("--inventory", metavar="PATH", help="pyinfra inventory whose hosts kdevbox.verify checks")
    group.addoption(
        "--kdevbox-report", metavar="FILE", help="also write the host x capability results as JSON to FILE"
    )


_REPORT = pytest.StashKey[VerifyReport]()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", f"{APPLIES_MARK}(predicate): check only hosts whose config passes")
    if config.getoption("inventory", None):
        config.stash[_REPORT] = VerifyReport()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    result = yield
    report = item.config.stash.get(_REPORT, None)
    if report is not None:
        record(report, item, result)
    return result


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    report = config.stash.get(_REPORT, None)
    if report is None or not report.cells:
        return
    terminalreporter.section("kdevbox verification")
    terminalreporter.write_line(report.table())
    path = config.getoption("kdevbox_report")
    if path:
        report.write_json(Path(path))
        terminalreporter.write_line(f"JSON report: {path}")


def _targets(config: pytest.Config) -> list[VerifyTarget]:
    cached: list[VerifyTarget] | None = getattr(config, "_kdevbox_targets", None)
    if cached is None:
        inventory = config.getoption("inventory")
        if not inventory:
            raise pytest.UsageError("kdevbox.verify needs --inventory PATH (a pyinfra inventory file)")
        workdir = config._tmp_path_factory.mktemp("kdevbox-verify")  # type: ignore[attr-defined]
        try:
            cached = load_targets(inventory, workdir)
        except (ConfigError, UnsupportedHost) as exc:
            raise pytest.UsageError(str(exc)) from exc
        config._kdevbox_targets = cached  # type: ignore[attr-defined]
    return cached


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "kdevbox_target" in metafunc.fixturenames:
        targets = _targets(metafunc.config)
        metafunc.parametrize("kdevbox_target", targets, ids=[t.name for t in targets], scope="module")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Deselect checks marked with applies_when for the hosts they do not apply to."""
    kept: list[pytest.Item] = []
    dropped: list[pytest.Item] = []
    for item in items:
        marker = item.get_closest_marker(APPLIES_MARK)
        callspec = getattr(item, "callspec", None)
        target = callspec.params.get("kdevbox_target") if callspec else None
        applies = marker is None or not isinstance(target, VerifyTarget) or marker.args[0](target.config)
        (kept if applies else dropped).append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept
