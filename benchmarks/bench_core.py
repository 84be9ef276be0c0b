"""Core micro-benchmarks: hashing, per-stage overhead on a cache hit, import time.

Run: ``python benchmarks/bench_core.py``. Targets (issue 2): hashing a 12-field set
with a nested dataclass < 20 us; cache-hit overhead per stage < 0.5 ms (artifact
load excluded); ``import curifactory`` < 0.15 s.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
import timeit
from dataclasses import dataclass, field

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

import curifactory as cf  # noqa: E402
from curifactory import hashing  # noqa: E402
from curifactory.caching import JsonCacher  # noqa: E402


@dataclass
class Model:
    layers: int = 3
    activation: str = "relu"
    dropout: float = 0.1


@dataclass
class Params(cf.ExperimentParameters):
    lr: float = 0.01
    epochs: int = 10
    batch: int = 32
    dataset: str = "train.csv"
    features: list = field(default_factory=lambda: ["a", "b", "c"])
    seed: int = 42
    shuffle: bool = True
    split: tuple = (0.8, 0.2)
    optimizer: str = "adam"
    model: Model = field(default_factory=Model)


def bench_hash() -> float:
    p = Params()
    n = 20000
    return min(timeit.repeat(lambda: hashing.compute_hash(p), number=n, repeat=5)) / n


def bench_cache_hit(stages: int = 200) -> float:
    @cf.stage(None, ["v"], [JsonCacher])
    def value(record):
        return record.params.epochs

    with tempfile.TemporaryDirectory() as tmp:
        os.chdir(tmp)
        warm = cf.ArtifactManager("bench", suppress_live_log=True)
        sets = [Params(name=f"s{i}", epochs=i) for i in range(stages)]
        for p in sets:
            value(cf.Record(warm, p))
        manager = cf.ArtifactManager("bench", suppress_live_log=True)
        records = [cf.Record(manager, Params(name=f"s{i}", epochs=i)) for i in range(stages)]
        start = time.perf_counter()
        for record in records:
            value(record)
        elapsed = time.perf_counter() - start
        assert all(r.history[-1].status.value == "cached" for r in records)
    return elapsed / stages


def bench_import(repeat: int = 7) -> float:
    code = "import time; t=time.perf_counter(); import curifactory; print(time.perf_counter()-t)"
    times = [float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout)
             for _ in range(repeat)]
    return statistics.median(times)


def main() -> None:
    hash_us = bench_hash() * 1e6
    hit_ms = bench_cache_hit() * 1e3
    import_s = bench_import()
    print(f"hash a 12-field set with a nested dataclass: {hash_us:8.2f} us   (target < 20 us)")
    print(f"stage overhead on a cache hit (no load):     {hit_ms:8.3f} ms   (target < 0.5 ms)")
    print(f"import curifactory (median of 7):            {import_s:8.3f} s    (target < 0.15 s)")


if __name__ == "__main__":
    main()
