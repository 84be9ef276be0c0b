"""Parameter sweeps as values: :func:`grid`, random draws, readable set names, and checking a
value against a parameter dataclass's field type. No I/O (YAML files are read in
:mod:`curifactory.paramfiles`)."""

from __future__ import annotations

import dataclasses
import itertools
import random
import types
import typing
from typing import Any, Callable, Iterable

from curifactory.hashing import SKIPPED_FIELDS



class FieldError(ValueError):
    """A value that does not fit a parameter field; ``field`` names it (dotted for nested sets)."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field


def _format(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def set_name(values: dict[str, Any], prefix: str = "") -> str:
    """A readable name for a set made of ``values``: ``lr=0.1,depth=3`` (a nested set's
    values as ``model.depth=2``)."""
    parts = []
    for key, value in values.items():
        if isinstance(value, dict) and value:
            parts.append(set_name(value, f"{prefix}{key}."))
        else:
            parts.append(f"{prefix}{key}={_format(value)}")
    return ",".join(parts) or "base"


def _fields(cls: type) -> dict[str, dataclasses.Field]:
    return {f.name: f for f in dataclasses.fields(cls)}


def _hints(cls: type) -> dict[str, Any]:
    try:
        return typing.get_type_hints(cls)
    except Exception:  # unresolvable annotations: fall back to the raw ones (strings are not checked)
        return {f.name: f.type for f in dataclasses.fields(cls)}


def check_value(cls: type, name: str, value: Any, prefix: str = "") -> Any:
    """``value`` for field ``name`` of dataclass ``cls``, checked against the field's type
    (an int is taken for a float; a dict becomes a nested dataclass).

    Raises:
        FieldError: the field does not exist, or the value has the wrong type.
    """
    fields = _fields(cls)
    if name not in fields:
        known = ", ".join(n for n in fields if n not in SKIPPED_FIELDS or n == "name")
        raise FieldError(prefix + name, f"{cls.__name__} has no field '{prefix}{name}' (its fields: {known})")
    return _coerce(_hints(cls).get(name, Any), value, prefix + name)


def _coerce(hint: Any, value: Any, where: str) -> Any:
    origin = typing.get_origin(hint)
    if hint is Any or isinstance(hint, (str, typing.TypeVar)):
        return value
    if origin in (typing.Union, getattr(types, "UnionType", None)):
        options = typing.get_args(hint)
        if value is None and type(None) in options:
            return None
        for option in (o for o in options if o is not type(None)):
            try:
                return _coerce(option, value, where)
            except FieldError:
                continue
        raise _wrong(where, hint, value)
    if dataclasses.is_dataclass(hint) and isinstance(hint, type):
        if isinstance(value, hint):
            return value
        if not isinstance(value, dict):
            raise _wrong(where, hint, value)
        return build(hint, value, prefix=where + ".")
    base = origin or hint
    if base is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if base in (list, tuple, set, frozenset) and isinstance(value, (list, tuple)):
        return base(value) if base is not list else list(value)
    if isinstance(base, type) and isinstance(value, base) and not (base is int and isinstance(value, bool)):
        return value
    raise _wrong(where, hint, value)


def _wrong(where: str, hint: Any, value: Any) -> FieldError:
    expected = getattr(hint, "__name__", None) or str(hint).replace("typing.", "")
    article = "an" if expected[:1].lower() in "aeiou" else "a"
    return FieldError(where, f"field '{where}' is {article} {expected}, not {type(value).__name__} {value!r}")


def build(cls: type, values: dict[str, Any], prefix: str = "") -> Any:
    """An instance of ``cls`` from ``values``, every value checked; a required field missing is
    a :class:`FieldError`."""
    checked = {name: check_value(cls, name, value, prefix) for name, value in values.items()}
    missing = [f.name for f in dataclasses.fields(cls) if f.init and f.name not in checked
               and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
    if missing:
        raise FieldError(prefix + missing[0], f"{cls.__name__} needs a value for '{prefix}{missing[0]}' "
                                              f"(it has no default)")
    return cls(**checked)


def _base_values(base: Any) -> dict[str, Any]:
    if base is None:
        return {}
    if isinstance(base, dict):
        return dict(base)
    return {f.name: getattr(base, f.name) for f in dataclasses.fields(base) if f.init and f.name != "hash"}


def grid(cls: type, base: Any = None, name: str | Callable[[dict[str, Any]], str] | None = None,
         **axes: Iterable[Any]) -> list[Any]:
    """Every combination of the ``axes`` values on top of ``base`` (an instance or a dict).

    ``cf.grid(Params, base=Params(epochs=10), lr=[0.1, 0.01], depth=[2, 3])`` gives 4
    sets named ``lr=0.1,depth=2`` ...; ``name`` is a prefix (``"sweep"`` gives
    ``sweep lr=0.1,depth=2``) or a function of the set's swept values. Values are
    checked against the fields' types.
    """
    start = _base_values(base)
    start.pop("name", None)  # each set is named after its swept values
    keys = list(axes)
    sets = []
    for combination in itertools.product(*(list(axes[k]) for k in keys)):
        swept = dict(zip(keys, combination))
        values = {**start, **swept}
        if "name" not in swept:
            label = set_name(swept)
            values["name"] = name(swept) if callable(name) else (f"{name} {label}" if name else label)
        sets.append(build(cls, values))
    return sets


def draw(spec: Any, rng: random.Random, where: str) -> Any:
    """One random value from ``spec``: ``{"uniform": [a, b]}``, ``{"loguniform": [a, b]}``,
    ``{"int": [a, b]}`` (both ends included), ``{"choice": [...]}`` or a plain list (a choice)."""
    import math

    if isinstance(spec, list):
        spec = {"choice": spec}
    if not isinstance(spec, dict) or len(spec) != 1:
        raise FieldError(where, f"random value of '{where}' must be one of uniform: [a, b], loguniform: [a, b], "
                                f"int: [a, b] or choice: [...], not {spec!r}")
    kind, args = next(iter(spec.items()))
    if kind == "choice" and isinstance(args, list) and args:
        return rng.choice(args)
    if kind in ("uniform", "loguniform", "int") and isinstance(args, list) and len(args) == 2 \
            and all(isinstance(a, (int, float)) and not isinstance(a, bool) for a in args):
        low, high = args
        if kind == "int":
            return rng.randint(int(low), int(high))
        if kind == "loguniform":
            if low <= 0 or high <= 0:
                raise FieldError(where, f"loguniform range of '{where}' must be positive, not {args!r}")
            return math.exp(rng.uniform(math.log(low), math.log(high)))
        return rng.uniform(low, high)
    raise FieldError(where, f"random value of '{where}': {kind}: {args!r} is not uniform/loguniform/int: "
                            f"[low, high] or choice: [values]")


def random_sets(cls: type, base: Any, fields: dict[str, Any], count: int, seed: int,
                name: str | None = None) -> list[Any]:
    """``count`` sets whose ``fields`` are drawn (reproducibly, from ``seed``) on top of ``base``."""
    rng = random.Random(seed)
    start = _base_values(base)
    start.pop("name", None)
    sets = []
    for index in range(count):
        swept = {key: draw(spec, rng, key) for key, spec in fields.items()}
        label = f"random{index}(" + set_name({k: round(v, 6) if isinstance(v, float) else v
                                              for k, v in swept.items()}) + ")"
        sets.append(build(cls, {**start, **swept, "name": f"{name} {label}" if name else label}))
    return sets


def override(param_set: Any, dotted: str, value: Any) -> Any:
    """A copy of ``param_set`` with the field at ``dotted`` (``model.depth``) set to ``value``,
    checked against the field's type; its hash is recomputed (``hash`` reset)."""
    head, _, rest = dotted.partition(".")
    if rest:
        inner = getattr(param_set, head, None) if head in _fields(type(param_set)) else None
        if not dataclasses.is_dataclass(inner):
            check_value(type(param_set), head, None)  # an unknown field: the usual message
            raise FieldError(dotted, f"field '{head}' of {type(param_set).__name__} is not a nested "
                                     f"parameter set, so '{dotted}' names nothing")
        new_value = override(inner, rest, value)
    else:
        new_value = check_value(type(param_set), head, value)
    changes: dict[str, Any] = {head: new_value}
    if "hash" in _fields(type(param_set)) and head != "hash":
        changes["hash"] = None
    return dataclasses.replace(param_set, **changes)


def unflatten(flat: dict[str, Any]) -> dict[str, Any]:
    """``{"model.depth": 2}`` -> ``{"model": {"depth": 2}}`` (the inverse of the run log's flattening)."""
    nested: dict[str, Any] = {}
    for key, value in flat.items():
        parts = key.split(".")
        target = nested
        for part in parts[:-1]:
            target = target.setdefault(part, {})
        target[parts[-1]] = value
    return nested
