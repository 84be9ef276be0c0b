"""curifactory 0.20's parameter-set hash and the parameter record it wrote beside each entry.

Our hash (:mod:`curifactory.hashing`) differs from 0.20's on purpose: 0.20 adds up one
md5 per field and, for a nested dataclass, the md5s of its fields without their
parent's name, so ``Outer(a=Inner(x=1), b=Inner(x=2))`` and its mirror image share
one hash. These functions compute what 0.20.5 computed, so that the cache a 0.20
project brings along can be found (:mod:`curifactory.adoption`); the parameter record
(:func:`legacy_representations`) is what makes finding it safe, since two sets that
collide under 0.20's hash still have different records.

Pure functions: no I/O.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import fields, is_dataclass
from typing import Any

from curifactory import hashing

BOOKKEEPING_FIELDS = ("name", "hash", "overwrite", "hash_representations")
"""The fields 0.20 never hashed."""

_NESTED = "nested"
_SKIPPED = "skipped"
_VALUE = "value"


def _field_form(param_set: Any, field_name: str) -> tuple[str, Any]:
    """How 0.20 hashed one field: (kind, value); a skipped field's value is None."""
    value = getattr(param_set, field_name)
    if field_name in BOOKKEEPING_FIELDS:
        return _SKIPPED, None
    overrides = getattr(param_set, "hash_representations", None) or {}
    if isinstance(overrides, dict) and field_name in overrides:
        function = overrides[field_name]
        if function is None:
            return _SKIPPED, None
        return _VALUE, function(param_set, value)
    if value is None:
        return _SKIPPED, None
    if is_dataclass(value):
        return _NESTED, _forms(value)
    if isinstance(value, Callable):  # type: ignore[arg-type]
        return _VALUE, value.__qualname__
    return _VALUE, repr(value)


def _forms(param_set: Any) -> dict[str, tuple[str, Any]]:
    return {f.name: _field_form(param_set, f.name) for f in fields(param_set)}


def _total(forms: dict[str, tuple[str, Any]]) -> int:
    total = 0
    for key, (kind, value) in forms.items():
        if value is None:
            continue
        if kind == _NESTED:
            total += _total(value)
        else:
            total += int(hashlib.md5(f"{key}{value}".encode()).hexdigest(), 16)
    return total


def legacy_hash(param_set: Any) -> str:
    """The hash curifactory 0.20.5 gave ``param_set`` (its ``hash`` field, if the user set it)."""
    explicit = getattr(param_set, "hash", None)
    if explicit is not None and explicit != hashing.compute_hash(param_set):
        return str(explicit)  # set by hand: 0.20 used it as it is
    return f"{_total(_forms(param_set)):x}"


def legacy_combo_hash(active_hash: str | None, input_hashes: list[str | None]) -> str:
    """0.20.5's hash of an aggregate record: its own set's 0.20 hash and its inputs' (sorted)."""
    key = [active_hash or "None"] + sorted(h or "None" for h in input_hashes)
    return hashlib.md5(str(key).encode()).hexdigest()


def legacy_representations(param_set: Any) -> dict[str, Any]:
    """The ``params`` record 0.20.5 wrote into each artifact's metadata for ``param_set``:
    each hashed field as a string (nested sets as dicts), unhashed ones under
    ``IGNORED_PARAMS``, bookkeeping fields left out except ``name``."""
    result: dict[str, Any] = {}
    ignored: dict[str, Any] = {}
    for key, (kind, value) in _forms(param_set).items():
        if key == "name":
            result[key] = param_set.name
        elif kind == _NESTED:
            result[key] = legacy_representations(getattr(param_set, key))
        elif value is not None:
            result[key] = str(value)
        elif key not in BOOKKEEPING_FIELDS:
            current = getattr(param_set, key)
            ignored[key] = legacy_representations(current) if is_dataclass(current) else str(current)
    if ignored:
        result["IGNORED_PARAMS"] = ignored
    return result
