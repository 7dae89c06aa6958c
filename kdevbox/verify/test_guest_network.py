"""Guest networking. guest.network: bridge: the bridge holds its address and is up, the guest's tap
is the developer's and on the bridge, and systemd-networkd files make both again at boot.
guest.network: user: the guest has no kdevbox tap left (a device of that name kdevbox did not
make is not its to remove), nor networkd files that would make one."""

from __future__ import annotations

import posixpath

from kdevbox.config import HostConfig
from kdevbox.facts import NetLink, NetworkState
from kdevbox.layout import NETWORKD_DIR, networkd_files
from kdevbox.verify.targets import VerifyTarget, applies_when


def _network(config: HostConfig) -> str | None:
    return config.guest.network if config.guest.enabled else None


def _links(target: VerifyTarget) -> dict[str, NetLink]:
    return target.fact(NetworkState).links


@applies_when(lambda config: _network(config) == "bridge")
def test_bridge_and_tap_are_up(kdevbox_target: VerifyTarget) -> None:
    cfg = kdevbox_target.config.guest
    links = _links(kdevbox_target)
    tap = links.get(cfg.tap_name)
    bridge = links.get(cfg.bridge)
    assert bridge is not None and bridge.kind == "bridge", f"no bridge {cfg.bridge}"
    assert bridge.up and bridge.addresses == (str(cfg.bridge_address),), bridge
    assert tap is not None and tap.kind == "tun", f"no tap {cfg.tap_name}"
    assert bridge.made_by_kdevbox and tap.made_by_kdevbox, "kdevbox's devices carry its ifalias"
    assert tap.owner == kdevbox_target.account.name, f"{cfg.tap_name} belongs to {tap.owner}"
    assert tap.master == cfg.bridge and tap.up, tap


@applies_when(lambda config: _network(config) == "bridge")
def test_networkd_files(kdevbox_target: VerifyTarget) -> None:
    cfg = kdevbox_target.config.guest
    for _, name, interface in networkd_files(cfg):
        unit = kdevbox_target.host.file(posixpath.join(NETWORKD_DIR, name))
        assert unit.is_file and unit.user == "root" and unit.mode == 0o644, unit.path
        assert f"Name={interface}" in unit.content_string.splitlines(), unit.content_string


@applies_when(lambda config: _network(config) == "user")
def test_user_network_leaves_no_tap(kdevbox_target: VerifyTarget) -> None:
    cfg = kdevbox_target.config.guest
    tap = _links(kdevbox_target).get(cfg.tap_name)
    ours = tap is not None and tap.made_by_kdevbox and tap.owner == kdevbox_target.account.name
    assert not ours, f"kdevbox's {cfg.tap_name} is still there"
    for _, name, interface in networkd_files(cfg):
        unit = kdevbox_target.host.file(posixpath.join(NETWORKD_DIR, name))
        assert interface != cfg.tap_name or not unit.exists, f"{unit.path} would make {cfg.tap_name} again"
