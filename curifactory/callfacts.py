"""What is known about one stage call before deciding it, gathered for :func:`curifactory.decision.decide`.

The facts come from the call's cachers (is each entry there and intact, which code
and input content it was written from), the manager (overwrite flags, the code
policy, the executor's ``prefilled``) and the records (the content of each input).
Gathering them is the I/O half of a decision; deciding is pure.
"""

from __future__ import annotations

import hashlib
import logging
import warnings
from typing import Any

from curifactory import adoption, caching, explain
from curifactory.decision import CallFacts, Entry, OutputFact
from curifactory.errors import CacheWarning
from curifactory.events import CacheInvalid, emit

logger = logging.getLogger("curifactory.execution")


def gather(call: Any, warn: bool = True, upstream_rerun: tuple[str, ...] = ()) -> CallFacts:
    """What is known about this call now: its cache entries, overwrites, the executor's policy.

    With ``warn``, a corrupt or incomplete entry is logged, warned about
    (``CacheWarning``) and sent to the listeners as ``CacheInvalid``.
    """
    spec, record, manager = call.spec, call.record, call.manager
    outputs = tuple(_output_fact(call, name, cacher, warn) for name, cacher in zip(spec.output_names, call.cachers))
    prefilled = manager.executor.prefilled
    options = manager.options
    stages = options.overwrite_stages
    return CallFacts(
        stage=spec.name, outputs=outputs, aggregate=record.is_aggregate,
        overwrite=(options.overwrite or spec.name in stages
                   or (not prefilled and bool(getattr(record.params, "overwrite", False)))),
        prefilled=prefilled,
        inputs_overwritten=bool(stages) and any(s in stages for r in record.input_records for s in r.stages),
        upstream_rerun=upstream_rerun,
        code_change=_code_change(call, outputs),
        code_changes=call.code_changes,
        input_change=_input_change(call, outputs),
    )


def input_contents(call: Any) -> dict[str, tuple[str, str]]:
    """The content hash (and producing stage) of each input, where it is known."""
    known: dict[str, tuple[str, str]] = {}
    for name in call.spec.inputs:
        if name in call.overrides:
            continue  # passed in as a value: its content is not known here
        if call.spec.aggregate:
            parts = [(r.get_hash(), r.content.get(name)) for r in call.records or [] if name in r.state]
            if parts and all(content is not None for _, content in parts):
                digest = hashlib.blake2b(repr(sorted((h, c[0]) for h, c in parts)).encode(),  # type: ignore[index]
                                         digest_size=16).hexdigest()
                known[name] = (digest, parts[0][1][1])  # type: ignore[index]
        elif name in call.record.content and name in call.record.state:
            known[name] = call.record.content[name]
    return known


def _stored(call: Any, outputs: tuple[OutputFact, ...], key: str) -> Any:
    """The block ``key`` of the first entry that has one, when every entry is valid (else None)."""
    if not outputs or any(o.entry is not Entry.VALID for o in outputs):
        return None
    for cacher in call.cachers:
        stored = (cacher.metadata or {}).get(key) if cacher is not None else None
        if stored is not None:
            return stored
    return None


def _input_change(call: Any, outputs: tuple[OutputFact, ...]) -> str:
    """An input whose content is not the one the (valid) entries were computed from."""
    stored = _stored(call, outputs, "inputs") if call.inputs else None
    if isinstance(stored, dict):
        for name, (content, stage) in call.inputs.items():
            if stored.get(name) not in (None, content):
                return f"input '{name}' changed content (upstream '{stage}' recomputed)"
    return ""


def _code_change(call: Any, outputs: tuple[OutputFact, ...]) -> str:
    """What changed in the code since the (valid) entries were written; "" when nothing
    did or they carry no fingerprint (0.20 entries are taken as they are)."""
    stored = _stored(call, outputs, "code") if call.code is not None else None
    return call.code.change_since(stored) if stored is not None else ""


def _output_fact(call: Any, name: str, cacher: caching.Cacheable | None, warn: bool) -> OutputFact:
    if cacher is None:
        return OutputFact(name, Entry.NO_CACHER)
    problem = entry_problem(cacher)
    legacy = adoption.NOTHING
    if problem == "missing":
        legacy = adoption.adopt(call, cacher)
        if legacy.adopted:
            problem = None if legacy.read_only else entry_problem(cacher)
    if problem is None:
        return OutputFact(name, Entry.VALID)
    if problem == "missing":
        if legacy.reason:
            return OutputFact(name, Entry.MISSING, f"the curifactory 0.20 entry was not adopted: {legacy.reason}")
        return OutputFact(name, Entry.MISSING, explain.missing_because_of_parameters(call.manager, cacher, call.record))
    if warn:
        path = cacher.cache_paths[0] if cacher.cache_paths else cacher.metadata_path()
        message = (f"Cache entry for '{name}' of stage '{call.spec.name}' (record "
                   f"{call.record.get_reference_name()}) is not usable: {problem}. The stage will be recomputed.")
        logger.warning(message)
        # a script or notebook may have no console handler: warnings always reach the user
        warnings.warn(message, CacheWarning, stacklevel=3)
        emit(call.manager.listeners, CacheInvalid(call.spec.name, call.key[0], name, path, problem))
    return OutputFact(name, Entry.INVALID, problem)


def entry_problem(cacher: caching.Cacheable) -> str | None:
    """Why a cacher's entry can't be used (None if it can); honours a 0.20-style ``check()`` override."""
    if type(cacher).check is caching.Cacheable.check:
        return cacher.validate()
    if cacher.check():
        if cacher.metadata is None:
            cacher.load_metadata()  # for the code and input checks
        return None
    return cacher.invalid_reason or "missing"
