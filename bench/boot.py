"""Boot to a command's output, side by side: kdevbox-vm exec (straight into the command),
kdevbox-vm exec --systemd (the whole guest, the command over SSH), and virtme-ng's `vng --exec`, each
the whole one-shot cycle (boot, `uname -r`, power off), median of 3, with (a) Debian's kernel and
(b) the kdevbox tinyconfig + guest build; and where kdevbox-vm exec's seconds go (the guest's uptime
when its exec-init starts and when the command is done, from the console). Then both asked for KVM:
their seconds where it works, else what each does (kdevbox-vm's fallback and reason, vng's wait).
Prints figures; asserts nothing.

    pip install -e '.[bench]' && python -m bench.boot [--quick]

kdevbox-vm runs on a chroot test host (tests/testhosts.py) with an image built there; vng runs on this
machine as its users run it (`vng --disable-kvm -r <kernel>`: this machine's root over 9p), so it
needs Debian's kernel with its modules here: the script installs linux-image-amd64, busybox-static
and qemu-system-x86 with apt. Under TCG where KVM does not work (as on the machines this was written
on).
"""

from __future__ import annotations

import glob
import os
import re
import shutil
import signal
import statistics
import subprocess
import time
from collections.abc import Callable
from contextlib import ExitStack
from functools import partial
from pathlib import Path

from bench.guest_boot import GUEST_IMAGE, USER, bench_host, pyinfra, vm
from bench.options import bench_parser, runs
from tests.setups import KERNEL

VNG_TIMEOUT = 240  # seconds: a kernel vng cannot boot prints nothing, for ever
KVM_BOUND_QUICK = 30  # ... and --quick gives vng this long with a /dev/kvm that may run nothing


def timed(cycle: Callable[[], str], count: int) -> tuple[float | None, str]:
    """Median seconds of count cycles and the last output; None when a cycle failed."""
    seconds, output = [], ""
    for _ in range(count):
        start = time.monotonic()
        try:
            output = cycle()
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as error:
            return None, str(error).splitlines()[0]
        seconds.append(time.monotonic() - start)
    return statistics.median(seconds), output


def vng(kernel: str, *options: str, command: str = "uname -r", bound: float = VNG_TIMEOUT) -> str:
    """vng --exec COMMAND in a session of its own: on a timeout its QEMU goes too (by the group's
    id). options: ("--disable-kvm",) for TCG, none for vng's own choice (KVM first)."""
    argv = ["vng", *options, "-r", kernel, "--exec", command]
    with subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    ) as run:
        try:
            out, _ = run.communicate(timeout=bound)
        except subprocess.TimeoutExpired:
            os.killpg(run.pid, signal.SIGKILL)
            run.communicate()
            raise
    if run.returncode != 0:
        raise subprocess.CalledProcessError(run.returncode, argv)
    return out.strip()


def kdevbox_exec(root: Path, kernel: str, *options: str) -> str:
    return vm(root, "exec", "--kernel", kernel, *options, "--", "uname", "-r").strip()


def breakdown(root: Path, kernel: str) -> str:
    """One more kdevbox-vm exec, split by the guest's uptime on its console: QEMU and firmware before
    the kernel counts, the kernel up to exec-init, the command, power off and QEMU's exit."""
    start = time.monotonic()
    kdevbox_exec(root, kernel)
    total = time.monotonic() - start
    console = (root / f"home/{USER}/.local/share/kdevbox/guests/bench.console.log").read_text(
        errors="replace"
    )
    marks = dict(re.findall(r"kdevbox-exec: (init|done) at ([0-9.]+) s", console))
    if set(marks) != {"init", "done"}:
        return "  (no exec-init marks on the console)"
    init, done = float(marks["init"]), float(marks["done"])
    return (
        f"  where {total:.1f} s go: kernel to init {init:.1f} s, init + command {done - init:.1f} s, "
        f"QEMU start, firmware, power off and exit {total - done:.1f} s"
    )


def row(label: str, figure: tuple[float | None, str]) -> str:
    seconds, output = figure
    shown = f"{seconds:6.1f} s" if seconds is not None else "  failed"
    return f"  {label:<38} {shown}   {output}"


def ratio(ours: float | None, theirs: float | None) -> str:
    return f"x{ours / theirs:.2f}" if ours and theirs else "-"


def with_kvm(root: Path, ours: str, theirs: str, count: int, bound: float) -> None:
    """Both tools asked for KVM: where it works, their seconds side by side; where it does not, what
    each does instead (kdevbox-vm: TCG and its reason; vng: KVM first, so here it may print nothing
    until it is killed at bound)."""
    command = f"/home/{USER}/.local/bin/kdevbox-vm accel --accel auto"
    said = subprocess.run(
        ["chroot", str(root), "su", "-l", USER, "-c", command], capture_output=True, text=True
    )
    accel, reason = said.stdout.strip(), said.stderr.strip()
    print(f"With KVM where it works (kdevbox-vm accel: {accel}), median of {count}")
    if accel == "kvm":
        print(
            row(
                "kdevbox-vm exec --accel kvm",
                timed(partial(kdevbox_exec, root, ours, "--accel", "kvm"), count),
            )
        )
    else:
        print(f"  kdevbox-vm exec: falls back to TCG, saying once: {reason}")
    print(
        row(f"vng --exec (its own accel, bound {bound:.0f} s)", timed(partial(vng, theirs, bound=bound), 1))
    )


def needs() -> None:
    """What vng needs on this machine (boot and loop run it here): QEMU, and Debian's kernel with its
    modules, busybox for its initramfs."""
    subprocess.run(
        ["apt-get", "install", "-y", "-q", "linux-image-amd64", "busybox-static", "qemu-system-x86"],
        check=True,
        capture_output=True,
    )
    if shutil.which("vng") is None:
        raise SystemExit("no vng: pip install -e '.[bench]'")


def measure(root: Path, inventory: Path, count: int) -> None:
    """The figures, on a bench_host (the guest image and the kernel are built first where missing)."""
    needs()
    debian = sorted(glob.glob("/boot/vmlinuz-*-amd64"))[-1]
    pyinfra(inventory, GUEST_IMAGE)
    pyinfra(inventory, KERNEL)
    image_kernel = f"/home/{USER}/.local/share/kdevbox/guests/bench.vmlinuz"
    build = f"/home/{USER}/build/kdevbox/arch/x86/boot/bzImage"

    for label, ours, theirs in (
        (f"Debian kernel ({Path(debian).name})", image_kernel, debian),
        ("kdevbox tinyconfig + guest build", build, str(root) + build),
    ):
        print(f"{label}: boot -> `uname -r` -> power off, median of {count}, {vm(root, 'accel').strip()}")
        exec_ = timed(partial(kdevbox_exec, root, ours), count)
        systemd = timed(partial(kdevbox_exec, root, ours, "--systemd"), count)
        theirs_ = timed(partial(vng, theirs, "--disable-kvm"), count)
        print(row("kdevbox-vm exec", exec_))
        print(row("kdevbox-vm exec --systemd", systemd))
        print(row("vng --exec", theirs_))
        print(f"  kdevbox-vm exec / vng: {ratio(exec_[0], theirs_[0])}")
        print(breakdown(root, ours))
    with_kvm(root, build, str(root) + build, count, KVM_BOUND_QUICK if count == 1 else VNG_TIMEOUT)


def main() -> None:
    count = runs(bench_parser(__doc__).parse_args().quick)
    with ExitStack() as stack:
        measure(*bench_host(stack), count)


if __name__ == "__main__":
    main()
