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


class _QuietBytecodeCache(jinja2.FileSystemBytecodeCache):
    """Compiled templates kept between processes (in jinja2's private per-user temporary
    folder, keyed by the template source's checksum), so a run does not recompile the
    report templates; a cache that cannot be read or written is simply not used."""

    def load_bytecode(self, bucket: Any) -> None:
        try:
            super().load_bytecode(bucket)
        except (OSError, ValueError, EOFError):
            bucket.reset()

    def dump_bytecode(self, bucket: Any) -> None:
        from curifactory import fileio

        try:  # written whole and renamed: a process starting meanwhile never reads half a file
            with fileio.replacing(self._get_cache_filename(bucket)) as tmp, open(tmp, "wb") as handle:
                bucket.write_bytecode(handle)
        except OSError:
            pass


def _bytecode_cache() -> jinja2.BytecodeCache | None:
    try:
        return _QuietBytecodeCache()
    except (OSError, RuntimeError):  # no usable temporary folder: compile every time
        return None


@functools.lru_cache(maxsize=1)
def environment() -> jinja2.Environment:
    """The shared template environment: every value is escaped unless marked safe."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=jinja2.StrictUndefined,
        bytecode_cache=_bytecode_cache(),
    )
    env.filters["first_line"] = first_line
    env.filters["short_hash"] = short_hash
    return env


def default_css() -> str:
    """The packaged default style sheet."""
    with open(DEFAULT_CSS, encoding="utf-8") as handle:
        return handle.read()
