"""Key-by-key edits of INI files such as /etc/wsl.conf that keep everything else as the user wrote it."""

from __future__ import annotations

import re
from collections.abc import Mapping

_SECTION = re.compile(r"^\s*\[([^\]]+)\]\s*(?:[#;].*)?$")
_KEY = re.compile(r"^\s*([^=#;\s][^=]*?)\s*=")


def set_ini_values(text: str, values: Mapping[str, Mapping[str, str]]) -> str:
    """text with each section's keys set to values: existing keys are changed in place, missing
    keys are added at the end of their section, missing sections at the end of the file. Comments,
    order and every other key stay."""
    lines = text.splitlines()
    pending = {section: dict(keys) for section, keys in values.items()}
    out: list[str] = []
    section: str | None = None

    def flush(current: str | None) -> None:
        """Add the keys still missing from the section that just ended, before its trailing blanks."""
        missing = pending.pop(current, {}) if current is not None else {}
        if not missing:
            return
        blanks = 0
        while out and out[-1].strip() == "":
            out.pop()
            blanks += 1
        out.extend(f"{key} = {value}" for key, value in missing.items())
        out.extend([""] * blanks)

    for line in lines:
        header = _SECTION.match(line)
        if header:
            flush(section)
            section = header.group(1).strip()
            out.append(line)
            continue
        key = _KEY.match(line)
        if key and section in pending and key.group(1) in pending[section]:
            out.append(f"{key.group(1)} = {pending[section].pop(key.group(1))}")
            continue
        out.append(line)
    flush(section)
    for name, keys in pending.items():
        if keys:
            if out and out[-1].strip():
                out.append("")
            out.append(f"[{name}]")
            out.extend(f"{key} = {value}" for key, value in keys.items())
    return "\n".join(out) + "\n"
