"""An experiment that runs unchanged on curifactory 0.20.5 and on this package.

Its cache under ../cache was written by 0.20.5 (see ../make.sh); the tests copy both
into a project and rerun it here. ``Params(a=Inner(2), b=Inner(1))`` has the same
0.20 hash as the default set "one" (0.20 adds up nested fields without their names).
"""
import os
from dataclasses import dataclass, field

import curifactory as cf
from curifactory.caching import JsonCacher, PickleCacher


def side(text):
    with open(os.environ.get("CF_TEST_SIDE", os.devnull), "a") as f:
        f.write(text + "\n")


@dataclass
class Inner:
    x: int = 1


@dataclass
class Params(cf.ExperimentParameters):
    n: int = 3
    a: Inner = field(default_factory=Inner)
    b: Inner = field(default_factory=lambda: Inner(2))


@cf.stage(None, ["numbers"], [PickleCacher])
def make(record):
    side(f"make:{record.params.name}")
    p = record.params
    return [p.n, p.a.x, p.b.x]


@cf.stage(["numbers"], ["total"], [JsonCacher])
def total(record, numbers):
    side(f"total:{record.params.name}")
    return {"sum": sum(numbers), "a_x": numbers[1]}


@cf.aggregate(["total"], ["all"], [JsonCacher])
def combine(record, records, total):
    side("combine")
    return {r.params.name: v["sum"] for r, v in total.items()}


def get_params():
    return [Params(name="one"), Params(name="two", n=5)]


def run(param_sets, manager):
    records = [total(make(cf.Record(manager, p))) for p in param_sets]
    combine(cf.Record(manager, None), records)
