"""The editor against its real upstreams, on a healthy box as a VM user has it: neovim 0.11.4's real
build as the release, the real plenary, telescope, telescope-heading and tree-sitter-rst served on
127.0.0.1, an SSH host reached as the developer with sudo. Skipped without KDEVBOX_UPSTREAMS.

Stand-ins (test_editor.py) stay for failure modes; what a person sees is checked here."""

from __future__ import annotations

import posixpath
import shutil
import subprocess
from pathlib import Path

import pytest

from kdevbox.config import DEFAULT_PLUGINS, TELESCOPE, TELESCOPE_HEADING, Neovim
from kdevbox.layout import Home
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


def test_real_upstreams_on_a_vm_as_users_have_it(
    ssh_host: SshHost, tmp_path: Path, real_editor_upstreams: EditorUpstreams
) -> None:
    upstreams = real_editor_upstreams
    data = {**ssh_host.inventory_data(user=DEV_USER), "_sudo": True}
    group = {"neovim": upstreams.neovim_settings(), **LEAN}
    inventory = write_inventory(tmp_path, [("vm", data)], group_data=group)
    # The same host for verify, where ssh says "Warning: Permanently added ... to the list of known
    # hosts" on every connection: each neovim check's verdict comes from its own file, not stderr.
    first_contact = {**data, "ssh_known_hosts_file": "/dev/null", "ssh_strict_host_key_checking": "no"}
    checking = write_inventory(tmp_path / "verify", [("vm", first_contact)], group_data=group)

    first = deploy(inventory)["vm"]
    assert not first["failed"], first
    changed = {op for names in first["changed"] for op in names}
    heading_pin = DEFAULT_PLUGINS[TELESCOPE_HEADING][1]
    assert {
        f"neovim | neovim {REAL_NEOVIM} release in /opt/nvim-{REAL_NEOVIM}",
        f"neovim | {TELESCOPE} at v0.2.2",  # the newest telescope for neovim 0.11
        f"neovim | {TELESCOPE_HEADING} at {heading_pin}",
        f"neovim | tree-sitter-rst at {Neovim().rst_parser.ref}",
    } <= changed, changed
    root = ssh_host.root
    assert _head(root, HOME.plugin(TELESCOPE)) == tag_commit(upstreams.repos, TELESCOPE, "v0.2.2")
    assert _head(root, HOME.plugin(TELESCOPE_HEADING)) == heading_pin
    rst = Neovim().rst_parser.ref
    assert _head(root, HOME.grammar("rst")) == tag_commit(upstreams.repos, GRAMMAR, rst)

    checked = verify(checking)
    assert checked.returncode == 0 and checked.failed == 0, checked.output
    assert {"test_pickers_open_list_and_close", "test_heading_command_lists_every_rst_section"} <= checked.ran
    assert deploy(inventory)["vm"]["changed"] == []

    _pickers_in_a_terminal(root)

    # Without the rst parser the picker falls back to telescope-heading's plain parser: verify says
    # so for the mapping and the command, and the next run builds only the parser again.
    (root / PARSER.lstrip("/")).unlink()
    checked = verify(checking, "kdevbox.verify.test_neovim")
    assert checked.failed == 3 and "no rst parser" in checked.output, checked.output
    assert deploy(inventory)["vm"]["changed"] == [[f"neovim | rst parser {PARSER}"]]
    assert verify(checking, "kdevbox.verify.test_neovim").returncode == 0


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
