"""`import curifactory` stays light."""

from __future__ import annotations

import subprocess
import sys

HEAVY = ("pandas", "matplotlib", "jinja2", "graphviz", "rich", "IPython", "numpy")


def test_import_leaves_heavy_libraries_out():
    code = ("import sys, curifactory as cf\n"
            "cf.ArtifactManager; cf.Record; cf.caching.PandasCacher; cf.experiment.run_experiment\n"
            f"print([m for m in {HEAVY!r} if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_public_api():
    import curifactory as cf

    for name in ("ExperimentParameters", "set_hash_functions", "Record", "stage", "aggregate", "ArtifactManager",
                 "Procedure", "Lazy", "InputSignatureError", "OutputSignatureError", "EmptyCachersError",
                 "CachersMismatchError"):
        assert hasattr(cf, name), name
    for module in ("caching", "reporting", "hashing", "experiment", "manager", "record", "store", "params",
                   "procedure", "staging"):
        assert getattr(cf, module).__name__ == f"curifactory.{module}"
    from curifactory.caching import Lazy
    from curifactory.staging import InputSignatureError

    assert Lazy is cf.Lazy and InputSignatureError is cf.InputSignatureError
