"""Low-level tools: every configured package installed with its command on PATH,
and the msr module loaded (now and at boot) where the host's kernel has it."""

from __future__ import annotations

from kdevbox.config import TOOL_COMMANDS
from kdevbox.facts import KernelModuleState, PackageAvailability
from kdevbox.layout import MSR_MODULES_LOAD
from kdevbox.verify.targets import VerifyTarget


def test_tool_packages_installed(kdevbox_target: VerifyTarget) -> None:
    packages = kdevbox_target.config.tools.packages
    host = kdevbox_target.host
    missing = kdevbox_target.fact(PackageAvailability, packages=packages).missing
    problems = []
    for package in packages:
        if not host.package(package).is_installed:
            why = "not in this host's apt sources" if package in missing else "not installed"
            problems.append(f"{package}: {why}")
        elif package in TOOL_COMMANDS:
            command = TOOL_COMMANDS[package]
            # root's PATH: rdmsr, trace-cmd and bpftrace live in sbin and are run with sudo.
            if not host.exists(command):
                problems.append(f"{package}: {command} is not on PATH")
    assert not problems, "; ".join(problems)


def test_msr_module(kdevbox_target: VerifyTarget) -> None:
    tools = kdevbox_target.config.tools
    host = kdevbox_target.host
    state = kdevbox_target.fact(KernelModuleState, module="msr")
    conf = host.file(MSR_MODULES_LOAD)
    if not tools.wants_msr or state is None:  # off, or nothing this kernel could load
        assert not conf.exists, f"{MSR_MODULES_LOAD} is there, yet kdevbox cannot or should not load msr"
        return
    assert state == "loaded", "the msr module is not loaded"
    assert conf.exists and "msr" in conf.content_string.split(), f"{MSR_MODULES_LOAD} does not load msr"
