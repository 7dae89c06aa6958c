"""A tiny apt repository and a logging forward proxy that serves it: apt's internet, on 127.0.0.1."""

from __future__ import annotations

import base64
import secrets
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

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


@dataclass
class ProxyLog:
    requests: list[tuple[str, str, bool]] = field(default_factory=list)  # (method, url, authorized)


@dataclass(frozen=True)
class Proxy:
    port: int
    log: ProxyLog


@contextmanager
def forward_proxy(repo: Path, user: str, password: str) -> Iterator[Proxy]:
    """An HTTP forward proxy on 127.0.0.1 that requires Basic auth and only knows REPO_HOST."""
    log = ProxyLog()
    token = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            authorized = self.headers.get("Proxy-Authorization") == token
            log.requests.append(("GET", self.path, authorized))
            url = urlsplit(self.path)
            if not authorized:
                self.send_response(407)
                self.send_header("Proxy-Authenticate", 'Basic realm="kdevbox-test"')
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            target = (repo / url.path.lstrip("/")).resolve()
            if url.hostname != REPO_HOST or not target.is_file() or repo not in target.parents:
                self.send_error(404 if url.hostname == REPO_HOST else 502)
                return
            body = target.read_bytes()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Proxy(port=server.server_address[1], log=log)
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
