"""What ``--store-full`` costs: a warm 50-set run with and without it.

The workload is the project benchmark's: N parameter sets x 3 chained stages (a
1000-row DataFrame with a csv cacher -> a dict with a json cacher -> a float with a
pickle cacher). The script writes that project into a temporary folder, runs it
once cold to fill the cache, then times whole-process warm runs (all cached, report
included) alternating plain and ``--store-full`` runs, and prints the medians and
the difference. Target: ``--store-full`` adds under 0.3 s (0.20.5 adds ~0.7 s).

It also times :func:`curifactory.runfolder.write_run_folder` alone on the same
cache (300 files), split into its parts, so the run folder's own cost is visible.

Usage::

    python benchmarks/bench_store_full.py [--sets 50] [--repeat 5]
"""

from __future__ import annotations

import argparse
import importlib.util
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

EXPERIMENT = '''
"""Benchmark workload: three chained stages per parameter set."""
from dataclasses import dataclass

import curifactory as cf
from curifactory.caching import JsonCacher, PandasCsvCacher, PickleCacher


@dataclass
class Params(cf.ExperimentParameters):
    seed: int = 0
    rows: int = 1000


@cf.stage(None, ["frame"], [PandasCsvCacher])
def make_frame(record):
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(record.params.seed)
    return pd.DataFrame({"x": rng.normal(size=record.params.rows), "y": rng.normal(size=record.params.rows)})


@cf.stage(["frame"], ["summary"], [JsonCacher])
def summarize(record, frame):
    return {"mean_x": float(frame["x"].mean()), "mean_y": float(frame["y"].mean())}


@cf.stage(["summary"], ["score"], [PickleCacher])
def score(record, summary):
    return summary["mean_x"] - summary["mean_y"]


def run(param_sets, manager):
    return [score(summarize(make_frame(cf.Record(manager, p)))) for p in param_sets]
'''

PARAMS = '''
"""{sets} parameter sets for the benchmark."""
from experiments.bench import Params


def get_params():
    return [Params(name=f"set{{i}}", seed=i) for i in range({sets})]
'''

LIBRARY_RUNNER = """
import sys
from curifactory.experiment import run_experiment
run_experiment("bench", ["bench"], store_full="--store-full" in sys.argv, run_string=" ".join(sys.argv))
"""


def make_project(root: Path, sets: int) -> None:
    """Write the benchmark project (config, experiment, parameters) into ``root``."""
    (root / "experiments").mkdir(parents=True)
    (root / "params").mkdir()
    (root / "experiments" / "__init__.py").write_text("")
    (root / "params" / "__init__.py").write_text("")
    (root / "experiments" / "bench.py").write_text(textwrap.dedent(EXPERIMENT))
    (root / "params" / "bench.py").write_text(PARAMS.format(sets=sets))
    (root / "curifactory_config.json").write_text("{}")
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    subprocess.run(["git", "add", "."], cwd=root, check=True)
    subprocess.run(
        ["git", "-c", "user.name=bench", "-c", "user.email=bench@example.com", "commit", "-q", "-m", "bench"],
        cwd=root,
        check=True,
    )


def command(extra: list[str]) -> list[str]:
    """The ``experiment bench -p bench`` command, through the CLI when it exists."""
    if importlib.util.find_spec("curifactory.cli") is None:
        return [sys.executable, "-c", LIBRARY_RUNNER, *extra]
    script = shutil.which("experiment")
    base = [script] if script else [sys.executable, "-m", "curifactory"]
    return [*base, "bench", "-p", "bench", "--plain", *extra]


def timed_run(root: Path, extra: list[str]) -> float:
    """Wall time of one whole process running the experiment."""
    start = time.perf_counter()
    done = subprocess.run(command(extra), cwd=root, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"run failed ({' '.join(extra)}):\n{done.stdout}\n{done.stderr}")
    return elapsed


def bench_whole_runs(root: Path, repeat: int) -> None:
    print(f"cold run (fills the cache): {timed_run(root, []):.3f} s")
    timed_run(root, [])  # settle OS caches and bytecode
    timed_run(root, ["--store-full"])  # first pip freeze fills its cache, as on a user's machine
    plain, full = [], []
    for _ in range(repeat):
        plain.append(timed_run(root, []))
        full.append(timed_run(root, ["--store-full"]))
    p, f = statistics.median(plain), statistics.median(full)
    print(f"warm run, plain:        median {p:.3f} s  (min {min(plain):.3f})")
    print(f"warm run, --store-full: median {f:.3f} s  (min {min(full):.3f})")
    verdict = "OK" if f - p < 0.3 else "OVER TARGET"
    print(f"--store-full adds {f - p:+.3f} s (target < 0.3 s; 0.20.5 adds ~0.7 s): {verdict}")
    runs = root / "data" / "runs"
    folders = sorted(runs.iterdir()) if runs.is_dir() else []
    if folders:
        last = folders[-1]
        count = sum(1 for p in (last / "artifacts").rglob("*") if p.is_file()) if (last / "artifacts").is_dir() else 0
        print(f"last run folder: {last.name} ({count} files in artifacts/)")
    else:
        print("note: no run folder was written (the manager does not write --store-full folders yet)")


def bench_write_run_folder(root: Path) -> None:
    """Time the run folder writer alone on the benchmark's cache."""
    from curifactory import runfolder
    from curifactory.environment import capture_environment, capture_git, pip_freeze

    cache = root / "data" / "cache"
    artifacts = [str(p) for p in cache.rglob("*") if p.is_file() and not p.name.endswith("_metadata.json")]
    timings: dict[str, float] = {}

    def clock(name: str, fn, *args, **kwargs):  # type: ignore[no-untyped-def]
        start = time.perf_counter()
        value = fn(*args, **kwargs)
        timings[name] = time.perf_counter() - start
        return value

    clock("capture_git", capture_git, root)
    clock("pip_freeze (no cache)", pip_freeze)
    pip_cache = root / "data"
    pip_freeze(cache_dir=pip_cache)
    clock("pip_freeze (cached)", pip_freeze, cache_dir=pip_cache)
    env = clock("capture_environment (cached pip)", capture_environment, root, pip_cache_dir=pip_cache)
    runs = Path(tempfile.mkdtemp(dir=root / "data"))
    for name, link in (("write_run_folder, links", True), ("write_run_folder, copies", False)):
        run_dir = runfolder.create_run_dir(runs, name.replace(" ", "_").replace(",", ""))
        clock(
            f"{name} ({len(artifacts)} artifacts + metadata)",
            runfolder.write_run_folder,
            run_dir,
            run_info={"reference": "bench"},
            artifacts=artifacts,
            registry_entries={},
            project_root=root,
            cache_root=cache,
            environment=env,
            link=link,
        )
    print("run folder parts (in-process):")
    for name, seconds in timings.items():
        print(f"  {name:<55} {seconds * 1000:8.1f} ms")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", type=int, default=50)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--keep", action="store_true", help="keep the temporary project")
    args = parser.parse_args(argv)
    root = Path(tempfile.mkdtemp(prefix="cf-bench-store-full-"))
    try:
        make_project(root, args.sets)
        cmd = command([])
        how = "run_experiment() (no CLI yet)" if cmd[1:2] == ["-c"] else " ".join(cmd)
        print(f"project: {root} ({args.sets} sets x 3 stages), via {how}")
        bench_whole_runs(root, args.repeat)
        bench_write_run_folder(root)
    finally:
        if args.keep:
            print(f"kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
