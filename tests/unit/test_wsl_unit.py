"""WSL2 detection and wsl.conf editing, from given facts and file contents (no host)."""

from __future__ import annotations

import pytest

from kdevbox.config import Wsl
from kdevbox.facts import parse_wsl
from kdevbox.ini import set_ini_values


@pytest.mark.parametrize(
    ("lines", "wsl2", "kvm"),
    [
        (["release=5.15.167.4-microsoft-standard-WSL2"], True, False),
        (["release=6.6.36.6-microsoft-standard-WSL2+", "kvm=yes"], True, True),
        (["release=6.1.0-28-amd64", "interop=yes"], True, False),  # a custom WSL kernel
        (["release=6.1.0-28-amd64", "kvm=yes"], False, True),
        (["release=4.4.0-19041-Microsoft"], False, False),  # WSL1: no kvm, no real kernel
    ],
)
def test_wsl2_detection(lines: list[str], wsl2: bool, kvm: bool) -> None:
    info = parse_wsl(lines)
    assert (info.is_wsl2, info.has_kvm) == (wsl2, kvm)


def test_wsl_conf_keys_from_settings() -> None:
    cfg = Wsl(settings={"network": {"hostname": "kbox", "generateHosts": False}, "boot": {"command": "x"}})
    assert cfg.wsl_conf("ada") == {
        "boot": {"systemd": "true", "command": "x"},
        "user": {"default": "ada"},
        "network": {"hostname": "kbox", "generateHosts": "false"},
    }
    assert Wsl(systemd=False, default_user=False).wsl_conf("ada") == {}


def test_ini_edit_keeps_comments_order_and_other_keys() -> None:
    text = "; mine\n[boot]\n# why\nsystemd = false\ncommand=echo hi\n\n[network]\nhostname=old\n"
    edited = set_ini_values(text, {"boot": {"systemd": "true"}, "network": {"hostname": "new"}})
    assert edited == "; mine\n[boot]\n# why\nsystemd = true\ncommand=echo hi\n\n[network]\nhostname = new\n"
    assert set_ini_values(edited, {"boot": {"systemd": "true"}, "network": {"hostname": "new"}}) == edited


def test_ini_edit_adds_missing_keys_and_sections() -> None:
    edited = set_ini_values(
        "[boot]\ncommand=x\n\n[interop]\nenabled=true\n",
        {"boot": {"systemd": "true"}, "user": {"default": "ada"}},
    )
    assert edited == "[boot]\ncommand=x\nsystemd = true\n\n[interop]\nenabled=true\n\n[user]\ndefault = ada\n"
    assert set_ini_values("", {"user": {"default": "ada"}}) == "[user]\ndefault = ada\n"
