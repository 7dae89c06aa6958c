"""The editor on a chroot host, against stand-ins (they run on a clone without the real upstreams):
a neovim release from a tarball, plugin refs that move, a user's own init.lua kept, a missing rst
parser, and bad pins or checksums that stop before anything changes. The healthy box against the
real upstreams: test_editor_real.py."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

from tests.neovim_stand_in import tag_commit
from tests.setups import LEAN, EditorUpstreams, deploy, pyinfra_cli, verify, write_inventory
from tests.testhosts import DEV_USER, tree_digest

TELESCOPE = "telescope.nvim"


def _head(root: Path, plugin: str) -> str:
    path = f"/home/{DEV_USER}/.local/share/nvim/site/pack/kdevbox/start/{plugin}"
    return subprocess.run(
        ["chroot", str(root), "git", "-c", "safe.directory=*", "-C", path, "rev-parse", "HEAD"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()


def test_release_neovim_plugins_and_user_init(
    chroot_root: Path, tmp_path: Path, editor_upstreams: EditorUpstreams
) -> None:
    home = chroot_root / "home" / DEV_USER
    init = home / ".config/nvim/init.lua"
    init.parent.mkdir(parents=True)
    init.write_text("vim.opt.number = true\n-- my own settings\n")
    subprocess.run(["chown", "-R", "1000:1000", str(home / ".config")], check=True)
    name = f"@chroot{chroot_root}"

    def setup(**neovim: Any) -> Path:
        group = {
            "neovim": editor_upstreams.neovim_settings(**neovim),
            "clangd": {"compile_db": "compiledb"},
            **LEAN,
        }
        return write_inventory(tmp_path, [(name, {"user": DEV_USER})], group_data=group)

    # A run killed right after `git init` of a plugin left a checkout without origin: the next run
    # converges (it once failed with "No such remote 'origin'" on every later run).
    plenary = f"/home/{DEV_USER}/.local/share/nvim/site/pack/kdevbox/start/plenary.nvim"
    checkout = chroot_root / plenary.lstrip("/")
    subprocess.run(["git", "init", "-q", str(checkout)], check=True)  # the host has no git yet
    subprocess.run(["chown", "-R", "1000:1000", str(chroot_root / f"home/{DEV_USER}/.local")], check=True)
    inventory = setup()
    first = deploy(inventory)[name]
    changed = {op for names in first["changed"] for op in names}
    assert _head(chroot_root, "plenary.nvim") == tag_commit(editor_upstreams.repos, "plenary.nvim", "v0.1.4")
    version = editor_upstreams.release.version
    assert f"neovim | neovim {version} release in /opt/nvim-{version}" in changed
    # Debian 12's neovim 0.7.2 gets the newest telescope that supports it.
    assert f"neovim | {TELESCOPE} at 0.1.8" in changed
    assert _head(chroot_root, TELESCOPE) == tag_commit(editor_upstreams.repos, TELESCOPE, "0.1.8")

    parser = f"/home/{DEV_USER}/.local/share/kdevbox/tree-sitter/parser/rst.so"
    assert {"neovim | tree-sitter-rst at v0.2.0", f"neovim | rst parser {parser}"} <= changed
    checked = verify(inventory)
    assert checked.returncode == 0 and checked.failed == 0, checked.output
    assert "test_heading_picker_lists_every_rst_section" in checked.ran
    # patch_mail is off: kdevbox's b4 must be gone, and send-email (left installed) is not checked.
    assert "test_b4_at_configured_version" in checked.ran and "test_git_send_email_dry_run" not in checked.ran
    assert deploy(inventory)[name]["changed"] == []
    lines = init.read_text().splitlines()
    assert lines[:2] == ["vim.opt.number = true", "-- my own settings"] and "require('kdevbox')" in lines

    # Without the rst parser the picker falls back to the plain parser, which loses the sections
    # after a double blank line: verify says so (the parser, the mapping and the command), and the
    # next run builds the parser again.
    (chroot_root / parser.lstrip("/")).unlink()
    checked = verify(inventory)
    assert checked.failed == 3 and "no rst parser" in checked.output, checked.output
    assert deploy(inventory)[name]["changed"] == [[f"neovim | rst parser {parser}"]]
    assert verify(inventory).returncode == 0

    # A pinned ref moves the checkout, and only that.
    plugins = editor_upstreams.neovim_settings()["plugins"]

    def pin(ref: str) -> dict[str, object]:
        return {**plugins, TELESCOPE: {**plugins[TELESCOPE], "ref": ref}}

    inventory = setup(plugins=pin("0.1.7"))
    record = f"neovim | what kdevbox chose for neovim: /home/{DEV_USER}/.local/share/kdevbox/neovim-plan.json"
    assert deploy(inventory)[name]["changed"] == [[f"neovim | {TELESCOPE} at 0.1.7"], [record]]
    assert _head(chroot_root, TELESCOPE) == tag_commit(editor_upstreams.repos, TELESCOPE, "0.1.7")
    checked = verify(inventory)
    assert checked.returncode == 0, checked.output

    watched = ("home", "opt", "usr/local")
    before = tree_digest(chroot_root, *watched)

    # A ref the installed neovim cannot run stops the run before anything is cloned.
    result = pyinfra_cli(setup(plugins=pin("v0.2.2")))
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert (
        f"{name}: neovim.plugins.{TELESCOPE}.ref = 'v0.2.2': telescope v0.2.2 needs neovim >= 0.10.5"
        in output
    )
    assert tree_digest(chroot_root, *watched) == before

    # A ref the remote does not have (a `v` short: upstream's 0.1.x tags have none, from v0.1.9 on
    # they do) stops the run too, naming the nearest ones the remote has.
    plenary = "plenary.nvim"
    result = pyinfra_cli(setup(plugins={**plugins, plenary: {**plugins[plenary], "ref": "0.1.4"}}))
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert f"{name}: neovim.plugins.{plenary}.ref = '0.1.4': not a ref of " in output, output
    assert "did you mean v0.1.4" in output
    assert tree_digest(chroot_root, *watched) == before

    # A tarball whose checksum does not match fails, and the installed neovim stays as it was.
    result = pyinfra_cli(setup(plugins=pin("0.1.7"), release_sha256="0" * 64))
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert f"sha256 mismatch for {editor_upstreams.release_url}/v{version}/nvim-linux-x86_64.tar.gz" in output
    assert tree_digest(chroot_root, *watched) == before
