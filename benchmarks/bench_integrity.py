"""What the cache's integrity checks cost: a large entry's sampled lookup against hashing it
whole, and ``curifactory cache status`` / ``verify`` on a cache of many entries.

Usage::

    python benchmarks/bench_integrity.py                 # a 256 MB entry, 3,000 small entries
    python benchmarks/bench_integrity.py --mb 1024 --entries 10000
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

from curifactory import fileio, maintenance

HERE = os.path.dirname(os.path.abspath(__file__))


def timed(fn, repeat: int = 5) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def large_entry(folder: str, megabytes: int) -> None:
    path = os.path.join(folder, "big.bin")
    with open(path, "wb") as handle:
        for _ in range(megabytes):
            handle.write(os.urandom(1024 * 1024))
    full = timed(lambda: fileio.hash_files([path]), 3)
    sample = timed(lambda: fileio.sample_hash([path]), 20)
    print(f"{megabytes} MB entry: full hash {full * 1000:.0f} ms (page cache warm), sampled check "
          f"{sample * 1000:.2f} ms ({full / sample:.0f}x less)")


def many_entries(folder: str, sets: int) -> None:
    project = os.path.join(folder, "workload")
    subprocess.run(["cp", "-r", os.path.join(HERE, "workload"), project], check=True)
    env = dict(os.environ, CF_BENCH_N=str(sets))
    subprocess.run([sys.executable, "-m", "curifactory", "bench", "-p", "bench", "--no-report"], cwd=project,
                   env=env, check=True, capture_output=True)
    cache = os.path.join(project, "data", "cache")
    data = os.path.join(project, "data")
    count = len(maintenance.scan(cache))
    status = timed(lambda: maintenance.cache_status(cache, data), 3)
    verify = timed(lambda: maintenance.verify(cache), 3)
    gc = timed(lambda: maintenance.collect_garbage(cache, data, keep_last=1, dry_run=True), 3)
    print(f"{count} entries ({sets} sets x 3 stages): cache status {status:.2f} s, verify {verify:.2f} s, "
          f"gc --dry-run {gc:.2f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=256)
    parser.add_argument("--entries", type=int, default=3000, help="cache entries (a multiple of 3)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        large_entry(folder, args.mb)
        many_entries(folder, max(1, args.entries // 3))


if __name__ == "__main__":
    main()
