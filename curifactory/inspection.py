"""What ``--map``, ``--explain``, ``--paths``, ``--hashes`` and ``--print-params`` print: a run
looked at without running it.

The experiment is mapped on a ``dry`` manager (stage calls are recorded, no stage
executes) and the plan, hashes, values or artifact paths are printed as plain text.
The ``experiment`` command (:mod:`curifactory.cli.inspect`) and 0.20's
``run_experiment(map_only=True, ...)`` flags (:mod:`curifactory.experiment`) both print
with these functions.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any, Callable, TextIO

from curifactory import hashing
from curifactory.dag import Node, Plan
from curifactory.errors import UsageError
from curifactory.fileio import relative_inside as display_path


@dataclass(frozen=True)
class RecordLabel:
    """How a mapped record is named in the output."""

    index: int
    name: str
    hash: str
    aggregate: bool
    inputs: tuple[int, ...] = ()

    def title(self) -> str:
        if self.aggregate:
            sources = ", ".join(str(i) for i in self.inputs) or "none"
            return f"record {self.index}  aggregate of records {sources}  (hash {self.hash})"
        return f"record {self.index}  {self.name}  (hash {self.hash})"


@dataclass
class MappedRun:
    """The result of the map pass: the plan (None if unmappable) and the records seen."""

    plan: Plan | None
    records: list[RecordLabel]
    error: str | None = None


def map_run(run: Callable[..., Any], param_sets: list[Any], manager: Any) -> MappedRun:
    """Map ``run`` on ``manager`` (nothing executes) and label the records it created."""
    labels: list[RecordLabel] = []

    def mapping_run(sets: list[Any], mngr: Any) -> Any:
        try:
            return run(sets, mngr)
        finally:
            labels[:] = [label_record(i, r, mngr) for i, r in enumerate(mngr.records)]

    plan = manager.map_experiment(mapping_run, param_sets)
    error = None
    if plan is None:
        error = f"the experiment's run() could not be mapped ahead of running ({manager.map_error})"
    return MappedRun(plan, labels, error)


def label_record(index: int, record: Any, manager: Any) -> RecordLabel:
    """A :class:`RecordLabel` for ``record`` (position ``index`` in the manager)."""
    inputs = tuple(manager.record_index(r) for r in getattr(record, "input_records", None) or ())
    return RecordLabel(index, record.name, record.get_hash(), bool(record.is_aggregate), inputs)


def _nodes_by_record(plan: Plan) -> dict[int, list[Node]]:
    grouped: dict[int, list[Node]] = {}
    for node in plan.nodes:
        grouped.setdefault(node.record_index, []).append(node)
    return grouped


def _stage_label(node: Node) -> str:
    occurrence = node.key[2]
    return node.stage if occurrence == 0 else f"{node.stage} (call {occurrence + 1})"


def _record_title(index: int, labels: list[RecordLabel]) -> str:
    if 0 <= index < len(labels):
        return labels[index].title()
    return f"record {index}"


def print_map(mapped: MappedRun, experiment: str, out: TextIO) -> None:
    """The planned DAG: per record, each stage call, whether it runs and why."""
    if mapped.plan is None:
        print(f"{mapped.error}; each stage will decide from the cache as it is called.", file=out)
        return
    plan = mapped.plan
    to_run, unneeded = len(plan.to_run), len(plan.not_needed)
    print(f"plan of {experiment}: {len(plan.nodes)} stage calls, {to_run} to run, "
          f"{len(plan.nodes) - to_run - unneeded} cached" + (f", {unneeded} not needed" if unneeded else ""),
          file=out)
    width = max((len(_stage_label(n)) for n in plan.nodes), default=0)
    for index, nodes in _nodes_by_record(plan).items():
        print(_record_title(index, mapped.records), file=out)
        for node in nodes:
            verdict = plan.verdicts[node.key]
            text = f"run     {verdict.describe()}" if verdict.runs else _skip_word(verdict)
            if node.key in plan.rechecks:
                text += "  (unless an input's content changes when its stage reruns)"
            print(f"  {_stage_label(node):<{width}}  {text}", file=out)
            for line in _artifact_lines(node, verdict.runs):
                print(f"    {line}", file=out)


def _skip_word(verdict: Any) -> str:
    """``cached``, or for a call not needed, ``skip    not needed: ...``."""
    from curifactory.decision import Reason

    return f"skip    {verdict.describe()}" if verdict.reason is Reason.NOT_NEEDED else "cached"


def _artifact_lines(node: Node, runs: bool) -> list[str]:
    """Each output of a mapped call: its artifact path and, when its cached entry stays, the run that made it."""
    lines = []
    entries = node.entries or (None,) * len(node.outputs)
    for name, path, entry in zip(node.outputs, node.paths or (None,) * len(node.outputs), entries):
        if path is None:
            lines.append(f"{name}: (no cacher: kept in memory)")
        elif runs or entry is None:
            lines.append(f"{name}: {display_path(path)} (to be written)")
        else:
            made_by = f"from run {entry[2]}" if entry[2] else "from a run that did not record itself (0.20)"
            lines.append(f"{name}: {display_path(path)} (cached, {made_by})")
    return lines


def explain_call(node: Node, verdict: Any, manager: Any) -> str:
    """The reason of one planned call in words, with what changed where it is known."""
    from curifactory.decision import Reason

    reason = verdict.reason
    if reason is Reason.OVERWRITE:
        if manager.overwrite:
            return "--overwrite"
        if node.stage in manager.overwrite_stages:
            return f"--overwrite-stage {node.stage}"
        return "the parameter set's overwrite field"
    if reason is Reason.NOT_CACHED and verdict.detail and " " not in verdict.detail:
        return f"missing output '{verdict.detail}'"  # (a detail with spaces names the changed parameters)
    if reason is Reason.UPSTREAM:
        return f"upstream stage '{verdict.detail}' reruns"
    if not verdict.runs and node.key in getattr(manager.plan, "rechecks", ()):
        return "cached, unless an input's content changes when its stage reruns"
    return verdict.describe()


def print_explain(mapped: MappedRun, manager: Any, out: TextIO) -> None:
    """``--explain``: per record, each stage call: ``run`` or ``cached`` and why, in words."""
    if mapped.plan is None:
        print(f"{mapped.error}; each stage will decide from the cache as it is called.", file=out)
        return
    plan = mapped.plan
    print(f"why each stage call of {manager.experiment_name} runs or is cached:", file=out)
    width = max((len(_stage_label(n)) for n in plan.nodes), default=0)
    for index, nodes in _nodes_by_record(plan).items():
        print(_record_title(index, mapped.records), file=out)
        for node in nodes:
            verdict = plan.verdicts[node.key]
            verb = "run   " if verdict.runs else _skip_word(verdict)[:6]
            print(f"  {_stage_label(node):<{width}}  {verb}  {explain_call(node, verdict, manager)}", file=out)


def print_paths(mapped: MappedRun, out: TextIO) -> list[str]:
    """One path a line, as 0.20 printed them: every file of every output's cache entry (those its
    metadata names, else the artifact path) and its metadata file, so ``--paths | xargs rm -f``
    removes the experiment's entries. Nothing else goes to standard output. Returns the paths."""
    if mapped.plan is None:
        raise UsageError(f"--paths: {mapped.error}; the artifact paths are only known as the stages run.")
    seen: dict[str, None] = {}
    for node in mapped.plan.nodes:
        metadata = node.metadata_paths or (None,) * len(node.outputs)
        for path, meta_path in zip(node.paths or (None,) * len(node.outputs), metadata):
            for shown in [*_entry_files(path, meta_path), meta_path]:
                if shown is not None and shown not in seen:
                    seen[shown] = None
                    print(display_path(shown), file=out)
    return list(seen)


def _entry_files(path: str | None, meta_path: str | None) -> list[str | None]:
    """The files an entry's metadata names (beside it: see ``maintenance.read_entry``), else ``[path]``."""
    if meta_path is not None and os.path.exists(meta_path):
        from curifactory.maintenance import read_entry

        files = read_entry(meta_path).files
        if files:
            return list(files)
    return [path]


def print_hashes(param_sets: list[Any], out: TextIO) -> None:
    """``HASH NAME``, a line for each selected parameter set (0.20's form)."""
    for param_set in param_sets:
        print(hashing.hash_param_set(param_set), getattr(param_set, "name", None), file=out)


def select_param_sets(param_sets: list[Any], wanted: str | None) -> list[Any]:
    """All sets, or those named ``wanted``, or those whose hash starts with it.

    Raises:
        UsageError: nothing matches ``wanted``.
    """
    if not wanted:
        return list(param_sets)
    named = [p for p in param_sets if getattr(p, "name", None) == wanted]
    if named:
        return named
    hashed = [p for p in param_sets if hashing.hash_param_set(p).startswith(wanted.lower())]
    if hashed:
        return hashed
    names = ", ".join(repr(getattr(p, "name", None)) for p in param_sets)
    raise UsageError(f"--print-params {wanted}: no parameter set has that name or a hash starting with it "
                     f"(the sets are {names}). Use --hashes to list names and hashes.")


def print_params(chosen: dict[str, dict[str, Any]], out: TextIO) -> None:
    """One JSON object, ``{hash: {"name": ..., field: value as it is hashed, ...}}`` (the parameter
    registry's form), for scripts and ``jq``."""
    print(json.dumps(chosen, indent=2, default=str), file=out)


def params_to_print(param_sets: list[Any], wanted: str | None, manager_cache_path: str | None) -> dict[str, Any]:
    """The sets ``--print-params`` shows: the selected ones, or the one named ``wanted`` or whose
    hash starts with it; one only in the parameter registry (an earlier run's) when no selected set matches.

    Raises:
        UsageError: nothing matches ``wanted``.
    """
    try:
        sets = select_param_sets(param_sets, wanted)
    except UsageError:
        from curifactory.store import ParamsRegistry

        registry = ParamsRegistry(manager_cache_path).load() if manager_cache_path else {}
        found = {h: v for h, v in registry.items() if h.startswith(str(wanted).lower()) and isinstance(v, dict)}
        if not found:
            raise
        return {h: {k: v for k, v in entry.items() if k != "_DRY_REPS"} for h, entry in found.items()}
    return {hashing.hash_param_set(p): hashing.param_set_string_hash_representations(p) for p in sets}
