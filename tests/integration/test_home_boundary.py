"""Root never follows, runs or imports what the developer owns (issue 21's review, row by row).

The developer prepares their home before kdevbox runs: links where kdevbox writes its files (to root
files that exist, and dangling), a FIFO where it expects a file, a `~/venv.py`, a `~/.git` whose
config runs a command. The deploy runs over the two ways root reaches a home: pyinfra's @chroot (as
root) and SSH as the developer with `_sudo` (root's shell starts in their home). Nothing outside the
home changes owner or content, no marker written by root appears, and verify prints nothing of a
root file the developer linked into their home.
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

import pytest

from kdevbox.layout import VENV_ROOT, Home
from tests import testhosts
from tests.setups import LEAN, EditorUpstreams, deploy, verify, write_inventory
from tests.testhosts import DEV_USER, SshHost

pytestmark = pytest.mark.slow
HOME = Home(f"/home/{DEV_USER}")
# Root files the planted links name; none of them may change.
ROOT_FILES = ("etc/motd", "etc/profile", "etc/shadow")
DANGLING = "/etc/profile.d/kdevbox-planted.sh"
# What kdevbox writes in the home, and where each planted link points.
LINKS = {
    HOME.clangd_config: DANGLING,
    HOME.kdevbox_lua: "/etc/motd",
    HOME.nvim_plan: "/etc/profile",
    HOME.parser("rst") + ".source": "/etc/shadow",
}
FIFO = HOME.parser("rst")
# Code that records who ran it: a file only root's run would leave with uid 0 in it.
MARKER = "/tmp/kdevbox-ran-as"
RECORD_UID = f"open('{MARKER}-' + __name__, 'w').write(str(__import__('os').getuid()))\n"


def _as_dev(root: Path, command: str) -> None:
    done = testhosts.run_as(root, command)
    assert done.returncode == 0, done.stderr


def _plant_links_and_fifo(root: Path) -> None:
    commands = [f"mkdir -p {shlex.quote(str(Path(path).parent))}" for path in [*LINKS, FIFO]]
    commands += [f"ln -s {shlex.quote(to)} {shlex.quote(path)}" for path, to in LINKS.items()]
    commands += [f"mkfifo {shlex.quote(FIFO)}", f"printf %s {shlex.quote(RECORD_UID)} > ~/venv.py"]
    _as_dev(root, " && ".join(commands))


def _plant_git_config(root: Path, git_url: str) -> None:
    """`~/.git` whose config sends the stand-in's URL over ssh, with an ssh command that records
    who ran it: what a root `git ls-remote` in the developer's cwd would pick up."""
    record = f"sh -c 'id -u > {MARKER}-git; exit 1'"
    _as_dev(
        root,
        f"git init -q ~ && git -C ~ config core.sshCommand {shlex.quote(record)} && "
        f"git -C ~ config url.ssh://planted.invalid/.insteadOf {shlex.quote(git_url)}",
    )


def _root_markers(root: Path) -> dict[str, str]:
    return {path.name: path.read_text().strip() for path in (root / "tmp").glob("kdevbox-ran-as-*")}


def _host(kind: str, request: pytest.FixtureRequest) -> tuple[Path, str, dict[str, Any]]:
    """The test host's root, its inventory name and data: @chroot, or SSH as the developer with sudo."""
    if kind == "chroot":
        root: Path = request.getfixturevalue("chroot_root")
        return root, f"@chroot{root}", {"user": DEV_USER}
    ssh: SshHost = request.getfixturevalue("ssh_host")
    return ssh.root, "labvm", {**ssh.inventory_data(user=DEV_USER), "_sudo": True}


@pytest.mark.parametrize("kind", ["chroot", "ssh-sudo"])
def test_planted_home_never_reaches_root(
    kind: str, request: pytest.FixtureRequest, tmp_path: Path, editor_upstreams: EditorUpstreams
) -> None:
    root, name, data = _host(kind, request)
    before = {path: testhosts.file_state(root / path) for path in ROOT_FILES}
    _plant_links_and_fifo(root)
    neovim = editor_upstreams.neovim_settings()
    group = {
        "git": {"name": "Ada Kernel", "email": "ada@example.org"},
        "neovim": neovim,
        "clangd": {"compile_db": "compiledb"},  # a virtualenv made by root
        **LEAN,
    }
    inventory = write_inventory(tmp_path, [(name, data)], group_data=group)

    first = deploy(inventory)[name]
    assert not first["failed"]
    # Each link and the FIFO became the developer's own regular file; what they named is untouched.
    for path in [*LINKS, FIFO]:
        made = root / path.lstrip("/")
        assert made.is_file() and not made.is_symlink() and made.stat().st_uid == 1000, path
    assert {path: testhosts.file_state(root / path) for path in ROOT_FILES} == before
    assert not (root / DANGLING.lstrip("/")).exists()
    # compiledb's virtualenv was made by root, and not with the developer's venv.py.
    assert (root / VENV_ROOT.lstrip("/") / "compiledb/bin/python3").exists()
    assert "0" not in _root_markers(root).values(), _root_markers(root)

    # With git on the host, a pinned ref is asked of its remote before anything is fetched: by root,
    # never through the developer's ~/.git.
    _plant_git_config(root, editor_upstreams.git_url)
    neovim["plugins"]["plenary.nvim"]["ref"] = "v0.1.3"
    inventory = write_inventory(tmp_path, [(name, data)], group_data=group)
    second = deploy(inventory)[name]
    assert not second["failed"]
    assert ["neovim | plenary.nvim at v0.1.3"] in second["changed"]
    assert "0" not in _root_markers(root).values(), _root_markers(root)
    assert deploy(inventory)[name]["changed"] == []
    assert verify(inventory).returncode == 0

    # verify reads the developer's files as them, and says what it expected, never what it read.
    shadow = (root / "etc/shadow").read_text().splitlines()[0]
    _as_dev(root, f"ln -sf /etc/shadow {shlex.quote(HOME.parser('rst') + '.source')}")
    checked = verify(inventory, "kdevbox.verify.test_neovim")
    assert checked.failed > 0
    leaked = shadow in checked.output
    assert not leaked, "verify printed /etc/shadow's first line"
    assert {path: testhosts.file_state(root / path) for path in ROOT_FILES} == before
