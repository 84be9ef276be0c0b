"""Run tracking: the cost of logging a point, and querying many runs.

1. Logging: one stage logs N points (default 100,000) with ``record.log_metric``;
   the stage's time is compared with the same loop appending to a Python list
   (the no-framework floor: a point still needs its step, value and wall time).
2. Querying: a synthetic store of R runs x 5 records (default 10,000 runs) is
   written as run log folders; then the index is built (``--reindex``), and
   ``cf.load_runs`` and the ``curifactory runs`` command are timed on it.

Usage::

    python benchmarks/bench_tracking.py
    python benchmarks/bench_tracking.py --points 20000 --runs 1000   # a quick pass
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

CURIFACTORY = "import sys; from curifactory.cli import curifactory_main; sys.exit(curifactory_main())"


def bench_logging(points: int, repeat: int) -> dict[str, float]:
    """Seconds of a stage logging ``points`` points vs the list-append floor."""
    import curifactory as cf

    @cf.stage(None, ["done"])
    def logs(record):
        for step in range(points):
            record.log_metric("loss", 1.0 / (step + 1))
        return True

    @cf.stage(None, ["done"])
    def logs_many(record):
        for step in range(points // 5):
            record.log_metrics({"loss": 0.1, "acc": 0.2, "f1": 0.3, "lr": 0.01, "grad": 1.5})
        return True

    def floor() -> float:
        started = time.perf_counter()
        kept = []
        for step in range(points):
            kept.append((step, 1.0 / (step + 1), time.time()))
        return time.perf_counter() - started

    def stage_time(stage) -> float:
        manager = cf.ArtifactManager("bench_tracking", suppress_live_log=True)
        record = cf.Record(manager, None)
        stage(record)
        manager.finish("complete")
        return record.history[-1].seconds

    with tempfile.TemporaryDirectory() as folder:
        previous = os.getcwd()
        os.chdir(folder)
        try:
            logged = [stage_time(logs) for _ in range(repeat)]
            many = [stage_time(logs_many) for _ in range(repeat)]
        finally:
            os.chdir(previous)
    floors = [floor() for _ in range(repeat)]
    return {"floor": min(floors), "log_metric": min(logged), "log_metrics": min(many)}


def write_synthetic_store(store: str, runs: int, records: int = 5) -> None:
    """``runs`` finished run folders of ``records`` records each, as an experiment writes them."""
    root = os.path.join(store, "runlog")
    os.makedirs(root, exist_ok=True)
    for number in range(1, runs + 1):
        experiment = f"exp{number % 7}"
        reference = f"{experiment}_{number}_2026-11-{1 + number % 28:02d}-T{number % 24:02d}0000"
        document = {
            "format": 1, "reference": reference, "experiment": experiment, "run_number": number,
            "status": "complete" if number % 13 else "error", "start": f"2026-11-{1 + number % 28:02d}T10:00:00",
            "end": f"2026-11-{1 + number % 28:02d}T10:01:00", "duration": 60.0, "commit": f"{number:040x}",
            "dirty": number % 2 == 0, "host": "lab1", "user": "ana", "notes": None, "error": None,
            "tags": {"team": f"t{number % 3}"}, "info": {},
            "records": [{"index": i, "name": f"set{i}", "hash": f"{number:016x}{i:016x}", "aggregate": False,
                         "params": {"lr": 0.1 * (i + 1), "depth": i + 2, "model.kind": "ridge"},
                         "tags": {}, "info": {"epochs": 10},
                         "metrics": {"loss": 1.0 / (number + i), "acc": 0.5 + i / 10}, "stages": [],
                         "attachments": []} for i in range(records)],
        }
        folder = os.path.join(root, reference)
        os.makedirs(folder)
        with open(os.path.join(folder, "run.json"), "w", encoding="utf-8") as handle:
            json.dump(document, handle)


def bench_queries(runs: int, repeat: int) -> dict[str, float]:
    """Seconds to index, load and list ``runs`` synthetic runs."""
    from curifactory.runindex import RunIndex
    from curifactory.runs import load_runs

    with tempfile.TemporaryDirectory() as project:
        store = os.path.join(project, "data")
        write_synthetic_store(store, runs)
        with open(os.path.join(project, "curifactory_config.json"), "w") as handle:
            handle.write("{}")
        started = time.perf_counter()
        RunIndex(store).reindex()
        reindex = time.perf_counter() - started
        loads, filtered = [], []
        for _ in range(repeat):
            started = time.perf_counter()
            frame = load_runs(store=store)
            loads.append(time.perf_counter() - started)
            assert len(frame) == runs * 5, len(frame)
            started = time.perf_counter()
            load_runs("exp1*", where="metrics.loss < 0.001 and params.depth == 3", store=store)
            filtered.append(time.perf_counter() - started)
        command = []
        for _ in range(repeat):
            started = time.perf_counter()
            subprocess.run([sys.executable, "-c", CURIFACTORY, "runs", "--limit", "20"], cwd=project, check=True,
                           stdout=subprocess.DEVNULL, env=dict(os.environ, COLUMNS="160"))
            command.append(time.perf_counter() - started)
    return {"reindex": reindex, "load_runs": min(loads), "load_runs median": statistics.median(loads),
            "load_runs filtered": min(filtered), "curifactory runs": min(command)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    logging = bench_logging(args.points, args.repeat)
    added = logging["log_metric"] - logging["floor"]
    print(f"logging {args.points} points from one stage (best of {args.repeat}):")
    print(f"  floor (list append + time.time)  {logging['floor']:.3f} s")
    print(f"  record.log_metric                {logging['log_metric']:.3f} s   adds {added:.3f} s "
          f"({added / args.points * 1e6:.2f} us/point)  (target: adds < 1 s)")
    print(f"  record.log_metrics (5 per call)  {logging['log_metrics']:.3f} s")
    queries = bench_queries(args.runs, args.repeat)
    print(f"querying {args.runs} runs x 5 records:")
    for name, seconds in queries.items():
        target = "  (target < 1 s)" if name == "load_runs" else ""
        print(f"  {name:<20} {seconds:.3f} s{target}")


if __name__ == "__main__":
    main()
