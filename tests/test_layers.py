"""The layers of docs/architecture.md hold: import-linter's contract, no import circle."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import grimp

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "curifactory"


def lint_imports(cwd: Path, pythonpath: Path | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    if pythonpath is not None:
        env["PYTHONPATH"] = str(pythonpath)
    return subprocess.run([sys.executable, "-c", "import sys; from importlinter.cli import lint_imports_command; "
                           "sys.exit(lint_imports_command())", "--no-cache"],
                          cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


def test_the_layers_contract_is_kept():
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 kept, 0 broken" in result.stdout


def test_an_upward_import_breaks_the_contract(tmp_path):
    copy = tmp_path / "src"
    shutil.copytree(PACKAGE, copy / "curifactory", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", copy / "pyproject.toml")
    decision = copy / "curifactory" / "decision.py"
    # even an import inside a function counts
    decision.write_text(decision.read_text() + "\n\ndef _draw():\n    from curifactory import reporting\n")
    result = lint_imports(copy, pythonpath=copy)
    assert result.returncode != 0
    assert "curifactory.decision -> curifactory.reporting" in result.stdout
    assert "1 broken" in result.stdout


def test_every_module_is_on_a_floor():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"][0]
    floors = {name.strip() for layer in config["layers"] for name in layer.replace("|", ":").split(":")}
    top_level = {f"curifactory.{p.stem if p.is_file() else p.name}" for p in PACKAGE.iterdir()
                 if (p.suffix == ".py" or (p / "__init__.py").exists()) and p.name != "__init__.py"}
    assert top_level - floors == {"curifactory.__main__"}


def test_no_module_imports_itself_back():
    graph = grimp.build_graph("curifactory")
    circles = [(a, b) for a in graph.modules for b in graph.find_modules_directly_imported_by(a)
               if graph.find_shortest_chain(importer=b, imported=a)]
    assert circles == []
