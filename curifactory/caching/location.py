"""Where a cacher's artifact lives, as a value: :class:`ArtifactLocation`.

The executor hands every cacher of a stage call its location, so a cacher never
reaches through ``record.manager``, and any cacher can be used (and tested) with
only a location, without a manager. A cacher set up the 0.20 way, with only
``record=``, gets its location from that record (:func:`location_of_record`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol


class Redirect(Protocol):
    """Maps a file's original path to its copy in a run folder (a reproduction run's manifest)."""

    def locate(self, original: str, project_root: str | None = None) -> str | None:  # pragma: no cover
        ...


@dataclass(frozen=True)
class ArtifactLocation:
    """The facts a cacher's paths and metadata are made of.

    Attributes:
        cache_path: the cache folder.
        prefix: the artifact prefix (the experiment name unless ``--prefix``).
        params_hash: the hash of the record's parameter set (combined for aggregates).
        stage: the stage writing the artifact.
        experiment: the experiment's name (``{experiment}`` in a ``path_override``).
        run_reference: the run writing it, for the metadata.
        params: the parameter set itself (``{params.X}`` in a ``path_override``).
        params_name: the parameter set's name, for the metadata.
        aggregate: the record is an aggregate's.
        dry: the run writes nothing: folders are not created.
        redirect: a reproduction run's manifest: files kept outside the cache are
            read from the run folder's copy.
        project_root: the project folder (to match moved checkouts in ``redirect``).
        code: the stage's code fingerprint for the metadata (``Fingerprint.as_metadata()``),
            or None when code changes are ignored.
        inputs: the content hash of each input the artifact is computed from (the
            ones known), for the metadata.
        remote: the ``remote_cache`` URL entries are mirrored to (``None``: none).
    """

    cache_path: str
    prefix: str
    params_hash: str
    stage: str | None = None
    experiment: str = ""
    run_reference: str | None = None
    params: Any = None
    params_name: str | None = None
    aggregate: bool = False
    dry: bool = False
    redirect: Redirect | None = None
    project_root: str | None = None
    code: Any = None
    inputs: Any = None
    remote: str | None = None

    def filename(self, name: str, prefix: str | None = None, stage: str | None = None) -> str:
        """``<prefix>_<hash>_<stage>_<name>``."""
        return f"{prefix or self.prefix}_{self.params_hash}_{stage or self.stage}_{name}"


def location_of_record(record: Any, stage: str | None = None, code: Any = None,
                       inputs: Any = None) -> ArtifactLocation:
    """The location of ``record``'s artifacts as its manager sees them now (0.20-style cachers)."""
    manager = getattr(record, "manager", None)
    params = record.params
    if manager is None:
        return ArtifactLocation(cache_path="", prefix="", params_hash=record.get_hash(), stage=stage,
                                params=params, params_name=getattr(params, "name", None),
                                aggregate=bool(record.is_aggregate))
    return ArtifactLocation(
        manager.cache_path or "", manager.prefix or manager.experiment_name or "", record.get_hash(),
        stage or manager.current_stage_name, manager.experiment_name or "", manager.get_reference_name(),
        params, getattr(params, "name", None), bool(record.is_aggregate), bool(manager.dry),
        manager.artifact_manifest, manager.settings.root, code, inputs,
        getattr(manager.settings, "remote_cache", None),
    )
