"""Parameter-set hashing: inclusion rules, namespacing, stability, purity."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass, field
from typing import Optional

import curifactory as cf
from curifactory import hashing


@dataclass
class Sub:
    x: int = 1


@dataclass
class Nested(cf.ExperimentParameters):
    sub: Sub = field(default_factory=Sub)


@dataclass
class Flat(cf.ExperimentParameters):
    x: int = 1


@dataclass
class Rich(cf.ExperimentParameters):
    a: int = 1
    tags: set = field(default_factory=lambda: {"alpha", "beta", "gamma", "delta"})
    fn: object = len
    seed: int = 0
    hash_representations: dict = cf.set_hash_functions(seed=None, a=lambda p, v: f"a={v % 10}")


def test_digest_is_fixed_length_lower_hex():
    digest = hashing.hash_param_set(Flat())
    assert len(digest) == 32 and digest == digest.lower() and int(digest, 16) >= 0


def test_nested_fields_are_namespaced():
    assert hashing.compute_hash(Nested()) != hashing.compute_hash(Flat())
    assert hashing.compute_hash(Nested(sub=Sub(2))) != hashing.compute_hash(Nested())


def test_name_class_and_bookkeeping_do_not_count():
    @dataclass
    class Other(cf.ExperimentParameters):
        x: int = 1

    assert hashing.compute_hash(Flat(name="a")) == hashing.compute_hash(Flat(name="b", overwrite=True))
    assert hashing.compute_hash(Flat()) == hashing.compute_hash(Other())


def test_none_values_are_left_out_so_new_optional_fields_keep_hashes():
    @dataclass
    class Grown(cf.ExperimentParameters):
        x: int = 1
        extra: Optional[int] = None

    assert hashing.compute_hash(Grown()) == hashing.compute_hash(Flat())
    assert hashing.compute_hash(Grown(extra=3)) != hashing.compute_hash(Flat())


def test_hash_representations_override_and_skip():
    assert hashing.compute_hash(Rich(seed=1)) == hashing.compute_hash(Rich(seed=2))
    assert hashing.compute_hash(Rich(a=3)) == hashing.compute_hash(Rich(a=13))
    assert hashing.compute_hash(Rich(a=3)) != hashing.compute_hash(Rich(a=4))


def test_callables_hash_by_qualified_name():
    assert hashing.compute_hash(Rich(fn=len)) != hashing.compute_hash(Rich(fn=max))
    assert "builtins.len" in hashing.param_set_encoding(Rich())


def test_hand_set_hash_wins_and_computed_hash_is_kept():
    p = Flat(hash="pinned")
    assert hashing.hash_param_set(p) == "pinned"
    q = Flat()
    digest = hashing.hash_param_set(q)
    assert q.hash == digest


def test_stable_across_processes_and_hash_seeds():
    code = (
        "import sys; sys.path.insert(0, %r)\n"
        "from test_hashing import Rich; from curifactory import hashing\n"
        "print(hashing.compute_hash(Rich()))\n" % os.path.dirname(__file__)
    )
    outputs = {
        subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       env=dict(os.environ, PYTHONHASHSEED=seed)).stdout.strip()
        for seed in ("1", "2", "3")
    }
    assert outputs == {hashing.compute_hash(Rich())}


def test_hashing_is_pure(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    hashing.hash_param_set(Nested(), store_in_registry=True)
    assert list(tmp_path.iterdir()) == []


def test_registry_representation_names_nested_paths():
    rep = hashing.param_set_string_hash_representations(Nested(name="n"))
    assert rep == {"name": "n", "sub.x": "1"}


def test_combined_hash_ignores_order():
    assert hashing.combine_hashes("o", ["a", "b"]) == hashing.combine_hashes("o", ["b", "a"])
    assert hashing.combine_hashes("o", ["a"]) != hashing.combine_hashes("o", ["a", "b"])
