"""Removing kernels kdevbox installed: never the running one, the last bootable one, or one a
distribution package owns (apt's to remove)."""

from __future__ import annotations

from pyinfra import host
from pyinfra.api import deploy
from pyinfra.operations import files, server

from kdevbox.config import Kernel
from kdevbox.facts import KernelsPresent
from kdevbox.inventory import ConfigError, Problem


@deploy("kernel uninstall")
def kernel_uninstall(cfg: Kernel) -> None:
    """Remove each release in cfg.uninstall; refuse the running kernel and the last bootable one."""
    kernels = host.get_fact(KernelsPresent)
    problems = []
    remaining = set(kernels.boot) - set(cfg.uninstall)
    for release in cfg.uninstall:
        if release == kernels.running:
            problems.append(
                Problem(
                    host.name, "kernel.uninstall", release, "is the running kernel: boot another one first"
                )
            )
        elif release in kernels.packaged:
            problems.append(
                Problem(
                    host.name,
                    "kernel.uninstall",
                    release,
                    "belongs to a distribution package (dpkg -S): remove it with apt "
                    f"(apt remove linux-image-{release}), which keeps dpkg's records right",
                )
            )
        elif release not in kernels.boot and release not in kernels.modules:
            problems.append(
                Problem(
                    host.name,
                    "kernel.uninstall",
                    release,
                    f"not installed; installed: {', '.join(kernels.boot) or 'none'}",
                )
            )
        elif release in kernels.boot and not remaining:
            problems.append(
                Problem(
                    host.name,
                    "kernel.uninstall",
                    release,
                    "is the last bootable kernel in /boot: install another one first",
                )
            )
    if problems:
        raise ConfigError(problems, headline="kernels not removed")
    for release in cfg.uninstall:
        paths = [f"/boot/{kind}-{release}" for kind in ("vmlinuz", "System.map", "config", "initrd.img")]
        for path in paths:
            files.file(name=f"remove {path}", path=path, present=False)
        files.directory(name=f"remove /lib/modules/{release}", path=f"/lib/modules/{release}", present=False)
        files.file(
            name=f"remove initramfs-tools state of {release}",
            path=f"/var/lib/initramfs-tools/{release}",
            present=False,
        )
    if cfg.uninstall and kernels.update_grub:
        server.shell(name="update-grub", commands=["update-grub"])
