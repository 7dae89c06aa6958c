"""Which tool packages count as missing, and when msr is loaded."""

from __future__ import annotations

from kdevbox.config import HostConfig
from kdevbox.facts import parse_availability


def test_missing_packages_only_known_with_package_lists() -> None:
    probe = ["lists=yes", "asked=gdb", "gdb=13.1-3", "asked=bpftrace"]
    assert parse_availability(probe).missing == ("bpftrace",)
    # Before the first `apt-get update` nothing is known: apt names what it cannot find.
    assert parse_availability(probe[1:]).missing == ()


def test_msr_loading_follows_msr_tools() -> None:
    assert HostConfig().tools.wants_msr
    assert not HostConfig.model_validate({"tools": {"packages": ["gdb"]}}).tools.wants_msr
    assert not HostConfig.model_validate({"tools": {"load_msr": False}}).tools.wants_msr
