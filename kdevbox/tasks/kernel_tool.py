"""kdevbox-kernel on the box: the series check and bisect program (root's), its settings and launcher
(the developer's), written by the kernel deploy from the same values its build uses."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from kdevbox import kdevbox_kernel
from kdevbox.config import Kernel
from kdevbox.layout import KERNEL_TOOL, Home, KernelTree
from kdevbox.steps import box_program
from kdevbox.target import Target


def tool_settings(
    cfg: Kernel, tree: KernelTree, home: str, make_variables: list[str]
) -> kdevbox_kernel.Settings:
    """What kdevbox-kernel reads: the tree, kdevbox's build of it and that build's make variables
    (given by the kernel task, which owns them), its own work dir, kdevbox-vm."""
    mine = Home(home)
    return kdevbox_kernel.Settings(
        name=cfg.name,
        source=tree.source,
        build=tree.build,
        configured=tree.configured_stamp,
        work=mine.kernel_work(cfg.name),
        make_variables=make_variables,
        vm=mine.run_script,
    )


def render_tool_settings(cfg: Kernel, tree: KernelTree, home: str, make_variables: list[str]) -> str:
    settings = tool_settings(cfg, tree, home, make_variables)
    return json.dumps(dataclasses.asdict(settings), indent=2) + "\n"


def kernel_tool(cfg: Kernel, tree: KernelTree, make_variables: list[str], target: Target) -> None:
    """kdevbox-kernel: the program root's (KERNEL_TOOL), its settings and launcher the developer's."""
    mine = Home(target.account.home)
    settings = render_tool_settings(cfg, tree, target.account.home, make_variables)
    source = Path(kdevbox_kernel.__file__).read_text()
    box_program(
        "kdevbox-kernel", KERNEL_TOOL, source, (mine.kernel_settings, settings), mine.kernel_script, target
    )
