"""Stand-ins for neovim's upstreams: plugin repos with the real module layout served by git daemon,
and an official-layout release tarball built from the machine's own nvim."""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
import tarfile
from dataclasses import dataclass
from pathlib import Path

from tests.data.upstream_facts import UPSTREAM_TAGS
from tests.testhosts import run

# Small but loadable versions of each plugin's modules, at the paths the real plugins use.
PLUGIN_FILES: dict[str, dict[str, str]] = {
    "plenary.nvim": {"lua/plenary/init.lua": "return { path = {}, job = {} }\n"},
    "telescope.nvim": {
        "lua/telescope/init.lua": """local telescope = { extensions = {} }
function telescope.setup(opts) telescope.opts = opts end
function telescope.register_extension(ext) return ext end
function telescope.load_extension(name)
  require('plenary')
  local ext = require('telescope._extensions.' .. name)
  telescope.extensions[name] = ext.exports
  return ext.exports
end
return telescope
""",
        # Like telescope's own: live_grep without ripgrep notifies an error and opens nothing.
        "lua/telescope/builtin.lua": """local builtin = {}
for _, name in ipairs({ 'find_files', 'live_grep', 'buffers' }) do
  builtin[name] = function()
    if name == 'live_grep' and vim.fn.executable('rg') == 0 then
      vim.notify("'ripgrep', or similar alternative, is a required dependency for the live_grep picker.",
        vim.log.levels.ERROR)
      return
    end
    local buf = vim.api.nvim_create_buf(false, true)
    vim.api.nvim_open_win(buf, true, { relative = 'editor', row = 1, col = 1, width = 20, height = 5 })
  end
end
return builtin
""",
        # Like telescope 0.1.x's health check: ripgrep and fd, as ERROR when missing.
        "lua/telescope/health.lua": """local health = vim.health or require('health')
local ok = health.ok or health.report_ok
local error = health.error or health.report_error
local start = health.start or health.report_start
return {
  check = function()
    start('Checking external dependencies')
    for _, tool in ipairs({ 'rg', 'fdfind' }) do
      if vim.fn.executable(tool) == 1 then ok(tool .. ': found') else error(tool .. ': not found') end
    end
  end,
}
""",
    },
    "telescope-heading.nvim": {
        "lua/telescope/_extensions/heading.lua": """return require('telescope').register_extension({
  exports = { heading = function() return 'heading' end },
})
""",
    },
}
# Every tag upstream has, oldest first, with upstream's spelling (tests/data/upstream_facts.py).
PLUGIN_TAGS = {name: list(tags) for name, tags in UPSTREAM_TAGS.items()}


def _git(cwd: Path, *args: str) -> str:
    env_args = ["-c", "user.name=Stand In", "-c", "user.email=stand-in@example.org"]
    return subprocess.run(
        ["git", *env_args, *args], cwd=cwd, check=True, text=True, capture_output=True
    ).stdout.strip()


def build_plugin_repos(base: Path) -> Path:
    """Bare repos base/<plugin>.git, one commit per tag, each tag's commit saying which tag it is."""
    for name, files in PLUGIN_FILES.items():
        work = base / "work" / name
        work.mkdir(parents=True)
        _git(work, "init", "-q", "-b", "master")
        for tag in PLUGIN_TAGS[name]:
            for rel, text in files.items():
                (work / rel).parent.mkdir(parents=True, exist_ok=True)
                (work / rel).write_text(text)
            (work / "VERSION").write_text(tag + "\n")
            _git(work, "add", "-A")
            _git(work, "commit", "-q", "-m", f"release {tag}")
            _git(work, "tag", "-a", tag, "-m", tag)
        _git(base, "clone", "-q", "--bare", str(work), str(base / f"{name}.git"))
    shutil.rmtree(base / "work")
    return base


def tag_commit(repos: Path, name: str, tag: str) -> str:
    return _git(repos / f"{name}.git", "rev-parse", f"{tag}^{{commit}}")


@dataclass(frozen=True)
class ReleaseTarball:
    version: str
    sha256: str
    path: Path


def build_release_tarball(served: Path) -> ReleaseTarball:
    """served/v<version>/nvim-linux-x86_64.tar.gz in the official layout, from /usr/bin/nvim.

    The distribution's nvim links shared libraries a fresh host lacks: they go into lib/ with an
    $ORIGIN rpath, so the tree runs anywhere like the official, self-contained one.
    """
    nvim = Path("/usr/bin/nvim")
    version = re.search(r"v([0-9.]+)", run(str(nvim), "--version").stdout)
    assert version, "no nvim on this machine"
    stage = served / "stage" / "nvim-linux-x86_64"
    (stage / "bin").mkdir(parents=True)
    (stage / "lib").mkdir()
    shutil.copy2(nvim, stage / "bin/nvim")
    for line in run("ldd", str(nvim)).stdout.splitlines():
        match = re.search(r"=> (/\S+)", line)
        if match and not re.search(r"/(libc|libm|libgcc_s|ld-linux[^/]*)\.so", match.group(1)):
            shutil.copy2(match.group(1), stage / "lib")
    run("patchelf", "--set-rpath", "$ORIGIN/../lib", str(stage / "bin/nvim"))
    shutil.copytree("/usr/share/nvim/runtime", stage / "share/nvim/runtime", symlinks=False)
    target = served / f"v{version.group(1)}" / "nvim-linux-x86_64.tar.gz"
    target.parent.mkdir(parents=True)
    with tarfile.open(target, "w:gz") as tar:
        tar.add(stage, arcname="nvim-linux-x86_64")
    shutil.rmtree(served / "stage")
    digest = hashlib.sha256(target.read_bytes()).hexdigest()
    return ReleaseTarball(version.group(1), digest, target)
