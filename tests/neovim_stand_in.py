"""Stand-ins for neovim's upstreams: plugin repos with the real module layout served by git daemon,
and an official-layout release tarball built from the machine's own nvim."""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
import tarfile
from dataclasses import dataclass
from pathlib import Path

from tests.data.upstream_facts import UPSTREAM_DEFAULT_BRANCHES, UPSTREAM_PINNED_HEADS, UPSTREAM_TAGS
from tests.testhosts import CACHE_DIR, run

GRAMMAR = "tree-sitter-rst"

# Small but loadable versions of each plugin's modules, at the paths the real plugins use.
PLUGIN_SOURCES = Path(__file__).resolve().parent / "data" / "plugins"
PLUGIN_FILES: dict[str, dict[str, str]] = {
    plugin.name: {str(f.relative_to(plugin)): f.read_text() for f in sorted(plugin.rglob("*.lua"))}
    for plugin in sorted(PLUGIN_SOURCES.iterdir())
}
# Every tag upstream has, oldest first, with upstream's spelling (tests/data/upstream_facts.py).
PLUGIN_TAGS = {name: list(tags) for name, tags in UPSTREAM_TAGS.items()}

# tree-sitter-rst v0.2.0's src/, byte for byte, ships in this sdist of PyPI (under parsers/rst/src).
GRAMMAR_SDIST = (
    "https://files.pythonhosted.org/packages/c1/83/d1bc738d6f253f415ee54a8afb99640f47028871436f53f2af637c392c4f/"
    "tree_sitter_language_pack-0.13.0.tar.gz"
)
GRAMMAR_SDIST_SHA256 = "032034c5e27b1f6e00730b9e7c2dbc8203b4700d0c681fd019d6defcf61183ec"
GRAMMAR_SRC = "tree_sitter_language_pack-0.13.0/parsers/rst/src/"


def _git(cwd: Path, *args: str) -> str:
    env_args = ["-c", "user.name=Stand In", "-c", "user.email=stand-in@example.org"]
    return subprocess.run(
        ["git", *env_args, *args], cwd=cwd, check=True, text=True, capture_output=True
    ).stdout.strip()


def _repo(base: Path, name: str, releases: list[tuple[str | None, dict[str, bytes]]]) -> None:
    """base/<name>.git on upstream's default branch: a commit per release, tagged unless its tag is
    None (a commit after the last tag); like GitHub, it serves any commit asked for by its hash."""
    work = base / "work" / name
    work.mkdir(parents=True)
    _git(work, "init", "-q", "-b", UPSTREAM_DEFAULT_BRANCHES[name])
    for tag, files in releases:
        for rel, content in files.items():
            (work / rel).parent.mkdir(parents=True, exist_ok=True)
            (work / rel).write_bytes(content)
        (work / "VERSION").write_text(f"{tag or 'after the last tag'}\n")
        _git(work, "add", "-A")
        _git(work, "commit", "-q", "-m", f"release {tag}" if tag else "after the last tag")
        if tag:
            _git(work, "tag", "-a", tag, "-m", tag)
    bare = base / f"{name}.git"
    _git(base, "clone", "-q", "--bare", str(work), str(bare))
    _git(bare, "config", "uploadpack.allowAnySHA1InWant", "true")
    shutil.rmtree(work)


def grammar_files() -> dict[str, bytes]:
    """tree-sitter-rst's src/ at v0.2.0, from PyPI (cached, checked against its sha256)."""
    sdist = CACHE_DIR / GRAMMAR_SDIST.rsplit("/", 1)[1]
    if not sdist.exists() or hashlib.sha256(sdist.read_bytes()).hexdigest() != GRAMMAR_SDIST_SHA256:
        CACHE_DIR.mkdir(parents=True, exist_ok=True)
        run("curl", "-fsSL", "--retry", "2", "-o", f"{sdist}.part", GRAMMAR_SDIST)
        assert hashlib.sha256(Path(f"{sdist}.part").read_bytes()).hexdigest() == GRAMMAR_SDIST_SHA256
        Path(f"{sdist}.part").rename(sdist)
    with tarfile.open(sdist) as tar:
        return {
            "src/" + member.name[len(GRAMMAR_SRC) :]: tar.extractfile(member).read()  # type: ignore[union-attr]
            for member in tar.getmembers()
            if member.isfile() and member.name.startswith(GRAMMAR_SRC)
        }


def build_plugin_repos(base: Path) -> Path:
    """Bare repos base/<plugin>.git, one commit per upstream tag (its VERSION says which), and for
    plugins kdevbox pins by commit one more commit after the last tag, as upstream has; and
    base/tree-sitter-rst.git with the grammar's real src/ at each of its tags."""
    for name, files in PLUGIN_FILES.items():
        content = {rel: text.encode() for rel, text in files.items()}
        releases: list[tuple[str | None, dict[str, bytes]]] = [(tag, content) for tag in PLUGIN_TAGS[name]]
        if name in UPSTREAM_PINNED_HEADS:
            releases.append((None, content))
        _repo(base, name, releases)
    grammar = grammar_files()
    _repo(base, GRAMMAR, [(tag, grammar) for tag in UPSTREAM_TAGS[GRAMMAR]])
    return base


def head_commit(repos: Path, name: str) -> str:
    """The stand-in's commit after the last tag: what it serves for a commit upstream's branch heads."""
    return _git(repos / f"{name}.git", "rev-parse", UPSTREAM_DEFAULT_BRANCHES[name])


def tag_commit(repos: Path, name: str, tag: str) -> str:
    return _git(repos / f"{name}.git", "rev-parse", f"{tag}^{{commit}}")


@dataclass(frozen=True)
class ReleaseTarball:
    version: str
    sha256: str
    path: Path


def build_release_tarball(served: Path) -> ReleaseTarball:
    """served/v<version>/nvim-linux-x86_64.tar.gz in the official layout, from /usr/bin/nvim.

    The distribution's nvim links shared libraries a fresh host lacks: they go into lib/ with an
    $ORIGIN rpath, so the tree runs anywhere like the official, self-contained one.
    """
    nvim = Path("/usr/bin/nvim")
    version = re.search(r"v([0-9.]+)", run(str(nvim), "--version").stdout)
    assert version, "no nvim on this machine"
    stage = served / "stage" / "nvim-linux-x86_64"
    (stage / "bin").mkdir(parents=True)
    (stage / "lib").mkdir()
    shutil.copy2(nvim, stage / "bin/nvim")
    for line in run("ldd", str(nvim)).stdout.splitlines():
        match = re.search(r"=> (/\S+)", line)
        if match and not re.search(r"/(libc|libm|libgcc_s|ld-linux[^/]*)\.so", match.group(1)):
            shutil.copy2(match.group(1), stage / "lib")
    run("patchelf", "--set-rpath", "$ORIGIN/../lib", str(stage / "bin/nvim"))
    shutil.copytree("/usr/share/nvim/runtime", stage / "share/nvim/runtime", symlinks=False)
    target = served / f"v{version.group(1)}" / "nvim-linux-x86_64.tar.gz"
    target.parent.mkdir(parents=True)
    with tarfile.open(target, "w:gz") as tar:
        tar.add(stage, arcname="nvim-linux-x86_64")
    shutil.rmtree(served / "stage")
    digest = hashlib.sha256(target.read_bytes()).hexdigest()
    return ReleaseTarball(version.group(1), digest, target)
