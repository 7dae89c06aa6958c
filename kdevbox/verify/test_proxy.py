"""proxy: the 0600 files downloads read exist exactly when a proxy is set, and with proxy.system the
developer's login shells and sudo have the variables. Checks name variables, never their values."""

from __future__ import annotations

from kdevbox.layout import PROXY_PROFILE, PROXY_ROOT_ENV, PROXY_SUDOERS, Home
from kdevbox.verify.targets import VerifyTarget

VARIABLES = ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY")


def test_download_env_files_only_when_a_proxy_is_set(kdevbox_target: VerifyTarget) -> None:
    cfg = kdevbox_target.config.proxy
    account = kdevbox_target.account
    for path, owner in ((PROXY_ROOT_ENV, "root"), (Home(account.home).proxy_env, account.name)):
        env = kdevbox_target.host.file(path)
        assert env.exists == cfg.enabled, f"{path} should {'' if cfg.enabled else 'not '}exist"
        if cfg.enabled:
            assert (env.user, env.mode) == (owner, 0o600), f"{path}: {env.user} {oct(env.mode)}"


def test_login_shells_have_the_proxy_with_system(kdevbox_target: VerifyTarget) -> None:
    """With proxy.system, the profile script and the sudoers entry are there and a login shell of
    the developer exports the variables; without it, neither file is (your own variables are yours)."""
    cfg = kdevbox_target.config.proxy
    system = cfg.system and cfg.enabled
    for path in (PROXY_PROFILE, PROXY_SUDOERS):
        assert kdevbox_target.host.file(path).exists == system, (
            f"{path} should {'' if system else 'not '}exist"
        )
    if system:
        login = kdevbox_target.run_as_user("sh -lc env")  # a login shell reads /etc/profile.d
        names = {line.split("=", 1)[0] for line in login.stdout.splitlines()}
        expected = {name for name in VARIABLES if getattr(cfg, name.lower().split("_")[0]) is not None}
        assert expected <= names, f"a login shell lacks {sorted(expected - names)}"
