"""Kernel trees built by deploys/kernel.py: the image, every requested option, a complete
compile_commands.json, and the installed kernel when kernel.install is set. Not part of the default
suite (hosts get kernels only when asked):

    pytest --pyargs kdevbox.verify.kernel_checks --inventory inventories/local.py
"""

from __future__ import annotations

import json
import posixpath

import pytest

from kdevbox.kconfig import fragment_text, requested_options
from kdevbox.layout import Home, KernelTree, kernel_build_dir
from kdevbox.verify.nvim import picker_headings, rst_titles
from kdevbox.verify.targets import VerifyTarget

# A document every kernel tree has, in the format kernel developers read headings in.
KERNEL_DOC = "Documentation/process/submitting-patches.rst"


def _build(target: VerifyTarget) -> KernelTree:
    """The tree's build side, by settings; its source is wherever the build dir's `source` link points
    (kbuild makes it), read only by the checks that need it."""
    return KernelTree("", kernel_build_dir(target.config.kernel, target.account.home), "")


def _tree(target: VerifyTarget) -> KernelTree:
    build = _build(target).build
    source = target.run_as_user("readlink -f %s", f"{build}/source").stdout.strip()
    return KernelTree(source, build, "")


def test_image_built(kdevbox_target: VerifyTarget) -> None:
    image = kdevbox_target.host.file(_build(kdevbox_target).image)
    assert image.is_file and image.size > 0, f"{image.path} was not built"


def test_series_tool_on_this_build(kdevbox_target: VerifyTarget) -> None:
    """kdevbox-kernel (series, bisect) runs for the developer, with this build's settings."""
    mine = Home(kdevbox_target.account.home)
    shown = kdevbox_target.run_as_user("%s series --help", mine.kernel_script)
    assert shown.rc == 0 and "checkpatch.pl --strict" in shown.stdout, f"{mine.kernel_script} series --help"
    settings = json.loads(kdevbox_target.user_text(mine.kernel_settings) or "{}")
    build = _build(kdevbox_target).build
    assert settings.get("build") == build, f"{mine.kernel_settings} does not name the build {build}"


def test_every_requested_option_in_config(kdevbox_target: VerifyTarget) -> None:
    lines = set((kdevbox_target.user_text(_build(kdevbox_target).dot_config) or "").splitlines())
    requested = requested_options(fragment_text(kdevbox_target.config.kernel))
    missing = [line for line, _symbol in requested if line not in lines]
    assert not missing, f".config lacks {missing}"


def test_gdb_loads_the_kernel_helpers_with_vmlinux(kdevbox_target: VerifyTarget) -> None:
    """With the debug fragment, the developer's gdb on the build's vmlinux has the kernel's helpers:
    vmlinux-gdb.py is beside it and the build dir is on gdb's auto-load safe-path (their gdbinit)."""
    if not kdevbox_target.config.kernel.debug:
        pytest.skip("no debug in kernel.fragments")
    build = _build(kdevbox_target)
    helpers = kdevbox_target.run_as_user("test -r %s", build.gdb_scripts)
    assert helpers.rc == 0, f"no {build.gdb_scripts} (make scripts_gdb)"
    shown = kdevbox_target.run_as_user("gdb -q -batch -ex %s", "show auto-load safe-path")
    assert build.build in shown.stdout, f"gdb's auto-load safe-path lacks {build.build}"
    loaded = kdevbox_target.run_as_user("gdb -q -batch -ex %s %s", "help lx-dmesg", build.vmlinux)
    assert loaded.rc == 0 and "kernel log buffer" in loaded.stdout, f"gdb on {build.vmlinux} has no lx-dmesg"


def test_compile_commands_complete(kdevbox_target: VerifyTarget) -> None:
    tree = _tree(kdevbox_target)
    database = tree.compile_commands
    entries = json.loads(kdevbox_target.user_text(database) or "[]")
    files = {posixpath.normpath(posixpath.join(e["directory"], e["file"])) for e in entries}
    main_c = posixpath.join(tree.source, "init/main.c") in files
    assert main_c, f"{database} lacks init/main.c"
    # The checker is in the developer's build dir: it runs as them, never as root.
    check = kdevbox_target.run_as_user(
        "python3 %s %s %s %s", tree.check_compile_commands, database, tree.source, tree.build
    )
    assert check.rc == 0, check.stderr or check.stdout


def test_clangd_checks_a_kernel_file_without_errors(kdevbox_target: VerifyTarget) -> None:
    """clangd, as the developer with kdevbox's clangd config, on a file of the built tree: no error
    (a GCC-only flag it rejects shows up as an error at line 1 of every kernel file)."""
    if kdevbox_target.run_as_user("command -v clangd").rc != 0:
        pytest.skip("no clangd on the developer's PATH (the devbox deploy installs it)")
    check = kdevbox_target.run_as_user(
        "cd %s && clangd --check=init/main.c 2>&1", _tree(kdevbox_target).source
    )
    errors = [line for line in check.stdout.splitlines() if line.startswith("E[") or "error:" in line]
    assert check.rc == 0 and not errors, "\n".join(errors[:10]) or check.stdout[-2000:]


def test_heading_picker_lists_the_sections_of_a_kernel_doc(kdevbox_target: VerifyTarget) -> None:
    """<leader>fh in the tree's submitting-patches.rst lists every section title of it."""
    if not kdevbox_target.host.file(Home(kdevbox_target.account.home).kdevbox_lua).exists:
        pytest.skip("no kdevbox neovim config (the devbox deploy writes it)")
    doc = posixpath.join(_tree(kdevbox_target).source, KERNEL_DOC)
    titles = rst_titles(kdevbox_target.user_text(doc) or "")
    assert len(titles) > 1, f"{doc}: {titles}"
    assert picker_headings(kdevbox_target, doc) == titles


def test_selftests_installed(kdevbox_target: VerifyTarget) -> None:
    """Every kernel.selftests target has its tests in the install run_kselftest.sh reads."""
    install = _build(kdevbox_target).kselftests
    listed = posixpath.join(install, "kselftest-list.txt")
    wanted = kdevbox_target.config.kernel.selftests
    if not wanted:
        assert not kdevbox_target.host.file(listed).exists, f"{listed} exists without kernel.selftests"
        return
    assert kdevbox_target.host.file(posixpath.join(install, "run_kselftest.sh")).is_file
    targets = {line.split(":", 1)[0] for line in (kdevbox_target.user_text(listed) or "").splitlines()}
    assert not set(wanted) - targets, f"{listed} lacks {sorted(set(wanted) - targets)}"


def test_installed_when_asked(kdevbox_target: VerifyTarget) -> None:
    cfg = kdevbox_target.config.kernel
    build = _build(kdevbox_target)
    release = (kdevbox_target.user_text(build.kernel_release) or "").strip()
    installed = kdevbox_target.host.file(f"/boot/vmlinuz-{release}")
    built = kdevbox_target.run_as_user("sha256sum < %s", build.image).stdout.split()[:1]
    same = installed.exists and [installed.sha256sum] == built
    if cfg.install and not cfg.wsl_kernel_path:
        assert same, f"{installed.path} is not this build"
    else:
        assert not same, "installed without kernel.install"
