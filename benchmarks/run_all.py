"""Run every benchmark in this folder, one after the other, and print their tables.

Usage::

    python benchmarks/run_all.py            # everything (a few minutes on 2 cores)
    python benchmarks/run_all.py --quick    # fewer sizes and repeats (about a minute)

Each script runs as its own process with this interpreter, so the numbers are the
same as running it alone. A failing script is reported and the others still run;
the exit code is 1 if any failed.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))

FULL = [
    ("bench_core.py", []),
    ("bench_cli.py", ["--sizes", "50,1000", "--repeat", "3"]),
    ("bench_report.py", []),
    ("bench_store_full.py", []),
    ("bench_parallel.py", []),
    ("bench_tracking.py", []),
    ("bench_sweeps.py", []),
    ("bench_track.py", []),
    ("bench_floor.py", ["--sizes", "50,1000"]),
    ("bench_store_size.py", []),
]
QUICK = [
    ("bench_core.py", []),
    ("bench_cli.py", ["--sizes", "50", "--repeat", "3"]),
    ("bench_report.py", ["--repeat", "2"]),
    ("bench_store_full.py", ["--repeat", "2"]),
    ("bench_tracking.py", ["--points", "20000", "--runs", "1000", "--repeat", "2"]),
    ("bench_sweeps.py", ["--records", "50", "--points", "200"]),
    ("bench_track.py", ["--calls", "30", "--repeat", "1"]),
    ("bench_floor.py", ["--sizes", "50", "--repeat", "1", "--warm", "2"]),
    ("bench_store_size.py", ["--runs", "2000", "--repeat", "3"]),
]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer sizes and repeats")
    args = parser.parse_args(argv)
    failed = []
    for script, extra in QUICK if args.quick else FULL:
        print(f"== {script} {' '.join(extra)}".rstrip(), flush=True)
        started = time.perf_counter()
        code = subprocess.call([sys.executable, os.path.join(HERE, script), *extra])
        print(f"   ({time.perf_counter() - started:.1f} s, exit {code})\n", flush=True)
        if code:
            failed.append(script)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
