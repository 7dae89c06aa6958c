"""pyinfra operations kdevbox needs and pyinfra lacks, in pyinfra's own style: one resource each,
facts first, commands yielded. Steps composed of operations are in kdevbox.steps."""

from __future__ import annotations

import hashlib
import json
import posixpath
from collections.abc import Generator

from pyinfra import host
from pyinfra.api import OperationError, QuoteString, StringCommand, operation
from pyinfra.facts.files import File, Sha256File
from pyinfra.facts.pip import PipPackages

from kdevbox.facts import GitCheckout, NetworkState, Stamp
from kdevbox.layout import CHECKOUT_REF_KEY, LINK_ALIAS, PARSER_SOURCE_SUFFIX, TARBALL_SOURCE_MARKER
from kdevbox.secrets import mask_credentials
from kdevbox.shell import sourcing, words


def sha256_text(content: str) -> str:
    return hashlib.sha256(content.encode()).hexdigest()


def inputs_digest(*inputs: object) -> str:
    """A short stamp of what a result was made from (JSON-able inputs): equal stamps, no redo."""
    return sha256_text(json.dumps(inputs))[:16]


@operation()
def pip_package(venv: str, package: str, version: str, hint: str = "") -> Generator[StringCommand]:
    """package at version in the virtualenv venv; an install that fails is one line naming the
    package and hint (where it came from, what to change), not pip's traceback.

    + venv: the virtualenv
    + package: the PyPI name
    + version: the exact version
    + hint: said after the package when the install fails

    **Example:**

    .. code:: python

        pip_package(venv="/opt/kdevbox/venvs/b4", package="b4", version="0.14.3", hint="from PyPI")
    """
    pip_command = posixpath.join(venv, "bin", "pip")
    installed = host.get_fact(PipPackages, pip=pip_command)
    if version in {
        v for name, versions in installed.items() if name.lower() == package.lower() for v in versions
    }:
        host.noop(f"{package} {version} is installed in {venv}")
        return
    wanted = f"{package}=={version}"
    yield StringCommand(
        "if ! out=$(",
        QuoteString(pip_command),
        "install -q --disable-pip-version-check",
        QuoteString(wanted),
        '2>&1); then echo "kdevbox: could not install"',
        QuoteString(f"{wanted} {hint}".rstrip()),
        '"($(printf %s "$out" | grep -v "^ *$" | tail -n 1))" >&2; exit 1; fi',
    )


@operation()
def text_file(
    path: str, sha256: str, mode: str, user: str, group: str, present: bool = True
) -> Generator[StringCommand]:
    """path holding the operation's stdin (`_stdin=content`), written whole or not at all.

    The content never appears in a command line, a diff or pyinfra's output (it may be a secret):
    it travels on stdin into a temp file created 0600 beside path, gets its owner and mode, then is
    renamed over path. Whatever stood at path (a link, a FIFO) is replaced, never written through
    or read: only a regular file is hashed. sha256 is the content's digest, so a rerun with the same
    content changes nothing. Under a home, run it as the home's owner (`Target.as_user`).

    + path: the file
    + sha256: the digest of the content given on stdin
    + mode: its mode (octal string)
    + user: its owner
    + group: its group
    + present: whether the file should exist

    **Example:**

    .. code:: python

        text_file(path="/etc/kdevbox/proxy.env", sha256=sha256_text(text), mode="600",
                  user="root", group="root", _stdin=text)
    """
    # The facts' commands read no stdin: without _stdin=None they would get the content too, and a
    # file over a pipe's 64 KiB breaks their pipe (the command exits without reading it).
    current = host.get_fact(File, path=path, _stdin=None)
    if not present:
        if current is None:
            host.noop(f"{path} is absent")
        else:
            yield StringCommand("rm", "-f", QuoteString(path))
        return
    if (
        current
        and (current["user"], current["group"], current["mode"]) == (user, group, int(mode))
        and host.get_fact(Sha256File, path=path, _stdin=None) == sha256
    ):
        host.noop(f"{path} is up to date")
        return
    template = QuoteString(posixpath.join(posixpath.dirname(path), ".kdevbox.XXXXXX"))
    yield StringCommand(
        "umask 077 && mkdir -p",
        QuoteString(posixpath.dirname(path)),
        "&& tmp=$(mktemp",
        template,
        ') && cat > "$tmp" && chown',
        QuoteString(f"{user}:{group}"),
        '"$tmp" && chmod',
        mode,
        '"$tmp" && mv -f "$tmp"',
        QuoteString(path),
    )


@operation()
def git_checkout(
    path: str, url: str, ref: str, hint: str = "", env_file: str | None = None, via: str = ""
) -> Generator[StringCommand]:
    """A shallow checkout of ref (tag, branch or commit) from url at path; moves when ref changes.

    Equivalent to `git clone --depth 1 -b ref`, but also for commits, and a changed ref fetches
    just that ref into the existing checkout. Local changes are never discarded: git refuses the
    switch and the operation fails. Run it as the checkout's owner (`_su_user`). A fetch that fails
    is one line naming ref, url and hint (the setting that changes where it comes from).

    + path: the checkout
    + url: the remote (origin)
    + ref: tag, branch or commit
    + hint: what the user can change when the fetch fails
    + env_file: a 0600 file of proxy variables the fetch exports first (see kdevbox.tasks.proxy)
    + via: the proxy, masked, for the failure message

    **Example:**

    .. code:: python

        git_checkout(path="/home/ada/src/linux", url="https://git.kernel.org/...", ref="v6.12.10",
                     hint="set kernel.git_url to a mirror", _su_user="ada")
    """
    current = host.get_fact(GitCheckout, path=path)
    if current and (current.url, current.ref) == (url, ref) and current.head:
        host.noop(f"{path} is at {ref}")
        return
    git = StringCommand("git", "-C", QuoteString(path))
    if current is None:
        yield StringCommand(
            "if [ -e",
            QuoteString(path),
            '] && [ -n "$(ls -A',
            QuoteString(path),
            ')" ]; then echo',
            QuoteString(f"{path} exists and is not a git checkout: move it away and run again"),
            ">&2; exit 1; fi",
        )
        yield StringCommand("git", "init", "-q", QuoteString(path))
    if current is None or current.url != url:
        # add, or set-url when a run killed after `git init` (or a user) left origin unset or elsewhere
        yield StringCommand(
            git,
            "remote",
            "add",
            "origin",
            QuoteString(url),
            "2>/dev/null ||",
            git,
            "remote",
            "set-url",
            "origin",
            QuoteString(url),
        )
    # A tag is fetched as a local tag too, so `git describe` (and the kernel's version) sees it.
    fetch = StringCommand(git, "fetch", "-q", "--depth", "1", "origin")
    yield StringCommand(
        sourcing(env_file),
        "if !",
        fetch,
        QuoteString(f"+refs/tags/{ref}:refs/tags/{ref}"),
        "2>/dev/null && ! out=$(",
        fetch,
        QuoteString(ref),
        '2>&1); then echo "kdevbox: could not fetch"',
        QuoteString(f"{ref} from {mask_credentials(url)}" + (f" through proxy {via}" if via else "")),
        '"($(printf %s "$out" | tail -n 1))"',
        QuoteString(f"; {hint}" if hint else ""),
        ">&2; exit 1; fi",
    )
    yield StringCommand(git, "-c", "advice.detachedHead=false", "checkout", "-q", "--detach", "FETCH_HEAD")
    yield StringCommand(git, "config", CHECKOUT_REF_KEY, QuoteString(ref))


@operation()
def tree_sitter_parser(
    grammar: str, dest: str, source: str, present: bool = True
) -> Generator[StringCommand]:
    """A tree-sitter parser as neovim loads it: a shared object built with the host's C compiler from
    a grammar's checkout (src/parser.c, and src/scanner.c when the grammar has one).

    dest is built beside itself and renamed, then records source in <dest>.source: a rerun from the
    same source changes nothing, another source rebuilds, and a build killed half-way is redone.
    Run it as the owner of the checkout (`_su_user`): root compiles nothing the developer can edit.

    + grammar: the grammar's checkout, its src/ as the grammar's repository has it
    + dest: the parser (a .so)
    + source: a stamp of what the checkout holds (say, a digest of its url and ref)
    + present: whether the parser should exist

    **Example:**

    .. code:: python

        tree_sitter_parser(grammar="/home/ada/.local/share/kdevbox/tree-sitter/rst",
                           dest="/home/ada/.local/share/kdevbox/tree-sitter/parser/rst.so",
                           source=inputs_digest(url, ref), _su_user="ada")
    """
    stamp = dest + PARSER_SOURCE_SUFFIX
    exists = bool(host.get_fact(File, path=dest))
    if not present:
        if exists or host.get_fact(File, path=stamp):
            yield StringCommand("rm", "-f", QuoteString(dest), QuoteString(stamp))
        else:
            host.noop(f"{dest} is absent")
        return
    if exists and host.get_fact(Stamp, path=stamp) == source:
        host.noop(f"{dest} is built from {grammar}")
        return
    yield StringCommand(
        "set -e; mkdir -p",
        QuoteString(posixpath.dirname(dest)),
        "; tmp=$(mktemp",
        QuoteString(dest + ".XXXXXX"),
        "); trap 'rm -f \"$tmp\"' EXIT; cd",
        QuoteString(posixpath.join(grammar, "src")),
        '; set -- parser.c; if [ -f scanner.c ]; then set -- "$@" scanner.c; fi;',
        'if ! out=$(cc -O2 -shared -fPIC -I . "$@" -o "$tmp" 2>&1); then echo',
        QuoteString(f"kdevbox: could not build the tree-sitter parser {dest} from {grammar}/src"),
        '"($(printf %s "$out" | tail -n 1))" >&2; exit 1; fi; chmod 644 "$tmp"; mv -f "$tmp"',
        QuoteString(dest),
        "; echo",  # renamed over the stamp too: whatever stood there is replaced, not written through
        QuoteString(source),
        '> "$tmp"; mv -f "$tmp"',
        QuoteString(stamp),
    )


@operation()
def install_tarball(
    url: str,
    sha256: str,
    dest: str,
    strip_components: int = 1,
    hint: str = "",
    env_file: str | None = None,
    via: str = "",
) -> Generator[StringCommand]:
    """Download url on the host, check its sha256, unpack it to dest: all or nothing.

    Everything happens in a temp dir beside dest; a checksum mismatch or a failed unpack leaves
    dest (and whatever links to it) as it was. dest records the sha256 it came from, so a rerun
    with the same tarball changes nothing and a new one replaces it whole. A download that fails is
    one line naming url and hint (the setting that changes where it comes from).

    + url: the tarball
    + sha256: its published digest
    + dest: the directory it becomes
    + strip_components: leading path parts of the tarball to drop
    + hint: what the user can change when the download fails
    + env_file: a 0600 file of proxy variables the download exports first (see kdevbox.tasks.proxy)
    + via: the proxy, masked, for the failure message

    **Example:**

    .. code:: python

        install_tarball(url="https://.../nvim-linux-x86_64.tar.gz", sha256="...", dest="/opt/nvim-0.12.5",
                        hint="set neovim.release_url to a mirror")
    """
    if host.get_fact(Stamp, path=posixpath.join(dest, TARBALL_SOURCE_MARKER)) == sha256:
        host.noop(f"{dest} is unpacked from {url}")
        return
    parent = posixpath.dirname(dest.rstrip("/"))
    yield StringCommand("mkdir", "-p", QuoteString(parent))
    yield StringCommand(
        "set -e; tmp=$(mktemp -d",
        QuoteString(posixpath.join(parent, ".kdevbox-unpack.XXXXXX")),
        "); trap 'rm -rf \"$tmp\"' EXIT;",
        sourcing(env_file),
        'if ! curl -fsSL --retry 2 --connect-timeout 30 -o "$tmp/download"',
        QuoteString(url),
        '2>"$tmp/error"; then echo "kdevbox: could not download"',
        QuoteString(mask_credentials(url) + (f" through proxy {via}" if via else "")),
        '"($(tail -n 1 "$tmp/error"))"',
        QuoteString(f"; {hint}" if hint else ""),
        ">&2; exit 1; fi;",
        'got=$(sha256sum "$tmp/download" | cut -d" " -f1);',
        'if [ "$got" !=',
        QuoteString(sha256),
        "]; then echo",
        QuoteString(f"sha256 mismatch for {url}: expected {sha256}, got"),
        '"$got; nothing was installed" >&2; exit 1; fi;',
        'mkdir "$tmp/tree"; tar -xf "$tmp/download" -C "$tmp/tree" --strip-components',
        str(strip_components),
        "--no-same-owner;",
        "echo",
        QuoteString(sha256),
        '> "$tmp/tree/' + TARBALL_SOURCE_MARKER + '"; chmod 755 "$tmp/tree";',
        "if [ -e",
        QuoteString(dest),
        "]; then mv",
        QuoteString(dest),
        '"$tmp/old"; fi; mv "$tmp/tree"',
        QuoteString(dest),
    )


def _foreign(name: str, what: str, setting: str) -> OperationError:
    return OperationError(
        f"{name} exists and kdevbox did not make it ({what}): kdevbox changes no device of yours; "
        f"choose another {setting}"
    )


@operation()
def network_bridge(bridge: str, address: str) -> Generator[str]:
    """A bridge holding exactly address, up, marked as kdevbox's (ifalias `kdevbox`).

    What `ip` makes now; systemd-networkd files (written beside) make it again at boot. A bridge of
    that name kdevbox did not make is taken over only when it holds no other address; any other
    device of that name is refused. kdevbox never removes a bridge: other guests may be on it.

    + bridge: the bridge's name
    + address: the host's address on it, as address/prefix

    **Example:**

    .. code:: python

        network_bridge(bridge="kdevbr0", address="10.77.0.1/24")
    """
    current = host.get_fact(NetworkState).links.get(bridge)
    if current is not None and current.kind != "bridge":
        raise OperationError(f"{bridge} exists and is not a bridge: choose another guest.bridge")
    if current is not None and not current.made_by_kdevbox and current.addresses not in ((), (address,)):
        raise _foreign(bridge, f"a bridge with {', '.join(current.addresses)}", "guest.bridge")
    if current is None:
        yield words("ip", "link", "add", bridge, "type", "bridge")
    if current is None or not current.made_by_kdevbox:
        yield words("ip", "link", "set", "dev", bridge, "alias", LINK_ALIAS)
    if current is None or current.addresses != (address,):
        if current is not None and current.addresses:
            yield words("ip", "addr", "flush", "dev", bridge)
        yield words("ip", "addr", "add", address, "dev", bridge)
    if current is None or not current.up:
        yield words("ip", "link", "set", bridge, "up")


@operation()
def guest_tap(tap: str, user: str, bridge: str | None = None, present: bool = True) -> Generator[str]:
    """A guest's tap, owned by user (QEMU runs as them, unprivileged), on bridge and up; or gone.

    Only taps kdevbox made (ifalias `kdevbox`) for user are changed or removed: a device of that
    name that kdevbox did not make, or another user's tap, is refused when present=True and left
    alone when present=False. A kdevbox tap without an owner is made again.

    + tap: the tap's name
    + user: the developer whose guest uses it
    + bridge: the bridge it is a port of (with present=True)
    + present: whether the tap should exist

    **Example:**

    .. code:: python

        guest_tap(tap="tap-guest", user="ada", bridge="kdevbr0")
        guest_tap(tap="tap-guest", user="ada", present=False)
    """
    port = host.get_fact(NetworkState).links.get(tap)
    ours = port is not None and port.kind == "tun" and port.made_by_kdevbox and port.owner == user
    if not present:
        if ours:
            yield words("ip", "link", "del", tap)
        return
    assert bridge is not None, "a tap that should exist needs its bridge"
    if port is not None and not (port.made_by_kdevbox or (port.kind == "tun" and port.owner == user)):
        raise _foreign(tap, f"a {port.kind or 'network'} device", "guest.tap")
    if port is not None and port.kind == "tun" and port.owner not in (user, None):
        # Another developer's guest on this host: theirs to keep.
        raise OperationError(
            f"{tap} is the guest tap of {port.owner}: give your guest its own guest.tap (and guest.name, "
            "guest.ssh_port)"
        )
    if port is not None and (port.kind != "tun" or port.owner != user):
        yield words("ip", "link", "del", tap)
        port = None
    if port is None:
        yield words("ip", "tuntap", "add", "dev", tap, "mode", "tap", "user", user)
    if port is None or not port.made_by_kdevbox:
        yield words("ip", "link", "set", "dev", tap, "alias", LINK_ALIAS)
    if port is None or port.master != bridge:
        yield words("ip", "link", "set", tap, "master", bridge)
    if port is None or not port.up:
        yield words("ip", "link", "set", tap, "up")
