"""Stand-ins for kernel upstreams: Debian's linux-source-6.1 (a real tree) as a tagged git repo,
and kernel.org's releases.json, tarballs and sha256sums.asc served from a folder."""

from __future__ import annotations

import fcntl
import hashlib
import json
import re
import shutil
import subprocess
import tarfile
from dataclasses import dataclass
from pathlib import Path

from tests.testhosts import CACHE_DIR, run

LINUX_SOURCE = Path("/usr/src/linux-source-6.1.tar.xz")
TAG = "v6.1-kdevbox-test"


def _debian_version() -> str:
    return run("dpkg-query", "-W", "-f=${Version}", "linux-source-6.1").stdout.strip()


def kernel_git_repo() -> Path:
    """A bare repo of the linux-source-6.1 tree with one commit tagged TAG; cached per package version."""
    final = CACHE_DIR / f"linux-{_debian_version()}.git"
    with open(CACHE_DIR / ".kernel.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if final.is_dir():
            return final
        work = final.with_name(final.name + ".tmp")
        shutil.rmtree(work, ignore_errors=True)
        tree, bare = work / "tree", work / "repo.git"
        tree.mkdir(parents=True)
        run("tar", "-xJf", str(LINUX_SOURCE), "-C", str(tree), "--strip-components=1")
        git = ["git", "-C", str(tree), "-c", "user.name=Stand In", "-c", "user.email=stand-in@example.org"]
        run(*git, "init", "-q")
        run(*git, "add", "-A", "--force")  # Debian appends `/*` to the tree's .gitignore
        run(*git, "commit", "-q", "-m", f"linux-source-6.1 {_debian_version()}")
        run(*git, "tag", "-a", TAG, "-m", TAG)
        run("git", "clone", "-q", "--bare", str(tree), str(bare))
        bare.rename(final)
        shutil.rmtree(work)
        return final


def kernel_version(repo: Path) -> str:
    """VERSION.PATCHLEVEL.SUBLEVEL from the tree's top Makefile."""
    makefile = subprocess.run(
        ["git", f"--git-dir={repo}", "show", f"{TAG}:Makefile"], check=True, capture_output=True, text=True
    ).stdout
    parts = [re.search(rf"^{key} = (\d+)", makefile, re.M) for key in ("VERSION", "PATCHLEVEL", "SUBLEVEL")]
    return ".".join(m.group(1) for m in parts if m)


@dataclass(frozen=True)
class Release:
    version: str
    moniker: str
    tarball: str  # path under the served root


def serve_releases(root: Path, base_url: str, releases: list[Release], corrupt: str | None = None) -> None:
    """root/releases.json in kernel.org's format, small tarballs and sha256sums.asc beside them.

    Each tarball holds linux-<version>/Makefile and a marker file; corrupt names a version whose
    published sum is wrong, as a tampered mirror would have it.
    """
    entries = []
    sums: dict[Path, list[str]] = {}
    for release in releases:
        path = root / release.tarball
        path.parent.mkdir(parents=True, exist_ok=True)
        stage = root / "stage" / f"linux-{release.version}"
        stage.mkdir(parents=True)
        major, minor, *rest = release.version.split(".")
        (stage / "Makefile").write_text(
            f"VERSION = {major}\nPATCHLEVEL = {minor}\nSUBLEVEL = {rest[0] if rest else 0}\n"
        )
        (stage / "KDEVBOX_STAND_IN").write_text(release.version + "\n")
        with tarfile.open(path, "w:xz") as tar:
            tar.add(stage, arcname=stage.name)
        shutil.rmtree(root / "stage")
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        if release.version == corrupt:
            digest = hashlib.sha256(b"tampered").hexdigest()
        sums.setdefault(path.parent, []).append(f"{digest}  {path.name}")
        entries.append(
            {
                "iseol": False,
                "version": release.version,
                "moniker": release.moniker,
                "source": f"{base_url}/{release.tarball}",
                "pgp": None,
                "released": {"timestamp": 1700000000, "isodate": "2023-11-14"},
            }
        )
    for folder, lines in sums.items():
        (folder / "sha256sums.asc").write_text(
            "-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256\n\n"
            + "\n".join(lines)
            + "\n-----BEGIN PGP SIGNATURE-----\nstand-in\n-----END PGP SIGNATURE-----\n"
        )
    (root / "releases.json").write_text(
        json.dumps({"latest_stable": {"version": releases[0].version}, "releases": entries}, indent=1)
    )
