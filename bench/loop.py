"""The inner loop, side by side: a one-line change in kernel/fork.c of the built tinyconfig + guest
tree, then the rebuild and a boot that shows the new build (`uname -v`) and powers off, each phase
timed, median of 3 cycles:

- kdevbox: `deploys/kernel.py` (pyinfra), then `kdevbox-vm exec -- uname -v`;
- the alternative a virtme-ng user runs: `make bzImage` in the same build dir, then
  `vng -r <bzImage> --exec 'uname -v'`.

Also the no-op `deploys/kernel.py` on the built tree (nothing to do). Prints figures; asserts
nothing.

    pip install -e '.[bench]' && python -m bench.loop [--quick]

Runs on a chroot test host (tests/testhosts.py) with a guest image built there, as bench/boot.py
does; vng runs on this machine (its root over 9p), as its users run it. Under TCG where KVM does
not work.
"""

from __future__ import annotations

import statistics
import subprocess
import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path

from bench.boot import needs, vng
from bench.guest_boot import GUEST_IMAGE, USER, bench_host, pyinfra, vm
from bench.options import bench_parser, runs
from tests.setups import KERNEL

SOURCE = f"/home/{USER}/src/linux"
BUILD = f"/home/{USER}/build/kdevbox"
EDITED = "kernel/fork.c"


def as_user(root: Path, command: str) -> str:
    return subprocess.run(
        ["chroot", str(root), "su", "-l", USER, "-c", command], check=True, capture_output=True, text=True
    ).stdout


def edit(root: Path, cycle: str) -> None:
    """A one-line change: a comment appended to kernel/fork.c, as an editor would save it."""
    as_user(root, f"echo '/* kdevbox bench {cycle} */' >> {SOURCE}/{EDITED}")


def build_number(root: Path) -> str:
    """`#N` of the latest build, as `uname -v` in the booted kernel must show it."""
    return "#" + (root / BUILD.lstrip("/") / ".version").read_text().strip()


def phase(action: Callable[[], object]) -> tuple[float, object]:
    start = time.monotonic()
    result = action()
    return time.monotonic() - start, result


def kdevbox_cycle(root: Path, inventory: Path, cycle: str) -> list[float]:
    edit(root, cycle)
    rebuild, _ = phase(lambda: pyinfra(inventory, KERNEL))
    boot, shown = phase(lambda: vm(root, "exec", "--", "uname", "-v"))
    expected = build_number(root)
    if not str(shown).startswith(expected + " "):
        raise SystemExit(f"kdevbox-vm exec shows {shown!r}, not the new build {expected}")
    return [rebuild, boot]


def vng_cycle(root: Path, cycle: str, accel: str) -> list[float]:
    edit(root, cycle)
    make = f"make -s -C {SOURCE} O={BUILD} CC='ccache gcc' -j$(nproc) bzImage"
    rebuild, _ = phase(lambda: as_user(root, make))
    tcg = ("--disable-kvm",) if accel == "tcg" else ()
    boot, shown = phase(lambda: vng(f"{root}{BUILD}/arch/x86/boot/bzImage", *tcg, command="uname -v"))
    expected = build_number(root)
    if not str(shown).startswith(expected + " "):
        raise SystemExit(f"vng shows {shown!r}, not the new build {expected}")
    return [rebuild, boot]


def medians(cycles: list[list[float]]) -> list[float]:
    return [statistics.median(column) for column in zip(*cycles, strict=True)]


def measure(root: Path, inventory: Path, count: int) -> None:
    """The figures, on a bench_host (the guest image and the kernel are built first where missing);
    the tree is left as kdevbox's deploy builds it."""
    needs()
    pyinfra(inventory, GUEST_IMAGE)
    pyinfra(inventory, KERNEL)
    accel = vm(root, "accel").strip()
    noop = statistics.median(pyinfra(inventory, KERNEL) for _ in range(count))
    ours = medians([kdevbox_cycle(root, inventory, f"kdevbox {n}") for n in range(count)])
    # vng's rebuild is make alone: put the tree back where kdevbox's deploy left it afterwards.
    # vng gets the accelerator kdevbox-vm uses: KVM first would hang where /dev/kvm runs nothing.
    theirs = medians([vng_cycle(root, f"vng {n}", accel) for n in range(count)])
    pyinfra(inventory, KERNEL)

    print(f"one-line change in {EDITED} -> rebuild -> boot, `uname -v` shows it -> power off")
    print(f"median of {count}, tinyconfig + guest (linux-source-6.1), {accel}, seconds")
    print(f"  {'':34} {'rebuild':>8} {'boot+run':>9} {'total':>7}")
    for label, (rebuild, boot) in (
        ("kdevbox (kernel.py, kdevbox-vm exec)", ours),
        ("virtme-ng (make bzImage, vng --exec)", theirs),
    ):
        print(f"  {label:<34} {rebuild:8.1f} {boot:9.1f} {rebuild + boot:7.1f}")
    print(f"  kdevbox / virtme-ng: x{sum(ours) / sum(theirs):.2f}")
    print(f"no-op deploys/kernel.py on the built tree: {noop:.1f} s")


def main() -> None:
    count = runs(bench_parser(__doc__).parse_args().quick)
    with ExitStack() as stack:
        measure(*bench_host(stack), count)


if __name__ == "__main__":
    main()
