"""``curifactory cache status|verify|gc`` and ``curifactory pin|unpin``: keep a cache healthy.

They call :mod:`curifactory.maintenance` on the project's cache (``--cache DIR`` for
another) and print plain text (``status --format json`` for scripts).
"""

from __future__ import annotations

import argparse
import json
import os
from typing import IO, Any

from curifactory.cli.common import display_path


def _size(size: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} TB"  # pragma: no cover


def _paths(args: argparse.Namespace) -> tuple[str, str]:
    """(cache folder, data folder holding the run log and pins) of the project or ``--cache``."""
    from curifactory.config import load_settings
    from curifactory.errors import UsageError

    settings = load_settings()
    cache = os.path.abspath(args.cache) if getattr(args, "cache", None) else settings.cache_path
    if not os.path.isdir(cache):
        where = "--cache" if getattr(args, "cache", None) else (
            f"this project ({settings.config_file})" if settings.config_file else "the working directory (no "
            "curifactory_config.json here or in the 3 folders above)")
        raise UsageError(f"There is no cache folder {display_path(cache)} ({where}). Run the command from a "
                         f"project folder, or name the cache with --cache DIR.")
    return cache, settings.manager_cache_path


def _entry_line(entry: Any, detail: str = "") -> str:
    name = f"{entry.experiment or '?'} / {entry.stage or '?'} / {entry.artifact or '?'}"
    shown = entry.files[0] if entry.files else entry.metadata_path  # the data file, as users know it
    return f"  {display_path(shown)}  ({name}, {_size(entry.size)}){detail}"


def status_command(args: argparse.Namespace, out: IO[str]) -> int:
    """``curifactory cache status``."""
    from curifactory import maintenance

    cache, data = _paths(args)
    status = maintenance.cache_status(cache, data)
    if args.format == "json":
        json.dump(_status_json(status), out, indent=2)
        out.write("\n")
        return 0
    total = sum(e.size for e in status.entries)
    out.write(f"cache {display_path(cache)}: {len(status.entries)} entries, {_size(total)}\n")
    if status.groups:
        width = max(len("experiment"), *(len(e or "?") for e, _ in status.groups)) + 2
        stage_width = max(len("stage"), *(len(s or "?") for _, s in status.groups)) + 2
        out.write(f"  {'experiment':<{width}}{'stage':<{stage_width}}{'entries':>8}  size\n")
        for (experiment, stage), (count, size) in status.groups.items():
            out.write(f"  {experiment or '?':<{width}}{stage or '?':<{stage_width}}{count:>8}  {_size(size)}\n")
    sections = [("referenced by no run in the run log", status.unreferenced),
                ("stale (made by an older version of their stage's code)", status.stale),
                ("broken (the next run recomputes them)", status.broken)]
    for title, entries in sections:
        out.write(f"{title}: {len(entries)} ({_size(sum(e.size for e in entries))})\n")
        for entry in entries[: args.limit or None]:
            out.write(_entry_line(entry, f": {entry.problem}" if entry.problem else "") + "\n")
    out.write(f"temporary leftovers of killed runs: {len(status.leftovers)}\n")
    out.write(f"checkpoints of unfinished stages: {len(status.checkpoints)}; quarantined entries: "
              f"{status.quarantined}\n")
    return 0


def _status_json(status: Any) -> dict[str, Any]:
    def entries(items: Any) -> list[dict[str, Any]]:
        return [{"metadata": e.metadata_path, "experiment": e.experiment, "stage": e.stage,
                 "artifact": e.artifact, "params_hash": e.params_hash, "bytes": e.size,
                 "problem": e.problem or None} for e in items]

    return {"cache_path": status.cache_path, "entries": len(status.entries),
            "bytes": sum(e.size for e in status.entries),
            "groups": [{"experiment": e, "stage": s, "entries": c, "bytes": b}
                       for (e, s), (c, b) in status.groups.items()],
            "unreferenced": entries(status.unreferenced), "stale": entries(status.stale),
            "broken": entries(status.broken), "leftovers": list(status.leftovers),
            "checkpoints": list(status.checkpoints), "quarantined": status.quarantined}


def verify_command(args: argparse.Namespace, out: IO[str]) -> int:
    """``curifactory cache verify [--fix]``: exit code 1 when an entry fails and ``--fix`` is not given."""
    from curifactory import maintenance

    cache, data = _paths(args)
    count = len(maintenance.scan(cache))
    found = maintenance.verify(cache, fix=args.fix, manager_cache_path=data)
    out.write(f"verified {count} entries in {display_path(cache)}: {len(found)} failed\n")
    for entry, problem, moved in found:
        out.write(_entry_line(entry, f": {problem}") + "\n")
        if moved:
            out.write(f"    moved to {display_path(moved)}; the next run recomputes it\n")
    if found and not args.fix:
        out.write("Run 'curifactory cache verify --fix' to move them to the quarantine folder, so the next "
                  "run recomputes them.\n")
        return 1
    return 0


def gc_command(args: argparse.Namespace, out: IO[str]) -> int:
    """``curifactory cache gc``."""
    from curifactory import maintenance

    cache, data = _paths(args)
    max_size = maintenance.parse_size(args.max_size) if args.max_size is not None else None
    result = maintenance.collect_garbage(cache, data, keep_last=args.keep_last, older_than=args.older_than,
                                         max_size=max_size, dry_run=args.dry_run)
    verb = "would remove" if result.dry_run else "removed"
    out.write(f"{verb} {len(result.removed)} entries and {len(result.extra_paths)} leftovers: "
              f"{_size(result.freed)} {'would be ' if result.dry_run else ''}freed\n")
    for entry in result.removed[: args.limit or None]:
        out.write(_entry_line(entry) + "\n")
    if args.limit and len(result.removed) > args.limit:
        out.write(f"  ... and {len(result.removed) - args.limit} more\n")
    runs = len(result.protected_runs)
    out.write(f"kept {result.kept} entries ({_size(result.kept_bytes)}); {runs} run{'' if runs == 1 else 's'} "
              f"protected (kept, pinned, --store-full or running)\n")
    return 0


def pin_command(args: argparse.Namespace, out: IO[str]) -> int:
    """``curifactory pin [REF]`` (no REF: list the pinned runs) and ``curifactory unpin REF``."""
    from curifactory import maintenance
    from curifactory.config import load_settings
    from curifactory.errors import UsageError
    from curifactory.runs import find_run

    data = load_settings().manager_cache_path
    if args.command == "pin" and args.reference is None:
        for reference in maintenance.pinned(data):
            out.write(reference + "\n")
        return 0
    pins = maintenance.pinned(data)
    reference = args.reference if args.command == "unpin" and args.reference in pins else find_run(args.reference)
    if args.command == "pin":
        changed = maintenance.pin(data, reference)
        out.write(f"pinned {reference}: 'curifactory cache gc' keeps its cache entries\n" if changed
                  else f"{reference} is pinned already\n")
        return 0
    if not maintenance.unpin(data, reference):
        raise UsageError(f"{reference} is not pinned (pinned: {', '.join(pins) or 'none'}).")
    out.write(f"unpinned {reference}\n")
    return 0
