"""HostConfig and inventory validation: no host, no root, fast."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
from pyinfra.api import Inventory

from kdevbox.config import DEFAULT_GITIGNORE, AptProxy, Git, HostConfig, mask_credentials
from kdevbox.inventory import ConfigError, host_settings, validate_inventory, validate_settings
from kdevbox.layout import excludesfile
from kdevbox.templates import render


def problems(settings: dict[str, Any]) -> list[str]:
    config, found = validate_settings("h1", settings)
    assert config is None
    return [str(p) for p in found]


def test_defaults_validate_to_nothing_managed() -> None:
    config = HostConfig()
    assert config.user is None and not config.apt_proxy.enabled and config.git.sendemail is None
    assert config.git.ignore_patterns == list(DEFAULT_GITIGNORE)


def test_error_names_host_field_value_and_expectation() -> None:
    assert problems({"apt_proxy": {"http": "proxy:3128"}}) == [
        "h1: apt_proxy.http = 'proxy:3128': URL scheme should be 'http', 'https' or 'socks5h'"
    ]


def test_unknown_key_suggests_the_real_one() -> None:
    (line,) = problems({"git": {"emial": "a@b.org"}})
    assert line.startswith("h1: git.emial = 'a@b.org': unknown setting (did you mean 'email'?)")


def test_every_problem_of_every_host_is_reported() -> None:
    inventory = Inventory(
        (["a", "b", "c"], {}),
    )
    inventory.get_host("a").data.apt_prxy = 1
    inventory.get_host("c").data.git = {"sendemail": {"smtp_server": "s", "smtp_port": 0}}
    with pytest.raises(ConfigError) as raised:
        validate_inventory(inventory)
    assert [(p.host, p.field) for p in raised.value.problems] == [
        ("a", "apt_prxy"),
        ("c", "git.sendemail.smtp_port"),
    ]


def test_credentials_are_masked_in_problems() -> None:
    (line,) = problems({"apt_proxy": {"http": "gopher://ada:hunter2@proxy:70"}})
    assert "hunter2" not in line and "gopher://***@proxy:70" in line
    assert mask_credentials("x http://u:p@h:1/ y https://h/") == "x http://***@h:1/ y https://h/"


def test_passwords_are_refused_with_a_pointer_to_credential_helpers() -> None:
    (line,) = problems({"git": {"sendemail": {"smtp_server": "s", "smtp_password": "pw"}}})
    assert "credential helper" in line and "'pw'" not in line


def test_pyinfra_keys_are_not_settings_and_nested_settings_merge() -> None:
    inventory = Inventory(
        (["vm1"], {"git": {"name": "Ada", "email": "ada@all.org"}, "ssh_user": "ada", "_sudo": True}),
        lab=(["vm1"], {"git": {"email": "ada@lab.org"}, "apt_proxy": {"no_proxy": ["a.org"]}}),
    )
    host = inventory.get_host("vm1")
    host.data.apt_proxy = {"http": "http://p:3128"}  # override level
    assert host_settings(host) == {
        "git": {"name": "Ada", "email": "ada@lab.org"},
        "apt_proxy": {"no_proxy": ["a.org"], "http": "http://p:3128"},
    }
    assert validate_inventory(inventory)["vm1"].git.email == "ada@lab.org"


@pytest.mark.parametrize(
    ("configured", "current", "expected"),
    [
        (None, None, "/home/ada/.config/git/ignore"),
        (None, "~/.gitignore_global", "/home/ada/.gitignore_global"),
        ("/etc/gitignore", "~/.gitignore_global", "/etc/gitignore"),
        ("ignore.txt", None, "/home/ada/ignore.txt"),
    ],
)
def test_excludesfile_keeps_the_users_own_file(
    configured: str | None, current: str | None, expected: str
) -> None:
    assert excludesfile(Git(excludesfile=configured).excludesfile, current, "/home/ada") == expected


def test_apt_proxy_template_is_what_apt_reads(tmp_path: Path) -> None:
    cfg = AptProxy.model_validate(
        {"http": "http://u:p@proxy:3128", "https": "http://proxy:3129", "no_proxy": ["mirror.lan"]}
    )
    conf = tmp_path / "proxy.conf"
    conf.write_text(render("apt/kdevbox-proxy.j2", cfg=cfg))
    dump = subprocess.run(
        ["apt-config", "-c", str(conf), "dump", "Acquire"], capture_output=True, text=True, check=True
    ).stdout.splitlines()
    assert 'Acquire::http::Proxy "http://u:p@proxy:3128/";' in dump
    assert 'Acquire::https::Proxy "http://proxy:3129/";' in dump
    assert 'Acquire::http::Proxy::mirror.lan "DIRECT";' in dump
    assert cfg.has_credentials and not AptProxy(https=cfg.https).has_credentials


def test_proxy_password_from_the_controllers_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """The password a proxy URL's user needs comes from an environment variable the settings name:
    host data (logged by pyinfra --debug) holds only the name; the URLs carry it, percent-encoded."""
    monkeypatch.setenv("KDEVBOX_PROXY_PASSWORD", "s3cr:et@x")
    url = "http://ada@proxy.example.org:3128"
    settings = {"proxy": {"https": url, "password_env": "KDEVBOX_PROXY_PASSWORD"}}
    config, found = validate_settings("h1", settings)
    assert config is not None and not found
    assert config.proxy.single == "http://ada:s3cr%3Aet%40x@proxy.example.org:3128/"
    assert "s3cr" not in repr(config)
    monkeypatch.delenv("KDEVBOX_PROXY_PASSWORD")
    assert problems({"apt_proxy": {"http": url, "password_env": "KDEVBOX_PROXY_PASSWORD"}}) == [
        "h1: apt_proxy = {'http': 'http://***@proxy.example.org:3128', 'password_env': "
        "'KDEVBOX_PROXY_PASSWORD'}: "
        "password_env: KDEVBOX_PROXY_PASSWORD is not set where pyinfra runs: export it first"
    ]
    (line,) = problems({"proxy": {"http": url, "password_env": "X;id"}})
    assert line.startswith("h1: proxy.password_env = 'X;id': ")
