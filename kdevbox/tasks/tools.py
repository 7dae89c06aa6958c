"""Low-level tools from the distribution (msr-tools, trace-cmd, bpftrace, gdb, ctags, ...)."""

from __future__ import annotations

from pyinfra import host, logger
from pyinfra.api import deploy
from pyinfra.operations import files, server

from kdevbox.config import Tools
from kdevbox.facts import KernelModuleState, PackageAvailability
from kdevbox.layout import MSR_MODULES_LOAD
from kdevbox.steps import apt_install, system_file
from kdevbox.templates import TEMPLATES


def missing_message(host_name: str, missing: tuple[str, ...]) -> str:
    return (
        f"{host_name}: tools.packages: not in this host's apt sources, not installed: "
        f"{', '.join(missing)} (add the source that has them, or drop them from tools.packages)"
    )


@deploy("low-level tools")
def tools_setup(cfg: Tools) -> None:
    missing = host.get_fact(PackageAvailability, packages=cfg.packages).missing if cfg.packages else ()
    if missing:
        logger.warning(missing_message(host.name, missing))
    wanted = [p for p in cfg.packages if p not in missing]
    if wanted:
        apt_install("low-level tools", wanted)

    load_msr = cfg.wants_msr and "msr-tools" not in missing
    msr = host.get_fact(KernelModuleState, module="msr") if load_msr else None
    if load_msr and msr is None:
        logger.warning(
            f"{host.name}: tools.load_msr: the running kernel has no msr module here (a container, "
            "a chroot, or a kernel built without CONFIG_X86_MSR): rdmsr and wrmsr will not work"
        )
    if msr is None:
        files.file(name=f"no {MSR_MODULES_LOAD}", path=MSR_MODULES_LOAD, present=False)
        return
    system_file(
        f"msr module loaded at boot ({MSR_MODULES_LOAD})",
        MSR_MODULES_LOAD,
        (TEMPLATES / "tools" / "kdevbox-msr.conf").read_text(),
        "644",
    )
    if msr == "available":
        server.modprobe(name="msr module loaded", module="msr")
