"""A corporate proxy in miniature, for a network where upstreams are reachable only through it.

Upstreams live under host names that resolve nowhere (`*.invalid`): only this proxy knows them. It
requires Basic auth, logs every request, serves files for some hosts, git's smart HTTP protocol
(`git http-backend`) for others, and tunnels to PyPI (CONNECT) so pip works through it too.
"""

from __future__ import annotations

import base64
import os
import select
import socket
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from urllib.parse import urlsplit

from tests.testhosts import threaded_http

# What the machine may reach besides loopback, tunnelled for pip: PyPI.
TUNNELLED = ("pypi.org", "files.pythonhosted.org")


@dataclass(frozen=True)
class Files:
    root: Path


@dataclass(frozen=True)
class GitRepos:
    root: Path  # bare repos served as http://<host>/<name>.git


Route = Files | GitRepos


@dataclass
class ProxyLog:
    requests: list[tuple[str, str, bool]] = field(default_factory=list)  # (method, target, authorized)

    def urls(self, authorized: bool = True) -> list[str]:
        return [target for _m, target, ok in self.requests if ok == authorized]


@dataclass(frozen=True)
class UpstreamProxy:
    port: int
    log: ProxyLog

    def url(self, user: str, password: str) -> str:
        return f"http://{user}:{password}@127.0.0.1:{self.port}"


def _git_backend(handler: BaseHTTPRequestHandler, repos: Path, path: str, query: str) -> None:
    """One smart-HTTP request answered by git http-backend (CGI), as a git server would."""
    length = int(handler.headers.get("Content-Length") or 0)
    body = handler.rfile.read(length) if length else b""
    env = {
        "PATH": os.environ["PATH"],
        "GIT_PROJECT_ROOT": str(repos),
        "GIT_HTTP_EXPORT_ALL": "1",
        "REQUEST_METHOD": handler.command,
        "PATH_INFO": path,
        "QUERY_STRING": query,
        "CONTENT_TYPE": handler.headers.get("Content-Type", ""),
        "CONTENT_LENGTH": str(length),
        "HTTP_CONTENT_ENCODING": handler.headers.get("Content-Encoding", ""),
        "GIT_PROTOCOL": handler.headers.get("Git-Protocol", ""),
        "REMOTE_ADDR": "127.0.0.1",
    }
    out = subprocess.run(
        ["git", "http-backend"], input=body, env=env, capture_output=True, timeout=120
    ).stdout
    head, _, payload = out.partition(b"\r\n\r\n")
    status = 200
    headers = []
    for line in head.decode().split("\r\n"):
        name, _, value = line.partition(": ")
        if name.lower() == "status":
            status = int(value.split()[0])
        elif name:
            headers.append((name, value))
    handler.send_response(status)
    for name, value in headers:
        handler.send_header(name, value)
    handler.send_header("Content-Length", str(len(payload)))
    handler.end_headers()
    handler.wfile.write(payload)


@contextmanager
def upstream_proxy(routes: dict[str, Route], user: str, password: str) -> Iterator[UpstreamProxy]:
    """The proxy on 127.0.0.1, stopped on exit."""
    log = ProxyLog()
    token = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _authorized(self) -> bool:
            ok = self.headers.get("Proxy-Authorization") == token
            log.requests.append((self.command, self.path, ok))
            if not ok:
                self.send_response(407)
                self.send_header("Proxy-Authenticate", 'Basic realm="kdevbox-test"')
                self.send_header("Content-Length", "0")
                self.end_headers()
            return ok

        def do_CONNECT(self) -> None:
            if not self._authorized():
                return
            host, _, port = self.path.partition(":")
            if host not in TUNNELLED:
                self.send_error(403)
                return
            upstream = socket.create_connection((host, int(port or 443)), timeout=30)
            self.send_response(200, "Connection established")
            self.end_headers()
            sockets = [self.connection, upstream]
            try:
                while True:
                    readable, _, _ = select.select(sockets, [], [], 60)
                    if not readable:
                        break
                    for sock in readable:
                        data = sock.recv(65536)
                        if not data:
                            return
                        (upstream if sock is self.connection else self.connection).sendall(data)
            finally:
                upstream.close()
                self.close_connection = True

        def _serve(self) -> None:
            if not self._authorized():
                return
            url = urlsplit(self.path)
            route = routes.get(url.netloc) or routes.get(url.hostname or "")
            if isinstance(route, GitRepos):
                _git_backend(self, route.root, url.path, url.query)
            elif isinstance(route, Files):
                target = (route.root / url.path.lstrip("/")).resolve()
                if route.root.resolve() not in target.parents or not target.is_file():
                    self.send_error(404)
                    return
                body = target.read_bytes()
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            else:
                self.send_error(502, f"no route to {url.hostname}")

        do_GET = _serve
        do_POST = _serve

        def log_message(self, format: str, *args: object) -> None:
            pass

    with threaded_http(Handler) as port:
        yield UpstreamProxy(port=port, log=log)
