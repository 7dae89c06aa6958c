#!/usr/bin/python3 -I
"""kdevbox-vm: boot the developer's QEMU guest, one shot into a command or the whole guest.

This file is a program that runs on the dev box as the developer, with the standard library only
(kdevbox itself is not installed there): the deploy copies it root-owned into /usr/local/lib/kdevbox
and writes the guest's paths and settings as JSON into the developer's home (Settings below);
~/.local/bin/kdevbox-vm runs it with them. It is also the one module that spells the host <-> guest
protocol (the serial ports' roles, `kdevbox.exec=`, the ready and exec-init marks): the deploy
renders the image's exec-init and units from the constants here, so both sides cannot drift.

Nothing here may hang: every wait has a bound, QEMU runs in its own process group and is killed by
its PID when kdevbox-vm ends (Ctrl-C included), and a guest whose kernel panics, oopses or prints
nothing ends the run with its own exit status and the console's last lines.
"""

from __future__ import annotations

import argparse
import base64
import bz2
import contextlib
import dataclasses
import errno
import grp
import hashlib
import io
import json
import lzma
import math
import mmap
import os
import pwd
import re
import select
import shlex
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import IO, Any, NoReturn

# --- the host <-> guest protocol -------------------------------------------------------------------
# QEMU's -serial options in this order are the guest's ttyS0, ttyS1, ...: a one-shot boot's kernel
# console, the command's stdout, its stderr, and its exit status (written once, as digits). ttyS1
# goes both ways: the command's stdin comes in on it as base64 lines ended by STDIN_END (a serial
# line has no end of file).
SERIAL_ROLES = ("console", "stdout", "stderr", "status")
TTY = {role: f"ttyS{index}" for index, role in enumerate(SERIAL_ROLES)}
EXEC_PARAM = "kdevbox.exec"  # kernel parameter: base64 of the shell command line exec-init runs
NET_PARAM = "kdevbox.net"  # kernel parameter: present, exec-init brings up the NIC on USER_NET
USER_NET = {"address": "10.0.2.15/24", "gateway": "10.0.2.2", "dns": "10.0.2.3"}  # QEMU's user network
MODULES_PARAM = "kdevbox.modules"  # kernel parameter: present, the guest mounts MODULES_TAG on /lib/modules
MODULES_TAG = "kdevbox-modules"  # the 9p share of the booted build's modules (stage_modules)
NINEP_OPTIONS = "trans=virtio,version=9p2000.L,msize=262144"  # how the guest mounts every 9p share
STDIN_END = "kdevbox-stdin-end"  # the line after the command's stdin (no base64 line looks like it)
READY_MARKER = "kdevbox-guest-ready"  # the whole guest's console line once sshd listens
INIT_MARK = "kdevbox-exec: init at"  # exec-init's console line when it starts (+ uptime, " s")
DONE_MARK = "kdevbox-exec: done at"  # ... and when the command has ended
# x86's kernel command line holds 2048 bytes; the rest of it (root=, console=, init=) fits in 512.
MAX_ENCODED = 1536
BASE_APPEND = ("root=/dev/vda", "rw", f"console={TTY['console']}", "panic=-1", "quiet")
BZIMAGE_MAGIC = (0x202, b"HdrS")  # the x86 boot protocol's header signature in a bzImage

# --- exit statuses of kdevbox-vm itself (else: the command's own) ----------------------------------
EXIT_FAILED = 1  # nothing to boot (no image, an image being built), no SSH, KVM asked for but unusable
EXIT_USAGE = 2  # bad arguments or input: an unknown option, a --kernel that is no bzImage, ...
EXIT_PANIC = 120  # the guest's kernel panicked
EXIT_OOPS = 121  # the guest's kernel oopsed (Oops, BUG)
EXIT_STALLED = 122  # the boot did not reach the command (or sshd) within its bound
EXIT_LOST = 123  # the guest stopped before the command ended, no panic seen
EXIT_TIMEOUT = 124  # --timeout: the command ran longer (as timeout(1))
EXIT_QEMU = 125  # QEMU did not start (its message is shown)
EXIT_INTERRUPTED = 130  # Ctrl-C, SIGTERM or SIGHUP: QEMU was stopped first

PANIC = re.compile(r"Kernel panic - not syncing")
OOPS = re.compile(r"^(?:\[\s*[0-9.]+\]\s*)?(?:BUG: |Oops: |kernel BUG at |general protection fault)")
KVM_DEVICE = "/dev/kvm"
PROBE_SECONDS = 10.0  # KVM that works prints the kernel's first line well within this
TROUBLE_GRACE = 3.0  # seconds to let a panic or oops finish printing before QEMU is killed
CONSOLE_TAIL = 25  # console lines shown when a run ends badly
QEMU = "qemu-system-x86_64"


class Failure(Exception):
    """A run that ends with a message for the developer and an exit status."""

    def __init__(self, message: str, status: int = EXIT_FAILED) -> None:
        super().__init__(message)
        self.status = status


class Interrupted(BaseException):
    """SIGTERM or SIGHUP, turned into an exception so QEMU is stopped on the way out."""


def encode_command(command_line: str) -> str:
    """The kdevbox.exec= value of a shell command line: base64, which the kernel passes as one word."""
    encoded = base64.b64encode(command_line.encode()).decode()
    if len(encoded) > MAX_ENCODED:
        raise Failure(
            f"the command is {len(encoded)} bytes encoded, more than the kernel command line holds "
            f"({MAX_ENCODED}): put it in a script in your share (or the image) and run that",
            EXIT_USAGE,
        )
    return encoded


def decode_command(value: str) -> str:
    return base64.b64decode(value).decode()


# --- settings --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Settings:
    """One guest's paths and settings, written by kdevbox's deploy as JSON (values as data)."""

    name: str
    user: str  # the developer, on the host and in the guest
    image: str
    vmlinuz: str  # the image's own Debian kernel ...
    initrd: str  # ... and its initrd
    pidfile: str
    console: str
    known_hosts: str
    kselftest_tap: str
    qmp: str  # QEMU's monitor socket while the guest runs (kdevbox-vm dump)
    gdb: str  # QEMU's gdb stub socket while kdevbox-vm debug runs
    dump: str  # where kdevbox-vm dump writes the guest's memory
    building: str  # present while root builds the image (holds the build's PID)
    build_log: str
    default_kernel: str  # the latest kdevbox build's bzImage, when there is one
    kselftests: str  # its selftests (make kselftest-install)
    exec_init: str  # in the image: PID 1 of a one-shot boot
    share: str | None  # mounted at /mnt/host over 9p
    ssh_host: str
    ssh_port: int
    key: str
    memory: str
    cpus: int
    accel: str  # auto, kvm, tcg
    network: str  # user (QEMU's NAT, SSH forwarded) or bridge (the tap)
    tap: str
    mac: str
    cache: str  # the developer's cache dir for kdevbox-vm (the KVM verdict)

    @classmethod
    def load(cls, path: str) -> Settings:
        try:
            with open(path, encoding="utf-8") as file:
                data = json.load(file)
        except OSError as error:
            raise Failure(
                f"no guest settings in {path} ({error.strerror}): run kdevbox's deploys/guest_image.py"
            ) from None
        except ValueError as error:
            raise Failure(f"{path} is not JSON ({error}): run kdevbox's deploys/guest_image.py") from None
        names = {f.name for f in dataclasses.fields(cls)}
        if not isinstance(data, dict) or set(data) != names:
            raise Failure(f"{path} is from another kdevbox version: run kdevbox's deploys/guest_image.py")
        return cls(**data)


# --- the kernel and what to boot -------------------------------------------------------------------
@dataclass(frozen=True)
class Boot:
    kernel: str  # the bzImage the developer's run names (reported)
    initrd: str | None
    accel: str  # kvm or tcg
    append: tuple[str, ...] = ()  # kernel parameters after BASE_APPEND (kdevbox-vm debug's nokaslr)
    load: str | None = None  # what QEMU loads instead: the bzImage's vmlinux, booted through PVH
    modules: str | None = None  # the build's staged modules (its /lib/modules), shared with the guest

    @property
    def entry(self) -> str:
        """How the kernel is entered: pvh (its vmlinux) or bzimage (its own decompressor)."""
        return "pvh" if self.load else "bzimage"

    @property
    def cpu(self) -> str:
        return "host" if self.accel == "kvm" else "max"


def check_bzimage(path: str) -> None:
    """A --kernel that QEMU can boot, or one line saying what to give instead."""
    offset, magic = BZIMAGE_MAGIC
    try:
        with open(path, "rb") as file:
            file.seek(offset)
            found = file.read(len(magic))
    except FileNotFoundError:
        raise Failure(
            f"--kernel {path}: no such file: give a build's arch/x86/boot/bzImage", EXIT_USAGE
        ) from None
    except OSError as error:
        raise Failure(f"--kernel {path}: {error.strerror}: give a bzImage you can read", EXIT_USAGE) from None
    if found != magic:
        raise Failure(
            f"--kernel {path}: not a bzImage (no x86 boot header): give arch/x86/boot/bzImage, not vmlinux",
            EXIT_USAGE,
        )


def pick_kernel(settings: Settings, given: str | None) -> tuple[str, str | None]:
    """The kernel to boot and its initrd: the one given, else the latest kdevbox build, else the
    image's own Debian kernel (the only one that needs its initrd)."""
    if given:
        check_bzimage(given)
        kernel = given
    elif os.path.isfile(settings.default_kernel):
        kernel = settings.default_kernel
    else:
        kernel = settings.vmlinuz
    return kernel, settings.initrd if kernel == settings.vmlinuz else None


# --- the kernel QEMU loads: a bzImage's own vmlinux, booted through PVH -----------------------------
# A bzImage decompresses itself in the guest: under TCG Debian's xz kernel spends ~2 s of a 4 s boot
# there (measured: 4.3 s to the root-mount panic from the bzImage, 2.0 s from its vmlinux). QEMU
# boots an uncompressed vmlinux directly when it carries the PVH entry note, so kdevbox-vm unpacks
# each bzImage once (the setup header says where its payload is) and keeps the result by content.
# What a PVH boot skips, --bzimage keeps: the decompressor and setup code (KASLR, 5-level paging).
SETUP_SECTS = 0x1F1  # the x86 boot protocol's setup header: 512-byte setup sectors after the first
PROTOCOL = 0x206  # its version: payload_offset and payload_length exist from 2.08
PAYLOAD = 0x248  # payload_offset (from the protected-mode code) and payload_length, u32 each
PVH_NOTE = (b"Xen\0", 18)  # XEN_ELFNOTE_PHYS32_ENTRY: the note QEMU boots an ELF kernel by
PT_NOTE = 4
KERNEL_FW_CFG = "opt/kdevbox/bzimage"  # in QEMU's argv: the bzImage booted (PVH loads its vmlinux)
UNPACKED_MAX = 1 << 30  # bytes: a vmlinux (stripped, as the bzImage holds it) is tens of MB
UNPACKED_KEPT = 4  # unpacked kernels kept in the cache (the image's, recent builds), newest first
STALE_TEMP = 3600.0  # seconds after which a temp file in the cache is an interrupted run's


def _decompressor(payload: bytes) -> Any:
    """What reads the payload's format (as the kernel's own extract-vmlinux tries), or None: the
    rest (zstd, lz4, lzo) is not in Python's standard library, and QEMU boots the bzImage then."""
    if payload.startswith(b"\xfd7zXZ\x00"):
        return lzma.LZMADecompressor(lzma.FORMAT_XZ)
    if payload.startswith(b"\x1f\x8b"):
        return zlib.decompressobj(wbits=31)
    if payload.startswith(b"BZh"):
        return bz2.BZ2Decompressor()
    if payload.startswith(b"\x5d\x00\x00"):
        return lzma.LZMADecompressor(lzma.FORMAT_ALONE)
    return None


def has_pvh_entry(elf: bytes) -> bool:
    """A 64-bit little-endian ELF with the PVH entry note in one of its PT_NOTE segments."""
    if elf[:6] != b"\x7fELF\x02\x01" or len(elf) < 64:
        return False
    (phoff,) = struct.unpack_from("<Q", elf, 0x20)
    phentsize, phnum = struct.unpack_from("<HH", elf, 0x36)
    for index in range(phnum):
        at = phoff + index * phentsize
        if at + 56 > len(elf):
            return False
        kind, _flags, offset, _vaddr, _paddr, size = struct.unpack_from("<IIQQQQ", elf, at)
        if kind != PT_NOTE:
            continue
        end = min(offset + size, len(elf))
        while offset + 12 <= end:
            namesz, descsz, note = struct.unpack_from("<III", elf, offset)
            name = elf[offset + 12 : offset + 12 + namesz]
            if (name, note) == PVH_NOTE:
                return True
            offset += 12 + (namesz + 3) // 4 * 4 + (descsz + 3) // 4 * 4
    return False


def unpack_bzimage(image: bytes) -> bytes | None:
    """The vmlinux inside a bzImage (its relocations after it: QEMU reads the ELF's segments only),
    or None when it is no bzImage, its protocol too old, its compression unknown, the stream cut
    short or past UNPACKED_MAX, or the kernel has no PVH entry."""
    offset, magic = BZIMAGE_MAGIC
    if len(image) < PAYLOAD + 8 or image[offset : offset + len(magic)] != magic:
        return None
    if struct.unpack_from("<H", image, PROTOCOL)[0] < 0x208:
        return None
    payload_offset, length = struct.unpack_from("<II", image, PAYLOAD)
    start = ((image[SETUP_SECTS] or 4) + 1) * 512 + payload_offset
    payload = image[start : start + length]
    decompressor = _decompressor(payload)
    if decompressor is None:
        return None
    try:
        elf = bytes(decompressor.decompress(payload, UNPACKED_MAX))
    except (lzma.LZMAError, zlib.error, OSError, EOFError, MemoryError):
        return None
    # A payload cut short decompresses to a good-looking start: only a stream that ended is whole.
    return elf if decompressor.eof and has_pvh_entry(elf) else None


def loadable(cache: str, kernel: str) -> str:
    """What QEMU loads for kernel: its unpacked vmlinux from cache (made on first use, by content, so
    a rebuilt bzImage is unpacked again), else the bzImage itself: also when the cache cannot be
    written (a full disk, a read-only home), as QEMU booted it before. An empty entry remembers a
    bzImage that cannot be unpacked, so it is not tried on every boot."""
    with open(kernel, "rb") as file:
        image = file.read()
    directory = os.path.join(cache, "vmlinux")
    entry = os.path.join(directory, hashlib.sha256(image).hexdigest())
    try:
        size = os.path.getsize(entry)
    except OSError:  # not there yet, or no cache to read: unpacked (and stored, when it can be)
        size = None
    if size is not None:
        with contextlib.suppress(OSError):
            os.utime(entry)  # used now: the last to be pruned (a read-only cache is still read)
        return entry if size else kernel
    unpacked = unpack_bzimage(image)
    try:
        _store_bytes(entry, unpacked or b"")
        _prune(directory, keep=entry)
    except OSError as error:
        say(f"booting {kernel} itself: cannot keep its vmlinux in {directory}: {error.strerror}")
        return kernel
    return entry if unpacked else kernel


def _store_bytes(path: str, data: bytes) -> None:
    """Written to a temp file, synced, renamed over path: a reader never sees half of it, a crash
    leaves no short file (the cache's entries, the KVM verdict)."""
    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".kdevbox-vm-")
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _prune(
    directory: str, keep: str, kept: int = UNPACKED_KEPT, remove: Callable[[str], None] = os.unlink
) -> None:
    """The kept entries used last stay (keep among them); older ones go, and temp entries an
    interrupted run left. Another run may remove an entry meanwhile: that is no error."""
    now, used = time.time(), []
    for name in os.listdir(directory):
        path = os.path.join(directory, name)
        try:
            mtime = os.path.getmtime(path)
        except FileNotFoundError:
            continue
        if not name.startswith("."):
            used.append((path == keep, mtime, path))
        elif now - mtime > STALE_TEMP:
            with contextlib.suppress(FileNotFoundError):
                remove(path)
    for *_, old in sorted(used, reverse=True)[kept:]:
        with contextlib.suppress(FileNotFoundError):
            remove(old)


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another account's (root's build)
    return True


def read_pid(path: str) -> int | None:
    try:
        with open(path, encoding="ascii", errors="replace") as file:
            digits = "".join(c for c in file.read(32) if c.isdigit())
    except OSError:
        return None
    return int(digits) if digits else None


def check_image(settings: Settings) -> None:
    """An image to boot: not missing, not being replaced by a build right now."""
    builder = read_pid(settings.building)
    if builder is not None and pid_alive(builder):
        raise Failure(
            f"the image {settings.name} is being built (pid {builder}, tail -f {settings.build_log}): "
            "run again when the deploy is done"
        )
    if not os.path.isfile(settings.image):
        raise Failure(
            f"no guest image {settings.image}: build it with kdevbox's deploys/guest_image.py "
            "(guest.enabled in your settings)"
        )


# --- acceleration ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Verdict:
    accel: str
    reason: str  # why not KVM ("" when KVM)
    fresh: bool = True  # decided now, not read from this boot's cache


def kvm_blocker(device: str = KVM_DEVICE) -> str | None:
    """Why this account cannot use KVM at all, without booting anything; None when it may try."""
    if not os.path.exists(device):
        return f"no {device}: " + _no_kvm_hint()
    if os.access(device, os.R_OK | os.W_OK):
        return None
    info = os.stat(device)
    try:
        group = grp.getgrgid(info.st_gid)
    except KeyError:
        return f"{device} is not yours to open (group {info.st_gid})"
    me = pwd.getpwuid(os.getuid()).pw_name
    if info.st_mode & 0o060 != 0o060:
        mode = f"{info.st_mode & 0o777:o}"
        return f"{device} is mode {mode}: only its owner opens it (a udev rule for kvm missing?)"
    if info.st_gid in os.getgroups():
        return f"{device} refuses you although you are in group {group.gr_name}"
    if me in group.gr_mem:
        return f"you were added to group {group.gr_name} after this login: log in again"
    return f"you are not in group {group.gr_name}: run kdevbox's deploy (it adds you), then log in again"


def _no_kvm_hint() -> str:
    try:
        with open("/proc/sys/kernel/osrelease", encoding="ascii") as file:
            if "microsoft" in file.read().lower():
                return (
                    "in WSL2 set nestedVirtualization=true in %UserProfile%\\.wslconfig, then wsl --shutdown"
                )
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as file:
            flags = next((line for line in file if line.startswith("flags")), "").split()
    except OSError:
        flags = []
    if "vmx" in flags or "svm" in flags:
        return "the CPU has virtualization: load the kvm_intel or kvm_amd module"
    if "hypervisor" in flags:
        return "this machine is a VM: enable nested virtualization in its hypervisor"
    return "virtualization is off (enable VT-x/AMD-V in the firmware)"


def probe_kvm(kernel: str, qemu: str = QEMU, bound: float = PROBE_SECONDS) -> str | None:
    """Boot kernel under KVM until it prints its first line: None when it does within bound, else why
    not. /dev/kvm can open and still run nothing (nested virtualization): never trust the file alone."""
    with tempfile.TemporaryDirectory(prefix="kdevbox-kvm-probe-") as tmp:
        console = os.path.join(tmp, "console")
        argv = [qemu, "-accel", "kvm", "-cpu", "host", "-m", "256", "-display", "none", "-nodefaults"]
        argv += ["-no-user-config", "-no-reboot", "-kernel", kernel, "-append", "console=ttyS0 panic=-1"]
        argv += ["-serial", f"file:{console}"]
        with open(os.path.join(tmp, "qemu.err"), "w+b") as errors, child(argv, stderr=errors) as qemu_proc:
            deadline = time.monotonic() + bound
            while time.monotonic() < deadline:
                if b"Linux version" in _read(console):
                    return None
                if qemu_proc.poll() is not None:
                    errors.seek(0)
                    said = errors.read().decode(errors="replace").strip().splitlines()
                    return f"QEMU refuses KVM: {said[-1] if said else f'exit status {qemu_proc.returncode}'}"
                time.sleep(0.1)
    return f"{KVM_DEVICE} opens but a KVM guest printed nothing in {bound:.0f} s (nested virtualization)"


def _read(path: str) -> bytes:
    try:
        with open(path, "rb") as file:
            return file.read()
    except OSError:
        return b""


def _boot_id() -> str:
    return _read("/proc/sys/kernel/random/boot_id").decode().strip()


def _qemu_version(qemu: str = QEMU) -> str:
    try:
        run = subprocess.run([qemu, "--version"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as error:
        raise Failure(
            f"{qemu} does not run ({error}): install qemu-system-x86 (kdevbox's deploy does)"
        ) from None
    return run.stdout.splitlines()[0] if run.stdout else ""


def decide_accel(
    requested: str,
    blocker: Callable[[], str | None],
    probe: Callable[[], str | None],
    cache_file: str,
    cache_key: Callable[[], dict[str, str]],
) -> Verdict:
    """kvm or tcg for requested (auto, kvm, tcg). A probe's verdict is kept in cache_file for this
    machine boot and QEMU version (cache_key), so it costs its seconds once, and so is the reason
    last given: fresh only when it changed (said once). --accel kvm fails with the reason instead
    of falling back."""
    if requested == "tcg":
        return Verdict("tcg", "TCG asked for", fresh=False)
    key = cache_key()
    cached = _load_json(cache_file)
    if not isinstance(cached, dict) or cached.get("key") != key:
        cached = {"key": key}
    reason = blocker()
    if reason is None:
        if not isinstance(cached.get("probe"), str):
            cached["probe"] = probe() or ""
        reason = cached["probe"] or None
    fresh = cached.get("said") != (reason or "")
    if fresh or "said" not in cached:
        cached["said"] = reason or ""
        _store_json(cache_file, cached)
    if reason is None:
        return Verdict("kvm", "", fresh)
    if requested == "kvm":
        raise Failure(f"KVM asked for and not usable: {reason}")
    return Verdict("tcg", reason, fresh)


def _load_json(path: str) -> Any:
    try:
        with open(path, encoding="utf-8") as file:
            return json.load(file)
    except (OSError, ValueError):
        return None


def _store_json(path: str, value: object) -> None:
    _store_bytes(path, json.dumps(value).encode())


def choose_accel(settings: Settings, requested: str | None, kernel: str) -> Verdict:
    return decide_accel(
        requested or settings.accel,
        kvm_blocker,
        lambda: probe_kvm(kernel),
        os.path.join(settings.cache, "kvm-verdict.json"),
        lambda: {"boot_id": _boot_id(), "qemu": _qemu_version()},
    )


def tell_accel(verdict: Verdict) -> None:
    """The reason for TCG, once: when it was decided, not on every run that reads it back."""
    if verdict.accel == "tcg" and verdict.fresh:
        say(f"using TCG (slow): {verdict.reason}")


# --- QEMU's command line ---------------------------------------------------------------------------
def _opt(value: str) -> str:
    """A value inside one of QEMU's key=value,... options: commas are doubled."""
    return value.replace(",", ",,")


def qemu_argv(
    settings: Settings,
    boot: Boot,
    *,
    one_shot: dict[str, str] | None = None,
    command: str = "",
    net: bool = False,
    daemonize: bool = False,
    extra: Sequence[str] = (),
) -> list[str]:
    """QEMU's argv for every mode: the whole guest (daemonized by `start`, or in the foreground for
    `exec --systemd`) with its NIC, or a one-shot boot straight into exec-init running command (the
    encoded kdevbox.exec= value), its stdio on serial ports (ttyS1 a pipe both ways, at
    one_shot["stdout"] + .in/.out), and a NIC on QEMU's user network only with net."""
    append = [*BASE_APPEND, *boot.append]
    argv = [QEMU, "-accel", boot.accel, "-cpu", boot.cpu, "-m", settings.memory, "-smp", str(settings.cpus)]
    argv += ["-display", "none", "-nodefaults", "-no-user-config", "-no-reboot"]
    argv += ["-pidfile", settings.pidfile, "-kernel", boot.load or boot.kernel]
    # Which bzImage this QEMU boots, for `dump` to find its build (-kernel may be an unpacked copy).
    argv += ["-fw_cfg", f"name={KERNEL_FW_CFG},string={_opt(boot.kernel)}"]
    if boot.initrd:
        argv += ["-initrd", boot.initrd]
    if boot.modules:  # read-only: the guest's root may load them, not change the build
        append.append(MODULES_PARAM)
        share = f"local,path={_opt(boot.modules)},mount_tag={MODULES_TAG},security_model=none,readonly=on"
        argv += ["-virtfs", share]
    argv += ["-serial", f"file:{settings.console}"]
    if one_shot is not None:
        append += [f"init={settings.exec_init}", f"{EXEC_PARAM}={command}"]
        argv += ["-chardev", f"pipe,id=stdio,path={_opt(one_shot['stdout'])}", "-serial", "chardev:stdio"]
        for role in SERIAL_ROLES[2:]:
            argv += ["-serial", f"file:{one_shot[role]}"]
        if net:
            append.append(NET_PARAM)
            argv += ["-netdev", "user,id=n0", "-device", f"virtio-net-pci,netdev=n0,mac={settings.mac}"]
    else:
        if settings.network == "bridge":
            netdev = f"tap,id=n0,ifname={_opt(settings.tap)},script=no,downscript=no"
        else:
            netdev = f"user,id=n0,hostfwd=tcp:127.0.0.1:{settings.ssh_port}-:22"
        argv += ["-netdev", netdev, "-device", f"virtio-net-pci,netdev=n0,mac={settings.mac}"]
    if daemonize:
        argv.append("-daemonize")
    argv += ["-append", " ".join(append)]
    argv += ["-drive", f"file={_opt(settings.image)},if=virtio,format=qcow2"]
    if settings.share:
        argv += ["-virtfs", f"local,path={_opt(settings.share)},mount_tag=host,security_model=none"]
    argv += ["-device", "virtio-rng-pci"]
    # QMP for kdevbox-vm dump; vmcoreinfo hands the kernel's own (KASLR offset, release) to the dump.
    argv += ["-qmp", f"unix:{_opt(settings.qmp)},server=on,wait=off", "-device", "vmcoreinfo", *extra]
    return argv


# --- the booted build's modules in the guest -------------------------------------------------------
# The guest's /lib/modules has the image's Debian kernel's modules; a kdevbox build's are in its build
# dir. kdevbox-vm stages them as modules_install would lay them out, with hard links to the build's
# own .ko files and depmod's index, in the developer's cache (by content: a rebuilt module is staged
# again; outside the build dir, where gdb's lx-symbols looks for them, so it never finds an old one),
# and QEMU shares that read-only for the guest to mount on /lib/modules, as virtme-ng does with its
# .virtme_mods. The STAGES_KEPT used last stay: a guest still running from one keeps its modules.
BZIMAGE_IN_BUILD = ("arch", "x86", "boot", "bzImage")
STAGES_KEPT = 4  # module stages kept in the cache, used last first
DEPMOD_DIRS = ("/usr/sbin", "/sbin")  # depmod's home, not on a user's PATH on Debian
RELEASE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+~-]*$")  # a kernel release, as a path component
MODULE_PATH = re.compile(r"^(?!/)(?!.*(?:^|/)\.\.(?:/|$))[A-Za-z0-9._+,/-]+?(?:\.ko|\.o)$")
NO_HARD_LINK = (errno.EXDEV, errno.EPERM, errno.EMLINK, errno.EOPNOTSUPP)  # then a copy


def build_dir_of(kernel: str) -> str | None:
    """The kernel build (O= dir) whose bzImage kernel is, by its place in it; None for another file."""
    parts = os.path.realpath(kernel).split(os.sep)
    if tuple(parts[-len(BZIMAGE_IN_BUILD) :]) != BZIMAGE_IN_BUILD:
        return None
    return os.sep.join(parts[: -len(BZIMAGE_IN_BUILD)])


def module_files(build: str) -> list[str] | None:
    """The build's modules (paths in it, from modules.order), None when it has no module support."""
    try:
        config = _read(os.path.join(build, ".config")).decode(errors="replace").splitlines()
        with open(os.path.join(build, "modules.order"), encoding="utf-8", errors="replace") as file:
            order = [line.strip() for line in file if line.strip()]
    except OSError:
        return None
    if "CONFIG_MODULES=y" not in config:
        return None
    modules = []
    for line in filter(MODULE_PATH.match, order):
        # Up to 6.1 modules.order names the .ko files, from 6.2 the .o files they are linked from;
        # before 5.3 with a kernel/ in front.
        if line.startswith("kernel/") and not os.path.exists(os.path.join(build, line)):
            line = line.removeprefix("kernel/")
        modules.append(line.rsplit(".", 1)[0] + ".ko")
    return modules


def _stage_digest(build: str, release: str, modules: list[str]) -> str:
    """What a stage is made of: the build, its release, each module's file (a rebuilt one is a new
    file: the linker replaces it) and the builtin lists."""
    digest = hashlib.sha256(f"{build}\0{release}\n".encode())
    for name in [*modules, "modules.builtin", "modules.builtin.modinfo"]:
        try:
            info = os.stat(os.path.join(build, name))
        except OSError:
            continue
        digest.update(f"{name} {info.st_ino} {info.st_size} {info.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def _depmod() -> str | None:
    return shutil.which("depmod", path=os.pathsep.join([os.environ.get("PATH", ""), *DEPMOD_DIRS]))


def _lay_out(build: str, base: str, release: str, modules: list[str], depmod: str) -> bool:
    """modules_install's layout under base (lib/modules/release: kernel/<path>.ko, modules.order,
    modules.builtin*), then depmod's index of it; whether the modules had to be copied."""
    target = os.path.join(base, "lib", "modules", release)
    copied = False
    for module in modules:
        placed = os.path.join(target, "kernel", module)
        os.makedirs(os.path.dirname(placed), exist_ok=True)
        try:
            os.link(os.path.join(build, module), placed)
        except OSError as error:  # another file system, or a build dir whose files are not yours
            if error.errno not in NO_HARD_LINK:
                raise
            shutil.copyfile(os.path.join(build, module), placed)
            copied = True
    with open(os.path.join(target, "modules.order"), "w", encoding="utf-8") as file:
        file.writelines(f"kernel/{module}\n" for module in modules)
    for name in ("modules.builtin", "modules.builtin.modinfo"):
        with contextlib.suppress(FileNotFoundError):
            shutil.copyfile(os.path.join(build, name), os.path.join(target, name))
    os.symlink(".", os.path.join(base, "usr"))  # a depmod built for /usr/lib/modules finds them too
    subprocess.run([depmod, "-b", base, release], check=True, capture_output=True)
    return copied


def stage_modules(cache: str, kernel: str) -> str | None:
    """The dir to share as the guest's /lib/modules when kernel is a build's bzImage with modules:
    <cache>/modules/<digest>/lib/modules, made on first use. None otherwise, and when it cannot be
    made (said): the guest boots as before, with the image's modules."""
    build = build_dir_of(kernel)
    modules = module_files(build) if build else None
    if build is None or modules is None:
        return None
    release = bzimage_version(kernel).split(" ", 1)[0]
    if not RELEASE.match(release):
        say(f"booting without {build}'s modules: its release {release!r} names no directory")
        return None
    directory = os.path.join(cache, "modules")
    stage = os.path.join(directory, _stage_digest(build, release, modules)[:32])
    shared = os.path.join(stage, "lib", "modules")
    if os.path.isdir(shared):
        with contextlib.suppress(OSError):
            os.utime(stage)  # used now: the last to be pruned
        return shared
    depmod = _depmod()
    if depmod is None:
        say(f"booting without {build}'s modules: no depmod to index them (install kmod)")
        return None
    made = None
    try:
        os.makedirs(directory, mode=0o700, exist_ok=True)
        made = tempfile.mkdtemp(prefix=".stage-", dir=directory)
        if _lay_out(build, made, release, modules, depmod):
            say(f"{build}'s modules copied to {directory}: no hard links from one to the other")
        os.chmod(made, 0o755)
        os.rename(made, stage)
    except (OSError, subprocess.CalledProcessError) as error:
        if not os.path.isdir(shared):  # else another run staged the same just now
            if isinstance(error, subprocess.CalledProcessError):
                why = error.stderr.decode(errors="replace").strip()
            else:
                why = f"{error.strerror}: {error.filename}"
            say(f"booting without {build}'s modules: staging them in {directory} failed: {why}")
            return None
    finally:
        if made:
            shutil.rmtree(made, ignore_errors=True)
    _prune(directory, stage, STAGES_KEPT, remove=lambda path: shutil.rmtree(path, ignore_errors=True))
    return shared


# --- processes -------------------------------------------------------------------------------------
def _die_with_parent() -> None:
    """In the child before exec: the kernel kills it when kdevbox-vm dies, even by SIGKILL."""
    with contextlib.suppress(Exception):
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


@contextlib.contextmanager
def child(argv: Sequence[str], **popen: Any) -> Iterator[subprocess.Popen[bytes]]:
    """A process of kdevbox-vm's in its own process group (Ctrl-C reaches kdevbox-vm, which stops
    it), killed by its PID when the block ends, however it ends."""
    popen.setdefault("stdin", subprocess.DEVNULL)
    popen.setdefault("stdout", subprocess.DEVNULL)
    try:
        process = subprocess.Popen(list(argv), start_new_session=True, preexec_fn=_die_with_parent, **popen)
    except OSError as error:
        raise Failure(f"{argv[0]} does not run ({error.strerror}): install it", EXIT_QEMU) from None
    try:
        yield process
    finally:
        stop_process(process)


def stop_process(process: subprocess.Popen[bytes], grace: float = 3.0) -> None:
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(process.pid, signal.SIGTERM)
    try:
        process.wait(grace)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.kill(process.pid, signal.SIGKILL)
        process.wait()


def say(message: str) -> None:
    print(f"kdevbox-vm: {message}", file=sys.stderr, flush=True)


# --- the console, watched --------------------------------------------------------------------------
@dataclass
class Console:
    """The guest's console log as QEMU writes it, read as it grows: marks, panics and oopses."""

    path: str
    offset: int = 0
    partial: bytes = b""
    tail: deque[str] = field(default_factory=lambda: deque(maxlen=CONSOLE_TAIL))
    printed: bool = False
    init_seen: bool = False
    ready_seen: bool = False
    trouble: str | None = None  # "panic" or "oops"
    trouble_at: float = 0.0
    trouble_lines: list[str] = field(default_factory=list)  # from the first panic or oops line on

    def reset(self) -> None:
        """An empty log of the developer's alone (QEMU appends to what is there)."""
        with open(self.path, "wb"):
            pass
        os.chmod(self.path, 0o600)

    def poll(self) -> None:
        try:
            with open(self.path, "rb") as file:
                file.seek(self.offset)
                data = file.read()
        except OSError:
            return
        if not data:
            return
        self.offset += len(data)
        self.printed = True
        *lines, self.partial = (self.partial + data).split(b"\n")
        self.feed(line.decode(errors="replace").rstrip("\r") for line in lines)

    def feed(self, lines: Iterable[str]) -> None:
        for line in lines:
            self.tail.append(line)
            if self.trouble and len(self.trouble_lines) < CONSOLE_TAIL:
                self.trouble_lines.append(line)
            if INIT_MARK in line:
                self.init_seen = True
            if READY_MARKER in line:
                self.ready_seen = True
            kind = "panic" if PANIC.search(line) else "oops" if OOPS.search(line) else None
            if kind and (self.trouble is None or kind == "panic"):
                self.trouble_at = self.trouble_at or time.monotonic()
                self.trouble_lines = self.trouble_lines or [line]
                self.trouble = kind

    def last_lines(self) -> str:
        lines = [*self.tail, *([self.partial.decode(errors="replace")] if self.partial else [])]
        return "\n".join(lines)


@dataclass
class Outcome:
    """How a run ended: the exit status kdevbox-vm returns, and what to tell."""

    status: int
    outcome: str  # exited, panic, oops, boot-stalled, timeout, lost, qemu-failed
    message: str = ""


def trouble_outcome(console: Console) -> Outcome:
    """The panic or oops from its first line on (not the tail: a stack trace would hide it)."""
    what = "panicked" if console.trouble == "panic" else "oopsed"
    return Outcome(
        EXIT_PANIC if console.trouble == "panic" else EXIT_OOPS,
        console.trouble or "panic",
        f"the guest's kernel {what} (console: {console.path}):\n" + "\n".join(console.trouble_lines),
    )


def stalled_outcome(console: Console, seconds: float, waited_for: str) -> Outcome:
    shown = console.last_lines() if console.printed else "(nothing: the kernel printed no line)"
    return Outcome(
        EXIT_STALLED,
        "boot-stalled",
        f"no {waited_for} within {seconds:.0f} s (--boot-timeout); console ({console.path}):\n{shown}",
    )


@dataclass
class Limits:
    boot: float  # until exec-init (one shot) or sshd (whole guest) is up
    command: float | None  # --timeout


class Sink:
    """Where a stream of the command goes: through to ours as it comes, or kept for --json."""

    def __init__(self, stream: IO[bytes] | None) -> None:
        self.stream, self.kept = stream, bytearray()

    def write(self, data: bytes) -> None:
        if self.stream is None:
            self.kept += data
            return
        with contextlib.suppress(BrokenPipeError):
            self.stream.write(data)
            self.stream.flush()

    @property
    def text(self) -> str:
        return self.kept.decode(errors="replace")


# --- a one-shot boot -------------------------------------------------------------------------------
def _fifo(path: str) -> tuple[int, int]:
    """A FIFO QEMU writes (it cannot reopen a pipe of ours through /proc/self/fd under su): our
    reading end, and a writing end we hold so it reads empty, not at end, until QEMU is done."""
    os.mkfifo(path, 0o600)
    reader = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    return reader, os.open(path, os.O_WRONLY | os.O_NONBLOCK)


STDIN_CHUNK = 57 * 1024  # bytes read at once: whole 76-character base64 lines
STDIN_AHEAD = 256 * 1024  # encoded bytes held for the guest before reading more


def encode_stdin(data: bytes, last: bool) -> tuple[bytes, bytes]:
    """The base64 lines for data and what is left for later (up to 2 bytes: base64 pads only at the
    end, and the guest's `base64 -d` reads one stream); with last, everything and STDIN_END."""
    whole = len(data) if last else len(data) - len(data) % 3
    encoded = base64.encodebytes(data[:whole])
    return (encoded + f"{STDIN_END}\n".encode() if last else encoded), data[whole:]


class StdinFeed:
    """The command's stdin, sent to the guest as it comes: read from source (None: nothing, as for
    a terminal) and written, encoded, to port (ttyS1's input), never faster than the guest takes it,
    and only once exec-init has made the port raw (`open`; bytes before would be echoed or lost)."""

    def __init__(self, source: int | None, port: int) -> None:
        self.source, self.port = source, port
        self.pending, self.rest = bytearray(), b""
        self.open = False
        if source is None:
            self.pending += encode_stdin(b"", last=True)[0]

    def readers(self) -> list[int]:
        return [self.source] if self.source is not None and len(self.pending) < STDIN_AHEAD else []

    def writers(self) -> list[int]:
        return [self.port] if self.pending and self.open else []

    def read(self) -> None:
        assert self.source is not None
        try:
            data = os.read(self.source, STDIN_CHUNK)
        except OSError:  # a stdin that cannot be read ends like an empty one
            data = b""
        encoded, self.rest = encode_stdin(self.rest + data, last=not data)
        self.pending += encoded
        if not data:
            self.source = None

    def write(self) -> None:
        with contextlib.suppress(BlockingIOError):
            del self.pending[: os.write(self.port, self.pending)]


def _pump(fds: dict[int, Sink], wait: float, feed: StdinFeed | None = None) -> None:
    """Copy what the FIFOs hold to their sinks and stdin to the guest, waiting at most wait seconds
    for something."""
    readers, writers = [*fds, *(feed.readers() if feed else [])], feed.writers() if feed else []
    if not readers and not writers:
        time.sleep(wait)
        return
    readable, writable, _ = select.select(readers, writers, [], wait)
    for fd in readable:
        if feed is not None and fd == feed.source:
            feed.read()
            continue
        with contextlib.suppress(BlockingIOError):
            while data := os.read(fd, 65536):
                fds[fd].write(data)
    if feed is not None and writable:
        feed.write()


def one_shot(
    settings: Settings,
    boot: Boot,
    command_line: str,
    limits: Limits,
    out: Sink,
    err: Sink,
    *,
    stdin: int | None = None,
    net: bool = False,
    extra: Sequence[str] = (),
    on_trouble: Callable[[Console], None] | None = None,
    on_tick: Callable[[], None] | None = None,
) -> Outcome:
    """Boot straight into exec-init, which runs command_line as the developer and powers off; what
    the stdin fd holds is its stdin (None: empty), its output comes back on out and err, its exit
    status is the outcome's. The console is watched (on_trouble: see _supervise)."""
    encoded = encode_command(command_line)
    console = Console(settings.console)
    with tempfile.TemporaryDirectory(prefix="kdevbox-vm-") as tmp, contextlib.ExitStack() as stack:
        ports = {role: os.path.join(tmp, role) for role in SERIAL_ROLES[1:]}
        fds: dict[int, Sink] = {}
        for path, sink in ((f"{ports['stdout']}.out", out), (ports["stderr"], err)):
            reader, writer = _fifo(path)
            stack.callback(os.close, reader)
            stack.callback(os.close, writer)
            fds[reader] = sink
        os.mkfifo(f"{ports['stdout']}.in", 0o600)
        guest_input = os.open(f"{ports['stdout']}.in", os.O_RDWR | os.O_NONBLOCK)  # RDWR: never blocks
        stack.callback(os.close, guest_input)
        feed = StdinFeed(stdin, guest_input)
        console.reset()
        argv = qemu_argv(settings, boot, one_shot=ports, command=encoded, net=net, extra=extra)
        qemu_err = stack.enter_context(open(os.path.join(tmp, "qemu.err"), "w+b"))
        stack.callback(_remove, settings.pidfile)
        qemu_proc = stack.enter_context(child(argv, stderr=qemu_err))
        outcome = _supervise(
            qemu_proc,
            console,
            limits,
            fds,
            "exec-init (the command's start)",
            feed=feed,
            on_trouble=on_trouble,
            on_tick=on_tick,
        )
        _pump(fds, 0)
        if outcome is None:
            status = "".join(c for c in _read(ports["status"]).decode(errors="replace") if c.isdigit())
            if status:
                outcome = Outcome(int(status), "exited")
            elif console.trouble:
                outcome = trouble_outcome(console)
            elif not console.printed and qemu_proc.returncode:
                qemu_err.seek(0)
                said = qemu_err.read().decode(errors="replace").strip()
                outcome = Outcome(EXIT_QEMU, "qemu-failed", f"QEMU did not start: {said}")
            else:
                outcome = Outcome(
                    EXIT_LOST,
                    "lost",
                    f"the guest stopped before the command ended; console ({console.path}):\n"
                    + console.last_lines(),
                )
    return outcome


def _remove(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


def _supervise(
    qemu_proc: subprocess.Popen[bytes],
    console: Console,
    limits: Limits,
    fds: dict[int, Sink],
    waited_for: str,
    started: Callable[[Console], bool] = lambda console: console.init_seen,
    feed: StdinFeed | None = None,
    on_trouble: Callable[[Console], None] | None = None,
    on_tick: Callable[[], None] | None = None,
) -> Outcome | None:
    """Watch a foreground QEMU until it exits (None), or end it: a panic or oops (after
    TROUBLE_GRACE for the rest of its lines, and on_trouble: --dump-on-panic), no `started` sign
    within the boot bound, the command past --timeout."""
    begun = time.monotonic()
    command_began: float | None = None
    while True:
        _pump(fds, 0.1, feed)
        console.poll()
        if on_tick is not None:
            on_tick()
        now = time.monotonic()
        if qemu_proc.poll() is not None:
            console.poll()
            return trouble_outcome(console) if console.trouble else None
        if console.trouble and now - console.trouble_at >= TROUBLE_GRACE:
            if on_trouble is not None:
                on_trouble(console)
            stop_process(qemu_proc)
            console.poll()
            return trouble_outcome(console)
        if command_began is None:
            if started(console):
                command_began = now
                if feed is not None:
                    feed.open = True
            elif now - begun > limits.boot:
                stop_process(qemu_proc)
                return stalled_outcome(console, limits.boot, waited_for)
        elif limits.command is not None and now - command_began > limits.command:
            stop_process(qemu_proc)
            return Outcome(EXIT_TIMEOUT, "timeout", f"the command ran past --timeout {limits.command:g} s")


# --- the whole guest, over SSH ---------------------------------------------------------------------
def ssh_argv(settings: Settings, *args: str, batch: bool = True) -> list[str]:
    return [
        "ssh",
        "-p",
        str(settings.ssh_port),
        "-i",
        settings.key,
        "-o",
        f"UserKnownHostsFile={settings.known_hosts}",
        "-o",
        "StrictHostKeyChecking=accept-new",
        "-o",
        f"BatchMode={'yes' if batch else 'no'}",
        "-o",
        "ConnectTimeout=5",
        "-o",
        "LogLevel=ERROR",
        f"{settings.user}@{settings.ssh_host}",
        *args,
    ]


def ssh_answers(settings: Settings) -> bool:
    try:
        return subprocess.run(ssh_argv(settings, "true"), capture_output=True, timeout=30).returncode == 0
    except subprocess.TimeoutExpired:
        return False


def running_pid(settings: Settings) -> int | None:
    """The PID of this guest's QEMU, when one runs (its pidfile names a live QEMU)."""
    pid = read_pid(settings.pidfile)
    if pid is None or b"qemu" not in _read(f"/proc/{pid}/cmdline"):
        return None
    return pid


def ssh_run(
    settings: Settings, remote: str, timeout: float | None, out: Sink, err: Sink, **popen: Any
) -> Outcome:
    """remote (a shell command line) in the running guest, its output to out and err (kept for
    --json, else straight through)."""
    with tempfile.TemporaryFile() as kept_out, tempfile.TemporaryFile() as kept_err:
        if out.stream is None:
            popen.update(stdout=kept_out, stderr=kept_err)
        else:
            popen.setdefault("stdout", None)
            popen.setdefault("stderr", None)
        with child(ssh_argv(settings, remote), **popen) as ssh:
            try:
                ssh.wait(timeout)
            except subprocess.TimeoutExpired:
                return Outcome(EXIT_TIMEOUT, "timeout", f"the command ran past --timeout {timeout:g} s")
        if out.stream is None:
            for kept, sink in ((kept_out, out), (kept_err, err)):
                kept.seek(0)
                sink.write(kept.read())
        return Outcome(ssh.returncode, "exited")


def whole_guest(
    settings: Settings, boot: Boot, remote: str, limits: Limits, out: Sink, err: Sink, **popen: Any
) -> Outcome:
    """exec --systemd with no guest running: the whole guest in the foreground (ours: it ends with
    kdevbox-vm), remote over SSH once sshd is up, then powered off."""
    console = Console(settings.console)
    console.reset()
    with contextlib.ExitStack() as stack:
        stack.callback(_remove, settings.pidfile)
        qemu_err = stack.enter_context(tempfile.TemporaryFile())
        qemu_proc = stack.enter_context(child(qemu_argv(settings, boot), stderr=qemu_err))
        outcome = _await_ssh(settings, qemu_proc, console, limits.boot)
        if outcome is not None:
            return outcome
        outcome = ssh_run(settings, remote, limits.command, out, err, **popen)
        _power_off(settings, qemu_proc)
        if console.trouble:
            return trouble_outcome(console)
        return outcome


def _await_ssh(
    settings: Settings, qemu_proc: subprocess.Popen[bytes] | None, console: Console, bound: float
) -> Outcome | None:
    """Until the guest answers SSH (asked when it says it is ready, else every 5 s), or a reason
    it will not: QEMU gone, a panic or oops, the bound."""
    begun = asked = time.monotonic()
    while True:
        console.poll()
        now = time.monotonic()
        if console.trouble and now - console.trouble_at >= TROUBLE_GRACE:
            if qemu_proc is not None:
                stop_process(qemu_proc)
            return trouble_outcome(console)
        gone = qemu_proc.poll() is not None if qemu_proc is not None else running_pid(settings) is None
        if gone:
            console.poll()
            if console.trouble:
                return trouble_outcome(console)
            return Outcome(
                EXIT_LOST,
                "lost",
                f"{settings.name} stopped; console ({console.path}):\n{console.last_lines()}",
            )
        if console.ready_seen or now - asked >= 5:
            asked = now
            if ssh_answers(settings):
                return None
        if now - begun > bound:
            if qemu_proc is not None:
                stop_process(qemu_proc)
            return stalled_outcome(console, bound, "SSH answer")
        time.sleep(0.2)


def _power_off(settings: Settings, qemu_proc: subprocess.Popen[bytes] | None, bound: float = 60) -> None:
    """A reboot ends QEMU at once (-no-reboot), even for kernels without ACPI power-off
    (tinyconfig); after bound, QEMU is killed by its PID."""
    pid = qemu_proc.pid if qemu_proc is not None else running_pid(settings)
    if pid is None:
        return
    with contextlib.suppress(subprocess.TimeoutExpired):
        subprocess.run(ssh_argv(settings, "sudo", "systemctl", "reboot"), capture_output=True, timeout=30)
    deadline = time.monotonic() + bound
    while time.monotonic() < deadline:
        if qemu_proc is not None and qemu_proc.poll() is not None:
            break
        if qemu_proc is None and not pid_alive(pid):
            break
        time.sleep(0.2)
    else:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    if qemu_proc is not None:
        qemu_proc.wait()
    _remove(settings.pidfile)


# --- selftests: KTAP per test and subtest ----------------------------------------------------------
TAP_RESULT = re.compile(
    r"^(?P<not>not )?ok (?P<number>\d+)(?: -)? ?(?P<name>.*?)(?:\s+#\s*(?P<directive>.*))?$"
)
RUNNER_TEST = re.compile(r"^selftests: (?P<target>\S+): (?P<test>.*)$")


@dataclass
class TestResult:
    """One KTAP result line: ok, not ok or skip, and the reason its directive gives."""

    number: int
    name: str
    result: str  # ok, not ok, skip
    reason: str
    target: str = ""
    subtests: list[TestResult] = field(default_factory=list)


def _tap_result(line: str) -> TestResult | None:
    match = TAP_RESULT.match(line)
    if not match:
        return None
    directive = (match["directive"] or "").strip()
    if directive[:4].upper() == "SKIP":
        result, reason = "skip", directive[4:].strip()
    else:
        result, reason = ("not ok" if match["not"] else "ok"), directive
    return TestResult(int(match["number"]), match["name"], result, reason)


def parse_kselftest(lines: Iterable[str]) -> list[TestResult]:
    """The tests of run_kselftest.sh's TAP: its own result lines (`ok N selftests: TARGET: TEST`),
    each with the subtests the test printed before it (its TAP, nested behind "# ")."""
    tests: list[TestResult] = []
    subtests: list[TestResult] = []
    for raw in lines:
        line = raw.rstrip("\r\n")
        if line.startswith("# "):
            inner = line[2:]
            if RUNNER_TEST.match(inner):
                subtests = []
            elif (sub := _tap_result(inner)) is not None:
                subtests.append(sub)
            continue
        test = _tap_result(line)
        runner = RUNNER_TEST.match(test.name) if test else None
        if test is None or runner is None:
            continue
        test.target, test.name, test.subtests = runner["target"], runner["test"], subtests
        subtests = []
        tests.append(test)
    return tests


def count_results(tests: Iterable[TestResult]) -> dict[str, dict[str, int]]:
    counts: dict[str, dict[str, int]] = {}
    for test in tests:
        row = counts.setdefault(test.target, {"pass": 0, "fail": 0, "skip": 0})
        row[{"ok": "pass", "not ok": "fail", "skip": "skip"}[test.result]] += 1
    return counts


def report(tests: list[TestResult]) -> str:
    """A row per target (pass, fail, skip), then a line per failed test with its reason."""
    counts = count_results(tests)
    width = max([len("target"), *(len(t) for t in counts)])
    rows = [f"{'target':<{width}}  pass  fail  skip"]
    rows += [f"{t:<{width}}  {c['pass']:4d}  {c['fail']:4d}  {c['skip']:4d}" for t, c in counts.items()]
    rows += [
        f"FAILED {test.target}: {test.name} ({test.reason or 'failed'})"
        for test in tests
        if test.result == "not ok"
    ]
    return "\n".join(rows)


# --- subcommands -----------------------------------------------------------------------------------
ONE_SHOT_BOOT = 300.0  # seconds until exec-init starts: Debian's kernel takes ~10 s under TCG
WHOLE_BOOT = 600.0  # seconds until sshd answers: systemd under TCG is slow


def _boot(settings: Settings, args: argparse.Namespace) -> Boot:
    check_image(settings)
    kernel, initrd = pick_kernel(settings, getattr(args, "kernel", None))
    verdict = choose_accel(settings, args.accel, kernel)
    tell_accel(verdict)
    load = None if args.bzimage else loadable(settings.cache, kernel)
    return Boot(kernel, initrd, verdict.accel, load=load, modules=stage_modules(settings.cache, kernel))


def cmd_start(settings: Settings, args: argparse.Namespace) -> int:
    pid = running_pid(settings)
    if pid is not None:
        raise Failure(f"{settings.name} is already running (pid {pid})")
    boot = _boot(settings, args)
    Console(settings.console).reset()
    with tempfile.TemporaryFile() as errors:
        started = subprocess.run(
            qemu_argv(settings, boot, daemonize=True), stdin=subprocess.DEVNULL, stdout=errors, stderr=errors
        )
        errors.seek(0)
        if started.returncode != 0:
            raise Failure(f"QEMU did not start: {errors.read().decode(errors='replace').strip()}", EXIT_QEMU)
    with contextlib.suppress(OSError):  # QEMU made it with our umask; the image dir is 0700 too
        os.chmod(settings.qmp, 0o600)
    print(
        f"kdevbox-vm: {settings.name} started ({boot.accel}, kernel {boot.kernel} by {boot.entry}), "
        f"console in {settings.console}"
    )
    return 0


def cmd_wait(settings: Settings, args: argparse.Namespace) -> int:
    if running_pid(settings) is None:
        raise Failure(f"{settings.name} is not running; see {settings.console}")
    outcome = _await_ssh(settings, None, Console(settings.console), args.seconds)
    if outcome is not None:
        raise Failure(outcome.message, outcome.status)
    return 0


def _command(args: argparse.Namespace) -> list[str]:
    command: list[str] = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        args.usage_error("give a command to run in the guest")
    return command


def stdin_source() -> int | None:
    """Our stdin when it is to be the command's (a pipe or a file, as with ssh), None for a terminal:
    a person at it would have to end it with Ctrl-D before every command."""
    try:
        return None if os.isatty(0) else 0
    except OSError:
        return None


def cmd_exec(settings: Settings, args: argparse.Namespace) -> int:
    remote = shlex.join(args.command)
    out, err = (Sink(None), Sink(None)) if args.json else (Sink(sys.stdout.buffer), Sink(sys.stderr.buffer))
    begun = time.monotonic()
    boot: Boot | None = None
    stdin = stdin_source()
    over_ssh: dict[str, Any] = {"stdin": subprocess.DEVNULL if stdin is None else stdin}
    running = running_pid(settings) is not None
    if args.dump_on_panic and (running or args.systemd):
        raise Failure(
            "--dump-on-panic is for a one-shot boot (no --systemd, no guest running): a whole guest's "
            "kernel reboots on a panic; drop the option, or stop the guest",
            EXIT_USAGE,
        )
    if running:
        if args.kernel:
            raise Failure(
                f"{settings.name} already runs: --kernel is for a guest exec boots itself", EXIT_USAGE
            )
        mode = "running"
        outcome = ssh_run(settings, remote, args.timeout, out, err, **over_ssh)
    elif args.systemd:
        mode, boot = "systemd", _boot(settings, args)
        limits = Limits(args.boot_timeout or WHOLE_BOOT, args.timeout)
        outcome = whole_guest(settings, boot, remote, limits, out, err, **over_ssh)
    else:
        encode_command(remote)  # too long: said before the KVM probe
        mode, (boot, keep) = "one-shot", keep_panics(settings, _boot(settings, args), args.dump_on_panic)
        limits = Limits(args.boot_timeout or ONE_SHOT_BOOT, args.timeout)
        outcome = one_shot(
            settings, boot, remote, limits, out, err, stdin=stdin, net=args.net, on_trouble=keep
        )
    if outcome.message:
        say(outcome.message)
    if args.json:
        result = {
            "status": outcome.status,
            "outcome": outcome.outcome,
            "seconds": round(time.monotonic() - begun, 3),
            "mode": mode,
            "accel": boot.accel if boot else None,
            "kernel": boot.kernel if boot else None,
            "entry": boot.entry if boot else None,
            "modules": boot.modules if boot else None,
            "console": settings.console,
            "stdout": out.text,
            "stderr": err.text,
        }
        print(json.dumps(result, indent=2))
    return outcome.status


def cmd_run(settings: Settings, args: argparse.Namespace) -> int:
    return subprocess.call(ssh_argv(settings, *args.command))


def cmd_ssh(settings: Settings, args: argparse.Namespace) -> int:
    argv = ssh_argv(settings, batch=False)
    os.execvp(argv[0], [argv[0], "-t", *argv[1:]])


def cmd_stop(settings: Settings, args: argparse.Namespace) -> int:
    _power_off(settings, None)
    _remove(settings.pidfile)
    return 0


def cmd_accel(settings: Settings, args: argparse.Namespace) -> int:
    kernel, _ = pick_kernel(settings, args.kernel)
    verdict = choose_accel(settings, args.accel, kernel)
    print(verdict.accel)
    if verdict.accel == "tcg":
        earlier = "" if verdict.fresh else " (probed earlier since this machine booted)"
        say(f"TCG (slow): {verdict.reason}{earlier}")
    return 0


def cmd_selftest(settings: Settings, args: argparse.Namespace) -> int:
    if not os.access(os.path.join(settings.kselftests, "run_kselftest.sh"), os.X_OK):
        raise Failure(
            f"no selftests in {settings.kselftests}: "
            "set kernel.selftests and run kdevbox's deploys/kernel.py",
            EXIT_USAGE,
        )
    only = [word for target in args.targets for word in ("-c", target)]
    # Many tests need root; the guest's developer has passwordless sudo.
    run = "rm -rf kselftest && mkdir kselftest && tar -xf - -C kselftest && cd kselftest && "
    run += "sudo ./run_kselftest.sh"
    run = " ".join([run, shlex.join(only)]).rstrip()
    begun = time.monotonic()
    boot: Boot | None = None
    with open(settings.kselftest_tap, "wb") as log:
        sink = Sink(log)
        if running_pid(settings) is not None:
            tar = ["tar", "-C", settings.kselftests, "-cf", "-", "."]
            with child(tar, stdout=subprocess.PIPE) as packed:
                outcome = ssh_run(
                    settings, run, args.timeout, sink, sink, stdin=packed.stdout, stdout=log, stderr=log
                )
        else:
            # One shot, as exec: the selftests come in read-only over 9p, then are copied as over SSH.
            boot = _boot(settings, args)
            mount = f"sudo mount -t 9p -o {NINEP_OPTIONS},ro kselftest /mnt"
            share = (
                f"local,path={_opt(settings.kselftests)},mount_tag=kselftest,security_model=none,readonly=on"
            )
            limits = Limits(args.boot_timeout or ONE_SHOT_BOOT, args.timeout)
            line = f"{mount} && tar -C /mnt -cf - . | {{ {run}; }}"
            outcome = one_shot(settings, boot, line, limits, sink, sink, extra=["-virtfs", share])
    say(f"TAP output in {settings.kselftest_tap}")
    if outcome.message:
        say(outcome.message)
    with open(settings.kselftest_tap, encoding="utf-8", errors="replace") as log_text:
        tests = parse_kselftest(log_text)
    failed = any(test.result == "not ok" for test in tests)
    status = outcome.status if outcome.outcome != "exited" else 1 if failed or not tests else 0
    if args.json:
        print(
            json.dumps(
                {
                    "status": status,
                    "outcome": outcome.outcome,
                    "seconds": round(time.monotonic() - begun, 3),
                    "accel": boot.accel if boot else None,
                    "kernel": boot.kernel if boot else None,
                    "entry": boot.entry if boot else None,
                    "modules": boot.modules if boot else None,
                    "tap": settings.kselftest_tap,
                    "console": settings.console,
                    "targets": count_results(tests),
                    "tests": [dataclasses.asdict(test) for test in tests],
                },
                indent=2,
            )
        )
    elif tests:
        print(report(tests))
    if not tests:
        say(f"no selftest results in {settings.kselftest_tap}: see it for what the guest printed")
    return status


# --- debugging: gdb on QEMU's stub, the guest's memory over QMP -----------------------------------
GDB = "gdb"
DEBUG_APPEND = ("nokaslr",)  # the kernel where vmlinux says it is, whatever the build's KASLR
PANIC_KEEP = ("panic=0",)  # --dump-on-panic: a panicked kernel stays (for its dump), not reboots
GDB_GRACE = 30.0  # seconds a batch gdb gets to end once the guest has
QMP_SECONDS = 600.0  # a dump of a few GiB to a slow disk
# A one-shot boot's command when none is given: the guest idles until gdb quits.
IDLE_COMMAND = "while :; do sleep 3600; done"
KERNEL_VERSION_FIELD = 0x20E  # the bzImage header's pointer (- 0x200) to its version string
DEBUG_FIX = "add debug to kernel.fragments and run kdevbox's deploys/kernel.py"
DUMP_FORMATS = ("elf", "kdump-zlib")


@dataclass(frozen=True)
class DebugBuild:
    """A kdevbox kernel build (its O= dir) with what gdb needs beside the bzImage it made."""

    build: str

    @property
    def vmlinux(self) -> str:
        return os.path.join(self.build, "vmlinux")

    @property
    def gdb_scripts(self) -> str:
        return os.path.join(self.build, "vmlinux-gdb.py")

    @property
    def config(self) -> str:
        return os.path.join(self.build, ".config")


def bzimage_version(path: str) -> str:
    """The version string a bzImage's boot header points to (release, builder, #build and date)."""
    with open(path, "rb") as file:
        file.seek(KERNEL_VERSION_FIELD)
        pointer = int.from_bytes(file.read(2), "little")
        file.seek(pointer + 0x200)
        return file.read(256).split(b"\0", 1)[0].decode(errors="replace")


def banner_matches(vmlinux: str, version: str) -> bool:
    """Whether vmlinux's `Linux version` banner is the one of the bzImage whose version string this
    is: same release, builder and build (#N, date); the compiler sits between them in the banner."""
    head, _, build = version.partition(") ")
    if not build:
        return False
    start = f"Linux version {head}) (".encode()
    with open(vmlinux, "rb") as file, mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ) as data:
        at = data.find(start)
        while at >= 0:
            end = data.find(b"\n", at)
            if end > at and data[at:end].endswith(build.encode()):
                return True
            at = data.find(start, at + 1)
    return False


def debug_build(kernel: str, given: bool, settings: Settings) -> DebugBuild:
    """The build a kernel was made in, checked to be one gdb can debug it with: a kdevbox build dir
    (bzImage at arch/x86/boot/), its vmlinux the same build, DWARF and the kernel's gdb helpers."""
    option = f"--kernel {kernel}" if given else f"the kernel {kernel}"
    status = EXIT_USAGE if given else EXIT_FAILED
    build_dir = build_dir_of(kernel)
    if kernel == settings.vmlinuz or build_dir is None:
        fix = "give a kdevbox build's arch/x86/boot/bzImage" if given else DEBUG_FIX
        raise Failure(f"{option} is no kernel build's bzImage (no vmlinux beside it): {fix}", status)
    build = DebugBuild(build_dir)
    owner = os.stat(build.build)
    others = 0o002 if owner.st_gid == os.getgid() else 0o022  # a group of your own (umask 002) is yours
    if owner.st_uid != os.getuid() or owner.st_mode & others:
        # gdb runs its vmlinux-gdb.py (auto-load): only a build dir that is yours alone to change.
        raise Failure(
            f"{build.build} is not yours alone to write: gdb would run its Python; {DEBUG_FIX}", status
        )
    if not os.path.isfile(build.vmlinux):
        raise Failure(f"no vmlinux in {build.build} (the build of {kernel}): {DEBUG_FIX}", status)
    config = set(_read(build.config).decode(errors="replace").splitlines())
    missing = [opt for opt in ("CONFIG_DEBUG_INFO=y", "CONFIG_GDB_SCRIPTS=y") if opt not in config]
    if missing or not os.path.isfile(build.gdb_scripts):
        what = f"no {' '.join(missing)} in its .config" if missing else f"no {build.gdb_scripts}"
        raise Failure(f"{build.build} is no debug build ({what}): {DEBUG_FIX}", status)
    version = bzimage_version(kernel)
    if not banner_matches(build.vmlinux, version):
        raise Failure(
            f"{build.vmlinux} is not the build of {kernel} ({version}): run kdevbox's deploys/kernel.py "
            "to build both again" + (", or give --kernel the bzImage of that build" if given else ""),
            status,
        )
    return build


def stub_options(path: str, wait: bool) -> list[str]:
    """QEMU's gdb stub on a unix socket at path (the developer's alone: the image dir is 0700); with
    wait, the CPUs halted until gdb says continue."""
    chardev = f"socket,id=gdb0,path={_opt(path)},server=on,wait=off"
    return ["-chardev", chardev, "-gdb", "chardev:gdb0", *(["-S"] if wait else [])]


def gdb_argv(
    build: DebugBuild, stub: str, commands: Sequence[str] = (), batch: str | None = None
) -> list[str]:
    """gdb on the build's vmlinux, its helpers loaded (the build dir on auto-load safe-path, as the
    deploy puts it in your gdbinit), connected to the stub's socket; then commands' files, or batch's
    and end."""
    argv = [GDB, "-q", *(["-batch"] if batch else [])]
    argv += ["-iex", f"add-auto-load-safe-path {build.build}"]
    argv += ["-ex", f"target remote {stub}"]
    for script in [*commands, *([batch] if batch else [])]:
        argv += ["-x", script]
    return [*argv, build.vmlinux]


def attach_line(build: DebugBuild, stub: str) -> str:
    """The one command that attaches gdb from another terminal or an editor (lx-symbols looks for
    modules from gdb's working directory: the build's)."""
    return f"cd {shlex.quote(build.build)} && {shlex.join(gdb_argv(build, stub))}"


class Debugger:
    """gdb, or the line to attach one, once QEMU's stub socket exists (gdb does not wait for a unix
    socket to appear, as it retried a TCP port): started from the one-shot run's watch loop."""

    def __init__(self, settings: Settings, build: DebugBuild, argv: list[str] | None, batch: bool) -> None:
        self.settings, self.build, self.argv, self.batch = settings, build, argv, batch
        self.session: GdbSession | None = None
        self.started = False

    def tick(self) -> None:
        if self.started or not os.path.exists(self.settings.gdb):
            return
        self.started = True
        if self.argv is None:
            print(attach_line(self.build, self.settings.gdb), flush=True)
        else:
            self.session = GdbSession(self.settings, self.argv, self.build.build, self.batch)


def _readable(option: str, path: str) -> str:
    if not os.access(path, os.R_OK) or not os.path.isfile(path):
        raise Failure(f"{option} {path}: no such file you can read: give a file of gdb commands", EXIT_USAGE)
    return path


class GdbSession:
    """gdb in the foreground of kdevbox-vm's terminal (Ctrl-C is gdb's: it stops the guest), killed
    by its PID with kdevbox-vm. When it ends first, the guest's QEMU is stopped (by its pidfile)."""

    def __init__(self, settings: Settings, argv: list[str], cwd: str, batch: bool) -> None:
        self.settings, self.batch = settings, batch
        self.ended_first = False
        try:
            self.process = subprocess.Popen(
                argv, cwd=cwd, stdin=subprocess.DEVNULL if batch else None, preexec_fn=_die_with_parent
            )
        except OSError as error:
            raise Failure(f"{argv[0]} does not run ({error.strerror}): {DEBUG_FIX}") from None
        self.done = threading.Event()
        threading.Thread(target=self._watch, daemon=True).start()

    def _watch(self) -> None:
        """Once gdb has ended, QEMU is stopped until the run sees it gone (it may not have written
        its pidfile yet: a halted guest would wait for a gdb that is no more)."""
        self.process.wait()
        self.ended_first = not self.done.is_set()
        while not self.done.wait(0.2):
            pid = running_pid(self.settings)
            if pid is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGTERM)

    def finish(self) -> None:
        """The guest is gone: a batch gdb ends by itself (its remote closed), a person quits theirs."""
        self.done.set()
        if self.process.poll() is None:
            if self.batch:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self.process.wait(GDB_GRACE)
            else:
                say("the guest has stopped: quit gdb to end")
                self.process.wait()

    def stop(self) -> None:
        self.done.set()
        stop_process(self.process)


def _ignore(signum: int, frame: object) -> None:
    """Ctrl-C while gdb runs is gdb's (it stops the guest), not a reason to end kdevbox-vm."""


def cmd_debug(settings: Settings, args: argparse.Namespace) -> int:
    command = shlex.join(args.command) if args.command else IDLE_COMMAND
    encode_command(command)
    commands = [_readable("-x", path) for path in args.gdb_commands]
    batch = _readable("--gdb-batch", args.gdb_batch) if args.gdb_batch else None
    check_image(settings)
    kernel, _ = pick_kernel(settings, args.kernel)
    build = debug_build(kernel, bool(args.kernel), settings)
    attach = args.print or (batch is None and not os.isatty(0))
    if not attach and shutil.which(GDB) is None:
        raise Failure(f"no {GDB} on PATH: {DEBUG_FIX} (it installs gdb), or --print to attach your own")
    if running_pid(settings) is not None:  # its pidfile, console and stub are the ones debug would take
        raise Failure(f"{settings.name} runs: kdevbox-vm stop it first (debug boots its own)", EXIT_USAGE)
    boot, keep = keep_panics(settings, _boot(settings, args), args.dump_on_panic)
    boot = dataclasses.replace(boot, append=boot.append + DEBUG_APPEND)
    halted = "halted until gdb continues it" if not args.no_wait else "running"
    say(f"gdb stub on {settings.gdb}, the guest {halted}; kernel {boot.kernel}, vmlinux {build.vmlinux}")
    limits = Limits(args.boot_timeout or math.inf, args.timeout)
    out, err = Sink(sys.stdout.buffer), Sink(sys.stderr.buffer)
    extra = stub_options(settings.gdb, not args.no_wait)
    _remove(settings.gdb)  # a stale socket: gdb would try it before QEMU's is there
    debugger = Debugger(
        settings, build, None if attach else gdb_argv(build, settings.gdb, commands, batch), bool(batch)
    )
    previous = signal.signal(signal.SIGINT, _ignore) if not attach else None
    try:
        outcome = one_shot(
            settings, boot, command, limits, out, err, extra=extra, on_trouble=keep, on_tick=debugger.tick
        )
        if debugger.session is not None:
            debugger.session.finish()
    finally:
        _remove(settings.gdb)
        if debugger.session is not None:
            debugger.session.stop()
        if previous is not None:
            signal.signal(signal.SIGINT, previous)
    session = debugger.session
    if session is not None and session.ended_first and outcome.outcome in ("lost", "qemu-failed"):
        code = session.process.returncode
        outcome = Outcome(code, "gdb-ended", "gdb ended before the command: the guest was stopped")
    if outcome.message:
        say(outcome.message)
    return outcome.status


# QMP, QEMU's monitor protocol: a JSON object a line each way; events come between the answers.
def qmp_exchange(path: str, commands: Sequence[dict[str, Any]], bound: float = QMP_SECONDS) -> list[Any]:
    """Each command's `return` through the QMP socket at path (after the greeting and
    qmp_capabilities), or a Failure with QEMU's error."""
    answers: list[Any] = []
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(bound)
        try:
            sock.connect(path)
        except OSError as error:
            raise Failure(
                f"QEMU's monitor {path} does not answer ({error.strerror}): restart the guest"
            ) from None
        with sock.makefile("rwb") as stream:
            _qmp_read(stream, path)  # the greeting
            for command in [{"execute": "qmp_capabilities"}, *commands]:
                stream.write(json.dumps(command).encode() + b"\n")
                stream.flush()
                answer = _qmp_read(stream, path)
                if "error" in answer:
                    refusal = answer["error"]
                    raise Failure(f"QEMU refused {command['execute']}: {refusal.get('desc', refusal)}")
                answers.append(answer.get("return"))
    return answers[1:]


def _qmp_read(stream: io.BufferedRWPair, path: str) -> dict[str, Any]:
    """The next message that is not an event."""
    while True:
        try:
            line = stream.readline()
        except TimeoutError:
            raise Failure(f"QEMU's monitor {path} did not answer within {QMP_SECONDS:.0f} s") from None
        if not line:
            raise Failure(f"QEMU's monitor {path} closed: the guest stopped")
        message = json.loads(line)
        if isinstance(message, dict) and "event" not in message:
            return message


def dump_memory(settings: Settings, fmt: str = "elf") -> str:
    """The running guest's memory into settings.dump (0600, replaced whole), over QMP."""
    partial = os.path.join(os.path.dirname(settings.dump), f".{os.path.basename(settings.dump)}.part")
    _remove(partial)
    arguments: dict[str, Any] = {"paging": False, "protocol": f"file:{partial}"}
    if fmt != "elf":
        arguments["format"] = fmt
    try:
        qmp_exchange(settings.qmp, [{"execute": "dump-guest-memory", "arguments": arguments}])
        os.chmod(partial, 0o600)
        os.replace(partial, settings.dump)
    finally:
        _remove(partial)
    return settings.dump


def open_hint(settings: Settings, dump: str, pid: int) -> str:
    """How to open a dump: crash (or drgn) with the vmlinux of the kernel QEMU (pid) booted. crash
    reads SLAB and SLUB caches only: a SLOB kernel (tinyconfig's) needs it told not to."""
    argv = [word.decode(errors="replace") for word in _read(f"/proc/{pid}/cmdline").split(b"\0")]
    named = f"name={KERNEL_FW_CFG},string="
    given = [word.removeprefix(named).replace(",,", ",") for word in argv if word.startswith(named)]
    kernel = given[0] if given else ""
    try:
        build = debug_build(kernel, False, settings)
    except Failure as failure:
        return f"its kernel has no vmlinux to read it with ({failure})"
    slob = "CONFIG_SLOB=y" in _read(build.config).decode(errors="replace").splitlines()
    crash = shlex.join(["crash", *(["--no_kmem_cache"] if slob else []), build.vmlinux, dump])
    return f"open it with `{crash}` (or drgn -s VMLINUX -c DUMP)"


def cmd_dump(settings: Settings, args: argparse.Namespace) -> int:
    pid = running_pid(settings)
    if pid is None:
        raise Failure(f"{settings.name} is not running: kdevbox-vm start (or debug) it, then dump it")
    dump = dump_memory(settings, args.format)
    size = os.stat(dump).st_size / 2**20
    hint = open_hint(settings, dump, pid)
    say(f"the memory of {settings.name} is in {dump} ({size:.0f} MiB, {args.format}): {hint}")
    return 0


def keep_panics(
    settings: Settings, boot: Boot, dump_format: str | None
) -> tuple[Boot, Callable[[Console], None] | None]:
    """--dump-on-panic: the kernel told to stay after a panic (panic=0, not reboot) so that the
    guest's memory is dumped (dump_format) once the console shows it, before QEMU is stopped."""
    if dump_format is None:
        return boot, None

    def keep(console: Console) -> None:
        if console.trouble != "panic":
            return
        try:
            dump = dump_memory(settings, dump_format)
            hint = open_hint(settings, dump, running_pid(settings) or 0)
            say(f"the panicked guest's memory is in {dump}: {hint}")
        except Failure as failure:
            say(f"the guest panicked, and its dump failed: {failure}")

    return dataclasses.replace(boot, append=boot.append + PANIC_KEEP), keep


def dump_on_panic_option(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--dump-on-panic",
        action="store_const",
        const="elf",
        help="a panicking guest stays until its memory is dumped beside its image (as kdevbox-vm dump)",
    )


# --- the command line ------------------------------------------------------------------------------
def debug_options(
    sub: Callable[[str, str], argparse.ArgumentParser],
    boot_options: Callable[[argparse.ArgumentParser], None],
    time_options: Callable[[argparse.ArgumentParser, str], None],
) -> None:
    """The debug and dump subcommands and their options (build_parser's helpers for the shared ones)."""
    debug = sub(
        "debug",
        "one shot under gdb: boot your kernel build (kernel.fragments: debug) with QEMU's gdb stub on "
        "a socket in the image dir, halted before the kernel runs, and gdb on its vmlinux with the "
        "kernel's helpers (lx-dmesg, lx-ps, lx-symbols) connected; COMMAND runs in the guest (none: "
        "it idles until gdb quits). Without a terminal (or with --print) it prints the gdb command "
        "to attach instead",
    )
    boot_options(debug)
    debug.add_argument(
        "--no-wait", action="store_true", help="let the kernel run at once, not halted for gdb"
    )
    debug.add_argument("--print", action="store_true", help="print the gdb command to attach; start no gdb")
    debug.add_argument(
        "-x",
        dest="gdb_commands",
        action="append",
        default=[],
        metavar="FILE",
        help="gdb runs FILE once connected",
    )
    debug.add_argument(
        "--gdb-batch", metavar="FILE", help="gdb runs FILE and ends (scripts, CI: no terminal needed)"
    )
    time_options(debug, "none: gdb may hold the boot")
    dump_on_panic_option(debug)
    debug.add_argument("command", nargs=argparse.REMAINDER, metavar="[--] COMMAND [ARG...]")
    dump = sub(
        "dump",
        "write the running guest's memory (started, or under debug) beside its image, 0600, for crash "
        "or drgn",
    )
    dump.add_argument(
        "--format", choices=DUMP_FORMATS, default="elf", help="elf (default) or kdump-compressed"
    )


EXIT_HELP = f"""exit statuses: the command's own (exec), else
  {EXIT_FAILED}    nothing to boot (no image, one being built), no SSH, --accel kvm unusable, a test failed;
       debug: no debug build, no gdb; dump: no guest running
  {EXIT_USAGE}    usage: an unknown option, a --kernel that is not a bzImage, a command too long;
       debug: a --kernel that is not the build of the vmlinux beside it
  {EXIT_PANIC}  the guest's kernel panicked       {EXIT_OOPS}  it oopsed (Oops, BUG)
  {EXIT_STALLED}  the boot stalled (--boot-timeout) {EXIT_LOST}  the guest stopped before the command ended
  {EXIT_TIMEOUT}  the command ran past --timeout    {EXIT_QEMU}  QEMU did not start
  {EXIT_INTERRUPTED}  interrupted (Ctrl-C): QEMU was stopped first
The console's last lines go to stderr with 120-123."""


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r}: give more than 0 seconds")
    return value


def build_parser() -> argparse.ArgumentParser:
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(
        prog="kdevbox-vm",
        description="Boot your kdevbox QEMU guest: one shot into a command (like vng --exec), or the\n"
        "whole guest in the background. The kernel: --kernel, else your latest kdevbox build, else\n"
        "the image's Debian kernel and initrd. `kdevbox-vm COMMAND --help` tells more.",
        epilog=EXIT_HELP,
        formatter_class=formatter,
    )
    parser.add_argument(
        "--settings",
        required=True,
        metavar="FILE",
        help=argparse.SUPPRESS,  # the launcher in ~/.local/bin passes the deploy's file
    )
    commands = parser.add_subparsers(dest="subcommand", required=True, metavar="COMMAND")

    def sub(name: str, text: str) -> argparse.ArgumentParser:
        command = commands.add_parser(
            name, help=text, description=text, epilog=EXIT_HELP, formatter_class=formatter
        )
        command.set_defaults(usage_error=command.error)
        return command

    def boot_options(
        command: argparse.ArgumentParser, *, kernel_option: bool = True, boots: bool = True
    ) -> None:
        if kernel_option:
            command.add_argument("--kernel", metavar="BZIMAGE", help="boot this kernel")
        command.add_argument(
            "--accel", choices=("auto", "kvm", "tcg"), help="auto: KVM when it works; kvm: fail without it"
        )
        if boots:
            command.add_argument(
                "--bzimage",
                action="store_true",
                help="boot the bzImage itself, its decompressor and setup code included (KASLR, 5-level "
                "paging), not its vmlinux through PVH",
            )

    def time_options(
        command: argparse.ArgumentParser, boot: str = f"{ONE_SHOT_BOOT:.0f}, --systemd {WHOLE_BOOT:.0f}"
    ) -> None:
        command.add_argument(
            "--timeout", type=_seconds, metavar="SECONDS", help="end the command after this (exit 124)"
        )
        command.add_argument(
            "--boot-timeout",
            type=_seconds,
            metavar="SECONDS",
            help=f"until the command starts (default {boot}; exit 122)",
        )

    start = sub("start", "boot the whole guest in the background (systemd, network, SSH)")
    start.add_argument("kernel", nargs="?", metavar="BZIMAGE", help="boot this kernel")
    boot_options(start, kernel_option=False)
    wait = sub("wait", "wait until the started guest answers SSH")
    wait.add_argument("seconds", nargs="?", type=_seconds, default=WHOLE_BOOT, help="at most (default 600)")
    run_exec = sub(
        "exec",
        "one shot: boot straight into COMMAND (no systemd; no network without --net), print its output, "
        "power off, exit with its status; a running guest runs it over SSH. Its stdin is ours when that "
        "is a pipe or a file (as with ssh), else empty",
    )
    boot_options(run_exec)
    time_options(run_exec)
    run_exec.add_argument(
        "--net",
        action="store_true",
        help="a NIC on QEMU's user network (NAT: the host is "
        f"{USER_NET['gateway']}, its 127.0.0.1 included); the whole guest always has one",
    )
    run_exec.add_argument("--systemd", action="store_true", help="boot the whole guest, run COMMAND over SSH")
    dump_on_panic_option(run_exec)
    run_exec.add_argument("--json", action="store_true", help="print the result as JSON (output included)")
    run_exec.add_argument("command", nargs=argparse.REMAINDER, metavar="[--] COMMAND [ARG...]")
    run = sub("run", "run a command in the running guest over SSH")
    run.add_argument("command", nargs=argparse.REMAINDER, metavar="COMMAND [ARG...]")
    sub("ssh", "a shell in the running guest")
    sub("stop", "power the guest off (QEMU is killed if it does not stop within 60 s)")
    accel = sub("accel", "which acceleration a boot uses, and why (KVM's probe is kept per machine boot)")
    accel.add_argument("kernel", nargs="?", metavar="BZIMAGE", help="the kernel to probe KVM with")
    boot_options(accel, kernel_option=False, boots=False)
    selftest = sub(
        "selftest",
        "run the selftests built with your kernel (kernel.selftests) in the guest (one shot, or the running "
        "guest) and summarize them; exit 1 when a test fails",
    )
    boot_options(selftest, kernel_option=False)
    time_options(selftest)
    selftest.add_argument("--json", action="store_true", help="results per test and subtest as JSON")
    selftest.add_argument("targets", nargs="*", metavar="TARGET", help="only these selftest targets")
    debug_options(sub, boot_options, time_options)
    return parser


def _interrupt(signum: int, frame: object) -> NoReturn:
    raise Interrupted(signum)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    os.umask(0o077)  # the console log, the TAP and the guest's files are the developer's alone
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _interrupt)
    if args.subcommand in ("exec", "run"):
        args.command = _command(args)  # a usage error before anything else
    elif args.subcommand == "debug":
        args.command = args.command[1:] if args.command[:1] == ["--"] else args.command
    try:
        settings = Settings.load(args.settings)
        handlers: dict[str, Callable[[Settings, argparse.Namespace], int]] = {
            "start": cmd_start,
            "wait": cmd_wait,
            "exec": cmd_exec,
            "run": cmd_run,
            "ssh": cmd_ssh,
            "stop": cmd_stop,
            "accel": cmd_accel,
            "selftest": cmd_selftest,
            "debug": cmd_debug,
            "dump": cmd_dump,
        }
        return handlers[args.subcommand](settings, args)
    except Failure as failure:
        say(str(failure))
        return failure.status
    except (KeyboardInterrupt, Interrupted):
        say("interrupted: QEMU stopped")
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
