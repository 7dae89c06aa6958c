"""One masking of secrets for every message, report, operation name and diff kdevbox writes."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

# A URL's user:password (or :password) part: everything from `scheme://` to the last `@` of the word,
# so a password with a `/` or `@` in it is hidden whole. Host-less `user:password@host` too.
_URL_USERINFO = re.compile(r"(?P<scheme>\b[a-z][a-z0-9+.-]*://)[^\s'\"<>]*@", re.IGNORECASE)
_BARE_USERINFO = re.compile(r"(?<![\w/:@.%+-])[\w.%+-]*:(?!//)[^\s'\"<>@]+@(?=[\w\[])")
# A key like these holds a secret; one ending in _env only names the variable that holds it.
SECRET_KEY = re.compile(r"^(?!.*_env$).*(pass|secret|token|credential)", re.IGNORECASE)
MASK = "***"


def mask_credentials(text: str) -> str:
    """text with the credentials of every URL in it replaced by ***."""
    return _BARE_USERINFO.sub(f"{MASK}@", _URL_USERINFO.sub(rf"\g<scheme>{MASK}@", text))


def redact(value: Any, key: str = "") -> Any:
    """value with anything stored under a secret-like key replaced, however deep, and URLs masked."""
    if SECRET_KEY.search(key):
        return MASK
    if isinstance(value, Mapping):
        return {k: redact(v, str(k)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact(v) for v in value]
    if isinstance(value, str):
        return mask_credentials(value)
    return value
