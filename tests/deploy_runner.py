"""Run a deploy through pyinfra's Python API and report, per host, which operations changed it.

Runs in its own process (`python -m tests.deploy_runner INVENTORY DEPLOY`) because pyinfra patches
the interpreter for gevent; the report is built from pyinfra's State, not from its printed output.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pyinfra_cli  # noqa: F401 - first: it patches the interpreter for gevent, as the CLI does
from pyinfra.api import Config, State
from pyinfra.api.connect import connect_all
from pyinfra.api.operations import run_ops
from pyinfra.api.state import StateStage
from pyinfra.context import ctx_config, ctx_inventory, ctx_state
from pyinfra_cli.inventory import make_inventory
from pyinfra_cli.util import load_deploy_file


def run(inventory_file: str, deploy_file: str) -> dict[str, Any]:
    state = State(check_for_changes=False)
    state.cwd = str(Path(inventory_file).parent)
    config = Config()
    with ctx_state.use(state), ctx_config.use(config):
        inventory = make_inventory(inventory_file, cwd=state.cwd)
        with ctx_inventory.use(inventory):
            state.init(inventory, config)
            state.set_stage(StateStage.Connect)
            connect_all(state)
            state.set_stage(StateStage.Prepare)
            load_deploy_file(state, deploy_file)
            state.set_stage(StateStage.Execute)
            run_ops(state)
    report: dict[str, Any] = {}
    for host in inventory:
        changed = [
            sorted(state.get_op_meta(op_hash).names)
            for op_hash in host.op_hash_order
            if state.get_op_data_for_host(host, op_hash).operation_meta.did_change()
        ]
        report[host.name] = {
            "failed": host in state.failed_hosts,
            "changed": changed,
            "operations": len(host.op_hash_order),
        }
    return report


if __name__ == "__main__":
    print(json.dumps(run(sys.argv[1], sys.argv[2])))
