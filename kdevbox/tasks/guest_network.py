"""Guest networking beyond QEMU's NAT (guest.network: bridge): a host bridge with a tap per guest,
owned by the developer so QEMU runs unprivileged, persisted as systemd-networkd files."""

from __future__ import annotations

import posixpath
from ipaddress import ip_network

from pyinfra import host, logger
from pyinfra.api import deploy
from pyinfra.api.operation import OperationMeta
from pyinfra.facts.server import Command
from pyinfra.operations import files, server
from pyinfra.operations.util import any_changed

from kdevbox.config import Guest
from kdevbox.facts import Network, NetworkState, Route
from kdevbox.inventory import ConfigError, refusal
from kdevbox.layout import NETWORKD_DIR, networkd_files
from kdevbox.operations import guest_tap, network_bridge
from kdevbox.steps import system_file
from kdevbox.target import Target
from kdevbox.templates import render


def route_conflicts(cfg: Guest, network: Network) -> list[Route]:
    """The host's routes (other than the default and the bridge's own) overlapping the guests' range."""
    ours = cfg.bridge_address.network
    return [
        route
        for route in network.routes
        if route.destination != "default"
        and route.device != cfg.bridge
        and ip_network(route.destination, strict=False).overlaps(ours)
    ]


def _refuse(cfg: Guest, expected: str) -> ConfigError:
    return refusal(
        host.name,
        "guest.bridge_address",
        str(cfg.bridge_address),
        expected,
        "guest network settings do not fit",
    )


@deploy("guest network")
def guest_network_setup(cfg: Guest, target: Target) -> None:
    network = host.get_fact(NetworkState)
    if not network.known:
        raise _refuse(cfg, "iproute2 on the host, to check its routes first: apt-get install iproute2")
    conflicts = route_conflicts(cfg, network)
    if conflicts:
        routes = ", ".join(f"{r.destination} dev {r.device}" for r in conflicts)
        raise _refuse(
            cfg, f"a range clear of this host's routes; {cfg.bridge_address.network} overlaps {routes}"
        )
    network_bridge(
        name=f"bridge {cfg.bridge} ({cfg.bridge_address})", bridge=cfg.bridge, address=str(cfg.bridge_address)
    )
    guest_tap(
        name=f"{cfg.tap_name} on {cfg.bridge} for {target.account.name}",
        tap=cfg.tap_name,
        user=target.account.name,
        bridge=cfg.bridge,
    )
    written = [
        system_file(
            posixpath.join(NETWORKD_DIR, name),
            posixpath.join(NETWORKD_DIR, name),
            render(template, cfg=cfg, user=target.account.name),
            "644",
        )
        for template, name, _ in networkd_files(cfg)
    ]
    if not _reload_networkd(written):
        logger.warning(
            f"{host.name}: guest.network: systemd-networkd is not running, so {cfg.bridge} and "
            f"{cfg.tap_name} come back after a reboot only with `systemctl enable --now "
            "systemd-networkd` (or the next kdevbox run)"
        )


@deploy("guest network")
def guest_tap_teardown(cfg: Guest, user: str) -> None:
    """guest.network: user: the guest's tap and its networkd files go; the bridge stays, as other
    guests may be on it."""
    guest_tap(name=f"no tap {cfg.tap_name} (network: user)", tap=cfg.tap_name, user=user, present=False)
    removed = [
        files.file(name=f"no {path}", path=path, present=False)
        for _, name, interface in networkd_files(cfg)
        if interface == cfg.tap_name
        for path in [posixpath.join(NETWORKD_DIR, name)]
    ]
    if any(change.will_change for change in removed):  # else no need to ask about networkd
        _reload_networkd(removed)


def _reload_networkd(changes: list[OperationMeta]) -> bool:
    """networkctl reload after any of changes to networkd's files; whether networkd runs at all."""
    active = host.get_fact(Command, command="systemctl is-active systemd-networkd 2>/dev/null || true")
    if active == "active":
        server.shell(name="networkctl reload", commands=["networkctl reload"], _if=any_changed(*changes))
    return bool(active == "active")
