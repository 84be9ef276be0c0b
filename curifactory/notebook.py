"""Jupyter views of a run: run info, stage graph, reportables, records; experiment notebooks.

The ``ArtifactManager.display_*`` methods and the ``_repr_html_`` of managers,
records and reportables call the functions here. Each ``display_*`` function
returns an ``IPython.display.HTML`` object, or the HTML string itself when IPython
is not installed. IPython is imported only inside the functions that need it.

Reportables are rendered into a folder (``<reports_path>/_live/<reference>/reportables``
for a run that may write, a temporary folder for a dry one) and every file they
link to from there is embedded as a ``data:`` URI, so images show in Jupyter, in
executed notebooks and in exported HTML without serving any file.

Every value shown is escaped with :func:`html.escape`; only a reportable's own
HTML (which its author controls) and the SVG drawn by graphviz are included as they are.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from typing import Any, Iterable

from curifactory.reporting.inline import (
    as_display as _as_display,
    escape as _e,
    LIVE_REPORTS_DIR,
    MAX_EMBED_BYTES,
    REPORTABLES_DIR,
    display_reportables,
    embed_files,
    reportable_html,
    reportables_html,
)

__all__ = ["LIVE_REPORTS_DIR", "MAX_EMBED_BYTES", "REPORTABLES_DIR", "display_info", "display_metrics",
           "display_reportables", "metrics_html",
           "display_stage_graph", "embed_files", "experiment_notebook", "info_html", "manager_html", "record_html",
           "reportable_html", "reportables_html", "stage_graph_html", "write_experiment_notebook"]

logger = logging.getLogger(__name__)

MAX_VALUE_CHARS = 300

_STATUS_COLORS = {"executed": "#9fd8a8", "cached": "#d9dee6", "failed": "#f2a3a3", "skipped": "#f4f1e4"}
_TABLE = "<table class='cf-nb-table' style='border-collapse:collapse;text-align:left'>"
_CELL = "style='text-align:left;vertical-align:top;padding:2px 8px'"


def _rows(pairs: Iterable[tuple[str, str]]) -> str:
    """A two-column table; the keys are escaped here, the values must already be HTML."""
    body = "".join(f"<tr><th {_CELL}>{_e(key)}</th><td {_CELL}>{value}</td></tr>" for key, value in pairs)
    return f"{_TABLE}{body}</table>"


def _table(headers: list[str], rows: list[list[str]]) -> str:
    """A table with a header row; the cells must already be HTML."""
    head = "".join(f"<th {_CELL}>{_e(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td {_CELL}>{cell}</td>" for cell in row) + "</tr>" for row in rows)
    return f"{_TABLE}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _status_badge(status: Any) -> str:
    text = str(getattr(status, "value", status))
    color = _STATUS_COLORS.get(text, "#eeeeee")
    return f"<span style='background:{color};padding:0 4px;border-radius:3px'>{_e(text)}</span>"


def _short(text: str, limit: int = MAX_VALUE_CHARS) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


# -- run info ----------------------------------------------------------------------------------
def info_html(manager: Any) -> str:
    """The run-info block of ``manager`` as an HTML string."""
    from curifactory.reporting.context import run_info

    info = run_info(manager)
    commit = info["commit"] or "(no git repository)"
    if info["commit"] and info["dirty"]:
        commit += " (uncommitted changes)"
    pairs = [
        ("reference", _e(info["reference"])),
        ("experiment", _e(info["experiment"])),
        ("status", _e(info["status"]) + (" (dry: nothing is written)" if getattr(manager, "dry", False) else "")),
        ("started", _e(info["timestamp"])),
        ("host", _e(info["hostname"])),
        ("git commit", _e(commit)),
    ]
    for name, sets in info["param_files"]:
        listing = ", ".join(f"{_e(set_name)} <code>{_e(set_hash[:10])}</code>" for set_name, set_hash in sets)
        pairs.append((f"parameters: {name}", listing or "(none)"))
    if info["run_line"]:
        pairs.append(("command", f"<code>{_e(info['run_line'])}</code>"))
    if info["reproduction_line"]:
        pairs.append(("reproduce", f"<code>{_e(info['reproduction_line'])}</code>"))
    if info["notes"]:
        pairs.append(("notes", f"<pre style='margin:0'>{_e(info['notes'])}</pre>"))
    log_path = getattr(manager, "log_path", None)
    if log_path:
        pairs.append(("log", f"<code>{_e(log_path)}</code>"))
    pairs.append(("cache", f"<code>{_e(getattr(manager, 'cache_path', ''))}</code>"))
    records = list(getattr(manager, "records", None) or [])
    pairs.append(("records", _e(f"{len(records)} ({len(getattr(manager, 'reportables', None) or [])} reportables)")))
    if info["error"]:
        pairs.append(("error", f"<pre style='margin:0;color:#a00'>{_e(info['error'])}</pre>"))
    return f"<div class='cf-nb-info'><h3>Run {_e(info['reference'])}</h3>{_rows(pairs)}</div>"


def display_info(manager: Any) -> Any:
    """The run-info block (reference, status, commit, parameter files, notes, log) for a notebook.

    Args:
        manager: the ``ArtifactManager``.

    Returns:
        An ``IPython.display.HTML`` (the HTML string without IPython).
    """
    return _as_display(info_html(manager))


# -- stage graph --------------------------------------------------------------------------------
def stage_graph_html(manager: Any) -> str:
    """The stage graph of ``manager``'s records as inline SVG (or why it could not be drawn)."""
    from curifactory.reporting.graph import stage_graph

    graph = stage_graph(list(getattr(manager, "records", None) or []))
    if graph.svg is None:
        return (f"<div class='cf-nb-graph'><p>{_e(graph.error)}</p>"
                f"<pre>{_e(graph.dot)}</pre></div>")
    legend = " ".join(_status_badge(status) for status in _STATUS_COLORS)
    return (f"<div class='cf-nb-graph'><div style='overflow:auto'>{graph.svg}</div>"
            f"<p style='font-size:smaller'>stages: {legend}</p></div>")


def display_stage_graph(manager: Any) -> Any:
    """The stage graph (records, their stages and artifacts), drawn by one ``dot`` call.

    Args:
        manager: the ``ArtifactManager``.

    Returns:
        An ``IPython.display.HTML`` holding inline SVG (the DOT source and an install
        hint when graphviz is missing); the HTML string without IPython.
    """
    return _as_display(stage_graph_html(manager))


# -- records and managers -------------------------------------------------------------------------
def _params_html(params: Any) -> str:
    if params is None:
        return "<em>no parameters</em>"
    if not dataclasses.is_dataclass(params) or isinstance(params, type):
        return f"<code>{_e(_short(repr(params)))}</code>"
    pairs = []
    for f in dataclasses.fields(params):
        if f.name == "hash_representations":
            continue
        value = getattr(params, f.name, None)
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            pairs.append((f.name, _params_html(value)))
        else:
            pairs.append((f.name, f"<code>{_e(_short(repr(value)))}</code>"))
    return _rows(pairs)


def _artifact_previews(record: Any) -> dict[str, str]:
    """The newest non-empty preview of each output name in the record's history."""
    previews: dict[str, str] = {}
    for run in getattr(record, "history", None) or []:
        for artifact in run.outputs:
            if artifact.preview:
                previews[artifact.name] = artifact.preview
    return previews


def _metadata_preview(value: Any) -> str:
    """The preview saved in a cached value's metadata, read without loading the value."""
    cacher = getattr(value, "cacher", None)
    if cacher is None:
        return ""
    metadata = getattr(cacher, "metadata", None)
    if not isinstance(metadata, dict):
        try:
            metadata = cacher.load_metadata()
        except Exception:  # a cacher we cannot ask: no preview, never an error
            metadata = None
    return str(metadata.get("preview") or "") if isinstance(metadata, dict) else ""


def _state_rows(record: Any) -> list[list[str]]:
    from curifactory.caching import Deferred, preview

    state = record.state
    previews = _artifact_previews(record)
    rows = []
    for key in list(dict.keys(state)):
        if state.is_loaded(key):
            where, text = "in memory", preview(state.raw(key))
        else:
            raw = state.raw(key)
            where = "(cached, not loaded)" if isinstance(raw, Deferred) else "(lazy, loaded on access)"
            if getattr(type(raw), "not_needed", False):
                where = "(not computed: not needed; computed on access)"
            text = previews.get(key) or _metadata_preview(raw)
        rows.append([f"<code>{_e(key)}</code>", _e(where), f"<code>{_e(_short(text))}</code>"])
    return rows


def _not_computed_or_cached(run: Any) -> str:
    return "not computed" if getattr(getattr(run, "status", None), "value", "") == "skipped" else "from cache"


def _history_rows(record: Any) -> list[list[str]]:
    rows = []
    for run in getattr(record, "history", None) or []:
        outputs = ", ".join(
            f"{_e(a.name)} ({'computed' if a.computed else _not_computed_or_cached(run)})" for a in run.outputs
        )
        seconds = float(getattr(run, "seconds", 0.0) or 0.0)
        rows.append([
            _e(run.stage) + (" (aggregate)" if run.aggregate else ""),
            _status_badge(run.status),
            _e(f"{seconds:.3f} s") if seconds else "",
            _e(", ".join(run.inputs)),
            outputs,
        ])
    return rows


def record_html(record: Any) -> str:
    """A record's parameters, state (with previews, nothing loaded) and stage history.

    Cached values that were not loaded stay on disk: they show ``(cached, not
    loaded)`` and the preview saved when they were computed.
    """
    from curifactory.reporting.context import record_label

    manager = getattr(record, "manager", None)
    index = manager.record_index(record) if manager is not None and hasattr(manager, "record_index") else -1
    title = f"Record {'#' + str(index) + ' ' if index >= 0 else ''}{record_label(record)}"
    parts = [f"<div class='cf-nb-record'><h3>{_e(title)}</h3>",
             f"<p>hash <code>{_e(record.get_hash())}</code>"
             f"{' (hidden)' if getattr(record, 'hide', False) else ''}</p>"]
    inputs = getattr(record, "input_records", None) or []
    if inputs:
        parts.append(f"<p>combines: {_e(', '.join(record_label(r) for r in inputs))}</p>")
    parts.append("<h4>Parameters</h4>" + _params_html(getattr(record, "params", None)))
    state_rows = _state_rows(record)
    parts.append("<h4>State</h4>" + (_table(["name", "value", "preview"], state_rows) if state_rows
                                      else "<p><em>empty</em></p>"))
    metrics = getattr(record, "metrics", None) or {}
    if metrics:
        parts.append("<h4>Metrics</h4>" + _metrics_table(metrics))
    tags = {**(getattr(record, "tags", None) or {}), **(getattr(record, "info", None) or {})}
    if tags:
        parts.append("<h4>Tags and info</h4>" + _rows((k, f"<code>{_e(_short(str(v)))}</code>") for k, v in tags.items()))
    history_rows = _history_rows(record)
    parts.append("<h4>Stages</h4>" + (_table(["stage", "status", "time", "inputs", "outputs"], history_rows)
                                       if history_rows else "<p><em>no stage has run</em></p>"))
    reportables = getattr(record, "reportables", None) or []
    if reportables:
        names = ", ".join(_e(getattr(r, "name", None) or type(r).__name__) for r in reportables)
        parts.append(f"<p>reportables: {names} (<code>manager.display_record_reportables(record)</code>)</p>")
    parts.append("</div>")
    return "".join(parts)


def _number(value: Any) -> str:
    return _e(f"{value:.6g}" if isinstance(value, float) else value)


def _metrics_table(metrics: dict[str, Any]) -> str:
    return _table(["metric", "final value"], [[f"<code>{_e(k)}</code>", _number(v)] for k, v in metrics.items()])


def metrics_html(manager: Any) -> str:
    """A table of every record's final metric values (a column per metric), and the run's tags."""
    records = [r for r in getattr(manager, "records", None) or [] if getattr(r, "metrics", None)]
    tags = getattr(getattr(manager, "tracker", None), "tags", None) or {}
    head = f"<p>tags: {_e(', '.join(f'{k}={v}' for k, v in tags.items()))}</p>" if tags else ""
    if not records:
        return f"<div class='cf-nb-metrics'>{head}<p><em>no metrics logged yet</em></p></div>"
    from curifactory.reporting.context import record_label

    names = sorted({name for record in records for name in record.metrics})
    rows = [[_e(manager.record_index(r)), _e(record_label(r))] + [_number(r.metrics.get(n, "")) for n in names]
            for r in records]
    return f"<div class='cf-nb-metrics'>{head}{_table(['#', 'record', *names], rows)}</div>"


def display_metrics(manager: Any, charts: bool = True) -> Any:
    """Every record's final metrics as a table, and (``charts``, with vl-convert installed) the
    report's metric charts (an ``IPython.display.HTML``; the string without IPython)."""
    html = metrics_html(manager)
    if charts:
        import uuid

        from curifactory.reporting.charts import inline_charts, metric_charts, points_of, record_labels

        labels = record_labels(manager.records)
        html += inline_charts(metric_charts(points_of(manager.tracker, labels)), f"nb-{uuid.uuid4().hex[:8]}")
    return _as_display(html)


def manager_html(manager: Any) -> str:
    """The run info and a table of the manager's records and their stages."""
    from curifactory.reporting.context import record_label

    rows = []
    for index, record in enumerate(getattr(manager, "records", None) or []):
        stages = " ".join(f"{_e(run.stage)} {_status_badge(run.status)}" for run in (record.history or []))
        rows.append([
            _e(index),
            _e(record_label(record)) + (" (hidden)" if getattr(record, "hide", False) else ""),
            stages or "<em>none</em>",
            _e(", ".join(dict.keys(record.state))),
            _e(len(getattr(record, "reportables", None) or [])),
        ])
    records = _table(["#", "record", "stages", "state", "reportables"], rows) if rows else "<p><em>no records</em></p>"
    return f"<div class='cf-nb-manager'>{info_html(manager)}<h4>Records</h4>{records}</div>"


# -- experiment notebooks -------------------------------------------------------------------------
_NOTEBOOK_METADATA = {
    "kernelspec": {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"},
    "language_info": {"name": "python"},
}


def _markdown(index: int, text: str) -> dict[str, Any]:
    return {"cell_type": "markdown", "id": f"cf-cell-{index}", "metadata": {}, "source": text}


def _code(index: int, source: str) -> dict[str, Any]:
    return {**_markdown(index, source), "cell_type": "code", "execution_count": None, "outputs": []}


def _manager_arguments(manager: Any, experiment_name: str, root: str) -> str:
    """Python source of the arguments recreating ``manager``'s cache lookups."""
    arguments = [repr(experiment_name), "dry=True"]
    if getattr(manager, "prefix", None):
        arguments.append(f"prefix={manager.prefix!r}")
    settings = getattr(manager, "settings", None)
    cache_path = getattr(manager, "cache_path", None)
    if cache_path and settings is not None and os.path.abspath(cache_path) != os.path.abspath(settings.cache_path):
        arguments.append(f"cache_path={os.path.relpath(cache_path, root).replace(os.sep, '/')!r}")
    for flag in ("lazy", "ignore_lazy"):
        if getattr(manager, flag, False):
            arguments.append(f"{flag}=True")
    return ", ".join(arguments)


def experiment_notebook(manager: Any, experiment_name: str, param_files: list[str] | None,
                        names: list[str] | None = None, root_from_notebook: str = "../..",
                        indices: list[str] | None = None,
                        global_indices: list[str] | None = None) -> dict[str, Any]:
    """The nbformat-4 notebook (as a dict) that reloads ``manager``'s run from the cache.

    Args:
        manager: the manager of the run to reload.
        experiment_name: the experiment module's name.
        param_files: the parameter files of the run (``None``: the experiment's own ``get_params``).
        names: the parameter set names the run was limited to (``-n``), if any.
        root_from_notebook: the project root relative to the notebook's folder.
        indices: the ``--indices`` ranges of the run, if any.
        global_indices: the ``--global-indices`` ranges of the run, if any.
    """
    settings = getattr(manager, "settings", None)
    root = getattr(settings, "root", None) or os.getcwd()
    files = list(param_files) if param_files else None
    call = [f"    {experiment_name!r},", f"    {files!r},"]
    for keyword, values in (("param_set_names", names), ("param_set_indices", indices),
                            ("global_param_set_indices", global_indices)):
        if values:
            call.append(f"    {keyword}={list(values)!r},")
    call += ["    mngr=manager,", "    dry=True,"]
    command = getattr(manager, "run_line", "") or " ".join(
        ["experiment", experiment_name, *(f"-p {f}" for f in files or []), *(f"-n {n}" for n in names or [])]
    )
    command = command.replace("`", "'")  # keep the command inside its code span
    header = (
        f"# Experiment `{experiment_name}`: run `{manager.get_reference_name()}`\n\n"
        f"Written for the run of `{command}`. Running it reloads the run's results "
        "from the cache: no stage is rerun, nothing is written, and each value loads when first read "
        "(e.g. `manager.records[0].state[\"name\"]`)."
    )
    cells = [
        _markdown(0, header),
        _code(1, "import os\n\n"
                 "# the project root, relative to this notebook's folder (kept if the cell is rerun)\n"
                 "if \"PROJECT_ROOT\" not in globals():\n"
                 f"    PROJECT_ROOT = os.path.abspath({root_from_notebook!r})\n"
                 "os.chdir(PROJECT_ROOT)"),
        _code(2, "import curifactory as cf\n"
                 "from curifactory.experiment import run_experiment\n\n"
                 "# dry: read the cache, write nothing (no store entry, log or artifacts)\n"
                 f"manager = cf.ArtifactManager({_manager_arguments(manager, experiment_name, root)})\n"
                 "results, manager = run_experiment(\n" + "\n".join(call) + "\n)"),
        _code(3, "manager.display_info()"),
        _code(4, "manager.display_stage_graph()"),
        _code(5, "manager.display_all_reportables()"),
        _markdown(6, "## Records\n\nA cell ending in a record (`manager.records[i]`) shows its parameters, "
                     "state and stages."),
        _code(7, "for index, record in enumerate(manager.records):\n"
                 "    print(index, record.name, record.get_hash()[:10], "
                 "[(run.stage, run.status.value) for run in record.history])\n"
                 "manager"),
    ]
    return {"cells": cells, "metadata": _NOTEBOOK_METADATA, "nbformat": 4, "nbformat_minor": 5}


def write_run_notebook(manager: Any, experiment_name: str, param_files: list[str] | None,
                       names: list[str] | None = None, indices: list[str] | None = None,
                       global_indices: list[str] | None = None) -> str:
    """Write ``<notebooks_path>/experiments/<reference>.ipynb`` for ``experiment --notebook``.

    The notebook changes to the project root, creates a manager, reruns the
    experiment with ``run_experiment(..., mngr=manager, dry=True)`` (everything is
    loaded from the cache, lazily) and shows the run info, stage graph, reportables
    and records. The file is written atomically.

    Args:
        manager: the manager of the run the notebook reloads.
        experiment_name: the experiment module's name.
        param_files: the parameter files of the run (``-p``).
        names: the parameter set names of the run (``-n``), if any.
        indices: the ``--indices`` ranges of the run, if any.
        global_indices: the ``--global-indices`` ranges of the run, if any.

    Returns:
        The path of the written notebook.
    """
    from curifactory import fileio

    folder = os.path.join(manager.notebooks_path, "experiments")
    path = os.path.join(folder, f"{manager.get_reference_name()}.ipynb")
    root = getattr(getattr(manager, "settings", None), "root", None) or os.getcwd()
    relative_root = os.path.relpath(os.path.abspath(root), os.path.abspath(folder)).replace(os.sep, "/")
    notebook = experiment_notebook(manager, experiment_name, param_files, names, relative_root, indices,
                                   global_indices)
    os.makedirs(folder, exist_ok=True)
    fileio.atomic_write_text(path, json.dumps(notebook, indent=1, ensure_ascii=False) + "\n")
    logger.info("Experiment notebook written to %s", path)
    return path


def write_experiment_notebook(manager: Any, path: str, directory_change_back_depth: Any = 2,
                              use_global_cache: bool | None = None, errored: bool = False,
                              suppress_global_warning: bool = False, leave_script: bool = False,
                              **selection: Any) -> str:
    """Write a notebook that reloads ``manager``'s run from the cache.

    Two forms: 0.20's, ``write_experiment_notebook(manager, path, directory_change_back_depth=2,
    use_global_cache=None, errored=False, suppress_global_warning=False, leave_script=False)``,
    writes ``path + ".ipynb"`` (and, with ``leave_script``, the same cells as the percent-format
    script ``path + ".py"``), whose last cell names each record ``record_<i>`` and its state
    ``state_<i>``; and the form ``experiment --notebook`` uses,
    ``write_experiment_notebook(manager, experiment_name, param_files, names=..., indices=...,
    global_indices=...)``, which writes ``<notebooks_path>/experiments/<reference>.ipynb``.
    Either way the file is written atomically; the notebook's path is returned.

    Args:
        manager: the manager of the run the notebook reloads.
        path: (0.20's form) the notebook's path without its extension.
        directory_change_back_depth: (0.20's form) how many folders up the project root is from
            the notebook (its first code cell is ``%cd ../..`` for 2).
        use_global_cache: (0.20's form) whether the run used the project's cache rather than a
            ``--store-full`` folder (default: not ``manager.store_full``); the notebook then warns
            that later runs may have changed the cache, unless ``suppress_global_warning``.
        errored: (0.20's form) the notebook warns that the run did not complete.
        leave_script: (0.20's form) keep the ``.py`` script beside the notebook.
    """
    if selection or directory_change_back_depth is None or isinstance(directory_change_back_depth, (list, tuple)):
        return write_run_notebook(manager, path, directory_change_back_depth, **selection)
    from curifactory import fileio

    if use_global_cache is None:
        use_global_cache = not getattr(manager, "store_full", False)
    cells = _cells_020(manager, int(directory_change_back_depth), use_global_cache and not suppress_global_warning,
                       errored)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    if leave_script:
        fileio.atomic_write_text(path + ".py", _percent_script(cells))
    notebook = {"cells": cells, "metadata": _NOTEBOOK_METADATA, "nbformat": 4, "nbformat_minor": 5}
    fileio.atomic_write_text(path + ".ipynb", json.dumps(notebook, indent=1, ensure_ascii=False) + "\n")
    logger.info("Experiment notebook written to %s.ipynb", path)
    return path + ".ipynb"


def _cells_020(manager: Any, depth: int, cache_warning: bool, errored: bool) -> list[dict[str, Any]]:
    """0.20's cells: ours, with ``%cd`` to the project root, warnings, and the record names."""
    sets = getattr(manager, "param_file_param_sets", None) or {}
    names = [str(entry[0]) for entries in sets.values() for entry in entries] or None
    files = list(getattr(manager, "parameter_files", None) or []) or None
    cells = experiment_notebook(manager, manager.experiment_name, files, names)["cells"]
    cells[1] = _code(1, "%cd " + "/".join([".."] * depth))
    notes = []
    if cache_warning:
        notes.append("**Warning:** this run was not made with `--store-full`, so the notebook reads the "
                     "project's cache; a later run may have changed the entries it loads.")
    if errored:
        notes.append("**Warning:** this run did not complete: it stopped with an exception.")
    if notes:
        cells.insert(1, _markdown(90, "\n\n".join(notes)))
    lines = []
    for index, record in enumerate(manager.records):
        label = "record_{0}.params.name".format(index) if record.params is not None else '"(aggregate record)"'
        lines += [f"record_{index} = manager.records[{index}]", f"state_{index} = record_{index}.state",
                  f'print("state_{index} - (" + {label} + ") stages: " + str(record_{index}.stages))',
                  f'print("keys: " + str(list(state_{index}.keys())) + "\\n")']
    cells.append(_code(91, "\n".join(lines) or "# no records"))
    return cells


def _percent_script(cells: list[dict[str, Any]]) -> str:
    """The cells as a percent-format script (markdown cells as string literals, as 0.20 wrote)."""
    parts = []
    for cell in cells:
        source = cell["source"]
        if cell["cell_type"] == "markdown":
            source = "'''\n" + source.replace("'''", '"""') + "\n'''"
        parts.append("# %%\n" + source + "\n")
    return "\n".join(parts)
