"""docs/cli.md and the command-line parsers list the same flags, command by command."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from curifactory.cli import all_parsers, option_strings

DOC = Path(__file__).resolve().parent.parent / "docs" / "cli.md"
SECTIONS = {
    "experiment": "## `experiment NAME`",
    "experiment ls": "## `experiment ls`",
    "experiment reports": "## `experiment reports`",
    "curifactory init": "## `curifactory init`",
    "curifactory": "## `curifactory init`",
    "curifactory completion": "## `curifactory completion",
    "curifactory why": "## `curifactory why",
    "curifactory runs": "## `curifactory runs",
    "curifactory show": "## `curifactory show",
    "curifactory diff": "## `curifactory diff",
    "curifactory rerun": "## `curifactory rerun",
    "curifactory export": "## `curifactory export",
    "curifactory cache": "## `curifactory cache status",
    "curifactory cache status": "## `curifactory cache status",
    "curifactory cache verify": "## `curifactory cache verify",
    "curifactory cache gc": "## `curifactory cache gc",
    "curifactory pin": "## `curifactory pin",
    "curifactory unpin": "## `curifactory unpin",
}
HELP = {"-h", "--help"}
FLAG_IN_CODE = re.compile(r"`(-{1,2}[A-Za-z][\w-]*)")


def section(heading: str) -> str:
    """The text of docs/cli.md from ``heading`` to the next level-2 heading."""
    text = DOC.read_text(encoding="utf-8")
    start = text.index(heading)
    end = text.find("\n## ", start + len(heading))
    return text[start:] if end == -1 else text[start:end]


def documented(command: str) -> set[str]:
    return set(FLAG_IN_CODE.findall(section(SECTIONS[command])))


def parser_flags(command: str) -> set[str]:
    return set(option_strings(all_parsers()[command]))


@pytest.mark.parametrize("command", sorted(SECTIONS))
def test_every_flag_is_documented(command):
    missing = parser_flags(command) - documented(command)
    assert not missing, f"flags of '{command}' missing from docs/cli.md: {sorted(missing)}"


@pytest.mark.parametrize("heading", sorted(set(SECTIONS.values())))
def test_every_documented_flag_exists(heading):
    commands = [c for c, h in SECTIONS.items() if h == heading]
    known = set().union(*(parser_flags(c) for c in commands)) | HELP
    unknown = set(FLAG_IN_CODE.findall(section(heading))) - known
    assert not unknown, f"docs/cli.md documents flags that {commands} do not have: {sorted(unknown)}"


def test_every_command_has_a_section():
    assert set(SECTIONS) == set(all_parsers())
