"""WSL2 hosts: /etc/wsl.conf edited key by key, and /dev/kvm for QEMU guests. Other hosts: nothing."""

from __future__ import annotations

from pyinfra import host, logger
from pyinfra.api import deploy
from pyinfra.facts.files import FileContents

from kdevbox.config import Wsl
from kdevbox.facts import WslHost
from kdevbox.ini import set_ini_values
from kdevbox.layout import WSL_CONF
from kdevbox.steps import kvm_member, system_file
from kdevbox.target import Target

NO_KVM = (
    "{host}: WSL2 has no /dev/kvm, so QEMU guests run without acceleration (slow). Enable nested "
    "virtualization on the Windows side: in %UserProfile%\\.wslconfig set `nestedVirtualization=true` "
    "under [wsl2] (Windows 11, a CPU with VT-x/AMD-V enabled in firmware), then run `wsl --shutdown`."
)


@deploy("WSL2")
def wsl_setup(cfg: Wsl, target: Target) -> None:
    info = host.get_fact(WslHost)
    if not info.is_wsl2:
        return
    current = host.get_fact(FileContents, path=WSL_CONF)
    text = "\n".join(current) + "\n" if current else ""
    system_file(
        f"{WSL_CONF}: kdevbox keys, the rest as it was",
        WSL_CONF,
        set_ini_values(text, cfg.wsl_conf(target.account.name)),
        "644",
    )
    if cfg.kvm_group:
        kvm_member(target)
    if not info.has_kvm:
        logger.warning(NO_KVM.format(host=host.name))
