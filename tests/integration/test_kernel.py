"""Kernel tasks on a chroot test host with a real tree (Debian's linux-source-6.1 as a tagged git repo
served by git daemon): a dropped option is named, tinyconfig + the guest fragment builds with ccache,
compile_commands.json is complete (also under Bear on an already-built tree), install and a safe
uninstall. kernel.org releases come from a releases.json stand-in on 127.0.0.1."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kdevbox.config import Kernel
from kdevbox.kconfig import fragment_text, requested_options
from kdevbox.verify.nvim import rst_titles
from tests import testhosts
from tests.kernel_stand_in import Release, kernel_git_repo, kernel_version, serve_releases
from tests.setups import (
    KERNEL,
    REPO,
    EditorUpstreams,
    deploy,
    guest_kernel_settings,
    pyinfra_cli,
    verify,
    write_inventory,
)
from tests.testhosts import DEV_USER

pytestmark = pytest.mark.slow
UNINSTALL = REPO / "deploys" / "kernel_uninstall.py"
FETCH_ONLY = REPO / "tests" / "deploys" / "kernel_fetch_only.py"
EDITOR_ONLY = REPO / "tests" / "deploys" / "editor_only.py"
HOME = f"home/{DEV_USER}"


def _settings(config: Path) -> set[str]:
    """The options a .config sets (its comments and blank lines aside)."""
    return {line for line in config.read_text().splitlines() if line.startswith("CONFIG_")}


def _database(root: Path, source: str) -> set[str]:
    entries = json.loads((root / source.lstrip("/") / "compile_commands.json").read_text())
    return {os.path.normpath(os.path.join(e["directory"], e["file"])) for e in entries}


def test_build_install_uninstall(kernel_lab: Path, kernel_repo_url: str, tmp_path: Path) -> None:
    root = kernel_lab
    name = f"@chroot{root}"
    kernel = guest_kernel_settings(kernel_repo_url, options=["CONFIG_PRINTK_TIME=y", "CONFIG_DRM_I915=y"])

    def setup(**changes: Any) -> Path:
        kernel.update(changes)
        return write_inventory(tmp_path, [(name, {"user": DEV_USER, "kernel": kernel})])

    # i915 needs DRM and more that tinyconfig leaves off: Kconfig drops it, kdevbox names it.
    dropped = pyinfra_cli(setup(), deploy_file=KERNEL)
    output = dropped.stdout + dropped.stderr
    assert dropped.returncode != 0
    assert "requested: CONFIG_DRM_I915=y" in output and "Kconfig dropped 1 requested option" in output
    assert "CONFIG_PRINTK_TIME" not in output.split("Kconfig dropped")[0].split("requested:")[-1]

    inventory = setup(options=["CONFIG_PRINTK_TIME=y"])
    first = deploy(inventory, KERNEL)[name]
    assert not first["failed"]
    build = root / HOME / "build/kdevbox"
    assert (build / "arch/x86/boot/bzImage").stat().st_size > 0
    config = set((build / ".config").read_text().splitlines())
    requested = requested_options(fragment_text(Kernel.model_validate(kernel)))
    assert len(requested) > 40 and all(line in config for line, _ in requested)
    source = f"/{HOME}/src/linux"
    files = _database(root, source)
    assert f"{source}/init/main.c" in files and all((root / f.lstrip("/")).is_file() for f in files)
    release = (build / "include/config/kernel.release").read_text().strip()
    assert release == kernel_version(kernel_git_repo()) + "-kdevbox-test", release

    assert deploy(inventory, KERNEL)[name]["changed"] == []
    checked = verify(inventory, "kdevbox.verify.kernel_checks")
    assert checked.returncode == 0 and checked.failed == 0, checked.output
    _planted_build_files_never_reach_root(root, inventory, name)

    # An empty or partial database never replaces a good one: the same check the build runs
    # (Bear on an already-built tree records nothing; kdevbox then rebuilds clean under it).
    check = [f"/{HOME}/build/kdevbox/kdevbox-check-ccdb.py", f"/{HOME}/build/kdevbox"]
    full = (root / source.lstrip("/") / "compile_commands.json").read_text()
    (root / "tmp/empty.json").write_text("[]")
    (root / "tmp/partial.json").write_text(json.dumps(json.loads(full)[::2]))
    for bad, why in (("empty", "is empty"), ("partial", ": partial")):
        result = subprocess.run(
            ["chroot", str(root), "python3", check[0], f"/tmp/{bad}.json", source, check[1]],
            capture_output=True,
            text=True,
        )
        assert result.returncode != 0 and why in result.stderr, (bad, result.stderr)

    # Install on request; a second run leaves it.
    inventory = setup(install=True)
    assert deploy(inventory, KERNEL)[name]["changed"]
    installed = [root / f"boot/{kind}-{release}" for kind in ("vmlinuz", "System.map", "config")]
    assert all(path.is_file() for path in installed)
    assert deploy(inventory, KERNEL)[name]["changed"] == []
    assert verify(inventory, "kdevbox.verify.kernel_checks").returncode == 0

    def uninstall(*releases: str, dry: bool = False) -> subprocess.CompletedProcess[str]:
        data = json.dumps({"uninstall": list(releases)})
        return pyinfra_cli(
            setup(),
            *(["--dry"] if dry else []),
            "--data",
            f"kernel={data}",
            deploy_file=UNINSTALL,
            yes=not dry,
        )

    # The only kernel in /boot, the running kernel, a kernel not installed: refused, nothing removed.
    only = uninstall(release)
    assert (
        only.returncode != 0 and f"kernel.uninstall = '{release}': is the last bootable kernel" in only.stderr
    )
    running = os.uname().release
    (root / f"boot/vmlinuz-{running}").write_text("the running kernel, as the host sees it\n")
    refused = uninstall(running)
    assert refused.returncode != 0 and "is the running kernel: boot another one first" in refused.stderr
    missing = uninstall("9.9.9-nothere")
    assert missing.returncode != 0 and "'9.9.9-nothere': not installed; installed: " in missing.stderr
    # A distribution's kernel (dpkg owns its files): apt's to remove, so refused with a pointer to apt.
    packaged = "6.1.0-99-amd64"
    _install_fake_kernel_package(root, tmp_path, packaged)
    distro = uninstall(packaged)
    assert distro.returncode != 0 and f"'{packaged}': belongs to a distribution package" in distro.stderr
    assert (root / f"boot/vmlinuz-{packaged}").is_file()
    assert all(path.is_file() for path in installed)

    # --dry lists exactly what would go, and removes nothing; then it goes.
    dry = uninstall(release, dry=True)
    assert dry.returncode == 0, dry.stderr
    for path in installed:
        assert f"remove /{path.relative_to(root)}" in dry.stdout + dry.stderr
    assert all(path.is_file() for path in installed)
    assert uninstall(release).returncode == 0
    assert not any(path.exists() for path in installed)
    assert (root / f"boot/vmlinuz-{running}").is_file()


def _planted_build_files_never_reach_root(root: Path, inventory: Path, name: str) -> None:
    """The build dir is the developer's: a link they put where kdevbox writes its Kconfig check is
    replaced (the root file it named untouched), and the compile_commands checker they edit runs as
    them when verify runs, never as root."""
    build = f"/{HOME}/build/kdevbox"
    motd = root / "etc/motd"
    before = testhosts.file_state(motd)
    planted = testhosts.run_as(root, f"ln -sf /etc/motd {build}/kdevbox-check-config.sh")
    assert planted.returncode == 0, planted.stderr
    repaired = deploy(inventory, KERNEL)[name]
    assert ["kernel | Kconfig check " + f"{build}/kdevbox-check-config.sh"] in repaired["changed"]
    assert testhosts.file_state(motd) == before
    check = root / build.lstrip("/") / "kdevbox-check-config.sh"
    assert not check.is_symlink() and check.stat().st_uid == 1000

    marker = "open('/tmp/kdevbox-checker-ran-as', 'w').write(str(__import__('os').getuid()))\n"
    checker = "kdevbox-check-ccdb.py"
    edited = testhosts.run_as(
        root, f"cd {build} && {{ printf %s {shlex.quote(marker)}; cat {checker}; }} > x && mv x {checker}"
    )
    assert edited.returncode == 0, edited.stderr
    checked = verify(inventory, "kdevbox.verify.kernel_checks")
    assert checked.returncode == 0, checked.output
    ran_as = root / "tmp/kdevbox-checker-ran-as"
    assert ran_as.read_text() == "1000" and ran_as.stat().st_uid == 1000
    restored = deploy(inventory, KERNEL)[name]["changed"]
    assert restored == [[f"kernel | compile_commands.json check {build}/{checker}"]]


def _install_fake_kernel_package(root: Path, workdir: Path, release: str) -> None:
    """A package owning /boot/vmlinuz-<release> and /lib/modules/<release>, as linux-image-* does."""
    package = workdir / "fake-kernel"
    (package / "DEBIAN").mkdir(parents=True)
    (package / "boot").mkdir()
    (package / "boot" / f"vmlinuz-{release}").write_text("a packaged kernel\n")
    (package / "lib/modules" / release).mkdir(parents=True)
    (package / "lib/modules" / release / "modules.order").write_text("")
    (package / "DEBIAN/control").write_text(
        f"Package: linux-image-{release}\nVersion: 1\nArchitecture: all\n"
        "Maintainer: kdevbox tests <tests@example.org>\nDescription: stand-in for a packaged kernel\n"
    )
    subprocess.run(
        ["dpkg-deb", "-b", "--root-owner-group", str(package), str(root / "tmp/fake.deb")], check=True
    )
    subprocess.run(["chroot", str(root), "dpkg", "-i", "/tmp/fake.deb"], check=True, capture_output=True)


@pytest.fixture()
def releases(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str]]:
    served = tmp_path_factory.mktemp("kernel.org")
    with testhosts.http_server(served) as url:
        yield served, url


LINES = [
    Release("6.13-rc1", "mainline", "t/linux-6.13-rc1.tar.gz"),
    Release("6.12.1", "stable", "pub/linux/kernel/v6.x/linux-6.12.1.tar.xz"),
    Release("6.6.63", "longterm", "pub/linux/kernel/v6.x/linux-6.6.63.tar.xz"),
    Release("6.1.119", "longterm", "pub/linux/kernel/v6.x/linux-6.1.119.tar.xz"),
]


def test_compiledb_records_the_kernel_build(
    kernel_lab: Path, kernel_repo_url: str, editor_upstreams: EditorUpstreams, tmp_path: Path
) -> None:
    """compile_commands: compiledb on a built tree without a database: kdevbox rebuilds clean and
    compiledb records every compiled file (from the build's V=1 log, not a dry run). The editor on
    that tree: clangd checks a file without error, the heading picker lists a kernel doc's titles."""
    root, name = kernel_lab, f"@chroot{kernel_lab}"
    kernel = guest_kernel_settings(
        kernel_repo_url, options=["CONFIG_PRINTK_TIME=y"], compile_commands="compiledb"
    )
    settings = {
        "user": DEV_USER,
        "kernel": kernel,
        "clangd": {"compile_db": "compiledb"},
        "neovim": editor_upstreams.neovim_settings(),
    }
    inventory = write_inventory(tmp_path, [(name, settings)])
    assert not deploy(inventory, EDITOR_ONLY)[name]["failed"]
    database = root / HOME / "src/linux/compile_commands.json"
    database.unlink(missing_ok=True)

    first = deploy(inventory, KERNEL)[name]
    assert not first["failed"]
    build = f"kernel | build kdevbox and /{HOME}/src/linux/compile_commands.json"
    log = f"/{HOME}/build/kdevbox/kdevbox-build.log"
    assert [f"{build} (minutes: tail -f {log})"] in first["changed"], first["changed"]
    files = _database(root, f"/{HOME}/src/linux")
    assert f"/{HOME}/src/linux/init/main.c" in files and len(files) > 400
    checked = verify(inventory, "kdevbox.verify.kernel_checks")
    assert checked.returncode == 0 and checked.failed == 0, checked.output
    # Debian 12's clangd 14 on the kernel gcc built: kdevbox's clangd config leaves it no error.
    assert "test_clangd_checks_a_kernel_file_without_errors" in checked.ran and checked.skipped == 0
    # <leader>fh in Documentation/process/submitting-patches.rst lists its 20 section titles
    # (telescope-heading's plain rst parser lists 4).
    assert "test_heading_picker_lists_the_sections_of_a_kernel_doc" in checked.ran
    doc = root / HOME / "src/linux/Documentation/process/submitting-patches.rst"
    titles = [title for _line, title in rst_titles(doc.read_text())]
    assert len(titles) == 20 and titles[-2:] == ["Providing base tree information", "References"]
    assert deploy(inventory, KERNEL)[name]["changed"] == []


def test_olddefconfig_starts_from_the_running_kernels_config(
    kernel_lab: Path, kernel_repo_url: str, tmp_path: Path
) -> None:
    """base: olddefconfig reads the running kernel's config from /boot (Debian, Ubuntu) or else
    /proc/config.gz (WSL2's kernel has only that); booting another kernel configures again."""
    root, name = kernel_lab, f"@chroot{kernel_lab}"
    release = os.uname().release  # a chroot runs the machine's kernel

    def setup(**changes: Any) -> Path:
        kernel = guest_kernel_settings(kernel_repo_url, **changes)
        return write_inventory(tmp_path, [(name, {"user": DEV_USER, "kernel": kernel})])

    assert not deploy(setup(), KERNEL)[name]["failed"]  # tinyconfig + guest
    config = root / HOME / "build/kdevbox/.config"
    tiny = _settings(config)
    # The running kernel was built from that very config: olddefconfig + guest comes back to it.
    boot_config = root / "boot" / f"config-{release}"
    boot_config.write_text(config.read_text())
    try:
        inventory = setup(base="olddefconfig")
        first = deploy(inventory, KERNEL)[name]
        configure = (
            f"kernel | configure kdevbox: olddefconfig from /boot/config-{release} + guest, debug fragments"
            " + 2 options"
        )
        assert [configure] in first["changed"], first["changed"]
        assert _settings(config) == tiny
        assert deploy(inventory, KERNEL)[name]["changed"] == []
        checked = verify(inventory, "kdevbox.verify.kernel_checks")
        assert checked.returncode == 0 and checked.failed == 0, checked.output
        # Another running kernel is another start (here its config differs in a comment only, so
        # the build that follows has nothing to recompile).
        boot_config.write_text(config.read_text() + "# booted another kernel\n")
        assert [configure] in deploy(inventory, KERNEL)[name]["changed"]
        assert deploy(inventory, KERNEL)[name]["changed"] == []
    finally:
        boot_config.unlink()

    # Without it, /proc/config.gz where the machine's kernel has one; else the setting is refused.
    planned = pyinfra_cli(inventory, "--dry", deploy_file=KERNEL, yes=False)
    said = planned.stdout + planned.stderr
    if Path("/proc/config.gz").exists():
        assert planned.returncode == 0 and "olddefconfig from /proc/config.gz" in said, said
    else:
        assert planned.returncode != 0 and "kernel.base = 'olddefconfig'" in said, said


def test_no_running_config_refused_before_any_change(base_rootfs: Path, tmp_path: Path) -> None:
    """A host whose kernel config is in neither /boot nor /proc (no /proc here at all)."""
    with testhosts.throwaway_rootfs(tmp_path / "host", proc=False) as root:
        name = f"@chroot{root}"
        kernel = {"base": "localmodconfig", "source": "path", "path": "/usr/src/linux"}
        inventory = write_inventory(tmp_path, [(name, {"user": DEV_USER, "kernel": kernel})])
        before = testhosts.tree_digest(root, "etc", "home", "usr/src")
        run = pyinfra_cli(inventory, deploy_file=KERNEL)
        assert run.returncode != 0
        assert f"{name}: kernel.base = 'localmodconfig'" in run.stderr, run.stderr
        assert "/boot/config-$(uname -r) or /proc/config.gz" in run.stderr
        assert testhosts.tree_digest(root, "etc", "home", "usr/src") == before


def test_release_channel_fetch_and_checksum(
    chroot_root: Path, releases: tuple[Path, str], tmp_path: Path
) -> None:
    served, url = releases
    serve_releases(served, url, LINES, corrupt="6.12.1")
    name = f"@chroot{chroot_root}"

    def fetch(channel: str) -> subprocess.CompletedProcess[str]:
        kernel = {"source": "release", "channel": channel, "releases_url": f"{url}/releases.json"}
        inventory = write_inventory(tmp_path, [(name, {"user": DEV_USER, "kernel": kernel})])
        return pyinfra_cli(inventory, deploy_file=FETCH_ONLY)

    ok = fetch("longterm:6.1")
    assert ok.returncode == 0, ok.stderr
    assert "kernel.org longterm:6.1 is 6.1.119 (pinned for this run)" in ok.stderr
    tree = chroot_root / HOME / "src/linux-6.1.119"
    assert (tree / "KDEVBOX_STAND_IN").read_text() == "6.1.119\n"
    assert tree.stat().st_uid == 1000

    before = testhosts.tree_digest(chroot_root, HOME)
    tampered = fetch("stable")
    assert tampered.returncode != 0
    assert f"sha256 mismatch for {url}/pub/linux/kernel/v6.x/linux-6.12.1.tar.xz" in tampered.stderr
    unknown = fetch("longterm:4.4")
    assert unknown.returncode != 0
    assert (
        "kernel.channel = 'longterm:4.4': kernel.org has no release on channel 'longterm:4.4'"
        in unknown.stderr
    )
    assert "longterm 6.6.63" in unknown.stderr
    snapshot = fetch("mainline")
    assert snapshot.returncode != 0 and "use kernel.source 'git' with tag v6.13-rc1" in snapshot.stderr
    assert testhosts.tree_digest(chroot_root, HOME) == before


def test_unreachable_kernel_org_fails_before_any_change(chroot_root: Path, tmp_path: Path) -> None:
    port = testhosts.free_port()  # nothing listens there
    kernel = {
        "source": "release",
        "channel": "stable",
        "releases_url": f"http://127.0.0.1:{port}/releases.json",
    }
    inventory = write_inventory(tmp_path, [(f"@chroot{chroot_root}", {"user": DEV_USER, "kernel": kernel})])
    before = testhosts.tree_digest(chroot_root, "etc", "home")
    run = pyinfra_cli(inventory, deploy_file=KERNEL)
    assert run.returncode != 0
    assert f"kernel.channel = 'stable': cannot fetch http://127.0.0.1:{port}/releases.json" in run.stderr
    assert testhosts.tree_digest(chroot_root, "etc", "home") == before
