"""A warm run in a project whose store already holds thousands of runs, vs an empty one.

The workload (``workload/experiments/bench_top.py``, N=50) is run once cold in a fresh
copy; then warm runs alternate between that project as it is and the same project with
K older run blocks (default 5,000, copies of a real block of the workload, ~2.7 KB each)
added to its ``store.json``. Issue 16's target: at most 10% slower.

Usage::

    python benchmarks/bench_store_size.py
    python benchmarks/bench_store_size.py --runs 5000 --repeat 7
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def _warm(project: str, env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "curifactory", "bench_top", "-p", "bench", "--quiet"], cwd=project,
                   env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5000, help="older run blocks in the big store (default 5000)")
    parser.add_argument("--repeat", type=int, default=5, help="warm runs of each (default 5)")
    args = parser.parse_args()
    env = dict(os.environ, CF_BENCH_N="50")
    with tempfile.TemporaryDirectory() as folder:
        small, big = os.path.join(folder, "small"), os.path.join(folder, "big")
        shutil.copytree(os.path.join(HERE, "workload"), small,
                        ignore=shutil.ignore_patterns("data", "reports", "logs", "__pycache__"))
        _warm(small, env)  # cold: fills the cache
        shutil.copytree(small, big)
        store = os.path.join(big, "data", "store.json")
        with open(store) as handle:
            runs = json.load(handle)
        old = [dict(runs[-1], reference=f"old_{i}_2026-01-01-T000000", experiment_name="old", run_number=i + 1)
               for i in range(args.runs)]
        with open(store, "w") as handle:
            handle.write("[\n" + ",\n".join(json.dumps(b) for b in old + runs) + "\n]\n")
        size = os.path.getsize(store)
        times: dict[str, list[float]] = {"small": [], "big": []}
        for _ in range(args.repeat):
            times["small"].append(_warm(small, env))
            times["big"].append(_warm(big, env))
    empty, full = statistics.median(times["small"]), statistics.median(times["big"])
    print(f"warm N=50, median of {args.repeat} interleaved runs")
    print(f"  store with {len(runs)} runs:            {empty:.3f} s")
    print(f"  store with {args.runs + len(runs)} runs ({size / 2**20:.1f} MB): {full:.3f} s  "
          f"({(full / empty - 1) * 100:+.0f}%, target at most +10%)")


if __name__ == "__main__":
    main()
