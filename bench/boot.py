"""Boot to a command's output, side by side: kdevbox-vm exec, kdevbox-vm start+wait+run+stop, and
virtme-ng's `vng --exec`, each the whole one-shot cycle (boot, `uname -r`, power off), median of 3,
with (a) Debian's kernel and (b) the kdevbox tinyconfig + guest build. Prints figures; asserts nothing.

    pip install -e '.[bench]' && python -m bench.boot

kdevbox-vm runs on a chroot test host (tests/testhosts.py) with an image built there; vng runs on this
machine as its users run it (`vng --disable-kvm -r <kernel>`: this machine's root over 9p), so it
needs Debian's kernel with its modules here: the script installs linux-image-amd64, busybox-static
and qemu-system-x86 with apt. Under TCG where KVM does not work (as on the machines this was written
on).
"""

from __future__ import annotations

import glob
import os
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
from tests.setups import KERNEL

RUNS = 3
VNG_TIMEOUT = 240  # seconds: a kernel vng cannot boot prints nothing, for ever


def timed(cycle: Callable[[], str]) -> tuple[float | None, str]:
    """Median seconds of RUNS cycles and the last output; None when a cycle failed."""
    seconds, output = [], ""
    for _ in range(RUNS):
        start = time.monotonic()
        try:
            output = cycle()
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as error:
            return None, str(error).splitlines()[0]
        seconds.append(time.monotonic() - start)
    return statistics.median(seconds), output


def vng(kernel: str, command: str = "uname -r") -> str:
    """vng --exec in a session of its own: on a timeout its QEMU goes too (by the group's id)."""
    argv = ["vng", "--disable-kvm", "-r", kernel, "--exec", command]
    with subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    ) as run:
        try:
            out, _ = run.communicate(timeout=VNG_TIMEOUT)
        except subprocess.TimeoutExpired:
            os.killpg(run.pid, signal.SIGKILL)
            run.communicate()
            raise
    if run.returncode != 0:
        raise subprocess.CalledProcessError(run.returncode, argv)
    return out.strip()


def kdevbox_exec(root: Path, kernel: str) -> str:
    return vm(root, "exec", "--kernel", kernel, "--", "uname", "-r").strip()


def kdevbox_start_run_stop(root: Path, kernel: str) -> str:
    vm(root, "start", kernel)
    try:
        vm(root, "wait", "900")
        return vm(root, "run", "uname", "-r").strip()
    finally:
        vm(root, "stop")


def row(label: str, figure: tuple[float | None, str]) -> str:
    seconds, output = figure
    shown = f"{seconds:6.1f} s" if seconds is not None else "  failed"
    return f"  {label:<38} {shown}   {output}"


def ratio(ours: float | None, theirs: float | None) -> str:
    return f"x{ours / theirs:.2f}" if ours and theirs else "-"


def main() -> None:
    subprocess.run(
        ["apt-get", "install", "-y", "-q", "linux-image-amd64", "busybox-static", "qemu-system-x86"],
        check=True,
        capture_output=True,
    )
    if shutil.which("vng") is None:
        raise SystemExit("no vng: pip install -e '.[bench]'")
    debian = sorted(glob.glob("/boot/vmlinuz-*-amd64"))[-1]
    with ExitStack() as stack:
        root, inventory = bench_host(stack)
        pyinfra(inventory, GUEST_IMAGE)
        pyinfra(inventory, KERNEL)
        image_kernel = f"/home/{USER}/.local/share/kdevbox/guests/bench.vmlinuz"
        build = f"/home/{USER}/build/kdevbox/arch/x86/boot/bzImage"

        for label, ours, theirs in (
            (f"Debian kernel ({Path(debian).name})", image_kernel, debian),
            ("kdevbox tinyconfig + guest build", build, str(root) + build),
        ):
            print(f"{label}: boot -> `uname -r` -> power off, median of {RUNS}, {vm(root, 'accel').strip()}")
            exec_ = timed(partial(kdevbox_exec, root, ours))
            start = timed(partial(kdevbox_start_run_stop, root, ours))
            theirs_ = timed(partial(vng, theirs))
            print(row("kdevbox-vm exec", exec_))
            print(row("kdevbox-vm start + wait + run + stop", start))
            print(row("vng --exec", theirs_))
            print(f"  kdevbox-vm exec / vng: {ratio(exec_[0], theirs_[0])}")


if __name__ == "__main__":
    main()
