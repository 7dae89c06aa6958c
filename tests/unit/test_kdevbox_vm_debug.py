"""kdevbox-vm debug and dump on the controller: the stub's argv (127.0.0.1 only, halted, nokaslr),
gdb's argv, the checks that a build can be debugged (debug fragment, vmlinux of the same build,
gdb, a free port) and the QMP exchange against a small QMP server speaking the protocol."""

from __future__ import annotations

import dataclasses
import json
import os
import socket
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kdevbox import kdevbox_vm as vm
from tests.unit import test_kdevbox_vm as base
from tests.unit.test_kdevbox_vm import deployed, guest_in, options

VERSION = "6.1.192-kdevbox-test (ada@box) #3 SMP PREEMPT_DYNAMIC Tue Dec  1 16:00:00 UTC 2026"


def bzimage(path: Path, version: str = VERSION) -> Path:
    """A file with the x86 boot header's magic and its kernel_version pointer, as a bzImage has."""
    data = bytearray(0x800)
    data[0x202:0x206] = b"HdrS"
    data[0x20E:0x210] = (0x400 - 0x200).to_bytes(2, "little")
    data[0x400 : 0x400 + len(version) + 1] = version.encode() + b"\0"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(bytes(data))
    return path


def build_dir(root: Path, banner_version: str = VERSION, debug: bool = True, dirname: str = "build") -> Path:
    """A kernel build dir as kdevbox makes it: bzImage, vmlinux with its banner, .config, helpers."""
    build = root / dirname / "kdevbox"
    bzimage(build / "arch/x86/boot/bzImage")
    head, _, rest = banner_version.partition(") ")
    banner = f"Linux version {head}) (gcc (Debian 12.2.0-14) 12.2.0, GNU ld 2.40) {rest}\n"
    (build / "vmlinux").write_bytes(b"\x7fELF" + b"\0" * 4096 + banner.encode() + b"\0" * 64)
    lines = ["CONFIG_DEBUG_INFO=y", "CONFIG_GDB_SCRIPTS=y"] if debug else ["# CONFIG_DEBUG_INFO is not set"]
    (build / ".config").write_text("\n".join(["CONFIG_64BIT=y", *lines]) + "\n")
    if debug:
        (build / "vmlinux-gdb.py").write_text("# the kernel's gdb helpers\n")
    return build


# --- QEMU's and gdb's argv -------------------------------------------------------------------------
def test_debug_argv_stub_on_a_private_socket_halted_and_nokaslr() -> None:
    settings = deployed()
    ports = {"stdout": "/t/out", "stderr": "/t/err", "status": "/t/status"}
    boot = vm.Boot("/b/arch/x86/boot/bzImage", None, "tcg", append=vm.DEBUG_APPEND)
    stub = vm.stub_options(settings.gdb, True)
    argv = vm.qemu_argv(settings, boot, one_shot=ports, command="eA==", extra=stub)
    # A socket in the image dir (0700), never a TCP port: 127.0.0.1 is every local account's.
    assert options(argv, "-gdb") == ["chardev:gdb0"] and "-S" in argv
    assert f"socket,id=gdb0,path={settings.gdb},server=on,wait=off" in options(argv, "-chardev")
    assert os.path.dirname(settings.gdb) == os.path.dirname(settings.image)  # the 0700 image dir
    append = options(argv, "-append")[0].split()
    assert "nokaslr" in append and append.index("nokaslr") > append.index("panic=-1")
    assert options(argv, "-qmp") == [f"unix:{settings.qmp},server=on,wait=off"]
    assert "vmcoreinfo" in options(argv, "-device")
    assert "-S" not in vm.stub_options(settings.gdb, False)
    # Every mode has the monitor (dump), no mode the stub unless debug asks.
    whole = vm.qemu_argv(settings, vm.Boot("/k", None, "tcg"), daemonize=True)
    assert options(whole, "-qmp") == options(argv, "-qmp") and "-gdb" not in whole and "-S" not in whole
    assert "nokaslr" not in options(whole, "-append")[0]


def test_gdb_argv_loads_the_helpers_connects_then_runs_the_files() -> None:
    build = vm.DebugBuild("/home/ada/build/kdevbox")
    argv = vm.gdb_argv(build, "/g/g1.gdb", ["/t/a.gdb", "/t/b.gdb"], batch="/t/run.gdb")
    assert argv[:3] == ["gdb", "-q", "-batch"] and argv[-1] == "/home/ada/build/kdevbox/vmlinux"
    assert options(argv, "-iex") == ["add-auto-load-safe-path /home/ada/build/kdevbox"]
    assert options(argv, "-ex")[-1] == "target remote /g/g1.gdb"
    assert options(argv, "-x") == ["/t/a.gdb", "/t/b.gdb", "/t/run.gdb"]
    assert "-batch" not in vm.gdb_argv(build, "/g/g1.gdb")
    line = vm.attach_line(vm.DebugBuild("/home/o'neil/build/k"), "/g/g1.gdb")
    assert line.startswith("cd '/home/o'\"'\"'neil/build/k' && gdb -q -iex ")
    assert line.endswith("-ex 'target remote /g/g1.gdb' '/home/o'\"'\"'neil/build/k/vmlinux'")


# --- what can be debugged --------------------------------------------------------------------------
def test_a_debug_build_is_found_beside_its_bzimage(tmp_path: Path) -> None:
    build = build_dir(tmp_path)
    found = vm.debug_build(str(build / "arch/x86/boot/bzImage"), True, deployed())
    assert found == vm.DebugBuild(str(build)) and found.vmlinux == str(build / "vmlinux")
    assert vm.bzimage_version(str(build / "arch/x86/boot/bzImage")) == VERSION


@pytest.mark.parametrize(
    ("breakage", "status", "said"),
    [
        (
            "no-debug",
            vm.EXIT_USAGE,
            r"is no debug build \(no CONFIG_DEBUG_INFO=y CONFIG_GDB_SCRIPTS=y in its",
        ),
        ("no-helpers", vm.EXIT_USAGE, r"is no debug build \(no .*/vmlinux-gdb\.py\)"),
        ("no-vmlinux", vm.EXIT_USAGE, "no vmlinux in .*: add debug to kernel.fragments"),
        ("other-build", vm.EXIT_USAGE, r"vmlinux is not the build of .*#4 SMP.*give --kernel the bzImage"),
        ("not-in-a-build", vm.EXIT_USAGE, "is no kernel build's bzImage .*give a kdevbox build's"),
        ("shared-build", vm.EXIT_USAGE, "is not yours alone to write: gdb would run its Python"),
        ("default-other-build", vm.EXIT_FAILED, r"vmlinux is not the build of .*deploys/kernel\.py"),
        ("debian-kernel", vm.EXIT_FAILED, "is no kernel build's bzImage .*add debug to kernel.fragments"),
    ],
)
def test_what_cannot_be_debugged_says_the_fix(breakage: str, status: int, said: str, tmp_path: Path) -> None:
    settings = deployed()
    build = build_dir(tmp_path, debug=breakage != "no-debug")
    kernel, given = str(build / "arch/x86/boot/bzImage"), True
    if breakage == "no-helpers":
        (build / "vmlinux-gdb.py").unlink()
    elif breakage == "no-vmlinux":
        (build / "vmlinux").unlink()
    elif breakage in ("other-build", "default-other-build"):
        bzimage(Path(kernel), VERSION.replace("#3", "#4"))  # rebuilt; its vmlinux from before
        given = breakage == "other-build"
    elif breakage == "shared-build":
        build.chmod(0o777)  # anyone's vmlinux-gdb.py
    elif breakage == "not-in-a-build":
        kernel = str(bzimage(tmp_path / "elsewhere" / "bzImage"))
    elif breakage == "debian-kernel":
        kernel, given = settings.vmlinuz, False
    with pytest.raises(vm.Failure, match=said) as failed:
        vm.debug_build(kernel, given, settings)
    assert failed.value.status == status and "\n" not in str(failed.value)


@pytest.fixture()
def guest(tmp_path: Path) -> Iterator[tuple[Path, vm.Settings]]:
    """A settings file for a guest whose image and latest build (a debug build) exist in tmp_path."""
    build = build_dir(tmp_path)
    settings = guest_in(
        tmp_path,
        build / "arch/x86/boot/bzImage",
        pidfile=str(tmp_path / "g1.pid"),
        qmp=str(tmp_path / "g1.qmp"),
        gdb=str(tmp_path / "g1.gdb"),
        dump=str(tmp_path / "g1.dump"),
    )
    path = tmp_path / "settings.json"
    path.write_text(json.dumps(dataclasses.asdict(settings)))
    yield path, settings


def test_debug_without_gdb_or_with_a_missing_script_says_what_to_do(
    guest: tuple[Path, vm.Settings],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    path, _ = guest
    script = tmp_path / "run.gdb"
    script.write_text("continue\n")
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    status = vm.main(["--settings", str(path), "debug", "--gdb-batch", str(script), "--", "uname", "-r"])
    assert status == vm.EXIT_FAILED
    said = capsys.readouterr().err.strip().splitlines()
    assert said == [
        "kdevbox-vm: no gdb on PATH: add debug to kernel.fragments and run kdevbox's deploys/kernel.py "
        "(it installs gdb), or --print to attach your own"
    ]
    status = vm.main(["--settings", str(path), "debug", "--gdb-batch", str(tmp_path / "nope.gdb")])
    assert status == vm.EXIT_USAGE and "--gdb-batch" in capsys.readouterr().err


def test_dump_of_a_guest_not_running_says_how(
    guest: tuple[Path, vm.Settings], capsys: pytest.CaptureFixture[str]
) -> None:
    path, settings = guest
    assert vm.main(["--settings", str(path), "dump"]) == vm.EXIT_FAILED
    assert (
        capsys.readouterr().err
        == f"kdevbox-vm: {settings.name} is not running: kdevbox-vm start (or debug) it, then dump it\n"
    )


def test_dump_on_panic_with_a_whole_guest_is_a_usage_error(
    guest: tuple[Path, vm.Settings], capsys: pytest.CaptureFixture[str]
) -> None:
    """Its kernel reboots on a panic (QEMU ends): the option would be silently ignored."""
    path, settings = guest
    status = vm.main(["--settings", str(path), "exec", "--systemd", "--dump-on-panic", "--", "true"])
    assert status == vm.EXIT_USAGE
    assert "--dump-on-panic is for a one-shot boot" in capsys.readouterr().err
    assert not Path(settings.pidfile).exists() and not Path(settings.cache).exists()  # nothing booted


# --- QMP -------------------------------------------------------------------------------------------
class FakeQmp:
    """A QMP server on a unix socket, as QEMU speaks it: the greeting, then an answer per command
    with events in between; dump-guest-memory writes its file: target."""

    def __init__(self, path: Path, refuse: bool = False) -> None:
        self.path, self.refuse = path, refuse
        self.seen: list[dict[str, Any]] = []
        self.server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.server.bind(str(path))
        self.server.listen(1)
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self) -> None:
        connection, _ = self.server.accept()
        with connection, connection.makefile("rwb") as stream:

            def send(message: dict[str, Any]) -> None:
                stream.write(json.dumps(message).encode() + b"\r\n")
                stream.flush()

            send({"QMP": {"version": {"qemu": {"major": 7}}, "capabilities": ["oob"]}})
            for line in stream:
                command = json.loads(line)
                self.seen.append(command)
                if command["execute"] == "dump-guest-memory":
                    if self.refuse:
                        send({"error": {"class": "GenericError", "desc": "dump: guest has no memory"}})
                        continue
                    send({"event": "STOP", "timestamp": {"seconds": 1, "microseconds": 0}})
                    target = command["arguments"]["protocol"].removeprefix("file:")
                    Path(target).write_bytes(b"\x7fELF core")
                    send({"event": "RESUME", "timestamp": {"seconds": 2, "microseconds": 0}})
                send({"return": {}})

    def close(self) -> None:
        self.server.close()
        self.thread.join(5)


def test_dump_over_qmp_written_whole_and_private(tmp_path: Path) -> None:
    settings = dataclasses.replace(deployed(), qmp=str(tmp_path / "g.qmp"), dump=str(tmp_path / "g.dump"))
    server = FakeQmp(tmp_path / "g.qmp")
    try:
        assert vm.dump_memory(settings, "kdump-zlib") == settings.dump
    finally:
        server.close()
    assert [c["execute"] for c in server.seen] == ["qmp_capabilities", "dump-guest-memory"]
    arguments = server.seen[1]["arguments"]
    assert arguments["paging"] is False and arguments["format"] == "kdump-zlib"
    assert arguments["protocol"].startswith(f"file:{tmp_path}/.g.dump")  # beside it, then renamed
    assert Path(settings.dump).read_bytes() == b"\x7fELF core"
    assert stat.S_IMODE(os.stat(settings.dump).st_mode) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["g.dump", "g.qmp"]


def test_qmp_refusal_and_a_dead_socket_are_one_line(tmp_path: Path) -> None:
    settings = dataclasses.replace(deployed(), qmp=str(tmp_path / "g.qmp"), dump=str(tmp_path / "g.dump"))
    server = FakeQmp(tmp_path / "g.qmp", refuse=True)
    try:
        with pytest.raises(vm.Failure, match="QEMU refused dump-guest-memory: dump: guest has no memory"):
            vm.dump_memory(settings)
    finally:
        server.close()
    assert not Path(settings.dump).exists()
    with pytest.raises(vm.Failure, match=r"monitor .* does not answer"):
        vm.dump_memory(dataclasses.replace(settings, qmp=str(tmp_path / "gone.qmp")))


def test_dump_on_panic_keeps_the_panicked_guest_for_its_dump(tmp_path: Path) -> None:
    settings = dataclasses.replace(deployed(), qmp=str(tmp_path / "g.qmp"), dump=str(tmp_path / "g.dump"))
    boot, keep = vm.keep_panics(settings, vm.Boot("/k", None, "tcg", append=vm.DEBUG_APPEND), "elf")
    assert keep is not None and boot.append == ("nokaslr", "panic=0")
    append = options(vm.qemu_argv(settings, boot), "-append")[0].split()
    assert append.index("panic=0") > append.index("panic=-1")  # the kernel takes the last one
    assert vm.keep_panics(settings, boot, None)[1] is None
    console = vm.Console(str(tmp_path / "console"))
    console.feed(["[    1.0] Oops: 0002 [#1] SMP"])
    keep(console)  # an oops alone: nothing dumped (the guest goes on)
    assert not Path(settings.dump).exists()
    console.feed(["[    1.2] Kernel panic - not syncing: sysrq triggered crash"])
    server = FakeQmp(tmp_path / "g.qmp")
    try:
        keep(console)
    finally:
        server.close()
    assert Path(settings.dump).read_bytes() == b"\x7fELF core"
    parsed = vm.build_parser().parse_args(["--settings", "s", "exec", "--dump-on-panic", "--", "true"])
    assert parsed.dump_on_panic == "elf" and parsed.command == ["--", "true"]


# --- whole runs against the stand-in QEMU, with a stand-in gdb -------------------------------------
fake = base.fake  # the stand-in QEMU's guest settings (tests/unit/test_kdevbox_vm.py)
FAKE_GDB = r'''#!PYTHON
"""Stands in for gdb: notes how it was started, waits for the guest's QEMU (its pidfile), then ends
at once (a person quitting) or after QEMU is gone (a batch script's last continue)."""
import json, os, sys, time
with open(os.environ["FAKE_GDB_LOG"], "w") as log:
    json.dump({"argv": sys.argv[1:], "cwd": os.getcwd()}, log)
pidfile = os.environ["FAKE_GDB_PIDFILE"]
while not os.path.exists(pidfile):
    time.sleep(0.05)
if os.environ["FAKE_GDB"] == "after-qemu":
    while os.path.exists(pidfile):
        time.sleep(0.05)
    sys.exit(1)  # "Remote connection closed"
'''


@pytest.mark.parametrize(
    ("gdb", "qemu", "status", "said"),
    [
        ("quits", "silent", 0, "gdb ended before the command: the guest was stopped"),
        ("after-qemu", "exits", 3, ""),  # the command's own status, not gdb's
    ],
)
def test_debug_runs_gdb_beside_qemu_and_neither_outlives_the_other(
    gdb: str,
    qemu: str,
    status: int,
    said: str,
    fake: vm.Settings,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    build = build_dir(tmp_path)
    settings = dataclasses.replace(fake, default_kernel=str(build / "arch/x86/boot/bzImage"))
    stand_in = tmp_path / "bin" / "gdb"
    stand_in.write_text(FAKE_GDB.replace("PYTHON", sys.executable))
    stand_in.chmod(0o755)
    script = tmp_path / "run.gdb"
    script.write_text("continue\n")
    monkeypatch.setenv("FAKE_GDB", gdb)
    monkeypatch.setenv("FAKE_GDB_LOG", str(tmp_path / "gdb.json"))
    monkeypatch.setenv("FAKE_GDB_PIDFILE", settings.pidfile)
    code, _, err = base.run_vm(settings, qemu, "debug", "--gdb-batch", str(script), monkeypatch=monkeypatch)
    assert code == status, err
    assert (said in err) if said else "gdb ended" not in err, err
    started = json.loads((tmp_path / "gdb.json").read_text())
    assert started["cwd"] == str(build) and started["argv"][-1] == str(build / "vmlinux")
    assert f"gdb stub on {settings.gdb}," in err
    assert f"target remote {settings.gdb}" in started["argv"] and str(script) in started["argv"]
    assert not Path(settings.gdb).exists()  # the stub's socket goes with the run
    assert not Path(settings.pidfile).exists()  # QEMU's end; the fixture checks none outlived us


def test_the_dump_hint_names_the_booted_builds_vmlinux(tmp_path: Path) -> None:
    """crash with the vmlinux of the bzImage QEMU boots (its unpacked copy is what -kernel names),
    told to skip slab caches on SLOB."""
    build = build_dir(tmp_path, dirname="R,D")  # a comma, which QEMU's options double
    kernel = str(build / "arch/x86/boot/bzImage")
    boot = vm.Boot(kernel, None, "tcg", load=str(tmp_path / "cache/vmlinux/0123"))
    argv = vm.qemu_argv(deployed(), boot)[1:]
    qemu = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", *argv])
    try:
        deadline = time.monotonic() + 30
        while (
            b"-kernel" not in Path(f"/proc/{qemu.pid}/cmdline").read_bytes() and time.monotonic() < deadline
        ):
            time.sleep(0.01)  # until the child has exec'd: its argv is there
        hint = vm.open_hint(deployed(), "/g/g1.dump", qemu.pid)
        assert hint.startswith(f"open it with `crash {build}/vmlinux /g/g1.dump`")
        (build / ".config").write_text((build / ".config").read_text() + "CONFIG_SLOB=y\n")
        assert f"`crash --no_kmem_cache {build}/vmlinux /g/g1.dump`" in vm.open_hint(
            deployed(), "/g/g1.dump", qemu.pid
        )
    finally:
        qemu.kill()
        qemu.wait()
    assert "has no vmlinux to read it with" in vm.open_hint(deployed(), "/g/g1.dump", qemu.pid)
