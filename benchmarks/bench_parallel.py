"""Serial vs ``--parallel 2`` (whole-process wall time), on CPU-bound and on light stages.

Run: ``python benchmarks/bench_parallel.py [--sets 8] [--work 3000000] [--light-rounds 4]``.

CPU-bound: each parameter set runs a pure-Python CPU-bound stage, then a cheap one; an
aggregate combines them; each mode starts from an empty cache (issue 16's target: at
least 1.7x). Light: the workload of ``workload/`` (``bench_top``, N=50: three stages of a
few milliseconds per set), cold and warm, in interleaved rounds on fresh copies (target:
``--parallel 2`` never more than 5% slower than serial).
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


def light(rounds: int) -> None:
    """The light workload, serial and ``--parallel 2``, cold then twice warm, interleaved."""
    import statistics

    workload = os.path.join(os.path.dirname(os.path.abspath(__file__)), "workload")
    env = dict(os.environ, CF_BENCH_N="50")
    times: dict[str, list[float]] = {}

    def run(project: str, kind: str, extra: list[str]) -> None:
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "curifactory", "bench_top", "-p", "bench", "--quiet", *extra],
                       cwd=project, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        times.setdefault(kind, []).append(time.perf_counter() - start)

    for _ in range(rounds):
        with tempfile.TemporaryDirectory() as folder:
            projects = {}
            for name in ("serial", "parallel"):
                projects[name] = os.path.join(folder, name)
                shutil.copytree(workload, projects[name], ignore=shutil.ignore_patterns("data", "reports", "logs",
                                                                                         "__pycache__"))
            for kind in ("cold", "warm", "warm"):
                run(projects["serial"], f"serial {kind}", [])
                run(projects["parallel"], f"parallel {kind}", ["--parallel", "2"])
    print(f"light stages (bench_top, N=50), median of {rounds} rounds")
    for kind in ("cold", "warm"):
        serial, parallel = (statistics.median(times[f"{m} {kind}"]) for m in ("serial", "parallel"))
        print(f"  {kind}: serial {serial:5.2f} s, --parallel 2 {parallel:5.2f} s ({parallel / serial - 1:+.0%}; "
              f"target at most +5%)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--light-rounds", type=int, default=4, help="rounds of the light workload (0: none)")
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
    if args.light_rounds:
        light(args.light_rounds)


if __name__ == "__main__":
    main()
