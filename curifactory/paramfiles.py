"""YAML parameter files: ``-p NAME`` finds ``params/NAME.yaml`` (or ``.yml``).

A file is a list of parameter sets, or a mapping with any of ``class`` (the dataclass,
``experiments.polyfit.Params``; default: the experiment module's one parameter
class), ``name`` (a prefix of generated names), ``base`` (values every set starts
from), ``grid`` (field -> values: every combination), ``random`` (``count``,
``seed``, ``fields``: field -> ``uniform``/``loguniform``/``int``: [a, b] or
``choice``: [...]) and ``sets`` (a list of sets). Every value is checked against the
dataclass's fields; an error names the file, the line and the field.
"""

from __future__ import annotations

import dataclasses
from types import ModuleType
from typing import Any

from curifactory import sweeps
from curifactory.errors import ParamsError

KEYS = ("class", "name", "base", "grid", "random", "sets")


class _Where:
    def __init__(self, path: str):
        self.path = path

    def error(self, node: Any, message: str) -> ParamsError:
        line = node.start_mark.line + 1 if node is not None else 1
        return ParamsError(f"{self.path}, line {line}: {message}.")

    def field_error(self, exc: sweeps.FieldError, nodes: dict[str, Any], fallback: Any) -> ParamsError:
        """A field's error at the line of its (top-level) key, else at ``fallback``'s line."""
        return self.error(nodes.get(exc.field.split(".")[0], fallback), str(exc))


def _mapping(loader: Any, node: Any, where: _Where, what: str) -> list[tuple[str, Any, Any]]:
    """(key, key node, value node) of a mapping node."""
    import yaml

    if not isinstance(node, yaml.MappingNode):
        raise where.error(node, f"{what} must be a mapping (field: value)")
    pairs = []
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if not isinstance(key, str):
            raise where.error(key_node, f"{what} has a key {key!r} that is not a field name")
        pairs.append((key, key_node, value_node))
    return pairs


def _values(loader: Any, node: Any, where: _Where, what: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """A mapping node's values and the node of each key (for line numbers)."""
    pairs = _mapping(loader, node, where, what)
    return {k: loader.construct_object(v, deep=True) for k, _, v in pairs}, {k: n for k, n, _ in pairs}


def _build(cls: type, loader: Any, node: Any, where: _Where, extra: dict[str, Any] | None = None) -> Any:
    values, nodes = _values(loader, node, where, "a parameter set")
    try:
        return sweeps.build(cls, {**(extra or {}), **values})
    except sweeps.FieldError as exc:
        raise where.field_error(exc, nodes, node) from None


def _param_class(spec: Any, node: Any, module: ModuleType | None, where: _Where, root_import: Any) -> type:
    if spec is not None:
        dotted = str(spec)
        module_name, _, attr = dotted.rpartition(".")
        try:
            cls = getattr(root_import(module_name), attr) if module_name else None
        except (ImportError, AttributeError):
            cls = None
        from curifactory.params import ExperimentParameters

        if not (isinstance(cls, type) and dataclasses.is_dataclass(cls) and issubclass(cls, ExperimentParameters)):
            raise where.error(node, f"class: {dotted} is not a parameter set class (a cf.ExperimentParameters "
                                    f"dataclass) that can be imported; write module.Class, e.g. "
                                    f"experiments.polyfit.Params")
        return cls
    from curifactory.params import ExperimentParameters

    own = [v for v in vars(module).values() if isinstance(v, type) and issubclass(v, ExperimentParameters)
           and v is not ExperimentParameters and v.__module__ == module.__name__] if module else []
    if len(own) != 1:
        found = ", ".join(c.__name__ for c in own) or "none"
        raise where.error(node, f"name the parameter class with 'class: module.Class' (the experiment "
                                f"module defines {found})")
    return own[0]


def load_yaml(path: str, module: ModuleType | None, root_import: Any) -> list[Any]:
    """The parameter sets a YAML file describes (see the module docstring).

    Args:
        path: the file.
        module: the experiment module (its parameter class is the default ``class``).
        root_import: imports a dotted module name from the project root.
    """
    import yaml

    where = _Where(path)
    try:
        with open(path, encoding="utf-8") as handle:
            loader = yaml.SafeLoader(handle.read())
        try:
            root = loader.get_single_node()
        finally:
            loader.dispose()
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f", line {mark.line + 1}" if mark is not None else ""
        raise ParamsError(f"{path}{line}: not valid YAML ({getattr(exc, 'problem', None) or exc}).") from None
    if root is None:
        raise ParamsError(f"{path} is empty; write a list of parameter sets, or base/grid/random blocks.")
    if isinstance(root, yaml.SequenceNode):
        cls = _param_class(None, root, module, where, root_import)
        return [_build(cls, loader, item, where) for item in root.value]
    return _from_mapping(loader, root, module, where, root_import)


def _from_mapping(loader: Any, root: Any, module: ModuleType | None, where: _Where, root_import: Any) -> list[Any]:
    import yaml

    blocks = {key: (key_node, value) for key, key_node, value in _mapping(loader, root, where, "the file")}
    for key, (key_node, _) in blocks.items():
        if key not in KEYS:
            raise where.error(key_node, f"'{key}' is not a block of a parameter file (use {', '.join(KEYS)})")
    class_node = blocks.get("class", (None, None))[1]
    cls = _param_class(loader.construct_object(class_node) if class_node is not None else None,
                       class_node or root, module, where, root_import)
    prefix = loader.construct_object(blocks["name"][1]) if "name" in blocks else None
    base: dict[str, Any] = {}
    if "base" in blocks:
        base, base_nodes = _values(loader, blocks["base"][1], where, "base")
        for key, value in base.items():
            try:
                sweeps.check_value(cls, key, value)
            except sweeps.FieldError as exc:
                raise where.error(base_nodes[key], str(exc)) from None
    sets: list[Any] = []
    if "sets" in blocks:
        node = blocks["sets"][1]
        if not isinstance(node, yaml.SequenceNode):
            raise where.error(node, "sets must be a list of parameter sets")
        sets += [_build(cls, loader, item, where, base) for item in node.value]
    if "grid" in blocks:
        sets += _grid(cls, loader, blocks["grid"][1], where, base, prefix)
    if "random" in blocks:
        sets += _random(cls, loader, blocks["random"][1], where, base, prefix)
    if not sets:
        raise where.error(root, "the file describes no parameter set (give sets, grid or random)")
    return sets


def _grid(cls: type, loader: Any, node: Any, where: _Where, base: dict[str, Any], prefix: Any) -> list[Any]:
    axes, nodes = _values(loader, node, where, "grid")
    for key, values in axes.items():
        if not isinstance(values, list) or not values:
            raise where.error(nodes[key], f"grid value of '{key}' must be a non-empty list")
    try:
        return sweeps.grid(cls, base=base, name=prefix, **axes)
    except sweeps.FieldError as exc:
        raise where.field_error(exc, nodes, node) from None


def _random(cls: type, loader: Any, node: Any, where: _Where, base: dict[str, Any], prefix: Any) -> list[Any]:
    spec, nodes = _values(loader, node, where, "random")
    unknown = [k for k in spec if k not in ("count", "seed", "fields")]
    if unknown or not isinstance(spec.get("count"), int) or not isinstance(spec.get("fields"), dict):
        raise where.error(nodes.get(unknown[0]) if unknown else node,
                          "random takes count: N, seed: S and fields: {field: {uniform: [a, b]}, ...}")
    field_nodes = dict((k, n) for k, n, _ in _mapping(loader, nodes_value(node, "fields"), where, "fields"))
    try:
        return sweeps.random_sets(cls, base, spec["fields"], spec["count"], int(spec.get("seed", 0)), prefix)
    except sweeps.FieldError as exc:
        raise where.field_error(exc, field_nodes, node) from None


def nodes_value(node: Any, key: str) -> Any:
    """The value node of ``key`` in a mapping node."""
    for key_node, value_node in node.value:
        if getattr(key_node, "value", None) == key:
            return value_node
    return None
