"""The stage graph of a run: DOT source for every record, drawn by one ``dot`` call.

Each visible record is a cluster (labelled with its parameter set's name and short
hash) holding its stage calls (boxes) and their artifacts (notes). Edges go from a
stage to the artifacts it output and from an artifact to the later stages that read
it; an aggregate's stage is linked from the artifacts of the records it combines.
Fill colours tell executed from cached stages and computed from cached artifacts.

The whole run is laid out by a single ``dot -Tsvg`` subprocess (0.20.5 called it
once per record). When graphviz is not installed the report shows the DOT source
with install instructions instead. The legend is part of the report page.
"""

from __future__ import annotations

import hashlib
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

STAGE_FILL = {"executed": "#9fd8a8", "cached": "#d9dee6", "failed": "#f2a3a3"}
ARTIFACT_FILL = {True: "#e3f5e6", False: "#ffffff"}
_GRAPH_ATTRS = (
    'rankdir=LR; newrank=true; nodesep=0.15; ranksep=0.3; splines=true; '
    'remincross=false; mclimit=0.3; nslimit=2; nslimit1=2; searchsize=20; '
    'fontname="Helvetica"; fontsize=11; bgcolor="transparent";'
)
_NODE_ATTRS = 'node [fontname="Helvetica", fontsize=10, style=filled, height=0.3, margin="0.08,0.03"];'
_EDGE_ATTRS = 'edge [arrowsize=0.6, color="#555555"];'


@dataclass(frozen=True)
class GraphResult:
    """The drawn stage graph.

    Attributes:
        dot: the DOT source.
        svg: the SVG markup to inline (no XML prolog), or ``None`` when not drawn.
        error: why there is no SVG (missing graphviz, dot failure), else ``None``.
    """

    dot: str
    svg: str | None
    error: str | None


def quote(text: Any) -> str:
    """A DOT double-quoted string (backslashes and quotes escaped, newlines kept as ``\\n``)."""
    value = str(text).replace("\\", "\\\\").replace('"', '\\"')
    return '"' + value.replace("\r", "").replace("\n", "\\n") + '"'


class _RecordNodes:
    """Node ids of one record: its stage calls and the latest artifact per name."""

    def __init__(self, index: int):
        self.index = index
        self.artifacts: dict[str, str] = {}
        self.last_node: str | None = None


def _record_lines(record: Any, nodes: _RecordNodes) -> tuple[list[str], list[tuple[Any, str]]]:
    """The cluster of one record, and its aggregate stage calls (linked later)."""
    index = nodes.index
    color = record_color(index)
    body = [
        f"subgraph cluster_r{index} {{",
        f"label={quote(record_label(record))}; color={quote(color)}; penwidth=2; "
        f"style=rounded; fontcolor={quote(color)};",
    ]
    aggregates: list[tuple[Any, str]] = []
    history = list(getattr(record, "history", []) or [])
    if not history:
        node = f"r{index}_empty"
        body.append(f'{node} [label="(no stages)", shape=plaintext, style=""];')
        nodes.last_node = node
    for k, run in enumerate(history):
        stage_id = f"r{index}_s{k}"
        status = str(getattr(run.status, "value", run.status))
        body.append(
            f"{stage_id} [label={quote(run.stage)}, shape=box, fillcolor={quote(STAGE_FILL.get(status, '#eeeeee'))}];"
        )
        if run.aggregate:
            aggregates.append((run, stage_id))
        else:
            for name in run.inputs:
                source = nodes.artifacts.get(name)
                if source is None:
                    source = f"r{index}_in_{len(nodes.artifacts)}_{k}"
                    body.append(f"{source} [label={quote(name)}, shape=plaintext, style=\"\"];")
                    nodes.artifacts[name] = source
                body.append(f"{source} -> {stage_id};")
        nodes.last_node = stage_id
        for a, artifact in enumerate(run.outputs):
            artifact_id = f"r{index}_s{k}_a{a}"
            body.append(
                f"{artifact_id} [label={quote(artifact.name)}, shape=note, "
                f"fillcolor={quote(ARTIFACT_FILL[bool(artifact.computed)])}];"
            )
            body.append(f"{stage_id} -> {artifact_id};")
            nodes.artifacts[artifact.name] = artifact_id
            nodes.last_node = artifact_id
    body.append("}")
    return body, aggregates


def _aggregate_edges(run: Any, stage_id: str, all_nodes: dict[int, _RecordNodes]) -> list[str]:
    """Edges from the combined records' artifacts (or last nodes) into an aggregate stage."""
    edges = []
    for input_index in run.input_records:
        source_nodes = all_nodes.get(input_index)
        if source_nodes is None:  # hidden or unknown record
            continue
        sources = [source_nodes.artifacts[n] for n in run.inputs if n in source_nodes.artifacts]
        if sources:
            edges.extend(f"{s} -> {stage_id};" for s in sources)
        elif source_nodes.last_node is not None:
            edges.append(f"{source_nodes.last_node} -> {stage_id} [style=dashed];")
    return edges


def build_dot(records: Iterable[Any]) -> str:
    """DOT source of the stage graph of ``records`` (hidden records are left out).

    Args:
        records: the manager's records, in order (their position is their index,
            as in ``StageRun.record_index`` and ``StageRun.input_records``).
    """
    records = list(records)
    all_nodes: dict[int, _RecordNodes] = {}
    clusters: list[str] = []
    cross_edges: list[str] = []
    pending: list[tuple[Any, str]] = []
    for index, record in enumerate(records):
        if getattr(record, "hide", False):
            continue
        all_nodes[index] = _RecordNodes(index)
        body, aggregates = _record_lines(record, all_nodes[index])
        clusters.extend(body)
        pending.extend(aggregates)
    # after every cluster: an aggregate may combine records listed after it
    for run, stage_id in pending:
        cross_edges.extend(_aggregate_edges(run, stage_id, all_nodes))
    lines = ["digraph stages {", _GRAPH_ATTRS, _NODE_ATTRS, _EDGE_ATTRS]
    lines.extend(clusters)
    lines.extend(cross_edges)
    lines.append("}")
    return "\n".join(lines) + "\n"


_PROLOG = re.compile(r"^\s*(<\?xml[^>]*\?>\s*)?(<!DOCTYPE[^>]*>\s*)?(<!--.*?-->\s*)*", re.S)


SVG_CACHE_KEEP = 32
"""How many drawn graphs :func:`render_svg` keeps in its ``cache_dir`` (the newest)."""


def _cached_svg_path(cache_dir: str, binary: str, dot_source: str) -> str:
    try:
        stamp = os.stat(binary).st_mtime_ns
    except OSError:
        stamp = 0
    key = hashlib.blake2b(f"{binary}\0{stamp}\0{dot_source}".encode("utf-8"), digest_size=16).hexdigest()
    return os.path.join(cache_dir, f"{key}.svg")


def _keep_newest(cache_dir: str) -> None:
    try:
        drawn = sorted((entry.stat().st_mtime_ns, entry.path) for entry in os.scandir(cache_dir)
                       if entry.name.endswith(".svg"))
        for _, path in drawn[:-SVG_CACHE_KEEP]:
            os.remove(path)
    except OSError:
        pass


def render_svg(dot_source: str, dot_binary: str | None = None, cache_dir: str | None = None) -> GraphResult:
    """Lay out ``dot_source`` with one ``dot -Tsvg`` call; never raises.

    Args:
        dot_source: the DOT source.
        dot_binary: the ``dot`` executable (default: found on PATH).
        cache_dir: keep drawn graphs here, by a digest of the source and the ``dot``
            binary: a source drawn before (a warm rerun's graph) is not drawn again.
    """
    binary = dot_binary or shutil.which("dot")
    if binary is None:
        return GraphResult(dot_source, None, INSTALL_HINT)
    cached = _cached_svg_path(cache_dir, binary, dot_source) if cache_dir else None
    if cached is not None:
        try:
            with open(cached, encoding="utf-8") as handle:
                return GraphResult(dot_source, handle.read(), None)
        except OSError:
            pass
    result = _draw(binary, dot_source)
    if cached is not None and result.svg is not None:
        try:
            os.makedirs(os.path.dirname(cached), exist_ok=True)
            fileio.atomic_write_text(cached, result.svg)
            _keep_newest(os.path.dirname(cached))
        except OSError as exc:
            logger.debug("could not keep the drawn stage graph in %s: %s", cached, exc)
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


MAX_RECORD_CLUSTERS = 300
"""Above this many records the graph is summarised per stage: dot's layout time grows
much faster than linearly with clusters (0.2 s at 300 records, 2 s at 600, 9 s at 1000)."""


def build_summary_dot(records: Iterable[Any]) -> str:
    """DOT source of a per-stage summary: one node per stage with its counts.

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
    lines = ["digraph stages {", _GRAPH_ATTRS, _NODE_ATTRS, _EDGE_ATTRS,
             f"label={quote(f'{visible} records: one node per stage (counts of calls)')}; labelloc=t;"]
    ids = {stage: f"s{i}" for i, stage in enumerate(counts)}
    for stage, per_status in counts.items():
        main = "executed" if per_status.get("executed") else "cached"
        detail = ", ".join(f"{n} {status}" for status, n in sorted(per_status.items()))
        shape = "box3d" if aggregate[stage] else "box"
        lines.append(f"{ids[stage]} [label={quote(stage + chr(10) + detail)}, shape={shape}, "
                     f"fillcolor={quote(STAGE_FILL.get(main, '#eeeeee'))}];")
    for a, (name, stages) in enumerate(producers.items()):
        artifact_id = f"a{a}"
        lines.append(f'{artifact_id} [label={quote(name)}, shape=note, fillcolor="#ffffff"];')
        lines.extend(f"{ids[stage]} -> {artifact_id};" for stage in stages)
        lines.extend(f"{artifact_id} -> {ids[stage]};" for stage in consumers.get(name, ()))
    lines.append("}")
    return "\n".join(lines) + "\n"


def stage_graph(records: Iterable[Any], max_clusters: int = MAX_RECORD_CLUSTERS,
                cache_dir: str | None = None) -> GraphResult:
    """Build and draw the stage graph of ``records`` (see :func:`build_dot`).

    Runs with more than ``max_clusters`` visible records get the per-stage summary
    of :func:`build_summary_dot` instead. ``cache_dir``: see :func:`render_svg`.
    """
    records = list(records)
    visible = sum(1 for r in records if not getattr(r, "hide", False))
    source = build_dot(records) if visible <= max_clusters else build_summary_dot(records)
    return render_svg(source, cache_dir=cache_dir)
