"""Every bench once, in turn: python -m bench [--quick] (CI runs it with --quick).

They only print figures, so nothing else would notice one rotting.

guest_boot, boot and loop share one chroot test host: its guest image and its kernel build are most
of each one's minutes, and alone each builds its own (three hosts were a third of CI's time).
guest_boot goes first (its image build from nothing is a figure), loop last (it edits the tree).
noop_rerun and kernel_build run as they do alone, with their defaults.
"""

from __future__ import annotations

import os
from contextlib import ExitStack

from bench import boot, guest_boot, kernel_build, loop, noop_rerun
from bench.options import bench_parser, runs


def main() -> None:
    quick = bench_parser(__doc__).parse_args().quick
    count = runs(quick)
    noop_rerun.measure([1] if quick else list(noop_rerun.HOST_COUNTS), count)
    print(flush=True)
    with ExitStack() as stack:
        host = guest_boot.bench_host(stack)
        guest_boot.measure(*host, quick)
        print(flush=True)
        boot.measure(*host, count)
        print(flush=True)
        loop.measure(*host, count)
    print(flush=True)
    kernel_build.measure(kernel_build.TREE, os.cpu_count() or 1, quick)


if __name__ == "__main__":
    main()
