"""Benchmark workload: a DataFrame (csv) -> a dict (json) -> a float (pickle) per parameter set."""

from __future__ import annotations

from dataclasses import dataclass

import curifactory as cf
from curifactory.caching import JsonCacher, PandasCsvCacher, PickleCacher


@dataclass
class Params(cf.ExperimentParameters):
    """One parameter set: a seed and a scale."""

    seed: int = 0
    scale: float = 1.0


@cf.stage(None, ["table"], [PandasCsvCacher])
def make_table(record: cf.Record):
    """A 1000-row DataFrame derived from the parameters."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(record.params.seed)
    return pd.DataFrame({"x": rng.normal(size=1000) * record.params.scale, "y": np.arange(1000)})


@cf.stage(["table"], ["summary"], [JsonCacher])
def summarize(record: cf.Record, table):
    """A few summary statistics as a dict."""
    return {"mean": float(table["x"].mean()), "std": float(table["x"].std()), "rows": int(len(table))}


@cf.stage(["summary"], ["score"], [PickleCacher])
def score(record: cf.Record, summary):
    """One float."""
    return summary["mean"] / (summary["std"] or 1.0)


def run(param_sets, manager):
    """Three chained stages per parameter set."""
    for param_set in param_sets:
        record = cf.Record(manager, param_set)
        score(summarize(make_table(record)))
