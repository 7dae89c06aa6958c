"""One typed schema for every host's settings, validated before any host is touched.

Host data keys are the field names of `HostConfig` at the top level (`user`, `apt_proxy`, `git`, ...).
Defaults live here and nowhere else.
"""

from __future__ import annotations

import hashlib
import os
import re
from ipaddress import IPv4Address, IPv4Interface
from typing import Annotated, Any, Literal
from urllib.parse import quote, urlsplit, urlunsplit

from pydantic import (
    AfterValidator,
    AnyUrl,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    UrlConstraints,
    ValidationInfo,
    field_validator,
    model_validator,
)

from kdevbox.secrets import mask_credentials as mask_credentials
from kdevbox.templates import TEMPLATES

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")  # C0, DEL, C1, Unicode line breaks


def _no_control_characters(value: Any) -> Any:
    """Refuse control characters (newline, \\r, tab, NUL...) in any text, however deep."""
    control = _CONTROL.search(value) if isinstance(value, str) else None
    if control:
        raise ValueError(f"expected printable text: {control.group()!r} is a control character")
    if isinstance(value, dict):
        for key, item in value.items():
            _no_control_characters(key)
            _no_control_characters(item)
    if isinstance(value, list | tuple):
        for item in value:
            _no_control_characters(item)
    return value


# Fields holding another settings model, by model: their dicts are checked field by field inside.
_NESTED_MODELS: dict[str, set[str]] = {}


class Model(BaseModel):
    """Base of every settings model: unknown keys are errors, so a typo cannot pass silently, and
    no text anywhere carries a control character."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    def __repr__(self) -> str:
        """Settings show up in tracebacks and assertion messages: never with a password in them."""
        return mask_credentials(super().__repr__())

    def __str__(self) -> str:
        return mask_credentials(super().__str__())

    @field_validator("*", mode="before")
    @classmethod
    def _printable(cls, value: Any, info: ValidationInfo) -> Any:
        if isinstance(value, dict) and info.field_name in _NESTED_MODELS.get(cls.__name__, ()):
            return value  # the nested model checks its own fields, and names them
        return _no_control_characters(value)

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        _NESTED_MODELS[cls.__name__] = {
            name
            for name, field in cls.model_fields.items()
            if any(
                isinstance(t, type) and issubclass(t, BaseModel)
                for t in (field.annotation, *getattr(field.annotation, "__args__", ()))
            )
        }


Username = Annotated[str, StringConstraints(pattern=r"^[a-z_][a-z0-9_-]{0,31}$")]
Hostname = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9]([A-Za-z0-9.-]{0,252})$")]
ProxyUrl = Annotated[AnyUrl, UrlConstraints(allowed_schemes=["http", "https", "socks5h"], host_required=True)]
# pyinfra's git.config wraps values in double quotes for the shell: keep those characters out.
GitValue = Annotated[str, StringConstraints(min_length=1, pattern=r'^[^"\\$`\n]+$')]
EmailAddress = Annotated[str, StringConstraints(pattern=r"^[^@\s\"\\$`]+@[^@\s\"\\$`]+\.[^@\s\"\\$`]+$")]
IgnorePattern = Annotated[str, StringConstraints(min_length=1, pattern=r"^[^\n]+$")]


# The name of an environment variable of the controller (where pyinfra runs).
ENV_NAME = r"^[A-Z_][A-Z0-9_]{0,63}$"
EnvName = Annotated[str, StringConstraints(pattern=ENV_NAME)]
PASSWORD_ENV_HELP = (
    "the environment variable (on the machine running pyinfra) holding the password of the proxy "
    "URLs' user: a password in the settings is in pyinfra's --debug output, this one never is"
)


def password_from_environment(data: Any) -> Any:
    """Settings data whose proxy URLs with a user and no password get the one password_env names,
    read from the controller's environment at validation: host data (which pyinfra's --debug logs)
    only ever holds the variable's name."""
    if not isinstance(data, dict) or not data.get("password_env"):
        return data
    name = data["password_env"]
    if not isinstance(name, str) or not re.fullmatch(ENV_NAME, name):
        return data  # the field's own check names what is expected
    password = os.environ.get(name)
    if not password:
        raise ValueError(f"password_env: {name} is not set where pyinfra runs: export it first")
    filled = dict(data)
    for key in ("http", "https"):
        parts = urlsplit(str(data[key])) if data.get(key) else None
        if parts is not None and parts.username is not None and parts.password is None:
            userinfo = f"{parts.username}:{quote(password, safe='')}@"
            filled[key] = urlunsplit(parts._replace(netloc=userinfo + parts.netloc.rpartition("@")[2]))
    return filled


class AptProxy(Model):
    """apt's proxy: written to apt.conf.d when a URL is set, removed when none is."""

    http: ProxyUrl | None = None
    https: ProxyUrl | None = None
    no_proxy: list[Hostname] = Field(default_factory=list, description="hosts apt reaches directly")
    password_env: EnvName | None = Field(default=None, description=PASSWORD_ENV_HELP)

    _password = model_validator(mode="before")(password_from_environment)

    @property
    def enabled(self) -> bool:
        return self.http is not None or self.https is not None

    @property
    def has_credentials(self) -> bool:
        return any(
            url is not None and (url.username is not None or url.password is not None)
            for url in (self.http, self.https)
        )


class Proxy(Model):
    """The proxy every download kdevbox makes goes through: on hosts (curl, git, pip, apt when
    `apt_proxy` is unset, the guest build) and on the controller (kernel.org's release list)."""

    http: ProxyUrl | None = Field(default=None, description="for http:// downloads (http_proxy)")
    https: ProxyUrl | None = Field(default=None, description="for https:// downloads (https_proxy)")
    no_proxy: list[Hostname] = Field(default_factory=list, description="hosts reached directly")
    system: bool = Field(
        default=False,
        description="also for your own shells: /etc/profile.d/kdevbox-proxy.sh exports the variables "
        "(upper and lower case) from 0600 files, and sudo keeps them",
    )
    password_env: EnvName | None = Field(default=None, description=PASSWORD_ENV_HELP)

    _password = model_validator(mode="before")(password_from_environment)

    @property
    def enabled(self) -> bool:
        return self.http is not None or self.https is not None

    @property
    def shown(self) -> str:
        """The proxy as messages name it: credentials masked."""
        return ", ".join(mask_credentials(str(url)) for url in (self.http, self.https) if url) or "none"

    @property
    def single(self) -> str | None:
        """One proxy for tools that take one (pip): the https one, as most downloads are https."""
        url = self.https or self.http
        return None if url is None else str(url)

    def environment(self) -> dict[str, str]:
        """The variables curl, git, pip and requests read, lower and upper case."""
        values = {"http_proxy": self.http, "https_proxy": self.https}
        env = {name: str(url) for name, url in values.items() if url is not None}
        if self.no_proxy:
            env["no_proxy"] = ",".join(self.no_proxy)
        return {**env, **{name.upper(): value for name, value in env.items()}}


class SendEmail(Model):
    """git send-email over SMTP. Passwords never live here: use a git credential helper."""

    smtp_server: GitValue
    smtp_port: Annotated[int, Field(ge=1, le=65535)] | None = None
    smtp_encryption: Literal["tls", "ssl"] | None = None
    smtp_user: GitValue | None = None
    suppresscc: Literal["author", "self", "cc", "bodycc", "sob", "cccmd", "body", "misc-by", "all"] = "self"
    chainreplyto: bool = False

    @model_validator(mode="before")
    @classmethod
    def _refuse_passwords(cls, data: Any) -> Any:
        if isinstance(data, dict):
            for key in data:
                if "pass" in str(key).lower():
                    raise ValueError(
                        f"'{key}': passwords are not kept in kdevbox settings; store them with a git "
                        "credential helper (e.g. `git config --global credential.helper store`, or "
                        "libsecret) and git send-email will ask it"
                    )
        return data

    def git_settings(self) -> dict[str, str]:
        """The sendemail.* keys these settings stand for, as git stores them."""
        settings = {
            "sendemail.smtpserver": self.smtp_server,
            "sendemail.suppresscc": self.suppresscc,
            "sendemail.chainreplyto": "true" if self.chainreplyto else "false",
        }
        if self.smtp_port is not None:
            settings["sendemail.smtpserverport"] = str(self.smtp_port)
        if self.smtp_encryption is not None:
            settings["sendemail.smtpencryption"] = self.smtp_encryption
        if self.smtp_user is not None:
            settings["sendemail.smtpuser"] = self.smtp_user
        return settings


DEFAULT_GITIGNORE: tuple[str, ...] = (
    # kernel build outputs
    "*.o",
    "*.o.*",
    "*.a",
    "*.so",
    "*.ko",
    "*.mod",
    "*.mod.c",
    "*.mod.o",
    "*.symtypes",
    "*.lst",
    "*.dtb",
    "*.dtbo",
    "*.s",
    "*.i",
    ".*.cmd",
    ".*.d",
    "*.dwo",
    "modules.order",
    "Module.symvers",
    "vmlinux",
    "vmlinux.*",
    "System.map",
    "*.tar.*",
    # editors, LSP and code navigation
    "compile_commands.json",
    ".cache/clangd/",
    ".clangd/",
    "tags",
    "TAGS",
    "GPATH",
    "GRTAGS",
    "GTAGS",
    "cscope.*",
    "ncscope.*",
    "*.swp",
    "*.swo",
    "*~",
    ".vscode/",
    # leftovers of patch work
    "*.orig",
    "*.rej",
    "*.patch~",
)


# A global gitignore's path, set here or found in the developer's git config: plain characters only.
EXCLUDESFILE = r"^(~/|/)?[A-Za-z0-9._+@/-]+$"


class Git(Model):
    """The developer's global git setup: identity, global gitignore, patch mailing."""

    name: GitValue | None = None
    email: EmailAddress | None = None
    excludesfile: Annotated[str, StringConstraints(pattern=EXCLUDESFILE)] | None = Field(
        default=None,
        description="global gitignore; default: the user's current core.excludesfile, else "
        "~/.config/git/ignore. kdevbox manages one marked block in it.",
    )
    gitignore_extra: list[IgnorePattern] = Field(default_factory=list)
    sendemail: SendEmail | None = None

    @property
    def ignore_patterns(self) -> list[str]:
        return [*DEFAULT_GITIGNORE, *(p for p in self.gitignore_extra if p not in DEFAULT_GITIGNORE)]

    def global_settings(self) -> dict[str, str]:
        """The `git config --global` keys kdevbox sets from these settings (core.excludesfile aside,
        which depends on the host)."""
        settings = {}
        if self.name is not None:
            settings["user.name"] = self.name
        if self.email is not None:
            settings["user.email"] = self.email
        if self.sendemail is not None:
            settings.update(self.sendemail.git_settings())
        return settings


# GCC-only flags that a kernel compile_commands.json carries and clang rejects ("unknown argument").
DEFAULT_CLANGD_REMOVE_FLAGS: tuple[str, ...] = (
    "-mpreferred-stack-boundary=*",
    "-mindirect-branch*",
    "-mfunction-return=*",
    "-fno-allow-store-data-races",
    "-fconserve-stack",
    "-mrecord-mcount",
    "-fzero-call-used-regs=*",
    "-mskip-rax-setup",
    "-fno-ipa-sra",
    "-fmin-function-alignment=*",
    "-fsanitize=bounds-strict",
    "-mharden-sls=*",
    "-fno-var-tracking-assignments",
    "-femit-struct-debug-baseonly",
    "-fno-stack-clash-protection",
    "-fplugin=*",
    "-fplugin-arg-*",
    "-Wno-alloc-size-larger-than",
    "-Wimplicit-fallthrough=*",
    "-Wpacked-not-aligned",
    "-Wno-stringop-overflow",
    "-Wno-restrict",
    "-Wno-maybe-uninitialized",
    "-Werror=designated-init",
    # gcc 12+ kernels build with it; clang before 16 rejects it without an extra opt-in flag, and it
    # only changes code generation, which clangd does not do.
    "-ftrivial-auto-var-init=*",
)

DebPackage = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9+.-]+$")]
ClangdFlag = Annotated[str, StringConstraints(pattern=r"^-[^\s\"\\]+$")]
PinnedVersion = Annotated[str, StringConstraints(pattern=r"^[0-9]+(\.[0-9]+){1,3}$")]
Sha256 = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
# Allow-lists, not deny-lists: what a URL, a path or a ref may contain. Values are quoted on their
# way into a shell anyway (kdevbox.shell); these keep them meaningful to the tools that read them.


def allowed(pattern: str, what: str) -> AfterValidator:
    """A validator accepting text that fully matches pattern; the error says what is expected."""
    compiled = re.compile(pattern)

    def check(value: str) -> str:
        if not compiled.fullmatch(value):
            raise ValueError(f"expected {what}")
        return value

    return AfterValidator(check)


_URL_HOST = r"([A-Za-z0-9]([A-Za-z0-9.-]{0,252})|\[[0-9A-Fa-f:.]+\])(:[0-9]{1,5})?"
_URL_PATH = r"(/[A-Za-z0-9._~:/?#@&+,=%{}-]*)?"
_URL_CHARS = "letters, digits and . _ ~ : / ? # @ & + , = % - in the path"
HttpUrl = Annotated[str, allowed(rf"https?://{_URL_HOST}{_URL_PATH}", f"an http(s) URL ({_URL_CHARS})")]
# Remote data that decides what runs (kernel.org's release list): https, or a mirror on this machine.
SecureUrl = Annotated[
    str,
    allowed(
        rf"(https://{_URL_HOST}|http://(127\.0\.0\.1|localhost|\[::1\])(:[0-9]{{1,5}})?){_URL_PATH}",
        "an https URL (plain http only to 127.0.0.1 or localhost: a mirror on this machine)",
    ),
]
GitUrl = Annotated[
    str,
    allowed(
        rf"(https?|git|ssh)://([A-Za-z0-9._-]+@)?{_URL_HOST}{_URL_PATH}|file://{_URL_PATH}"
        r"|[A-Za-z0-9._-]+@[A-Za-z0-9.-]+:[A-Za-z0-9._~/+-]+",
        f"a git URL: https://, git://, ssh://, file:// or user@host:path ({_URL_CHARS})",
    ),
]


def _git_ref(ref: str) -> str:
    """A tag, branch or commit as git would accept it (git check-ref-format), and never an option."""
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._/+-]{0,127}", ref) or re.search(
        r"\.\.|//|/$|\.lock$|/\.", ref
    ):
        raise ValueError("expected a git tag, branch or commit (letters, digits and . _ / + -)")
    return ref


GitRef = Annotated[str, AfterValidator(_git_ref)]


class Clangd(Model):
    """clangd from the distribution, a user config that makes it accept kernel builds, and the tool
    that records compile_commands.json for non-kernel projects."""

    enabled: bool = Field(
        default=True, description="install clangd and its config in deploys/devbox.py (off: a build-only box)"
    )
    package: DebPackage = Field(
        default="clangd",
        pattern=r"^clangd(-[0-9]+)?$",
        description="distribution package: `clangd`, or a versioned one such as `clangd-19`, which "
        "is then linked as /usr/local/bin/clangd",
    )
    remove_flags: list[ClangdFlag] = Field(
        default_factory=lambda: list(DEFAULT_CLANGD_REMOVE_FLAGS),
        description="compiler flags clangd drops from compile_commands.json (globs allowed)",
    )
    compile_db: Literal["bear", "compiledb"] = Field(
        default="bear",
        description="tool that records compile_commands.json: bear (distribution) or "
        "compiledb (PyPI, in its own virtualenv)",
    )
    compiledb_version: PinnedVersion = "0.10.7"

    @property
    def versioned_binary(self) -> str | None:
        """/usr/bin/clangd-N for a versioned package; None when the package provides `clangd`."""
        return f"/usr/bin/{self.package}" if self.package != "clangd" else None


def parse_version(text: str) -> tuple[int, ...]:
    """(0, 10, 4) from '0.10.4', 'v0.10.4' or a Debian version such as '0.7.2-7+b1'."""
    match = re.match(r"^v?(?:[0-9]+:)?([0-9]+(?:\.[0-9]+)*)", text.strip())
    if not match:
        raise ValueError(f"not a version: {text!r}")
    return tuple(int(part) for part in match.group(1).split("."))


def format_version(version: tuple[int, ...]) -> str:
    return ".".join(str(part) for part in version)


# telescope.nvim's own READMEs: which neovim each line of releases needs. The first row whose ref
# pattern matches a ref gives that ref's requirement; `tag` rows are the defaults, newest first.
TELESCOPE_REQUIREMENTS: tuple[tuple[str, str, str | None], ...] = (
    # ref pattern       needs nvim  default tag for nvim versions from there on
    (r"master", "0.11.7", None),
    # Upstream tags 0.1.0 to 0.1.8 have no `v`; from v0.1.9 on they do (there is no 0.1.9).
    (r"v?0\.2\.[0-9]+", "0.10.5", "v0.2.2"),
    (r"v?0\.1\.9", "0.9.0", "v0.1.9"),
    (r"v?0\.1\.[0-9]+", "0.7.0", "0.1.8"),
)

TELESCOPE = "telescope.nvim"
# telescope's live_grep and grep_string need ripgrep; find_files uses fd (Debian: fdfind) when it can,
# else find, which is slow on a kernel tree. Package: the command verify runs.
SEARCH_TOOLS: dict[str, str] = {"ripgrep": "rg", "fd-find": "fdfind"}
# What builds a tree-sitter parser (cc -shared: the compiler and the C library's headers and crt files).
PARSER_BUILD_PACKAGES = ("gcc", "libc6-dev")
TELESCOPE_HEADING = "telescope-heading.nvim"
DEFAULT_PLUGINS: dict[str, tuple[str, str | None]] = {
    # name: (upstream, ref; None = the newest telescope tag the installed neovim supports)
    "plenary.nvim": ("https://github.com/nvim-lua/plenary.nvim", "v0.1.4"),
    TELESCOPE: ("https://github.com/nvim-telescope/telescope.nvim", None),
    # The head of its default branch (2024-06-11): its last tag, v0.7.0, parses rst with
    # vim.treesitter.parse_query, which neovim 0.11 removed.
    TELESCOPE_HEADING: (
        "https://github.com/crispgm/telescope-heading.nvim",
        "e85c0f69cb64048f56e76548dcb2f10277576df9",
    ),
}


def telescope_requirement(ref: str) -> tuple[int, ...] | None:
    """The oldest neovim that can run telescope at ref; None when the ref is not a known release."""
    for pattern, needs, _tag in TELESCOPE_REQUIREMENTS:
        if re.fullmatch(pattern, ref):
            return parse_version(needs)
    return None


def telescope_tag_for(nvim: tuple[int, ...]) -> str | None:
    """The newest telescope tag that supports this neovim; None when none does."""
    for _pattern, needs, tag in TELESCOPE_REQUIREMENTS:
        if tag is not None and nvim >= parse_version(needs):
            return tag
    return None


class Plugin(Model):
    """One neovim plugin: a git checkout at a pinned ref under kdevbox's native package."""

    url: GitUrl | None = Field(default=None, description="git URL; default: the plugin's upstream")
    ref: GitRef | None = Field(default=None, description="tag, branch or commit; default: pinned upstream")


class RstParser(Model):
    """tree-sitter-rst, built on the host into the parser the heading picker reads rst with:
    telescope-heading's plain rst parser misses every section after a double blank line, which the
    kernel's Documentation puts before each one."""

    url: GitUrl = Field(default="https://github.com/stsewd/tree-sitter-rst", description="git URL")
    ref: GitRef = Field(default="v0.2.0", description="tag, branch or commit")


class Neovim(Model):
    """neovim (distribution or official release), telescope with the heading extension, clangd LSP."""

    enabled: bool = Field(
        default=True, description="install neovim, its plugins and config in deploys/devbox.py"
    )
    source: Literal["auto", "apt", "release"] = Field(
        default="auto",
        description="auto: the distribution's neovim when its candidate is at least min_version, "
        "else the official release tarball",
    )
    min_version: PinnedVersion = "0.10"
    release_version: PinnedVersion = "0.12.5"
    release_sha256: Sha256 = "bce0f56eda1f1b1db6eee8f4133d7a38813ea07933837dd1777411ca384c6875"
    release_url: HttpUrl = Field(
        default="https://github.com/neovim/neovim/releases/download/v{version}/nvim-linux-x86_64.tar.gz",
        description="official tarball layout (nvim-linux-x86_64/bin/nvim); `{version}` is replaced by "
        "release_version",
    )
    plugins: dict[str, Plugin] = Field(
        default_factory=dict,
        description="per plugin name (plenary.nvim, telescope.nvim, telescope-heading.nvim): url and "
        "ref overrides; unset fields keep the defaults",
    )
    rst_parser: RstParser = Field(
        default_factory=RstParser,
        description="tree-sitter-rst for the heading picker (url, ref), built with the host's C compiler",
    )
    leader: Annotated[str, StringConstraints(min_length=1, max_length=8, pattern=r"^[^\n'\\]+$")] = " "
    manage_init: bool = Field(
        default=True,
        description="add one line loading kdevbox's config to your init.lua (or init.vim) in a "
        "marked block; false leaves your files alone (load it yourself: `lua require('kdevbox')`)",
    )

    @model_validator(mode="after")
    def _known_plugins(self) -> Neovim:
        unknown = sorted(set(self.plugins) - set(DEFAULT_PLUGINS))
        if unknown:
            raise ValueError(
                f"unknown plugin {', '.join(unknown)}: kdevbox manages {', '.join(DEFAULT_PLUGINS)}"
            )
        return self

    @property
    def release_download(self) -> str:
        return self.release_url.replace("{version}", self.release_version)


IniValue = Annotated[str, StringConstraints(pattern=r"^[^\n\[\]]*$")] | bool | int


class Wsl(Model):
    """WSL2 only (other hosts skip it): /etc/wsl.conf key by key, /dev/kvm for QEMU guests."""

    systemd: bool = Field(default=True, description="[boot] systemd: services such as sshd and libvirt")
    default_user: bool = Field(
        default=True, description="[user] default = the developer account, so a new shell is theirs"
    )
    settings: dict[
        Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9._-]+$")],
        dict[Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9._-]+$")], IniValue],
    ] = Field(
        default_factory=dict,
        description="more wsl.conf keys by section, e.g. {'network': {'hostname': 'kbox'}}",
    )
    kvm_group: bool = Field(default=True, description="add the developer to the kvm group")

    def wsl_conf(self, user: str) -> dict[str, dict[str, str]]:
        """The wsl.conf keys kdevbox sets, as wsl.conf spells values."""
        values: dict[str, dict[str, str]] = {}
        if self.systemd:
            values.setdefault("boot", {})["systemd"] = "true"
        if self.default_user:
            values.setdefault("user", {})["default"] = user
        for section, keys in self.settings.items():
            for key, value in keys.items():
                shown = str(value).lower() if isinstance(value, bool) else str(value)
                values.setdefault(section, {})[key] = shown
        return values


KconfigLine = Annotated[
    str,
    StringConstraints(
        pattern=r"^(CONFIG_[A-Za-z0-9_]+=([ynm]|-?[0-9]+|0x[0-9a-fA-F]+|\"[^\"'\\\n$`]*\")"
        r"|# CONFIG_[A-Za-z0-9_]+ is not set)$"
    ),
]
SelftestTarget = Annotated[str, StringConstraints(pattern=r"^[a-z0-9_][a-z0-9_./-]*$")]
KernelRelease = Annotated[str, StringConstraints(pattern=r"^[0-9]+\.[0-9]+[A-Za-z0-9._+~-]*$")]


def _path_in_home_or_absolute(path: str) -> str:
    """Paths kdevbox builds in, mounts or removes: absolute or under ~/, portable file-name
    characters only (Kbuild breaks on spaces and colons, QEMU's -virtfs on commas), no `.`/`..`."""
    if not re.fullmatch(r"(~/|/)[A-Za-z0-9._+@/-]*", path):
        raise ValueError(
            "expected a path starting with / or ~/ of letters, digits and . _ + @ - / only "
            "(kernel builds and QEMU options break on others)"
        )
    if any(part in (".", "..") for part in path.split("/")):
        raise ValueError("expected a path without . or .. segments (name the directory itself)")
    return path


def _a_directory_of_its_own(path: str) -> str:
    """A path kdevbox shares or deletes below: never the root or the whole home."""
    if path.rstrip("/") in ("", "~"):
        raise ValueError("expected a directory of its own, not the whole root or home")
    return path


HomePath = Annotated[str, AfterValidator(_path_in_home_or_absolute)]
OwnDirectory = Annotated[
    str, AfterValidator(_path_in_home_or_absolute), AfterValidator(_a_directory_of_its_own)
]
# A name that becomes a file or directory name: never `.`, `..` or hidden-only dots.


def _file_name(name: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9._-]+", name) or set(name) == {"."}:
        raise ValueError("expected a file name of letters, digits and . _ - (not only dots)")
    return name


FileName = Annotated[str, AfterValidator(_file_name)]
IfName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{1,15}$")]


DEBUG_FRAGMENT = "debug"  # templates/kernel/debug.config: DWARF, gdb's kernel helpers, vmcoreinfo


class Kernel(Model):
    """A kernel tree to fetch, configure from fragments, build out of tree, and maybe install."""

    source: Literal["git", "release", "path"] = Field(
        default="git",
        description="git: a tag of git_url; release: a kernel.org channel; path: a tree already on the host",
    )
    git_url: GitUrl = "https://git.kernel.org/pub/scm/linux/kernel/git/stable/linux.git"
    tag: GitRef = Field(default="v6.12.10", description="for source=git: the tag (or branch) to build")
    channel: Annotated[str, StringConstraints(pattern=r"^(mainline|stable|longterm)(:[0-9]+\.[0-9]+)?$")] = (
        Field(
            default="longterm", description="for source=release: mainline, stable, longterm, or longterm:6.6"
        )
    )
    releases_url: SecureUrl = Field(
        default="https://www.kernel.org/releases.json",
        description="kernel.org's release list: https (or http to this machine, for a local mirror)",
    )
    path: HomePath | None = Field(
        default=None, description="for source=path: the tree (e.g. /usr/src/linux-source-6.1)"
    )
    source_dir: OwnDirectory = Field(
        default="~/src/linux", description="where git and release trees go (a release adds -<version>)"
    )
    build_root: OwnDirectory = Field(default="~/build", description="out-of-tree builds: <build_root>/<name>")
    name: FileName = Field(default="kdevbox", description="this configuration's name: its build dir")
    base: Literal["defconfig", "tinyconfig", "olddefconfig", "localmodconfig"] = Field(
        default="defconfig",
        description="olddefconfig and localmodconfig start from the running kernel's config",
    )
    fragments: list[Annotated[str, StringConstraints(pattern=r"^[a-z0-9_-]+$")]] = Field(
        default_factory=list, description="Kconfig fragments shipped in templates/kernel/ (e.g. guest)"
    )
    options: list[KconfigLine] = Field(
        default_factory=list, description="inline Kconfig lines, e.g. CONFIG_KASAN=y"
    )
    localversion: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9._+-]*$")] = "-kdevbox"
    ccache: bool = True
    compile_commands: Literal["gen", "bear", "compiledb"] = Field(
        default="gen",
        description="gen: the tree's scripts/clang-tools/gen_compile_commands.py; "
        "bear/compiledb record a build",
    )
    install: bool = Field(default=False, description="modules_install + install (never by default)")
    wsl_kernel_path: (
        Annotated[str, StringConstraints(pattern=r"^/mnt/[a-z]/[A-Za-z0-9._+@ /-]*[A-Za-z0-9._+@-]$")] | None
    ) = Field(
        default=None,
        description="on WSL2: copy bzImage here (a Windows drive, e.g. /mnt/c/Users/me/kdevbox/bzImage) "
        "instead of installing",
    )
    uninstall: list[KernelRelease] = Field(
        default_factory=list, description="for deploys/kernel_uninstall.py: kernel releases to remove"
    )
    selftests: list[SelftestTarget] = Field(
        default_factory=list,
        description="tools/testing/selftests TARGETS built against this kernel; `kdevbox-vm selftest` "
        "runs them in the guest",
    )

    @property
    def debug(self) -> bool:
        """A build to debug: gdb, its kernel helpers and `kdevbox-vm debug` are set up for it."""
        return DEBUG_FRAGMENT in self.fragments

    @model_validator(mode="after")
    def _path_for_path_source(self) -> Kernel:
        if self.source == "path" and self.path is None:
            raise ValueError("source 'path' needs `path`: the kernel tree on the host")
        return self

    @field_validator("fragments")
    @classmethod
    def _shipped_fragments(cls, names: list[str]) -> list[str]:
        shipped = sorted(p.stem for p in (TEMPLATES / "kernel").glob("*.config"))
        unknown = [name for name in names if name not in shipped]
        if unknown:
            raise ValueError(
                f"no fragment {', '.join(unknown)} in templates/kernel/; shipped: {', '.join(shipped)}"
            )
        return names


# What makes a guest image bootable and reachable: debootstrapped once per suite and mirror, cached.
# What virtme-ng puts on PATH that vng runs by name: all linked, or vng finds no virtme-run, and
# virtme-run no virtme-prep-kdir-mods for a build with modules (it fails before booting it).
VIRTME_NG_COMMANDS = ("vng", "virtme-run", "virtme-configkernel", "virtme-prep-kdir-mods")
GUEST_ESSENTIALS = (
    *("systemd-sysv", "udev", "kmod", "iproute2", "openssh-server", "sudo", "python3"),
    "linux-image-amd64",  # the distribution kernel and initrd, for booting without a kdevbox build
)


class Guest(Model):
    """A QEMU guest image built on the host, and the kdevbox-vm script that boots it."""

    enabled: bool = Field(
        default=True, description="build the image and install kdevbox-vm in deploys/devbox.py"
    )
    name: Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9-]{0,30}$")] = Field(
        default="kdevbox-guest", description="image name and the guest's hostname; `ssh <name>` reaches it"
    )
    suite: Annotated[str, StringConstraints(pattern=r"^[a-z]+$")] = "bookworm"
    mirror: HttpUrl = "http://deb.debian.org/debian"
    packages: list[DebPackage] = Field(default_factory=list, description="more packages in the image")
    size: Annotated[str, StringConstraints(pattern=r"^[0-9]+[MG]$")] = "4G"
    image_dir: OwnDirectory = "~/.local/share/kdevbox/guests"
    memory: Annotated[str, StringConstraints(pattern=r"^[0-9]+[MG]$")] = "2G"
    cpus: Annotated[int, Field(ge=1, le=64)] = 2
    ssh_port: Annotated[int, Field(ge=1024, le=65535)] = 10022
    accel: Literal["auto", "kvm", "tcg"] = Field(
        default="auto", description="auto: KVM when a bounded probe shows it works for you, else TCG"
    )
    share: OwnDirectory | None = Field(
        default=None, description="a host directory (e.g. ~/src) shared into the guest over 9p at /mnt/host"
    )
    network: Literal["user", "bridge"] = Field(
        default="user",
        description="user: QEMU's NAT, SSH forwarded on 127.0.0.1:ssh_port; bridge: a tap on a host "
        "bridge, the guest at `address` (guests on one bridge reach each other; no NAT out)",
    )
    bridge: IfName = Field(default="kdevbr0", description="bridge: the host bridge's name")
    bridge_address: IPv4Interface = Field(
        default=IPv4Interface("10.77.0.1/24"),
        description="bridge: the host's address on the bridge; its network is the guests' range and "
        "must not overlap the host's routes",
    )
    address: IPv4Address | None = Field(
        default=None, description="bridge: the guest's address (default: the range's second address)"
    )
    tap: IfName | None = Field(default=None, description="bridge: the guest's tap (default: from its name)")
    virtme_ng: bool = Field(
        default=True,
        description="virtme-ng (`vng`), the boot-your-build tool many kernel developers use, beside "
        "kdevbox-vm (own virtualenv, with busybox-static)",
    )
    virtme_ng_version: PinnedVersion = "1.42"

    @model_validator(mode="after")
    def _address_on_bridge(self) -> Guest:
        if self.tap_name == self.bridge:
            raise ValueError(f"tap {self.tap_name} is also the bridge's name: give them different names")
        if self.network == "bridge":
            network = self.bridge_address.network
            if self.guest_address not in network or self.guest_address == self.bridge_address.ip:
                raise ValueError(
                    f"address {self.guest_address} must be in {network} and not the bridge's own "
                    f"{self.bridge_address.ip}"
                )
        return self

    @property
    def guest_address(self) -> IPv4Address:
        return self.address or self.bridge_address.network[2]

    @property
    def tap_name(self) -> str:
        """Interface names have 15 characters at most: long guest names get a digest instead."""
        if self.tap:
            return self.tap
        name = f"tap-{self.name}"
        return name if len(name) <= 15 else "tap-" + hashlib.sha256(self.name.encode()).hexdigest()[:11]

    @property
    def ssh_endpoint(self) -> tuple[str, int]:
        """Where the host reaches the guest's sshd: QEMU's forward, or the guest's bridge address."""
        if self.network == "bridge":
            return str(self.guest_address), 22
        return "127.0.0.1", self.ssh_port

    @property
    def mac(self) -> str:
        """A stable locally administered MAC per guest: guests on one bridge need distinct ones."""
        digest = hashlib.sha256(self.name.encode()).digest()
        return "52:54:00:" + ":".join(f"{b:02x}" for b in digest[:3])

    @property
    def extra_packages(self) -> list[str]:
        """The configured packages the cached base does not already have."""
        return [p for p in self.packages if p not in GUEST_ESSENTIALS]


class PatchMail(Model):
    """Tools for mailing patches on top of `git.sendemail`: git send-email and b4."""

    enabled: bool = Field(default=True, description="install git-email and b4 in deploys/devbox.py")
    b4_version: PinnedVersion = Field(
        default="0.14.3", description="b4 from PyPI, in its own virtualenv (0.14.x runs on Python 3.8+)"
    )


# Low-level tools by Debian/Ubuntu package name, and the command each puts on PATH (verify runs it).
TOOL_COMMANDS: dict[str, str] = {
    "msr-tools": "rdmsr",
    "trace-cmd": "trace-cmd",
    "bpftrace": "bpftrace",
    "gdb": "gdb",
    "cscope": "cscope",
    "universal-ctags": "ctags",
    "exuberant-ctags": "ctags",
    "sshuttle": "sshuttle",
}
DEFAULT_TOOLS: tuple[str, ...] = (
    "msr-tools",
    "trace-cmd",
    "bpftrace",
    "gdb",
    "cscope",
    "universal-ctags",
    "sshuttle",
)


class Tools(Model):
    """Low-level tools from the distribution. A package this host's apt sources lack is named in
    the deploy's output and fails verification; the rest still install."""

    packages: list[DebPackage] = Field(default_factory=lambda: list(DEFAULT_TOOLS))
    load_msr: bool = Field(
        default=True,
        description="with msr-tools: load the msr module now and at boot, where the host's kernel has it",
    )

    @property
    def wants_msr(self) -> bool:
        return self.load_msr and "msr-tools" in self.packages


class HostConfig(Model):
    """Everything kdevbox does to one host. Field names are the host data keys."""

    user: Username | None = Field(
        default=None, description="developer account; default: the account the connection logs in as"
    )
    proxy: Proxy = Field(default_factory=Proxy)
    apt_proxy: AptProxy = Field(
        default_factory=AptProxy, description="apt's proxy; when not set at all, apt uses `proxy`"
    )
    git: Git = Field(default_factory=Git)
    clangd: Clangd = Field(default_factory=Clangd)
    neovim: Neovim = Field(default_factory=Neovim)
    wsl: Wsl = Field(default_factory=Wsl)
    kernel: Kernel = Field(default_factory=Kernel)
    guest: Guest = Field(default_factory=Guest)
    patch_mail: PatchMail = Field(default_factory=PatchMail)
    tools: Tools = Field(default_factory=Tools)

    @model_validator(mode="before")
    @classmethod
    def _apt_follows_proxy(cls, data: Any) -> Any:
        """apt keeps its own `apt_proxy`; a host that sets only `proxy` gets it for apt too."""
        if isinstance(data, dict) and "apt_proxy" not in data and isinstance(data.get("proxy"), dict):
            apt = {key: data["proxy"][key] for key in ("http", "https", "no_proxy") if key in data["proxy"]}
            data = {**data, "apt_proxy": apt}
        return data
