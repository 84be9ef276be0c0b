"""The graph of an experiment's stage calls and the plan of what must run.

Pure: the map pass of the executor builds :class:`Node` values; :func:`plan` walks
them in call order, tells each call which upstream calls rerun because of an
overwrite, and asks :func:`curifactory.decision.decide` whether it runs. What is
skipped only leaves its outputs to be loaded if a running stage reads them.
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass, field

from curifactory.decision import CallFacts, Decision, Reason, decide

__all__ = ["Node", "NodeKey", "Plan", "Reason", "plan", "producers"]

NodeKey = tuple[int, str, int]
"""(record index, stage name, occurrence of that stage on that record)."""


@dataclass(frozen=True)
class Node:
    """One mapped stage call.

    Attributes:
        key: (record index, stage, occurrence).
        inputs: declared input names.
        outputs: output names.
        input_records: records an aggregate reads from (its own for a stage).
        status: the call's own verdict (``decide`` of its facts, before any
            upstream rerun is known).
        paths: the artifact path of each output (None without a cacher).
        facts: what the map pass found out about the call (derived from
            ``status`` when a graph is built by hand).
    """

    key: NodeKey
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    input_records: tuple[int, ...]
    status: Reason
    paths: tuple[str | None, ...] = ()
    aggregate: bool = False
    sources: tuple[NodeKey, ...] = ()
    """Producers of the values it reads, as seen in the map pass (e.g. across
    ``record.make_copy()`` or values passed as keyword arguments)."""
    facts: CallFacts | None = None
    entries: tuple[tuple[str, str, str, int] | None, ...] = ()
    """Per output, (content hash, preview, producing run, size) of the valid cache entry the
    map pass found (None where there is none), so a skipped call need not read its metadata again."""
    metadata_paths: tuple[str | None, ...] = ()
    """The metadata file of each output's entry (None without a cacher)."""

    def __post_init__(self) -> None:
        if self.facts is None:
            object.__setattr__(self, "facts", CallFacts.for_reason(self.stage, self.status))

    @property
    def record_index(self) -> int:
        return self.key[0]

    @property
    def stage(self) -> str:
        return self.key[1]


@dataclass(frozen=True)
class Plan:
    """The decision for every mapped stage call, and the edges between them."""

    nodes: tuple[Node, ...]
    verdicts: dict[NodeKey, Decision]
    edges: tuple[tuple[NodeKey, NodeKey, str], ...] = field(default_factory=tuple)
    upstream: dict[NodeKey, tuple[str, ...]] = field(default_factory=dict)
    """Per call, the upstream stages that rerun because of an overwrite."""
    rechecks: frozenset[NodeKey] = frozenset()
    """Calls planned as cached that read from a call that runs: whether their input
    content changed is known only once it ran, so they are decided again then."""

    @functools.cached_property
    def by_key(self) -> dict[NodeKey, Node]:
        """The mapped calls by key."""
        return {node.key: node for node in self.nodes}

    @functools.cached_property
    def decisions(self) -> dict[NodeKey, Reason]:
        """The :class:`Reason` of every call."""
        return {key: verdict.reason for key, verdict in self.verdicts.items()}

    def runs(self, key: NodeKey) -> bool | None:
        """Whether the call runs; ``None`` for a call the map pass did not see."""
        verdict = self.verdicts.get(key)
        return None if verdict is None else verdict.runs

    @property
    def to_run(self) -> list[Node]:
        return [n for n in self.nodes if self.verdicts[n.key].runs]

    def records_done(self) -> int:
        """How many records (not aggregates) have every mapped call cached: nothing to compute."""
        running = {n.record_index for n in self.to_run}
        aggregates = {n.record_index for n in self.nodes if n.aggregate}
        return len({n.record_index for n in self.nodes} - running - aggregates)


def producers(nodes: tuple[Node, ...] | list[Node]) -> list[tuple[NodeKey, NodeKey, str]]:
    """Edges (producer, consumer, name): the latest earlier call that output each input."""
    latest: dict[tuple[int, str], NodeKey] = {}
    edges: list[tuple[NodeKey, NodeKey, str]] = []
    for node in nodes:
        for name in node.inputs:
            for record_index in node.input_records:
                source = latest.get((record_index, name))
                if source is not None:
                    edges.append((source, node.key, name))
        for name in node.outputs:
            latest[(node.record_index, name)] = node.key
    return edges


def plan(nodes: list[Node]) -> Plan:
    """Decide which mapped calls run (nodes are in call order)."""
    edges = producers(nodes)
    upstream: dict[NodeKey, list[NodeKey]] = {node.key: list(node.sources) for node in nodes}
    for source, target, _ in edges:
        upstream[target].append(source)
    verdicts: dict[NodeKey, Decision] = {}
    rerun_upstream: dict[NodeKey, tuple[str, ...]] = {}
    rechecks: set[NodeKey] = set()
    for node in nodes:  # call order is a topological order
        sources = [src for src in upstream.get(node.key, ()) if src in verdicts]
        rerun = tuple(dict.fromkeys(src[1] for src in sources if verdicts[src].reason.cascades))
        assert node.facts is not None  # set in Node.__post_init__
        verdict = decide(dataclasses.replace(node.facts, upstream_rerun=rerun) if rerun else node.facts)
        verdicts[node.key] = verdict
        rerun_upstream[node.key] = rerun
        if not verdict.runs and any(verdicts[src].runs or src in rechecks for src in sources):
            rechecks.add(node.key)
    return Plan(tuple(nodes), verdicts, tuple(edges), rerun_upstream, frozenset(rechecks))
