"""The HTML page of a run diff: one self-contained, escaped page (inline style, no scripts)."""

from __future__ import annotations

from typing import Any

from curifactory.reporting.templating import environment


def diff_page(diff: Any) -> str:
    """The page of a :class:`~curifactory.rundiff.RunDiff`."""
    return environment().get_template("diff.html").render(diff=diff, css=None)
