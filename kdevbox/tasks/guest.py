"""QEMU guest images built on the dev box, and kdevbox-vm, which boots them with a chosen kernel."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from pyinfra import host
from pyinfra.api import deploy
from pyinfra.facts.files import File
from pyinfra.operations import files, server

from kdevbox import kdevbox_vm
from kdevbox.config import GUEST_ESSENTIALS, VIRTME_NG_COMMANDS, AptProxy, Guest, Kernel
from kdevbox.facts import Stamp, WslHost
from kdevbox.inventory import refusal
from kdevbox.layout import (
    DEBIAN_KEYRING,
    GUEST_BASE_CACHE,
    GUEST_BUILD_WORK,
    GUEST_EXEC_INIT,
    GUEST_RUNNER,
    LOG_DIR,
    SCRIPT_DIR,
    SELFTEST_SUMMARY,
    SSH_MARKER,
    UNIX_SOCKET_PATH_MAX,
    Home,
    KernelTree,
    expand_home,
    guest_files,
    kernel_build_dir,
)
from kdevbox.operations import inputs_digest, sha256_text
from kdevbox.shell import sh, words
from kdevbox.steps import (
    apt_install,
    box_program,
    kvm_member,
    launcher_script,
    managed_block,
    pip_tool,
    private_file,
    system_file,
)
from kdevbox.target import Target
from kdevbox.tasks.guest_network import guest_network_setup, guest_tap_teardown
from kdevbox.templates import render

# What the image build says on stderr as it reaches each stage (tests interrupt it there).
BUILD_STAGES = {
    "base": "kdevbox-build: stage base (copying the cached base)",
    "packages": "kdevbox-build: stage packages (installing guest.packages)",
    "disk": "kdevbox-build: stage disk (making the disk image)",
}


def protocol() -> dict[str, str]:
    """What the image's exec-init and units say and read: kdevbox-vm's own constants, so the two
    sides of the serial ports and the kernel command line are spelled once (kdevbox/kdevbox_vm.py)."""
    return {
        "exec_param": kdevbox_vm.EXEC_PARAM,
        "ready_marker": kdevbox_vm.READY_MARKER,
        "init_mark": kdevbox_vm.INIT_MARK,
        "done_mark": kdevbox_vm.DONE_MARK,
        "net_param": kdevbox_vm.NET_PARAM,
        "modules_param": kdevbox_vm.MODULES_PARAM,
        "modules_tag": kdevbox_vm.MODULES_TAG,
        "ninep_options": kdevbox_vm.NINEP_OPTIONS,
        "stdin_end": kdevbox_vm.STDIN_END,
        **{f"net_{key}": value for key, value in kdevbox_vm.USER_NET.items()},
        **{f"{role}_tty": tty for role, tty in kdevbox_vm.TTY.items()},
    }


def render_build_script(cfg: Guest, user: str, group: str, home: str, key: str) -> str:
    """The image build script: every value in it is a setting, quoted by the template's `| sh`."""
    return render(
        "guest/build-image.sh.j2",
        cfg=cfg,
        user=user,
        group=group,
        guest_home="/root" if user == "root" else f"/home/{user}",
        files=guest_files(cfg, home, user),
        cache_dir=GUEST_BASE_CACHE,
        keyring=DEBIAN_KEYRING,
        work_dir=GUEST_BUILD_WORK,
        base_key=inputs_digest(cfg.suite, cfg.mirror, GUEST_ESSENTIALS),
        essentials=GUEST_ESSENTIALS,
        key=key,
        exec_init=GUEST_EXEC_INIT,
        exec_init_script=render("guest/exec-init.sh.j2", user=user, proto=protocol()),
        proto=protocol(),
        stages=BUILD_STAGES,
    )


def vm_settings(cfg: Guest, kernel: Kernel, user: str, home: str, key: str) -> kdevbox_vm.Settings:
    """What kdevbox-vm reads for this guest (as JSON in the developer's home): the latest build of
    kernel's named configuration, the image's files, how to reach it."""
    build = KernelTree("", kernel_build_dir(kernel, home), "")
    made = guest_files(cfg, home, user)
    ssh_host, ssh_port = cfg.ssh_endpoint
    return kdevbox_vm.Settings(
        name=cfg.name,
        user=user,
        image=made.image,
        vmlinuz=made.vmlinuz,
        initrd=made.initrd,
        pidfile=made.pidfile,
        console=made.console,
        known_hosts=made.known_hosts,
        kselftest_tap=made.kselftest_tap,
        qmp=made.qmp,
        gdb=made.gdb,
        dump=made.dump,
        building=made.building,
        build_log=made.build_log,
        default_kernel=build.image,
        kselftests=build.kselftests,
        exec_init=GUEST_EXEC_INIT,
        share=expand_home(cfg.share, home) if cfg.share else None,
        ssh_host=ssh_host,
        ssh_port=ssh_port,
        key=key,
        memory=cfg.memory,
        cpus=cfg.cpus,
        accel=cfg.accel,
        network=cfg.network,
        tap=cfg.tap_name,
        mac=cfg.mac,
        cache=Home(home).vm_cache,
    )


def render_vm_settings(cfg: Guest, kernel: Kernel, user: str, home: str, key: str) -> str:
    return json.dumps(dataclasses.asdict(vm_settings(cfg, kernel, user, home, key)), indent=2) + "\n"


def render_run_script(home: str) -> str:
    """~/.local/bin/kdevbox-vm: runs root's kdevbox-vm with the developer's guest settings."""
    return launcher_script("kdevbox-vm", GUEST_RUNNER, Home(home).vm_settings)


def _guest_key(mine: Home, as_user: dict[str, Any]) -> str:
    """The developer's own key if they have one, else a dedicated key pair made for guests."""
    for key in mine.own_keys:
        if host.get_fact(File, path=key + ".pub", **as_user):
            return key
    if not host.get_fact(File, path=mine.guest_key, **as_user):
        server.shell(
            name=f"SSH key pair for guests: {mine.guest_key}",
            commands=[f"ssh-keygen -q -t ed25519 -N '' -C kdevbox-guest -f {sh(mine.guest_key)}"],
            **as_user,
        )
    return mine.guest_key


def _image(cfg: Guest, apt_proxy: AptProxy, target: Target, key: str) -> None:
    """The image, rebuilt only when its build script (its inputs) changed; the proxy stays out."""
    account = target.account
    made = guest_files(cfg, account.home, account.name)
    files.directory(  # 0700: the disk holds the guest's host keys, the console what it ran
        name=f"guest images in {made.directory}",
        path=made.directory,
        present=True,
        mode="700",
        **target.as_user,
    )
    files.directory(name=SCRIPT_DIR, path=SCRIPT_DIR, present=True, mode="755")
    content = render("guest/build-env.sh.j2", proxies=_proxies(apt_proxy)) if apt_proxy.enabled else None
    # In a 0600 root file the script sources: never in the script itself (shown by --diff, hashed
    # into the image's inputs) nor on a command line.
    private_file("proxy for the image build", made.build_env, content, "root", "root")
    build_script = render_build_script(cfg, account.name, account.group, account.home, key)
    system_file(f"image build script {made.build_script}", made.build_script, build_script, "700")
    if host.get_fact(Stamp, path=made.inputs, **target.as_user) != sha256_text(build_script):
        log = made.build_log
        server.shell(
            name=f"build guest image {made.image} ({cfg.suite}, {cfg.size}: tail -f {log})",
            commands=[
                words("install", "-d", "-m", "755", LOG_DIR),
                f"{sh(made.build_script)} < /dev/null > {sh(log)} 2>&1 "
                f"|| {{ tail -n 30 {sh(log)} >&2; exit 1; }}",
            ],
        )


def _proxies(apt_proxy: AptProxy) -> list[tuple[str, str]]:
    urls = (("http_proxy", apt_proxy.http), ("https_proxy", apt_proxy.https))
    return [(var, str(url)) for var, url in urls if url]


def _run_script(cfg: Guest, kernel: Kernel, target: Target, key: str) -> None:
    """kdevbox-vm: the program root's (GUEST_RUNNER), its settings and launcher the developer's."""
    account, mine = target.account, Home(target.account.home)
    settings = render_vm_settings(cfg, kernel, account.name, account.home, key)
    source = Path(kdevbox_vm.__file__).read_text()
    box_program("kdevbox-vm", GUEST_RUNNER, source, (mine.vm_settings, settings), mine.run_script, target)
    files.file(name=f"no {SELFTEST_SUMMARY} (in kdevbox-vm now)", path=SELFTEST_SUMMARY, present=False)


def _kvm_group(target: Target) -> None:
    """The developer in group kvm wherever there is a /dev/kvm (its udev rule: root:kvm 0660), so
    kdevbox-vm may use KVM; whether KVM then runs guests is kdevbox-vm's probe."""
    if target.account.name == "root" or not host.get_fact(WslHost).has_kvm:
        return
    kvm_member(target)


def _ssh_entry(cfg: Guest, target: Target, key: str) -> None:
    """`Host <name>` in ~/.ssh/config, in a marked block: `ssh <name>` reaches the guest."""
    account, mine = target.account, Home(target.account.home)
    managed_block(
        f"`ssh {cfg.name}` in ~/.ssh/config",
        mine.ssh_config,
        render(
            "guest/ssh-config.j2",
            cfg=cfg,
            user=account.name,
            key=key,
            ssh_host=cfg.ssh_endpoint[0],
            ssh_port=cfg.ssh_endpoint[1],
            known_hosts=guest_files(cfg, account.home, account.name).known_hosts,
        ),
        SSH_MARKER.format(name=cfg.name),
        mode="600",
        **target.as_user,
    )


def _check_socket_paths(cfg: Guest, target: Target) -> None:
    """QEMU's sockets (QMP on every boot, the gdb stub) live in image_dir: one longer than a unix
    socket's path holds would fail every boot later, so the setting is refused before anything."""
    made = guest_files(cfg, target.account.home, target.account.name)
    longest = max((made.qmp, made.gdb), key=lambda path: len(path.encode()))
    if len(longest.encode()) > UNIX_SOCKET_PATH_MAX:
        raise refusal(
            host.name,
            "guest.image_dir",
            cfg.image_dir,
            f"QEMU's socket {longest} would be {len(longest.encode())} bytes, more than a unix socket's "
            f"path holds ({UNIX_SOCKET_PATH_MAX}): choose a shorter image_dir (or guest name)",
            "guest settings do not fit",
        )


@deploy("guest image")
def guest_setup(cfg: Guest, apt_proxy: AptProxy, kernel: Kernel, target: Target) -> None:
    """A guest image, kdevbox-vm to boot it (and vng beside it), `ssh <name>`, and its network."""
    _check_socket_paths(cfg, target)
    if cfg.network == "bridge":
        guest_network_setup(cfg=cfg, target=target)
    else:
        guest_tap_teardown(cfg=cfg, user=target.account.name)
    apt_install(
        "QEMU and image tools",
        ["debootstrap", "debian-archive-keyring", "qemu-system-x86", "qemu-utils", "e2fsprogs"]
        + ["openssh-client", "coreutils", "python3"]
        + (["busybox-static", "file", "python3-venv"] if cfg.virtme_ng else []),
    )
    pip_tool(
        "virtme-ng",
        cfg.virtme_ng_version,
        present=cfg.virtme_ng,
        proxy=target.config.proxy.single,
        commands=VIRTME_NG_COMMANDS,
        hint="or guest.virtme_ng: False",
    )
    mine = Home(target.account.home)
    files.directory(name=mine.ssh_dir, path=mine.ssh_dir, mode="700", present=True, **target.as_user)
    key = _guest_key(mine, target.as_user)
    _image(cfg, apt_proxy, target, key)
    _run_script(cfg, kernel, target, key)
    _kvm_group(target)
    _ssh_entry(cfg, target, key)
