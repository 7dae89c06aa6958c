"""The jinja2 templates under templates/, rendered on the controller."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import jinja2

from kdevbox.shell import sh

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"


@cache
def _environment() -> jinja2.Environment:
    if not TEMPLATES.is_dir():
        raise FileNotFoundError(
            f"kdevbox templates not found at {TEMPLATES}: install kdevbox from its clone "
            "with `pip install -e .`"
        )
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,
        # Block tags take their own line in templates and leave no blank line behind.
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.filters["sh"] = sh  # the one quoting path into shell scripts (kdevbox.shell)
    environment.filters["lua"] = lua  # and into Lua
    return environment


def lua(value: str) -> str:
    """value as a Lua string literal: every character but letters, digits and `._/+@ ,:=-` spelled as
    decimal byte escapes, so no value can end the string or start code."""
    safe = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._/+@ ,:=-")
    return "'" + "".join(c if c in safe else "".join(f"\\{b:03d}" for b in c.encode()) for c in value) + "'"


def render(name: str, **context: Any) -> str:
    """A template rendered to text; tasks hand it to pyinfra operations."""
    return _environment().get_template(name).render(**context)
