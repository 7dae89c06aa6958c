"""WSL2: wsl.conf carries kdevbox's keys beside the user's own; the developer may use /dev/kvm.
On other hosts kdevbox writes no wsl.conf."""

from __future__ import annotations

import configparser

from kdevbox.facts import WslHost
from kdevbox.layout import WSL_CONF
from kdevbox.verify.targets import VerifyTarget


def test_wsl_conf(kdevbox_target: VerifyTarget) -> None:
    info = kdevbox_target.fact(WslHost)
    conf = kdevbox_target.host.file(WSL_CONF)
    if not info.is_wsl2:
        assert not conf.exists or "kdevbox" not in conf.content_string, f"{WSL_CONF} on a non-WSL host"
        return
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string(conf.content_string)
    expected = kdevbox_target.config.wsl.wsl_conf(kdevbox_target.account.name)
    actual = {
        section: {key: parser.get(section, key, fallback=None) for key in keys}
        for section, keys in expected.items()
    }
    assert actual == expected


def test_developer_in_kvm_group_on_wsl(kdevbox_target: VerifyTarget) -> None:
    info = kdevbox_target.fact(WslHost)
    groups = kdevbox_target.host.check_output("id -nG %s", kdevbox_target.account.name).split()
    wanted = info.is_wsl2 and kdevbox_target.config.wsl.kvm_group
    assert ("kvm" in groups) or not wanted, f"{kdevbox_target.account.name} is not in the kvm group"
