"""The stage graph of a run: built with the ``graphviz`` package, drawn by one ``dot`` call.

Each visible record is a cluster (labelled with its parameter set's name and short
hash) holding its stage calls (boxes) and their artifacts (notes). Edges go from a
stage to the artifacts it output and from an artifact to the later stages that read
it; an aggregate's stage is linked from the artifacts of the records it combines.
Fill colours tell executed from cached stages and computed from cached artifacts.

What the graph shows is first a :class:`GraphSpec` of plain values; the ``graphviz``
package turns it into DOT and the whole run is laid out by a single ``dot -Tsvg``
subprocess (0.20.5 called it once per record). The layout is made with neutral fills
and kept in the run store's ``graphs/`` folder under a digest of the spec, then coloured
by status (:func:`recolor`): a rerun with the same records, cached or not, draws nothing
and imports neither ``graphviz`` nor runs ``dot``. When graphviz is not installed the
report shows the DOT source with install instructions instead. The legend is part of
the report page.
"""

from __future__ import annotations

import hashlib
import html
import logging
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from typing import Any, Iterable

from curifactory import fileio
from curifactory.reporting.colors import record_color
from curifactory.reporting.context import record_label

logger = logging.getLogger(__name__)

DOT_TIMEOUT = 60.0
INSTALL_HINT = (
    "The stage graph needs graphviz's 'dot' program, which was not found on PATH. "
    "Install it with 'apt-get install graphviz' (Debian/Ubuntu), 'conda install graphviz' "
    "or 'brew install graphviz' (macOS), then regenerate the report. The DOT source is below."
)

STAGE_FILL = {"executed": "#9fd8a8", "cached": "#d9dee6", "failed": "#f2a3a3", "skipped": "#f4f1e4"}
ARTIFACT_FILL = {True: "#e3f5e6", False: "#ffffff"}
_GRAPH_ATTRS = {
    "rankdir": "LR", "newrank": "true", "nodesep": "0.15", "ranksep": "0.3", "splines": "true",
    "remincross": "false", "mclimit": "0.3", "nslimit": "2", "nslimit1": "2", "searchsize": "20",
    "fontname": "Helvetica", "fontsize": "11", "bgcolor": "transparent",
}
_NODE_ATTRS = {"fontname": "Helvetica", "fontsize": "10", "style": "filled", "height": "0.3", "margin": "0.08,0.03"}
_EDGE_ATTRS = {"arrowsize": "0.6", "color": "#555555"}


@dataclass(frozen=True)
class GraphResult:
    """The drawn stage graph.

    Attributes:
        source: the DOT source, or ``None`` when it is built from ``spec`` on demand (see :attr:`dot`).
        svg: the SVG markup to inline (no XML prolog), or ``None`` when not drawn.
        error: why there is no SVG (missing graphviz, dot failure), else ``None``.
        spec: what the graph shows, when it was drawn from a :class:`GraphSpec`.
    """

    source: str | None
    svg: str | None
    error: str | None
    spec: GraphSpec | None = None

    @property
    def dot(self) -> str:
        """The DOT source (built with the ``graphviz`` package only when asked for: a report
        whose graph was drawn before never imports it)."""
        if self.source is not None:
            return self.source
        return to_dot(self.spec) if self.spec is not None else ""


@dataclass(frozen=True)
class GraphSpec:
    """What the stage graph shows, as plain values: ``statements`` in order (``("cluster",
    name, label, colour)`` opens a record's cluster and ``("end",)`` closes it; ``("node", name,
    label, shape)``; ``("edge", tail, head, dashed)``) and a graph ``label``. ``fills`` colours
    nodes by what happened to them (executed, cached, computed, failed); it is not part of the
    drawing: a graph is laid out neutral and coloured afterwards (:func:`recolor`), so a warm
    rerun of a run drawn before reuses its layout although its stages were cached this time."""

    statements: tuple[tuple[Any, ...], ...]
    fills: tuple[tuple[str, str], ...] = ()
    label: str | None = None

    def key(self) -> str:
        """A digest of what is drawn (not of the fills)."""
        return hashlib.blake2b(repr((self.statements, self.label)).encode("utf-8"), digest_size=16).hexdigest()


class _RecordNodes:
    """Node ids of one record: its stage calls and the latest artifact per name."""

    def __init__(self, index: int):
        self.index = index
        self.artifacts: dict[str, str] = {}
        self.last_node: str | None = None


def _label(text: Any) -> Any:
    """A DOT label shown as written: backslashes literal, line breaks kept, never HTML."""
    import graphviz

    return graphviz.nohtml(str(text).replace("\\", "\\\\").replace("\r", "").replace("\n", "\\n"))


def to_dot(spec: GraphSpec, colored: bool = True) -> str:
    """The DOT source of ``spec``, built with the ``graphviz`` package (``colored``: with the
    fills; without, every node has its neutral fill, as it is laid out)."""
    import graphviz

    fills = dict(spec.fills) if colored else {}
    graph = graphviz.Digraph("stages", graph_attr=_GRAPH_ATTRS, node_attr=_NODE_ATTRS, edge_attr=_EDGE_ATTRS)
    if spec.label:
        graph.attr(label=_label(spec.label), labelloc="t")
    scopes = [graph]
    for statement in spec.statements:
        kind = statement[0]
        if kind == "cluster":
            _, name, label, color = statement
            scopes.append(graphviz.Digraph(name=name))
            scopes[-1].attr(label=_label(label), color=color, penwidth="2", style="rounded", fontcolor=color)
        elif kind == "end":
            inner = scopes.pop()
            scopes[-1].subgraph(inner)
        elif kind == "node":
            _, name, label, shape = statement
            style = {"style": "", "shape": shape} if shape == "plaintext" else {"shape": shape}
            scopes[-1].node(name, label=_label(label), fillcolor=fills.get(name, _neutral(shape)), **style)
        else:
            _, tail, head, dashed = statement
            scopes[-1].edge(tail, head, **({"style": "dashed"} if dashed else {}))
    return graph.source


def _neutral(shape: str) -> str:
    return ARTIFACT_FILL[False] if shape == "note" else STAGE_FILL["cached"]


def _record_statements(record: Any, nodes: _RecordNodes, out: list[tuple[Any, ...]],
                       fills: dict[str, str]) -> list[tuple[Any, str]]:
    """The cluster of one record into ``out``; returns its aggregate stage calls (linked later)."""
    index = nodes.index
    out.append(("cluster", f"cluster_r{index}", record_label(record), record_color(index)))
    aggregates: list[tuple[Any, str]] = []
    history = list(getattr(record, "history", []) or [])
    if not history:
        nodes.last_node = f"r{index}_empty"
        out.append(("node", nodes.last_node, "(no stages)", "plaintext"))
    for k, run in enumerate(history):
        stage_id = f"r{index}_s{k}"
        status = str(getattr(run.status, "value", run.status))
        out.append(("node", stage_id, run.stage, "box"))
        fills[stage_id] = STAGE_FILL.get(status, "#eeeeee")
        if run.aggregate:
            aggregates.append((run, stage_id))
        else:
            for name in run.inputs:
                source = nodes.artifacts.get(name)
                if source is None:
                    source = f"r{index}_in_{len(nodes.artifacts)}_{k}"
                    out.append(("node", source, name, "plaintext"))
                    nodes.artifacts[name] = source
                out.append(("edge", source, stage_id, False))
        nodes.last_node = stage_id
        for a, artifact in enumerate(run.outputs):
            artifact_id = f"r{index}_s{k}_a{a}"
            out.append(("node", artifact_id, artifact.name, "note"))
            fills[artifact_id] = ARTIFACT_FILL[bool(artifact.computed)]
            out.append(("edge", stage_id, artifact_id, False))
            nodes.artifacts[artifact.name] = artifact_id
            nodes.last_node = artifact_id
    out.append(("end",))
    return aggregates


def _aggregate_edges(run: Any, stage_id: str, all_nodes: dict[int, _RecordNodes]) -> list[tuple[Any, ...]]:
    """Edges from the combined records' artifacts (or last nodes) into an aggregate stage."""
    edges: list[tuple[Any, ...]] = []
    for input_index in run.input_records:
        source_nodes = all_nodes.get(input_index)
        if source_nodes is None:  # hidden or unknown record
            continue
        sources = [source_nodes.artifacts[n] for n in run.inputs if n in source_nodes.artifacts]
        if sources:
            edges.extend(("edge", s, stage_id, False) for s in sources)
        elif source_nodes.last_node is not None:
            edges.append(("edge", source_nodes.last_node, stage_id, True))
    return edges


def record_spec(records: Iterable[Any]) -> GraphSpec:
    """The stage graph of ``records``, record by record (hidden records are left out).

    Args:
        records: the manager's records, in order (their position is their index,
            as in ``StageRun.record_index`` and ``StageRun.input_records``).
    """
    all_nodes: dict[int, _RecordNodes] = {}
    statements: list[tuple[Any, ...]] = []
    fills: dict[str, str] = {}
    pending: list[tuple[Any, str]] = []
    for index, record in enumerate(records):
        if getattr(record, "hide", False):
            continue
        all_nodes[index] = _RecordNodes(index)
        pending.extend(_record_statements(record, all_nodes[index], statements, fills))
    # after every cluster: an aggregate may combine records listed after it
    for run, stage_id in pending:
        statements.extend(_aggregate_edges(run, stage_id, all_nodes))
    return GraphSpec(tuple(statements), tuple(fills.items()))


def build_dot(records: Iterable[Any]) -> str:
    """DOT source of the stage graph of ``records``, coloured (see :func:`record_spec`)."""
    return to_dot(record_spec(list(records)))


_PROLOG = re.compile(r"^\s*(<\?xml[^>]*\?>\s*)?(<!DOCTYPE[^>]*>\s*)?(<!--.*?-->\s*)*", re.S)


SVG_CACHE_KEEP = 32
"""How many drawn graphs :func:`render_svg` keeps in its ``cache_dir`` (the newest)."""


def _cached_svg_path(cache_dir: str, binary: str, key: str) -> str:
    try:
        stamp = os.stat(binary).st_mtime_ns
    except OSError:
        stamp = 0
    digest = hashlib.blake2b(f"{binary}\0{stamp}\0{key}".encode("utf-8"), digest_size=16).hexdigest()
    return os.path.join(cache_dir, f"{digest}.svg")


def _keep_newest(cache_dir: str) -> None:
    try:
        drawn = sorted((entry.stat().st_mtime_ns, entry.path) for entry in os.scandir(cache_dir)
                       if entry.name.endswith(".svg"))
        for _, path in drawn[:-SVG_CACHE_KEEP]:
            os.remove(path)
    except OSError:
        pass


def _read_cached(path: str | None) -> str | None:
    if path is None:
        return None
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read()
    except OSError:
        return None


def _keep(path: str | None, result: GraphResult) -> None:
    if path is None or result.svg is None:
        return
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        fileio.atomic_write_text(path, result.svg)
        _keep_newest(os.path.dirname(path))
    except OSError as exc:
        logger.debug("could not keep the drawn stage graph in %s: %s", path, exc)


def render_svg(dot_source: str, dot_binary: str | None = None, cache_dir: str | None = None) -> GraphResult:
    """Lay out ``dot_source`` with one ``dot -Tsvg`` call; never raises.

    Args:
        dot_source: the DOT source.
        dot_binary: the ``dot`` executable (default: found on PATH).
        cache_dir: keep drawn graphs here, by a digest of the source and the ``dot``
            binary: a source drawn before is not drawn again.
    """
    binary = dot_binary or shutil.which("dot")
    if binary is None:
        return GraphResult(dot_source, None, INSTALL_HINT)
    cached = _cached_svg_path(cache_dir, binary, dot_source) if cache_dir else None
    svg = _read_cached(cached)
    if svg is not None:
        return GraphResult(dot_source, svg, None)
    result = _draw(binary, dot_source)
    _keep(cached, result)
    return result


def _draw(binary: str, dot_source: str) -> GraphResult:
    """One ``dot -Tsvg`` call."""
    try:
        completed = subprocess.run(
            [binary, "-Tsvg"], input=dot_source.encode("utf-8"), capture_output=True, timeout=DOT_TIMEOUT, check=False
        )
    except (OSError, subprocess.SubprocessError) as exc:
        logger.warning("Could not draw the stage graph with %s: %s", binary, exc)
        return GraphResult(dot_source, None, f"graphviz's dot failed to run ({exc}); the DOT source is below.")
    if completed.returncode != 0:
        message = completed.stderr.decode("utf-8", "replace").strip()
        logger.warning("dot exited with %s while drawing the stage graph: %s", completed.returncode, message)
        return GraphResult(dot_source, None, f"graphviz's dot failed: {message}; the DOT source is below.")
    svg = _PROLOG.sub("", completed.stdout.decode("utf-8", "replace"), count=1)
    return GraphResult(dot_source, svg, None)


_NODE_FILL = re.compile(r'(<title>)([^<]+)(</title>\s*<(?:polygon|path|ellipse) fill=")([^"]*)(")')


def recolor(svg: str, spec: GraphSpec) -> str:
    """``svg`` (drawn from ``to_dot(spec, colored=False)``) with each node filled as ``spec.fills`` says."""
    fills = {name: fill for name, fill in spec.fills}
    if not fills:
        return svg

    def fill(match: re.Match[str]) -> str:
        wanted = fills.get(html.unescape(match.group(2)))
        return match.group(0) if wanted is None else f"{match.group(1)}{match.group(2)}{match.group(3)}{wanted}\""

    return _NODE_FILL.sub(fill, svg)


MAX_RECORD_CLUSTERS = 300
"""Above this many records the graph is summarised per stage: dot's layout time grows
much faster than linearly with clusters (0.2 s at 300 records, 2 s at 600, 9 s at 1000)."""


def summary_spec(records: Iterable[Any]) -> GraphSpec:
    """A per-stage summary: one node per stage with its counts of calls.

    Used for runs too large to draw record by record; edges follow the data flow
    of output names between stages.
    """
    counts: dict[str, dict[str, int]] = {}
    aggregate: dict[str, bool] = {}
    producers: dict[str, set[str]] = {}
    consumers: dict[str, set[str]] = {}
    visible = 0
    for record in records:
        if getattr(record, "hide", False):
            continue
        visible += 1
        for run in getattr(record, "history", []) or []:
            status = str(getattr(run.status, "value", run.status))
            per_stage = counts.setdefault(run.stage, {})
            per_stage[status] = per_stage.get(status, 0) + 1
            aggregate[run.stage] = aggregate.get(run.stage, False) or bool(run.aggregate)
            for name in run.inputs:
                consumers.setdefault(name, set()).add(run.stage)
            for artifact in run.outputs:
                producers.setdefault(artifact.name, set()).add(run.stage)
    ids = {stage: f"s{i}" for i, stage in enumerate(counts)}
    statements: list[tuple[Any, ...]] = []
    fills = []
    for stage, per_status in counts.items():
        detail = ", ".join(f"{n} {status}" for status, n in sorted(per_status.items()))
        statements.append(("node", ids[stage], f"{stage}\n{detail}", "box3d" if aggregate[stage] else "box"))
        fills.append((ids[stage], STAGE_FILL["executed" if per_status.get("executed") else "cached"]))
    for a, (name, stages) in enumerate(producers.items()):
        statements.append(("node", f"a{a}", name, "note"))
        statements.extend(("edge", ids[stage], f"a{a}", False) for stage in sorted(stages))
        statements.extend(("edge", f"a{a}", ids[stage], False) for stage in sorted(consumers.get(name, ())))
    return GraphSpec(tuple(statements), tuple(fills), f"{visible} records: one node per stage (counts of calls)")


def build_summary_dot(records: Iterable[Any]) -> str:
    """DOT source of the per-stage summary of ``records`` (see :func:`summary_spec`)."""
    return to_dot(summary_spec(records))


def graph_spec(records: Iterable[Any], max_clusters: int = MAX_RECORD_CLUSTERS) -> GraphSpec:
    """The graph of ``records``: record by record, or the per-stage summary above ``max_clusters``
    visible records."""
    records = list(records)
    visible = sum(1 for r in records if not getattr(r, "hide", False))
    return record_spec(records) if visible <= max_clusters else summary_spec(records)


def draw(spec: GraphSpec, dot_binary: str | None = None, cache_dir: str | None = None) -> GraphResult:
    """Lay ``spec`` out with one ``dot`` call (none when ``cache_dir`` holds its layout) and colour it."""
    binary = dot_binary or shutil.which("dot")
    if binary is None:
        return GraphResult(to_dot(spec), None, INSTALL_HINT)
    cached = _cached_svg_path(cache_dir, binary, "spec\0" + spec.key()) if cache_dir else None
    svg = _read_cached(cached)
    if svg is None:
        drawn = _draw(binary, to_dot(spec, colored=False))
        if drawn.svg is None:
            return GraphResult(to_dot(spec), None, drawn.error)
        _keep(cached, drawn)
        svg = drawn.svg
    return GraphResult(None, recolor(svg, spec), None, spec)


def stage_graph(records: Iterable[Any], max_clusters: int = MAX_RECORD_CLUSTERS,
                cache_dir: str | None = None) -> GraphResult:
    """Build and draw the stage graph of ``records`` (see :func:`graph_spec` and :func:`draw`); never
    raises (an unexpected failure is the result's ``error``)."""
    try:
        return draw(graph_spec(records, max_clusters), cache_dir=cache_dir)
    except Exception as exc:
        logger.warning("Could not draw the stage graph: %s", exc)
        return GraphResult("", None, f"the stage graph could not be drawn ({exc})")


GRAPH_CACHE = "graphs"
"""The folder of ``manager_cache_path`` keeping drawn stage graphs (a rerun draws none)."""


def report_graph_cache(manager: Any) -> str | None:
    """Where a run's drawn stage graphs are kept: ``graphs/`` in its run store."""
    store = getattr(manager, "manager_cache_path", None)
    return os.path.join(store, GRAPH_CACHE) if store else None


class PendingGraph:
    """A stage graph being drawn in a thread while the report is prepared (``dot`` runs on
    another core meanwhile); :meth:`result` waits for it."""

    def __init__(self, records: Iterable[Any], cache_dir: str | None = None):
        import threading

        self.spec = graph_spec(records)
        self._result: GraphResult | None = None
        self._thread = threading.Thread(target=self._run, args=(cache_dir,), name="cf-stage-graph", daemon=True)
        self._thread.start()

    def _run(self, cache_dir: str | None) -> None:
        try:
            self._result = draw(self.spec, cache_dir=cache_dir)
        except Exception as exc:  # the report shows why, never fails for its graph
            logger.warning("Could not draw the stage graph: %s", exc)
            self._result = GraphResult(None, None, f"the stage graph could not be drawn ({exc})", self.spec)

    def result(self) -> GraphResult:
        """The drawn graph (waiting for the thread)."""
        self._thread.join()
        return self._result or GraphResult(None, None, "the stage graph was not drawn", self.spec)
