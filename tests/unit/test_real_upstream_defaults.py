"""Every default ref and URL of the editor checked against the real repositories (KDEVBOX_UPSTREAMS),
not only against tests/data/upstream_facts.py: the ref exists, and what the deploy and kdevbox's
config use is there at that ref. Skipped, saying how to run them, without the upstreams."""

from __future__ import annotations

import re
import subprocess
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from kdevbox.config import (
    DEFAULT_PLUGINS,
    TELESCOPE,
    TELESCOPE_HEADING,
    TELESCOPE_REQUIREMENTS,
    Neovim,
    parse_version,
    telescope_requirement,
)
from tests.data import upstream_facts
from tests.neovim_stand_in import GRAMMAR
from tests.real_upstreams import RELEASE_TOP, real_neovim_release, requires_real_upstreams, unpack_upstreams

pytestmark = requires_real_upstreams

# What kdevbox's deploy and config use of each repository, at the ref it checks out.
USED: dict[str, tuple[str, ...]] = {
    "plenary.nvim": ("lua/plenary/init.lua", "lua/plenary/async/init.lua"),
    TELESCOPE: (
        "plugin/telescope.lua",  # :Telescope
        "lua/telescope/init.lua",
        "lua/telescope/builtin/init.lua",
        "lua/telescope/actions/state.lua",
        "lua/telescope/health.lua",
    ),
    TELESCOPE_HEADING: (
        "lua/telescope/_extensions/heading.lua",
        "lua/telescope/_extensions/heading/config.lua",  # its treesitter switch, set per pick
        "lua/telescope/_extensions/heading/format/rst.lua",
    ),
    GRAMMAR: upstream_facts.TREE_SITTER_RST_SOURCES,  # cc -shared -fPIC -I src src/parser.c src/scanner.c
}


@pytest.fixture(scope="module")
def repos(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    yield unpack_upstreams(tmp_path_factory.mktemp("real-upstreams"))


def _git(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True)


def _commit(repo: Path, ref: str) -> str:
    """The commit ref names in repo (a tag, or a commit a branch has), as a fetch of ref gets it."""
    found = _git(repo, "rev-parse", "--verify", "--quiet", f"refs/tags/{ref}^{{commit}}")
    if found.returncode != 0:
        found = _git(repo, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}")
        assert found.returncode == 0, f"{repo.name} has no {ref}"
        heads = _git(repo, "branch", "--contains", found.stdout.strip()).stdout.split()
        assert heads, f"{ref} is on no branch of {repo.name}: a fetch by hash would not find it"
    return found.stdout.strip()


def _files(repo: Path, commit: str) -> set[str]:
    return set(_git(repo, "ls-tree", "-r", "--name-only", commit).stdout.split())


def _defaults() -> list[tuple[str, str, str]]:
    """(repository, url, ref) for every default kdevbox can check out."""
    listed = []
    for name, (url, ref) in DEFAULT_PLUGINS.items():
        refs = [ref] if ref else [tag for _pattern, _needs, tag in TELESCOPE_REQUIREMENTS if tag]
        listed += [(name, url, each) for each in refs]
    rst = Neovim().rst_parser
    return [*listed, (GRAMMAR, rst.url, rst.ref)]


@pytest.mark.parametrize(("name", "url", "ref"), _defaults(), ids=lambda value: str(value))
def test_every_default_ref_is_in_the_real_repository(repos: Path, name: str, url: str, ref: str) -> None:
    assert url.rstrip("/").rsplit("/", 1)[1] == name, url
    repo = repos / f"{name}.git"
    have = _files(repo, _commit(repo, ref))
    lacking = [path for path in USED[name] if path not in have]
    assert not lacking, f"{name} at {ref} has no {', '.join(lacking)}"


@pytest.mark.parametrize("tag", sorted({tag for _p, _n, tag in TELESCOPE_REQUIREMENTS if tag}))
def test_telescope_needs_what_its_readme_says(repos: Path, tag: str) -> None:
    """The neovim each default telescope tag needs, from that tag's README ("Neovim (>v0.10.4)")."""
    readme = _git(repos / f"{TELESCOPE}.git", "show", f"{tag}:README.md").stdout
    said = re.search(r"Neovim \((>)?v([0-9.]+)\)", readme)
    assert said, f"telescope {tag}'s README names no neovim version"
    needs = parse_version(said.group(2))
    if said.group(1):  # "newer than": the next patch release
        needs = (*needs[:-1], needs[-1] + 1)
    assert telescope_requirement(tag) == needs, f"{tag}: README says Neovim ({said.group(0)})"


def test_heading_pin_reads_rst_with_the_neovim_kdevbox_installs(repos: Path) -> None:
    """The pinned head parses queries with vim.treesitter.query.parse (0.11 removed parse_query),
    and its picker reads the `treesitter` switch kdevbox's config sets for rst."""
    repo = repos / f"{TELESCOPE_HEADING}.git"
    commit = _commit(repo, str(DEFAULT_PLUGINS[TELESCOPE_HEADING][1]))
    rst = _git(repo, "show", f"{commit}:lua/telescope/_extensions/heading/format/rst.lua").stdout
    assert "ts.query.parse" in rst
    picker = _git(repo, "show", f"{commit}:lua/telescope/_extensions/heading.lua").stdout
    assert "heading_config.treesitter" in picker and "heading = pick_headings" in picker


def test_release_tarball_layout_is_what_the_deploy_unpacks(tmp_path: Path) -> None:
    """The default release URL names the official asset, and the real build in that layout has its
    one top directory (stripped on unpack) over bin/nvim and the runtime. The default's sha256 is
    checked by the deploy itself, against the download: no test here reaches GitHub."""
    cfg = Neovim()
    assert cfg.release_download.endswith(f"/v{cfg.release_version}/{RELEASE_TOP}.tar.gz")
    release = real_neovim_release(tmp_path)
    with tarfile.open(release.path) as tar:
        names = tar.getnames()
        nvim = tar.getmember(f"{RELEASE_TOP}/bin/nvim")
    assert {name.split("/", 1)[0] for name in names} == {RELEASE_TOP}
    assert nvim.mode & 0o111 and f"{RELEASE_TOP}/share/nvim/runtime/filetype.lua" in names
