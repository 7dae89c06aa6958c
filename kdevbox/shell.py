"""The one way a value from settings, a fact or the network reaches a shell.

Python-built commands quote every value with `sh`; templates use the same function as the jinja
filter `| sh`. Fixed script text (operators, `$(nproc)`, redirections) is written by kdevbox itself
and never carries a value unquoted.
"""

from __future__ import annotations

import shlex


def sh(value: object) -> str:
    """value as one shell word, whatever it holds."""
    return shlex.quote(str(value))


def words(*parts: object) -> str:
    """A command line of which every part is one shell word (program and arguments)."""
    return " ".join(sh(part) for part in parts)


def sourcing(env_file: str | None) -> str:
    """A command prefix exporting the variables of env_file (a 0600 file only its account reads:
    secrets stay off command lines); nothing when there is no file to read."""
    if env_file is None:
        return ""
    return f"if [ -r {sh(env_file)} ]; then set -a; . {sh(env_file)}; set +a; fi; "
