"""Which neovim a host gets and which plugin refs fit it: the decisions, without a host."""

from __future__ import annotations

import subprocess

import pytest

from kdevbox.config import DEFAULT_PLUGINS, TELESCOPE, Neovim, parse_version
from kdevbox.facts import AptCandidate, GitCheckout
from kdevbox.inventory import ConfigError
from kdevbox.tasks.neovim import plan_neovim
from kdevbox.templates import lua, render

# What each distribution's apt offers (from the issue): and the telescope each must get.
DISTRIBUTIONS = [
    ("debian-12", "0.7.2-7", "release", "v0.2.2"),
    ("debian-13", "0.10.4-8", "apt", "v0.1.9"),
    ("ubuntu-22.04", "0.6.1-3", "release", "v0.2.2"),
    ("ubuntu-24.04", "0.9.5-6ubuntu2", "release", "v0.2.2"),
    ("no-candidate", None, "release", "v0.2.2"),
]


@pytest.mark.parametrize(("distro", "candidate", "source", "telescope"), DISTRIBUTIONS)
def test_auto_picks_apt_only_when_new_enough(
    distro: str, candidate: str | None, source: str, telescope: str
) -> None:
    plan = plan_neovim(Neovim(), candidate, distro)
    assert plan.source == source
    assert plan.plugins[TELESCOPE] == (DEFAULT_PLUGINS[TELESCOPE][0], telescope)


def test_apt_source_takes_candidate_version_and_matching_telescope() -> None:
    plan = plan_neovim(Neovim(source="apt"), "0.7.2-7", "h1")
    assert (plan.source, plan.version, plan.plugins[TELESCOPE][1]) == ("apt", (0, 7, 2), "0.1.8")
    assert plan.release_dir == "/opt/nvim-0.7.2"


def test_release_version_is_what_the_plan_installs() -> None:
    plan = plan_neovim(Neovim(source="release", release_version="0.9.5"), "0.10.4", "h1")
    assert (plan.source, plan.version, plan.plugins[TELESCOPE][1]) == ("release", (0, 9, 5), "v0.1.9")


def test_pinned_telescope_too_new_for_nvim_is_a_clear_error() -> None:
    cfg = Neovim(source="apt", plugins={TELESCOPE: {"ref": "master"}})
    with pytest.raises(ConfigError) as error:
        plan_neovim(cfg, "0.10.4-8", "labvm")
    assert (
        "labvm: neovim.plugins.telescope.nvim.ref = 'master': telescope master needs neovim >= 0.11.7, "
        "this host gets neovim 0.10.4 (apt)" in str(error.value)
    )


def test_unknown_pinned_ref_is_trusted_and_url_overrides_keep_default_ref() -> None:
    cfg = Neovim(
        plugins={TELESCOPE: {"ref": "0a1b2c3d"}, "plenary.nvim": {"url": "https://git.example.org/p.git"}}
    )
    plan = plan_neovim(cfg, None, "h1")
    assert plan.plugins[TELESCOPE][1] == "0a1b2c3d"
    assert plan.plugins["plenary.nvim"] == (
        "https://git.example.org/p.git",
        DEFAULT_PLUGINS["plenary.nvim"][1],
    )


def test_apt_source_without_candidate_and_too_old_nvim_fail() -> None:
    with pytest.raises(ConfigError, match="apt has no neovim package"):
        plan_neovim(Neovim(source="apt"), None, "h1")
    with pytest.raises(ConfigError, match="too old for any telescope release"):
        plan_neovim(Neovim(source="apt"), "0.6.1-3", "h1")


def test_unknown_plugin_is_refused() -> None:
    with pytest.raises(ValueError, match=r"unknown plugin telescope-fzf\.nvim"):
        Neovim(plugins={"telescope-fzf.nvim": {}})


def test_release_url_takes_the_version() -> None:
    cfg = Neovim(release_version="0.11.5", release_url="http://mirror.example.org/nvim/{version}/n.tar.gz")
    assert cfg.release_download == "http://mirror.example.org/nvim/0.11.5/n.tar.gz"


@pytest.mark.parametrize(
    ("text", "version"), [("0.7.2-7+b1", (0, 7, 2)), ("v0.12.5", (0, 12, 5)), ("1:2.3", (2, 3))]
)
def test_parse_version(text: str, version: tuple[int, ...]) -> None:
    assert parse_version(text) == version


def test_fact_parsers() -> None:
    policy = ["neovim:", "  Installed: (none)", "  Candidate: 0.7.2-7", "  Version table:"]
    assert AptCandidate().process(policy) == "0.7.2-7"
    assert AptCandidate().process(["neovim:", "  Candidate: (none)"]) is None
    assert GitCheckout().process([]) is None
    checkout = GitCheckout().process(["url=git://h/t.git", "ref=0.1.8", "head=abc", "dirty="])
    assert checkout is not None and (checkout.ref, checkout.dirty) == ("0.1.8", False)


def test_leader_is_rendered_into_kdevbox_lua() -> None:
    rendered = render("nvim/kdevbox.lua.j2", cfg=Neovim(leader=","), rst_parser="/home/ada/rst.so")
    assert "vim.g.mapleader = ','" in rendered


@pytest.mark.parametrize(
    "value", ["/home/ada/rst.so", "/home/o'neil/x\\y/rst.so", "]] ..os.exit(3).. [[", "é\n'\"\x00`$(id)"]
)
def test_lua_string_is_the_value_in_lua(value: str) -> None:
    """What neovim reads from a rendered literal is the value itself, whatever it holds."""
    line = f"io.stdout:write({lua(value)})"
    out = subprocess.run(
        ["nvim", "--headless", "-u", "NONE", "-c", f"lua {line}", "-c", "qall!"],
        capture_output=True,
        timeout=30,
        check=True,
    ).stdout
    assert out == value.encode()
