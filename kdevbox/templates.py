"""Where the jinja2 templates live, and rendering them on the controller."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import jinja2

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"
# Block tags take their own line in templates and leave no blank line behind.
JINJA_OPTIONS: dict[str, Any] = {"trim_blocks": True, "lstrip_blocks": True}


def template_path(name: str) -> str:
    """Absolute path of a template, for pyinfra's files.template (relative paths follow the cwd)."""
    path = TEMPLATES / name
    if not path.is_file():
        raise FileNotFoundError(
            f"kdevbox template {name} not found under {TEMPLATES}: run from a clone "
            "installed with `pip install -e .`"
        )
    return str(path)


@cache
def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,
        **JINJA_OPTIONS,
    )


def render(name: str, **context: Any) -> str:
    """A template rendered to text, for content that is not a whole file (managed blocks)."""
    return _environment().get_template(name).render(**context)
