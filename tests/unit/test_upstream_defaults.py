"""Every default ref, version and URL in kdevbox.config exists upstream (tests/data/upstream_facts.py),
not only in a stand-in."""

from __future__ import annotations

import pytest

from kdevbox.config import (
    DEFAULT_PLUGINS,
    TELESCOPE,
    TELESCOPE_REQUIREMENTS,
    Kernel,
    Neovim,
    parse_version,
    telescope_tag_for,
)
from tests.data import upstream_facts
from tests.neovim_stand_in import GRAMMAR, PLUGIN_TAGS, grammar_files


@pytest.mark.parametrize("name", sorted(DEFAULT_PLUGINS))
def test_default_plugin_refs_are_upstream_tags(name: str) -> None:
    url, ref = DEFAULT_PLUGINS[name]
    assert url == upstream_facts.UPSTREAM_URLS[name]
    if ref is not None:
        assert ref in upstream_facts.UPSTREAM_TAGS[name] or ref == upstream_facts.UPSTREAM_PINNED_HEADS[name]


def test_default_rst_parser_is_an_upstream_tag() -> None:
    rst = Neovim().rst_parser
    assert rst.url == upstream_facts.UPSTREAM_URLS[GRAMMAR]
    assert rst.ref in upstream_facts.UPSTREAM_TAGS[GRAMMAR]


def test_the_grammar_stand_in_has_upstreams_sources() -> None:
    assert set(upstream_facts.TREE_SITTER_RST_SOURCES) <= set(grammar_files())


def test_every_default_telescope_tag_is_an_upstream_tag() -> None:
    defaults = [tag for _pattern, _needs, tag in TELESCOPE_REQUIREMENTS if tag is not None]
    assert defaults, "the table names default tags"
    for tag in defaults:
        assert tag in upstream_facts.UPSTREAM_TAGS[TELESCOPE], tag


@pytest.mark.parametrize(
    ("distribution", "nvim", "tag"),
    [("debian-12", "0.7.2", "0.1.8"), ("ubuntu-24.04", "0.9.5", "v0.1.9"), ("debian-13", "0.10.4", "v0.1.9")],
)
def test_distribution_neovims_get_a_real_telescope_tag(distribution: str, nvim: str, tag: str) -> None:
    assert telescope_tag_for(parse_version(nvim)) == tag
    assert tag in upstream_facts.UPSTREAM_TAGS[TELESCOPE]


def test_neovim_release_url_names_the_real_asset() -> None:
    cfg = Neovim()
    assert parse_version(cfg.release_version) >= (0, 10, 4)
    expected = upstream_facts.NEOVIM_RELEASE_URL.format(
        version=cfg.release_version, asset=upstream_facts.NEOVIM_ASSET_SINCE_0_10_4
    )
    assert cfg.release_download == expected


def test_kernel_defaults_are_kernel_orgs() -> None:
    cfg = Kernel()
    assert cfg.releases_url == upstream_facts.KERNEL_RELEASES_JSON
    assert cfg.git_url == upstream_facts.KERNEL_STABLE_GIT


def test_the_stand_ins_carry_exactly_the_upstream_tags() -> None:
    assert {name: tuple(tags) for name, tags in PLUGIN_TAGS.items()} == upstream_facts.UPSTREAM_TAGS
