"""Report generation time for a run of N records x 3 stages (default 200).

The script builds a real run with a plain ``ArtifactManager`` in a temporary
project (three chained stages per record, a small reportable per record, and an
aggregate with a DataFrame table over every record), then times
:func:`curifactory.reporting.write_report` on it: the whole report (graph drawn
by ``dot``, templates, reportables, run index and ``_latest`` copy) and its parts.
Target: under 1 s for 200 records (curifactory 0.20.5 takes about 5 s, calling
``dot`` once per record).

Usage::

    python benchmarks/bench_report.py [--records 200] [--repeat 5]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass

import curifactory as cf
from curifactory.caching import JsonCacher, PickleCacher
from curifactory.config import load_settings
from curifactory.reporting import DFReporter, JsonReporter, context, graph, render, write_report


@dataclass
class Params(cf.ExperimentParameters):
    seed: int = 0
    scale: float = 1.0


@cf.stage(None, ["numbers"], [JsonCacher])
def make_numbers(record):
    return [record.params.seed * i * record.params.scale for i in range(10)]


@cf.stage(["numbers"], ["summary"], [JsonCacher])
def summarize(record, numbers):
    return {"total": sum(numbers), "count": len(numbers)}


@cf.stage(["summary"], ["score"], [PickleCacher])
def score(record, summary):
    record.report(JsonReporter(summary, name="summary"))
    return summary["total"] / max(summary["count"], 1)


@cf.aggregate(["score"], ["table"], [PickleCacher])
def compare(record, records, score):
    import pandas as pd

    table = pd.DataFrame({"name": [r.params.name for r in score], "score": list(score.values())})
    record.report(DFReporter(table, name="scores"))
    return table


def build_run(root: str, n_records: int) -> cf.ArtifactManager:
    """A real, finished run of ``n_records`` x 3 stages and one aggregate."""
    with open(os.path.join(root, "curifactory_config.json"), "w") as handle:
        handle.write("{}")
    settings = load_settings(root)
    manager = cf.ArtifactManager("bench", settings=settings, status_override="complete",
                                 run_line="python benchmarks/bench_report.py")
    records = []
    for i in range(n_records):
        record = cf.Record(manager, Params(name=f"set-{i}", seed=i))
        score(summarize(make_numbers(record)))
        records.append(record)
    compare(cf.Record(manager, None), records)
    manager.finish("complete")
    return manager


def timed(fn, repeat: int) -> tuple[float, float]:
    """(median, min) seconds of ``fn()`` over ``repeat`` calls."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), min(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    root = tempfile.mkdtemp(prefix="cf-bench-report-")
    try:
        start = time.perf_counter()
        manager = build_run(root, args.records)
        print(f"run of {args.records} records x 3 stages + 1 aggregate built in {time.perf_counter() - start:.2f} s")
        records = manager.records

        dot_source = graph.build_dot(records)
        parts = {
            "build DOT source": lambda: graph.build_dot(records),
            "dot -Tsvg (one call)": lambda: graph.render_svg(dot_source),
            "record/param views": lambda: context.param_set_views(records, context.record_views(records)),
        }
        for label, fn in parts.items():
            median, best = timed(fn, args.repeat)
            print(f"  {label:<28} median {median * 1000:7.1f} ms   min {best * 1000:7.1f} ms")
        folder = tempfile.mkdtemp(dir=root)
        median, best = timed(lambda: render.report_html(manager, folder, folder), args.repeat)
        print(f"  {'page (graph + templates)':<28} median {median * 1000:7.1f} ms   min {best * 1000:7.1f} ms")

        median, best = timed(lambda: write_report(manager), args.repeat)
        page = write_report(manager)
        size = os.path.getsize(page) / 1e6
        print(f"write_report (whole report, index, _latest): median {median:.3f} s, min {best:.3f} s "
              f"({len(manager.reportables)} reportables, page {size:.1f} MB)")
        verdict = "OK" if median < 1.0 else "TOO SLOW"
        print(f"target < 1.0 s: {verdict}")
        return 0 if median < 1.0 else 1
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
