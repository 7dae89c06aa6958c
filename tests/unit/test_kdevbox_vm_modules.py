"""kdevbox-vm shares the booted build's modules with the guest: staged as modules_install lays them
out in the developer's cache (hard links to the build's own .ko files, depmod's real index), made
again only when a module changed, the last few kept, shared read-only with the parameter the guest
mounts it by; a build without modules, or a stage that cannot be made, boots as before. The real
build's module loads in the guest (and gdb's lx-symbols finds it) in tests/integration/test_guest.py
and test_debug.py."""

from __future__ import annotations

import dataclasses
import errno
import os
import struct
import subprocess
from pathlib import Path

import pytest

from kdevbox import kdevbox_vm as vm
from kdevbox.config import Guest
from kdevbox.tasks.guest import protocol, render_build_script
from kdevbox.templates import render
from tests.unit.test_kdevbox_vm import HOME, guest_in, options

RELEASE = "6.1.192-kdevbox-test"
# modules.order up to 6.1 names the .ko files, from 6.2 the .o files; paths out of the build are
# no modules of it.
ORDER = "drivers/net/dummy.o\nfs/foo/foo.ko\n../../etc/passwd.ko\n/etc/shadow.ko\n\n"
MODULES = ("drivers/net/dummy.ko", "fs/foo/foo.ko")


def build_dir(root: Path, config: str = "CONFIG_MODULES=y\n", order: str | None = ORDER) -> Path:
    """A kernel build (O= dir) as kbuild leaves it: bzImage (its header pointing at its version
    string), .config, modules.order, the modules, modules.builtin."""
    build = root / "build" / "kdevbox"
    image = bytearray(0x1000)
    struct.pack_into("<H", image, vm.KERNEL_VERSION_FIELD, 0x400)
    version = f"{RELEASE} (dev@box) #3 SMP PREEMPT_DYNAMIC Tue Dec  1 00:00:00 UTC 2026\0".encode()
    image[0x600 : 0x600 + len(version)] = version
    (build / "arch/x86/boot").mkdir(parents=True)
    (build / "arch/x86/boot/bzImage").write_bytes(bytes(image))
    (build / ".config").write_text(config)
    if order is not None:
        (build / "modules.order").write_text(order)
    for module in MODULES:
        (build / module).parent.mkdir(parents=True, exist_ok=True)
        (build / module).write_bytes(b"\x7fELF not really a module")
    (build / "modules.builtin").write_text("kernel/drivers/virtio/virtio.ko\n")
    return build


@pytest.fixture()
def depmod() -> str:
    found = vm._depmod()
    if found is None:
        pytest.skip("no depmod on this machine (apt-get install kmod: .ci/run does)")
    return found


def stages(cache: Path) -> list[Path]:
    return sorted((cache / "modules").iterdir()) if (cache / "modules").exists() else []


def test_modules_are_staged_as_lib_modules_with_hard_links(tmp_path: Path, depmod: str) -> None:
    build = build_dir(tmp_path)
    cache = tmp_path / "cache"
    kernel = str(build / "arch/x86/boot/bzImage")
    shared = vm.stage_modules(str(cache), kernel)
    assert shared is not None and [Path(shared).parent.parent] == stages(cache)
    staged = Path(shared) / RELEASE
    for module in MODULES:  # the build's own files, linked
        assert (staged / "kernel" / module).samefile(build / module)
    assert (staged / "modules.order").read_text() == "".join(f"kernel/{m}\n" for m in MODULES)
    assert (staged / "modules.builtin").read_text() == (build / "modules.builtin").read_text()
    dep = (staged / "modules.dep").read_text()  # depmod's own index, as modprobe in the guest reads it
    assert sorted(dep.split()) == sorted(f"kernel/{m}:" for m in MODULES), dep
    assert not list(tmp_path.rglob("*passwd*")) and not list(tmp_path.rglob("*shadow*"))
    # Nothing of it in the build dir, where lx-symbols looks for a module's file.
    assert sorted(p.name for p in build.iterdir()) == [
        ".config",
        "arch",
        "drivers",
        "fs",
        "modules.builtin",
        "modules.order",
    ]

    # Nothing changed: the same stage. A module rebuilt (the linker makes a new file): a new stage,
    # the earlier ones kept for guests still running from them, up to STAGES_KEPT.
    assert vm.stage_modules(str(cache), kernel) == shared
    made = [shared]
    for n in range(vm.STAGES_KEPT):
        (build / MODULES[0]).unlink()
        (build / MODULES[0]).write_bytes(b"\x7fELF rebuilt %d" % n)
        again = vm.stage_modules(str(cache), kernel)
        assert again is not None and again not in made
        made.append(again)
    assert stages(cache) == sorted(Path(m).parent.parent for m in made[1:])  # the oldest went


@pytest.mark.parametrize(
    ("config", "order"),
    [("# CONFIG_MODULES is not set\n", ORDER), ("CONFIG_MODULES=y\n", None)],
    ids=["no-module-support", "no-modules-order"],
)
def test_a_build_without_modules_shares_nothing(tmp_path: Path, config: str, order: str | None) -> None:
    build = build_dir(tmp_path, config, order)
    assert vm.stage_modules(str(tmp_path / "cache"), str(build / "arch/x86/boot/bzImage")) is None
    assert not stages(tmp_path / "cache")


def test_a_kernel_outside_a_build_shares_nothing(tmp_path: Path) -> None:
    build = build_dir(tmp_path)
    elsewhere = tmp_path / "vmlinuz"
    elsewhere.write_bytes((build / "arch/x86/boot/bzImage").read_bytes())
    assert vm.stage_modules(str(tmp_path / "cache"), str(elsewhere)) is None


def test_a_stage_that_cannot_be_made_is_said_and_the_guest_boots_without(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    build = build_dir(tmp_path)
    cache = tmp_path / "cache"
    kernel = str(build / "arch/x86/boot/bzImage")
    monkeypatch.setattr(vm, "_depmod", lambda: None)
    assert vm.stage_modules(str(cache), kernel) is None
    assert (
        f"booting without {build}'s modules: no depmod to index them (install kmod)"
        in capsys.readouterr().err
    )
    failing = tmp_path / "depmod"
    failing.write_text("#!/bin/sh\necho 'depmod: ERROR: out of space' >&2\nexit 1\n")
    failing.chmod(0o755)
    monkeypatch.setattr(vm, "_depmod", lambda: str(failing))
    assert vm.stage_modules(str(cache), kernel) is None
    said = capsys.readouterr().err
    assert (
        f"booting without {build}'s modules: staging them in {cache}/modules failed: "
        "depmod: ERROR: out of space" in said
    )
    assert not stages(cache)  # its temp dir went with it


def test_no_hard_link_across_file_systems_is_a_copy_said_once(
    tmp_path: Path, depmod: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    build = build_dir(tmp_path)
    cache = tmp_path / "cache"

    def cross_device(src: str, dst: str) -> None:
        raise OSError(errno.EXDEV, "Invalid cross-device link", src)

    monkeypatch.setattr(os, "link", cross_device)
    shared = vm.stage_modules(str(cache), str(build / "arch/x86/boot/bzImage"))
    assert shared is not None
    placed = Path(shared) / RELEASE / "kernel" / MODULES[0]
    assert placed.read_bytes() == (build / MODULES[0]).read_bytes() and not placed.samefile(
        build / MODULES[0]
    )
    assert f"{build}'s modules copied to {cache}/modules: no hard links" in capsys.readouterr().err


def test_the_stage_is_shared_read_only_with_the_parameter_the_guest_mounts_it_by(
    tmp_path: Path, depmod: str
) -> None:
    build = build_dir(tmp_path)
    settings = guest_in(tmp_path, build / "arch/x86/boot/bzImage", cache=str(tmp_path / "with,comma"))
    args = vm.build_parser().parse_args(["--settings", "s", "exec", "--accel", "tcg", "--", "true"])
    boot = vm._boot(settings, args)
    assert boot.modules is not None and boot.modules.startswith(f"{tmp_path}/with,comma/modules/")
    for argv in (
        vm.qemu_argv(settings, boot),
        vm.qemu_argv(settings, boot, one_shot={role: role for role in vm.SERIAL_ROLES}),
    ):
        shared = f"local,path={boot.modules.replace(',', ',,')},mount_tag={vm.MODULES_TAG}"
        assert f"{shared},security_model=none,readonly=on" in options(argv, "-virtfs")
        assert vm.MODULES_PARAM in options(argv, "-append")[0].split()
    plain = vm.qemu_argv(settings, dataclasses.replace(boot, modules=None))
    assert vm.MODULES_PARAM not in options(plain, "-append")[0].split()
    assert not [share for share in options(plain, "-virtfs") if vm.MODULES_TAG in share]


def test_the_guest_mounts_the_share_on_lib_modules_in_both_kinds_of_boot(tmp_path: Path) -> None:
    mount = f"mount -t 9p -o {vm.NINEP_OPTIONS},ro {vm.MODULES_TAG} /lib/modules"
    init = render("guest/exec-init.sh.j2", user="ada", proto=protocol())
    assert (
        f"    {vm.MODULES_PARAM}) modules=1 ;;" in init and f'if [ -n "$modules" ] && ! {mount}; then' in init
    )
    # The whole guest's unit, as the build script writes it (that part of it run by sh).
    build = render_build_script(Guest(), "ada", "ada", HOME, f"{HOME}/.ssh/id_ed25519")
    start = build.index("modules_param=")
    part = build[start : build.index("\nUNIT\n", start) + len("\nUNIT\n")]
    (tmp_path / "etc/systemd/system").mkdir(parents=True)
    subprocess.run(["sh", "-euc", part], env={"root": str(tmp_path)}, check=True)
    unit = (tmp_path / "etc/systemd/system/kdevbox-modules.service").read_text().splitlines()
    assert f"ConditionKernelCommandLine={vm.MODULES_PARAM}" in unit and f"ExecStart=/bin/{mount}" in unit
    assert "Before=kmod-static-nodes.service systemd-tmpfiles-setup-dev.service systemd-udevd.service" in unit
    assert "systemctl -q enable kdevbox-modules.service" in build
