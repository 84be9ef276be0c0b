"""The graph of an experiment's stage calls and the plan of what must run.

Pure: the map pass of the executor builds :class:`Node` values; :func:`plan` turns
them into a :class:`Plan`. A stage call must run when it has no outputs, when an
output has no cacher or no valid cache entry, when overwrite applies to it, or when
a stage it takes inputs from is rerun because of an overwrite (overwrites cascade
downstream, so nothing downstream keeps a stale value). Everything else is skipped
and its outputs are only loaded if a running stage reads them.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

NodeKey = tuple[int, str, int]
"""(record index, stage name, occurrence of that stage on that record)."""


class Reason(str, enum.Enum):
    """Why a stage call runs (or is skipped)."""

    NO_OUTPUTS = "has no outputs"
    NOT_CACHED = "an output is not cached"
    INVALID = "a cache entry is corrupt"
    OVERWRITE = "overwrite applies"
    UPSTREAM = "an upstream stage is overwritten"
    CACHED = "cached"


@dataclass(frozen=True)
class Node:
    """One mapped stage call.

    Attributes:
        key: (record index, stage, occurrence).
        inputs: declared input names.
        outputs: output names.
        input_records: records an aggregate reads from (its own for a stage).
        status: ``Reason.CACHED`` when every output is valid in the cache, else
            the reason it must run on its own account.
        paths: the artifact path of each output (None without a cacher).
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
    decisions: dict[NodeKey, Reason]
    edges: tuple[tuple[NodeKey, NodeKey, str], ...] = field(default_factory=tuple)

    def runs(self, key: NodeKey) -> bool | None:
        """Whether the call runs; ``None`` for a call the map pass did not see."""
        reason = self.decisions.get(key)
        return None if reason is None else reason is not Reason.CACHED

    @property
    def to_run(self) -> list[Node]:
        return [n for n in self.nodes if self.decisions[n.key] is not Reason.CACHED]


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
    decisions: dict[NodeKey, Reason] = {}
    overwritten: set[NodeKey] = set()
    for node in nodes:  # call order is a topological order
        reason = node.status
        if any(src in overwritten for src in upstream.get(node.key, ())):
            reason = Reason.UPSTREAM
        if reason in (Reason.OVERWRITE, Reason.UPSTREAM):
            overwritten.add(node.key)
        decisions[node.key] = reason
    return Plan(tuple(nodes), decisions, tuple(edges))
