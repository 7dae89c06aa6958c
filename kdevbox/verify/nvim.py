"""neovim as the developer starts it, driven by check scripts that write their own verdict, and what
its heading picker lists: shared by the editor checks and the kernel tree checks (the picker on the
tree's own Documentation)."""

from __future__ import annotations

import json
import posixpath
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from kdevbox.verify.targets import VerifyTarget

HARNESS = "nvim_harness.lua"
VERDICT_MARK = "kdevbox-verdict "  # the harness writes its verdict after it, in `verdict`
# How a person opens the heading picker: kdevbox's mapping, or the command its README teaches.
HEADING_MAPPING = "<leader>fh"
HEADING_COMMAND = ":Telescope heading<CR>"
# A line of one punctuation character repeated: an rst section adornment.
_ADORNMENT = re.compile(r"([!-/:-@\[-`{-~])\1*")


def start_nvim(target: VerifyTarget, *args: str) -> Any:
    """nvim --headless as the developer, kdevbox's config loaded as their init loads it."""
    load = [] if target.config.neovim.manage_init else ["-c", "lua require('kdevbox')"]
    command = " ".join(["nvim", "--headless", *(["%s"] * (len(load) + len(args)))])
    return target.run_as_user(command, *load, *args)


@contextmanager
def nvim_scratch(target: VerifyTarget, *names: str) -> Iterator[str]:
    """A scratch dir of the developer's with the harness and these files from data/."""
    with target.scratch_dir(HARNESS, *names) as scratch:
        yield scratch


def run_check(
    target: VerifyTarget, scratch: str, script: str, *args: str, expect: dict[str, Any] | None = None
) -> Any:
    """Run scratch/script in neovim as the developer (args go first: files to open, --cmd); expect
    is what the script reads as harness.expect. Fails with the script's reason unless its verdict
    says ok, and returns the verdict's result. The verdict comes from the file the harness writes,
    read as the developer, never from what nvim or the connection printed."""
    if expect is not None:
        target.run_as_user("printf %%s %s > %s", json.dumps(expect), posixpath.join(scratch, "expect.json"))
    ran = start_nvim(target, *args, "-c", f"luafile {posixpath.join(scratch, script)}")
    verdict_file = posixpath.join(scratch, "verdict")
    written = target.run_as_user("cat %s; rm -f %s", verdict_file, verdict_file).stdout.splitlines()
    lines = [line for line in written if line.startswith(VERDICT_MARK)]
    said = [line for line in ran.stderr.splitlines() if line.strip()][-3:]
    assert lines, (
        f"{script}: nvim exited {ran.rc} without a verdict: {' / '.join(said) or 'nothing on stderr'}"
    )
    verdict = json.loads(lines[-1][len(VERDICT_MARK) :])
    passed = verdict.get("ok") is True
    assert passed, f"{script}: {verdict.get('error')}"
    return verdict.get("result")


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


def picker_headings(
    target: VerifyTarget, path: str, opened_by: str = HEADING_MAPPING
) -> list[tuple[int, str]]:
    """The (line, heading) entries the heading picker lists for the file at path, opened the way a
    person opens it: opened_by pressed (the mapping, or the command typed) in neovim showing that file."""
    with nvim_scratch(target, "nvim_headings.lua") as scratch:
        listed = run_check(target, scratch, "nvim_headings.lua", path, expect={"open": opened_by})
    return sorted((line, heading) for line, heading in listed)
