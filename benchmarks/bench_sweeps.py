"""Charts and sweeps: the report of a run with logged metrics, and loading a YAML grid.

1. A live run of R records (default 200), each logging M metrics (3) over S steps
   (100); its report is written with charts (vl-convert installed) and, for the
   floor, the same run's report with no metrics logged.
2. A YAML parameter file whose grid has P points (default 1,000) is loaded and
   checked against its dataclass.

Usage::

    python benchmarks/bench_sweeps.py
    python benchmarks/bench_sweeps.py --records 50 --points 200
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from dataclasses import dataclass


def bench_report(records: int, metrics: int, steps: int, log: bool) -> float:
    """Seconds to write the report of a run of ``records`` records (logging or not)."""
    import curifactory as cf

    @cf.stage(None, ["done"])
    def train(record):
        if log:
            for step in range(steps):
                record.log_metrics({f"metric{m}": (m + 1) / (step + 1) for m in range(metrics)})
        return True

    with tempfile.TemporaryDirectory() as folder:
        previous = os.getcwd()
        os.chdir(folder)
        try:
            manager = cf.ArtifactManager("bench_charts", suppress_live_log=True)
            for index in range(records):
                train(cf.Record(manager, cf.ExperimentParameters(name=f"set{index}")))
            manager.finish("complete")
            manager.generate_report()  # the first report also writes reports/_assets once
            started = time.perf_counter()
            manager.generate_report()
            return time.perf_counter() - started
        finally:
            os.chdir(previous)


@dataclass
class _Model:
    depth: int = 2


def bench_yaml(points: int) -> float:
    """Seconds to load a YAML grid of ``points`` points (10 x points/10)."""
    import importlib

    from curifactory.paramfiles import load_yaml

    lrs = ", ".join(str(0.001 * (i + 1)) for i in range(points // 10))
    text = f"class: bench_sweeps_params.Params\nbase: {{epochs: 5}}\ngrid:\n  lr: [{lrs}]\n  depth: [{', '.join(str(d) for d in range(10))}]\n"
    with tempfile.TemporaryDirectory() as folder:
        with open(os.path.join(folder, "bench_sweeps_params.py"), "w") as handle:
            handle.write("from dataclasses import dataclass\nimport curifactory as cf\n\n@dataclass\n"
                         "class Params(cf.ExperimentParameters):\n    lr: float = 0.1\n    depth: int = 2\n"
                         "    epochs: int = 1\n")
        path = os.path.join(folder, "grid.yaml")
        with open(path, "w") as handle:
            handle.write(text)
        import sys

        sys.path.insert(0, folder)
        try:
            started = time.perf_counter()
            sets = load_yaml(path, None, importlib.import_module)
            elapsed = time.perf_counter() - started
        finally:
            sys.path.remove(folder)
        assert len(sets) == points, len(sets)
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=200)
    parser.add_argument("--metrics", type=int, default=3)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--points", type=int, default=1000)
    args = parser.parse_args()
    with_charts = bench_report(args.records, args.metrics, args.steps, log=True)
    without = bench_report(args.records, args.metrics, args.steps, log=False)
    print(f"report of {args.records} records x {args.metrics} metrics x {args.steps} steps: "
          f"{with_charts:.3f} s with charts (target < 1.5 s); {without:.3f} s for the same run logging nothing")
    print(f"YAML grid of {args.points} points loaded and checked: {bench_yaml(args.points):.3f} s")


if __name__ == "__main__":
    main()
