"""The command line every bench shares: `--quick` measures each figure once, with the fewest hosts
and runs, so CI can run every bench (they measure, so nothing else would notice one rotting)."""

from __future__ import annotations

import argparse


def bench_parser(doc: str | None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=(doc or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="each figure once (CI runs every bench so)")
    return parser


def runs(quick: bool, full: int = 3) -> int:
    """How many times a figure is measured (its median is shown)."""
    return 1 if quick else full
