"""WSL2 hosts: /etc/wsl.conf edited key by key, and /dev/kvm for QEMU guests. Other hosts: nothing."""

from __future__ import annotations

from io import StringIO

from pyinfra import host, logger
from pyinfra.api import deploy
from pyinfra.facts.files import FileContents
from pyinfra.operations import files, server

from kdevbox.config import Wsl
from kdevbox.facts import WslHost
from kdevbox.ini import set_ini_values
from kdevbox.layout import WSL_CONF
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
    files.put(
        name=f"{WSL_CONF}: kdevbox keys, the rest as it was",
        src=StringIO(set_ini_values(text, cfg.wsl_conf(target.account.name))),
        dest=WSL_CONF,
        user="root",
        group="root",
        mode="644",
    )
    if cfg.kvm_group:
        server.group(name="kvm group", group="kvm", system=True)
        server.user(
            name=f"{target.account.name} in the kvm group",
            user=target.account.name,
            groups=["kvm"],
            append=True,
        )
    if not info.has_kvm:
        logger.warning(NO_KVM.format(host=host.name))
