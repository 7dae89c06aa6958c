"""Custom pyinfra facts, and the shell probes they share with the testinfra checks."""

from __future__ import annotations

import json
import shlex
from collections.abc import Iterable
from dataclasses import dataclass

from pyinfra.api import FactBase

from kdevbox.layout import CHECKOUT_REF_KEY, LINK_ALIAS, KernelTree
from kdevbox.shell import sh, sourcing

LOGIN_USER = '"${SUDO_USER:-$(id -un)}"'


def account_probe(user: str | None) -> str:
    """Shell that prints who runs commands and the developer's passwd entry and primary group.

    Without a user, the developer is the account the connection logs in as: under sudo (pyinfra's
    `_sudo`, or `sudo pyinfra @local`) that is SUDO_USER, otherwise whoever runs the command.
    """
    who = shlex.quote(user) if user else LOGIN_USER
    return (
        f'u={who}; echo "effective=$(id -un)"; '
        'getent passwd "$u" | sed "s/^/passwd=/"; '
        'id -gn "$u" 2>/dev/null | sed "s/^/group=/"; echo "asked=$u"'
    )


@dataclass(frozen=True)
class Account:
    """The developer account on a host, and the account the connection runs commands as."""

    name: str
    group: str
    home: str
    effective_user: str

    @property
    def is_effective(self) -> bool:
        return self.name == self.effective_user


def _key_values(lines: Iterable[str]) -> dict[str, list[str]]:
    """Probe output of `key=value` lines, every value of each key (other lines are noise)."""
    values: dict[str, list[str]] = {}
    for line in lines:
        key, sep, value = line.partition("=")
        if sep:
            values.setdefault(key, []).append(value)
    return values


def _last_values(lines: Iterable[str]) -> dict[str, str]:
    """Probe output of `key=value` lines, the last value of each key."""
    return {key: values[-1] for key, values in _key_values(lines).items()}


@dataclass(frozen=True)
class AccountProbe:
    """What account_probe found: the account, or the name that was asked for and is missing."""

    asked: str
    effective_user: str
    account: Account | None


def parse_account(lines: Iterable[str]) -> AccountProbe:
    values = _last_values(lines)
    effective = values.get("effective", "")
    account = None
    if "passwd" in values:
        fields = values["passwd"].split(":")
        account = Account(
            name=fields[0], group=values.get("group", fields[0]), home=fields[5], effective_user=effective
        )
    return AccountProbe(asked=values.get("asked", ""), effective_user=effective, account=account)


class DeveloperAccount(FactBase[AccountProbe]):
    """The developer's passwd entry (home is read from the host, never guessed)."""

    def command(self, user: str | None = None) -> str:
        return account_probe(user)

    def process(self, output: Iterable[str]) -> AccountProbe:
        return parse_account(output)


class AptCandidate(FactBase[str | None]):
    """The version apt would install for a package (None when apt knows no candidate)."""

    def command(self, package: str) -> str:
        return f"LC_ALL=C apt-cache policy {shlex.quote(package)} 2>/dev/null || true"

    def process(self, output: Iterable[str]) -> str | None:
        for line in output:
            key, _, value = line.strip().partition(":")
            if key == "Candidate":
                value = value.strip()
                return None if value in ("", "(none)") else value
        return None


@dataclass(frozen=True)
class Availability:
    """Which packages the host's apt sources lack. Without package lists (a host that never ran
    `apt-get update`) nothing is known missing: apt itself will name what it cannot find."""

    has_lists: bool
    missing: tuple[str, ...]


def availability_probe(packages: Iterable[str]) -> str:
    """Shell printing `lists=yes` when apt has package lists, `asked=<package>` for each package,
    and `<package>=<candidate>` for each one apt could install."""
    names = " ".join(shlex.quote(p) for p in packages)
    return (
        "ls /var/lib/apt/lists 2>/dev/null | grep -q _Packages && echo lists=yes; "
        f'for p in {names}; do echo "asked=$p"; LC_ALL=C apt-cache policy "$p" 2>/dev/null | '
        'sed -n "s/^ *Candidate: *//p" | grep -v "^(none)$" | sed "s/^/$p=/"; done; true'
    )


def parse_availability(lines: Iterable[str]) -> Availability:
    values = _key_values(lines)
    has_lists = "lists" in values
    missing = tuple(p for p in values.get("asked", []) if p not in values) if has_lists else ()
    return Availability(has_lists=has_lists, missing=missing)


class PackageAvailability(FactBase[Availability]):
    """The packages of a list that this host's apt sources do not offer."""

    def command(self, packages: list[str]) -> str:
        return availability_probe(packages)

    def process(self, output: Iterable[str]) -> Availability:
        return parse_availability(output)


# "loaded" (or built in), "available" (modprobe would load it), nothing when this kernel lacks it.
MODULE_PROBE = (
    "if [ -d /sys/module/{name} ]; then echo loaded; "
    "elif modinfo {name} >/dev/null 2>&1; then echo available; fi; true"
)


class KernelModuleState(FactBase[str | None]):
    """Whether the running kernel has a module loaded, could load it, or has no such module."""

    def command(self, module: str) -> str:
        return MODULE_PROBE.format(name=shlex.quote(module))

    def process(self, output: Iterable[str]) -> str | None:
        return next((line.strip() for line in output if line.strip()), None)


@dataclass(frozen=True)
class RunningConfig:
    """Where the running kernel's config is, and a digest of it (a new kernel is a new config)."""

    path: str
    digest: str


# Debian and Ubuntu keep it in /boot; WSL2's kernel (and others built with CONFIG_IKCONFIG_PROC)
# only in /proc/config.gz.
RUNNING_CONFIG_PROBE = (
    'for f in "/boot/config-$(uname -r)" /proc/config.gz; do '
    'if [ -r "$f" ]; then echo "$f $(sha256sum < "$f" | cut -c1-16)"; break; fi; done'
)


class RunningKernelConfig(FactBase[RunningConfig | None]):
    """The running kernel's config file, for olddefconfig and localmodconfig; None when it has none."""

    def command(self) -> str:
        return RUNNING_CONFIG_PROBE

    def process(self, output: Iterable[str]) -> RunningConfig | None:
        fields = next((line.split() for line in output if line.strip()), None)
        return RunningConfig(fields[0], fields[1]) if fields and len(fields) == 2 else None


def parse_git_config(lines: Iterable[str]) -> dict[str, str]:
    """`section.key` -> value of git config files' lines (the last one wins, as in git): sections
    `[core]` and `[sendemail "x"]`, `key = value`, comments and quotes as git writes them. Includes
    are not followed."""
    values: dict[str, str] = {}
    section = ""
    for raw in lines:
        line = raw.strip()
        if line.startswith("["):
            header = line[1 : line.find("]")].strip()
            name, _, sub = header.partition(" ")
            section = name.lower() + (f".{sub.strip().strip(chr(34))}" if sub else "")
            continue
        if not line or line[0] in "#;" or not section:
            continue
        key, sep, value = line.partition("=")
        value = value.split(" #")[0].split(" ;")[0].strip() if sep else "true"
        if len(value) > 1 and value[0] == value[-1] == '"':
            value = value[1:-1]
        values[f"{section}.{key.strip().lower()}"] = value
    return values


class GlobalGitConfig(FactBase[dict[str, str]]):
    """The developer's global git settings (ask it as them: `Target.as_user`), the last value of each
    key. On a host without git yet (kdevbox installs it later in the same run) the files git would
    read are parsed instead, so settings from the developer's dotfiles are honoured on a fresh host."""

    def command(self) -> str:
        files = '"${XDG_CONFIG_HOME:-$HOME/.config}/git/config" "$HOME/.gitconfig"'
        return (
            "if command -v git >/dev/null 2>&1; then "
            "git config --global --list 2>/dev/null | sed 's/^/git:/'; "
            f'else for f in {files}; do if [ -f "$f" ]; then sed "s/^/file:/" "$f"; fi; done; fi'
        )

    def process(self, output: Iterable[str]) -> dict[str, str]:
        lines = list(output)
        listed = [line[4:] for line in lines if line.startswith("git:")]
        if listed:
            pairs = (line.partition("=") for line in listed)
            return {key.lower(): value for key, _, value in pairs}
        return parse_git_config(line[5:] for line in lines if line.startswith("file:"))

    @staticmethod
    def default() -> dict[str, str]:
        return {}


class Stamp(FactBase[str | None]):
    """The first line of a stamp file kdevbox wrote (what a result was made from); None when path is
    not a regular file: a FIFO or device put there is never read (it would hang the run), and
    nothing is followed out of a link. Ask it as the owner of path (`Target.as_user` in a home)."""

    def command(self, path: str) -> str:
        p = shlex.quote(path)
        return f"if [ -f {p} ] && ! [ -L {p} ]; then head -n 1 -- {p}; fi"

    def process(self, output: Iterable[str]) -> str | None:
        return next(iter(output), None)


@dataclass(frozen=True)
class Checkout:
    """A git checkout kdevbox made: where it fetches from, the ref it was asked for, its HEAD."""

    url: str | None
    ref: str | None
    head: str | None
    dirty: bool  # asked only with GitCheckout(dirty=True); False otherwise


class GitCheckout(FactBase[Checkout | None]):
    """The state of a checkout at path; None when path is not a git work tree.

    The requested ref is recorded in the checkout's own config (kdevbox.ref), so an unchanged
    setting is recognised without asking the remote. dirty (local changes to tracked files) is
    asked only with dirty=True: `git status` stats every file of a kernel tree on each run.
    """

    def command(self, path: str, dirty: bool = False) -> str:
        p = shlex.quote(path)
        status = (
            f'echo "dirty=$(git -C {p} status --porcelain --untracked-files=no | head -c1)"; '
            if dirty
            else ""
        )
        return (
            f"if [ -d {p}/.git ]; then "
            f'echo "url=$(git -C {p} config --get remote.origin.url)"; '
            f'echo "ref=$(git -C {p} config --get {CHECKOUT_REF_KEY})"; '
            f'echo "head=$(git -C {p} rev-parse -q --verify HEAD)"; '
            f"{status}fi"
        )

    def process(self, output: Iterable[str]) -> Checkout | None:
        values = _last_values(output)
        if not values:
            return None
        return Checkout(
            url=values.get("url") or None,
            ref=values.get("ref") or None,
            head=values.get("head") or None,
            dirty=bool(values.get("dirty")),
        )


class GitRemoteRefs(FactBase[tuple[str, ...]]):
    """The tag and branch names a git remote offers (one round trip); empty when it cannot be asked
    (no git yet, no network): callers then skip what they would check with it."""

    def command(self, url: str, env_file: str | None = None) -> str:
        return f"{sourcing(env_file)}git ls-remote --tags --heads -- {shlex.quote(url)} 2>/dev/null || true"

    def process(self, output: Iterable[str]) -> tuple[str, ...]:
        names = []
        for line in output:
            _sha, _, ref = line.strip().partition("\t")
            name = ref.removeprefix("refs/tags/").removeprefix("refs/heads/").removesuffix("^{}")
            if name and name not in names:
                names.append(name)
        return tuple(names)


@dataclass(frozen=True)
class WslInfo:
    """Whether the host is a WSL2 distro, and whether it has /dev/kvm to give QEMU."""

    is_wsl2: bool
    has_kvm: bool


WSL_PROBE = (
    'echo "release=$(uname -r)"; '
    "[ -e /proc/sys/fs/binfmt_misc/WSLInterop ] && echo interop=yes; "
    "[ -c /dev/kvm ] && echo kvm=yes; true"
)


def parse_wsl(lines: Iterable[str]) -> WslInfo:
    values = _last_values(lines)
    release = values.get("release", "").lower()
    return WslInfo(
        is_wsl2=("microsoft" in release and "wsl2" in release) or values.get("interop") == "yes",
        has_kvm=values.get("kvm") == "yes",
    )


class WslHost(FactBase[WslInfo]):
    """WSL2 detection: a kernel release like 5.15.x-microsoft-standard-WSL2, or the WSLInterop
    binfmt entry that every WSL distro registers."""

    def command(self) -> str:
        return WSL_PROBE

    def process(self, output: Iterable[str]) -> WslInfo:
        return parse_wsl(output)


@dataclass(frozen=True)
class KernelBuild:
    """What a build dir holds: the inputs it was configured and built from, and the results."""

    configured: str | None  # stamp of the inputs .config was made from
    built: str | None  # stamp of the inputs the last complete build used
    # Files of the source tree newer than the last complete build (relative paths; at most
    # CHANGED_SHOWN + 1 of them are listed: more means "many")
    changed: tuple[str, ...]
    has_image: bool
    release: str | None  # include/config/kernel.release
    has_compile_commands: bool
    selftests: str | None = None  # stamp of the kernel and TARGETS the installed selftests came from


CHANGED_SHOWN = 100


class KernelBuildState(FactBase[KernelBuild]):
    """One round trip for everything that decides whether to configure, build and install."""

    @staticmethod
    def default() -> KernelBuild:
        """A build dir that does not exist yet (the probe prints nothing)."""
        return KernelBuild(None, None, changed=(), has_image=False, release=None, has_compile_commands=False)

    def command(self, source: str, build: str) -> str:
        tree = KernelTree(source, build, "")
        s, built = sh(source), sh(tree.built_stamp)
        return (
            f'cat {sh(tree.configured_stamp)} 2>/dev/null | sed "s/^/configured=/"; '
            f'cat {built} 2>/dev/null | sed "s/^/built=/"; '
            f"[ -f {built} ] && (cd {s} && find . -path ./.git -prune -o -newer {built} -type f -print "
            f'2>/dev/null) | head -n {CHANGED_SHOWN + 1} | sed "s/^/changed=/"; '
            f"[ -f {sh(tree.image)} ] && echo image=yes; "
            f'cat {sh(tree.kernel_release)} 2>/dev/null | sed "s/^/release=/"; '
            f"[ -s {sh(tree.compile_commands)} ] && echo compile_commands=yes; "
            f'cat {sh(tree.selftests_stamp)} 2>/dev/null | sed "s/^/selftests=/"; true'
        )

    def process(self, output: Iterable[str]) -> KernelBuild:
        values = _key_values(output)
        return KernelBuild(
            configured=values.get("configured", [None])[0],
            built=values.get("built", [None])[0],
            changed=tuple(path.removeprefix("./") for path in values.get("changed", [])),
            has_image="image" in values,
            release=values.get("release", [None])[0],
            has_compile_commands="compile_commands" in values,
            selftests=values.get("selftests", [None])[0],
        )


@dataclass(frozen=True)
class Kernels:
    """The running kernel, what /boot and /lib/modules hold, and the tools that update boot."""

    running: str
    boot: tuple[str, ...]  # releases with /boot/vmlinuz-<release>
    modules: tuple[str, ...]  # releases with /lib/modules/<release>
    update_grub: bool
    packaged: tuple[str, ...] = ()  # releases a distribution package owns (apt removes those)


KERNELS_PROBE = (
    'echo "running=$(uname -r)"; '
    'for f in /boot/vmlinuz-*; do [ -e "$f" ] && echo "boot=${f#/boot/vmlinuz-}"; done; '
    'for d in /lib/modules/*/; do [ -d "$d" ] && d=${d%/} && echo "modules=${d#/lib/modules/}"; done; '
    'for f in /boot/vmlinuz-* /lib/modules/*; do [ -e "$f" ] && dpkg -S "$f" >/dev/null 2>&1 && '
    'r=${f#/boot/vmlinuz-} && echo "packaged=${r#/lib/modules/}"; done; '
    "command -v update-grub >/dev/null && echo update_grub=yes; true"
)


def parse_kernels(lines: Iterable[str]) -> Kernels:
    values = _key_values(lines)
    return Kernels(
        running=values.get("running", [""])[0],
        boot=tuple(sorted(values.get("boot", []))),
        modules=tuple(sorted(values.get("modules", []))),
        update_grub="update_grub" in values,
        packaged=tuple(sorted(set(values.get("packaged", [])))),
    )


class KernelsPresent(FactBase[Kernels]):
    def command(self) -> str:
        return KERNELS_PROBE

    def process(self, output: Iterable[str]) -> Kernels:
        return parse_kernels(output)


@dataclass(frozen=True)
class NetLink:
    name: str
    kind: str | None  # "bridge", "tun", ... (None: a physical or loopback device)
    up: bool
    master: str | None
    owner: str | None  # a tap's owning user (name or uid, as ip prints it)
    addresses: tuple[str, ...]  # IPv4, as address/prefix
    alias: str | None = None  # ifalias: kdevbox marks the devices it made (KDEVBOX_LINK_ALIAS)

    @property
    def made_by_kdevbox(self) -> bool:
        return self.alias == LINK_ALIAS


@dataclass(frozen=True)
class Route:
    destination: str  # "default" or an IPv4 network
    device: str | None


@dataclass(frozen=True)
class Network:
    """The host's network links, their IPv4 addresses, and its IPv4 routes."""

    links: dict[str, NetLink]
    routes: tuple[Route, ...]
    known: bool = True  # False: no iproute2 on the host, nothing could be read


NETWORK_PROBE = (
    'echo "links=$(ip -d -j link show)"; echo "addresses=$(ip -j -4 addr show)"; '
    'echo "routes=$(ip -j -4 route show)"'
)


def parse_network(lines: Iterable[str]) -> Network:
    values = {key: json.loads(found[0] or "[]") for key, found in _key_values(lines).items()}
    addresses = {
        entry["ifname"]: tuple(f"{a['local']}/{a['prefixlen']}" for a in entry.get("addr_info", []))
        for entry in values.get("addresses", [])
    }
    links = {}
    for entry in values.get("links", []):
        info = entry.get("linkinfo", {})
        links[entry["ifname"]] = NetLink(
            name=entry["ifname"],
            kind=info.get("info_kind"),
            up="UP" in entry.get("flags", []),
            master=entry.get("master"),
            owner=None if "user" not in info.get("info_data", {}) else str(info["info_data"]["user"]),
            addresses=addresses.get(entry["ifname"], ()),
            alias=entry.get("ifalias") or None,
        )
    routes = tuple(Route(r["dst"], r.get("dev")) for r in values.get("routes", []))
    return Network(links=links, routes=routes)


class NetworkState(FactBase[Network]):
    """Links, addresses and routes in one round trip (iproute2's JSON output)."""

    @staticmethod
    def default() -> Network:
        """A host without iproute2 yet: nothing known, nothing in the way."""
        return Network(links={}, routes=(), known=False)

    def command(self) -> str:
        return NETWORK_PROBE

    def requires_command(self) -> str:
        return "ip"

    def process(self, output: Iterable[str]) -> Network:
        return parse_network(output)
