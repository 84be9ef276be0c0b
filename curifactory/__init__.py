"""curifactory: parameterised experiments with cached stages, a run store and reports.

Compatible with experiment code written for curifactory 0.20.
"""

from __future__ import annotations

from curifactory import caching, errors, hashing, params, staging
from curifactory.caching import Lazy
from curifactory.errors import (
    CachersMismatchError,
    CurifactoryError,
    EmptyCachersError,
    InputSignatureError,
    MissingInputError,
    OutputSignatureError,
)
from curifactory.params import ExperimentParameters, set_hash_functions
from curifactory.staging import aggregate, stage

__version__ = "0.21.0"

_LAZY_SUBMODULES = {"experiment", "manager", "record", "store", "procedure", "reporting", "config", "dag",
                    "execution", "events", "history", "environment", "metadata", "notebook", "runs", "rundiff", "tracking"}
_LAZY_NAMES = {
    "ArtifactManager": ("curifactory.manager", "ArtifactManager"),
    "Record": ("curifactory.record", "Record"),
    "Procedure": ("curifactory.procedure", "Procedure"),
    "load_runs": ("curifactory.runs", "load_runs"),
    "load_metrics": ("curifactory.runs", "load_metrics"),
    "load_run": ("curifactory.runs", "load_run"),
    "find_run": ("curifactory.runs", "find_run"),
    "diff_runs": ("curifactory.rundiff", "diff_runs"),
    "grid": ("curifactory.sweeps", "grid"),
    "plot_runs": ("curifactory.reporting.charts", "plot_runs"),
    "metadata_providers": ("curifactory.metadata", "metadata_providers"),
    "track": ("curifactory.tracked", "track"),
    "current": ("curifactory.tracking", "current"),
}

__all__ = [
    "ArtifactManager",
    "CachersMismatchError",
    "CurifactoryError",
    "EmptyCachersError",
    "ExperimentParameters",
    "InputSignatureError",
    "Lazy",
    "MissingInputError",
    "OutputSignatureError",
    "Procedure",
    "Record",
    "aggregate",
    "caching",
    "current",
    "diff_runs",
    "find_run",
    "grid",
    "load_metrics",
    "load_run",
    "load_runs",
    "metadata_providers",
    "errors",
    "hashing",
    "params",
    "plot_runs",
    "set_hash_functions",
    "stage",
    "staging",
    "track",
    "__version__",
]


def __getattr__(name: str):  # PEP 562: keep `import curifactory` fast
    import importlib

    if name in _LAZY_NAMES:
        module, attr = _LAZY_NAMES[name]
        value = getattr(importlib.import_module(module), attr)
    elif name in _LAZY_SUBMODULES:
        value = importlib.import_module(f"curifactory.{name}")
    else:
        raise AttributeError(f"module 'curifactory' has no attribute {name!r}")
    globals()[name] = value
    return value
