"""``curifactory runs``, ``curifactory show REF`` and ``curifactory diff REF_A REF_B``.

They read the run log through :mod:`curifactory.runs` and :mod:`curifactory.rundiff`
and print with rich (tables fit the terminal) or as CSV, JSON, Markdown or HTML.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import math
import sys
from typing import IO, Any

IDENTITY = ("reference", "params_name", "status")
IMPLIED = ("experiment", "run_number", "start", "end", "duration", "params_hash", "record")
"""Columns the reference already says (or that always differ): left out unless asked for."""
TABLE_LIMIT = 50


def _store(args: argparse.Namespace) -> Any:
    """What ``--store`` names (folders, globs, URLs; repeatable), resolved once (a URL is mirrored
    here), else the project's own store."""
    from curifactory.runs import store_sources

    return store_sources(list(args.store)) if getattr(args, "store", None) else None


def cell(value: Any) -> str:
    """A value as a table shows it: floats to 4 significant digits, no NaN, times to the second."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, float):
        return f"{value:.4g}"
    if hasattr(value, "strftime"):
        try:
            return str(value.strftime("%Y-%m-%d %H:%M:%S"))
        except ValueError:  # NaT
            return ""
    return str(value)


def varying_columns(frame: Any) -> list[str]:
    """The identity columns and every column whose values differ across the rows (an
    aggregate's record, which has no parameters, does not count)."""
    keep = [c for c in IDENTITY if c in frame.columns]
    rows = frame
    if "aggregate" in frame.columns:
        aggregate = frame["aggregate"].fillna(False).astype(bool)
        if not aggregate.all():
            rows = frame[~aggregate]
    for column in frame.columns:
        if column in keep or column in IMPLIED:
            continue
        varies = len({cell(v) for v in rows[column]}) > 1
        if not varies and len(rows) < len(frame) and column.startswith("metrics."):
            varies = len({cell(v) for v in frame[column]}) > 1  # an aggregate's own metrics count
        if varies:
            keep.append(column)
    return keep


def chosen_columns(frame: Any, spec: str | None, every: bool = False) -> list[str]:
    """The columns ``--columns`` names (patterns allowed), else every column (``every``, for
    CSV and JSON) or :func:`varying_columns`."""
    if not spec:
        return list(frame.columns) if every else varying_columns(frame)
    from curifactory.errors import UsageError

    chosen: list[str] = []
    for pattern in (p.strip() for p in spec.split(",") if p.strip()):
        found = [c for c in frame.columns if fnmatch.fnmatchcase(c, pattern)]
        if not found and frame.empty:
            continue  # no runs match: nothing to say about their columns
        if not found:
            raise UsageError(f"--columns: no column matches '{pattern}'. The columns are: "
                             f"{', '.join(frame.columns)}.")
        chosen += [c for c in found if c not in chosen]
    return chosen


def _frame(args: argparse.Namespace, store: str) -> Any:
    from curifactory.runs import load_runs

    frame = load_runs(args.experiment, status=args.status, tags=dict(args.tag or ()), since=args.since,
                      where=args.where, level=args.level, store=store)
    if args.sort:
        if args.sort not in frame.columns:
            from curifactory.errors import UsageError

            raise UsageError(f"--sort {args.sort}: there is no such column. The columns are: "
                             f"{', '.join(frame.columns)}.")
        frame = frame.sort_values(args.sort, ascending=not args.desc, kind="stable", na_position="last")
    elif args.desc:
        frame = frame.iloc[::-1]
    return frame


def runs_command(args: argparse.Namespace, out: IO[str]) -> int:
    """``curifactory runs``: a table (or CSV/JSON/Markdown) of runs, a row per record."""
    store = _store(args)
    if args.reindex:
        from curifactory.runindex import RunIndex
        from curifactory.runs import store_dir

        count = RunIndex(store_dir(store)).reindex()
        print(f"reindexed {count} runs from the run log", file=out if args.format == "table" else sys.stderr)
    frame = _frame(args, store)
    total = len(frame)
    if args.output and not args.chart:
        from curifactory.errors import UsageError

        raise UsageError("-o/--output writes a --chart page; without --chart, redirect the table instead "
                         "(e.g. --format csv > runs.csv).")
    table = args.format == "table" and not args.chart
    limit = args.limit if args.limit is not None else (TABLE_LIMIT if table else 0)
    if limit and total > limit:
        frame = frame.iloc[:limit] if args.sort else frame.iloc[-limit:]
    if args.chart:
        return chart_command(frame, args, store, out)
    frame = frame[chosen_columns(frame, args.columns, every=args.format in ("csv", "json"))]
    if args.format == "csv":
        out.write(frame.to_csv(index=False))
    elif args.format == "json":
        out.write(frame.to_json(orient="records", date_format="iso", indent=1, double_precision=15) + "\n")
    elif args.format == "markdown":
        out.write(markdown_table(frame) + "\n")
    else:
        print_table(frame, out, f"{len(frame)} of {total} rows" if len(frame) < total else f"{total} rows")
    return 0


def chart_command(frame: Any, args: argparse.Namespace, store: Any, out: IO[str]) -> int:
    """``curifactory runs --chart METRIC``: a self-contained page comparing the rows."""
    import os

    from curifactory.config import load_settings
    from curifactory.errors import UsageError
    from curifactory.reporting.charts import plot_runs

    if frame.empty:
        raise UsageError("--chart: no runs match, so there is nothing to chart.")
    name = args.chart[len("metrics."):] if args.chart.startswith("metrics.") else args.chart
    path = args.output or os.path.join(load_settings().reports_path, "_charts", f"runs-{name}.html")
    if not os.path.isdir(os.path.dirname(os.path.abspath(path))) and args.output:
        raise UsageError(f"-o {path}: the folder {os.path.dirname(os.path.abspath(path))} does not exist.")
    plot_runs(frame, args.chart, output=path, store=store)
    print(f"chart of {name} across {len(frame)} rows: {path}", file=out)
    return 0


def markdown_table(frame: Any) -> str:
    """A GitHub-flavoured Markdown table (``|`` in values escaped)."""
    def escape(value: Any) -> str:
        return cell(value).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(escape(c) for c in frame.columns) + " |",
             "| " + " | ".join("---" for _ in frame.columns) + " |"]
    lines += ["| " + " | ".join(escape(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join(lines)


def print_table(frame: Any, out: IO[str], caption: str) -> None:
    """A rich table that fits the terminal (long cells are folded)."""
    from rich.console import Console
    from rich.table import Table

    console = Console(file=out, highlight=False, soft_wrap=False)
    if frame.empty:
        console.print("no runs match (run an experiment first, or widen the filters)")
        return
    fits = max(3, console.width // 14)  # keep columns readable: leave out what does not fit, and say so
    if len(frame.columns) > fits:
        hidden = list(frame.columns[fits:])
        frame = frame[list(frame.columns[:fits])]
        caption += (f"; {len(hidden)} more column{'s' if len(hidden) > 1 else ''} not shown at this width "
                    f"({', '.join(hidden[:4])}{', ...' if len(hidden) > 4 else ''}): pick with --columns, "
                    f"or use --format csv")
    table = Table(caption=caption, show_lines=False, pad_edge=False)
    for column in frame.columns:
        numeric = column.startswith("metrics.") or column in ("run_number", "duration", "record")
        whole = column in ("reference", "params_name")  # to be copied: never folded
        table.add_column(column, justify="right" if numeric else "left", overflow="fold", no_wrap=whole)
    for row in frame.itertuples(index=False):
        table.add_row(*(cell(v) for v in row))
    console.print(table)


# -- show ----------------------------------------------------------------------------------------


def show_command(args: argparse.Namespace, out: IO[str]) -> int:
    """``curifactory show REF``: one run whole."""
    from curifactory.runs import load_run

    store = _store(args)
    document = load_run(args.reference, store)
    links = None
    if args.lineage:
        from curifactory.runs import lineage

        links = lineage(document["reference"], store)
        document["lineage"] = {"uses": links["uses"], "used_by": links["used_by"]}
    if args.format == "json":
        out.write(json.dumps(document, indent=1, default=str) + "\n")
        return 0
    out.write(show_text(document))
    if links is not None:
        out.write(lineage_text(links))
    return 0


def lineage_text(links: dict[str, Any]) -> str:
    """The ``--lineage`` section of ``curifactory show``."""
    def listed(pairs: list[tuple[str, int]], none: str) -> list[str]:
        return [f"  {run}  ({count} artifact{'' if count == 1 else 's'})" for run, count in pairs] or [f"  {none}"]

    lines = ["", "lineage:", "loaded cached artifacts from:"]
    lines += listed(links["uses"], "no other run (everything it used, it computed)")
    lines += ["its artifacts were loaded by:"] + listed(links["used_by"], "no later run")
    return "\n".join(lines) + "\n"


def _size(size: Any) -> str:
    if not isinstance(size, int) or size < 0:
        return "?"
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024  # type: ignore[assignment]
    return str(size)


def _seconds(value: Any) -> str:
    return f"{value:.3f} s" if isinstance(value, (int, float)) else "-"


def _pairs(values: dict[str, Any]) -> str:
    return ", ".join(f"{k}={cell(v)}" for k, v in values.items()) or "-"


def _metadata_text(value: Any) -> str:
    """A metadata provider's value in one short piece (``cf.load_run`` has it whole)."""
    if isinstance(value, dict) and set(value) == {"error"}:
        text = f"error: {value['error']}"
    elif isinstance(value, list):
        text = f"[{len(value)} items]"
    elif isinstance(value, dict):
        text = json.dumps(value, default=str, separators=(",", ":"))
    else:
        text = str(value).strip().splitlines()[0] if str(value).strip() else "-"
    return text if len(text) <= 60 else text[:57] + "..."


def show_text(document: dict[str, Any]) -> str:
    """The text of ``curifactory show``."""
    d = document
    lines = [f"run {d['reference']}  ({d.get('experiment')} #{d.get('run_number')})",
             f"  status    {d.get('status')}" + (f": {d['error']}" if d.get("error") else ""),
             f"  started   {d.get('start')}   ended {d.get('end') or '-'}   duration {_seconds(d.get('duration'))}",
             f"  git       {d.get('commit') or '(not a git repository)'}"
             + (" (dirty)" if d.get("dirty") else "") + (f" on {d['branch']}" if d.get("branch") else ""),
             f"  host      {d.get('host')}   user {d.get('user')}   python {d.get('python')}   {d.get('platform')}",
             f"  command   {d.get('cli') or '-'}"]
    if d.get("notes"):
        lines.append(f"  notes     {d['notes']}")
    lines += [f"  tags      {_pairs(d.get('tags') or {})}", f"  info      {_pairs(d.get('info') or {})}"]
    if d.get("result") is not None:
        lines.append(f"  result    {_metadata_text(d['result'])}")
    if d.get("metadata"):
        lines.append(f"  metadata  {', '.join(f'{k}={_metadata_text(v)}' for k, v in d['metadata'].items())}")
    for record in d.get("records") or []:
        lines += _record_lines(record)
    if d.get("traceback"):
        lines += ["", "traceback:", *("  " + line for line in str(d["traceback"]).rstrip().splitlines())]
    lines.append("")
    if d.get("reproduce"):
        lines.append(f"reproduce: {d['reproduce']}")
    elif d.get("cli"):
        lines.append(f"rerun: {d['cli']}" + (f"   (at commit {d['commit'][:10]})" if d.get("commit") else ""))
    return "\n".join(lines) + "\n"


def _record_lines(record: dict[str, Any]) -> list[str]:
    kind = "aggregate" if record.get("aggregate") else "record"
    lines = ["", f"{kind} {record.get('index')}: {record.get('name')}  {str(record.get('hash'))[:10]}",
             f"  params    {_pairs(record.get('params') or {})}",
             f"  metrics   {_pairs(record.get('metrics') or {})}"]
    if record.get("tags") or record.get("info"):
        lines.append(f"  tags      {_pairs(record.get('tags') or {})}   info {_pairs(record.get('info') or {})}")
    for stage in record.get("stages") or []:
        cached = stage.get("status") in ("cached", "skipped")
        took = "" if cached else _seconds(stage.get("duration"))
        why = "" if cached and stage.get("reason") == "cached" else stage.get("reason") or ""
        lines.append(f"  stage {stage.get('stage'):<20} {stage.get('status'):<9} {took:>9}  {why}".rstrip()
                     + (f"  error: {stage['error']}" if stage.get("error") else ""))
        for attempt in stage.get("attempts") or []:
            lines.append(f"      attempt {attempt.get('attempt')}  {attempt.get('status'):<9} "
                         f"{_seconds(attempt.get('duration')):>9}  {attempt.get('error') or ''}".rstrip())
        for out in stage.get("outputs") or []:
            origin = "computed" if out.get("computed") else f"loaded (from {out.get('produced_by') or '?'})"
            if stage.get("status") == "skipped":
                origin = "not computed (not needed)"
            lines.append(f"      {out.get('name'):<18} {str(out.get('content_hash') or '-')[:12]:<12} "
                         f"{_size(out.get('size')):>9}  {origin}  {out.get('path') or ''}")
    for attached in record.get("attachments") or []:
        lines.append(f"  attached  {attached.get('name')}  ({attached.get('path')})")
    return lines


# -- export ----------------------------------------------------------------------------------------


def export_command(args: argparse.Namespace, out: IO[str]) -> int:
    """``curifactory export mlflow [REF ...]``."""
    from curifactory.export_mlflow import export_runs

    result = export_runs(list(args.references), experiment=args.experiment, tracking_uri=args.tracking_uri,
                         store=_store(args), artifacts=args.artifacts)
    print(f"exported {len(result.exported)} records to MLflow"
          + (f"; {len(result.skipped)} were exported before (skipped)" if result.skipped else ""), file=out)
    return 0


# -- rerun -----------------------------------------------------------------------------------------

SELECTION_FLAGS = ("-p", "--params", "-n", "--names", "--indices", "--global-indices", "--set", "--params-from",
                   "--original-run")
"""Flags of the original command line that ``rerun`` replaces by ``--params-from REF``."""


def rerun_argv(args: argparse.Namespace) -> list[str]:
    """The ``experiment`` arguments that repeat run ``REF``: its experiment and flags, its exact
    parameter sets (``--params-from REF``), pointing back to it (``--original-run REF``)."""
    import shlex

    from curifactory.errors import UsageError
    from curifactory.runs import load_run

    document = load_run(args.reference, _store(args))
    reference = document["reference"]
    words = shlex.split(str(document.get("cli") or ""))
    if not words or words[0] not in ("experiment", "python"):
        raise UsageError(f"Run {reference} was not started by the experiment command (it is a "
                         f"{document.get('status')} run made from a script or notebook), so there is no "
                         f"command line to repeat; use --params-from {reference} with its experiment.")
    words = words[words.index("-m") + 2:] if words[0] == "python" and "-m" in words else words[1:]
    kept: list[str] = []
    skip = False
    for word in words:
        if skip:
            skip = False
            continue
        flag = word.split("=", 1)[0]
        if flag in SELECTION_FLAGS:
            skip = "=" not in word
            continue
        kept.append(word)
    return [*kept, "--params-from", reference, "--original-run", reference]


# -- diff ------------------------------------------------------------------------------------------


def diff_command(args: argparse.Namespace, out: IO[str]) -> int:
    """``curifactory diff REF_A REF_B``."""
    from curifactory.rundiff import diff_runs

    diff = diff_runs(args.reference_a, args.reference_b, _store(args))
    if args.format == "json":
        text = json.dumps(diff.as_dict(), indent=1, default=str) + "\n"
    elif args.format == "html":
        from curifactory.reporting.diffpage import diff_page

        text = diff_page(diff)
    else:
        text = diff_text(diff)
    if args.output:
        import os

        from curifactory import fileio
        from curifactory.errors import UsageError

        folder = os.path.dirname(os.path.abspath(args.output))
        if not os.path.isdir(folder):
            raise UsageError(f"--output {args.output}: the folder {folder} does not exist; create it first.")

        fileio.atomic_write_text(args.output, text)
        print(f"wrote {args.output}", file=out)
    else:
        out.write(text)
    return 0


def _change(change: Any) -> str:
    if change.kind == "added":
        return f"    + {change.name} = {cell(change.b)}"
    if change.kind == "removed":
        return f"    - {change.name} = {cell(change.a)}"
    return f"    ~ {change.name}: {cell(change.a)} -> {cell(change.b)}"


def _clip(text: str, limit: int = 60) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def diff_text(diff: Any) -> str:
    """The text form of a :class:`~curifactory.rundiff.RunDiff`."""
    if diff.identical:
        return f"{diff.a} and {diff.b} are identical (parameters, metrics, artifacts, code and environment).\n"
    lines = [f"diff {diff.a} -> {diff.b}"]
    if diff.run:
        lines += ["  run:"] + [_change(c) for c in diff.run]
    for record in diff.records:
        if record.empty:
            continue
        lines.append(f"  record {record.name} (#{record.index_a} -> #{record.index_b}):")
        lines += [_change(c) for c in record.params]
        for m in record.metrics:
            delta = f" ({m.delta:+.4g})" if m.delta is not None else ""
            lines.append(f"    metric {m.name}: {cell(m.a) or '-'} -> {cell(m.b) or '-'}{delta}")
        for a in record.artifacts:
            lines.append(f"    artifact {a.stage}/{a.name}: {str(a.hash_a or '-')[:10]} -> {str(a.hash_b or '-')[:10]}"
                         f"   [{_clip(a.preview_a)}] -> [{_clip(a.preview_b)}]")
        for s in record.stages:
            lines.append(f"    stage {s.stage}: {s.status_a} -> {s.status_b}")
    lines += [f"  record only in {diff.a}: {name}" for name in diff.removed_records]
    lines += [f"  record only in {diff.b}: {name}" for name in diff.added_records]
    if diff.dirty_files[0] != diff.dirty_files[1]:
        lines.append(f"  dirty files: {', '.join(diff.dirty_files[0]) or '-'} -> {', '.join(diff.dirty_files[1]) or '-'}")
    if diff.packages:
        lines += ["  packages:"] + [_change(c) for c in diff.packages]
    if diff.environment:
        lines += ["  environment:"] + [_change(c) for c in diff.environment]
    return "\n".join(lines) + "\n"
