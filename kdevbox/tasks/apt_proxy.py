"""apt's proxy: one apt.conf.d file, present exactly when a proxy is configured."""

from __future__ import annotations

from pyinfra.api import deploy
from pyinfra.operations import files

from kdevbox.config import AptProxy, mask_credentials
from kdevbox.layout import APT_PROXY_CONF
from kdevbox.operations import sha256_text, text_file
from kdevbox.templates import render


@deploy("apt proxy")
def apt_proxy(cfg: AptProxy) -> None:
    if not cfg.enabled:
        files.file(
            name=f"Remove {APT_PROXY_CONF} (no apt proxy configured)", path=APT_PROXY_CONF, present=False
        )
        return
    shown = ", ".join(mask_credentials(str(url)) for url in (cfg.http, cfg.https) if url)
    content = render("apt/kdevbox-proxy.j2", cfg=cfg)
    # Proxy URLs may carry a password: the content goes on stdin, never into output or diffs.
    text_file(
        name=f"Write {APT_PROXY_CONF} (proxy {shown})",
        path=APT_PROXY_CONF,
        sha256=sha256_text(content),
        # apt reads its config as root; a URL with a password must not be world-readable.
        mode="600" if cfg.has_credentials else "644",
        user="root",
        group="root",
        _stdin=content,
    )
