"""The ``@stage`` and ``@aggregate`` decorators.

Both build one frozen :class:`StageSpec` through the same function, checking the
signature when the decorator is applied. The wrapper hands each call to the
record's manager (``record.manager.run_stage``), so this module never imports the
executor.
"""

from __future__ import annotations

import functools
import inspect
from dataclasses import dataclass
from typing import Any, Callable, Sequence

from curifactory.errors import (
    CachersMismatchError,
    EmptyCachersError,
    InputSignatureError,
    OutputSignatureError,
)

__all__ = [
    "stage",
    "aggregate",
    "StageSpec",
    "InputSignatureError",
    "OutputSignatureError",
    "EmptyCachersError",
    "CachersMismatchError",
]


@dataclass(frozen=True)
class StageSpec:
    """What a decorated stage declares.

    Attributes:
        function: the undecorated function.
        name: the stage name (the function's name).
        inputs: the input names.
        outputs: the outputs as declared (names or ``Lazy`` objects).
        cachers: one cacher (class, instance or None) per output, or ``None``.
        suppress_missing_inputs: missing inputs fall back to the defaults.
        aggregate: whether the stage combines several records.
    """

    function: Callable[..., Any]
    name: str
    inputs: tuple[str, ...]
    outputs: tuple[Any, ...]
    cachers: tuple[Any, ...] | None
    suppress_missing_inputs: bool
    aggregate: bool
    defaulted_inputs: frozenset[str] = frozenset()
    """Inputs whose function parameter has a default (usable when they are missing)."""
    version: str | None = None
    """A pinned version: replaces the code fingerprint (see :mod:`curifactory.fingerprint`)."""

    @functools.cached_property
    def output_names(self) -> tuple[str, ...]:
        """The output names (``Lazy`` outputs give their name)."""
        return tuple(getattr(o, "name", o) for o in self.outputs)

    def split_result(self, result: Any) -> tuple[Any, ...]:
        """Match a stage's return value to its outputs.

        Raises:
            OutputSignatureError: the count differs from the declared outputs.
        """
        count = len(self.outputs)
        if count == 0:
            return ()
        if count == 1:
            return (result,)
        if not isinstance(result, (tuple, list)) or len(result) != count:
            got = len(result) if isinstance(result, (tuple, list)) else 1
            raise OutputSignatureError(
                f"Stage '{self.name}' declares {count} outputs {list(self.output_names)} but "
                f"returned {got} value(s). Return a tuple of {count} values in that order."
            )
        return tuple(result)


def _check_signature(fn: Callable[..., Any], name: str, inputs: tuple[str, ...],
                     aggregate: bool) -> frozenset[str]:
    """Check the declaration against the function; returns the inputs that have defaults."""
    params = list(inspect.signature(fn).parameters.values())
    leading = 2 if aggregate else 1
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    if len(positional) < leading:
        wanted = "(record, records, ...)" if aggregate else "(record, ...)"
        raise InputSignatureError(
            f"Stage '{name}' must take {wanted} as its first parameter(s); "
            f"its signature is {inspect.signature(fn)}."
        )
    named = {p.name: p for p in params[leading:]}
    takes_kwargs = any(p.kind == p.VAR_KEYWORD for p in params)
    for input_name in inputs:
        if input_name not in named and not takes_kwargs:
            raise InputSignatureError(
                f"Stage '{name}' declares input '{input_name}' but its function has no "
                f"parameter of that name (signature {inspect.signature(fn)}). Add the "
                f"parameter or remove the input."
            )
    return frozenset(n for n in inputs if n in named and named[n].default is not named[n].empty)


def _as_tuple(value: Any, what: str, name: str) -> tuple[Any, ...]:
    if value is None:
        return ()
    if isinstance(value, str) or not isinstance(value, Sequence):
        raise InputSignatureError(f"Stage '{name}': {what} must be a list, got {value!r}.")
    return tuple(value)


def build_spec(fn: Callable[..., Any], inputs: Any, outputs: Any, cachers: Any,
               suppress_missing_inputs: bool, aggregate: bool, version: Any = None) -> StageSpec:
    """Check a decorated function against its declaration and build its spec."""
    name = fn.__name__
    input_names = _as_tuple(inputs, "inputs", name)
    output_items = _as_tuple(outputs, "outputs", name)
    cacher_items: tuple[Any, ...] | None = None
    if cachers is not None:
        cacher_items = tuple(cachers)
        if not cacher_items:
            raise EmptyCachersError(
                f"Stage '{name}' has cachers=[]; use cachers=None for no caching, or one "
                f"cacher per output."
            )
        if len(cacher_items) != len(output_items):
            raise CachersMismatchError(
                f"Stage '{name}' has {len(cacher_items)} cachers for {len(output_items)} "
                f"outputs; give exactly one cacher (or None) per output."
            )
    defaulted = _check_signature(fn, name, input_names, aggregate)
    return StageSpec(fn, name, input_names, output_items, cacher_items, suppress_missing_inputs, aggregate,
                     defaulted, None if version is None else str(version))


def _dispatch(spec: StageSpec, record: Any, records: Any, overrides: dict[str, Any]) -> Any:
    manager = getattr(record, "manager", None)
    if manager is None or not hasattr(manager, "run_stage"):
        raise TypeError(
            f"Stage '{spec.name}' must be called with a Record as its first argument, "
            f"got {type(record).__name__}."
        )
    return manager.run_stage(spec, record, records, overrides)


def stage(inputs: list[str] | None = None, outputs: list[Any] | None = None,
          cachers: list[Any] | None = None, suppress_missing_inputs: bool = False,
          version: str | None = None) -> Callable[..., Any]:
    """Declare a stage: ``f(record, <inputs>...)`` called as ``f(record, **overrides)``.

    Args:
        inputs: names looked up in ``record.state`` and passed as keyword arguments.
        outputs: names (or ``Lazy``) the return value is stored under.
        cachers: one cacher class/instance (or None) per output.
        suppress_missing_inputs: let missing inputs fall back to the defaults.
        version: pin the stage's code version: its cache entries stay valid while
            the version is the same, whatever changes in its code or helpers.
    """

    def decorator(fn: Callable[..., Any]) -> Callable[..., Any]:
        spec = build_spec(fn, inputs, outputs, cachers, suppress_missing_inputs, aggregate=False, version=version)

        @functools.wraps(fn)
        def wrapper(record: Any, **overrides: Any) -> Any:
            return _dispatch(spec, record, None, overrides)

        wrapper.stage_spec = spec  # type: ignore[attr-defined]
        return wrapper

    return decorator


def aggregate(inputs: list[str] | None = None, outputs: list[Any] | None = None,
              cachers: list[Any] | None = None, version: str | None = None) -> Callable[..., Any]:
    """Declare an aggregate: ``f(record, records, **{input: {Record: value}})``.

    Called as ``agg(record, records=None)``; ``None`` means every record of the
    manager except ``record``. Missing inputs on some records are left out of the
    dicts rather than raising.
    """

    def decorator(fn: Callable[..., Any]) -> Callable[..., Any]:
        spec = build_spec(fn, inputs, outputs, cachers, False, aggregate=True, version=version)

        @functools.wraps(fn)
        def wrapper(record: Any, records: Any = None, **overrides: Any) -> Any:
            return _dispatch(spec, record, records, overrides)

        wrapper.stage_spec = spec  # type: ignore[attr-defined]
        return wrapper

    return decorator
