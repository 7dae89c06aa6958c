"""Guest networking (guest.network: bridge): the bridge holds its address and is up, the guest's tap
is the developer's and on the bridge, and systemd-networkd files make both again at boot."""

from __future__ import annotations

import posixpath

from kdevbox.facts import NETWORK_PROBE, parse_network
from kdevbox.tasks.guest_network import NETWORKD_DIR, networkd_files
from kdevbox.verify.targets import VerifyTarget, applies_when

pytestmark = applies_when(lambda config: config.guest.enabled and config.guest.network == "bridge")


def test_bridge_and_tap_are_up(kdevbox_target: VerifyTarget) -> None:
    cfg = kdevbox_target.config.guest
    links = parse_network(kdevbox_target.host.check_output(NETWORK_PROBE).splitlines()).links
    tap = links.get(cfg.tap_name)
    bridge = links.get(cfg.bridge)
    assert bridge is not None and bridge.kind == "bridge", f"no bridge {cfg.bridge}"
    assert bridge.up and bridge.addresses == (str(cfg.bridge_address),), bridge
    assert tap is not None and tap.kind == "tun", f"no tap {cfg.tap_name}"
    assert tap.owner == kdevbox_target.account.name, f"{cfg.tap_name} belongs to {tap.owner}"
    assert tap.master == cfg.bridge and tap.up, tap


def test_networkd_files(kdevbox_target: VerifyTarget) -> None:
    cfg = kdevbox_target.config.guest
    for _, name, interface in networkd_files(cfg):
        unit = kdevbox_target.host.file(posixpath.join(NETWORKD_DIR, name))
        assert unit.is_file and unit.user == "root" and unit.mode == 0o644, unit.path
        assert f"Name={interface}" in unit.content_string.splitlines(), unit.content_string
