"""A diff of two runs, record by record: :func:`diff_runs` -> :class:`RunDiff`.

Records are matched by parameter-set name, then by hash. For each pair: changed,
added and removed parameters (and tags and info), metrics with both values and the
change, artifacts whose content differs (with both previews), stages cached in one
run and executed in the other. For the runs: git commit, and the files each dirty
work tree changed (from a ``--store-full`` run's ``git.patch``), ``pip freeze`` changes
when both runs have one, python, platform and host. The text, JSON and HTML forms
are made by the presentation code from the frozen values here.
"""

from __future__ import annotations

import dataclasses
import os
import re
from dataclasses import dataclass
from typing import Any

from curifactory.runs import load_run, store_sources

_MISSING = "(none)"


@dataclass(frozen=True)
class Change:
    """One value in both runs: ``kind`` is ``changed``, ``added`` (only in B) or ``removed`` (only in A)."""

    name: str
    a: Any
    b: Any
    kind: str = "changed"


@dataclass(frozen=True)
class MetricChange:
    """A metric's final value in both runs and ``b - a`` (``None`` when one side lacks it)."""

    name: str
    a: float | None
    b: float | None
    delta: float | None


@dataclass(frozen=True)
class ArtifactChange:
    """An output whose content hash differs between the runs."""

    stage: str
    name: str
    hash_a: str | None
    hash_b: str | None
    preview_a: str = ""
    preview_b: str = ""


@dataclass(frozen=True)
class StageChange:
    """A stage executed in one run and cached (or failed) in the other."""

    stage: str
    status_a: str
    status_b: str


@dataclass(frozen=True)
class RecordDiff:
    """The differences of one matched pair of records."""

    name: str
    index_a: int | None
    index_b: int | None
    params: tuple[Change, ...] = ()
    metrics: tuple[MetricChange, ...] = ()
    artifacts: tuple[ArtifactChange, ...] = ()
    stages: tuple[StageChange, ...] = ()

    @property
    def empty(self) -> bool:
        return not (self.params or self.metrics or self.artifacts or self.stages)


@dataclass(frozen=True)
class RunDiff:
    """What differs between run ``a`` and run ``b``."""

    a: str
    b: str
    records: tuple[RecordDiff, ...]
    added_records: tuple[str, ...]
    removed_records: tuple[str, ...]
    run: tuple[Change, ...]
    dirty_files: tuple[tuple[str, ...], tuple[str, ...]]
    packages: tuple[Change, ...] | None
    environment: tuple[Change, ...]

    @property
    def identical(self) -> bool:
        """Nothing but the runs' identities and times differ."""
        return not (any(not r.empty for r in self.records) or self.added_records or self.removed_records
                    or self.run or self.dirty_files[0] != self.dirty_files[1] or self.packages or self.environment)

    def as_dict(self) -> dict[str, Any]:
        """The diff as JSON-able values (``identical`` included)."""
        value = dataclasses.asdict(self)
        value["identical"] = self.identical
        return value


def changes(a: dict[str, Any], b: dict[str, Any], prefix: str = "") -> tuple[Change, ...]:
    """The keys whose values differ between two dicts."""
    found = []
    for key in list(dict.fromkeys([*a, *b])):
        if key not in b:
            found.append(Change(prefix + key, a[key], None, "removed"))
        elif key not in a:
            found.append(Change(prefix + key, None, b[key], "added"))
        elif a[key] != b[key]:
            found.append(Change(prefix + key, a[key], b[key]))
    return tuple(found)


def _metric_changes(a: dict[str, Any], b: dict[str, Any]) -> tuple[MetricChange, ...]:
    found = []
    for key in list(dict.fromkeys([*a, *b])):
        va, vb = a.get(key), b.get(key)
        if va != vb:
            delta = vb - va if isinstance(va, (int, float)) and isinstance(vb, (int, float)) else None
            found.append(MetricChange(key, va, vb, delta))
    return tuple(found)


def _outputs(record: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(stage.get("stage"), out.get("name")): out for stage in record.get("stages") or []
            for out in stage.get("outputs") or []}


def _statuses(record: dict[str, Any]) -> dict[str, str]:
    return {str(stage.get("stage")): str(stage.get("status")) for stage in record.get("stages") or []}


def diff_records(a: dict[str, Any], b: dict[str, Any]) -> RecordDiff:
    """The differences between two matched records of two run documents."""
    params = (changes(a.get("params") or {}, b.get("params") or {})
              + changes(a.get("tags") or {}, b.get("tags") or {}, "tags.")
              + changes(a.get("info") or {}, b.get("info") or {}, "info."))
    outs_a, outs_b = _outputs(a), _outputs(b)
    artifacts = []
    for key in list(dict.fromkeys([*outs_a, *outs_b])):
        out_a, out_b = outs_a.get(key) or {}, outs_b.get(key) or {}
        if out_a.get("content_hash") != out_b.get("content_hash"):
            artifacts.append(ArtifactChange(str(key[0]), str(key[1]), out_a.get("content_hash"),
                                            out_b.get("content_hash"), str(out_a.get("preview") or ""),
                                            str(out_b.get("preview") or "")))
    status_a, status_b = _statuses(a), _statuses(b)
    stages = tuple(StageChange(stage, status_a.get(stage, _MISSING), status_b.get(stage, _MISSING))
                   for stage in dict.fromkeys([*status_a, *status_b])
                   if status_a.get(stage) != status_b.get(stage))
    return RecordDiff(str(a.get("name") or b.get("name")), a.get("index"), b.get("index"), params,
                      _metric_changes(a.get("metrics") or {}, b.get("metrics") or {}), tuple(artifacts), stages)


def match_records(a: list[dict[str, Any]], b: list[dict[str, Any]]) -> tuple[list[tuple[dict, dict]], list, list]:
    """Pairs of records matched by parameter-set name, then by hash; and the unmatched of each side."""
    pairs, left, right = [], list(a), list(b)
    for key in ("name", "hash"):
        for record in list(left):
            partner = next((r for r in right if r.get(key) == record.get(key)), None)
            if partner is not None:
                pairs.append((record, partner))
                left.remove(record)
                right.remove(partner)
    pairs.sort(key=lambda pair: pair[0].get("index") or 0)
    return pairs, left, right


def _run_folder_file(document: dict[str, Any], name: str) -> str | None:
    folder = document.get("run_dir")
    path = os.path.join(folder, name) if folder else None
    if not path or not os.path.isfile(path):
        return None
    with open(path, encoding="utf-8", errors="replace") as handle:
        return handle.read()


def patch_files(patch: str | None) -> list[str]:
    """The files a ``git diff`` patch changes."""
    return sorted(set(re.findall(r"^diff --git a/(\S+) b/", patch or "", flags=re.MULTILINE)))


def _installed(document: dict[str, Any]) -> str | None:
    """The installed distributions the run's ``pip`` metadata provider recorded, as freeze text."""
    listed = (document.get("metadata") or {}).get("pip")
    return "\n".join(str(line) for line in listed) if isinstance(listed, list) else None


def freeze_versions(text: str | None) -> dict[str, str]:
    """``{package: version or requirement}`` of a ``pip freeze`` listing."""
    versions = {}
    for line in (text or "").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, version = line.partition("==")
        if not sep:
            name, _, version = line.partition(" @ ")
        versions[name.strip().lower()] = version.strip()
    return versions


def diff_documents(a: dict[str, Any], b: dict[str, Any]) -> RunDiff:
    """The :class:`RunDiff` of two run documents (see :func:`curifactory.runs.load_run`)."""
    pairs, removed, added = match_records(a.get("records") or [], b.get("records") or [])
    records = tuple(diff_records(ra, rb) for ra, rb in pairs)
    keys = ("experiment", "status", "commit", "dirty", "branch", "param_files", "cli", "notes", "error")
    run = changes({k: a.get(k) for k in keys}, {k: b.get(k) for k in keys}) + \
        changes(a.get("tags") or {}, b.get("tags") or {}, "tags.") + \
        changes(a.get("info") or {}, b.get("info") or {}, "info.")
    files_a = patch_files(_run_folder_file(a, "git.patch"))
    files_b = patch_files(_run_folder_file(b, "git.patch"))
    freeze_a, freeze_b = _run_folder_file(a, "requirements.txt"), _run_folder_file(b, "requirements.txt")
    if freeze_a is None or freeze_b is None:  # compare like with like: else both runs' pip metadata
        freeze_a, freeze_b = _installed(a), _installed(b)
    packages = changes(freeze_versions(freeze_a), freeze_versions(freeze_b)) if freeze_a and freeze_b else None
    env_keys = ("python", "platform", "host", "user")
    environment = changes({k: a.get(k) for k in env_keys}, {k: b.get(k) for k in env_keys})
    return RunDiff(str(a.get("reference")), str(b.get("reference")), records,
                   tuple(str(r.get("name")) for r in added), tuple(str(r.get("name")) for r in removed),
                   run, (tuple(files_a), tuple(files_b)), packages, environment)


def diff_runs(a: str, b: str, store: Any = None) -> RunDiff:
    """What differs between two runs (references as ``curifactory show`` takes them; ``store``
    as for :func:`~curifactory.runs.load_runs`, so the two may come from different projects)."""
    sources = store_sources(store)
    return diff_documents(load_run(a, sources), load_run(b, sources))
