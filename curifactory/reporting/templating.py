"""The jinja2 environment of the packaged report templates (autoescape on)."""

from __future__ import annotations

import functools
import os
from typing import Any

import jinja2
from markupsafe import Markup

PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))
TEMPLATES_DIR = os.path.join(PACKAGE_DIR, "templates")
DEFAULT_CSS = os.path.join(PACKAGE_DIR, "static", "style.css")


def safe(html: str | None) -> Markup:
    """Mark trusted HTML (a reportable's own HTML, graphviz's SVG) as not to be escaped."""
    return Markup(html or "")


def first_line(text: Any) -> str:
    """The first non-empty line of ``text`` ("" for None)."""
    for line in str(text or "").splitlines():
        if line.strip():
            return line.strip()
    return ""


def short_hash(value: Any, length: int = 10) -> str:
    """The first ``length`` characters of a hash or commit ("" for None)."""
    return str(value)[:length] if value else ""


@functools.lru_cache(maxsize=1)
def environment() -> jinja2.Environment:
    """The shared template environment: every value is escaped unless marked safe."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=jinja2.StrictUndefined,
    )
    env.filters["first_line"] = first_line
    env.filters["short_hash"] = short_hash
    return env


def default_css() -> str:
    """The packaged default style sheet."""
    with open(DEFAULT_CSS, encoding="utf-8") as handle:
        return handle.read()
