"""neovim as the developer starts it, and what its heading picker lists: shared by the editor checks
and the kernel tree checks (the picker on the tree's own Documentation)."""

from __future__ import annotations

import json
import re
from typing import Any

from kdevbox.verify.targets import VerifyTarget

HEADINGS_MARK = "kdevbox-headings "  # nvim_headings.lua prints the picker's list after it
# A line of one punctuation character repeated: an rst section adornment.
_ADORNMENT = re.compile(r"([!-/:-@\[-`{-~])\1*")


def start_nvim(target: VerifyTarget, *args: str) -> Any:
    """nvim --headless as the developer, kdevbox's config loaded as their init loads it."""
    load = [] if target.config.neovim.manage_init else ["-c", "lua require('kdevbox')"]
    command = " ".join(["nvim", "--headless", *(["%s"] * (len(load) + len(args)))])
    return target.run_as_user(command, *load, *args)


def rst_titles(text: str) -> list[tuple[int, str]]:
    """(line number, title) of every section title of an rst text, read as docutils reads them: a
    line at the margin after a blank line (or an overline), underlined by one punctuation character
    repeated at least as long as the title. Indented lines (quotes, literal blocks) are not titles."""
    lines = [line.rstrip() for line in text.splitlines()]
    titles = []
    for index, line in enumerate(lines[:-1]):
        title, under = line.strip(), lines[index + 1]
        before = lines[index - 1] if index else ""
        overlined = bool(_ADORNMENT.fullmatch(before))
        if (
            title
            and not _ADORNMENT.fullmatch(title)
            and _ADORNMENT.fullmatch(under)
            and len(under) >= len(title)
            and (overlined or (not before and not line[0].isspace()))
        ):
            titles.append((index + 1, title))
    return titles


def picker_headings(target: VerifyTarget, path: str) -> list[tuple[int, str]]:
    """The (line, heading) entries the heading picker lists for the file at path, opened the way a
    person opens it: <leader>fh pressed in neovim showing that file."""
    with target.scratch_dir("nvim_headings.lua", "nvim_harness.lua") as scratch:
        result = start_nvim(target, path, "-c", f"luafile {scratch}/nvim_headings.lua")
    assert result.rc == 0 and not result.stderr, f"nvim exited {result.rc}: {result.stderr}"
    listed = [line for line in result.stdout.splitlines() if line.startswith(HEADINGS_MARK)]
    assert listed, f"nvim printed no headings: {result.stdout[-2000:]}"
    return sorted((line, heading) for line, heading in json.loads(listed[-1][len(HEADINGS_MARK) :]))
