"""The benchmark workload as users write it: numpy and pandas imported at the top of the module.

The same three stages as ``bench.py`` (a DataFrame as CSV -> a dict as JSON -> a float as a
pickle per parameter set), so a warm run pays for importing numpy and pandas like the
no-framework floor (``benchmarks/floor_script.py``) does. ``benchmarks/bench_floor.py``
compares the two.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

import curifactory as cf
from curifactory.caching import JsonCacher, PandasCsvCacher, PickleCacher


@cf.stage(None, ["table"], [PandasCsvCacher])
def make_table(record: cf.Record) -> pd.DataFrame:
    """A 1000-row DataFrame derived from the parameters."""
    rng = np.random.default_rng(record.params.seed)
    return pd.DataFrame({"x": rng.normal(size=1000) * record.params.scale, "y": np.arange(1000)})


@cf.stage(["table"], ["summary"], [JsonCacher])
def summarize(record: cf.Record, table: pd.DataFrame) -> dict:
    """A few summary statistics as a dict."""
    return {"mean": float(table["x"].mean()), "std": float(table["x"].std()), "rows": int(len(table))}


@cf.stage(["summary"], ["score"], [PickleCacher])
def score(record: cf.Record, summary: dict) -> float:
    """One float."""
    return summary["mean"] / (summary["std"] or 1.0)


def run(param_sets, manager):
    """Three chained stages per parameter set."""
    for param_set in param_sets:
        score(summarize(make_table(cf.Record(manager, param_set))))
