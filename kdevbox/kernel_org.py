"""kernel.org channels (mainline, stable, longterm, longterm:6.6) resolved to a version, a tarball and
its published sha256, on the controller, before any host is touched."""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass
from functools import cache
from urllib.parse import urlsplit

import requests

from kdevbox.config import Proxy
from kdevbox.secrets import mask_credentials

TIMEOUT = (10, 30)  # connect, read: seconds


class KernelOrgError(Exception):
    """kernel.org could not say which release a channel means; the message says why and what to do."""


@dataclass(frozen=True)
class KernelOrgRelease:
    channel: str
    version: str
    tarball_url: str
    sha256: str


Proxies = tuple[tuple[str, str], ...]  # requests' proxies as pairs: hashable, so resolve() caches


def _get(url: str, proxies: Proxies) -> requests.Response:
    try:
        response = requests.get(url, timeout=TIMEOUT, proxies=dict(proxies) or None)
        response.raise_for_status()
    except requests.RequestException as exc:
        via = mask_credentials(dict(proxies).get("https") or dict(proxies).get("http") or "")
        raise KernelOrgError(
            mask_credentials(
                f"cannot fetch {url}{f' through proxy {via}' if via else ''}: {exc.__class__.__name__}: "
                f"{exc}; check the network and `proxy`, or set kernel.releases_url to a mirror, or use "
                "kernel.source 'git'"
            )
        ) from None
    return response


def proxies_for(proxy: Proxy) -> Proxies:
    """`proxy` as requests takes it: the controller asks kernel.org through it too."""
    pairs = {"http": proxy.http, "https": proxy.https}
    found = [(scheme, str(url)) for scheme, url in pairs.items() if url is not None]
    if found and proxy.no_proxy:
        found.append(("no_proxy", ",".join(proxy.no_proxy)))
    return tuple(found)


def _pick(channel: str, releases: list[dict[str, object]]) -> dict[str, object]:
    moniker, _, series = channel.partition(":")
    for release in releases:  # kernel.org lists the newest of each line first
        version = str(release.get("version", ""))
        if release.get("moniker") == moniker and (not series or version.startswith(series + ".")):
            return release
    offered = ", ".join(f"{r.get('moniker')} {r.get('version')}" for r in releases)
    raise KernelOrgError(f"kernel.org has no release on channel '{channel}'; it offers: {offered}")


def _published_sha256(tarball_url: str, proxies: Proxies) -> str:
    """The tarball's sum from sha256sums.asc beside it (kernel.org publishes one per directory)."""
    sums_url = posixpath.join(posixpath.dirname(tarball_url), "sha256sums.asc")
    name = posixpath.basename(tarball_url)
    for line in _get(sums_url, proxies).text.splitlines():
        match = re.fullmatch(r"([0-9a-f]{64})\s+\*?(\S+)", line.strip())
        if match and match.group(2) == name:
            return match.group(1)
    raise KernelOrgError(
        f"{sums_url} lists no sha256 for {name}: kdevbox will not unpack an unchecked tarball"
    )


@cache
def resolve(channel: str, releases_url: str, proxies: Proxies = ()) -> KernelOrgRelease:
    """The release a channel names right now (asked once per run: every host gets the same one)."""
    try:
        releases = _get(releases_url, proxies).json()["releases"]
    except (ValueError, KeyError, TypeError):
        raise KernelOrgError(f"{releases_url} is not kernel.org's releases.json format") from None
    release = _pick(channel, releases)
    source = release.get("source")
    if not isinstance(source, str) or not source:
        raise KernelOrgError(
            f"kernel.org publishes no tarball for {channel} {release.get('version')}: use kernel.source 'git'"
        )
    if not re.search(r"\.tar\.(xz|gz)$", source) or "/t/" in source:
        raise KernelOrgError(
            f"{channel} {release.get('version')} is a snapshot ({source}) without published sums: "
            f"use kernel.source 'git' with tag v{release.get('version')}"
        )
    version = str(release.get("version"))
    _check_remote(releases_url, version, source)
    return KernelOrgRelease(channel, version, source, _published_sha256(source, proxies))


VERSION = re.compile(r"[0-9]+\.[0-9]+(\.[0-9]+)?(-rc[0-9]+)?")


def _check_remote(releases_url: str, version: str, source: str) -> None:
    """releases.json is data from the network: its version names a directory and reaches make, its
    URL is downloaded as root's tool. Both must be what kernel.org publishes, or nothing runs."""
    if not VERSION.fullmatch(version):
        raise KernelOrgError(f"{releases_url} names a version {version!r} that is not a kernel version")
    ours, theirs = urlsplit(releases_url), urlsplit(source)
    if theirs.scheme != ours.scheme or not _same_site(ours.hostname or "", theirs.hostname or ""):
        raise KernelOrgError(
            f"{releases_url} points the tarball of {version} at {source}, off {ours.scheme}://{ours.hostname}"
        )
    if not re.fullmatch(rf"linux-{re.escape(version)}\.tar\.(xz|gz)", posixpath.basename(theirs.path)):
        raise KernelOrgError(
            f"{releases_url}: the tarball of {version} is {source}, not linux-{version}.tar.*"
        )


def _same_site(ours: str, theirs: str) -> bool:
    """theirs is ours or a sibling under the same parent domain (www.kernel.org -> cdn.kernel.org)."""
    if ours.replace(".", "").isdigit() or ":" in ours:  # an address: only itself
        return theirs == ours
    parent = ours.split(".", 1)[1] if ours.count(".") >= 2 else ours
    return theirs == ours or theirs.endswith("." + parent)
