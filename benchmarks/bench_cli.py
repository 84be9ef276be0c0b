"""Time the ``experiment`` command on the benchmark workload, cold and warm.

The workload (``benchmarks/workload/``) runs N parameter sets through three
chained stages: a 1000-row DataFrame (csv cacher) -> a dict (json cacher) -> a
float (pickle cacher). For each N the workload is copied into a fresh temporary
folder; the first run computes everything (cold), the next runs find everything
cached (warm; the report is written every time). Times are whole-process wall
times of ``python -m curifactory bench -p bench``.

Usage::

    python benchmarks/bench_cli.py                 # N = 50, 200, 1000
    python benchmarks/bench_cli.py --sizes 50 --repeat 5
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
from dataclasses import dataclass

WORKLOAD = os.path.join(os.path.dirname(os.path.abspath(__file__)), "workload")
TARGETS = {50: (1.2, 0.6), 1000: (None, 4.0)}
"""N -> (cold target, warm target) in seconds, from the project's goals."""


@dataclass
class Timing:
    """The measured wall times for one N."""

    n: int
    cold: float
    warm: list[float]

    @property
    def warm_median(self) -> float:
        return statistics.median(self.warm)


def run_once(folder: str, n: int, extra: list[str]) -> float:
    """Run the workload once in ``folder``; returns the wall time in seconds."""
    env = dict(os.environ, CF_BENCH_N=str(n))
    command = [sys.executable, "-m", "curifactory", "bench", "-p", "bench", *extra]
    started = time.perf_counter()
    result = subprocess.run(command, cwd=folder, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True)
    seconds = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"the benchmark run failed (exit {result.returncode}):\n{result.stderr}")
    return seconds


def measure(n: int, repeat: int, extra: list[str], keep: bool) -> Timing:
    """One cold run and ``repeat`` warm runs of a fresh copy of the workload."""
    folder = tempfile.mkdtemp(prefix=f"cf-bench-{n}-")
    try:
        project = os.path.join(folder, "workload")
        shutil.copytree(WORKLOAD, project, ignore=shutil.ignore_patterns("data", "logs", "reports", "__pycache__"))
        cold = run_once(project, n, extra)
        warm = [run_once(project, n, extra) for _ in range(repeat)]
    finally:
        if keep:
            print(f"kept {folder}", file=sys.stderr)
        else:
            shutil.rmtree(folder, ignore_errors=True)
    return Timing(n, cold, warm)


def _verdict(value: float, target: float | None) -> str:
    if target is None:
        return ""
    return f"(target < {target:g} s: {'ok' if value < target else 'MISSED'})"


def print_table(timings: list[Timing]) -> None:
    """The results as a fixed-width table."""
    print(f"{'N':>6}  {'cold s':>7}  {'warm s':>7}  {'warm ms/set':>11}  targets")
    for timing in timings:
        cold_target, warm_target = TARGETS.get(timing.n, (None, None))
        verdicts = (_verdict(timing.cold, cold_target), _verdict(timing.warm_median, warm_target))
        notes = " ".join(v for v in verdicts if v)
        print(f"{timing.n:>6}  {timing.cold:>7.2f}  {timing.warm_median:>7.2f}  "
              f"{1000 * timing.warm_median / timing.n:>11.2f}  {notes}")


def main(argv: list[str] | None = None) -> int:
    """Parse the options, run the measurements and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="50,200,1000", help="comma-separated N values (default: %(default)s)")
    parser.add_argument("--repeat", type=int, default=3, help="warm runs per N; the median is shown")
    parser.add_argument("--keep", action="store_true", help="keep the temporary project folders")
    parser.add_argument("extra", nargs="*", help="extra flags for the experiment command (after --)")
    args = parser.parse_args(argv)
    timings = []
    for n in (int(size) for size in args.sizes.split(",")):
        timing = measure(n, args.repeat, args.extra, args.keep)
        print(f"N={n}: cold {timing.cold:.2f} s, warm {', '.join(f'{w:.2f}' for w in timing.warm)} s",
              file=sys.stderr, flush=True)
        timings.append(timing)
    if args.extra:
        print(f"experiment flags: {' '.join(args.extra)} (the targets assume none)")
    print_table(timings)
    return 0


if __name__ == "__main__":
    sys.exit(main())
