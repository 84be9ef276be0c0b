"""Code fingerprints: how long they take, and what code-aware caching adds to a warm run.

Usage::

    python benchmarks/bench_fingerprint.py            # all three measurements
    python benchmarks/bench_fingerprint.py --sets 50 --repeat 7

1. the bundled example's stages (``experiments/polyfit.py``): first fingerprint
   in a fresh process (the file is parsed once), then a cached lookup;
2. a synthetic stage reaching 50 helpers in a module of its own (target: under
   5 ms for the first fingerprint, issue 12);
3. the workload (``benchmarks/workload``) warm, whole-process wall time, with
   code-aware caching on (default) and with ``--code-changes ignore`` (target:
   under 5 % more at N=50). Runs alternate so the machine's drift hits both.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, REPO)

TIMER = textwrap.dedent("""
    import sys, time
    sys.path.insert(0, {root!r})
    from curifactory.fingerprint import fingerprint
    import {module} as m
    functions = [getattr(m, name).stage_spec.function if hasattr(getattr(m, name), "stage_spec")
                 else getattr(m, name) for name in {names!r}]
    start = time.perf_counter()
    prints = [fingerprint(f, {root!r}) for f in functions]
    first = time.perf_counter() - start
    start = time.perf_counter()
    for _ in range(1000):
        for f in functions:
            fingerprint(f, {root!r})
    cached = (time.perf_counter() - start) / 1000 / len(functions)
    print(first, cached, sum(len(p.helpers) for p in prints))
""")


def time_fingerprints(root: str, module: str, names: list[str]) -> tuple[float, float, int]:
    """(first fingerprint of all ``names`` in a fresh process, one cached lookup, helpers covered)."""
    code = TIMER.format(root=root, module=module, names=names)
    out = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, check=True).stdout
    first, cached, helpers = out.split()
    return float(first), float(cached), int(helpers)


def synthetic_project(folder: str, helpers: int = 50) -> str:
    """A project whose stage calls ``helpers`` chained helpers, some using module constants."""
    os.makedirs(os.path.join(folder, "synth"), exist_ok=True)
    open(os.path.join(folder, "synth", "__init__.py"), "w").close()
    lines = ["SCALE = 2", ""]
    for i in range(helpers):
        nxt = f"helper_{i + 1}(x) + " if i + 1 < helpers else ""
        lines += [f"def helper_{i}(x):", f'    """Helper {i}."""', f"    y = x * SCALE + {i}",
                  f"    return {nxt}y % 7", ""]
    lines += ["def stage(record):", "    return helper_0(record)", ""]
    with open(os.path.join(folder, "synth", "chain.py"), "w") as handle:
        handle.write("\n".join(lines))
    return folder


def warm_overhead(sets: int, repeat: int) -> tuple[float, float]:
    """Median warm wall time of the workload with code-aware caching on, and with it ignored."""
    folder = tempfile.mkdtemp(prefix="cf-bench-fp-")
    try:
        project = os.path.join(folder, "workload")
        shutil.copytree(os.path.join(HERE, "workload"), project,
                        ignore=shutil.ignore_patterns("data", "logs", "reports", "__pycache__"))
        env = dict(os.environ, CF_BENCH_N=str(sets))

        def once(*extra: str) -> float:
            started = time.perf_counter()
            subprocess.run([sys.executable, "-m", "curifactory", "bench", "-p", "bench", "--no-log", *extra],
                           cwd=project, env=env, stdout=subprocess.DEVNULL, check=True)
            return time.perf_counter() - started

        once()
        on, off = [], []
        for _ in range(repeat):
            on.append(once())
            off.append(once("--code-changes", "ignore"))
        return statistics.median(on), statistics.median(off)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", type=int, default=50, help="parameter sets of the warm-run comparison")
    parser.add_argument("--repeat", type=int, default=7, help="warm runs of each kind")
    args = parser.parse_args(argv)
    first, cached, helpers = time_fingerprints(REPO, "experiments.polyfit",
                                               ["generate_data", "fit_model", "evaluate", "compare_models"])
    print(f"bundled example, 4 stages ({helpers} pieces of code): first {first * 1e3:.2f} ms in all, "
          f"cached lookup {cached * 1e6:.2f} us")
    with tempfile.TemporaryDirectory() as folder:
        synthetic_project(folder)
        first, cached, helpers = time_fingerprints(folder, "synth.chain", ["stage"])
    verdict = "ok" if first < 0.005 else "MISSED"
    print(f"a stage reaching 50 helpers ({helpers} pieces of code): first {first * 1e3:.2f} ms "
          f"(target < 5 ms: {verdict}), cached lookup {cached * 1e6:.2f} us")
    on, off = warm_overhead(args.sets, args.repeat)
    extra = (on - off) / off * 100
    print(f"warm run N={args.sets}: code-aware {on:.3f} s, --code-changes ignore {off:.3f} s: "
          f"{extra:+.1f} % (target < 5 %: {'ok' if extra < 5 else 'MISSED'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
