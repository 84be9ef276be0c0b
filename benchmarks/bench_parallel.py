"""Serial vs ``--parallel 2`` on CPU-bound stages (whole-process wall time).

Run: ``python benchmarks/bench_parallel.py [--sets 8] [--work 3000000]``. Each
parameter set runs a pure-Python CPU-bound stage, then a cheap one; an aggregate
combines them. Each mode starts from an empty cache.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time

EXPERIMENT = '''
from dataclasses import dataclass
import os
import curifactory as cf
from curifactory.caching import JsonCacher, PickleCacher

@dataclass
class P(cf.ExperimentParameters):
    seed: int = 0
    work: int = 1000

@cf.stage(None, ["value"], [PickleCacher])
def crunch(record):
    total = record.params.seed
    for i in range(record.params.work):
        total = (total * 31 + i) % 1000003
    return total

@cf.stage(["value"], ["scaled"], [JsonCacher])
def scale(record, value):
    return value / 7

@cf.aggregate(["scaled"], ["summary"], [JsonCacher])
def summary(record, records, scaled):
    return sum(scaled.values())

def get_params():
    n = int(os.environ["CF_BENCH_SETS"])
    work = int(os.environ["CF_BENCH_WORK"])
    return [P(name=f"s{i}", seed=i, work=work) for i in range(n)]

def run(param_sets, manager):
    records = [scale(crunch(cf.Record(manager, p))) for p in param_sets]
    return summary(cf.Record(manager, None), records)
'''

RUNNER = (
    "import sys; from curifactory.experiment import run_experiment\n"
    "n = int(sys.argv[1]); agg, m = run_experiment('par', parallel=n if n > 1 else None, report=False)\n"
    "print(agg.state['summary'])\n"
)


def timed_run(root: str, workers: int, env: dict[str, str]) -> tuple[float, str]:
    shutil.rmtree(os.path.join(root, "data"), ignore_errors=True)
    start = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", RUNNER, str(workers)], cwd=root, env=env, check=True,
                         capture_output=True, text=True).stdout.strip()
    return time.perf_counter() - start, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sets", type=int, default=8)
    parser.add_argument("--work", type=int, default=3_000_000)
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    root = tempfile.mkdtemp(prefix="cf-bench-par-")
    try:
        os.makedirs(os.path.join(root, "experiments"))
        open(os.path.join(root, "experiments", "__init__.py"), "w").close()
        with open(os.path.join(root, "experiments", "par.py"), "w") as handle:
            handle.write(textwrap.dedent(EXPERIMENT))
        with open(os.path.join(root, "curifactory_config.json"), "w") as handle:
            json.dump({}, handle)
        env = dict(os.environ, CF_BENCH_SETS=str(args.sets), CF_BENCH_WORK=str(args.work))
        results = {}
        for workers in (1, 2):
            runs = [timed_run(root, workers, env) for _ in range(args.repeat)]
            results[workers] = min(t for t, _ in runs)
            assert len({out for _, out in runs}) == 1
        print(f"{args.sets} sets x CPU-bound stage ({args.work} iterations), cold cache, {os.cpu_count()} cores")
        print(f"  serial       {results[1]:6.2f} s")
        print(f"  --parallel 2 {results[2]:6.2f} s   speed-up x{results[1] / results[2]:.2f}")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
