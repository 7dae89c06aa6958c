"""A tiny apt repository for apt's internet on 127.0.0.1: served by the tests' proxy
(tests/proxy_stand_in.py) under REPO_HOST, a name only that proxy knows."""

from __future__ import annotations

import secrets
import subprocess
from pathlib import Path

REPO_HOST = "kdevbox-repo.invalid"
PACKAGE = "kdevbox-hello"


def build_repo(root: Path) -> Path:
    """A flat apt repository with one package, built with dpkg-deb and apt-ftparchive; returns the
    package file.

    Its version is new on every call, so no apt download cache (a test host's or the shared one)
    can already hold it: apt has to fetch it through the proxy under test.
    """
    version = f"1.0.{secrets.token_hex(4)}"  # no "+": apt would URL-encode it
    pkg = root / "build" / PACKAGE
    (pkg / "DEBIAN").mkdir(parents=True)
    (pkg / "usr/share" / PACKAGE).mkdir(parents=True)
    (pkg / "usr/share" / PACKAGE / "hello.txt").write_text("hello from the test repository\n")
    (pkg / "DEBIAN/control").write_text(
        f"Package: {PACKAGE}\nVersion: {version}\nArchitecture: all\n"
        "Maintainer: kdevbox tests <t@example.org>\n"
        "Description: proves apt went through the proxy\n"
    )
    repo = root / "repo"
    repo.mkdir()
    deb = repo / f"{PACKAGE}_{version}_all.deb"
    subprocess.run(
        ["dpkg-deb", "--build", "--root-owner-group", str(pkg), str(deb)],
        check=True,
        capture_output=True,
    )
    for index in ("Packages", "Release"):
        out = subprocess.run(
            ["apt-ftparchive", index.lower(), "."], cwd=repo, check=True, capture_output=True
        )
        (repo / index).write_bytes(out.stdout)
    return deb
