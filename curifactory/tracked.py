"""``@cf.track()``: every call of a plain function becomes a run, recorded like an experiment run.

For a script or a notebook that has no stages yet::

    @cf.track()
    def train(lr, epochs=10):
        for epoch in range(epochs):
            cf.current().log_metric("loss", 1 / (epoch + 1) * lr)
        return {"accuracy": 0.9}

Each call is one run of the experiment named after the function's qualified name
(``curifactory runs train``, ``cf.load_runs("train")``): its arguments are the run's
parameters (one record), its return value the record's ``result`` output (and the
run's ``result`` when it is JSON, else a preview), with git and system facts from the
metadata providers, start, end and duration, and the traceback of an exception
(which is raised again). The call runs as a stage of its own: its result is cached
under the hash of the arguments and the function's code fingerprint (a call with the
same arguments and unchanged code returns the cached value and replays what it
logged), unless ``@cf.track(cache=False)``.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import json
import re
import sys
import traceback
import uuid
from typing import Any, Callable

from curifactory import hashing
from curifactory.caching import PickleCacher, preview
from curifactory.config import Settings, load_settings
from curifactory.errors import HashingError, TrackingError
from curifactory.fingerprint import fingerprint
from curifactory.params import ExperimentParameters
from curifactory.staging import StageSpec
from curifactory.tracking import current

__all__ = ["track", "current"]

RESULT = "result"
"""The output name a tracked call's return value is kept under."""
RESULT_JSON_LIMIT = 10_000
"""A return value whose JSON is longer than this is kept in ``run.json`` as a preview only."""
_RESERVED = hashing.SKIPPED_FIELDS - {"name"}


def _experiment_name(fn: Callable[..., Any]) -> str:
    qualified = getattr(fn, "__qualname__", None) or getattr(fn, "__name__", "function")
    return re.sub(r"[^A-Za-z0-9_.-]", "_", qualified.replace("<locals>.", ""))


def _shown(params: Any, value: Any) -> str:
    """How an argument shows in the parameter registry (never the hash: see :meth:`Tracked.params`)."""
    return hashing.display_text(value)


class Tracked:
    """A function wrapped by :func:`track`; calling it makes a run."""

    def __init__(self, fn: Callable[..., Any], cache: bool, settings: Settings | None):
        self.fn = fn
        self.cache = cache
        self.settings = settings
        self.signature = inspect.signature(fn)
        reserved = sorted(_RESERVED & set(self.signature.parameters))
        if reserved:
            raise TrackingError(f"@cf.track cannot track {fn.__qualname__}(): its argument "
                                f"{', '.join(map(repr, reserved))} has a name curifactory keeps for itself "
                                f"(a parameter set's {', '.join(sorted(_RESERVED))}); rename the argument.")
        self.experiment = _experiment_name(fn)
        fields: list[Any] = [(name, Any, dataclasses.field(default=None)) for name in self.signature.parameters]
        shown = {name: _shown for name in self.signature.parameters}  # the hash is made by hash_values
        fields.append(("hash_representations", dict, dataclasses.field(default_factory=lambda: dict(shown),
                                                                        repr=False)))
        self.params_class = dataclasses.make_dataclass(f"{fn.__name__}_arguments", fields,
                                                       bases=(ExperimentParameters,))
        self.params_class.__module__ = getattr(fn, "__module__", None) or __name__
        functools.update_wrapper(self, fn)  # type: ignore[arg-type]

    def arguments(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
        """The call's arguments by parameter name, defaults filled in."""
        try:
            bound = self.signature.bind(*args, **kwargs)
        except TypeError as exc:
            raise TypeError(f"{self.fn.__qualname__}(): {exc}") from None
        bound.apply_defaults()
        return dict(bound.arguments)

    def params(self, arguments: dict[str, Any], root: str) -> Any:
        """The call's parameter set: a field per argument, hashed by the arguments' content (a
        function argument by its code fingerprint, as a stage's code counts)."""

        def code_text(fn: Any) -> str:
            return f"{fingerprint(fn, root).digest}:{hashing.code_digest(fn.__code__)}"

        try:
            digest = hashing.hash_values(arguments, "argument", f" of {self.fn.__qualname__}()", code_text)
        except HashingError:
            if self.cache:
                raise
            digest = uuid.uuid4().hex  # nothing is cached under it: the call only needs a record
        if fingerprint(self.fn, root).not_covered:  # no source to fingerprint (python -c, exec): its bytecode counts
            digest = hashing.combine_hashes(digest, [hashing.code_digest(self.fn.__code__)])
        values = dict(arguments)
        values.setdefault("name", self.fn.__name__)
        params = self.params_class(**values)
        params.hash = digest
        return params

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        from curifactory.manager import ArtifactManager
        from curifactory.record import Record

        arguments = self.arguments(args, kwargs)
        settings = self.settings or load_settings()
        params = self.params(arguments, settings.root)
        # the module is part of the cache entries' names: two modules' train() never share one
        manager = ArtifactManager(self.experiment, settings=settings, status_override="incomplete",
                                  prefix=f"{getattr(self.fn, '__module__', None) or 'function'}.{self.experiment}")
        manager.tracker.info["called_from"] = " ".join(sys.argv)  # the script (no command reruns a call)
        record = Record(manager, params)
        spec = self._spec(args, kwargs)
        try:
            manager.run_stage(spec, record, None, {})
            value = record.state[RESULT]
        except BaseException as exc:
            manager.tracker.traceback = self._traceback(exc)
            manager.error = "KeyboardInterrupt" if isinstance(exc, KeyboardInterrupt) else f"{type(exc).__name__}: {exc}"
            manager.finish("error")
            raise
        manager.tracker.result = result_document(value)
        manager.finish("complete")
        return value

    def _traceback(self, exc: BaseException) -> str:
        """The traceback from the tracked function's own frame on (curifactory's frames left out)."""
        tb = exc.__traceback__
        while tb is not None and tb.tb_frame.f_code is not self.fn.__code__:
            tb = tb.tb_next
        return "".join(traceback.format_exception(type(exc), exc, tb or exc.__traceback__))

    def _spec(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> StageSpec:
        fn = self.fn

        def call(record: Any) -> Any:
            return fn(*args, **kwargs)

        return StageSpec(call, fn.__name__, (), (RESULT,), (PickleCacher,) if self.cache else None, False, False,
                         code=fn)

    def __get__(self, instance: Any, owner: Any = None) -> Any:
        """A tracked method: ``self`` is its first argument (hashed like the others, so give
        its class a ``__repr__`` that shows what the result depends on)."""
        return self if instance is None else functools.partial(self, instance)

    def __repr__(self) -> str:
        return f"<tracked function {self.fn.__qualname__}>"


def result_document(value: Any) -> Any:
    """A return value as ``run.json`` keeps it: the value when it is small JSON, else a preview."""
    try:
        small = len(json.dumps(value, allow_nan=True)) <= RESULT_JSON_LIMIT
    except (TypeError, ValueError):
        small = False
    return value if small else {"preview": preview(value), "type": type(value).__name__}


def track(fn: Callable[..., Any] | None = None, *, cache: bool = True,
          settings: Settings | None = None) -> Any:
    """Record every call of the decorated function as a run (see the module's documentation).

    Use as ``@cf.track()`` or ``@cf.track``.

    Args:
        cache: keep the result under the hash of the arguments and the code, and return
            it for a call with the same arguments (``False``: every call computes).
        settings: the project settings (default: ``curifactory_config.json`` found from
            the working directory when the function is called).

    Raises:
        TrackingError: an argument has a name curifactory keeps for itself (``hash``,
            ``overwrite``, ``hash_representations``).
        HashingError: (when called) an argument cannot be hashed; names the argument.
    """
    if fn is not None:
        if not callable(fn):
            raise TypeError(f"@cf.track decorates a function, not {fn!r}; write @cf.track() or @cf.track(cache=False).")
        return Tracked(fn, cache, settings)
    return lambda function: Tracked(function, cache, settings)
