"""Guest bridge settings: addresses in range, stable tap names and MACs, route overlap detection,
and reading iproute2's JSON."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from kdevbox.config import Guest
from kdevbox.facts import Network, Route, parse_network
from kdevbox.tasks.guest_network import route_conflicts


def test_guest_address_defaults_to_the_ranges_second_and_must_fit() -> None:
    assert str(Guest(network="bridge").guest_address) == "10.77.0.2"
    with pytest.raises(ValidationError, match=r"must be in 10\.77\.0\.0/24"):
        Guest(network="bridge", address="10.78.0.2")
    with pytest.raises(ValidationError, match="not the bridge's own"):
        Guest(network="bridge", address="10.77.0.1")
    assert Guest(network="bridge").ssh_endpoint == ("10.77.0.2", 22)
    assert Guest(ssh_port=2222).ssh_endpoint == ("127.0.0.1", 2222)


def test_tap_names_fit_and_macs_differ_per_guest() -> None:
    assert Guest(name="knet1").tap_name == "tap-knet1"
    long_names = [Guest(name=f"a-very-long-guest-name-{i}").tap_name for i in range(2)]
    assert all(len(n) <= 15 for n in long_names) and long_names[0] != long_names[1]
    assert Guest(name="a").mac != Guest(name="b").mac and Guest(name="a").mac.startswith("52:54:00:")


def test_route_conflicts_ignore_default_and_the_bridge_itself() -> None:
    cfg = Guest(network="bridge")
    routes = (
        Route("default", "eth0"),
        Route("10.77.0.0/24", "kdevbr0"),
        Route("10.0.0.0/8", "vpn0"),
        Route("192.168.1.0/24", "eth0"),
    )
    assert route_conflicts(cfg, Network(links={}, routes=routes)) == [Route("10.0.0.0/8", "vpn0")]


def test_parse_network_reads_links_addresses_and_routes() -> None:
    links = [
        {"ifname": "kdevbr0", "flags": ["UP"], "linkinfo": {"info_kind": "bridge"}},
        {
            "ifname": "tap-k",
            "flags": ["NO-CARRIER", "UP"],
            "master": "kdevbr0",
            "linkinfo": {"info_kind": "tun", "info_data": {"type": "tap", "user": "dev"}},
        },
    ]
    addresses = [{"ifname": "kdevbr0", "addr_info": [{"local": "10.77.0.1", "prefixlen": 24}]}]
    routes = [{"dst": "10.77.0.0/24", "dev": "kdevbr0"}]
    lines = [
        f"links={json.dumps(links)}",
        f"addresses={json.dumps(addresses)}",
        f"routes={json.dumps(routes)}",
    ]
    network = parse_network(lines)
    assert network.links["kdevbr0"].addresses == ("10.77.0.1/24",) and network.links["kdevbr0"].up
    tap = network.links["tap-k"]
    assert (tap.kind, tap.owner, tap.master, tap.addresses) == ("tun", "dev", "kdevbr0", ())
    assert network.routes == (Route("10.77.0.0/24", "kdevbr0"),) and network.known
