"""Kconfig fragments: what a kernel configuration asks for, as the deploy writes it and verify checks
it in .config."""

from __future__ import annotations

import re

from kdevbox.config import Kernel
from kdevbox.templates import TEMPLATES, render

_SYMBOL = re.compile(r"^(?:# )?(CONFIG_[A-Za-z0-9_]+)")


def fragment_text(cfg: Kernel) -> str:
    """The shipped fragments and inline options of cfg, as one Kconfig fragment."""
    shipped = [
        (name, (TEMPLATES / "kernel" / f"{name}.config").read_text().strip()) for name in cfg.fragments
    ]
    return render("kernel/fragment.config.j2", cfg=cfg, fragments=shipped)


def requested_options(fragment: str) -> list[tuple[str, str]]:
    """(line as .config spells it, symbol) for every option a fragment sets; the last one wins."""
    requested: dict[str, str] = {}
    for raw in fragment.splitlines():
        line = raw.strip()
        match = _SYMBOL.match(line)
        if not match or (line.startswith("#") and not line.endswith(" is not set")):
            continue
        symbol = match.group(1)
        requested[symbol] = f"# {symbol} is not set" if line == f"{symbol}=n" else line
    return [(line, symbol) for symbol, line in requested.items()]
