"""The graph of an experiment's stage calls and the plan of what must run.

Pure: the map pass of the executor builds :class:`Node` values; :func:`plan` walks
them in call order, tells each call which upstream calls rerun because of an
overwrite, and asks :func:`curifactory.decision.decide` whether it runs; then, from
the last call back, a call that runs only for a missing entry and whose readers are
all skipped is not needed (:func:`curifactory.decision.needed`). What is skipped only
leaves its outputs to be loaded if a running stage reads them.

:class:`DAG` is 0.20's ``manager.map``: the same calls and the same plan, with 0.20's
``execution_list``, ``execution_trees``, ``is_leaf`` and ``artifacts`` (whose
``cached`` flags can be changed to ask what would run).
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass, field
from typing import Any

from curifactory.decision import CallFacts, Decision, Entry, Reason, decide, needed
from curifactory.errors import MissingInputError

__all__ = ["DAG", "ExecutionNode", "MapArtifactRepresentation", "Node", "NodeKey", "Plan", "Reason", "plan",
           "producers"]

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
    missing_inputs: tuple[str, ...] = ()
    """Declared inputs nothing provides (not in the state, not passed, no default): it would fail."""

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

    @property
    def not_needed(self) -> list[Node]:
        """Calls skipped although their entries are missing: nothing that runs reads them."""
        return [n for n in self.nodes if self.verdicts[n.key].reason is Reason.NOT_NEEDED]

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


def upstream_of(nodes: list[Node],
                edges: list[tuple[NodeKey, NodeKey, str]] | None = None) -> dict[NodeKey, list[NodeKey]]:
    """Per call, the calls it reads from: its map-pass sources, then the producers of its inputs."""
    upstream: dict[NodeKey, list[NodeKey]] = {node.key: list(node.sources) for node in nodes}
    for source, target, _ in producers(nodes) if edges is None else edges:
        upstream[target].append(source)
    return upstream


def readers_of(upstream: dict[NodeKey, list[NodeKey]]) -> dict[NodeKey, list[NodeKey]]:
    """The inverse of :func:`upstream_of`: per call, the calls that read from it."""
    readers: dict[NodeKey, list[NodeKey]] = {}
    for key, sources in upstream.items():
        for source in sources:
            readers.setdefault(source, []).append(key)
    return readers


def plan(nodes: list[Node], read: frozenset[NodeKey] | set[NodeKey] = frozenset(), prune: bool = True) -> Plan:
    """Decide which mapped calls run (nodes are in call order).

    ``read``: calls whose outputs the experiment read outside a stage during the map
    pass; with ``prune``, a call that runs only for a missing entry and whose readers
    are all skipped is not run (:func:`curifactory.decision.needed`), unless it is in ``read``.
    """
    edges = producers(nodes)
    upstream = upstream_of(nodes, edges)
    verdicts: dict[NodeKey, Decision] = {}
    rerun_upstream: dict[NodeKey, tuple[str, ...]] = {}
    for node in nodes:  # call order is a topological order
        sources = [src for src in upstream.get(node.key, ()) if src in verdicts]
        rerun = tuple(dict.fromkeys(src[1] for src in sources if verdicts[src].reason.cascades))
        assert node.facts is not None  # set in Node.__post_init__
        verdicts[node.key] = decide(dataclasses.replace(node.facts, upstream_rerun=rerun) if rerun else node.facts)
        rerun_upstream[node.key] = rerun
    if prune:
        _prune(nodes, upstream, verdicts, read)
    rechecks: set[NodeKey] = set()
    for node in nodes:  # a skipped call reading from one that runs (or is rechecked) is rechecked
        verdict = verdicts[node.key]
        if not verdict.runs and verdict.reason is not Reason.NOT_NEEDED and any(
                verdicts[src].runs or src in rechecks for src in upstream.get(node.key, ()) if src in verdicts):
            rechecks.add(node.key)
    return Plan(tuple(nodes), verdicts, tuple(edges), rerun_upstream, frozenset(rechecks))


def _prune(nodes: list[Node], upstream: dict[NodeKey, list[NodeKey]], verdicts: dict[NodeKey, Decision],
           read: frozenset[NodeKey] | set[NodeKey]) -> None:
    """Rule 8 (:func:`needed`), from the last call back: a pruned reader runs no more."""
    readers = readers_of(upstream)
    for node in reversed(nodes):
        own = readers.get(node.key, ())
        verdicts[node.key] = needed(verdicts[node.key], [verdicts[k] for k in own], node.key in read)


# -- 0.20's view of the map: ``manager.map`` -------------------------------------------------
@dataclass
class MapArtifactRepresentation:
    """One output of a mapped stage call, as 0.20's ``manager.map.artifacts`` held it.

    Not frozen, as in 0.20: setting ``cached`` and calling
    :meth:`DAG.determine_execution_list` asks the planner "what if".
    """

    record_index: int
    stage_name: str
    name: str
    cached: bool
    metadata: dict[str, Any] | None = None
    cacher: Any = None
    path: str | None = None


class ExecutionNode:
    """A stage call in one of :attr:`DAG.execution_trees`; its ``dependencies`` make its inputs."""

    def __init__(self, record: Any, stage_name: str, record_index: int = -1):
        self.record = record
        self.stage_name = stage_name
        self.record_index = record_index
        self.parent: ExecutionNode | None = None
        self.dependencies: list[ExecutionNode] = []

    def chain_rep(self) -> tuple[int, str]:
        """``(record index, stage name)``, the form of :attr:`DAG.execution_list`."""
        return (self.record_index, self.stage_name)

    def string_rep(self, level: int = 0) -> str:
        """This node and, indented below it, what it depends on."""
        text = "\n" + "  " * level + f"({self.record_index}, {self.stage_name})"
        return text + "".join(child.string_rep(level + 1) for child in self.dependencies)

    def __str__(self) -> str:
        return self.string_rep()


class DAG:
    """0.20's ``manager.map``: the mapped stage calls of a run and what will execute.

    A view over the map pass's :class:`Node` values; every answer about what runs
    comes from :func:`plan`, so it is the run's own decision (with 0.20's
    ``execution_list`` form, ``(record index, stage name)``).

    Args:
        records: the records as they were at the end of the map pass.
        nodes: the mapped calls, in call order.
        read: calls whose outputs the experiment read outside a stage.
        planned: the run's plan of these nodes, when it was already made.
        prune: whether re-planning applies the not-needed rule (as the run's plan did).
    """

    def __init__(self, records: list[Any] | None = None, nodes: list[Node] | None = None,
                 read: frozenset[NodeKey] | set[NodeKey] = frozenset(), planned: Plan | None = None,
                 prune: bool = True):
        self.records: list[Any] = list(records or [])
        self.prune = prune
        self.nodes: list[Node] = list(nodes or [])
        self.read = frozenset(read)
        self.plan: Plan | None = planned
        self.execution_list: list[tuple[int, str]] = []
        self.execution_trees: list[ExecutionNode] = []
        if planned is not None:
            self.execution_list = [(n.record_index, n.stage) for n in planned.to_run]

    @functools.cached_property
    def artifacts(self) -> list[MapArtifactRepresentation]:
        """Every output of every mapped call, in call order (made when first read)."""
        return [_artifact_of(node, index, name) for node in self.nodes for index, name in enumerate(node.outputs)]

    @functools.cached_property
    def _outputs(self) -> dict[NodeKey, list[int]]:
        """Per call, the positions of its outputs in :attr:`artifacts`."""
        positions, start = {}, 0
        for node in self.nodes:
            positions[node.key] = list(range(start, start + len(node.outputs)))
            start += len(node.outputs)
        return positions

    # -- the graph --------------------------------------------------------------------------
    def _index(self, record: Any) -> int:
        for index, known in enumerate(self.records):
            if known is record:
                return index
        raise ValueError(f"record {getattr(record, 'name', record)!r} is not part of this map")

    def _calls_of(self, index: int) -> list[Node]:
        return [node for node in self.nodes if node.record_index == index]

    def _readers(self) -> dict[NodeKey, list[NodeKey]]:
        return readers_of(upstream_of(self.nodes))

    def child_records(self, record: Any) -> list[Any]:
        """The records that take ``record`` as an input (its copies and its aggregates)."""
        return [other for other in self.records if any(r is record for r in getattr(other, "input_records", ()))]

    def is_output_used_anywhere(self, record: Any, stage_search_start_index: int, output: str) -> bool:
        """Whether a call of ``record`` from position ``stage_search_start_index`` on, or of a
        record taking it as an input, declares ``output`` as an input."""
        calls = self._calls_of(self._index(record))
        if any(output in node.inputs for node in calls[stage_search_start_index:]):
            return True
        return any(self.is_output_used_anywhere(child, 0, output) for child in self.child_records(record))

    def is_leaf(self, record: Any, stage_name: str) -> bool:
        """Whether no later call reads an output of ``stage_name`` on ``record`` (its first call)."""
        calls = self._calls_of(self._index(record))
        position = [node.stage for node in calls].index(stage_name)
        node = calls[position]
        return not any(self.is_output_used_anywhere(record, position + 1, name) for name in node.outputs)

    def find_leaves(self) -> list[tuple[int, str]]:
        """``(record index, stage)`` of every call whose outputs no later call reads."""
        readers = self._readers()
        return [(node.record_index, node.stage) for node in self.nodes if not readers.get(node.key)]

    def build_execution_tree_recursive(self, record: Any, stage: str) -> ExecutionNode:
        """The tree of the calls ``stage`` on ``record`` depends on (it at the root)."""
        index = self._index(record)
        by_key = {node.key: node for node in self.nodes}
        key = next(node.key for node in self._calls_of(index) if node.stage == stage)
        return self._tree(by_key[key], by_key, self._sources())

    def _sources(self) -> dict[NodeKey, list[NodeKey]]:
        return upstream_of(self.nodes)

    def _tree(self, node: Node, by_key: dict[NodeKey, Node], sources: dict[NodeKey, list[NodeKey]]) -> ExecutionNode:
        record = self.records[node.record_index] if 0 <= node.record_index < len(self.records) else None
        tree = ExecutionNode(record, node.stage, node.record_index)
        for source in dict.fromkeys(sources.get(node.key, ())):
            if source not in by_key:  # a hidden record's call: decided when it runs, not mapped
                continue
            child = self._tree(by_key[source], by_key, sources)
            child.parent = tree
            tree.dependencies.append(child)
        return tree

    def build_execution_trees(self) -> None:
        """One tree per leaf; raises :class:`~curifactory.errors.MissingInputError` (a
        ``KeyError``, as 0.20 raised) for a call whose input nothing provides."""
        for node in self.nodes:
            if node.missing_inputs:
                record = self.records[node.record_index] if node.record_index < len(self.records) else None
                name = record.get_reference_name() if record is not None else str(node.record_index)
                raise MissingInputError(node.stage, node.missing_inputs[0], name,
                                        list(record.state.keys()) if record is not None else [])
        by_key, sources, readers = {n.key: n for n in self.nodes}, self._sources(), self._readers()
        self.execution_trees = [self._tree(node, by_key, sources) for node in self.nodes if not readers.get(node.key)]

    # -- what executes ----------------------------------------------------------------------
    def determine_execution_list(self) -> None:
        """Plan the calls with each artifact's ``cached`` flag as it is now."""
        nodes = [self._as_flagged(node) for node in self.nodes]
        self.plan = plan(nodes, self.read, self.prune)
        self.execution_list = [(node.record_index, node.stage) for node in self.plan.to_run]

    def _as_flagged(self, node: Node) -> Node:
        facts = node.facts
        assert facts is not None
        outputs = []
        for fact, index in zip(facts.outputs, self._outputs[node.key]):
            if self.artifacts[index].cached:
                outputs.append(dataclasses.replace(fact, entry=Entry.VALID, problem=None))
            elif fact.entry is Entry.VALID:
                outputs.append(dataclasses.replace(fact, entry=Entry.MISSING))
            else:
                outputs.append(fact)
        return dataclasses.replace(node, facts=dataclasses.replace(facts, outputs=tuple(outputs)))

    def analyze(self) -> None:
        """Build the execution trees, then the execution list (as 0.20's ``map_records`` did)."""
        self.build_execution_trees()
        self.determine_execution_list()

    def get_record_string(self, record_index: int) -> str:
        """Record ``record_index``'s calls: inputs, outputs, which are cached and from which run."""
        record = self.records[record_index]
        lines = [f"==== {record.get_reference_name()} hash: {record.get_hash()} ===="]
        leaves = set(self.find_leaves())
        for node in self._calls_of(record_index):
            lines.append(f"Stage: {node.stage}" + (" (leaf)" if (record_index, node.stage) in leaves else ""))
            if node.inputs:
                lines.append("\tInputs:")
                lines.extend(f"\t\t{name}" for name in node.inputs)
            if node.outputs:
                lines.append("\tOutputs:")
                for index in self._outputs[node.key]:
                    artifact = self.artifacts[index]
                    made_by = (artifact.metadata or {}).get("run_reference") or ""
                    lines.append(f"\t\t{artifact.name}" + (f" (cached) [{made_by}]" if artifact.cached else ""))
        return "\n".join(lines)

    def print_experiment_map(self) -> None:
        """Print :meth:`get_record_string` of every record."""
        print("\n".join(self.get_record_string(index) for index in range(len(self.records))))


def _artifact_of(node: Node, index: int, name: str) -> MapArtifactRepresentation:
    facts = node.facts
    entry = facts.outputs[index].entry if facts is not None and index < len(facts.outputs) else Entry.MISSING
    summary = node.entries[index] if index < len(node.entries) else None
    metadata = None
    if summary is not None:
        metadata = {"content_hash": summary[0], "preview": summary[1], "run_reference": summary[2]}
    path = node.paths[index] if index < len(node.paths) else None
    return MapArtifactRepresentation(node.record_index, node.stage, name, entry is Entry.VALID, metadata, None, path)
