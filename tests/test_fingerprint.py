"""Code fingerprints, on real modules written into tmp_path and imported."""

from __future__ import annotations

import importlib
import os
import sys
import textwrap
import time

import pytest

from curifactory.fingerprint import fingerprint

HELPERS = '''
SCALE = 3

def inner(x):
    """Doubles."""
    return 2 * x

def outer(x):
    return inner(x) + SCALE

class Model:
    def fit(self, x):
        return self.transform(x)

    def transform(self, x):
        return x + 1
'''

STAGES = '''
import functools
from fpmod import helpers
from fpmod.helpers import outer, Model

def stage(record):
    return outer(1)

def with_model(record):
    return Model().fit(1)

def with_module(record):
    return helpers.outer(2)

def make_closure(factor):
    def closed(record, k=4):
        return factor * k
    return closed

def recursive_a(n):
    return recursive_b(n - 1) if n else 0

def recursive_b(n):
    return recursive_a(n - 1) if n else 0

def uses_numpy(record):
    import json
    return json.dumps(functools.reduce(max, [1, 2]))
'''


@pytest.fixture
def pkg(tmp_path, monkeypatch):
    root = tmp_path / "proj"
    (root / "fpmod").mkdir(parents=True)
    (root / "fpmod" / "__init__.py").write_text("")
    monkeypatch.syspath_prepend(str(root))

    def write(helpers: str = HELPERS, stages: str = STAGES):
        for name, text in (("helpers", helpers), ("stages", stages)):
            path = root / "fpmod" / f"{name}.py"
            path.write_text(textwrap.dedent(text))
            stamp = time.time_ns() + 10**9 * len(list((root / "fpmod").iterdir()))
            os.utime(path, ns=(stamp, stamp))  # a new mtime even within one clock tick
        for module in [m for m in sys.modules if m.startswith("fpmod")]:
            del sys.modules[module]
        return importlib.import_module("fpmod.stages")

    yield root, write
    for module in [m for m in sys.modules if m.startswith("fpmod")]:
        del sys.modules[module]


def test_helpers_two_calls_deep_and_constants_are_covered(pkg):
    root, write = pkg
    fp = fingerprint(write().stage, str(root))
    names = {h.name: h for h in fp.helpers}
    assert fp.helpers[0].name == "fpmod.stages.stage" and fp.helpers[0].kind == "stage"
    assert {"fpmod.helpers.outer", "fpmod.helpers.inner", "fpmod.helpers.SCALE"} <= set(names)
    assert names["fpmod.helpers.inner"].where == os.path.join("fpmod", "helpers.py") + ":4"
    assert names["fpmod.helpers.SCALE"].kind == "constant" and fp.not_covered == ()


def test_comments_docstrings_and_formatting_do_not_change_it(pkg):
    root, write = pkg
    before = fingerprint(write().stage, str(root))
    reformatted = HELPERS.replace('"""Doubles."""', '"""Doubles, twice as much."""\n    # a comment') \
        .replace("return 2 * x", "return (2 *\n            x)")
    after = fingerprint(write(reformatted).stage, str(root))
    assert after.digest == before.digest


@pytest.mark.parametrize("edit, detail", [
    (("return 2 * x", "return 3 * x"), "code of helper 'inner' (fpmod/helpers.py:4) changed"),
    (("SCALE = 3", "SCALE = 4"), "code of constant 'SCALE' (fpmod/helpers.py) changed"),
])
def test_a_change_two_calls_deep_is_named(pkg, edit, detail):
    root, write = pkg
    before = fingerprint(write().stage, str(root))
    after = fingerprint(write(HELPERS.replace(*edit)).stage, str(root))
    assert after.digest != before.digest
    assert after.change_since(before.as_metadata()) == detail.replace("/", os.sep)


def test_methods_through_self_a_module_attribute_closures_and_defaults(pkg):
    root, write = pkg
    stages = write()
    model = fingerprint(stages.with_model, str(root))
    assert "fpmod.helpers.Model" in {h.name for h in model.helpers}
    changed = write(HELPERS.replace("return x + 1", "return x + 2"))
    assert fingerprint(changed.with_model, str(root)).digest != model.digest  # transform, reached via self
    module = fingerprint(changed.with_module, str(root))
    assert "fpmod.helpers.outer" in {h.name for h in module.helpers}
    closures = [fingerprint(changed.make_closure(f), str(root)).digest for f in (2, 2, 5)]
    assert closures[0] == closures[1] != closures[2]
    with_default = write(stages=STAGES.replace("k=4", "k=5"))
    assert fingerprint(with_default.make_closure(2), str(root)).digest != closures[0]


def test_cycles_terminate_and_libraries_are_not_followed(pkg):
    root, write = pkg
    stages = write()
    fp = fingerprint(stages.recursive_a, str(root))
    assert [h.name for h in fp.helpers] == ["fpmod.stages.recursive_a", "fpmod.stages.recursive_b"]
    library = fingerprint(stages.uses_numpy, str(root))
    assert [h.name for h in library.helpers] == ["fpmod.stages.uses_numpy"]


def test_a_pinned_version_replaces_the_code(pkg):
    root, write = pkg
    one = fingerprint(write().stage, str(root), version="1")
    edited = fingerprint(write(HELPERS.replace("return 2 * x", "return 9 * x")).stage, str(root), version="1")
    two = fingerprint(write().stage, str(root), version="2")
    assert one.digest == edited.digest != two.digest
    assert two.change_since(one.as_metadata()) == "version '1' -> '2'"


def test_code_without_source_is_not_covered_and_never_fails(pkg):
    root, _ = pkg
    namespace: dict = {"__name__": "__main__"}
    exec("f = lambda record: 1", namespace)  # as typed in a REPL: no file to read
    fp = fingerprint(namespace["f"], str(root))
    assert fp.not_covered and fp.helpers == ()
    assert fingerprint(len, str(root)).not_covered  # built in C


def test_a_rebound_helper_is_seen_by_a_live_process(pkg):
    root, write = pkg
    stages = write()
    before = fingerprint(stages.stage, str(root))
    helpers = sys.modules["fpmod.helpers"]
    exec("def inner(x):\n    return 5 * x\n", helpers.__dict__)  # as a notebook cell redefining it
    after = fingerprint(stages.stage, str(root))
    assert after.digest != before.digest
    assert fingerprint(stages.stage, str(root)) is after  # and kept until something changes again


def test_constants_are_hashed_by_content_not_by_repr(pkg):
    root, write = pkg
    constants = HELPERS.replace("SCALE = 3", "import logging\nSCALE = frozenset({'b', 'a', 'c'})\n"
                                "log = logging.getLogger('x')")
    stages = write(constants.replace("return inner(x) + SCALE", "log.info('x')\n    return inner(x) + len(SCALE)"))
    fp = fingerprint(stages.stage, str(root))
    names = {h.name for h in fp.helpers}
    assert "fpmod.helpers.SCALE" in names and "fpmod.helpers.log" not in names
    assert any(n.startswith("fpmod.helpers.log (a Logger") for n in fp.not_covered)
    import logging

    logging.getLogger("x").setLevel(logging.DEBUG)  # run-time state of a logger is not code
    again = write(constants.replace("return inner(x) + SCALE", "log.info('x')\n    return inner(x) + len(SCALE)"))
    assert fingerprint(again.stage, str(root)).digest == fp.digest


def test_code_made_at_run_time_is_named_not_covered(pkg):
    root, write = pkg
    stages = write(HELPERS + '\ngen = eval("lambda v: v + 100")\n',
                   STAGES + "\ndef uses_gen(record):\n    return helpers.gen(1)\n")
    fp = fingerprint(stages.uses_gen, str(root))
    assert any("<lambda>" in name for name in fp.not_covered)
