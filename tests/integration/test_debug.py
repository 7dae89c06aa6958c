"""Debugging the kernel kdevbox built, for real under TCG, on the lab's shared build (tinyconfig +
guest + debug, a module): `kdevbox-vm debug` boots it under QEMU's gdb stub with gdb scripted as a
developer scripts it (a breakpoint on the syscall `uname` takes, bt, lx-dmesg, lx-ps, lx-symbols
after a modprobe, continue), a dump of that guest's memory taken while it is stopped opens in crash,
and misuse stops with the fix."""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kdevbox import kdevbox_vm
from tests import testhosts
from tests.integration.test_guest import GUEST_IMAGE, Vm, images, kill_guest
from tests.setups import KERNEL, deploy, guest_kernel_settings, verify, write_inventory
from tests.testhosts import DEV_USER, run_as, run_in_terminal

pytestmark = pytest.mark.slow
GUEST = "kdebug"
HOME = f"/home/{DEV_USER}"
BUILD = f"{HOME}/build/kdevbox"


@pytest.fixture()
def debug_guest(kernel_lab: Path, kernel_repo_url: str, tmp_path: Path) -> Iterator[tuple[Path, Vm]]:
    """The lab's kernel (its shared settings: no reconfigure; the selftests are test_guest's, which
    checks it builds them) and a guest image of its own, deployed and verified; its QEMU stopped by
    PID afterwards whatever happened."""
    guest: dict[str, Any] = {"name": GUEST, "size": "3G", "ssh_port": testhosts.free_port(), "memory": "512M"}
    kernel = guest_kernel_settings(kernel_repo_url)
    name = f"@chroot{kernel_lab}"
    inventory = write_inventory(tmp_path, [(name, {"user": DEV_USER, "kernel": kernel, "guest": guest})])
    try:
        built = deploy(inventory, KERNEL)[name]
        assert not built["failed"], built
        assert deploy(inventory, KERNEL)[name]["changed"] == []
        imaged = deploy(inventory, GUEST_IMAGE)[name]
        assert not imaged["failed"], imaged
        checked = verify(inventory, "kdevbox.verify.kernel_checks")
        assert checked.returncode == 0 and checked.failed == 0, checked.output
        yield kernel_lab, Vm(kernel_lab, GUEST, guest["ssh_port"])
    finally:
        kill_guest(kernel_lab, GUEST)


# What a developer scripts: stop in the syscall `uname` takes (in the command's process: the
# condition reads the kernel's current task with the helpers), look around, dump, let it finish.
UNAME_SCRIPT = """\
hbreak __x64_sys_newuname if $_streq($lx_current().comm, "uname")
continue
bt
lx-dmesg
lx-ps
lx-symbols
shell {vm} dump
delete
continue
"""
# In a terminal: gdb is the developer's; quitting it at start_kernel ends the run, QEMU with it.
QUIT_SCRIPT = """\
set confirm off
hbreak start_kernel
continue
quit
"""


def write_script(root: Path, name: str, text: str) -> str:
    """A gdb script in the developer's home, theirs (0644), as a path inside the host."""
    path = root / HOME.lstrip("/") / name
    path.write_text(text)
    os.chown(path, 1000, 1000)
    return f"{HOME}/{name}"


def test_gdb_on_the_built_kernel_and_a_dump_of_it(debug_guest: tuple[Path, Vm]) -> None:
    root, vm = debug_guest
    release = (root / BUILD.lstrip("/") / "include/config/kernel.release").read_text().strip()
    pidfile = root / images(DEV_USER) / f"{GUEST}.pid"
    dump = root / images(DEV_USER) / f"{GUEST}.dump"

    script = write_script(root, "uname.gdb", UNAME_SCRIPT.format(vm=vm.script))
    ran = vm(
        "debug", "--gdb-batch", script, "--", "sh", "-c", "'sudo modprobe dummy && uname -r'", timeout=1200
    )
    out = ran.stdout
    assert ran.returncode == 0, out + ran.stderr
    # The stub is a socket in the 0700 image dir (a port on 127.0.0.1 is any local account's), gone after.
    stub = f"/{images(DEV_USER)}/{GUEST}.gdb"
    assert f"gdb stub on {stub}, the guest halted until gdb continues it" in ran.stderr, ran.stderr
    assert not (root / stub.lstrip("/")).exists()
    assert re.search(r"hit Breakpoint 1, __x64_sys_newuname ", out), out
    frames = [line for line in out.splitlines() if re.match(r"#\d+ ", line)]
    assert any("do_syscall_64" in f for f in frames) and any("entry_SYSCALL_64" in f for f in frames), out
    assert f"Linux version {release} " in out, out  # lx-dmesg: the boot log, from the kernel's buffer
    assert re.search(r"\s\d+\s+uname\s*$", out, re.M), out  # lx-ps: the command's process
    # lx-symbols: the build's vmlinux again, and the module the command loaded, from the build dir.
    assert "loading vmlinux" in out and re.search(
        rf"loading @0x[0-9a-f]+: {BUILD}/\S*dummy\.ko$", out, re.M
    ), out
    assert re.search(rf"{re.escape(release)}$", out, re.M), out  # the command finished, its output came back
    assert re.search(r"Command line: .* nokaslr ", out), out  # lx-dmesg again: how it was booted
    assert not pidfile.exists(), "debug left QEMU running"

    # The dump taken while gdb held the guest opens in crash, with the kernel's own vmlinux.
    assert stat.S_IMODE(dump.stat().st_mode) == 0o600 and dump.stat().st_uid == 1000
    said = crash_sys(root, ran.stderr)
    assert re.search(rf"RELEASE: {re.escape(release)}$", said, re.M), said

    # A guest whose kernel panics keeps its memory for crash: panic=0 holds it, QMP dumps it.
    panic = vm("exec", "--dump-on-panic", "--", "sudo", "sh", "-c", "'echo c > /proc/sysrq-trigger'")
    assert panic.returncode == kdevbox_vm.EXIT_PANIC, panic.stdout + panic.stderr
    assert f"the panicked guest's memory is in {dump_path(GUEST)}" in panic.stderr, panic.stderr
    assert not pidfile.exists(), "exec --dump-on-panic left QEMU running"
    said = crash_sys(root, panic.stderr)
    assert 'PANIC: "Kernel panic - not syncing: sysrq triggered crash"' in said, said

    # No terminal and --print: the command to attach from elsewhere, the guest not held.
    printed = vm("debug", "--print", "--no-wait", "--", "uname", "-r")
    assert printed.returncode == 0, printed.stdout + printed.stderr
    attach = printed.stdout.splitlines()[0]
    assert attach.startswith(f"cd {BUILD} && gdb -q -iex 'add-auto-load-safe-path {BUILD}'"), attach
    assert attach.endswith(f"-ex 'target remote {stub}' {BUILD}/vmlinux"), attach
    assert re.search(rf"{re.escape(release)}$", printed.stdout.split("\n", 1)[1], re.M), printed.stdout

    # In a terminal, gdb is the developer's: quitting it ends the run and stops the guest.
    quit_script = write_script(root, "quit.gdb", QUIT_SCRIPT)
    status, screen = run_in_terminal(root, f"{vm.script} debug -x {quit_script} -- sleep 600", timeout=600)
    assert status == 0, screen
    assert "start_kernel" in screen and "gdb ended before the command: the guest was stopped" in screen
    assert not pidfile.exists(), "QEMU outlived gdb"

    # A kernel that is no debug build: one line with the fix, nothing booted.
    debian = vm("debug", "--kernel", f"/{images(DEV_USER)}/{GUEST}.vmlinuz", "--", "true")
    assert debian.returncode == 2 and debian.stderr.count("\n") == 1, debian.stderr
    assert "is no kernel build's bzImage (no vmlinux beside it)" in debian.stderr


def dump_path(guest: str) -> str:
    return f"/{images(DEV_USER)}/{guest}.dump"


def crash_sys(root: Path, said: str) -> str:
    """What Debian's crash says of the guest's dump (its `sys`), opened as kdevbox-vm said to open it."""
    told = re.search(r"open it with `(crash [^`]+)`", said)
    assert told, said
    assert told[1].endswith(f" {BUILD}/vmlinux {dump_path(GUEST)}"), told[1]
    opened = run_as(root, f"printf 'sys\\nq\\n' | {told[1]}", timeout=600)
    return opened.stdout + opened.stderr
