"""clangd that works on a kernel tree, and a tool that records compile_commands.json."""

from __future__ import annotations

import posixpath

from pyinfra.api import deploy
from pyinfra.operations import files

from kdevbox.config import Clangd
from kdevbox.layout import CLANGD_LINK, Home
from kdevbox.steps import apt_install, pip_tool, user_file
from kdevbox.target import Target
from kdevbox.templates import render


@deploy("clangd")
def clangd_setup(cfg: Clangd, target: Target) -> None:
    # A compiler and make come with it: compile databases are recorded from real builds.
    packages = [cfg.package, "build-essential"]
    packages += ["bear"] if cfg.compile_db == "bear" else ["python3-venv"]
    apt_install("clangd and compile database tools", packages)

    versioned = cfg.versioned_binary
    files.link(
        name=f"clangd resolves to {versioned or '/usr/bin/clangd'}",
        path=CLANGD_LINK,
        target=versioned,
        present=versioned is not None,
    )
    pip_tool(
        "compiledb",
        cfg.compiledb_version,
        present=cfg.compile_db == "compiledb",
        proxy=target.config.proxy.single,
        hint="or clangd.compile_db: 'bear'",
    )

    config = Home(target.account.home).clangd_config
    files.directory(
        name="clangd config directory", path=posixpath.dirname(config), present=True, **target.as_user
    )
    user_file("clangd config", config, render("clangd/config.yaml.j2", cfg=cfg), "644", target)
