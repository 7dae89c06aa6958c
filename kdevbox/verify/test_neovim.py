"""neovim: the version kdevbox chose, plugins at their refs, a clean start as the developer, and
each picker used as a person uses it (the heading picker by its mapping and by its command)."""

from __future__ import annotations

import json
import posixpath

from kdevbox.config import DEFAULT_PLUGINS, SEARCH_TOOLS, parse_version
from kdevbox.facts import GitCheckout
from kdevbox.layout import NVIM_INIT_MARKER, NVIM_LINK, PARSER_SOURCE_SUFFIX, Home
from kdevbox.operations import inputs_digest
from kdevbox.records import NeovimPlan
from kdevbox.verify.nvim import (
    HEADING_COMMAND,
    HEADING_MAPPING,
    nvim_scratch,
    picker_headings,
    rst_titles,
    run_check,
)
from kdevbox.verify.targets import DATA, VerifyTarget, applies_when

# Off, kdevbox installs no neovim (and removes nothing it installed before).
pytestmark = applies_when(lambda config: config.neovim.enabled)


def _plan(target: VerifyTarget) -> NeovimPlan:
    """What the deploy chose for this host, as it recorded it (not decided again from today's apt)."""
    record = Home(target.account.home).nvim_plan
    text = target.user_text(record)
    assert text is not None, f"no {record}: run deploys/devbox.py"
    plan = NeovimPlan.from_json(text)
    cfg = target.config.neovim
    assert cfg.source in ("auto", plan.source), (
        f"neovim.source is {cfg.source}, the deploy chose {plan.source}"
    )
    for name, (url, ref) in plan.plugins.items():
        setting = cfg.plugins.get(name)
        assert url == ((setting and setting.url) or DEFAULT_PLUGINS[name][0]), f"{name} from {url}"
        pinned = (setting and setting.ref) or DEFAULT_PLUGINS[name][1]
        assert pinned in (None, ref), f"{name} at {ref}, settings pin {pinned}"
    return plan


def test_telescope_search_tools_on_path(kdevbox_target: VerifyTarget) -> None:
    """Without ripgrep, <leader>fg opens nothing and prints that it is a required dependency."""
    for package, command in SEARCH_TOOLS.items():
        found = kdevbox_target.run_as_user(f"command -v {command}")
        assert found.rc == 0, f"{command} ({package}) is not on {kdevbox_target.account.name}'s PATH"


def test_nvim_version_and_source(kdevbox_target: VerifyTarget) -> None:
    plan = _plan(kdevbox_target)
    first = kdevbox_target.run_as_user("nvim --version").stdout.splitlines()[0]
    assert parse_version(first.split()[-1]) == plan.version, first
    resolved = kdevbox_target.run_as_user('readlink -f "$(command -v nvim)"').stdout.strip()
    expected = posixpath.join(plan.release_dir, "bin/nvim") if plan.source == "release" else "/usr/bin/nvim"
    assert resolved == expected, f"nvim is {resolved}, expected {expected} ({plan.source})"
    if plan.source == "release":
        assert kdevbox_target.host.file(NVIM_LINK).linked_to == expected


def test_plugins_checked_out_at_their_refs(kdevbox_target: VerifyTarget) -> None:
    for name, (url, ref) in _plan(kdevbox_target).plugins.items():
        path = Home(kdevbox_target.account.home).plugin(name)
        checkout = kdevbox_target.fact(GitCheckout, as_user=True, path=path, dirty=True)
        assert checkout is not None, f"{path} is not a git checkout"
        assert (checkout.url, checkout.ref) == (url, ref), f"{name}: {checkout}"
        assert checkout.head and not checkout.dirty, f"{name}: {checkout}"
        assert kdevbox_target.host.file(path).user == kdevbox_target.account.name


def test_pickers_open_list_and_close(kdevbox_target: VerifyTarget) -> None:
    """In a project, as a person: each picker's mapping pressed lists what it must, <C-c> closes it
    (and the leader is the one the settings name)."""
    with nvim_scratch(kdevbox_target, "nvim_check.lua", "sample_project") as scratch:
        project = posixpath.join(scratch, "sample_project")
        expect = {"leader": kdevbox_target.config.neovim.leader}
        run_check(
            kdevbox_target, scratch, "nvim_check.lua", "--cmd", f"cd {project}", "main.c", expect=expect
        )


def test_rst_parser_built_from_its_grammar(kdevbox_target: VerifyTarget) -> None:
    rst = kdevbox_target.config.neovim.rst_parser
    mine = Home(kdevbox_target.account.home)
    checkout = kdevbox_target.fact(GitCheckout, as_user=True, path=mine.grammar("rst"))
    assert checkout is not None and (checkout.url, checkout.ref) == (rst.url, rst.ref), checkout
    parser = kdevbox_target.host.file(mine.parser("rst"))
    assert parser.is_file and parser.user == kdevbox_target.account.name, f"no {parser.path}"
    stamp = kdevbox_target.user_text(mine.parser("rst") + PARSER_SOURCE_SUFFIX) or ""
    fresh = stamp.strip() == inputs_digest(rst.url, rst.ref)
    assert fresh, f"{parser.path} is stale: its {PARSER_SOURCE_SUFFIX} stamp is not {rst.url} at {rst.ref}"


def _headings_of_sections(target: VerifyTarget, opened_by: str) -> None:
    """A kernel-style document (two blank lines before each section): every title, not the first few."""
    with target.scratch_dir("sections.rst") as scratch:
        listed = picker_headings(target, posixpath.join(scratch, "sections.rst"), opened_by)
    assert listed == rst_titles((DATA / "sections.rst").read_text()), f"{opened_by} in sections.rst"


def test_heading_picker_lists_every_rst_section(kdevbox_target: VerifyTarget) -> None:
    _headings_of_sections(kdevbox_target, HEADING_MAPPING)


def test_heading_command_lists_every_rst_section(kdevbox_target: VerifyTarget) -> None:
    """`:Telescope heading`, as telescope-heading's README teaches, reads rst as the mapping does."""
    _headings_of_sections(kdevbox_target, HEADING_COMMAND)


def test_clangd_attaches_to_c_files(kdevbox_target: VerifyTarget) -> None:
    with nvim_scratch(kdevbox_target, "sample_project", "nvim_lsp_check.lua") as scratch:
        project = posixpath.join(scratch, "sample_project")
        entry = {"directory": project, "file": "main.c", "arguments": ["cc", "-c", "-Ilib", "main.c"]}
        kdevbox_target.run_as_user(
            "printf %%s %s > %s", json.dumps([entry]), f"{project}/compile_commands.json"
        )
        run_check(kdevbox_target, scratch, "nvim_lsp_check.lua", f"{project}/main.c")


def test_user_init_loads_kdevbox_only_in_its_block(kdevbox_target: VerifyTarget) -> None:
    cfg = kdevbox_target.config.neovim
    config_dir = posixpath.join(kdevbox_target.account.home, ".config/nvim")
    inits = {
        f"{config_dir}/init.{ext}": kdevbox_target.user_text(f"{config_dir}/init.{ext}")
        for ext in ("lua", "vim")
    }
    present = {path: text for path, text in inits.items() if text is not None}
    if not cfg.manage_init:
        for path, text in present.items():
            edited = "kdevbox managed block" in text
            assert not edited, f"{path} was edited"
        return
    assert len(present) == 1, f"expected one of init.lua/init.vim in {config_dir}"
    ((path, text),) = present.items()
    comment = '"' if path.endswith(".vim") else "--"
    lines = text.splitlines()
    marks = [NVIM_INIT_MARKER.format(comment=comment).format(mark=mark) for mark in ("BEGIN", "END")]
    found = all(mark in lines for mark in marks)
    assert found, f"{path} has no kdevbox block"
    block = lines[lines.index(marks[0]) + 1 : lines.index(marks[1])]
    loads = any("require('kdevbox')" in line for line in block)
    assert loads, f"kdevbox's block in {path} does not load require('kdevbox')"
    assert kdevbox_target.host.file(path).user == kdevbox_target.account.name
