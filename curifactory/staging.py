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
    StageDefinitionError,
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
class RetryPolicy:
    """How often a failing stage call is tried again.

    Attributes:
        retries: how many more attempts after the first one fails (so at most
            ``retries + 1`` attempts).
        retry_on: the exception types that are retried; any other one fails the call at once.
        delay: seconds to wait between attempts.
    """

    retries: int
    retry_on: tuple[type[BaseException], ...] = (Exception,)
    delay: float = 0.0

    def retries_after(self, exc: BaseException) -> bool:
        """Whether ``exc`` is one this policy tries again after (never Ctrl-C or exit)."""
        return isinstance(exc, self.retry_on) and not isinstance(exc, (KeyboardInterrupt, SystemExit))


def retry_policy(name: str, retries: Any, retry_on: Any, retry_delay: Any) -> RetryPolicy | None:
    """Check ``@stage``'s retry arguments; ``None`` when the stage is not retried."""
    if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
        raise StageDefinitionError(f"Stage '{name}': retries={retries!r}; give a whole number of extra attempts "
                                   f"(0 or more), e.g. retries=2.")
    kinds = retry_on if isinstance(retry_on, tuple) else (retry_on,)
    if not kinds or not all(isinstance(k, type) and issubclass(k, BaseException) for k in kinds):
        raise StageDefinitionError(f"Stage '{name}': retry_on={retry_on!r}; give an exception class or a tuple "
                                   f"of them, e.g. retry_on=(ConnectionError, TimeoutError).")
    if any(issubclass(k, (KeyboardInterrupt, SystemExit)) for k in kinds):
        raise StageDefinitionError(f"Stage '{name}': retry_on={retry_on!r}; Ctrl-C and exits are never retried, "
                                   f"give the exception types a failing attempt raises.")
    if not retries and (retry_on is not Exception or retry_delay):
        raise StageDefinitionError(f"Stage '{name}': retry_on and retry_delay take effect with retries=N (how many "
                                   f"more attempts), e.g. retries=2.")
    if isinstance(retry_delay, bool) or not isinstance(retry_delay, (int, float)) or not retry_delay >= 0:
        raise StageDefinitionError(f"Stage '{name}': retry_delay={retry_delay!r}; give the seconds to wait "
                                   f"between attempts (0 or more).")
    return RetryPolicy(retries, kinds, float(retry_delay)) if retries else None


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
    retry: RetryPolicy | None = None
    """Re-run a failing call (``@stage(retries=N, retry_on=..., retry_delay=...)``)."""
    code: Callable[..., Any] | None = None
    """The function whose code fingerprint the stage's entries carry, when it is not
    ``function`` itself (``@cf.track`` calls the user's function through a wrapper)."""

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
               suppress_missing_inputs: bool, aggregate: bool, version: Any = None,
               retry: RetryPolicy | None = None) -> StageSpec:
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
                     defaulted, None if version is None else str(version), retry)


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
          version: str | None = None, retries: int = 0,
          retry_on: type[BaseException] | tuple[type[BaseException], ...] = Exception,
          retry_delay: float = 0.0) -> Callable[..., Any]:
    """Declare a stage: ``f(record, <inputs>...)`` called as ``f(record, **overrides)``.

    Args:
        inputs: names looked up in ``record.state`` and passed as keyword arguments.
        outputs: names (or ``Lazy``) the return value is stored under.
        cachers: one cacher class/instance (or None) per output.
        suppress_missing_inputs: let missing inputs fall back to the defaults.
        version: pin the stage's code version: its cache entries stay valid while
            the version is the same, whatever changes in its code or helpers.
        retries: try a failing call up to this many more times; every attempt is in
            the run log (``curifactory show``) and only the last one's output is cached.
        retry_on: the exception type(s) that are retried (default: any ``Exception``).
        retry_delay: seconds to wait between attempts.
    """

    def decorator(fn: Callable[..., Any]) -> Callable[..., Any]:
        spec = build_spec(fn, inputs, outputs, cachers, suppress_missing_inputs, aggregate=False, version=version,
                          retry=retry_policy(fn.__name__, retries, retry_on, retry_delay))

        @functools.wraps(fn)
        def wrapper(record: Any, **overrides: Any) -> Any:
            return _dispatch(spec, record, None, overrides)

        wrapper.stage_spec = spec  # type: ignore[attr-defined]
        return wrapper

    return decorator


def aggregate(inputs: list[str] | None = None, outputs: list[Any] | None = None,
              cachers: list[Any] | None = None, version: str | None = None, retries: int = 0,
              retry_on: type[BaseException] | tuple[type[BaseException], ...] = Exception,
              retry_delay: float = 0.0) -> Callable[..., Any]:
    """Declare an aggregate: ``f(record, records, **{input: {Record: value}})``.

    Called as ``agg(record, records=None)``; ``None`` means every record of the
    manager except ``record``. Missing inputs on some records are left out of the
    dicts rather than raising. ``retries``, ``retry_on`` and ``retry_delay`` are as for
    :func:`stage`.
    """

    def decorator(fn: Callable[..., Any]) -> Callable[..., Any]:
        spec = build_spec(fn, inputs, outputs, cachers, False, aggregate=True, version=version,
                          retry=retry_policy(fn.__name__, retries, retry_on, retry_delay))

        @functools.wraps(fn)
        def wrapper(record: Any, records: Any = None, **overrides: Any) -> Any:
            return _dispatch(spec, record, records, overrides)

        wrapper.stage_spec = spec  # type: ignore[attr-defined]
        return wrapper

    return decorator
