"""Finding and loading a project's experiment module and parameter files, and selecting sets.

The project root is put on ``sys.path`` only while a module is imported from it
(see :func:`project_on_path`), so a notebook's interpreter is left as it was.
"""

from __future__ import annotations

import dataclasses
import importlib
import os
import sys
from contextlib import contextmanager
from dataclasses import dataclass
from types import ModuleType
from typing import Any, Iterator

from curifactory import hashing
from curifactory.config import Settings
from curifactory.errors import ExperimentNotFoundError, ParamsError, ParamsNotFoundError, UsageError


@contextmanager
def project_on_path(root: str) -> Iterator[None]:
    """Put ``root`` first on ``sys.path`` for the block (left as it was afterwards)."""
    added = root not in sys.path
    if added:
        sys.path.insert(0, root)
    try:
        yield
    finally:
        if added and root in sys.path:
            sys.path.remove(root)


@dataclass(frozen=True)
class ParamSelection:
    """Which parameter sets of the loaded files to run.

    Attributes:
        names: keep only sets with these names (each must match at least one set).
        indices: per-file ranges (``"2"``, ``"0-3"``: end-exclusive).
        global_indices: ranges over the concatenation of all files.
    """

    names: tuple[str, ...] = ()
    indices: tuple[str, ...] = ()
    global_indices: tuple[str, ...] = ()
    overrides: tuple[str, ...] = ()
    """``FIELD=VALUE`` (``--set``), applied to every set after loading and selecting."""
    params_from: str | None = None
    """``REF`` or ``REF:SETNAME`` (``--params-from``): the sets of an earlier run instead of files."""


def _import_project_module(settings: Settings, dotted: str) -> ModuleType | None:
    """Import ``dotted`` from the project root; ``None`` only if that module is missing."""
    try:
        with project_on_path(settings.root):
            return importlib.import_module(dotted)
    except ModuleNotFoundError as exc:
        missing = exc.name or ""
        if dotted == missing or dotted.startswith(missing + "."):
            return None
        raise


def load_experiment(name: str, settings: Settings) -> ModuleType:
    """The experiment module ``<experiments_module_name>.<name>`` with a ``run`` function."""
    module = _import_project_module(settings, f"{settings.experiments_module_name}.{name}")
    if module is None:
        available = ", ".join(list_modules(settings, settings.experiments_module_name)) or "none"
        raise ExperimentNotFoundError(
            f"No experiment '{name}': expected {settings.experiments_module_name}/{name}.py under "
            f"{settings.root} (found: {available}). Check the name, or run 'experiment ls'."
        )
    if not callable(getattr(module, "run", None)):
        raise ExperimentNotFoundError(
            f"The experiment module {module.__file__} has no run(param_sets, manager) function; "
            f"define one."
        )
    return module


def load_param_file(name: str, settings: Settings, experiment: ModuleType | None = None) -> list[Any]:
    """``get_params()`` of ``params.<name>`` (or ``experiments.<name>``), checked; else the
    sets of ``params/<name>.yaml`` (or ``.yml``, see :mod:`curifactory.paramfiles`), whose
    default class is ``experiment``'s parameter class."""
    for package in (settings.params_module_name, settings.experiments_module_name):
        module = _import_project_module(settings, f"{package}.{name}")
        if module is not None and callable(getattr(module, "get_params", None)):
            return check_param_sets(module.get_params(), f"{module.__name__}.get_params()")
    for extension in (".yaml", ".yml"):
        path = os.path.join(settings.root, settings.params_module_name, name + extension)
        if os.path.isfile(path):
            from curifactory.paramfiles import load_yaml

            with project_on_path(settings.root):
                return load_yaml(path, experiment, importlib.import_module)
    available = ", ".join(list_modules(settings, settings.params_module_name)) or "none"
    raise ParamsNotFoundError(
        f"No parameter file '{name}': expected {settings.params_module_name}/{name}.py (or "
        f"{settings.experiments_module_name}/{name}.py) defining get_params(), or "
        f"{settings.params_module_name}/{name}.yaml, under {settings.root} "
        f"(found: {available}). Check the -p value, or run 'experiment ls'."
    )


def parse_override(text: str) -> tuple[str, Any]:
    """``FIELD=VALUE`` -> (field path, value read as a YAML scalar: ``3`` an int, ``0.1`` a float,
    ``true`` a bool, ``[1, 2]`` a list, anything else text)."""
    import yaml

    field, sep, raw = text.partition("=")
    if not sep or not field.strip():
        raise UsageError(f"--set {text!r} is not FIELD=VALUE (e.g. --set lr=0.01 or --set model.depth=3).")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    return field.strip(), value


def apply_overrides(param_set: Any, overrides: tuple[str, ...]) -> Any:
    """``param_set`` with every ``--set FIELD=VALUE`` applied (typed by the field)."""
    from curifactory.sweeps import FieldError, override

    for text in overrides:
        field, value = parse_override(text)
        try:
            param_set = override(param_set, field, value)
        except FieldError as exc:
            raise ParamsError(f"--set {text}: {exc}.") from None
    return param_set


def override_axes(overrides: tuple[str, ...]) -> dict[str, list[str]]:
    """The ``--set`` texts by field, in order: a field given several values is a sweep axis."""
    axes: dict[str, list[str]] = {}
    for text in overrides:
        axes.setdefault(parse_override(text)[0], []).append(text)
    return axes


def expand_overrides(param_sets: list[Any], overrides: tuple[str, ...]) -> list[Any]:
    """Every set with the ``--set`` values applied; a field set several times (``--set lr=0.1
    --set lr=0.01``) sweeps: each set once per combination, named ``<name>,lr=0.1``."""
    import itertools

    axes = override_axes(overrides)
    swept = [field for field, texts in axes.items() if len(texts) > 1]
    expanded = []
    for param_set in param_sets:
        for combination in itertools.product(*axes.values()):
            made = apply_overrides(param_set, tuple(combination))
            if swept:
                suffix = ",".join(text for text in combination if parse_override(text)[0] in swept)
                made = dataclasses.replace(made, name=f"{param_set.name},{suffix}") if hasattr(made, "name") else made
            expanded.append(made)
    return expanded


def sets_of_run(wanted: str, settings: Settings) -> tuple[str, list[Any]]:
    """The parameter sets an earlier run used (``REF`` or ``REF:SETNAME``), rebuilt from its run
    log with their classes; each must hash as it did then."""
    from curifactory.runs import load_run
    from curifactory.sweeps import FieldError, build, unflatten

    reference, _, set_name = wanted.partition(":")
    document = load_run(reference, settings.manager_cache_path)
    records = [r for r in document.get("records") or [] if not r.get("aggregate") and r.get("params_class")
               and (not set_name or r.get("name") == set_name)]
    if not records:
        raise ParamsError(f"--params-from {wanted}: run {document['reference']} has no parameter set"
                          f"{' named ' + repr(set_name) if set_name else ''} recorded in its run log.")
    sets, seen = [], set()
    for record in records:
        if (record.get("hash"), record.get("name")) in seen:
            continue
        seen.add((record.get("hash"), record.get("name")))
        module_name, _, class_name = str(record["params_class"]).rpartition(".")
        try:
            cls = getattr(importlib.import_module(module_name), class_name)
            param_set = build(cls, {**unflatten(record.get("params") or {}), "name": record.get("name")})
        except (ImportError, AttributeError, FieldError, TypeError) as exc:
            raise ParamsError(f"--params-from {wanted}: parameter set {record.get('name')!r} cannot be rebuilt "
                              f"from the run log ({exc}).") from None
        if hashing.hash_param_set(param_set) != record.get("hash"):
            raise ParamsError(f"--params-from {wanted}: parameter set {record.get('name')!r} rebuilt from the run "
                              f"log hashes differently than it did (a field is not plain data, or the "
                              f"class {record['params_class']} changed); run it from its parameter file instead.")
        sets.append(param_set)
    return f"run:{document['reference']}", sets


def sweep_id(param_files: list[str], settings: Settings, overrides: tuple[str, ...] = ()) -> str | None:
    """The sweep id of a run whose parameter files include YAML ``grid`` or ``random`` blocks
    (``<file>-<content hash>``), or that sets a field several times with ``--set``
    (``set-<hash>``); joined by ``+``. The same when a stopped sweep is started again."""
    import hashlib
    import re

    ids = []
    if any(len(texts) > 1 for texts in override_axes(overrides).values()):
        ids.append("set-" + hashlib.blake2b("\n".join(overrides).encode(), digest_size=4).hexdigest())
    for name in param_files:
        for extension in (".yaml", ".yml"):
            path = os.path.join(settings.root, settings.params_module_name, name + extension)
            if not os.path.isfile(path) or os.path.isfile(path[: -len(extension)] + ".py"):
                continue
            with open(path, "rb") as handle:
                content = handle.read()
            if re.search(rb"^(grid|random)\s*:", content, flags=re.MULTILINE):
                ids.append(f"{name}-{hashlib.blake2b(content, digest_size=4).hexdigest()}")
            break
    return "+".join(ids) or None


def check_param_sets(value: Any, source: str) -> list[Any]:
    """Raise :class:`ParamsError` unless ``value`` is a list of parameter-set dataclasses."""
    if not isinstance(value, list):
        raise ParamsError(
            f"{source} returned a {type(value).__name__}, but it must return a list of parameter "
            f"sets (e.g. `return [Params(name='a'), Params(name='b')]`)."
        )
    for index, item in enumerate(value):
        if not dataclasses.is_dataclass(item) or isinstance(item, type):
            raise ParamsError(
                f"{source} returned a list whose item {index} is a {type(item).__name__} ({item!r:.60}), "
                f"not a parameter set. Each item must be an instance of a cf.ExperimentParameters dataclass."
            )
    return value


def list_modules(settings: Settings, package: str) -> list[str]:
    """Names of the modules in a project package folder (for messages and ``ls``)."""
    folder = os.path.join(settings.root, package)
    if not os.path.isdir(folder):
        return []
    names = {f[:-3] for f in os.listdir(folder) if f.endswith(".py") and not f.startswith("_")}
    if package != settings.experiments_module_name:  # parameter files may be YAML too
        names |= {f.rsplit(".", 1)[0] for f in os.listdir(folder) if f.endswith((".yaml", ".yml"))}
    return sorted(names)


def _parse_ranges(specs: tuple[str, ...], length: int) -> list[int]:
    chosen: list[int] = []
    for spec in specs:
        try:
            if "-" in spec:
                start, end = (int(part) for part in spec.split("-", 1))
                chosen.extend(range(start, min(end, length)))
            else:
                chosen.append(int(spec))
        except ValueError:
            raise UsageError(f"Index range '{spec}' is not 'N' or 'A-B' (end-exclusive), e.g. --indices 0-3.") from None
    return [i for i in chosen if 0 <= i < length]


def collect_param_sets(module: ModuleType, param_files: list[str] | None, settings: Settings,
                       selection: ParamSelection) -> tuple[list[Any], dict[str, list[list[str]]]]:
    """Load and select the parameter sets; returns them and the store's ``params`` block."""
    loaded: list[tuple[str, list[Any]]] = []
    if selection.params_from:
        loaded.append(sets_of_run(selection.params_from, settings))
    elif param_files:
        for name in param_files:
            loaded.append((name, load_param_file(name, settings, module)))
    elif callable(getattr(module, "get_params", None)):
        name = module.__name__.rsplit(".", 1)[-1]
        loaded.append((name, check_param_sets(module.get_params(), f"{module.__name__}.get_params()")))
    else:
        raise ParamsError(
            f"Experiment {module.__name__} has no get_params() and no parameter file was given. "
            f"Pass one with -p NAME (see 'experiment ls')."
        )
    if selection.indices:
        loaded = [(name, [sets[i] for i in _parse_ranges(selection.indices, len(sets))]) for name, sets in loaded]
    if selection.global_indices:
        flat = [(name, s) for name, sets in loaded for s in sets]
        keep = {id(flat[i][1]) for i in _parse_ranges(selection.global_indices, len(flat))}
        loaded = [(name, [s for s in sets if id(s) in keep]) for name, sets in loaded]
    if selection.names:
        found = {s.name for _, sets in loaded for s in sets}
        unknown = [n for n in selection.names if n not in found]
        if unknown:
            raise ParamsError(
                f"No parameter set is named {', '.join(repr(n) for n in unknown)}; the loaded sets are "
                f"{', '.join(repr(n) for n in sorted(found)) or 'none'}. Check the -n value."
            )
        loaded = [(name, [s for s in sets if s.name in selection.names]) for name, sets in loaded]
    if selection.overrides:
        loaded = [(name, expand_overrides(sets, selection.overrides)) for name, sets in loaded]
    param_sets = [s for _, sets in loaded for s in sets]
    if not param_sets:
        raise ParamsError("The selection leaves no parameter set to run; check -p, -n and --indices.")
    block = {name: [[str(s.name), hashing.hash_param_set(s)] for s in sets] for name, sets in loaded}
    return param_sets, block


