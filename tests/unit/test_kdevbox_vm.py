"""kdevbox-vm, the program (kdevbox/kdevbox_vm.py), on the controller: QEMU's argv for each mode,
the acceleration choice and its cache, the command's encoding as exec-init decodes it, the console
watch, KTAP parsing, usage errors; and whole runs against a stand-in QEMU (a script that speaks the
serial-port protocol) for each way a run ends, Ctrl-C and SIGKILL included."""

from __future__ import annotations

import ast
import base64
import dataclasses
import json
import os
import re
import select
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kdevbox import kdevbox_kernel
from kdevbox import kdevbox_vm as vm
from kdevbox.config import Guest, Kernel
from kdevbox.tasks.guest import protocol, render_build_script, render_run_script, vm_settings
from kdevbox.templates import render

RUNNER = Path(vm.__file__)
HOME = "/home/ada"


def deployed(**guest: object) -> vm.Settings:
    """The settings the deploy writes for a guest of these settings."""
    cfg = Guest.model_validate({"name": "g1", **guest})
    return vm_settings(cfg, Kernel(), "ada", HOME, f"{HOME}/.ssh/id_ed25519")


def guest_in(tmp_path: Path, kernel: Path, **changes: Any) -> vm.Settings:
    """The settings of guest g1 whose image exists in tmp_path (a qcow2's magic) with kernel as the
    latest build's, its cache there too; changes on top."""
    image = tmp_path / "g1.qcow2"
    image.write_bytes(b"QFI\xfb")
    made = {"building": str(tmp_path / "g1.building"), "cache": str(tmp_path / "cache")}
    return dataclasses.replace(
        deployed(), image=str(image), default_kernel=str(kernel), **{**made, **changes}
    )


def options(argv: list[str], flag: str) -> list[str]:
    return [argv[i + 1] for i, word in enumerate(argv) if word == flag]


# --- the program as shipped ------------------------------------------------------------------------
@pytest.mark.parametrize(
    "program", [RUNNER, Path(kdevbox_kernel.__file__)], ids=["kdevbox-vm", "kdevbox-kernel"]
)
def test_runner_is_standard_library_only(program: Path) -> None:
    """It runs on the box, where kdevbox (and pydantic, jinja2...) is not installed."""
    tree = ast.parse(program.read_text())
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
    roots = {name.split(".")[0] for name in imported} - {"__future__"}
    assert roots <= sys.stdlib_module_names, roots - sys.stdlib_module_names


def test_settings_round_trip_as_json(tmp_path: Path) -> None:
    settings = deployed(share="~/src")
    path = tmp_path / "s.json"
    path.write_text(json.dumps(dataclasses.asdict(settings)))
    assert vm.Settings.load(str(path)) == settings
    assert settings.share == f"{HOME}/src" and settings.default_kernel.endswith("arch/x86/boot/bzImage")
    path.write_text(json.dumps({**dataclasses.asdict(settings), "old_key": 1}))
    with pytest.raises(vm.Failure, match=r"another kdevbox version: run kdevbox's deploys/guest_image\.py"):
        vm.Settings.load(str(path))


def test_launcher_passes_the_settings_file(tmp_path: Path) -> None:
    launcher = render_run_script("/home/o'neil")
    assert launcher.splitlines()[-1] == (
        "exec /usr/bin/python3 -I /usr/local/lib/kdevbox/kdevbox_vm.py "
        "--settings '/home/o'\"'\"'neil/.config/kdevbox/kdevbox-vm.json' \"$@\""
    )


# --- QEMU's argv -----------------------------------------------------------------------------------
def test_one_shot_argv_boots_into_exec_init_with_output_ports() -> None:
    settings = deployed()
    ports = {"stdout": "/t/out", "stderr": "/t/err", "status": "/t/status"}
    argv = vm.qemu_argv(settings, vm.Boot("/k/bzImage", None, "tcg"), one_shot=ports, command="ZWNobw==")
    assert argv[0] == "qemu-system-x86_64" and options(argv, "-accel") == ["tcg"]
    assert options(argv, "-cpu") == ["max"] and options(argv, "-kernel") == ["/k/bzImage"]
    assert options(argv, "-serial") == [
        f"file:{settings.console}",
        "chardev:stdio",  # ttyS1: stdout, and stdin the other way
        "file:/t/err",
        "file:/t/status",
    ]
    assert options(argv, "-chardev") == ["pipe,id=stdio,path=/t/out"]
    append = options(argv, "-append")[0].split()
    assert append[:5] == ["root=/dev/vda", "rw", "console=ttyS0", "panic=-1", "quiet"]
    assert append[5:] == [f"init={settings.exec_init}", "kdevbox.exec=ZWNobw=="]
    assert "-netdev" not in argv and "-daemonize" not in argv and "-initrd" not in argv
    assert options(argv, "-pidfile") == [settings.pidfile]
    # --net: a NIC on QEMU's user network, no port forwarded, and exec-init told to bring it up.
    argv = vm.qemu_argv(settings, vm.Boot("/k", None, "tcg"), one_shot=ports, command="eA==", net=True)
    assert options(argv, "-netdev") == ["user,id=n0"]
    assert options(argv, "-device")[0] == f"virtio-net-pci,netdev=n0,mac={settings.mac}"
    assert options(argv, "-append")[0].split()[-1] == "kdevbox.net"


@pytest.mark.parametrize("size", [0, 1, 2, 3, 57, 58 * 1024 + 1, 300 * 1024])
def test_stdin_reaches_the_guest_whole_as_base64_lines(size: int, tmp_path: Path) -> None:
    """Any bytes, any length: what exec-init's `sed '/^END$/q' | base64 -d` gets back is the input."""
    data = os.urandom(size)
    source = tmp_path / "stdin"
    source.write_bytes(data)
    port_r, port_w = os.pipe()
    os.set_blocking(port_w, False)
    sent = bytearray()
    with open(source, "rb") as given:
        feed = vm.StdinFeed(given.fileno(), port_w)
        assert feed.writers() == []  # nothing goes to the guest before exec-init has its port raw
        feed.open = True
        while feed.source is not None or feed.pending:
            if feed.readers():
                feed.read()
            feed.write()
            sent += os.read(port_r, 1 << 20) if select.select([port_r], [], [], 0)[0] else b""
    # A terminal: nothing to read, the end at once.
    assert vm.StdinFeed(None, port_w).pending == f"{vm.STDIN_END}\n".encode()
    os.close(port_w)
    sent += os.read(port_r, 1 << 20)
    os.close(port_r)
    lines = bytes(sent).split(b"\n")
    end = lines.index(vm.STDIN_END.encode())
    assert base64.b64decode(b"".join(lines[:end])) == data
    assert all(len(line) <= 76 for line in lines[:end]) and lines[end + 1 :] == [b""]


def test_whole_guest_argv_has_its_nic_and_the_debian_kernel_its_initrd() -> None:
    # The settings allow no comma; a comma would start QEMU's next option, doubled it stays data.
    settings = dataclasses.replace(deployed(ssh_port=10122), share=f"{HOME}/src,x")
    argv = vm.qemu_argv(settings, vm.Boot(settings.vmlinuz, settings.initrd, "kvm"), daemonize=True)
    assert options(argv, "-cpu") == ["host"] and "-daemonize" in argv
    assert options(argv, "-initrd") == [settings.initrd]
    assert options(argv, "-netdev") == ["user,id=n0,hostfwd=tcp:127.0.0.1:10122-:22"]
    assert options(argv, "-serial") == [f"file:{settings.console}"]
    assert "init=" not in options(argv, "-append")[0]
    assert options(argv, "-virtfs") == [f"local,path={HOME}/src,,x,mount_tag=host,security_model=none"]


def test_bridged_guest_argv_uses_its_tap_and_mac() -> None:
    settings = deployed(network="bridge")
    argv = vm.qemu_argv(settings, vm.Boot("/k", None, "tcg"))
    assert options(argv, "-netdev") == [f"tap,id=n0,ifname={settings.tap},script=no,downscript=no"]
    assert options(argv, "-device")[0] == f"virtio-net-pci,netdev=n0,mac={settings.mac}"


def test_kernel_choice_and_bzimage_check(tmp_path: Path) -> None:
    bz = tmp_path / "bzImage"
    bz.write_bytes(b"\0" * 0x202 + b"HdrS" + b"\0" * 64)
    settings = dataclasses.replace(deployed(), default_kernel=str(tmp_path / "none"))
    assert vm.pick_kernel(settings, None) == (settings.vmlinuz, settings.initrd)
    assert vm.pick_kernel(settings, str(bz)) == (str(bz), None)
    assert vm.pick_kernel(dataclasses.replace(settings, default_kernel=str(bz)), None) == (str(bz), None)
    elf = tmp_path / "vmlinux"
    elf.write_bytes(b"\x7fELF" + b"\0" * 1024)
    for given, said in ((elf, "not a bzImage"), (tmp_path / "missing", "no such file")):
        with pytest.raises(vm.Failure, match=said) as failed:
            vm.pick_kernel(settings, str(given))
        assert failed.value.status == vm.EXIT_USAGE


# --- the command's encoding, both ends -------------------------------------------------------------
def exec_init_decodes(cmdline: str, tmp_path: Path) -> str:
    """What the image's exec-init (as rendered) makes of a kernel command line: its parsing lines,
    run on a file standing in for /proc/cmdline."""
    script = render("guest/exec-init.sh.j2", user="ada", proto=protocol())
    lines = script.splitlines()
    start = lines.index("command=")
    end = lines.index("done", start)
    parse = "\n".join(lines[start : end + 1]).replace("/proc/cmdline", str(tmp_path / "cmdline"))
    (tmp_path / "cmdline").write_text(cmdline + "\n")
    ran = subprocess.run(["sh", "-c", "set -f\n" + parse + '\nprintf %s "$command"'], capture_output=True)
    assert ran.returncode == 0, ran.stderr
    return ran.stdout.decode()


@pytest.mark.parametrize(
    "argv",
    [["uname", "-r"], ["sh", "-c", 'echo "$1" >&2; exit 3', "sh", "it's a b"], ["printf", "%s\\n", "é*?[x]"]],
)
def test_command_reaches_exec_init_whole(argv: list[str], tmp_path: Path) -> None:
    import shlex

    line = shlex.join(argv)
    encoded = vm.encode_command(line)
    cmdline = f"root=/dev/vda quiet init=/x {vm.EXEC_PARAM}={encoded} other=*"
    assert exec_init_decodes(cmdline, tmp_path) == line
    assert shlex.split(vm.decode_command(encoded)) == argv


def test_command_too_long_for_the_kernel_command_line() -> None:
    vm.encode_command("x" * 1150)
    with pytest.raises(vm.Failure, match="put it in a script") as failed:
        vm.encode_command("x" * 1200)
    assert failed.value.status == vm.EXIT_USAGE


def test_protocol_is_what_the_image_is_built_with() -> None:
    """The ready line, the serial ports: the build script and exec-init take kdevbox-vm's values."""
    values = protocol()
    assert all(re.fullmatch(r"[A-Za-z0-9.,:=/ -]+", value) for value in values.values()), values
    build = render_build_script(Guest(), "ada", "ada", HOME, f"{HOME}/.ssh/id_ed25519")
    assert f"echo {vm.READY_MARKER} > /dev/{vm.TTY['console']}" in build
    init = render("guest/exec-init.sh.j2", user="ada", proto=values)
    assert "> /dev/ttyS1 2> /dev/ttyS2" in init and "echo $? > /dev/ttyS3" in init
    assert vm.TTY == {"console": "ttyS0", "stdout": "ttyS1", "stderr": "ttyS2", "status": "ttyS3"}


# --- acceleration ----------------------------------------------------------------------------------
class Probe:
    def __init__(self, reason: str | None) -> None:
        self.reason, self.calls = reason, 0

    def __call__(self) -> str | None:
        self.calls += 1
        return self.reason


def test_probe_verdict_kept_per_machine_boot_and_qemu(tmp_path: Path) -> None:
    cache = str(tmp_path / "cache" / "kvm-verdict.json")
    key = {"boot_id": "b1", "qemu": "QEMU 7.2"}
    hangs = Probe("/dev/kvm opens but a KVM guest printed nothing in 10 s")
    first = vm.decide_accel("auto", lambda: None, hangs, cache, lambda: key)
    assert (first.accel, first.fresh) == ("tcg", True) and "printed nothing" in first.reason
    again = vm.decide_accel("auto", lambda: None, hangs, cache, lambda: key)
    assert (again.accel, again.fresh, again.reason) == ("tcg", False, first.reason) and hangs.calls == 1
    # Another boot (or QEMU): probed again.
    works = Probe(None)
    after_reboot = vm.decide_accel("auto", lambda: None, works, cache, lambda: {**key, "boot_id": "b2"})
    assert after_reboot == vm.Verdict("kvm", "", True) and works.calls == 1
    assert (
        vm.decide_accel("auto", lambda: None, works, cache, lambda: {**key, "boot_id": "b2"}).accel == "kvm"
    )


def test_kvm_asked_for_fails_instead_of_falling_back(tmp_path: Path) -> None:
    cache = str(tmp_path / "v.json")
    with pytest.raises(vm.Failure, match="KVM asked for and not usable: no /dev/kvm"):
        vm.decide_accel("kvm", lambda: "no /dev/kvm: x", Probe(None), cache, dict)
    with pytest.raises(vm.Failure, match="printed nothing"):
        vm.decide_accel("kvm", lambda: None, Probe("printed nothing"), cache, dict)
    never = Probe(None)
    assert vm.decide_accel("tcg", lambda: None, never, cache, dict).accel == "tcg" and never.calls == 0
    blocked = vm.decide_accel("auto", lambda: "not in group kvm", never, cache, dict)
    assert blocked == vm.Verdict("tcg", "not in group kvm", True) and never.calls == 0
    # Said once: the next run reads the same reason back and says nothing.
    again = vm.decide_accel("auto", lambda: "not in group kvm", never, cache, dict)
    assert again == vm.Verdict("tcg", "not in group kvm", False)


def test_no_device_is_a_reason(tmp_path: Path) -> None:
    said = vm.kvm_blocker(str(tmp_path / "kvm"))
    assert said is not None and said.startswith(f"no {tmp_path / 'kvm'}: ")


# --- a stand-in QEMU -------------------------------------------------------------------------------
FAKE_QEMU = r'''#!PYTHON
"""Stands in for qemu-system-x86_64: speaks kdevbox-vm's serial-port protocol as exec-init does."""
import base64, os, sys, time
argv = sys.argv[1:]
if argv == ["--version"]:
    print("QEMU emulator version 0.0.1 (stand-in)")
    sys.exit(0)
mode = os.environ["FAKE_QEMU"]
with open(os.environ["FAKE_QEMU_PIDS"], "a") as pids:
    pids.write(f"{os.getpid()}\n")
chardevs = [argv[i + 1] for i, w in enumerate(argv) if w == "-chardev"]
stdio = next((c.split("path=", 1)[1] for c in chardevs if c.startswith("pipe,id=stdio,")), "")
for stub in [c for c in chardevs if c.startswith("socket,id=gdb0,")]:  # debug's gdb stub
    import socket
    listening = socket.socket(socket.AF_UNIX)
    listening.bind(stub.split("path=", 1)[1].split(",")[0])
    listening.listen()
serials = [argv[i + 1] for i, word in enumerate(argv) if word == "-serial"]
ports = [s.removeprefix("file:") if s.startswith("file:") else f"{stdio}.out" for s in serials]
append = argv[argv.index("-append") + 1].split()
if "-pidfile" in argv:
    with open(argv[argv.index("-pidfile") + 1], "w") as pidfile:
        pidfile.write(f"{os.getpid()}\n")
console = open(ports[0], "w", buffering=1)
def forever():
    while True:
        time.sleep(1)
if mode == "refuse":
    print("qemu-system-x86_64: failed to initialize kvm: Permission denied", file=sys.stderr)
    sys.exit(1)
if mode == "kvm-works":
    console.write("[    0.000000] Linux version 6.1.0 (stand-in)\n")
    forever()
if mode == "silent":
    forever()
console.write("[    1.000000] Run /usr/local/lib/kdevbox/exec-init as init process\n")
console.write("kdevbox-exec: init at 1.10 s\n")
if mode == "hang":
    forever()
if mode == "panic":
    console.write("[    1.200000] Kernel panic - not syncing: Attempted to kill init! exitcode=0x00000009\n")
    console.write("[    1.200001] CPU: 0 PID: 1 Comm: exec-init Not tainted 6.1.0\n")
    sys.exit(0)
if mode == "oops":
    console.write("[    1.300000] BUG: kernel NULL pointer dereference, address: 0000000000000000\n")
    console.write("[    1.300001] Oops: 0002 [#1] PREEMPT SMP NOPTI\n")
    forever()
if mode == "cat":  # the command is `cat`: stdin back on stdout, as exec-init's sed | base64 -d gives it
    with open(f"{stdio}.in", "rb", buffering=0) as given, open(ports[1], "wb") as out:
        for line in iter(given.readline, b""):
            if line == b"kdevbox-stdin-end\n":
                break
            out.write(base64.b64decode(line))
    with open(ports[3], "w") as status:
        status.write("0\n")
    sys.exit(0)
command = next(w for w in append if w.startswith("kdevbox.exec=")).split("=", 1)[1]
line = base64.b64decode(command).decode()
with open(ports[1], "w") as out, open(ports[2], "w") as err:
    out.write(f"ran: {line}\n")
    err.write("on stderr\n")
if mode != "lost":
    with open(ports[3], "w") as status:
        status.write("3\r\n")
console.write("kdevbox-exec: done at 1.50 s\n")
'''


@pytest.fixture()
def fake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[vm.Settings]:
    """Settings of a guest in tmp_path, the stand-in QEMU first on PATH."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    qemu = bin_dir / "qemu-system-x86_64"
    qemu.write_text(FAKE_QEMU.replace("PYTHON", sys.executable))
    qemu.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_QEMU_PIDS", str(tmp_path / "qemu.pids"))
    guests = tmp_path / "guests"
    guests.mkdir()
    bz = tmp_path / "bzImage"
    bz.write_bytes(b"\0" * 0x202 + b"HdrS")
    (guests / "g1.qcow2").write_bytes(b"")
    files = (
        "image",
        "vmlinuz",
        "initrd",
        "pidfile",
        "console",
        "known_hosts",
        "kselftest_tap",
        "building",
        "gdb",
    )
    paths: dict[str, Any] = {name: str(guests / Path(getattr(deployed(), name)).name) for name in files}
    yield dataclasses.replace(
        deployed(accel="tcg"), **paths, default_kernel=str(bz), cache=str(tmp_path / "cache")
    )
    for pid in (tmp_path / "qemu.pids").read_text().split() if (tmp_path / "qemu.pids").exists() else []:
        assert not _alive(int(pid)), f"the stand-in QEMU {pid} outlived kdevbox-vm"


def _alive(pid: int) -> bool:
    """Whether pid runs (a zombie does not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def run_vm(
    settings: vm.Settings, mode: str, *args: str, monkeypatch: pytest.MonkeyPatch, stdin: str = ""
) -> tuple[int, str, str]:
    """kdevbox-vm as a program with these settings and stdin; its status, stdout and stderr."""
    path = Path(settings.cache).parent / "settings.json"
    path.write_text(json.dumps(dataclasses.asdict(settings)))
    monkeypatch.setenv("FAKE_QEMU", mode)
    ran = subprocess.run(
        [sys.executable, "-I", str(RUNNER), "--settings", str(path), *args],
        capture_output=True,
        text=True,
        timeout=120,
        input=stdin,
    )
    return ran.returncode, ran.stdout, ran.stderr


def test_exec_forwards_a_piped_stdin(fake: vm.Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    given = "".join(f"line {n}: it's \u00e9\n" for n in range(5000))  # more than a pipe holds
    status, out, err = run_vm(fake, "cat", "exec", "--", "cat", monkeypatch=monkeypatch, stdin=given)
    assert status == 0 and out == given, err


def test_one_shot_output_apart_and_the_command_status(
    fake: vm.Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    status, out, err = run_vm(fake, "ok", "exec", "--", "sh", "-c", "it's", monkeypatch=monkeypatch)
    assert (status, out) == (3, "ran: sh -c 'it'\"'\"'s'\n"), err
    assert err.endswith("on stderr\n")
    assert not Path(fake.pidfile).exists()
    assert os.stat(fake.console).st_mode & 0o777 == 0o600


def test_exec_json_is_the_result_as_data(fake: vm.Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    status, out, err = run_vm(fake, "ok", "exec", "--json", "--", "uname", "-r", monkeypatch=monkeypatch)
    result = json.loads(out)
    assert status == 3 and result["status"] == 3 and result["outcome"] == "exited", err
    assert result["stdout"] == "ran: uname -r\n" and result["stderr"] == "on stderr\n"
    assert (result["accel"], result["kernel"], result["console"]) == (
        "tcg",
        fake.default_kernel,
        fake.console,
    )
    assert result["mode"] == "one-shot" and result["seconds"] > 0


@pytest.mark.parametrize(
    ("mode", "args", "status", "said"),
    [
        ("panic", (), vm.EXIT_PANIC, "panicked (console: "),
        ("oops", (), vm.EXIT_OOPS, "BUG: kernel NULL pointer dereference"),
        ("silent", ("--boot-timeout", "1"), vm.EXIT_STALLED, "the kernel printed no line"),
        ("hang", ("--timeout", "1"), vm.EXIT_TIMEOUT, "past --timeout 1 s"),
        ("lost", (), vm.EXIT_LOST, "kdevbox-exec: done at 1.50 s"),
        ("refuse", (), vm.EXIT_QEMU, "QEMU did not start: qemu-system-x86_64: failed to initialize kvm"),
    ],
)
def test_a_run_that_goes_wrong_ends_and_says_why(
    fake: vm.Settings,
    monkeypatch: pytest.MonkeyPatch,
    mode: str,
    args: tuple[str, ...],
    status: int,
    said: str,
) -> None:
    got, _out, err = run_vm(fake, mode, "exec", *args, "--", "true", monkeypatch=monkeypatch)
    assert got == status and said in err, err
    if mode == "panic":
        assert "Kernel panic - not syncing: Attempted to kill init!" in err
    assert not Path(fake.pidfile).exists()


def sigint_as_from_a_terminal() -> None:
    """In a child: SIGINT's default, as a program started at a terminal has it. The suite may run as
    a script's background job (a CI rehearsal), whose children inherit it ignored."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_ctrl_c_and_sigkill_stop_qemu(
    fake: vm.Settings, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    path = tmp_path / "settings.json"
    path.write_text(json.dumps(dataclasses.asdict(fake)))
    monkeypatch.setenv("FAKE_QEMU", "hang")
    monkeypatch.setenv("TMPDIR", str(tmp_path))  # a SIGKILLed run's temp dir (its FIFOs) goes with it
    pids = tmp_path / "qemu.pids"
    for signum, status in ((signal.SIGINT, vm.EXIT_INTERRUPTED), (signal.SIGKILL, -signal.SIGKILL)):
        pids.write_text("")
        runner = subprocess.Popen(
            [sys.executable, "-I", str(RUNNER), "--settings", str(path), "exec", "--", "true"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            preexec_fn=sigint_as_from_a_terminal,
        )
        try:
            deadline = time.monotonic() + 60
            while not pids.read_text().split() and time.monotonic() < deadline:
                time.sleep(0.05)
            qemu = int(pids.read_text().split()[0])
            runner.send_signal(signum)
            assert runner.wait(60) == status
        finally:
            runner.kill()
            runner.wait()
        deadline = time.monotonic() + 30
        while _alive(qemu) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _alive(qemu), f"QEMU outlived kdevbox-vm's {signal.Signals(signum).name}"


def test_kvm_probe_against_a_stand_in(fake: vm.Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_QEMU", "kvm-works")
    assert vm.probe_kvm(fake.default_kernel) is None
    monkeypatch.setenv("FAKE_QEMU", "refuse")
    assert vm.probe_kvm(fake.default_kernel) == (
        "QEMU refuses KVM: qemu-system-x86_64: failed to initialize kvm: Permission denied"
    )
    monkeypatch.setenv("FAKE_QEMU", "silent")
    assert "printed nothing in 1 s" in (vm.probe_kvm(fake.default_kernel, bound=1) or "")


def test_missing_or_building_image_named_with_the_fix(
    fake: vm.Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    Path(fake.building).write_text(f"{os.getpid()}\n")
    status, _, err = run_vm(fake, "ok", "exec", "true", monkeypatch=monkeypatch)
    assert status == vm.EXIT_FAILED and "is being built" in err and fake.build_log in err
    Path(fake.building).write_text("999999999\n")  # a build that was killed: no longer in the way
    Path(fake.image).unlink()
    status, _, err = run_vm(fake, "ok", "exec", "true", monkeypatch=monkeypatch)
    assert status == vm.EXIT_FAILED and "deploys/guest_image.py" in err
    assert len(err.strip().splitlines()) == 1


# --- the console watch -----------------------------------------------------------------------------
def test_console_marks_and_trouble(tmp_path: Path) -> None:
    console = vm.Console(str(tmp_path / "c"))
    console.feed(["[    0.1] kdevbox-exec: init at 0.10 s", "a user's line with BUG: in it"])
    assert console.init_seen and console.trouble is None
    console.feed(["[   12.5] general protection fault, probably for non-canonical address"])
    assert console.trouble == "oops"
    console.feed(["[   12.6] Kernel panic - not syncing: Fatal exception"])
    console.feed([f"[   12.7]  frame {n}" for n in range(40)])
    assert console.trouble == "panic" and vm.trouble_outcome(console).status == vm.EXIT_PANIC
    # Shown from the first sign of trouble on, not the tail a long stack trace would fill.
    shown = vm.trouble_outcome(console).message.splitlines()
    assert shown[1] == "[   12.5] general protection fault, probably for non-canonical address"
    assert shown[2] == "[   12.6] Kernel panic - not syncing: Fatal exception"
    (tmp_path / "c").write_bytes(b"kdevbox-guest-ready\r\npartial")
    console = vm.Console(str(tmp_path / "c"))
    console.poll()
    assert console.ready_seen and console.last_lines().endswith("kdevbox-guest-ready\npartial")


# --- selftests -------------------------------------------------------------------------------------
# run_kselftest.sh's shape: runner result lines, the tests' own TAP nested behind "# ".
TAP = """\
TAP version 13
1..4
# selftests: size: get_size
# TAP version 13
# 1..1
# ok 1 get runtime memory use
ok 1 selftests: size: get_size
# selftests: timens: timens
# not ok 1 clock_gettime # SKIP Time namespaces are not supported
# ok 2 - clock_settime
ok 2 selftests: timens: timens # SKIP
# selftests: timens: exec
not ok 3 selftests: timens: exec # exit=1
# selftests: kcmp: kcmp_test
not ok 4 selftests: kcmp: kcmp_test # TIMEOUT 45 seconds
"""


def test_ktap_per_test_and_subtest() -> None:
    tests = vm.parse_kselftest(TAP.splitlines())
    assert [(t.target, t.name, t.result, t.reason) for t in tests] == [
        ("size", "get_size", "ok", ""),
        ("timens", "timens", "skip", ""),
        ("timens", "exec", "not ok", "exit=1"),
        ("kcmp", "kcmp_test", "not ok", "TIMEOUT 45 seconds"),
    ]
    assert [(s.number, s.name, s.result, s.reason) for s in tests[1].subtests] == [
        (1, "clock_gettime", "skip", "Time namespaces are not supported"),
        (2, "clock_settime", "ok", ""),
    ]
    assert tests[0].subtests[0].name == "get runtime memory use" and tests[2].subtests == []
    assert vm.count_results(tests) == {
        "size": {"pass": 1, "fail": 0, "skip": 0},
        "timens": {"pass": 0, "fail": 1, "skip": 1},
        "kcmp": {"pass": 0, "fail": 1, "skip": 0},
    }
    shown = vm.report(tests).splitlines()
    assert shown[0].split() == ["target", "pass", "fail", "skip"] and shown[2].split() == [
        "timens",
        "0",
        "1",
        "1",
    ]
    assert shown[-2:] == ["FAILED timens: exec (exit=1)", "FAILED kcmp: kcmp_test (TIMEOUT 45 seconds)"]


# --- the command line ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "argv",
    [
        ["--settings", "s"],
        ["--settings", "s", "reboot"],
        ["--settings", "s", "exec", "--bogus", "true"],
        ["--settings", "s", "exec"],
        ["--settings", "s", "exec", "--timeout", "soon", "true"],
        ["--settings", "s", "start", "--accel", "hvf"],
    ],
)
def test_usage_errors_exit_2_with_the_usage(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        vm.main(argv)
    assert exited.value.code == vm.EXIT_USAGE
    assert capsys.readouterr().err.startswith("usage: kdevbox-vm")


def test_exec_keeps_the_command_words_whole() -> None:
    args = vm.build_parser().parse_args(
        ["--settings", "s", "exec", "--systemd", "--", "sudo", "systemctl", "is-system-running", "--wait"]
    )
    assert args.systemd and args.command == ["--", "sudo", "systemctl", "is-system-running", "--wait"]
    assert vm._command(args) == ["sudo", "systemctl", "is-system-running", "--wait"]
    args = vm.build_parser().parse_args(["--settings", "s", "run", "uname", "-r"])
    assert vm._command(args) == ["uname", "-r"]


def test_help_names_the_exit_statuses(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        vm.main(["--settings", "s", "exec", "--help"])
    assert exited.value.code == 0
    shown = capsys.readouterr().out
    assert "--timeout SECONDS" in shown and "124  the command ran past --timeout" in shown
