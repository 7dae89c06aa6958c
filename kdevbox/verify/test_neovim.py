"""neovim: the version kdevbox chose, plugins at their refs, and a clean headless start as the
developer that loads telescope, its heading extension and clangd."""

from __future__ import annotations

import json
import posixpath

from kdevbox.config import DEFAULT_PLUGINS, SEARCH_TOOLS, parse_version
from kdevbox.facts import GitCheckout
from kdevbox.layout import NVIM_INIT_MARKER, NVIM_LINK, PARSER_SOURCE_SUFFIX, Home
from kdevbox.operations import inputs_digest
from kdevbox.records import NeovimPlan
from kdevbox.verify.nvim import picker_headings, rst_titles, start_nvim
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


def _start_nvim(target: VerifyTarget, *args: str) -> tuple[int, str]:
    """nvim --headless as the developer; its exit status and everything it wrote to stderr."""
    result = start_nvim(target, *args)
    return result.rc, result.stderr


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


def test_headless_start_loads_telescope_and_heading(kdevbox_target: VerifyTarget) -> None:
    with kdevbox_target.scratch_dir("nvim_check.lua", "nvim_harness.lua") as scratch:
        rc, stderr = _start_nvim(kdevbox_target, "-c", f"luafile {scratch}/nvim_check.lua")
    assert (rc, stderr) == (0, ""), f"nvim exited {rc}: {stderr}"


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


def test_heading_picker_lists_every_rst_section(kdevbox_target: VerifyTarget) -> None:
    """A kernel-style document (two blank lines before each section): every title, not the first few."""
    with kdevbox_target.scratch_dir("sections.rst") as scratch:
        listed = picker_headings(kdevbox_target, posixpath.join(scratch, "sections.rst"))
    assert listed == rst_titles((DATA / "sections.rst").read_text())


def test_clangd_attaches_to_c_files(kdevbox_target: VerifyTarget) -> None:
    with kdevbox_target.scratch_dir("sample_project", "nvim_lsp_check.lua") as scratch:
        project = posixpath.join(scratch, "sample_project")
        entry = {"directory": project, "file": "main.c", "arguments": ["cc", "-c", "-Ilib", "main.c"]}
        kdevbox_target.run_as_user(
            "printf %%s %s > %s", json.dumps([entry]), f"{project}/compile_commands.json"
        )
        rc, stderr = _start_nvim(
            kdevbox_target, f"{project}/main.c", "-c", f"luafile {scratch}/nvim_lsp_check.lua"
        )
    assert (rc, stderr) == (0, ""), f"nvim exited {rc}: {stderr}"


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


def test_leader_key(kdevbox_target: VerifyTarget) -> None:
    leader = json.dumps(kdevbox_target.config.neovim.leader)
    check = f"lua if vim.g.mapleader ~= {leader} then io.stderr:write('mapleader is ' .. vim.g.mapleader) end"
    rc, stderr = _start_nvim(kdevbox_target, "-c", check, "-c", "qall!")
    assert (rc, stderr) == (0, ""), f"nvim exited {rc}: {stderr}"
