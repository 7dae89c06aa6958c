"""Kernel trees: fetch (a git tag, a kernel.org release, or a tree on the host), configure from Kconfig
fragments, build out of tree with ccache, compile_commands.json for clangd, install on request.
Removing installed kernels is kdevbox.tasks.kernel_uninstall."""

from __future__ import annotations

import posixpath
from dataclasses import dataclass

from pyinfra import host, logger
from pyinfra.api import deploy
from pyinfra.facts.files import File, Link, Sha256File
from pyinfra.operations import files, server

from kdevbox.config import Kernel
from kdevbox.facts import CHANGED_SHOWN, KernelBuild, KernelBuildState, RunningConfig, RunningKernelConfig
from kdevbox.inventory import ConfigError, refusal
from kdevbox.kconfig import fragment_text, requested_options
from kdevbox.kernel_org import KernelOrgError, proxies_for, resolve
from kdevbox.layout import (
    COMPILEDB,
    GDBINIT_MARKER,
    Home,
    KernelTree,
    downloads,
    expand_home,
    kernel_build_dir,
)
from kdevbox.operations import git_checkout, inputs_digest, install_tarball
from kdevbox.shell import sh, words
from kdevbox.steps import apt_install, managed_block, user_file
from kdevbox.target import Target
from kdevbox.tasks.kernel_tool import kernel_tool
from kdevbox.templates import render

BUILD_DEPENDENCIES = [
    "build-essential",
    "flex",
    "bison",
    "bc",
    "libssl-dev",
    "libelf-dev",
    "cpio",
    "kmod",
    "rsync",
    "ccache",
    "python3",
    "git",
    "curl",
    "xz-utils",
    "ca-certificates",
]
TOOL_PACKAGES = {"gen": [], "bear": ["bear"], "compiledb": []}  # compiledb: clangd task's virtualenv
# With the debug fragment: gdb for the running kernel (kdevbox-vm debug), crash for its memory dumps.
DEBUG_PACKAGES = ["gdb", "crash"]


def make(tree: KernelTree, *targets: str, silent: bool = True, jobs: bool = False) -> str:
    """make in the tree, out of tree; every target and variable quoted. silent=False for compiledb:
    `-s` also silences V=1. jobs: one job per CPU."""
    flags = ["-s"] if silent else []
    parallel = ' -j"$(nproc)"' if jobs else ""
    return words("make", *flags, "-C", tree.source, f"O={tree.build}", *targets) + parallel


def _fail(field: str, value: object, expected: str) -> ConfigError:
    return refusal(host.name, field, value, expected, headline="kernel settings do not fit")


def _tree(cfg: Kernel, target: Target) -> KernelTree:
    """Resolve the source (a kernel.org channel is asked here, on the controller) to paths."""
    home = target.account.home
    build = kernel_build_dir(cfg, home)
    if cfg.source == "path":
        assert cfg.path is not None
        return KernelTree(expand_home(cfg.path, home), build, f"path:{cfg.path}")
    source = expand_home(cfg.source_dir, home)
    if cfg.source == "git":
        return KernelTree(source, build, f"git:{cfg.git_url}@{cfg.tag}")
    try:
        release = resolve(cfg.channel, cfg.releases_url, proxies_for(target.config.proxy))
    except KernelOrgError as exc:
        raise _fail("kernel.channel", cfg.channel, str(exc)) from None
    logger.info(f"{host.name}: kernel.org {cfg.channel} is {release.version} (pinned for this run)")
    return KernelTree(f"{source}-{release.version}", build, f"release:{release.version}:{release.sha256}")


def _fetch(cfg: Kernel, tree: KernelTree, target: Target) -> None:
    as_user = target.as_user
    fetching = downloads(target.config.proxy, target.account.home)
    env_file, via = fetching.user_env, fetching.via
    if cfg.source == "git":
        git_checkout(
            name=f"kernel {cfg.tag} from {cfg.git_url}",
            path=tree.source,
            url=cfg.git_url,
            ref=cfg.tag,
            hint="set kernel.git_url to a mirror you reach, or kernel.source 'path' for a tree you have",
            env_file=env_file,
            via=via,
            **as_user,
        )
    elif cfg.source == "release":
        release = resolve(cfg.channel, cfg.releases_url, proxies_for(target.config.proxy))
        install_tarball(
            name=f"linux {release.version} from kernel.org",
            url=release.tarball_url,
            sha256=release.sha256,
            dest=tree.source,
            hint="set kernel.releases_url to a mirror you reach, or kernel.source 'git'",
            env_file=env_file,
            via=via,
            **as_user,
        )
    elif not host.get_fact(File, path=posixpath.join(tree.source, "Makefile"), **as_user):
        raise _fail("kernel.path", cfg.path, "no kernel tree there (no Makefile): unpack one first")


@deploy("kernel source")
def kernel_fetch(cfg: Kernel, target: Target) -> None:
    """Only fetch cfg's tree (a git tag or a kernel.org release), e.g. to read or patch it first."""
    apt_install("kernel fetch tools", ["git", "curl", "ca-certificates", "xz-utils"])
    _fetch(cfg, _tree(cfg, target), target)


@deploy("kernel")
def kernel_build(cfg: Kernel, target: Target) -> None:
    """Fetch, configure and build cfg's kernel as the developer; install it only when asked."""
    tree = _tree(cfg, target)
    as_user = target.as_user
    fragment = fragment_text(cfg)
    running = _running_config(cfg)
    inputs = [tree.source_id, cfg.base, fragment, cfg.localversion]
    if running is not None:  # booting another kernel changes what olddefconfig starts from
        inputs.append(running.digest)
    stamp = inputs_digest(*inputs)

    if cfg.compile_commands == "compiledb" and not host.get_fact(Link, path=COMPILEDB):
        raise _fail(
            "kernel.compile_commands",
            cfg.compile_commands,
            "compiledb is not installed: set clangd.compile_db to 'compiledb' and run deploys/devbox.py",
        )
    apt_install(
        "kernel build dependencies",
        BUILD_DEPENDENCIES + TOOL_PACKAGES[cfg.compile_commands] + (DEBUG_PACKAGES if cfg.debug else []),
    )
    _fetch(cfg, tree, target)
    if cfg.debug:
        _gdb_auto_load(cfg, tree, target)

    files.directory(name=f"build dir {tree.build}", path=tree.build, present=True, **as_user)
    user_file(f"Kconfig fragment for {cfg.name}", tree.fragment, fragment, "644", target)
    user_file(
        "Kconfig check",
        tree.check_config,
        render("kernel/check-config.sh.j2", requested=requested_options(fragment)),
        "755",
        target,
    )
    user_file(
        "compile_commands.json check",
        tree.check_compile_commands,
        render("kernel/check_compile_commands.py"),
        "644",
        target,
    )

    state = host.get_fact(KernelBuildState, source=tree.source, build=tree.build, **as_user)
    steps = decide(cfg, state, stamp)
    if steps.configure:
        server.shell(
            name=f"configure {cfg.name}: {cfg.base}"
            + (f" from {running.path}" if running else "")
            + f" + {', '.join(cfg.fragments) or 'no'} fragments"
            + (f" + {len(cfg.options)} options" if cfg.options else ""),
            commands=_configure_commands(cfg, tree, stamp, running),
            **as_user,
        )
    if steps.compile:
        server.shell(
            name=f"build {cfg.name}"
            + (f" and {tree.compile_commands}" if steps.compile_commands else "")
            + f" (minutes: tail -f {tree.build_log})",
            commands=_build_commands(cfg, tree, stamp, clean=steps.clean, record=steps.compile_commands),
            **as_user,
        )
    if steps.make_selftests:
        server.shell(
            name=f"selftests {' '.join(cfg.selftests)} for {cfg.name}",
            commands=_selftest_commands(tree, cfg.selftests, selftests_stamp(stamp, cfg)),
            **as_user,
        )
    if steps.drop_selftests:
        server.shell(
            name=f"no selftests for {cfg.name} (kernel.selftests is empty)",
            commands=[words("rm", "-rf", tree.kselftests, tree.selftests_stamp)],
            **as_user,
        )
    kernel_tool(cfg, tree, build_variables(cfg), target)
    if cfg.install or cfg.wsl_kernel_path:
        _install(cfg, tree, state, rebuilt=steps.rebuilt, target=target)


def _gdb_auto_load(cfg: Kernel, tree: KernelTree, target: Target) -> None:
    """The build dir on gdb's auto-load safe-path, in a marked block of the developer's gdb init file
    (written as them): gdb then loads vmlinux-gdb.py with the build's vmlinux, wherever it starts.
    gdb reads only the first of ~/.config/gdb/gdbinit and ~/.gdbinit that exists: an existing
    ~/.gdbinit gets the block rather than being hidden by a new file."""
    mine, as_user = Home(target.account.home), target.as_user
    init = mine.gdbinit
    has_old = host.get_fact(File, path=mine.old_gdbinit, **as_user)
    if has_old and not host.get_fact(File, path=init, **as_user):
        init = mine.old_gdbinit
    else:
        directory = posixpath.dirname(init)
        files.directory(name=directory, path=directory, present=True, **as_user)
    managed_block(
        f"gdb auto-loads the kernel's helpers from {tree.build} ({init})",
        init,
        render("kernel/gdbinit.j2", build=tree.build),
        GDBINIT_MARKER.format(name=cfg.name),
        **as_user,
    )


@dataclass(frozen=True)
class KernelSteps:
    """What a kernel run does on a build dir, decided from its state alone."""

    configure: bool
    compile: bool  # make
    compile_commands: bool  # and compile_commands.json: its entries may have changed
    clean: bool  # compile from clean: a recorder (bear, compiledb) has no database to extend
    make_selftests: bool
    drop_selftests: bool
    rebuilt: bool  # a new image (an installed kernel is then out of date)


def selftests_stamp(stamp: str, cfg: Kernel) -> str:
    return inputs_digest(stamp, cfg.selftests)


def source_edits_only(changed: tuple[str, ...]) -> bool:
    """Whether the tree's changes since the last build are edits of C or assembly files of the kernel
    (not tools/, selftests included): they change no compile command and no uapi header, so neither
    compile_commands.json nor the installed selftests need making again."""
    return 0 < len(changed) <= CHANGED_SHOWN and all(
        path.endswith((".c", ".S")) and not path.startswith("tools/") for path in changed
    )


def decide(cfg: Kernel, state: KernelBuild, stamp: str) -> KernelSteps:
    """The steps for cfg on a build dir in state, whose inputs now stamp as stamp: no more than make
    needs (an unchanged tree with its image and database does nothing; an edited .c file is a make,
    not a new compile_commands.json nor new selftests)."""
    configure = state.configured != stamp
    same_inputs = not configure and state.built == stamp and state.has_image
    changed = not same_inputs or bool(state.changed)
    light = same_inputs and state.has_compile_commands and source_edits_only(state.changed)
    # Bear and compiledb record only what they see compiled: without a database to extend, the
    # build starts clean (ccache makes that cheap), or the database would come out empty.
    clean = cfg.compile_commands != "gen" and not state.has_compile_commands
    build = changed or not state.has_compile_commands
    selftests = bool(cfg.selftests) and (
        (changed and not light) or clean or state.selftests != selftests_stamp(stamp, cfg)
    )
    drop = not cfg.selftests and state.selftests is not None
    return KernelSteps(
        configure, build, build and not light, clean, selftests, drop, rebuilt=changed or clean
    )


def _selftest_commands(tree: KernelTree, targets: list[str], stamp: str) -> list[str]:
    """Build the chosen selftests against this kernel's headers and install them, runner included.

    The top-level kselftest-install target runs `make -C tools/testing/selftests` after exporting the
    kernel's headers into the build dir, so the tests see this kernel's uapi.
    """
    stamp_file = tree.selftests_stamp
    return [
        "set -e",
        words("rm", "-rf", stamp_file, tree.kselftests),
        make(tree, f"TARGETS={' '.join(targets)}", "kselftest-install", jobs=True),
        f"echo {sh(stamp)} > {sh(stamp_file)}",
    ]


def _running_config(cfg: Kernel) -> RunningConfig | None:
    """The running kernel's config when cfg's base starts from it; refused before any change when
    the host has none (a kernel without CONFIG_IKCONFIG_PROC and nothing in /boot)."""
    if cfg.base not in ("olddefconfig", "localmodconfig"):
        return None
    running = host.get_fact(RunningKernelConfig)
    if running is None:
        raise _fail(
            "kernel.base",
            cfg.base,
            "the running kernel's config in /boot/config-$(uname -r) or /proc/config.gz, and this "
            "host has neither: use defconfig or tinyconfig (plus fragments)",
        )
    return running


def _configure_commands(
    cfg: Kernel, tree: KernelTree, stamp: str, running: RunningConfig | None
) -> list[str]:
    config = tree.dot_config
    configured = tree.configured_stamp
    commands = ["set -e", words("rm", "-f", configured, tree.built_stamp)]
    if running is not None:
        reader = "zcat" if running.path.endswith(".gz") else "cat"
        commands.append(f"{words(reader, running.path)} > {sh(config)}")
    merge = posixpath.join(tree.source, "scripts/kconfig/merge_config.sh")
    fragment = tree.fragment
    commands += [
        make(tree, cfg.base),
        f"cd {sh(tree.build)} && {words(merge, '-m', '-O', tree.build, config, fragment)} >/dev/null",
        make(tree, "olddefconfig"),
        words(tree.check_config, config),
        f"echo {sh(stamp)} > {sh(configured)}",
    ]
    return commands


def build_variables(cfg: Kernel) -> list[str]:
    """The make variables of every build of cfg's tree: kdevbox's, and kdevbox-kernel's of each commit
    (the same kernel release, the same ccache)."""
    return [f"LOCALVERSION={cfg.localversion}", *(["CC=ccache gcc"] if cfg.ccache else [])]


def _build_commands(cfg: Kernel, tree: KernelTree, stamp: str, clean: bool, record: bool = True) -> list[str]:
    """make, then compile_commands.json (checked, then moved into the tree's root) unless record is
    False (the entries it has are the ones this build would record), then the stamp."""
    recorder = record and cfg.compile_commands == "compiledb"
    build = make(tree, *build_variables(cfg), silent=not recorder, jobs=True)
    # vmlinux-gdb.py and the helpers it loads, beside vmlinux (as the kernel's gdb docs say); with
    # the build's variables, or its prepare step writes a kernel.release without LOCALVERSION.
    gdb = [make(tree, *build_variables(cfg), "scripts_gdb")] if cfg.debug else []
    built = tree.built_stamp
    # The build's output goes to its log (what compiledb reads, and where a person looks while it
    # runs); a failure shows the log's tail.
    log = tree.build_log
    logged = f"> {sh(log)} 2>&1 || {{ tail -n 40 {sh(log)} >&2; exit 1; }}"
    if not record:
        return [
            "set -e",
            words("rm", "-f", built),
            f"{build} {logged}",
            *gdb,
            f"echo {sh(stamp)} > {sh(built)}",
        ]
    database = tree.compile_commands_new
    commands = ["set -e", words("rm", "-f", built, database)]
    if clean:  # a recorder only sees what is compiled while it runs: start from a clean build
        commands.append(make(tree, "clean"))
    if cfg.compile_commands != "gen" and not clean:
        # An incremental build records only what it recompiles: extend the database it had.
        have = sh(tree.compile_commands)
        commands.append(f"if [ -s {have} ]; then cp {have} {sh(database)}; fi")
    if cfg.compile_commands == "bear":
        commands.append(f"{words('bear', '--append', '--output', database, '--')} {build} {logged}")
    elif cfg.compile_commands == "compiledb":
        # compiledb reads the commands V=1 prints. Not `compiledb make`: after building it parses a
        # `make -Bnwk` dry run, which does not follow Kbuild's recursive makes (a handful of
        # entries). The real build's log holds them all.
        commands += [f"{build} V=1 {logged}", words(COMPILEDB, "-d", tree.build, "-o", database, "-p", log)]
    else:
        gen = posixpath.join(tree.source, "scripts/clang-tools/gen_compile_commands.py")
        commands += [f"{build} {logged}", words("python3", gen, "-d", tree.build, "-o", database)]
    check = tree.check_compile_commands
    commands += [
        words("python3", check, database, tree.source, tree.build),
        words("mv", "-f", database, tree.compile_commands),
        *gdb,
        f"echo {sh(stamp)} > {sh(built)}",
    ]
    return commands


def wslconfig_kernel_line(path: str) -> str:
    """The .wslconfig line for a kernel at /mnt/<drive>/...: Windows path, backslashes doubled."""
    drive, rest = path[5], path[7:]
    return f"kernel={drive.upper()}:\\\\" + rest.replace("/", "\\\\")


def _is_installed(image: str, installed: str, target: Target) -> bool:
    """Whether installed holds the build's image: the image is hashed by its owner, the developer."""
    built = host.get_fact(Sha256File, path=image, **target.as_user)
    return built is not None and built == host.get_fact(Sha256File, path=installed)


def _install(cfg: Kernel, tree: KernelTree, state: KernelBuild, rebuilt: bool, target: Target) -> None:
    """modules_install and Debian's installkernel (which runs the initramfs and bootloader hooks the
    host has), as root: installing a kernel trusts whoever built it. On WSL2, the developer copies
    bzImage where Windows can boot it instead (their own drive)."""
    image = tree.image
    if cfg.wsl_kernel_path:
        if rebuilt or not _is_installed(image, cfg.wsl_kernel_path, target):
            server.shell(
                name=f"copy bzImage to {cfg.wsl_kernel_path}",
                commands=[words("install", "-D", "-m", "644", image, cfg.wsl_kernel_path)],
                **target.as_user,
            )
        logger.info(
            f"{host.name}: to boot this kernel in WSL2, put this under [wsl2] in %UserProfile%\\.wslconfig, "
            f"then run `wsl --shutdown`:\n    {wslconfig_kernel_line(cfg.wsl_kernel_path)}"
        )
        return
    if not rebuilt and state.release and _is_installed(image, f"/boot/vmlinuz-{state.release}", target):
        host.noop(f"kernel {state.release} is installed")
        return
    server.shell(
        name=f"install kernel {cfg.name} (modules, /boot, initramfs and bootloader hooks)",
        commands=[
            "set -e",
            f"if grep -qx CONFIG_MODULES=y {sh(tree.dot_config)}; then "
            f"{make(tree, 'INSTALL_MOD_STRIP=1', 'modules_install')}; fi",
            f'installkernel "$(cat {sh(tree.kernel_release)})" ' + words(image, tree.system_map, "/boot"),
        ],
    )
