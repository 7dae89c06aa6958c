"""No-op rerun of deploys/devbox.py (apt proxy, git, clangd, neovim) on 1, 4 and 8 SSH test hosts,
and side by side with an equivalent Ansible playbook on the same provisioned host. Prints figures;
asserts nothing.

    python -m bench.noop_rerun [--hosts 1,4,8] [--repeat 3] [--quick]

Needs what the integration tests need (root, debootstrap, neovim, patchelf) plus ansible-core:
`pip install -e '.[bench]'`. Hosts are sshd test hosts on 127.0.0.1 (tests/testhosts.py), the
upstreams the tests' local stand-ins; the first deploy to the hosts is not timed.
"""

from __future__ import annotations

import functools
import json
import os
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path

from bench.options import bench_parser
from kdevbox.config import Clangd, Git, Neovim
from kdevbox.layout import GITIGNORE_MARKER, NVIM_INIT_MARKER
from kdevbox.tasks.neovim import plan_neovim, render_config
from kdevbox.templates import render
from tests import testhosts
from tests.neovim_stand_in import build_plugin_repos, build_release_tarball
from tests.setups import DEVBOX, LEAN, EditorUpstreams, write_inventory

HOST_COUNTS = (1, 4, 8)  # host counts the full run times
PLAYBOOK = Path(__file__).resolve().parent / "ansible" / "devbox.yml"


def run_pyinfra(inventory: Path) -> int:
    """One devbox run with the CLI users run; the number of operations that changed something."""
    run = subprocess.run(
        ["pyinfra", "-y", "--json", str(inventory), str(DEVBOX)],
        cwd=inventory.parent,
        capture_output=True,
        text=True,
    )
    if run.returncode != 0:
        raise SystemExit(f"pyinfra failed:\n{run.stderr[-3000:]}")
    return int(json.loads(run.stdout[run.stdout.index("{") :])["results"]["totals"]["success"])


def playbook_vars(upstreams: EditorUpstreams) -> dict[str, object]:
    """The playbook's inputs, rendered from kdevbox's own templates and default settings."""
    neovim = Neovim.model_validate(upstreams.neovim_settings())
    plan = plan_neovim(neovim, None, "bench")
    return {
        "dev_user": testhosts.DEV_USER,
        "gitignore_marker": GITIGNORE_MARKER,
        "gitignore_block": render("git/ignore.j2", patterns=Git().ignore_patterns).rstrip("\n"),
        "clangd_config": render("clangd/config.yaml.j2", cfg=Clangd()),
        "nvim_url": neovim.release_download,
        "nvim_version": neovim.release_version,
        "plugins": [{"name": name, "url": url, "ref": ref} for name, (url, ref) in plan.plugins.items()],
        "kdevbox_lua": render_config(neovim, f"/home/{testhosts.DEV_USER}"),
        "init_marker": NVIM_INIT_MARKER.format(comment="--"),
    }


def run_ansible(host: testhosts.SshHost, variables: Path, workdir: Path) -> str:
    """One playbook run against host; its recap line (ok=.. changed=..)."""
    inventory = workdir / "ansible-hosts"
    inventory.write_text(
        f"bench ansible_host=127.0.0.1 ansible_port={host.port} ansible_user=root "
        f"ansible_ssh_private_key_file={host.key} "
        f"ansible_ssh_common_args='-o UserKnownHostsFile={host.known_hosts}'\n"
    )
    run = subprocess.run(
        ["ansible-playbook", "-i", str(inventory), "-e", f"@{variables}", str(PLAYBOOK)],
        capture_output=True,
        text=True,
        env={**os.environ, "ANSIBLE_PIPELINING": "1", "ANSIBLE_HOST_KEY_CHECKING": "True"},
    )
    if run.returncode != 0:
        raise SystemExit(f"ansible-playbook failed:\n{run.stdout[-3000:]}")
    return next(line for line in reversed(run.stdout.splitlines()) if "changed=" in line).strip()


def timed(action: Callable[[], object], repeat: int) -> float:
    """Median wall time of repeat runs of action, in seconds."""
    times = []
    for _ in range(repeat):
        start = time.monotonic()
        action()
        times.append(time.monotonic() - start)
    return statistics.median(times)


def measure(counts: list[int], repeat: int) -> None:
    """The figures for each host count in counts (ascending), each the median of repeat runs."""
    with ExitStack() as stack:
        work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="kdevbox-bench-")))
        repos = build_plugin_repos(work / "repos")
        (work / "served").mkdir()
        release = build_release_tarball(work / "served")
        git_url = stack.enter_context(testhosts.git_daemon(repos))
        http_url = stack.enter_context(testhosts.http_server(work / "served"))
        upstreams = EditorUpstreams(repos, git_url, release, http_url)
        hosts = []
        for index in range(counts[-1]):
            root = stack.enter_context(testhosts.throwaway_rootfs(work / f"host{index}"))
            hosts.append(stack.enter_context(testhosts.ssh_host(root, work / f"ssh{index}", f"bench{index}")))

        def inventory(count: int) -> Path:
            members = [(f"bench{i}", hosts[i].inventory_data()) for i in range(count)]
            return write_inventory(
                work / f"inv{count}",
                members,
                # The capabilities the Ansible playbook has too: no guest, patch mail or tools.
                group_data={"user": testhosts.DEV_USER, "neovim": upstreams.neovim_settings(), **LEAN},
            )

        print(f"provisioning {counts[-1]} hosts (not timed)...", flush=True)
        run_pyinfra(inventory(counts[-1]))
        print("\nno-op rerun of deploys/devbox.py (pyinfra CLI, median of", repeat, "runs)")
        base = None
        for count in counts:
            path = inventory(count)
            assert run_pyinfra(path) == 0, "the rerun is not a no-op"
            seconds = timed(functools.partial(run_pyinfra, path), repeat)
            base = base or seconds
            print(f"  {count:>2} host(s): {seconds:6.2f} s   x{seconds / base:.2f} of 1 host")

        variables = work / "ansible-vars.json"
        variables.write_text(json.dumps(playbook_vars(upstreams)))
        print("\nsame host, no-op rerun: pyinfra vs an equivalent Ansible playbook")
        print("  ansible converge:", run_ansible(hosts[0], variables, work))
        print("  ansible rerun:   ", run_ansible(hosts[0], variables, work))
        one = inventory(1)
        py = timed(functools.partial(run_pyinfra, one), repeat)
        ans = timed(functools.partial(run_ansible, hosts[0], variables, work), repeat)
        print(f"  pyinfra  {py:6.2f} s\n  ansible  {ans:6.2f} s\n  ansible/pyinfra = {ans / py:.2f}")


def main() -> None:
    parser = bench_parser(__doc__)
    parser.add_argument(
        "--hosts", default=",".join(map(str, HOST_COUNTS)), help="host counts to time (comma-separated)"
    )
    parser.add_argument("--repeat", type=int, default=3, help="timed runs per figure (median)")
    args = parser.parse_args()
    if args.quick:
        measure([1], 1)
    else:
        measure(sorted(int(n) for n in args.hosts.split(",")), args.repeat)


if __name__ == "__main__":
    main()
