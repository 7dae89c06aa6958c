"""Throwaway Debian hosts for integration tests: a cached debootstrap base, chroot copies, sshd hosts.

Everything here runs as root on the test machine. Processes are started with their PID recorded and
are stopped by that PID; nothing listens on anything but 127.0.0.1.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

CACHE_DIR = Path(os.environ.get("KDEVBOX_TEST_CACHE", "/var/cache/kdevbox-tests"))
SUITE = "bookworm"
MIRROR = os.environ.get("KDEVBOX_TEST_MIRROR", "http://deb.debian.org/debian")
# What a fresh Debian has that kdevbox does not install itself: sshd and sudo (how users reach it),
# python3 (a newcomer runs kdevbox's own setup there), ca-certificates (the machine's CAs are added
# to it). No git: a minimal install has none, and kdevbox installs what it uses before using it.
PACKAGES = ("openssh-server", "python3", "sudo", "ca-certificates")
DEV_USER = "dev"
# Bump when the recipe below changes in a way the package list does not show.
RECIPE_VERSION = "4"
MACHINE_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
_PEM = re.compile(r"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", re.DOTALL)


def base_key(suite: str = SUITE) -> str:
    """Cache key of the base rootfs of suite: anything that changes its content changes the key."""
    machine_cas = hashlib.sha256(MACHINE_CA_BUNDLE.read_bytes()).hexdigest()
    text = "|".join((suite, MIRROR, ",".join(PACKAGES), DEV_USER, RECIPE_VERSION, machine_cas))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _trust_machine_cas(root: Path) -> None:
    """Test hosts reach the network the way this machine does, so they trust what it trusts
    (a TLS-inspecting proxy's CA, say): its certificates missing from root become local CAs."""
    own = set(_PEM.findall((root / "etc/ssl/certs/ca-certificates.crt").read_text()))
    extra = [pem for pem in _PEM.findall(MACHINE_CA_BUNDLE.read_text()) if pem not in own]
    for index, pem in enumerate(extra):
        (root / f"usr/local/share/ca-certificates/kdevbox-test-machine-{index}.crt").write_text(pem + "\n")
    run("chroot", str(root), "update-ca-certificates")


def run(*cmd: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, check=True, text=True, capture_output=True)


# A base in use stays: every process holds a shared lock on the base it was given (rootfs-...lock)
# until it exits, and a stale base is removed only when its lock can be taken exclusively.
_BASES_IN_USE: dict[Path, int] = {}


def _hold(base: Path) -> Path:
    """base, with this process's shared lock on it (held until the process ends)."""
    if base not in _BASES_IN_USE:
        fd = os.open(base.with_name(base.name + ".lock"), os.O_RDWR | os.O_CREAT, 0o644)
        fcntl.flock(fd, fcntl.LOCK_SH)
        _BASES_IN_USE[base] = fd
    return base


def _mounted_over(path: Path) -> bool:
    """Whether a mount of this machine reads path (an overlay's lowerdir, say): used by a test of
    code older than the locks above."""
    return str(path) in Path("/proc/self/mountinfo").read_text()


def _drop_stale_bases(suite: str, final: Path) -> None:
    """Remove the bases of suite other than final that nothing uses (call under CACHE_DIR/.lock)."""
    for stale in CACHE_DIR.glob(f"rootfs-{suite}-*"):
        if stale == final or not re.fullmatch(rf"rootfs-{re.escape(suite)}-[0-9a-f]{{16}}", stale.name):
            continue  # the current base, a lock file, a base being built, another suite's
        lock = stale.with_name(stale.name + ".lock")
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:  # a test runs on it
            os.close(fd)
            continue
        try:
            if not _mounted_over(stale):
                shutil.rmtree(stale, ignore_errors=True)
                if not stale.exists():
                    lock.unlink()
        finally:
            os.close(fd)


def base_rootfs(suite: str = SUITE) -> Path:
    """The cached base rootfs of a Debian suite (bookworm, trixie), built once per key under a lock
    (parallel test runs wait); stale bases of the same suite that nothing uses are removed."""
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    final = CACHE_DIR / f"rootfs-{suite}-{base_key(suite)}"
    with open(CACHE_DIR / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if final.is_dir():
            return _hold(final)
        tmp = final.with_name(final.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        run(
            "debootstrap",
            "--variant=minbase",
            f"--include={','.join(PACKAGES)}",
            suite,
            str(tmp),
            MIRROR,
        )
        # A developer account with passwordless sudo, as on a real dev box.
        run("chroot", str(tmp), "useradd", "--create-home", "--shell", "/bin/bash", DEV_USER)
        sudoers = tmp / "etc/sudoers.d/dev"
        sudoers.write_text(f"{DEV_USER} ALL=(ALL) NOPASSWD:ALL\n")
        sudoers.chmod(0o440)
        _trust_machine_cas(tmp)
        # What an installer writes and debootstrap does not: tools resolve localhost (Bear's gRPC).
        (tmp / "etc/hosts").write_text("127.0.0.1\tlocalhost\n::1\t\tlocalhost ip6-localhost ip6-loopback\n")
        run("chroot", str(tmp), "apt-get", "clean")
        tmp.rename(final)
        _hold(final)
        _drop_stale_bases(suite, final)
        return final


def _overlay(lower: Path, scratch: Path, target: Path) -> Path:
    """Mount a writable overlay of lower on target; writes land in scratch/upper (returned)."""
    upper, work = scratch / "upper", scratch / "work"
    upper.mkdir(parents=True)
    work.mkdir()
    run(
        "mount",
        "-t",
        "overlay",
        "overlay",
        "-o",
        f"lowerdir={lower},upperdir={upper},workdir={work}",
        str(target),
    )
    return upper


@contextmanager
def throwaway_rootfs(workdir: Path, proc: bool = True, suite: str = SUITE) -> Iterator[Path]:
    """A private, writable view of the base rootfs of suite: an overlay whose writes land in workdir.

    ~10 ms instead of several seconds for a copy; the cached base is never written.
    """
    merged = workdir / "root"
    merged.mkdir(parents=True)
    _overlay(base_rootfs(suite), workdir / "rootfs", merged)
    # Test hosts share one apt download cache, copy-on-write: each has its own archives dir (and
    # lock, so hosts can run apt in parallel), the mirror is asked once per package.
    shared = CACHE_DIR / "apt-archives"
    shared.mkdir(parents=True, exist_ok=True)
    apt_upper = _overlay(shared, workdir / "apt", merged / "var/cache/apt/archives")
    # A real host has /proc (the dynamic loader resolves $ORIGIN through it, for one). Without it
    # (proc=False), a test may put files there that only a special kernel would show.
    mounts = ["var/cache/apt/archives", ""]
    if proc:
        run("mount", "-t", "proc", "proc", str(merged / "proc"))
        mounts.insert(0, "proc")
    try:
        yield merged
    finally:
        for mount in mounts:
            run("umount", "--lazy", str(merged / mount))
        _keep_downloads(apt_upper, shared)
        shutil.rmtree(workdir, ignore_errors=True)


@contextmanager
def serve(argv: list[str], port: int, log: Path) -> Iterator[int]:
    """A server we start on 127.0.0.1:port and stop by its PID."""
    with open(log, "w") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_for_port(port, banner=b"")
        yield port
    finally:
        stop_pid(proc.pid)


@contextmanager
def http_server(directory: Path) -> Iterator[str]:
    """Serve directory over HTTP on 127.0.0.1; yields the base URL."""
    port = free_port()
    argv = ["python3", "-m", "http.server", "--bind", "127.0.0.1", "--directory", str(directory), str(port)]
    with serve(argv, port, directory.parent / f"http-{port}.log"):
        yield f"http://127.0.0.1:{port}"


@contextmanager
def threaded_http(handler: type[BaseHTTPRequestHandler]) -> Iterator[int]:
    """An HTTP server of this process on 127.0.0.1 (a free port), one thread per request; yields the
    port and stops the server on exit."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@contextmanager
def git_daemon(base: Path, *repos: Path) -> Iterator[str]:
    """Serve bare repos under base (all, or only repos) with git daemon on 127.0.0.1; yields the
    git:// base URL."""
    port = free_port()
    argv = [
        "git",
        "daemon",
        "--export-all",
        "--reuseaddr",
        f"--base-path={base}",
        "--listen=127.0.0.1",
        f"--port={port}",
        *(str(repo) for repo in repos or (base,)),
    ]
    # Its log goes with it (the daemon is stopped first): runs left one in /tmp each.
    with (
        tempfile.TemporaryDirectory(prefix="kdevbox-git-daemon-") as logs,
        serve(argv, port, Path(logs) / "git-daemon.log"),
    ):
        yield f"git://127.0.0.1:{port}"


@contextmanager
def smtp_server(maildir: Path) -> Iterator[int]:
    """An SMTP server on 127.0.0.1 (aiosmtpd) that files every message it receives in maildir."""
    port = free_port()
    argv = [
        sys.executable, "-m", "aiosmtpd", "-n", "-l", f"127.0.0.1:{port}",
        "-c", "aiosmtpd.handlers.Mailbox", str(maildir),
    ]  # fmt: skip
    with serve(argv, port, maildir.parent / f"smtp-{port}.log"):
        yield port


def in_netns(argv: list[str], netns: str | None) -> list[str]:
    """argv, run inside network namespace netns when one is given."""
    return ["ip", "netns", "exec", netns, *argv] if netns else argv


@contextmanager
def network_namespace() -> Iterator[str]:
    """A network namespace with only loopback up; deleted afterwards (stop what runs in it first)."""
    name = f"kdevbox-test-{os.getpid()}-{free_port()}"
    run("ip", "netns", "add", name)
    try:
        run("ip", "-n", name, "link", "set", "lo", "up")
        yield name
    finally:
        run("ip", "netns", "del", name)


def run_as(
    root: Path,
    command: str,
    timeout: float = 900,
    netns: str | None = None,
    user: str = DEV_USER,
    stdin: str = "",
) -> subprocess.CompletedProcess[str]:
    """A command as the developer (user) on a chroot test host, in a login shell (~/.local/bin on
    PATH), given stdin (a pipe, as in a script: the test run's own stdin is no part of it)."""
    return subprocess.run(
        in_netns(["chroot", str(root), "su", "-l", user, "-c", command], netns),
        capture_output=True,
        text=True,
        timeout=timeout,
        input=stdin,
    )


def run_in_terminal(root: Path, command: str, timeout: float = 900, user: str = DEV_USER) -> tuple[int, str]:
    """A command as user on a chroot test host, in a terminal of their own (a pty they own, as a
    person's is): its exit status and what it printed there, line ends as the terminal gave them."""
    uid, gid = (root / "home" / user).stat().st_uid, (root / "home" / user).stat().st_gid
    master, slave = os.openpty()
    os.fchown(slave, uid, gid)
    with subprocess.Popen(
        ["chroot", str(root), "su", "-l", user, "-c", command], stdin=slave, stdout=slave, stderr=slave
    ) as proc:
        os.close(slave)
        output = b""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not select.select([master], [], [], 1)[0]:
                continue
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: every writer is gone
                break
            if not chunk:
                break
            output += chunk
        os.close(master)
        try:
            status = proc.wait(timeout=max(1.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
    return status, output.decode(errors="replace")


def _keep_downloads(upper: Path, shared: Path) -> None:
    """Packages a test host downloaded join the shared cache (renamed in whole, never half-copied)."""
    for deb in upper.glob("*.deb"):
        if deb.is_file() and not (shared / deb.name).exists():
            tmp = shared / f".{deb.name}.{os.getpid()}"
            shutil.copyfile(deb, tmp)
            tmp.rename(shared / deb.name)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(port: int, timeout: float = 20.0, banner: bytes = b"SSH") -> None:
    """Wait until 127.0.0.1:port accepts connections (and greets with banner, when given)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                if not banner or s.recv(4).startswith(banner):
                    return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(f"nothing answered SSH on 127.0.0.1:{port} within {timeout}s")


def stop_pid(pid: int, timeout: float = 10.0, signum: int = signal.SIGTERM) -> None:
    """Stop one process we started, by its PID: signum (TERM), then KILL if it lingers."""
    try:
        os.kill(pid, signum)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            finished, _ = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            return
        if finished:
            return
        time.sleep(0.05)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)


@dataclass(frozen=True)
class SshHost:
    """An sshd serving one rootfs on 127.0.0.1:port, with the client key and known_hosts to reach it."""

    root: Path
    port: int
    key: Path
    known_hosts: Path

    def inventory_data(self, user: str = "root") -> dict[str, object]:
        return {
            "ssh_hostname": "127.0.0.1",
            "ssh_port": self.port,
            "ssh_user": user,
            "ssh_key": str(self.key),
            "ssh_known_hosts_file": str(self.known_hosts),
            "ssh_strict_host_key_checking": "yes",
        }


@contextmanager
def ssh_host(root: Path, workdir: Path, hostname: str = "kdevbox-test") -> Iterator[SshHost]:
    """Run sshd from root in its own mount/PID/UTS namespaces; root and the dev user take workdir/id."""
    workdir.mkdir(parents=True, exist_ok=True)
    key = workdir / "id"
    if not key.exists():
        run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key))
    pub = (workdir / "id.pub").read_text()
    for home, owner in (("root", "root"), (f"home/{DEV_USER}", DEV_USER)):
        ssh_dir = root / home / ".ssh"
        ssh_dir.mkdir(mode=0o700, exist_ok=True)
        (ssh_dir / "authorized_keys").write_text(pub)
        run("chroot", str(root), "chown", "-R", f"{owner}:", f"/{home}/.ssh")
    run("chroot", str(root), "ssh-keygen", "-A")
    (root / "etc/hostname").write_text(hostname + "\n")
    with open(root / "etc/hosts", "a") as hosts:
        hosts.write(f"127.0.1.1\t{hostname}\n")
    (root / "run/sshd").mkdir(parents=True, exist_ok=True)
    port = free_port()
    proc = subprocess.Popen(
        [
            "unshare",
            "--mount",
            "--pid",
            "--uts",
            "--fork",
            "--kill-child",
            f"--mount-proc={root}/proc",
            "sh",
            "-c",
            f"hostname {hostname} && mount --rbind /dev {root}/dev && exec chroot {root} "
            f"/usr/sbin/sshd -D -e -p {port} -o ListenAddress=127.0.0.1 "
            "-o PermitRootLogin=prohibit-password -o UseDNS=no",
        ],
        stdout=subprocess.DEVNULL,
        stderr=open(workdir / "sshd.log", "w"),  # noqa: SIM115 - closed when the process ends
    )
    try:
        wait_for_port(port)
        known_hosts = workdir / "known_hosts"
        host_key = (root / "etc/ssh/ssh_host_ed25519_key.pub").read_text().split()
        known_hosts.write_text(f"[127.0.0.1]:{port} {host_key[0]} {host_key[1]}\n")
        yield SshHost(root=root, port=port, key=key, known_hosts=known_hosts)
    finally:
        # `unshare --fork` blocks TERM while it waits for its child (TERM would cost the 10 s
        # timeout); KILL ends it, and --kill-child takes sshd, the namespace's init, with it.
        stop_pid(proc.pid, signum=signal.SIGKILL)


def file_state(path: Path) -> str:
    """Mode, owner and content hash of one file (not followed if a link): proof of 'untouched'."""
    st = path.lstat()
    content = os.readlink(path) if path.is_symlink() else hashlib.sha256(path.read_bytes()).hexdigest()
    return f"{st.st_mode:o} {st.st_uid}:{st.st_gid} {content}"


def tree_digest(root: Path, *subdirs: str) -> dict[str, str]:
    """Path -> mode, owner and content hash for every entry under root/subdir: proof of 'untouched'."""
    digest: dict[str, str] = {}
    for sub in subdirs:
        for dirpath, dirnames, filenames in os.walk(root / sub):
            dirnames.sort()
            for name in [*dirnames, *sorted(filenames)]:
                path = Path(dirpath) / name
                st = path.lstat()
                if path.is_symlink():
                    content = os.readlink(path)
                elif path.is_file():
                    content = hashlib.sha256(path.read_bytes()).hexdigest()
                else:
                    content = ""
                rel = str(path.relative_to(root))
                digest[rel] = f"{st.st_mode:o} {st.st_uid}:{st.st_gid} {content}"
    return digest
