"""apt's proxy: one apt.conf.d file, present exactly when a proxy is configured."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from pyinfra import state
from pyinfra.api import deploy
from pyinfra.operations import files

from kdevbox.config import AptProxy, mask_credentials
from kdevbox.templates import JINJA_OPTIONS, template_path

PROXY_CONF = "/etc/apt/apt.conf.d/80kdevbox-proxy"


class _DiffSwitch:
    """Turns off pyinfra's --diff output while operations that write secrets are prepared.

    Counted, because pyinfra prepares hosts in parallel greenlets that may overlap here.
    """

    depth = 0
    saved = False

    @contextmanager
    def off(self, hide: bool) -> Iterator[None]:
        if not hide:
            yield
            return
        if self.depth == 0:
            self.saved = state.config.DIFF
        self.depth += 1
        state.config.DIFF = False
        try:
            yield
        finally:
            self.depth -= 1
            if self.depth == 0:
                state.config.DIFF = self.saved


_diffs = _DiffSwitch()


@deploy("apt proxy")
def apt_proxy(cfg: AptProxy) -> None:
    if not cfg.enabled:
        files.file(name=f"Remove {PROXY_CONF} (no apt proxy configured)", path=PROXY_CONF, present=False)
        return
    shown = ", ".join(mask_credentials(str(url)) for url in (cfg.http, cfg.https) if url)
    with _diffs.off(cfg.has_credentials):
        files.template(
            name=f"Write {PROXY_CONF} (proxy {shown})",
            src=template_path("apt/kdevbox-proxy.j2"),
            dest=PROXY_CONF,
            user="root",
            group="root",
            # apt reads its config as root; a URL with a password must not be world-readable.
            mode="600" if cfg.has_credentials else "644",
            jinja_env_kwargs=dict(JINJA_OPTIONS),
            cfg=cfg,
        )
