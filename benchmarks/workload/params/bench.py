"""Benchmark parameter sets: CF_BENCH_N of them (default 50)."""

from __future__ import annotations

import os

from experiments.bench import Params


def get_params():
    """CF_BENCH_N parameter sets with distinct seeds."""
    count = int(os.environ.get("CF_BENCH_N", "50"))
    return [Params(name=f"set{i}", seed=i, scale=1.0 + i / 10) for i in range(count)]
