"""``--map``, ``--hashes``, ``--print-params`` and ``--paths``: look at a run without running it.

Each writes nothing: the experiment is mapped on a ``dry`` manager (stage calls are
recorded, no stage executes) and the plan, hashes, values or artifact paths are
printed as plain text, by :mod:`curifactory.inspection`.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any, Callable, TextIO

from curifactory.cli.common import load_project_code, selection_lists, warn_unknown_stages
from curifactory.inspection import (
    map_run,
    params_to_print,
    print_explain,
    print_hashes,
    print_map,
    print_params,
    print_paths,
)


# -- inspecting -------------------------------------------------------------------------------


def inspect_command(args: argparse.Namespace, settings: Any) -> int:
    """``--hashes``, ``--print-params``, ``--map``, ``--paths``: print, run nothing, write nothing."""
    from curifactory.experiment import ParamSelection, collect_param_sets, load_experiment

    module = load_project_code(lambda: load_experiment(args.experiment, settings), args.experiment)
    selection = ParamSelection(tuple(args.names or ()), tuple(selection_lists(args.indices) or ()),
                               tuple(selection_lists(args.global_indices) or ()), tuple(args.overrides or ()),
                               args.params_from)
    param_sets, block = load_project_code(lambda: collect_param_sets(module, args.params, settings, selection),
                                          args.experiment)
    out = sys.stdout
    sections: list[Callable[[], None]] = []
    if args.hashes:
        sections.append(lambda: print_hashes(param_sets, out))
    if args.print_params is not None:
        chosen = params_to_print(param_sets, args.print_params,
                                 os.path.join(settings.root, settings.manager_cache_path))
        sections.append(lambda: print_params(chosen, out))
    if args.map or args.paths or args.explain:
        manager = dry_manager(args, settings, block)
        mapped = map_run(module.run, param_sets, manager)
        if mapped.plan is not None:
            warn_unknown_stages(list(args.overwrite_stage or []), list(mapped.plan.nodes))
        if args.map:
            sections.append(lambda: print_map(mapped, args.experiment, out))
        if args.explain:
            sections.append(lambda: print_explain(mapped, manager, out))
        if args.paths:
            sections.append(lambda: print_paths(mapped, out))
    for number, section in enumerate(sections):
        if number:
            print(file=out)
        section()
    return 0


def dry_manager(args: argparse.Namespace, settings: Any, block: dict[str, list[list[str]]]) -> Any:
    """A manager that writes nothing, with the run's cache, prefix and overwrite flags."""
    from curifactory.manager import ArtifactManager

    manager = ArtifactManager(args.experiment, dry=True, prefix=args.prefix, lazy=args.lazy,
                              ignore_lazy=args.ignore_lazy, cache_path=args.cache,
                              status_override="incomplete", settings=settings)
    manager.overwrite = bool(args.overwrite)
    manager.overwrite_stages = list(args.overwrite_stage or [])
    manager.code_changes = args.code_changes
    manager.parameter_files = list(block)
    manager.param_file_param_sets = block
    return manager


def why_command(args: argparse.Namespace, out: TextIO) -> int:
    """``curifactory why REF STAGE [RECORD]``: the recorded reason of each matching stage call."""
    from curifactory import explain
    from curifactory.config import load_settings

    store_path = load_settings().manager_cache_path
    reference = explain.find_reference(store_path, args.reference)
    chosen = explain.select(explain.load_decisions(store_path, reference), args.stage, args.record)
    print(f"run {reference}, stage {args.stage}:", file=out)
    width = max(len(f"{d.record_index}  {d.record_name}") for d in chosen)
    for d in chosen:
        label = f"{d.record_index}  {d.record_name}"
        print(f"  record {label:<{width}}  (hash {d.params_hash[:10]})  {d.status:<8}  {d.reason}", file=out)
    return 0
