"""The verification report: host x capability -> pass/fail, with each failing expectation."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from kdevbox.secrets import mask_credentials
from kdevbox.verify.targets import VerifyTarget


@dataclass
class Failure:
    test: str
    expectation: str


@dataclass
class VerifyReport:
    """Outcomes gathered while the suite runs; one cell per host and capability."""

    cells: dict[str, dict[str, list[Failure]]] = field(default_factory=dict)

    def add(self, host: str, capability: str, test: str, failure: str | None) -> None:
        failures = self.cells.setdefault(host, {}).setdefault(capability, [])
        if failure is not None:
            failures.append(Failure(test, failure))

    @property
    def capabilities(self) -> list[str]:
        return sorted({cap for caps in self.cells.values() for cap in caps})

    def as_dict(self) -> dict[str, Any]:
        return {
            "hosts": {
                host: {
                    cap: {
                        "status": "fail" if failures else "pass",
                        "failures": [{"test": f.test, "expectation": f.expectation} for f in failures],
                    }
                    for cap, failures in sorted(caps.items())
                }
                for host, caps in sorted(self.cells.items())
            }
        }

    def table(self) -> str:
        """Plain text: one row per host, one column per capability, then each failing expectation."""
        caps = self.capabilities
        rows = [["host", *caps]]
        for host, cells in sorted(self.cells.items()):
            rows.append([host, *("-" if c not in cells else "FAIL" if cells[c] else "pass" for c in caps)])
        widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
        lines = [
            "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows
        ]
        for host, cells in sorted(self.cells.items()):
            for cap, failures in sorted(cells.items()):
                lines += [f"{host} / {cap} / {f.test}: {f.expectation}" for f in failures]
        return "\n".join(lines)

    def write_json(self, path: Path) -> None:
        path.write_text(json.dumps(self.as_dict(), indent=2) + "\n")


def record(report: VerifyReport, item: pytest.Item, result: pytest.TestReport) -> None:
    """Count one phase of one test; setup errors and call failures both fail the cell."""
    if not isinstance(item, pytest.Function) or (result.when != "call" and not result.failed):
        return
    target = item.callspec.params.get("kdevbox_target") if hasattr(item, "callspec") else None
    if not isinstance(target, VerifyTarget):
        return
    module = item.module.__name__ if item.module else item.nodeid
    capability = module.rsplit(".", 1)[-1].removeprefix("test_").removesuffix("_checks")
    failure = None
    if result.failed:
        crash = getattr(result.longrepr, "reprcrash", None)
        message = crash.message if crash is not None else str(result.longrepr)
        failure = mask_credentials(message.splitlines()[0]) if message else "failed"
    report.add(target.name, capability, item.originalname, failure)
