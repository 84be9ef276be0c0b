"""Does this stage call run, and why: the one decision, pure.

Everything the answer depends on is gathered first by the adapters and the
executor (is each output's cache entry valid, was an overwrite asked for, which
upstream stage calls rerun, did ``--parallel`` workers already handle the call)
into a :class:`CallFacts` value; :func:`decide` turns it into a :class:`Decision`.
The planner (:func:`curifactory.dag.plan`) and the per-call path without a plan
both call :func:`decide`, so the rules, and the cascade of overwrites downstream,
are written once, here. No I/O happens in this module.

The rules, in order:

1. a call without outputs always runs (``no_outputs``);
2. an overwrite that applies to it (``--overwrite``, ``--overwrite-stage``, the
   parameter set's ``overwrite``) reruns it (``overwrite``); when ``--parallel``
   workers already ran the record stages, only aggregates still apply it;
3. a call reading from an upstream call that reruns because of an overwrite (or
   a code change) reruns too (``upstream``), so nothing downstream keeps a stale value;
4. an output without a cacher (``not_cached``), with a corrupt or incomplete
   entry (``invalid``) or with no entry (``not_cached``) makes it run;
5. entries written by other code than the stage's now (its code fingerprint,
   :mod:`curifactory.fingerprint`) rerun it (``code_changed``), and, as an
   overwrite does, what is downstream of it; under ``code_changes: warn`` they
   are used, marked stale; under ``ignore`` the fingerprint is not compared;
6. entries computed from other input content than the inputs have now (an
   upstream stage was recomputed and gave another result) rerun it
   (``input_changed``); recomputed inputs with the same content do not;
7. otherwise it is skipped (``cached``).

And one rule that needs the whole graph (:func:`needed`, applied by the planner):

8. a call that would run only because an entry is missing (or it has no cacher), whose
   outputs are read by later calls none of which runs (and which the experiment
   does not read outside a stage), is not run (``not_needed``): as in 0.20, a
   deleted intermediate entry or an output kept in memory is not recomputed
   when everything that reads it is cached. A corrupt entry still reruns its
   call, so the cache is repaired.
"""

from __future__ import annotations

import enum
import functools
from dataclasses import dataclass


class Reason(str, enum.Enum):
    """Why a stage call runs (or ``CACHED``: why it does not)."""

    NO_OUTPUTS = "has no outputs"
    NOT_CACHED = "an output is not cached"
    INVALID = "a cache entry is corrupt"
    OVERWRITE = "overwrite applies"
    UPSTREAM = "an upstream stage reruns"
    CODE_CHANGED = "its code changed"
    INPUT_CHANGED = "an input changed content"
    CACHED = "cached"
    NOT_NEEDED = "not needed: every stage reading its outputs is cached"

    @property
    def runs(self) -> bool:
        return self is not Reason.CACHED and self is not Reason.NOT_NEEDED

    @property
    def for_missing_entry(self) -> bool:
        """It runs only because an entry is missing or corrupt: worth a second look just
        before running, since another call or process may have written it meanwhile."""
        return self in (Reason.NOT_CACHED, Reason.INVALID)

    @property
    def cascades(self) -> bool:
        """Whether calls downstream of one decided this way must rerun too."""
        return self in (Reason.OVERWRITE, Reason.UPSTREAM, Reason.CODE_CHANGED)


class Entry(str, enum.Enum):
    """The state of one output's cache entry, as the cacher found it."""

    VALID = "valid"
    MISSING = "missing"
    INVALID = "invalid"
    NO_CACHER = "no cacher"


@dataclass(frozen=True)
class OutputFact:
    """One output of the call: its name, its entry's state and, if invalid, why."""

    name: str
    entry: Entry
    problem: str | None = None


@dataclass(frozen=True)
class CallFacts:
    """What is known about one stage call before deciding.

    Attributes:
        stage: the stage's name.
        outputs: one :class:`OutputFact` per declared output (empty: no outputs).
        overwrite: an overwrite is asked for this call (flags or the set's own).
        aggregate: the call is an aggregate.
        prefilled: ``--parallel`` workers already ran (and overwrote) the
            record stages of this run; overwrites then apply to aggregates only.
        inputs_overwritten: for an aggregate after a prefilled run, a stage of a
            record it combines was overwritten by the workers.
        upstream_rerun: stages upstream of this call that rerun because of an
            overwrite or a code change (each one is enough to rerun it).
        code_change: what changed in the code since the cached entries were
            written (empty: nothing, or no fingerprint to compare with).
        code_changes: the ``code_changes`` policy: ``rerun``, ``warn`` or ``ignore``.
        input_change: an input whose content differs from the content the cached
            entries were computed from (e.g. its stage was recomputed and gave
            another result); empty when none does or it is not known.
    """

    stage: str
    outputs: tuple[OutputFact, ...]
    overwrite: bool = False
    aggregate: bool = False
    prefilled: bool = False
    inputs_overwritten: bool = False
    upstream_rerun: tuple[str, ...] = ()
    code_change: str = ""
    code_changes: str = "rerun"
    input_change: str = ""

    @classmethod
    def for_reason(cls, stage: str, reason: Reason) -> CallFacts:
        """Facts that, without upstream information, decide ``reason`` (for callers
        that know only a call's own verdict, e.g. a hand-built graph)."""
        entry = {Reason.INVALID: Entry.INVALID, Reason.NOT_CACHED: Entry.MISSING}.get(reason, Entry.VALID)
        outputs = () if reason is Reason.NO_OUTPUTS else (OutputFact("output", entry),)
        return cls(stage, outputs, overwrite=reason is Reason.OVERWRITE)


@dataclass(frozen=True)
class Decision:
    """The answer for one call: the :class:`Reason` and what it is about.

    ``detail`` names the output (``not_cached``, ``invalid``) or the upstream
    stage (``upstream``) that made the call run, or says what changed: the code
    (``code_changed``), an input's content (``input_changed``) or, for an output
    with no entry whose stage wrote one for other parameters, which parameters
    (``not_cached``); it is empty otherwise. ``stale`` is set on a ``cached``
    decision whose code changed under ``code_changes: warn``.
    """

    reason: Reason
    detail: str = ""
    stale: str = ""

    @functools.cached_property
    def runs(self) -> bool:
        return self.reason.runs

    def describe(self) -> str:
        """``an output is not cached ('model')``-style text for ``--map`` and logs."""
        if self.stale:
            return f"{self.reason.value}, but stale: {self.stale}"
        if not self.detail:
            return self.reason.value
        if self.reason in (Reason.CODE_CHANGED, Reason.INPUT_CHANGED, Reason.NOT_CACHED) and " " in self.detail:
            return self.detail  # a sentence of its own: "code of helper 'h' (m.py:3) changed"
        return f"{self.reason.value} ({self.detail if ' ' in self.detail else repr(self.detail)})"


def overwrite_applies(facts: CallFacts) -> bool:
    """Whether an overwrite reruns this call (after a prefilled run: aggregates only)."""
    if facts.prefilled:
        return facts.aggregate and (facts.overwrite or facts.inputs_overwritten)
    return facts.overwrite


_PLAIN = {reason: Decision(reason) for reason in Reason}
"""The decisions without a detail, made once (one is returned for most calls of a run)."""


def needed(verdict: Decision, readers: list[Decision], read_outside: bool) -> Decision:
    """Rule 8: ``verdict`` unless the call runs only for a missing entry (``not_cached``) and has
    readers (the calls that read its outputs, already decided), none of which runs, and the
    experiment did not read its outputs outside a stage (``read_outside``)."""
    if verdict.reason is not Reason.NOT_CACHED or not readers or read_outside:
        return verdict
    if any(reader.runs for reader in readers):
        return verdict
    return _PLAIN[Reason.NOT_NEEDED]


def decide(facts: CallFacts) -> Decision:
    """Whether the call runs, and why (see the module docstring for the rules)."""
    if not facts.outputs:
        return _PLAIN[Reason.NO_OUTPUTS]
    if overwrite_applies(facts):
        return _PLAIN[Reason.OVERWRITE]
    if facts.upstream_rerun:
        return Decision(Reason.UPSTREAM, facts.upstream_rerun[0])
    missing: OutputFact | None = None
    for output in facts.outputs:
        if output.entry is Entry.NO_CACHER:
            return Decision(Reason.NOT_CACHED, output.name)
        if output.entry is Entry.INVALID:
            return Decision(Reason.INVALID, output.name)
        if output.entry is Entry.MISSING and missing is None:
            missing = output
    if missing is not None:  # what changed in its parameters, when that is known, else which output
        return Decision(Reason.NOT_CACHED, missing.problem or missing.name)
    if facts.code_change and facts.code_changes == "rerun":
        return Decision(Reason.CODE_CHANGED, facts.code_change)
    if facts.input_change:
        return Decision(Reason.INPUT_CHANGED, facts.input_change)
    if facts.code_change and facts.code_changes == "warn":
        return Decision(Reason.CACHED, stale=facts.code_change)
    return _PLAIN[Reason.CACHED]
