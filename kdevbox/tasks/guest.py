"""QEMU guest images built on the dev box, and kdevbox-vm, which boots them with a chosen kernel."""

from __future__ import annotations

import posixpath
from io import StringIO
from typing import Any

from pyinfra import host
from pyinfra.api import deploy
from pyinfra.facts.files import File, FileContents
from pyinfra.operations import files, server

from kdevbox.config import GUEST_ESSENTIALS, AptProxy, Guest, Kernel
from kdevbox.operations import apt_install, inputs_digest, pip_tool, private_file, sha256_text
from kdevbox.shell import sh, words
from kdevbox.target import Target
from kdevbox.tasks.git import expand_home
from kdevbox.tasks.guest_network import guest_network_setup, guest_tap_teardown
from kdevbox.tasks.kernel import IMAGE, KSELFTEST_INSTALL, build_dir
from kdevbox.templates import TEMPLATES, render

BASE_CACHE = "/var/cache/kdevbox/guest-bases"
BUILD_WORK = "/var/cache/kdevbox/guest-work"  # root's; builds in progress, and the lock on the bases
SCRIPT_DIR = "/usr/local/lib/kdevbox"
LOG_DIR = "/var/log/kdevbox"
SELFTEST_SUMMARY = posixpath.join(SCRIPT_DIR, "kselftest_summary.py")
USER_KEYS = (".ssh/id_ed25519", ".ssh/id_ecdsa", ".ssh/id_rsa")
GUEST_KEY = ".ssh/kdevbox_guest"
# Used as an awk regex by files.block: keep regex metacharacters out.
SSH_MARKER = "# {{mark}} kdevbox managed block, guest {name}"


def ssh_marker(name: str) -> str:
    """files.block's marker (with its {mark} placeholder) for one guest's ~/.ssh/config entry."""
    return SSH_MARKER.format(name=name)


def image_dir(cfg: Guest, home: str) -> str:
    return expand_home(cfg.image_dir, home)


def image_path(cfg: Guest, home: str) -> str:
    return posixpath.join(image_dir(cfg, home), f"{cfg.name}.qcow2")


def run_script_path(home: str) -> str:
    return posixpath.join(home, ".local/bin/kdevbox-vm")


def build_script_path(cfg: Guest, user: str) -> str:
    return posixpath.join(SCRIPT_DIR, f"build-guest-{user}-{cfg.name}.sh")


def build_env_path(cfg: Guest, user: str) -> str:
    """The 0600 file with the build's proxy settings, beside the script."""
    return build_script_path(cfg, user).removesuffix(".sh") + ".env"


def render_build_script(cfg: Guest, user: str, group: str, home: str, key: str) -> str:
    """The image build script: every value in it is a setting, quoted by the template's `| sh`."""
    return render(
        "guest/build-image.sh.j2",
        cfg=cfg,
        user=user,
        group=group,
        guest_home="/root" if user == "root" else f"/home/{user}",
        image_dir=image_dir(cfg, home),
        image=image_path(cfg, home),
        cache_dir=BASE_CACHE,
        work_dir=BUILD_WORK,
        base_key=inputs_digest(cfg.suite, cfg.mirror, GUEST_ESSENTIALS),
        essentials=GUEST_ESSENTIALS,
        env_file=build_env_path(cfg, user),
        key=key,
    )


def render_run_script(cfg: Guest, kernel: Kernel, user: str, home: str, key: str) -> str:
    """kdevbox-vm for this guest, booting the latest build of kernel's named configuration."""
    kernel_build = build_dir(kernel, home)
    ssh_host, ssh_port = cfg.ssh_endpoint
    return render(
        "guest/kdevbox-vm.sh.j2",
        cfg=cfg,
        user=user,
        image_dir=image_dir(cfg, home),
        key=key,
        ssh_host=ssh_host,
        ssh_port=ssh_port,
        kernel_image=posixpath.join(kernel_build, IMAGE),
        kselftests=posixpath.join(kernel_build, KSELFTEST_INSTALL),
        summary=SELFTEST_SUMMARY,
        share=expand_home(cfg.share, home) if cfg.share else None,
    )


def _build_environment(path: str, apt_proxy: AptProxy) -> None:
    """The proxy for the image build in a 0600 root file the script sources: never in the script
    itself (shown by --diff, hashed into the image's inputs) nor on a command line."""
    proxies = [
        (var, str(url))
        for var, url in (("http_proxy", apt_proxy.http), ("https_proxy", apt_proxy.https))
        if url
    ]
    content = render("guest/build-env.sh.j2", proxies=proxies) if proxies else None
    private_file("proxy for the image build", path, content, "root", "root")


def _guest_key(home: str, as_user: dict[str, Any]) -> str:
    """The developer's own key if they have one, else a dedicated key pair made for guests."""
    for key in USER_KEYS:
        if host.get_fact(File, path=posixpath.join(home, key + ".pub")):
            return posixpath.join(home, key)
    key = posixpath.join(home, GUEST_KEY)
    if not host.get_fact(File, path=key):
        server.shell(
            name=f"SSH key pair for guests: {key}",
            commands=[f"ssh-keygen -q -t ed25519 -N '' -C kdevbox-guest -f {sh(key)}"],
            **as_user,
        )
    return key


@deploy("guest image")
def guest_setup(cfg: Guest, apt_proxy: AptProxy, kernel: Kernel, target: Target) -> None:
    home, user, group = target.account.home, target.account.name, target.account.group
    as_user = target.as_user
    if cfg.network == "bridge":
        guest_network_setup(cfg=cfg, target=target)
    else:
        guest_tap_teardown(cfg=cfg, user=user)
    apt_install(
        "QEMU and image tools",
        ["debootstrap", "qemu-system-x86", "qemu-utils", "e2fsprogs", "openssh-client", "coreutils"]
        + (["busybox-static", "python3-venv"] if cfg.virtme_ng else []),
    )
    pip_tool(
        "virtme-ng",
        cfg.virtme_ng_version,
        present=cfg.virtme_ng,
        proxy=target.config.proxy.single,
        command="vng",
    )
    files.directory(name="~/.ssh", path=posixpath.join(home, ".ssh"), mode="700", present=True, **as_user)
    key = _guest_key(home, as_user)
    directory = image_dir(cfg, home)
    files.directory(name=f"guest images in {directory}", path=directory, present=True, **as_user)

    script = build_script_path(cfg, user)
    env_file = build_env_path(cfg, user)
    files.directory(name=SCRIPT_DIR, path=SCRIPT_DIR, present=True, mode="755")
    _build_environment(env_file, apt_proxy)
    build_script = render_build_script(cfg, user, group, home, key)
    inputs = sha256_text(build_script)  # as the script writes it when done
    files.put(
        name=f"image build script {script}",
        dest=script,
        mode="700",
        user="root",
        group="root",
        src=StringIO(build_script),
    )
    if host.get_fact(FileContents, path=image_path(cfg, home) + ".inputs") != [inputs]:
        log = posixpath.join(LOG_DIR, posixpath.basename(script).removesuffix(".sh") + ".log")
        server.shell(
            name=f"build guest image {image_path(cfg, home)} ({cfg.suite}, {cfg.size}: tail -f {log})",
            commands=[
                words("install", "-d", "-m", "755", LOG_DIR),
                f"{sh(script)} < /dev/null > {sh(log)} 2>&1 || {{ tail -n 30 {sh(log)} >&2; exit 1; }}",
            ],
        )

    files.put(
        name="kselftest summary for kdevbox-vm selftest",
        dest=SELFTEST_SUMMARY,
        mode="644",
        user="root",
        group="root",
        src=str(TEMPLATES / "guest" / "kselftest_summary.py"),
    )
    files.directory(
        name="~/.local/bin", path=posixpath.dirname(run_script_path(home)), present=True, **as_user
    )
    files.put(
        name=f"kdevbox-vm for {cfg.name}",
        dest=run_script_path(home),
        **target.owned_file("755"),
        src=StringIO(render_run_script(cfg, kernel, user, home, key)),
    )
    files.file(
        name="~/.ssh/config exists",
        path=posixpath.join(home, ".ssh/config"),
        present=True,
        mode="600",
        **as_user,
    )
    files.block(
        name=f"`ssh {cfg.name}` in ~/.ssh/config",
        path=posixpath.join(home, ".ssh/config"),
        content=render(
            "guest/ssh-config.j2",
            cfg=cfg,
            user=user,
            key=key,
            ssh_host=cfg.ssh_endpoint[0],
            ssh_port=cfg.ssh_endpoint[1],
            known_hosts=posixpath.join(directory, f"{cfg.name}.known_hosts"),
        ).rstrip("\n"),
        marker=ssh_marker(cfg.name),
        **as_user,
    )
