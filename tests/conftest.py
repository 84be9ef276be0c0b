"""Shared fixtures: real projects written into ``tmp_path``."""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path

import pytest


def write_project(root: Path, files: dict[str, str], config: dict | None = None) -> Path:
    """Write a curifactory project (config + modules) under ``root``."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "curifactory_config.json").write_text(json.dumps(config or {}))
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    for package in ("experiments", "params"):
        init = root / package / "__init__.py"
        if (root / package).is_dir() and not init.exists():
            init.write_text("")
    return root


@pytest.fixture
def project(tmp_path, monkeypatch):
    """A factory: ``project(files)`` writes a project in tmp_path and chdirs into it."""

    def make(files: dict[str, str], config: dict | None = None) -> Path:
        root = write_project(tmp_path / "proj", files, config)
        monkeypatch.chdir(root)
        monkeypatch.syspath_prepend(str(root))
        return root

    yield make
    for name in [m for m in sys.modules if m.split(".")[0] in ("experiments", "params")]:
        del sys.modules[name]
