"""--parallel: workers fill the cache, a shared artifact is computed once."""

from __future__ import annotations

import json

from curifactory.experiment import run_experiment

SHARED = '''
import os, time
from dataclasses import dataclass
import curifactory as cf
from curifactory.caching import JsonCacher

def note(what):
    with open(os.environ["CF_TEST_LOG"], "a") as log:
        log.write(what + "\\n")

@dataclass
class P(cf.ExperimentParameters):
    n: int = 0

@cf.stage(None, ["raw"], [JsonCacher(path_override="{cache}/shared_raw.json")])
def load(record):
    note(f"load {os.getpid()}")
    time.sleep(0.3)
    return list(range(10))

@cf.stage(["raw"], ["value"], [JsonCacher])
def compute(record, raw):
    note(f"compute {record.params.name} {os.getpid()}")
    return sum(raw) * record.params.n

@cf.aggregate(["value"], ["total"], [JsonCacher])
def total(record, records, value):
    note("total")
    return sum(value.values())

def get_params():
    return [P(name=f"s{i}", n=i) for i in range(6)]

def run(param_sets, manager):
    records = [compute(load(cf.Record(manager, p))) for p in param_sets]
    return total(cf.Record(manager, None), records)
'''


def test_parallel_computes_shared_artifact_once(project, tmp_path, monkeypatch):
    root = project({"experiments/shared.py": SHARED})
    log = tmp_path / "calls.log"
    monkeypatch.setenv("CF_TEST_LOG", str(log))
    events = []

    class Collect:
        def on_event(self, event):
            events.append(event)

    agg, manager = run_experiment("shared", parallel=2, report=False, listeners=[Collect()])
    lines = log.read_text().splitlines()
    assert len([line for line in lines if line.startswith("load")]) == 1
    computes = [line for line in lines if line.startswith("compute")]
    assert len(computes) == 6 and len({line.split()[-1] for line in computes}) == 2, "two workers shared the sets"
    assert lines.count("total") == 1
    finished = [e for e in events if type(e).__name__ == "WorkersFinished"]
    assert len(finished) == 1 and finished[0].workers == 2 and finished[0].executed == 7
    assert agg.state["total"] == 45 * 15
    runs = json.loads((root / "data" / "store.json").read_text())
    assert len(runs) == 1 and runs[0]["status"] == "complete"
