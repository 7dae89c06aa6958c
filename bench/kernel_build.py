"""Kernel build figures on this machine: cold and ccache-warm builds of the test configuration
(tinyconfig + kdevbox's guest fragment), and compile_commands.json generation with the tree's
gen_compile_commands.py, Bear and compiledb on the same tree. Prints figures; asserts nothing.

    python -m bench.kernel_build [--tree /usr/src/linux-source-6.1.tar.xz] [--jobs N] [--quick]

--quick: no warm rebuild, and Bear records init/ alone (its interception costs ~6x a build: the
whole tree under it is minutes that CI cannot spare). Bear and compiledb are measured where they are
on PATH.

Needs build-essential, flex, bison, bc, libssl-dev, libelf-dev, ccache, bear, and compiledb on PATH
(`pip install compiledb`). Works in a temp dir with its own ccache; the machine's is not touched.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from bench.options import bench_parser
from kdevbox.config import Kernel
from kdevbox.kconfig import fragment_text

TREE = "/usr/src/linux-source-6.1.tar.xz"  # linux-source-6.1's tarball


def timed(command: str, cwd: Path, env: dict[str, str]) -> float:
    start = time.monotonic()
    subprocess.run(command, shell=True, cwd=cwd, env=env, check=True, stdout=subprocess.DEVNULL)
    return time.monotonic() - start


def entries(path: Path) -> int:
    return len(json.loads(path.read_text()))


def measure(tree: str, jobs: int, quick: bool) -> None:
    """The figures for the kernel tarball tree, built with jobs jobs; quick: see the module's doc."""
    with tempfile.TemporaryDirectory(prefix="kdevbox-kbench-") as tmp:
        work = Path(tmp)
        src, build = work / "src", work / "build"
        src.mkdir()
        subprocess.run(["tar", "-xf", tree, "-C", str(src), "--strip-components=1"], check=True)
        env = {**os.environ, "CCACHE_DIR": str(work / "ccache")}
        make = f"make -s -C {src} O={build} -j{jobs}"
        (work / "frag.config").write_text(fragment_text(Kernel(base="tinyconfig", fragments=["guest"])))
        timed(f"{make} tinyconfig", work, env)
        timed(
            f"{src}/scripts/kconfig/merge_config.sh -m -O {build} {build}/.config {work}/frag.config",
            work,
            env,
        )
        timed(f"{make} olddefconfig", work, env)

        build_cmd = f'{make} CC="ccache gcc"'
        print(f"kernel build, tinyconfig + guest fragment, -j{jobs}, ccache")
        print(f"  cold (empty ccache):  {timed(build_cmd, work, env):7.1f} s")
        if not quick:
            timed(f"{make} clean", work, env)
            print(f"  warm (after clean):   {timed(build_cmd, work, env):7.1f} s")

        print("compile_commands.json for the same tree")
        gen = work / "gen.json"
        seconds = timed(
            f"python3 {src}/scripts/clang-tools/gen_compile_commands.py -d {build} -o {gen}", work, env
        )
        print(f"  gen_compile_commands.py (built tree): {seconds:7.1f} s  {entries(gen):6d} entries")
        if shutil.which("bear"):
            timed(f"{make} clean", work, env)
            bear = work / "bear.json"
            target, what = (" init/", "init/ only") if quick else ("", "clean build")
            seconds = timed(f"bear --output {bear} -- {build_cmd}{target}", work, env)
            label = f"bear ({what}, warm ccache):"
            print(f"  {label:<38}{seconds:7.1f} s  {entries(bear):6d} entries")
        else:
            print("  bear: not on PATH (apt-get install bear)")
        if shutil.which("compiledb"):
            # `compiledb -n`/`compiledb make` parse make's dry run, which does not follow Kbuild's
            # recursive makes (a handful of entries). Like kdevbox: a real V=1 build's log, parsed.
            # Not `make -s`: it silences V=1.
            timed(f"{make} clean", work, env)
            compiledb, log = work / "compiledb.json", work / "build.log"
            loud = build_cmd.replace("make -s ", "make ", 1)
            seconds = timed(f"{loud} V=1 > {log} 2>&1", work, env)
            parse = timed(f"compiledb -d {build} -o {compiledb} -p {log}", work, env)
            found = entries(compiledb)
            print(f"  compiledb (V=1 build, warm ccache):   {seconds:7.1f} s  {found:6d} entries")
            print(f"    of which parsing the build log:     {parse:7.1f} s")
        else:
            print("  compiledb: not on PATH (pip install compiledb)")


def main() -> None:
    parser = bench_parser(__doc__)
    parser.add_argument("--tree", default=TREE, help="kernel source tarball")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    measure(args.tree, args.jobs, args.quick)


if __name__ == "__main__":
    main()
