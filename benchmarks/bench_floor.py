"""The ratio to the no-framework floor: the workload with numpy and pandas imported at the top.

Users' experiment modules import numpy and pandas at their top, so even a fully cached
run pays for those imports. This benchmark runs ``experiments/bench_top.py`` of
``benchmarks/workload/`` (N parameter sets x 3 chained stages: a DataFrame as CSV, a
dict as JSON, a float as a pickle) with ``python -m curifactory bench_top -p bench``,
and the same work as a plain script (``benchmarks/floor_script.py``: atomic writes
included; warm, it imports numpy and pandas and checks that the files exist), cold
(nothing cached) and warm (everything cached; our warm run writes its report), in
interleaved rounds on fresh copies, and prints the medians and the ratios.

Targets (issue 16): N=50 warm (with the report) and cold within 1.25x of the floor;
N=1000 warm under 1.5 s.

Usage::

    python benchmarks/bench_floor.py                       # N = 50 and 1000, 3 rounds
    python benchmarks/bench_floor.py --sizes 50 --repeat 5
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
WORKLOAD = os.path.join(HERE, "workload")
FLOOR = os.path.join(HERE, "floor_script.py")
TARGET_RATIO = 1.25
TARGET_WARM_1000 = 1.5


def _timed(args: list[str], cwd: str, env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run(args, cwd=cwd, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - started


def one_round(n: int, warm_runs: int) -> dict[str, list[float]]:
    """Fresh copies: our cold run, each floor's cold run, then warm runs of each, alternating."""
    env = dict(os.environ, CF_BENCH_N=str(n), PYTHONDONTWRITEBYTECODE="")
    ours_cmd = [sys.executable, "-m", "curifactory", "bench_top", "-p", "bench", "--quiet"]
    with tempfile.TemporaryDirectory() as folder:
        project = os.path.join(folder, "workload")
        shutil.copytree(WORKLOAD, project, ignore=shutil.ignore_patterns("data", "reports", "logs", "__pycache__"))
        commands = {
            "ours": (ours_cmd, project),
            "floor": ([sys.executable, FLOOR, os.path.join(folder, "floor"), str(n)], folder),
            "frozen": ([sys.executable, FLOOR, os.path.join(folder, "frozen"), str(n), "--freeze"], folder),
        }
        times: dict[str, list[float]] = {}
        for kind in ["cold"] + ["warm"] * warm_runs:
            for name, (command, cwd) in commands.items():
                times.setdefault(f"{name} {kind}", []).append(_timed(command, cwd, env))
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="50,1000", help="comma-separated N (default 50,1000)")
    parser.add_argument("--repeat", type=int, default=3, help="rounds per N (default 3)")
    parser.add_argument("--warm", type=int, default=3, help="warm runs per round (default 3)")
    args = parser.parse_args()
    print(f"whole-process wall times, median of {args.repeat} rounds ({args.warm} warm runs each)")
    print("floor: the plain script; frozen: the same script calling gc.freeze() after its imports, as the")
    print("experiment command does (the process then skips the collector's walks at exit), so the second")
    print("ratio is what the framework itself adds")
    print(f"{'N':>6} {'':5} {'curifactory':>12} {'floor':>8} {'ratio':>7} {'frozen':>8} {'ratio':>7}  target")
    for n in (int(s) for s in args.sizes.split(",")):
        rounds = [one_round(n, args.warm) for _ in range(args.repeat)]
        for kind in ("cold", "warm"):
            ours, floor, frozen = (statistics.median(t for r in rounds for t in r[f"{name} {kind}"])
                                   for name in ("ours", "floor", "frozen"))
            target = f"<= {TARGET_RATIO}x" if n == 50 else (f"< {TARGET_WARM_1000} s" if kind == "warm" else "")
            print(f"{n:>6} {kind:5} {ours:>11.2f}s {floor:>7.2f}s {ours / floor:>6.2f}x "
                  f"{frozen:>7.2f}s {ours / frozen:>6.2f}x  {target}")


if __name__ == "__main__":
    main()
