"""Shared fixtures: real projects written into ``tmp_path``."""

from __future__ import annotations

import json
import os
import subprocess
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


CHAIN_EXPERIMENT = """
import curifactory as cf
from dataclasses import dataclass
from curifactory.caching import JsonCacher

@dataclass
class Params(cf.ExperimentParameters):
    n: int = 1

def get_params():
    return [Params(name="a", n=1), Params(name="b", n=2)]

@cf.stage(None, ["x"], [JsonCacher])
def load(record):
    return record.params.n

@cf.stage(["x"], ["y"], [JsonCacher])
def double(record, x):
    return 2 * x

@cf.aggregate(["y"], ["total"], [JsonCacher])
def total(record, records, y):
    return sum(y.values())

def run(param_sets, manager):
    records = [double(load(cf.Record(manager, p))) for p in param_sets]
    return total(cf.Record(manager, None), records)
"""
"""Two sets (n=1, 2) through load -> double, and an aggregate summing them (6)."""


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


CURIFACTORY = "import sys; from curifactory.cli import curifactory_main; sys.exit(curifactory_main())"
"""``python -c CURIFACTORY ARGS`` runs the ``curifactory`` command of the installed package."""


SIDE_HELPER = '''
def side(text):
    with open(os.environ["CF_TEST_SIDE"], "a") as f:
        f.write(text + "\\n")
'''
"""Source of ``side(text)`` for test experiments: appends a line to the file named by ``CF_TEST_SIDE``."""


class CliProject:
    """A project in ``tmp_path`` and a way to run the ``experiment`` command in it.

    Stages of the test experiments append ``stage:set`` lines to the file named by
    ``CF_TEST_SIDE``, so :meth:`executed` tells what ran.
    """

    def __init__(self, tmp_path: Path, files: dict[str, str]):
        self.root = write_project(tmp_path / "proj", files)
        self.side = tmp_path / "side.log"

    def env(self) -> dict:
        env = dict(os.environ, CF_TEST_SIDE=str(self.side))
        env.pop("NO_COLOR", None)
        return env

    def run(self, *args: str, **kwargs) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "curifactory", *args], cwd=self.root, env=self.env(),
                              capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=180, **kwargs)

    def curifactory(self, *args: str, **kwargs) -> subprocess.CompletedProcess:
        """Run the ``curifactory`` command (``runs``, ``show``, ...) in the project."""
        return subprocess.run([sys.executable, "-c", CURIFACTORY, *args], cwd=self.root, env=self.env(),
                              capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=180, **kwargs)

    def executed(self) -> list[str]:
        """The stage calls that executed so far (and forget them)."""
        if not self.side.exists():
            return []
        lines = self.side.read_text().split()
        self.side.unlink()
        return lines

    def store(self) -> list[dict]:
        return json.loads((self.root / "data" / "store.json").read_text())

    def report(self, reference: str) -> Path:
        return self.root / "reports" / reference / "index.html"


def files_under(root: Path, with_pycache: bool = True) -> set[str]:
    """Every path below ``root`` (relative); ``with_pycache=False`` leaves ``__pycache__`` out."""
    return {str(p.relative_to(root)) for p in root.rglob("*") if with_pycache or "__pycache__" not in p.parts}
