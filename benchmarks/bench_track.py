"""``@cf.track()``: what a tracked call costs over calling the function plainly.

A tracked call is a whole run (store entry, run log, index row, cache entry), so its
cost is per call, not per point. Three timings over N calls of a small function
(default 100) in a fresh project in a temporary folder:

- the floor: the same function called plainly (no framework);
- cold: every call has new arguments, so each computes and writes its run and entry;
- warm: the same arguments again, so each call is answered from the cache (and still
  recorded as a run).

Usage::

    python benchmarks/bench_track.py
    python benchmarks/bench_track.py --calls 30 --repeat 2   # a quick pass
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

SCRIPT = """
import json, sys, time
import curifactory as cf

def work(x, scale=2.0):
    return {"value": sum(i * scale for i in range(200)) + x}

tracked = cf.track()(work)
calls = int(sys.argv[1])
started = time.perf_counter()
for x in range(calls):
    work(x)
floor = time.perf_counter() - started
started = time.perf_counter()
for x in range(calls):
    tracked(x)
cold = time.perf_counter() - started
started = time.perf_counter()
for x in range(calls):
    tracked(x)
warm = time.perf_counter() - started
print(json.dumps({"floor": floor, "cold": cold, "warm": warm}))
"""


def measure(calls: int) -> dict[str, float]:
    """One fresh project: seconds of ``calls`` plain, cold tracked and warm tracked calls."""
    with tempfile.TemporaryDirectory() as folder:
        with open(os.path.join(folder, "curifactory_config.json"), "w") as handle:
            handle.write("{}")
        with open(os.path.join(folder, "bench.py"), "w") as handle:
            handle.write(SCRIPT)
        done = subprocess.run([sys.executable, "bench.py", str(calls)], cwd=folder, capture_output=True,
                              text=True, check=True)
        return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    rounds = [measure(args.calls) for _ in range(args.repeat)]
    print(f"@cf.track: {args.calls} calls, median of {args.repeat} fresh projects")
    print(f"{'':24}{'total':>10}{'per call':>12}")
    for key, label in (("floor", "plain function (floor)"), ("cold", "tracked, computed"),
                       ("warm", "tracked, from cache")):
        seconds = statistics.median(r[key] for r in rounds)
        print(f"{label:24}{seconds:>9.3f}s{seconds / args.calls * 1000:>10.2f}ms")


if __name__ == "__main__":
    main()
