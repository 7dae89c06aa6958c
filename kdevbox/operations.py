"""pyinfra operations kdevbox needs and pyinfra lacks."""

from __future__ import annotations

import hashlib
import posixpath
from collections.abc import Generator

from pyinfra import host
from pyinfra.api import QuoteString, StringCommand, operation
from pyinfra.facts.files import File, Sha256File


def sha256_text(content: str) -> str:
    return hashlib.sha256(content.encode()).hexdigest()


@operation()
def secret_file(path: str, sha256: str, mode: str, user: str, group: str) -> Generator[StringCommand]:
    """Install the operation's stdin (`_stdin=content`) as path, for files that hold secrets.

    The content never appears in a command line, a diff or pyinfra's output: it travels on stdin
    into a temp file created 0600 beside path, gets its owner and mode, then is renamed over path.
    sha256 is the content's digest, so a rerun with the same content changes nothing.
    """
    current = host.get_fact(File, path=path)
    if (
        current
        and host.get_fact(Sha256File, path=path) == sha256
        and (current["user"], current["group"], current["mode"]) == (user, group, int(mode))
    ):
        host.noop(f"{path} is up to date")
        return
    template = QuoteString(posixpath.join(posixpath.dirname(path), ".kdevbox.XXXXXX"))
    yield StringCommand(
        "umask 077 && tmp=$(mktemp",
        template,
        ') && cat > "$tmp" && chown',
        QuoteString(f"{user}:{group}"),
        '"$tmp" && chmod',
        mode,
        '"$tmp" && mv -f "$tmp"',
        QuoteString(path),
    )
