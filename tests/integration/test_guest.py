"""QEMU guests, for real under TCG: an image built on a test host, booted with the kernel kdevbox
just built there (the edit-build-boot loop) and checked over SSH with testinfra, a second image
booted with its Debian kernel and initrd; host keys differ per image; unchanged inputs change
nothing."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import shlex
import signal
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import testinfra

from kdevbox import kdevbox_vm
from kdevbox.config import Guest
from kdevbox.layout import Home
from kdevbox.tasks.guest import BUILD_STAGES, render_build_script
from tests import testhosts
from tests.setups import (
    KERNEL,
    LEAN,
    REPO,
    deploy,
    guest_kernel_settings,
    pyinfra_cli,
    verify,
    write_inventory,
)
from tests.testhosts import DEV_USER, run_as, run_in_terminal

pytestmark = pytest.mark.slow
GUEST_IMAGE = REPO / "deploys" / "guest_image.py"
SELFTESTS = ["size", "timens", "kcmp"]


def home(user: str) -> str:
    """A developer's home on a test host, without the leading slash."""
    return "root" if user == "root" else f"home/{user}"


def images(user: str) -> str:
    return f"{home(user)}/.local/share/kdevbox/guests"


def kill_guest(root: Path, name: str, user: str = DEV_USER) -> None:
    """End a guest's QEMU by the PID in its pidfile, if it still runs."""
    pidfile = root / images(user) / f"{name}.pid"
    if pidfile.exists():
        testhosts.stop_pid(int(pidfile.read_text()))


class Vm:
    """kdevbox-vm on the test host for one guest of user's; stopped (by its pidfile's PID) on exit."""

    def __init__(
        self, root: Path, name: str, port: int, netns: str | None = None, user: str = DEV_USER
    ) -> None:
        self.root, self.name, self.port, self.netns, self.user = root, name, port, netns, user
        self.script = f"/{home(user)}/.local/bin/kdevbox-vm"

    def __call__(self, *args: str, timeout: float = 900, stdin: str = "") -> subprocess.CompletedProcess[str]:
        return run_as(self.root, " ".join([self.script, *args]), timeout, self.netns, self.user, stdin)

    def boot(self, kernel: str = "") -> None:
        started = self("start", kernel)
        assert started.returncode == 0, started.stdout + started.stderr
        waited = self("wait", "600")
        console = (self.root / images(self.user) / f"{self.name}.console.log").read_text(errors="replace")
        assert waited.returncode == 0, waited.stderr + console[-3000:]

    def stop(self) -> None:
        self("stop", timeout=120)
        kill_guest(self.root, self.name, self.user)  # if stop gave up

    def testinfra(self) -> Any:
        key = self.root / home(self.user) / ".ssh/kdevbox_guest"
        # sudo: the minimal image has no D-Bus, so systemctl answers root only.
        return testinfra.get_host(
            f"paramiko://{self.user}@127.0.0.1:{self.port}", ssh_identity_file=str(key), sudo=True
        )


@pytest.fixture()
def guest_settings(kernel_lab: Path, kernel_repo_url: str, tmp_path: Path) -> Iterator[dict[str, Any]]:
    settings = {"name": "kguest", "size": "3G", "ssh_port": testhosts.free_port(), "memory": "1G"}
    yield settings
    kill_guest(kernel_lab, "kguest")
    kill_guest(kernel_lab, "kguest2", "root")


def test_image_boot_and_edit_build_boot(
    kernel_lab: Path, kernel_repo_url: str, guest_settings: dict[str, Any], tmp_path: Path
) -> None:
    root = kernel_lab
    name = f"@chroot{root}"

    def setup(user: str = DEV_USER, **guest: Any) -> Path:
        guest_settings.update(guest)
        kernel = guest_kernel_settings(kernel_repo_url, selftests=SELFTESTS)
        data = {"user": user, "kernel": kernel, "guest": guest_settings}
        return write_inventory(tmp_path, [(name, data)])

    inventory = setup()
    built = deploy(inventory, KERNEL)[name]
    assert not built["failed"]
    assert [f"kernel | selftests {' '.join(SELFTESTS)} for kdevbox"] in built["changed"]
    assert deploy(inventory, KERNEL)[name]["changed"] == []
    first = deploy(inventory, GUEST_IMAGE)[name]
    assert not first["failed"] and any("build guest image" in op for ops in first["changed"] for op in ops)
    assert deploy(inventory, GUEST_IMAGE)[name]["changed"] == []
    checked = verify(inventory, "kdevbox.verify.test_guest")
    assert checked.returncode == 0 and checked.failed == 0, checked.output

    # KVM or not (this host may have no /dev/kvm, or one that runs nothing): TCG always says why.
    vm = Vm(root, "kguest", guest_settings["ssh_port"])
    accel = vm("accel")
    assert accel.stdout.strip() in ("kvm", "tcg"), accel
    assert accel.stdout.strip() == "kvm" or "kdevbox-vm: TCG (slow): " in accel.stderr, accel

    try:
        # The kernel kdevbox built: the edit-build-boot loop, no initrd.
        vm.boot()
        release = (root / f"home/{DEV_USER}/build/kdevbox/include/config/kernel.release").read_text().strip()
        assert vm("run", "uname", "-r").stdout.strip() == release
        guest = vm.testinfra()
        assert guest.check_output("hostname") == "kguest"
        # The build's own module: kdevbox-vm shares its modules, the guest mounts them on /lib/modules.
        assert guest.run("modprobe dummy").rc == 0
        assert guest.file(f"/lib/modules/{release}/kernel/drivers/net/dummy.ko").exists
        assert "dummy" in guest.check_output("cut -d' ' -f1 /proc/modules").split()
        assert guest.service("ssh").is_running
        key = (root / f"home/{DEV_USER}/.ssh/kdevbox_guest.pub").read_text().split()[1]
        assert key in guest.file(f"/home/{DEV_USER}/.ssh/authorized_keys").content_string
        assert guest.run("sudo -n passwd -S root").stdout.split()[1] == "L"  # no root password login
        fingerprint = guest.check_output("ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub")

        # A selftest that fails in the running guest (its binary is gone, so the runner reports it
        # not ok): exit status 1.
        get_size = root / f"home/{DEV_USER}/build/kdevbox/kselftest/kselftest_install/size/get_size"
        get_size.rename(get_size.with_name("get_size.aside"))
        try:
            failing = vm("selftest", "size")
        finally:
            get_size.with_name("get_size.aside").rename(get_size)
        assert failing.returncode == 1, failing.stdout + failing.stderr
        assert "FAILED size: get_size (failed)" in failing.stdout and "kcmp" not in failing.stdout

        # A setting that rebuilds the image while the guest runs from it: refused, image untouched.
        # (The running guest writes to its image: the same file, not its mtime, is what stays.)
        image = root / images(DEV_USER) / "kguest.qcow2"
        before = image.stat().st_ino
        refused = pyinfra_cli(setup(packages=["less"]), deploy_file=GUEST_IMAGE)
        pid = (root / images(DEV_USER) / "kguest.pid").read_text().strip()
        assert refused.returncode != 0
        assert f"guest kguest runs (pid {pid})" in refused.stdout + refused.stderr, refused.stdout
        assert image.stat().st_ino == before and not (root / images(DEV_USER) / "kguest.qcow2.prev").exists()
        assert vm("run", "true").returncode == 0
        setup(packages=[])
    finally:
        vm.stop()
    assert not (root / images(DEV_USER) / "kguest.pid").exists(), "stop left QEMU running"

    # One shot, as with `vng --exec`: boot the build straight into the command (no systemd), print
    # its output and errors apart, power off, exit with the command's status. Each word stays whole.
    pidfile = root / images(DEV_USER) / "kguest.pid"
    once = vm("exec", "--", "sh", "-c", "'uname -r; echo \"$1\" >&2; exit 3'", "sh", "'it'\\''s a b'")
    assert once.returncode == 3 and once.stdout == release + "\n", once.stdout + once.stderr
    assert once.stderr.splitlines()[-1] == "it's a b", once.stderr  # after kdevbox-vm's TCG warning
    left = pidfile.exists() and Path(f"/proc/{pidfile.read_text().strip()}").exists()
    assert not left, "exec left QEMU running"
    console = (root / images(DEV_USER) / "kguest.console.log").read_text(errors="replace")
    assert "kdevbox-guest-ready" not in console  # systemd did not boot
    # With --systemd: the whole guest, the command over SSH.
    full = vm("exec", "--systemd", "--", "sudo", "systemctl", "is-system-running", "--wait")
    assert full.stdout.strip() in ("running", "degraded"), full.stdout + full.stderr
    assert "kdevbox-guest-ready" in (root / images(DEV_USER) / "kguest.console.log").read_text(
        errors="replace"
    )
    assert not pidfile.exists(), "exec --systemd left QEMU running"

    # Results as data; a command past --timeout ends the run (124), QEMU with it; Debian's kernel
    # made to panic ends it with 120 and the panic on stderr.
    result = vm("exec", "--json", "--", "uname", "-r")
    shown = json.loads(result.stdout)
    assert result.returncode == 0 and shown["stdout"] == release + "\n", result.stdout + result.stderr
    assert shown["outcome"] == "exited" and shown["kernel"].endswith("arch/x86/boot/bzImage")
    assert shown["entry"] == "pvh"  # the build's vmlinux, no decompression in the guest
    # Its modules, staged in the developer's cache (by content) and shared with the guest.
    modules = re.fullmatch(
        rf"/home/{DEV_USER}/\.cache/kdevbox/modules/[0-9a-f]{{32}}/lib/modules", shown["modules"]
    )
    assert modules, shown["modules"]
    loaded = vm("exec", "--", "sh", "-c", "'sudo modprobe dummy && cut -d\" \" -f1 /proc/modules'")
    assert loaded.returncode == 0 and loaded.stdout.split() == ["dummy"], loaded.stdout + loaded.stderr
    own = vm("exec", "--bzimage", "--json", "--", "uname", "-r")  # its decompressor and setup code
    assert json.loads(own.stdout)["entry"] == "bzimage" and json.loads(own.stdout)["stdout"] == release + "\n"
    late = vm("exec", "--timeout", "2", "--", "sleep", "600")
    assert late.returncode == kdevbox_vm.EXIT_TIMEOUT and "past --timeout 2 s" in late.stderr, late.stderr
    assert not pidfile.exists()

    # A piped stdin reaches the command whole (more than any buffer on the way holds), and no NIC
    # (an interface with a device) without --net; with it, the host's 127.0.0.1 answers at QEMU's
    # gateway, as with vng.
    given = "".join(f"{n} it's\n" for n in range(20000))
    nics = "for n in /sys/class/net/*; do [ ! -e $n/device ] || echo $n; done"
    piped = vm("exec", "--", "sh", "-c", shlex.quote(f"{nics}; sha256sum"), stdin=given)
    digest = hashlib.sha256(given.encode()).hexdigest()
    assert piped.returncode == 0 and piped.stdout == f"{digest}  -\n", piped.stdout + piped.stderr
    served = tmp_path / "served"
    served.mkdir()
    (served / "hello.txt").write_text("hello from the host\n")
    with testhosts.http_server(served) as url:
        port = url.rsplit(":", 1)[1]
        host = f"/dev/tcp/{kdevbox_vm.USER_NET['gateway']}/{port}"
        get = f'exec 3<>{host}; printf "GET /hello.txt HTTP/1.0\\r\\n\\r\\n" >&3; cat <&3'
        fetched = vm("exec", "--net", "--", "bash", "-c", shlex.quote(get))
    assert fetched.returncode == 0 and fetched.stdout.endswith("\nhello from the host\n"), fetched
    vmlinuz = f"/{images(DEV_USER)}/kguest.vmlinuz"
    panic = vm("exec", "--kernel", vmlinuz, "--", "sudo", "sh", "-c", "'echo c > /proc/sysrq-trigger'")
    assert panic.returncode == kdevbox_vm.EXIT_PANIC, panic.stdout + panic.stderr
    assert "Kernel panic - not syncing: sysrq triggered crash" in panic.stderr, panic.stderr
    assert "using TCG" not in panic.stderr  # the reason was given once, not on every run
    # Both kernels booted through PVH: each one's vmlinux unpacked once and kept by the bzImage's
    # content in the developer's cache.
    unpacked = root / Home(f"/home/{DEV_USER}").vm_cache.lstrip("/") / "vmlinux"
    for kernel in (f"home/{DEV_USER}/build/kdevbox/arch/x86/boot/bzImage", vmlinuz.lstrip("/")):
        digest = hashlib.sha256((root / kernel).read_bytes()).hexdigest()
        assert (unpacked / digest).read_bytes()[:4] == b"\x7fELF", kernel

    # The same build boots under virtme-ng, the tool kernel developers already use (`vng`, pinned by
    # kdevbox; the root it boots is this host's, over 9p), run from a terminal as they run it (vng
    # hands QEMU its /proc/self/fd/N: under su, pipes of root's it may not reopen).
    # The root vng exports is this host's: a machine's has udev, which virtme-ng-init needs to find
    # the script's ports (without, the output comes on the console and the status is lost).
    testhosts.run("chroot", str(root), "apt-get", "install", "-y", "-q", "--no-install-recommends", "udev")
    status, shown = run_in_terminal(
        root, f"vng --disable-kvm -r /home/{DEV_USER}/build/kdevbox --exec 'uname -r'"
    )
    assert status == 0 and shown.replace("\r", "").strip().splitlines()[-1] == release, shown

    # Selftests built against the kernel, run one shot (as exec), summarized from their TAP output.
    selftests = vm("selftest")
    assert selftests.returncode == 0, selftests.stdout + selftests.stderr
    rows = {line.split()[0]: line.split()[1:] for line in selftests.stdout.splitlines()}
    assert rows["size"] == ["1", "0", "0"] and rows["kcmp"] == ["1", "0", "0"], selftests.stdout
    assert rows["timens"][1] == "0" and int(rows["timens"][2]) > 0  # no CONFIG_TIME_NS: skipped
    # What ran in the guest is the developer's alone: its disk, console log and TAP are 0600.
    for private in ("kguest.qcow2", "kguest.console.log", "kguest.kselftest.tap"):
        mode = (root / images(DEV_USER) / private).stat().st_mode & 0o777
        assert mode == 0o600, f"{private} is {mode:o}"

    # A second image from the same cached base, for a developer who is root on the host (root on a
    # WSL distro, say: root in the guest takes the key), booted with its own Debian kernel and
    # initrd (what a developer boots before building a kernel): its own host keys.
    other = {**guest_settings, "name": "kguest2", "ssh_port": testhosts.free_port()}
    inventory = setup("root", **other)
    built = deploy(inventory, GUEST_IMAGE)[name]
    assert not built["failed"]
    checked = verify(inventory, "kdevbox.verify.test_guest")
    assert checked.returncode == 0 and checked.failed == 0, checked.output
    vm2 = Vm(root, "kguest2", other["ssh_port"], user="root")
    try:
        vm2.boot(f"/{images('root')}/kguest2.vmlinuz")
        assert vm2("run", "uname", "-r").stdout.strip().endswith("-amd64")
        assert vm2("run", "id", "-un").stdout.strip() == "root"
        other_fingerprint = vm2.testinfra().check_output("ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub")
    finally:
        vm2.stop()
    assert other_fingerprint.split()[1] != fingerprint.split()[1]

    # Another package for the developer's guest: rebuilt from the cached base (no second
    # debootstrap), then unchanged. The cache outlives test runs, so what counts is that this rebuild
    # neither added nor redid a base. Meanwhile the developer has planted links to root's files
    # where the build writes, and an interrupted build left its leftovers: root follows no link
    # (the targets keep content and owner), the leftovers go, the old image is kept as .prev.
    bases = root / "var/cache/kdevbox/guest-bases"
    cached = {base.name: base.stat().st_mtime_ns for base in bases.iterdir()}
    work = root / "var/cache/kdevbox/guest-work"

    # The build script killed with SIGTERM (its process group, by PID) as it reaches each named stage
    # (copying the base, installing the package, making the disk): each run clears what it made (its
    # trap), nothing is half-replaced, and kdevbox-vm refuses the image while a build runs.
    inventory = setup(DEV_USER, **{**guest_settings, "name": "kguest", "packages": ["less"]})
    script = render_build_script(
        Guest.model_validate(guest_settings),
        DEV_USER,
        DEV_USER,
        f"/{home(DEV_USER)}",
        f"/{home(DEV_USER)}/.ssh/kdevbox_guest",
    )
    (root / "usr/local/lib/kdevbox/killed-build.sh").write_text(script)
    (root / "usr/local/lib/kdevbox/killed-build.sh").chmod(0o700)
    image_before = (root / images(DEV_USER) / "kguest.qcow2").stat().st_mtime_ns
    for stage, marker in BUILD_STAGES.items():
        said = interrupt_build(root, "/usr/local/lib/kdevbox/killed-build.sh", marker, vm)
        assert not list(work.glob(f"{DEV_USER}+kguest.*")) and not list(bases.glob("*.tmp")), stage
        assert not (root / images(DEV_USER) / "kguest.building").exists(), said
    assert (root / images(DEV_USER) / "kguest.qcow2").stat().st_mtime_ns == image_before

    targets = {part: root / f"etc/kdevbox-test-{part}" for part in ("vmlinuz", "qcow2.inputs")}
    guests = root / images(DEV_USER)
    for part, target in targets.items():
        target.write_text("root's own\n")
        (guests / f"kguest.{part}").unlink()
        (guests / f"kguest.{part}").symlink_to(f"/etc/kdevbox-test-{part}")
    leftovers = [bases / f"{next(iter(cached))}.tmp", work / "dev+kguest.interrupted"]
    for leftover in leftovers:
        leftover.mkdir(parents=True)
    rebuilt = deploy(inventory, GUEST_IMAGE)[name]
    assert any("build guest image" in op for ops in rebuilt["changed"] for op in ops), rebuilt
    assert deploy(inventory, GUEST_IMAGE)[name]["changed"] == []
    assert cached == {base.name: base.stat().st_mtime_ns for base in bases.iterdir()}
    for part, target in targets.items():
        assert target.read_text() == "root's own\n" and target.stat().st_uid == 0, part
        planted = guests / f"kguest.{part}"
        assert not planted.is_symlink() and planted.stat().st_uid == planted.parent.stat().st_uid
    assert not any(leftover.exists() for leftover in leftovers)
    assert (guests / "kguest.qcow2.prev").is_file()


def interrupt_build(root: Path, script: str, marker: str, vm: Vm) -> str:
    """Run a build script on the test host until it says marker, stop it there, check kdevbox-vm
    refuses the image, then SIGTERM its process group: it must end by its trap (status 130), not
    by finishing.
    What the script printed is returned."""
    with subprocess.Popen(
        ["chroot", str(root), script],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    ) as build:
        assert build.stderr is not None
        said = []
        try:
            for raw in build.stderr:
                said.append(raw.decode(errors="replace"))
                if said[-1].strip() == marker:
                    os.killpg(build.pid, signal.SIGSTOP)  # held at the marker, whatever the speed
                    refused = vm("exec", "--", "true")
                    assert refused.returncode == kdevbox_vm.EXIT_FAILED, refused.stderr
                    assert "is being built" in refused.stderr, refused.stderr
                    os.killpg(build.pid, signal.SIGTERM)
                    os.killpg(build.pid, signal.SIGCONT)
                    break
            status = build.wait(120)
        finally:
            if build.poll() is None:
                os.killpg(build.pid, signal.SIGKILL)
    assert status == 130, f"the build was not interrupted at {marker!r} ({status}):\n{''.join(said)}"
    return "".join(said)


# From one guest, the other's sshd on the bridge (python3 is in every kdevbox guest image). Passed
# base64-encoded: the command crosses su's shell, ssh and the guest's shell.
REACH = """import socket, sys, time
for _ in range(150):
    try:
        print(socket.create_connection((sys.argv[1], 22), 5).recv(64).decode())
        break
    except OSError:
        time.sleep(2)
"""


def reach_command(address: str) -> str:
    program = base64.b64encode(REACH.encode()).decode()
    return f"'echo {program} | base64 -d | python3 - {address}'"


def test_devbox_provisions_a_real_vm(
    kernel_lab: Path, kernel_repo_url: str, guest_settings: dict[str, Any], tmp_path: Path
) -> None:
    """A real Debian VM as users reach theirs: kdevbox's own image (systemd, sshd, sudo, no git: a
    minimal install) booted under QEMU, provisioned over SSH as the developer with `_sudo` (the
    README's VM layout) with a build-only settings set (no editor: TCG is slow), verified, and
    provisioned again with 0 changes."""
    root, lab = kernel_lab, f"@chroot{kernel_lab}"
    kernel = guest_kernel_settings(kernel_repo_url, selftests=SELFTESTS)
    made = write_inventory(
        tmp_path / "lab", [(lab, {"user": DEV_USER, "kernel": kernel, "guest": guest_settings})]
    )
    for deploy_file in (KERNEL, GUEST_IMAGE):  # no-ops after the test above
        assert not deploy(made, deploy_file)[lab]["failed"]
    vm = Vm(root, "kguest", guest_settings["ssh_port"])
    try:
        vm.boot()
        assert vm("run", "command", "-v", "git").returncode != 0, "the image should have no git"
        port = guest_settings["ssh_port"]
        scanned = subprocess.run(
            ["ssh-keyscan", "-t", "ed25519", "-p", str(port), "127.0.0.1"], capture_output=True, text=True
        )
        known_hosts = tmp_path / "known_hosts"
        known_hosts.write_text(scanned.stdout)
        login = {
            "ssh_hostname": "127.0.0.1",
            "ssh_port": port,
            "ssh_user": DEV_USER,
            "ssh_key": str(root / home(DEV_USER) / ".ssh/kdevbox_guest"),
            "ssh_known_hosts_file": str(known_hosts),
            "ssh_strict_host_key_checking": "yes",
            "_sudo": True,
        }
        build_only = {
            "git": {"name": "Ada Kernel", "email": "ada@example.org"},
            "clangd": {"enabled": False},
            "neovim": {"enabled": False},
            **LEAN,
        }
        inventory = write_inventory(tmp_path / "vm", [("vm", login)], group_data=build_only)
        first = deploy(inventory)["vm"]
        assert not first["failed"]
        assert ["git | git"] in first["changed"], first["changed"]
        checked = verify(inventory)
        assert checked.returncode == 0 and checked.failed == 0, checked.output
        assert "test_git_settings" in checked.ran
        assert deploy(inventory)["vm"]["changed"] == []
    finally:
        vm.stop()


def test_bridged_guests_reach_each_other_inside_a_namespace(
    kernel_lab: Path, kernel_repo_url: str, tmp_path: Path
) -> None:
    """guest.network: bridge, on a test host whose network is a namespace the test made: the host's
    routes are checked first, then two guests on one bridge talk; nothing leaves the namespace."""
    root, name = kernel_lab, f"@chroot{kernel_lab}"
    addresses = {"knet1": "10.77.0.2", "knet2": "10.77.0.3"}

    def setup(guest: str, **changes: Any) -> Path:
        settings = {"name": guest, "size": "3G", "memory": "512M", "network": "bridge"}
        settings |= {"address": addresses[guest], **changes}
        data = {"user": DEV_USER, "kernel": guest_kernel_settings(kernel_repo_url), "guest": settings}
        return write_inventory(tmp_path / guest, [(name, data)])

    # Outside the namespace (it has no way out): the kernel from the git daemon, iproute2 and the
    # guest base from the mirror, for a user-network image of the same name.
    assert not deploy(setup("knet1"), KERNEL)[name]["failed"]
    subprocess.run(["chroot", str(root), "apt-get", "install", "-y", "-q", "iproute2"], check=True)
    tun = root / "dev/net/tun"  # a chroot's /dev is static: the node a real host's devtmpfs has
    if not tun.exists():
        tun.parent.mkdir(exist_ok=True)
        os.mknod(tun, 0o666 | stat.S_IFCHR, os.makedev(10, 200))
        tun.chmod(0o666)
    assert not deploy(setup("knet1", network="user"), GUEST_IMAGE)[name]["failed"]

    vms: list[Vm] = []
    with testhosts.network_namespace() as netns:
        try:
            # A route of the host's over the guests' range: refused before anything is made.
            for command in (
                "link add lab0 type bridge",
                "addr add 10.77.0.200/16 dev lab0",
                "link set lab0 up",
            ):
                subprocess.run(["ip", "-n", netns, *command.split()], check=True)
            refused = pyinfra_cli(setup("knet1"), deploy_file=GUEST_IMAGE, netns=netns)
            said = refused.stdout + refused.stderr
            assert refused.returncode != 0
            assert (
                f"{name}: guest.bridge_address = '10.77.0.1/24'" in said and "10.77.0.0/16 dev lab0" in said
            ), said
            assert (
                "kdevbr0"
                not in subprocess.run(["ip", "-n", netns, "link"], capture_output=True, text=True).stdout
            )
            subprocess.run(["ip", "-n", netns, "link", "del", "lab0"], check=True)

            for guest in addresses:
                inventory = setup(guest)
                first = deploy(inventory, GUEST_IMAGE, netns=netns)[name]
                assert not first["failed"] and first["changed"]
                assert deploy(inventory, GUEST_IMAGE, netns=netns)[name]["changed"] == []
                checked = verify(inventory, "kdevbox.verify.test_guest_network", netns=netns)
                assert checked.returncode == 0 and checked.passed == 2, checked.output
                vms.append(Vm(root, guest, 22, netns))
                started = vms[-1]("start")  # knet1 boots while knet2's image is made
                assert started.returncode == 0, started.stdout + started.stderr

            waited = vms[-1]("wait", "600")
            assert waited.returncode == 0, waited.stderr
            reached = vms[-1]("run", reach_command(addresses["knet1"]), timeout=400)
            assert reached.stdout.startswith("SSH-2.0-"), reached.stdout + reached.stderr

            # Nothing leaves: the namespace routes only the bridge's range, the machine has no bridge.
            routes = subprocess.run(["ip", "-n", netns, "-4", "route"], capture_output=True, text=True)
            assert [line.split()[:3] for line in routes.stdout.splitlines()] == [
                ["10.77.0.0/24", "dev", "kdevbr0"]
            ]
            assert subprocess.run(["ip", "link", "show", "kdevbr0"], capture_output=True).returncode != 0

            # knet2 back on user networking: its tap and networkd files go; the bridge and knet1 stay.
            kill_guest(root, "knet2")
            inventory = setup("knet2", network="user")
            back = deploy(inventory, GUEST_IMAGE, netns=netns)[name]
            assert any(
                op.endswith("no tap tap-knet2 (network: user)") for ops in back["changed"] for op in ops
            )
            assert deploy(inventory, GUEST_IMAGE, netns=netns)[name]["changed"] == []
            checked = verify(inventory, "kdevbox.verify.test_guest_network", netns=netns)
            assert checked.failed == 0 and checked.ran == {"test_user_network_leaves_no_tap"}, checked.output
            links = subprocess.run(["ip", "-n", netns, "-o", "link"], capture_output=True, text=True).stdout
            names = {line.split(":")[1].strip().split("@")[0] for line in links.splitlines()}
            assert {"kdevbr0", "tap-knet1"} <= names and "tap-knet2" not in names, names
            networkd = sorted(path.name for path in (root / "etc/systemd/network").glob("50-kdevbox-*"))
            assert networkd == [
                f"50-kdevbox-{dev}.{kind}"
                for dev in ("kdevbr0", "tap-knet1")
                for kind in ("netdev", "network")
            ]

            def left_and_refused(said: str) -> None:
                """knet2 on user networking leaves the device; knet2 on the bridge is refused."""
                back_on_user = setup("knet2", network="user")
                assert deploy(back_on_user, GUEST_IMAGE, netns=netns)[name]["changed"] == []
                taken = pyinfra_cli(setup("knet2"), deploy_file=GUEST_IMAGE, netns=netns)
                assert taken.returncode != 0 and said in taken.stdout + taken.stderr, taken.stdout

            # A device of the tap's name that kdevbox did not make, then another developer's kdevbox
            # tap (root's): both left alone and refused, naming why.
            subprocess.run(
                ["ip", "-n", netns, "tuntap", "add", "dev", "tap-knet2", "mode", "tap"], check=True
            )
            left_and_refused("tap-knet2 exists and kdevbox did not make it")
            foreign = subprocess.run(
                ["ip", "-n", netns, "-d", "link", "show", "tap-knet2"], capture_output=True
            )
            assert foreign.returncode == 0 and b"alias kdevbox" not in foreign.stdout
            for command in (
                "link del tap-knet2",
                "tuntap add dev tap-knet2 mode tap user root",
                "link set dev tap-knet2 alias kdevbox",
            ):
                subprocess.run(["ip", "-n", netns, *command.split()], check=True)
            left_and_refused("tap-knet2 is the guest tap of root")
        finally:
            for vm in vms:
                kill_guest(root, vm.name)
