"""The no-framework floor of the benchmark workload: the same work as a plain script.

For each of N parameter sets (seed i, scale 1 + i/10): a 1000-row DataFrame written as
CSV, a summary dict as JSON, a float as a pickle, each written atomically (a temporary
file in the same folder, then ``os.replace``), into ``FOLDER``. A warm run (every file
already there) only imports numpy and pandas and checks that the files exist, which is
the least any tool must do to know nothing needs computing.

Usage::

    python benchmarks/floor_script.py FOLDER N [--freeze]

``--freeze`` calls :func:`gc.freeze` once numpy and pandas are imported, as the
``experiment`` command does with the project's code: the process then skips the garbage
collector's walks over their objects at exit (about 0.1 s). ``bench_floor.py`` shows the
ratio to both floors, so the gain of the freeze is never counted as the framework's.
"""

from __future__ import annotations

import json
import os
import pickle
import sys
import tempfile

import numpy as np
import pandas as pd


def _atomic(path: str, write) -> None:
    handle, tmp = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".tmp-")
    with os.fdopen(handle, "wb") as out:
        write(out)
    os.replace(tmp, path)


def one(folder: str, index: int) -> None:
    """Compute and write set ``index`` unless its three files exist."""
    paths = [os.path.join(folder, f"set{index}_{name}") for name in ("table.csv", "summary.json", "score.pkl")]
    if all(os.path.exists(p) for p in paths):
        return
    rng = np.random.default_rng(index)
    table = pd.DataFrame({"x": rng.normal(size=1000) * (1.0 + index / 10), "y": np.arange(1000)})
    _atomic(paths[0], lambda out: out.write(table.to_csv(index=False).encode()))
    summary = {"mean": float(table["x"].mean()), "std": float(table["x"].std()), "rows": int(len(table))}
    _atomic(paths[1], lambda out: out.write(json.dumps(summary).encode()))
    _atomic(paths[2], lambda out: pickle.dump(summary["mean"] / (summary["std"] or 1.0), out))


def main() -> None:
    folder, count = sys.argv[1], int(sys.argv[2])
    if "--freeze" in sys.argv[3:]:
        import gc

        gc.freeze()
    os.makedirs(folder, exist_ok=True)
    for index in range(count):
        one(folder, index)


if __name__ == "__main__":
    main()
