"""apt proxy: the file exists exactly when a proxy is configured, and apt reads what was asked."""

from __future__ import annotations

import pytest

from kdevbox.layout import APT_PROXY_CONF
from kdevbox.secrets import mask_credentials
from kdevbox.verify.targets import VerifyTarget


def test_proxy_file_present_only_when_configured(kdevbox_target: VerifyTarget) -> None:
    cfg = kdevbox_target.config.apt_proxy
    conf = kdevbox_target.host.file(APT_PROXY_CONF)
    assert conf.exists == cfg.enabled, f"{APT_PROXY_CONF} should {'' if cfg.enabled else 'not '}exist"
    if cfg.enabled:
        assert (conf.user, conf.group) == ("root", "root")
        assert conf.mode == (0o600 if cfg.has_credentials else 0o644)


def test_apt_sees_configured_proxy(kdevbox_target: VerifyTarget) -> None:
    cfg = kdevbox_target.config.apt_proxy
    dump = kdevbox_target.host.check_output("apt-config dump Acquire")
    urls = {"http": cfg.http, "https": cfg.https}
    expected = {f'Acquire::{scheme}::Proxy "{url}";' for scheme, url in urls.items() if url}
    expected |= {
        f'Acquire::{scheme}::Proxy::{name} "DIRECT";' for name in cfg.no_proxy for scheme in ("http", "https")
    }
    seen = {line for line in dump.splitlines() if "::Proxy" in line}
    missing = expected - seen
    if missing:  # not `assert`: pytest would print the URLs, passwords and all
        pytest.fail(mask_credentials(f"apt-config lacks {sorted(missing)}"), pytrace=False)
