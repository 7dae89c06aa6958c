"""The developer's global git settings, read on a host that has no git yet (dotfiles first)."""

from __future__ import annotations

import subprocess
from pathlib import Path

from kdevbox.facts import GlobalGitConfig, parse_git_config

DOTFILE = """\
# a developer's ~/.gitconfig
[user]
\tname = Ada Kernel
\temail = ada@example.org ; work address
[core]
\texcludesfile = "~/.gitignore_mine"
[sendemail "linux"]
\tsmtpServer = smtp.example.org
[core]
\tExcludesFile = ~/.gitignore_later
"""


def test_parse_matches_what_git_reads(tmp_path: Path) -> None:
    """The fallback parser agrees with git itself on a dotfile with comments, quotes, a subsection
    and a key set twice (the last wins)."""
    config = tmp_path / "gitconfig"
    config.write_text(DOTFILE)
    listed = subprocess.run(
        ["git", "config", "--file", str(config), "--list"], check=True, capture_output=True, text=True
    ).stdout.splitlines()
    by_git = {key.lower(): value for key, _, value in (line.partition("=") for line in listed)}
    assert parse_git_config(DOTFILE.splitlines()) == by_git
    assert by_git["core.excludesfile"] == "~/.gitignore_later"


def test_fact_prefers_git_and_falls_back_to_the_files() -> None:
    fact = GlobalGitConfig()
    with_git = ["git:user.name=Ada Kernel", "git:core.excludesfile=~/x"]
    assert fact.process(with_git) == {"user.name": "Ada Kernel", "core.excludesfile": "~/x"}
    without = [
        "file:[core]",
        "file:\texcludesfile = ~/.config/git/ignore",
        "file:[core]",
        "file:\texcludesfile = ~/y",
    ]
    assert fact.process(without) == {"core.excludesfile": "~/y"}
