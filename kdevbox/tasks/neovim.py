"""neovim new enough for telescope, the plugins as native packages, and kdevbox's init.lua."""

from __future__ import annotations

import difflib
import posixpath
import re
from typing import Any

from pyinfra import host
from pyinfra.api import deploy
from pyinfra.facts.files import File, Link
from pyinfra.operations import files

from kdevbox.config import (
    DEFAULT_PLUGINS,
    PARSER_BUILD_PACKAGES,
    SEARCH_TOOLS,
    TELESCOPE,
    Neovim,
    format_version,
    parse_version,
    telescope_requirement,
    telescope_tag_for,
)
from kdevbox.facts import AptCandidate, GitCheckout, GitRemoteRefs
from kdevbox.inventory import ConfigError, Problem, refusal
from kdevbox.layout import NVIM_INIT_MARKER, NVIM_LINK, NVIM_RELEASE_PREFIX, Downloads, Home, downloads
from kdevbox.operations import git_checkout, inputs_digest, install_tarball, tree_sitter_parser
from kdevbox.records import NeovimPlan
from kdevbox.steps import apt_install, managed_block, user_file
from kdevbox.target import Target
from kdevbox.templates import render


def plan_neovim(cfg: Neovim, apt_candidate: str | None, host_name: str) -> NeovimPlan:
    """Pick neovim's source and the plugin refs it can run; ConfigError when no choice fits."""
    candidate = parse_version(apt_candidate) if apt_candidate else None
    source = cfg.source
    if source == "auto":
        wanted = parse_version(cfg.min_version)
        source = "apt" if candidate is not None and candidate >= wanted else "release"
    if source == "apt" and candidate is None:
        raise refusal(
            host_name,
            "neovim.source",
            cfg.source,
            "apt has no neovim package for this host",
            "no neovim to install",
        )
    version = candidate if source == "apt" and candidate else parse_version(cfg.release_version)
    shown = f"neovim {format_version(version)} ({source})"

    plugins: dict[str, tuple[str, str]] = {}
    problems = []
    for name, (default_url, default_ref) in DEFAULT_PLUGINS.items():
        override = cfg.plugins.get(name)
        url = (override and override.url) or default_url
        ref = (override and override.ref) or default_ref
        field = f"neovim.plugins.{name}.ref"
        if name == TELESCOPE and ref is None:
            ref = telescope_tag_for(version)
            if ref is None:
                problems.append(Problem(host_name, "neovim", shown, "too old for any telescope release"))
                continue
        elif name == TELESCOPE and ref is not None:
            needs = telescope_requirement(ref)
            if needs is not None and version < needs:
                problems.append(
                    Problem(
                        host_name,
                        field,
                        ref,
                        f"telescope {ref} needs neovim >= {format_version(needs)}, this host gets "
                        f"{shown}: pin an older ref, or unset it to get the newest that fits",
                    )
                )
                continue
        assert ref is not None
        plugins[name] = (url, ref)
    if problems:
        raise ConfigError(problems, headline="neovim plugins do not fit the neovim this host gets")
    return NeovimPlan(source, version, plugins)


def host_plan(cfg: Neovim) -> NeovimPlan:
    """The plan for the current host (asks apt for its neovim candidate unless source is release)."""
    candidate = None if cfg.source == "release" else host.get_fact(AptCandidate, package="neovim")
    return plan_neovim(cfg, candidate, host.name)


def check_pinned_refs(cfg: Neovim, plan: NeovimPlan, target: Target, fetching: Downloads) -> None:
    """A ref the settings pin that its remote does not have stops the run before anything is
    cloned, with the nearest names it does have. Asked only when the checkout is not already at that
    ref, and skipped when the host cannot ask the remote (no git yet, no network)."""
    mine = Home(target.account.home)
    as_user = target.as_user
    pins = [
        (f"neovim.plugins.{name}.ref", *plan.plugins[name], mine.plugin(name))
        for name, override in cfg.plugins.items()
        if override.ref is not None
    ]
    if "ref" in cfg.rst_parser.model_fields_set:
        pins.append(("neovim.rst_parser.ref", cfg.rst_parser.url, cfg.rst_parser.ref, mine.grammar("rst")))
    problems = []
    for field, url, ref, path in pins:
        if re.fullmatch(r"[0-9a-f]{7,40}", ref):
            continue
        checkout = host.get_fact(GitCheckout, path=path, **as_user)  # theirs: root runs no git in it
        if checkout is not None and checkout.ref == ref:
            continue
        # Asked as the developer, as their checkout will fetch it (a file:// URL may be theirs).
        offered = host.get_fact(GitRemoteRefs, url=url, env_file=fetching.user_env, **as_user)
        if offered and ref not in offered:
            near = difflib.get_close_matches(ref, offered, n=3, cutoff=0.6)
            hint = f"did you mean {' or '.join(near)}?" if near else f"it has {', '.join(offered[-8:])}"
            problems.append(Problem(host.name, field, ref, f"not a ref of {url}: {hint}"))
    if problems:
        raise ConfigError(problems, headline="neovim refs that their remotes do not have")


@deploy("neovim")
def neovim_setup(cfg: Neovim, target: Target) -> None:
    plan = host_plan(cfg)  # before any operation: an impossible plugin pin stops the run here
    fetching = downloads(target.config.proxy, target.account.home)
    check_pinned_refs(cfg, plan, target, fetching)
    as_user = target.as_user
    home = target.account.home
    mine = Home(home)

    # git's https needs ca-certificates, which it only recommends (and apt_install skips recommends).
    packages = ["git", "ca-certificates"] + (["neovim"] if plan.source == "apt" else ["curl"])
    apt_install(
        "neovim, what kdevbox installs it with, what telescope searches with, what builds parsers",
        packages + list(SEARCH_TOOLS) + list(PARSER_BUILD_PACKAGES),
    )
    if plan.source == "release":
        install_tarball(
            name=f"neovim {format_version(plan.version)} release in {plan.release_dir}",
            url=cfg.release_download,
            sha256=cfg.release_sha256,
            dest=plan.release_dir,
            hint="set neovim.release_url to a mirror you reach, or neovim.source 'apt'",
            env_file=fetching.root_env,
            via=fetching.via,
        )
        files.link(
            name=f"{NVIM_LINK} is neovim {format_version(plan.version)}",
            path=NVIM_LINK,
            target=posixpath.join(plan.release_dir, "bin/nvim"),
        )
    elif _links_to_a_release():  # it would shadow the distribution's neovim
        files.link(name=f"{NVIM_LINK}: drop kdevbox's release link", path=NVIM_LINK, present=False)

    files.directory(name="plugin directory", path=mine.pack_dir, present=True, **as_user)
    for name, (url, ref) in plan.plugins.items():
        git_checkout(
            name=f"{name} at {ref}",
            path=mine.plugin(name),
            url=url,
            ref=ref,
            hint=f"set neovim.plugins.{name}.url to a mirror you reach",
            env_file=fetching.user_env,
            via=fetching.via,
            **as_user,
        )

    rst = cfg.rst_parser
    git_checkout(
        name=f"tree-sitter-rst at {rst.ref}",
        path=mine.grammar("rst"),
        url=rst.url,
        ref=rst.ref,
        hint="set neovim.rst_parser.url to a mirror you reach",
        env_file=fetching.user_env,
        via=fetching.via,
        **as_user,
    )
    tree_sitter_parser(
        name=f"rst parser {mine.parser('rst')}",
        grammar=mine.grammar("rst"),
        dest=mine.parser("rst"),
        source=inputs_digest(rst.url, rst.ref),
        **as_user,
    )

    lua = mine.kdevbox_lua
    files.directory(
        name="kdevbox neovim config directory", path=posixpath.dirname(lua), present=True, **as_user
    )
    user_file("kdevbox neovim config", lua, render_config(cfg, home), "644", target)
    if cfg.manage_init:
        _load_from_user_init(home, as_user)
    # Last: what was decided, once everything it names is in place (verify reads it).
    record = posixpath.dirname(mine.nvim_plan)
    files.directory(name=record, path=record, present=True, **as_user)
    user_file("what kdevbox chose for neovim:", mine.nvim_plan, plan.to_json(), "644", target)


def render_config(cfg: Neovim, home: str) -> str:
    """kdevbox's neovim config for the developer of this home (the deploy's, and the bench's
    equivalent Ansible playbook's)."""
    return render("nvim/kdevbox.lua.j2", cfg=cfg, rst_parser=Home(home).parser("rst"))


def _links_to_a_release() -> bool:
    """Whether /usr/local/bin/nvim is a link kdevbox made to a release (asked only on apt hosts)."""
    link = host.get_fact(Link, path=NVIM_LINK)
    return bool(link) and str(link and link.get("link_target", "")).startswith(NVIM_RELEASE_PREFIX)


def _load_from_user_init(home: str, as_user: dict[str, Any]) -> None:
    """One marked line in the user's init file loads kdevbox's config; the rest stays theirs.

    neovim refuses to start with both init.lua and init.vim, so a user with init.vim keeps it.
    """
    config_dir = Home(home).nvim_config_dir
    init_vim = posixpath.join(config_dir, "init.vim")
    vimscript = bool(host.get_fact(File, path=init_vim, **as_user)) and not host.get_fact(
        File, path=posixpath.join(config_dir, "init.lua"), **as_user
    )
    init = init_vim if vimscript else posixpath.join(config_dir, "init.lua")
    comment = '"' if vimscript else "--"
    managed_block(
        f"load kdevbox's config from {init}",
        init,
        render("nvim/init-block.j2", vimscript=vimscript),
        NVIM_INIT_MARKER.format(comment=comment),
        **as_user,
    )
