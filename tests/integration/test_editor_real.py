"""The editor against its real upstreams, on a healthy box as a VM user has it: the real plenary,
telescope, telescope-heading and tree-sitter-rst served on 127.0.0.1, an SSH host reached as the
developer with sudo, with a real neovim: 0.11.4's real build as the release on Debian 12, apt's 0.10.4
on Debian 13 (telescope v0.1.9). Skipped without KDEVBOX_UPSTREAMS.

Stand-ins (test_editor.py) stay for failure modes; what a person sees is checked here."""

from __future__ import annotations

import posixpath
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from kdevbox.config import DEFAULT_PLUGINS, TELESCOPE, TELESCOPE_HEADING, Neovim
from kdevbox.layout import Home
from kdevbox.records import NeovimPlan
from kdevbox.verify.nvim import rst_titles
from kdevbox.verify.targets import DATA
from tests.neovim_stand_in import GRAMMAR, tag_commit
from tests.real_upstreams import REAL_NEOVIM, requires_real_upstreams
from tests.setups import LEAN, EditorUpstreams, deploy, terminal, verify, write_inventory
from tests.testhosts import DEV_USER, SshHost

pytestmark = [pytest.mark.slow, requires_real_upstreams]

HOME = Home(f"/home/{DEV_USER}")
PARSER = HOME.parser("rst")


def _head(root: Path, path: str) -> str:
    return subprocess.run(
        ["chroot", str(root), "su", DEV_USER, "-c", f"git -C {path} rev-parse HEAD"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()


@dataclass(frozen=True)
class Provisioned:
    """A host kdevbox provisioned: the inventory it was deployed with, the one verify reaches it
    through (first contact: ssh warns on every connection), and what the first deploy changed."""

    inventory: Path
    checking: Path
    changed: frozenset[str]


def _provision_check_and_use(
    host: SshHost, workdir: Path, upstreams: EditorUpstreams, telescope: str, **neovim: Any
) -> Provisioned:
    """What a VM user does and sees, against the real upstreams: deploy as the developer with sudo,
    verify (each neovim check's verdict from its own file, not ssh's stderr), a rerun with 0 changes,
    the pickers in a terminal. telescope: the tag kdevbox picks for this host's neovim, checked out at
    the real upstream's commit; neovim: settings over the upstreams' (source, say)."""
    data = {**host.inventory_data(user=DEV_USER), "_sudo": True}
    group = {"neovim": upstreams.neovim_settings(**neovim), **LEAN}
    inventory = write_inventory(workdir, [("vm", data)], group_data=group)
    # The same host for verify, where ssh says "Warning: Permanently added ... to the list of known
    # hosts" on every connection: each neovim check's verdict comes from its own file, not stderr.
    first_contact = {**data, "ssh_known_hosts_file": "/dev/null", "ssh_strict_host_key_checking": "no"}
    checking = write_inventory(workdir / "verify", [("vm", first_contact)], group_data=group)

    first = deploy(inventory)["vm"]
    assert not first["failed"], first
    changed = frozenset(op for names in first["changed"] for op in names)
    heading_pin = DEFAULT_PLUGINS[TELESCOPE_HEADING][1]
    rst = Neovim().rst_parser.ref
    assert {
        f"neovim | {TELESCOPE} at {telescope}",
        f"neovim | {TELESCOPE_HEADING} at {heading_pin}",
        f"neovim | tree-sitter-rst at {rst}",
    } <= changed, changed
    root = host.root
    assert _head(root, HOME.plugin(TELESCOPE)) == tag_commit(upstreams.repos, TELESCOPE, telescope)
    assert _head(root, HOME.plugin(TELESCOPE_HEADING)) == heading_pin
    assert _head(root, HOME.grammar("rst")) == tag_commit(upstreams.repos, GRAMMAR, rst)

    checked = verify(checking)
    assert checked.returncode == 0 and checked.failed == 0, checked.output
    assert {"test_pickers_open_list_and_close", "test_heading_command_lists_every_rst_section"} <= checked.ran
    assert deploy(inventory)["vm"]["changed"] == []

    _pickers_in_a_terminal(root)
    return Provisioned(inventory, checking, changed)


def test_real_upstreams_on_a_vm_as_users_have_it(
    ssh_host: SshHost, tmp_path: Path, real_editor_upstreams: EditorUpstreams
) -> None:
    # The newest telescope for neovim 0.11, on the real neovim release.
    box = _provision_check_and_use(ssh_host, tmp_path, real_editor_upstreams, "v0.2.2")
    assert f"neovim | neovim {REAL_NEOVIM} release in /opt/nvim-{REAL_NEOVIM}" in box.changed, box.changed

    # Without the rst parser the picker falls back to telescope-heading's plain parser: verify says
    # so for the mapping and the command, and the next run builds only the parser again.
    (ssh_host.root / PARSER.lstrip("/")).unlink()
    checked = verify(box.checking, "kdevbox.verify.test_neovim")
    assert checked.failed == 3 and "no rst parser" in checked.output, checked.output
    assert deploy(box.inventory)["vm"]["changed"] == [[f"neovim | rst parser {PARSER}"]]
    assert verify(box.checking, "kdevbox.verify.test_neovim").returncode == 0


def test_debian_13_apt_neovim_with_telescope_v0_1_9(
    trixie_ssh_host: SshHost, tmp_path: Path, real_editor_upstreams: EditorUpstreams
) -> None:
    """The issue's Debian 13 host: source auto takes apt's neovim 0.10.4 (the default min_version is
    0.10), which gets telescope v0.1.9, the newest tag that supports it (v0.2.x needs > 0.10.4)."""
    box = _provision_check_and_use(trixie_ssh_host, tmp_path, real_editor_upstreams, "v0.1.9", source="auto")
    root = trixie_ssh_host.root
    plan = NeovimPlan.from_json((root / HOME.nvim_plan.lstrip("/")).read_text())
    assert (plan.source, plan.version) == ("apt", (0, 10, 4)), plan
    assert plan.plugins[TELESCOPE][1] == "v0.1.9", plan
    assert not any("release" in name for name in box.changed), box.changed
    shown = subprocess.run(
        ["chroot", str(root), "su", "-l", DEV_USER, "-c", "command -v nvim && nvim --version"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert shown.startswith("/usr/bin/nvim\nNVIM v0.10.4"), shown


def _pickers_in_a_terminal(root: Path) -> None:
    """What a person sees: each picker opened in neovim in a terminal lists what it should."""
    project = root / "home" / DEV_USER / "proj"
    shutil.copytree(DATA / "sample_project", project)
    (project / "Documentation").mkdir()
    shutil.copy(DATA / "sections.rst", project / "Documentation/sections.rst")
    subprocess.run(["chown", "-R", "1000:1000", str(project)], check=True)
    titles = [title for _line, title in rst_titles((DATA / "sections.rst").read_text())]
    count = f"{len(titles)} / {len(titles)}"
    doc = posixpath.join("Documentation", "sections.rst")
    with terminal(root, f"cd ~/proj && nvim {doc}") as term:
        term.wait_for("kdevbox_sections")
        for opened_by in ([":Telescope heading", "Enter"], ["Space", "f", "h"]):
            term.keys(*opened_by)
            term.wait_for("Select a heading", count, *titles)
            term.keys("C-c")
            term.wait_for("Select a heading", gone=True)
        term.keys("Space", "f", "g")
        term.wait_for("Live Grep")
        term.type("return 42")
        term.wait_for("lib/util.c:5:2: return 42;", "1 / 1")
        term.keys("C-c")
        term.wait_for("Live Grep", gone=True)
        term.keys("Space", "f", "f")
        term.wait_for("Find Files", "lib/util.h", "main.c", "5 / 5")
        term.keys("C-c")
        term.wait_for("Find Files", gone=True)
        term.keys(":qa!", "Enter")
