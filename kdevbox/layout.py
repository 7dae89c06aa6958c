"""Every host path, stamp and marker kdevbox owns, computed from the settings and the account.

The one place tasks, facts, templates and verify read them from: deploy and verify are peers that
both import this module, so a path is spelled once. Pure: no host is asked anything here.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass

from kdevbox.config import Guest, Kernel, Proxy

# --- system files (root's) ---
APT_PROXY_CONF = "/etc/apt/apt.conf.d/80kdevbox-proxy"
PROXY_ROOT_ENV = "/etc/kdevbox/proxy.env"
PROXY_USER_ENV = ".config/kdevbox/proxy.env"  # in the developer's home (Home.proxy_env)
PROXY_PROFILE = "/etc/profile.d/kdevbox-proxy.sh"
PROXY_SUDOERS = "/etc/sudoers.d/kdevbox-proxy"
WSL_CONF = "/etc/wsl.conf"
MSR_MODULES_LOAD = "/etc/modules-load.d/kdevbox-msr.conf"
NETWORKD_DIR = "/etc/systemd/network"
LINK_DIR = "/usr/local/bin"
COMPILEDB = "/usr/local/bin/compiledb"  # the clangd capability's link (its PATH may lack /usr/local/bin)
CLANGD_LINK = "/usr/local/bin/clangd"
NVIM_LINK = "/usr/local/bin/nvim"
NVIM_RELEASE_PREFIX = "/opt/nvim-"  # + version
VENV_ROOT = "/opt/kdevbox/venvs"
SCRIPT_DIR = "/usr/local/lib/kdevbox"
SELFTEST_SUMMARY = "/usr/local/lib/kdevbox/kselftest_summary.py"  # gone: kdevbox-vm summarizes itself
GUEST_RUNNER = "/usr/local/lib/kdevbox/kdevbox_vm.py"  # kdevbox-vm, the program (kdevbox/kdevbox_vm.py)
KERNEL_TOOL = "/usr/local/lib/kdevbox/kdevbox_kernel.py"  # kdevbox-kernel (kdevbox/kdevbox_kernel.py)
KVM_DEVICE = "/dev/kvm"
LOG_DIR = "/var/log/kdevbox"
GUEST_BASE_CACHE = "/var/cache/kdevbox/guest-bases"
# debootstrap checks the guest's suite with it (debian-archive-keyring)
DEBIAN_KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg"
GUEST_BUILD_WORK = "/var/cache/kdevbox/guest-work"  # builds in progress, and the lock on the bases

# --- markers kdevbox leaves in files and devices ---
TARBALL_SOURCE_MARKER = ".kdevbox-source"  # in an unpacked tarball: the sha256 it came from
CHECKOUT_REF_KEY = "kdevbox.ref"  # git config of a checkout: the ref it was asked for
PARSER_SOURCE_SUFFIX = ".source"  # beside a built tree-sitter parser: the url and ref it came from
LINK_ALIAS = "kdevbox"  # ifalias of the bridges and taps kdevbox makes
# files.block markers (awk regexes: no regex metacharacters)
GITIGNORE_MARKER = "# {mark} kdevbox managed block, set git gitignore_extra in kdevbox settings to add"
NVIM_INIT_MARKER = "{comment} {{mark}} kdevbox managed block, loads kdevbox neovim config"
SSH_MARKER = "# {{mark}} kdevbox managed block, guest {name}"
GDBINIT_MARKER = "# {{mark}} kdevbox managed block, kernel build {name}"


def expand_home(path: str, home: str) -> str:
    """A path as git reads core.excludesfile: `~/` is the home, relative paths hang off it too."""
    if path == "~" or path.startswith("~/"):
        return posixpath.join(home, path[2:])
    return posixpath.join(home, path)


def excludesfile(configured: str | None, current: str | None, home: str) -> str:
    """Where the global gitignore is: the configured file, else the user's core.excludesfile, else
    git's own default."""
    chosen = configured or current
    return expand_home(chosen, home) if chosen else Home(home).default_excludesfile


@dataclass(frozen=True)
class Home:
    """The developer's files kdevbox writes, under their home."""

    home: str

    def _in(self, path: str) -> str:
        return posixpath.join(self.home, path)

    @property
    def default_excludesfile(self) -> str:
        return self._in(".config/git/ignore")

    @property
    def clangd_config(self) -> str:
        return self._in(".config/clangd/config.yaml")

    @property
    def nvim_config_dir(self) -> str:
        return self._in(".config/nvim")

    @property
    def kdevbox_lua(self) -> str:
        return self._in(".config/nvim/lua/kdevbox/init.lua")

    @property
    def nvim_plan(self) -> str:
        """What the neovim deploy decided (source, version, plugin refs), for verify to read."""
        return self._in(".local/share/kdevbox/neovim-plan.json")

    @property
    def pack_dir(self) -> str:
        return self._in(".local/share/nvim/site/pack/kdevbox/start")

    def plugin(self, name: str) -> str:
        return posixpath.join(self.pack_dir, name)

    def grammar(self, language: str) -> str:
        """A tree-sitter grammar's checkout, which its parser is built from."""
        return self._in(f".local/share/kdevbox/tree-sitter/{language}")

    def parser(self, language: str) -> str:
        """A tree-sitter parser kdevbox built, outside neovim's 'runtimepath' so that a parser of the
        developer's own (nvim-treesitter's, say) keeps precedence: kdevbox's config loads it by path."""
        return self._in(f".local/share/kdevbox/tree-sitter/parser/{language}.so")

    @property
    def proxy_env(self) -> str:
        return self._in(PROXY_USER_ENV)

    @property
    def ssh_dir(self) -> str:
        return self._in(".ssh")

    @property
    def ssh_config(self) -> str:
        return self._in(".ssh/config")

    @property
    def guest_key(self) -> str:
        """The key pair made for guests when the developer has none of their own."""
        return self._in(".ssh/kdevbox_guest")

    @property
    def own_keys(self) -> tuple[str, ...]:
        return tuple(self._in(key) for key in (".ssh/id_ed25519", ".ssh/id_ecdsa", ".ssh/id_rsa"))

    @property
    def gdbinit(self) -> str:
        """gdb's init file in the home when there is none yet (gdb reads only the first of this and
        ~/.gdbinit that exists)."""
        return self._in(".config/gdb/gdbinit")

    @property
    def old_gdbinit(self) -> str:
        return self._in(".gdbinit")

    @property
    def run_script(self) -> str:
        """The developer's kdevbox-vm: a launcher of GUEST_RUNNER with vm_settings."""
        return self._in(".local/bin/kdevbox-vm")

    @property
    def vm_settings(self) -> str:
        """The guest's paths and settings kdevbox-vm reads (JSON, written by the deploy)."""
        return self._in(".config/kdevbox/kdevbox-vm.json")

    @property
    def vm_cache(self) -> str:
        """kdevbox-vm's cache (the KVM probe's verdict for this machine boot, unpacked kernels)."""
        return self._in(".cache/kdevbox")

    @property
    def kernel_script(self) -> str:
        """The developer's kdevbox-kernel: a launcher of KERNEL_TOOL with kernel_settings."""
        return self._in(".local/bin/kdevbox-kernel")

    @property
    def kernel_settings(self) -> str:
        """The kernel tree, its build and make variables kdevbox-kernel reads (JSON, by the deploy)."""
        return self._in(".config/kdevbox/kdevbox-kernel.json")

    def kernel_work(self, name: str) -> str:
        """kdevbox-kernel's own worktree, build dirs and logs for the build `name` (kept between runs:
        its steps rebuild only what changed)."""
        return self._in(f".cache/kdevbox/kernel/{name}")


@dataclass(frozen=True)
class KernelTree:
    """Where one kernel configuration lives on a host, the stamps of its inputs, and what it makes."""

    source: str
    build: str
    source_id: str  # tag, release version or path: part of the stamp

    def _in_build(self, path: str) -> str:
        return posixpath.join(self.build, path)

    @property
    def compile_commands(self) -> str:
        return posixpath.join(self.source, "compile_commands.json")

    @property
    def compile_commands_new(self) -> str:
        """Where a database is made and checked before it replaces compile_commands."""
        return self._in_build("compile_commands.json.new")

    @property
    def dot_config(self) -> str:
        return self._in_build(".config")

    @property
    def fragment(self) -> str:
        return self._in_build("kdevbox.config")

    @property
    def configured_stamp(self) -> str:
        return self._in_build(".kdevbox-configured")

    @property
    def built_stamp(self) -> str:
        return self._in_build(".kdevbox-built")

    @property
    def selftests_stamp(self) -> str:
        return self._in_build(".kdevbox-selftests")

    @property
    def check_config(self) -> str:
        return self._in_build("kdevbox-check-config.sh")

    @property
    def check_compile_commands(self) -> str:
        return self._in_build("kdevbox-check-ccdb.py")

    @property
    def build_log(self) -> str:
        """The last build's output: compiledb parses it, a person follows it with tail -f."""
        return self._in_build("kdevbox-build.log")

    @property
    def image(self) -> str:
        return self._in_build("arch/x86/boot/bzImage")

    @property
    def vmlinux(self) -> str:
        """The kernel with its symbols and DWARF: what gdb, crash and drgn read."""
        return self._in_build("vmlinux")

    @property
    def gdb_scripts(self) -> str:
        """The link `make scripts_gdb` makes: gdb auto-loads it with vmlinux (lx-symbols, lx-dmesg...)."""
        return self._in_build("vmlinux-gdb.py")

    @property
    def system_map(self) -> str:
        return self._in_build("System.map")

    @property
    def kernel_release(self) -> str:
        return self._in_build("include/config/kernel.release")

    @property
    def kselftests(self) -> str:
        """Where `make kselftest-install` puts the selftests: run_kselftest.sh and the tests."""
        return self._in_build("kselftest/kselftest_install")


@dataclass(frozen=True)
class Downloads:
    """How a download command on a host finds the proxy: root's commands read root_env, the
    developer's (run as them, or as the login user when that is the developer) user_env; via is the
    proxy as messages name it (masked). Files are None when no proxy is set."""

    root_env: str | None
    user_env: str | None
    via: str


def downloads(cfg: Proxy, home: str) -> Downloads:
    if not cfg.enabled:
        return Downloads(None, None, "")
    return Downloads(PROXY_ROOT_ENV, Home(home).proxy_env, cfg.shown)


def kernel_build_dir(cfg: Kernel, home: str) -> str:
    """The out-of-tree build dir of cfg's named configuration."""
    return posixpath.join(expand_home(cfg.build_root, home), cfg.name)


def kernel_tree(cfg: Kernel, home: str, source: str, source_id: str) -> KernelTree:
    return KernelTree(source, kernel_build_dir(cfg, home), source_id)


# Inside guest images: PID 1 of a one-shot `kdevbox-vm exec` boot, instead of systemd.
GUEST_EXEC_INIT = "/usr/local/lib/kdevbox/exec-init"


@dataclass(frozen=True)
class GuestFiles:
    """One guest's files: the developer's in its image dir, root's build script, env and log."""

    directory: str
    name: str
    user: str

    def _named(self, suffix: str) -> str:
        return posixpath.join(self.directory, f"{self.name}.{suffix}")

    @property
    def image(self) -> str:
        return self._named("qcow2")

    @property
    def inputs(self) -> str:
        """The sha256 of the build script that made the image: unchanged, no rebuild."""
        return self._named("qcow2.inputs")

    @property
    def previous(self) -> str:
        return self._named("qcow2.prev")

    @property
    def vmlinuz(self) -> str:
        return self._named("vmlinuz")

    @property
    def initrd(self) -> str:
        return self._named("initrd.img")

    @property
    def known_hosts(self) -> str:
        return self._named("known_hosts")

    @property
    def pidfile(self) -> str:
        return self._named("pid")

    @property
    def console(self) -> str:
        return self._named("console.log")

    @property
    def kselftest_tap(self) -> str:
        return self._named("kselftest.tap")

    @property
    def qmp(self) -> str:
        """QEMU's monitor socket (QMP) while the guest runs: kdevbox-vm dump asks it for the memory."""
        return self._named("qmp")

    @property
    def gdb(self) -> str:
        """QEMU's gdb stub while `kdevbox-vm debug` runs: a socket in the 0700 image dir (a TCP port,
        even on 127.0.0.1, is any local account's to connect to first)."""
        return self._named("gdb")

    @property
    def dump(self) -> str:
        """The guest's memory as `kdevbox-vm dump` wrote it last (ELF, or kdump-compressed)."""
        return self._named("dump")

    @property
    def building(self) -> str:
        """Present while root builds the image (it holds the build's PID): kdevbox-vm waits for it."""
        return self._named("building")

    @property
    def build_script(self) -> str:
        return posixpath.join(SCRIPT_DIR, f"build-guest-{self.user}-{self.name}.sh")

    @property
    def build_env(self) -> str:
        """The 0600 file with the build's proxy settings, beside the script."""
        return self.build_script.removesuffix(".sh") + ".env"

    @property
    def build_log(self) -> str:
        return posixpath.join(LOG_DIR, posixpath.basename(self.build_script).removesuffix(".sh") + ".log")


UNIX_SOCKET_PATH_MAX = 107  # bytes: sun_path holds 108 with its NUL (QEMU's QMP and gdb sockets)


def guest_files(cfg: Guest, home: str, user: str) -> GuestFiles:
    return GuestFiles(expand_home(cfg.image_dir, home), cfg.name, user)


def networkd_files(cfg: Guest) -> list[tuple[str, str, str]]:
    """(template, file name in NETWORKD_DIR, interface it names) for cfg's bridge and tap."""
    return [
        (f"network/{kind}.{suffix}.j2", f"50-kdevbox-{interface}.{suffix}", interface)
        for kind, interface in (("bridge", cfg.bridge), ("tap", cfg.tap_name))
        for suffix in ("netdev", "network")
    ]
