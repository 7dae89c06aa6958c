"""QEMU guest: the image and its inputs record, kdevbox-vm (root's program, the developer's
settings), `ssh <guest>`, group kvm where there is a /dev/kvm, and an acceleration choice that
comes back within the probe's bound (never a hang)."""

from __future__ import annotations

import posixpath
import time

from kdevbox.config import VIRTME_NG_COMMANDS
from kdevbox.kdevbox_vm import PROBE_SECONDS
from kdevbox.layout import GUEST_RUNNER, KVM_DEVICE, SSH_MARKER, Home, guest_files
from kdevbox.verify.targets import VerifyTarget, applies_when

# kdevbox never deletes a guest image (the developer's data) when guest.enabled goes false.
pytestmark = applies_when(lambda config: config.guest.enabled)


def test_image_built_for_developer(kdevbox_target: VerifyTarget) -> None:
    account = kdevbox_target.account
    made = guest_files(kdevbox_target.config.guest, account.home, account.name)
    image = kdevbox_target.host.file(made.image)
    assert image.is_file and image.user == account.name
    # The disk holds the guest's host keys and whatever ran in it: no other account reads it.
    assert kdevbox_target.host.file(made.directory).mode == 0o700, f"{made.directory} is not 0700"
    assert image.mode == 0o600, f"{image.path} is {image.mode:o}, not 600"
    assert kdevbox_target.host.file(made.inputs).is_file
    info = kdevbox_target.run_as_user("qemu-img info %s", image.path)
    assert info.rc == 0 and "file format: qcow2" in info.stdout, info.stdout + info.stderr


def test_ssh_config_names_the_guest(kdevbox_target: VerifyTarget) -> None:
    cfg = kdevbox_target.config.guest
    config = posixpath.join(kdevbox_target.account.home, ".ssh/config")
    marker = SSH_MARKER.format(name=cfg.name).format(mark="BEGIN")
    marked = marker in (kdevbox_target.user_text(config) or "").splitlines()
    assert marked, f"no {cfg.name} block in {config}"
    resolved = kdevbox_target.run_as_user("ssh -G %s", cfg.name).stdout.splitlines()
    address, port = cfg.ssh_endpoint
    assert f"port {port}" in resolved and f"hostname {address}" in resolved


def test_kdevbox_vm_is_roots_program_with_the_developers_settings(kdevbox_target: VerifyTarget) -> None:
    runner = kdevbox_target.host.file(GUEST_RUNNER)
    assert runner.is_file and runner.user == "root" and runner.mode == 0o755, f"{GUEST_RUNNER}"
    mine = Home(kdevbox_target.account.home)
    shown = kdevbox_target.run_as_user("%s --help", mine.run_script)
    assert shown.rc == 0 and "exit statuses" in shown.stdout, f"{mine.run_script} --help: {shown.stderr}"
    settings = kdevbox_target.user_text(mine.vm_settings) or ""
    assert f'"name": "{kdevbox_target.config.guest.name}"' in settings, (
        f"no guest settings in {mine.vm_settings}"
    )


def test_developer_in_group_kvm_where_there_is_kvm(kdevbox_target: VerifyTarget) -> None:
    account = kdevbox_target.account
    if account.name == "root" or kdevbox_target.host.run("test -c %s", KVM_DEVICE).rc != 0:
        return
    assert "kvm" in kdevbox_target.host.user(account.name).groups, f"{account.name} is not in group kvm"


def test_accel_choice_is_bounded(kdevbox_target: VerifyTarget) -> None:
    start = time.monotonic()
    result = kdevbox_target.run_as_user("%s accel", Home(kdevbox_target.account.home).run_script)
    elapsed = time.monotonic() - start
    assert result.rc == 0 and result.stdout.strip() in ("kvm", "tcg"), result.stdout + result.stderr
    assert elapsed < PROBE_SECONDS + 5, f"kdevbox-vm accel took {elapsed:.0f}s"
    if kdevbox_target.config.guest.accel != "auto":
        assert result.stdout.strip() == kdevbox_target.config.guest.accel


def test_virtme_ng_runs_for_the_developer(kdevbox_target: VerifyTarget) -> None:
    """`vng`, the pinned virtme-ng, beside kdevbox-vm (guest.virtme_ng)."""
    cfg = kdevbox_target.config.guest
    version = kdevbox_target.run_as_user("sh -lc 'vng --version'")  # the PATH of a login
    linked = [f"/usr/local/bin/{command}" for command in VIRTME_NG_COMMANDS]
    if not cfg.virtme_ng:
        assert not [path for path in linked if kdevbox_target.host.file(path).exists], "vng is still linked"
        return
    assert version.rc == 0 and cfg.virtme_ng_version in version.stdout + version.stderr, version.stderr
    for command in VIRTME_NG_COMMANDS:  # vng runs virtme-run by name
        found = kdevbox_target.run_as_user(f"sh -lc 'command -v {command}'")
        assert found.rc == 0, f"{command} is not on the developer's PATH: vng cannot run without it"
    assert kdevbox_target.run_as_user("sh -lc 'command -v busybox'").rc == 0, "virtme-ng needs busybox-static"
