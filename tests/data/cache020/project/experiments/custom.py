"""0.20-style custom cachers, a cached reportable and a ``{hash}`` path_override.

Runs unchanged on curifactory 0.20.5 and on this package; ../make.sh has 0.20.5 run it
with ``--store-full`` and keeps its cache and run folder.
"""
import json
import os
from dataclasses import dataclass

import curifactory as cf
from curifactory.caching import Cacheable, JsonCacher, PickleCacher
from curifactory.reporting import HTMLReporter, JsonReporter


def side(text):
    with open(os.environ.get("CF_TEST_SIDE", os.devnull), "a") as f:
        f.write(text + "\n")


class ModelCacher(Cacheable):
    """Keeps its value in ``<stem>_model`` (0.20: a given suffix replaces the extension)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, extension=".model", **kwargs)

    def save(self, obj):
        with open(self.get_path("_model"), "w") as f:
            json.dump(obj, f)
        return self.get_path("_model")

    def load(self):
        with open(self.get_path("_model")) as f:
            return json.load(f)


class UsesExtraMetadataCacher(Cacheable):
    """The pattern of 0.20's caching guide: extra metadata, an inline JsonCacher."""

    def save(self, obj):
        self.extra_metadata["the_best_number"] = 13
        self.save_metadata()
        JsonCacher(self.get_path()).save(obj)

    def load(self):
        self.load_metadata()
        assert self.extra_metadata["the_best_number"] == 13
        return JsonCacher(self.get_path()).load()


@dataclass
class Params(cf.ExperimentParameters):
    n: int = 4


@cf.stage(None, ["numbers"], [PickleCacher])
def numbers(record):
    side(f"numbers:{record.params.name}")
    return list(range(record.params.n))


@cf.stage(["numbers"], ["model", "summary"], [ModelCacher, UsesExtraMetadataCacher])
def fit(record, numbers):
    side(f"fit:{record.params.name}")
    record.report(JsonReporter({"count": len(numbers)}, name="fit_info"))
    record.report(HTMLReporter("<b>fitted</b>", name="fit_note"))
    return {"w": sum(numbers)}, {"best": max(numbers)}


@cf.stage(["model"], ["score"], [JsonCacher(path_override="{cache}/scores_{hash}.json")])
def score(record, model):
    side(f"score:{record.params.name}")
    return {"score": model["w"] * 2}


def get_params():
    return [Params(name="c1"), Params(name="c2", n=6)]


def run(param_sets, manager):
    for p in param_sets:
        score(fit(numbers(cf.Record(manager, p))))
