"""Guest image and boot figures: cold and warm image build time and qcow2 size, and boot-to-command
time (kdevbox-vm start until `uname -r` answers over SSH) with the image's Debian kernel + initrd and
with a kdevbox tinyconfig + guest kernel. Prints figures; asserts nothing.

    python -m bench.guest_boot [--quick]   # --quick: no warm rebuild of the image

Runs on a chroot test host (tests/testhosts.py), as the integration tests do; the kernel comes from
the tests' linux-source-6.1 stand-in. Under TCG on machines where KVM does not work.
"""

from __future__ import annotations

import subprocess
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

from bench.options import bench_parser
from tests import testhosts
from tests.kernel_stand_in import kernel_git_repo
from tests.setups import KERNEL, REPO, guest_kernel_settings, write_inventory

GUEST_IMAGE = REPO / "deploys" / "guest_image.py"
USER = testhosts.DEV_USER


def pyinfra(inventory: Path, deploy: Path) -> float:
    start = time.monotonic()
    subprocess.run(
        ["pyinfra", "-y", str(inventory), str(deploy)], cwd=inventory.parent, check=True, capture_output=True
    )
    return time.monotonic() - start


def vm(root: Path, *args: str) -> str:
    command = " ".join([f"/home/{USER}/.local/bin/kdevbox-vm", *args])
    return subprocess.run(
        ["chroot", str(root), "su", "-l", USER, "-c", command], check=True, capture_output=True, text=True
    ).stdout


def boot_to_command(root: Path, kernel: str = "") -> tuple[float, str]:
    start = time.monotonic()
    vm(root, "start", kernel)
    try:
        vm(root, "wait", "900")
        release = vm(root, "run", "uname", "-r").strip()
        return time.monotonic() - start, release
    finally:
        vm(root, "stop")


def bench_host(stack: ExitStack) -> tuple[Path, Path]:
    """A chroot test host for a guest named bench and the tinyconfig + guest kernel (the tests'
    linux-source-6.1 stand-in; not the tests' debug build): (its root, the inventory). Gone when
    stack closes."""
    work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="kdevbox-bench-")))
    repo = kernel_git_repo()
    url = stack.enter_context(testhosts.git_daemon(repo.parent, repo))
    root = stack.enter_context(testhosts.throwaway_rootfs(work / "host"))
    guest = {"name": "bench", "size": "3G", "ssh_port": testhosts.free_port(), "memory": "1G"}
    # What the figures are of: tinyconfig + guest alone.
    kernel = guest_kernel_settings(f"{url}/{repo.name}", fragments=["guest"], options=[])
    inventory = write_inventory(
        work / "setup", [(f"@chroot{root}", {"user": USER, "guest": guest, "kernel": kernel})]
    )
    return root, inventory


def measure(root: Path, inventory: Path, quick: bool) -> None:
    """The figures, on a fresh bench_host (the image's cold build is one): it leaves the guest image
    and the kernel built there."""
    images = root / f"home/{USER}/.local/share/kdevbox/guests"
    print("guest image (bookworm, essentials)")
    print(f"  cold build (debootstrap + image): {pyinfra(inventory, GUEST_IMAGE):7.1f} s")
    if not quick:
        (images / "bench.qcow2.inputs").unlink()
        print(f"  warm build (cached base):         {pyinfra(inventory, GUEST_IMAGE):7.1f} s")
    print(f"  qcow2 size:                       {(images / 'bench.qcow2').stat().st_size / 2**20:7.1f} MiB")

    print("boot to `uname -r` over SSH (kdevbox-vm start .. run)")
    seconds, release = boot_to_command(root, f"/home/{USER}/.local/share/kdevbox/guests/bench.vmlinuz")
    print(f"  Debian kernel + initrd ({release}): {seconds:7.1f} s")
    pyinfra(inventory, KERNEL)
    seconds, release = boot_to_command(root)
    print(f"  kdevbox tinyconfig + guest ({release}): {seconds:7.1f} s  accel: {vm(root, 'accel').strip()}")


def main() -> None:
    quick = bench_parser(__doc__).parse_args().quick
    with ExitStack() as stack:
        measure(*bench_host(stack), quick)


if __name__ == "__main__":
    main()
