"""Hashes of parameter sets, aggregates and files. Pure: no file is written.

A parameter set's hash is a blake2b digest (32 lowercase hex characters) of a
canonical encoding: one ``(path, representation)`` pair per hashed field, in
declaration order, where ``path`` is the dotted field path (so a nested ``sub.x``
never collides with a flat ``x``). Inclusion rules follow curifactory 0.20: the
fields ``name``, ``hash``, ``overwrite`` and ``hash_representations`` never count;
a ``hash_representations`` entry wins (``None`` leaves the field out); a ``None``
value is left out (adding an Optional field keeps old hashes); a nested dataclass
is hashed field by field; a callable counts by its qualified name; a numpy array or
a pandas object by its dtype, shape and a digest of its content (their ``repr``
leaves out the middle of large ones); anything else by its ``repr``.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import logging
import re
import sys
import types
from typing import Any, Callable, Iterable

from curifactory.errors import HashingError

logger = logging.getLogger(__name__)
_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")
_PLAIN = frozenset({str, int, float, bool})
SKIPPED_FIELDS = frozenset({"name", "hash", "overwrite", "hash_representations"})
_field_names: dict[type, tuple[str, ...]] = {}


def _hashed_field_names(cls: type) -> tuple[str, ...]:
    names = _field_names.get(cls)
    if names is None:
        names = tuple(f.name for f in dataclasses.fields(cls) if f.name not in SKIPPED_FIELDS)
        _field_names[cls] = names
    return names


@functools.singledispatch
def _representation(value: Any) -> str:
    """The text a value is hashed by: its ``repr``, made stable where ``repr`` is not."""
    if isinstance(value, type):
        return f"<class {value.__module__}.{value.__qualname__}>"
    if isinstance(value, (types.FunctionType, types.MethodType, functools.partial)):
        return _callable_text(value)
    if callable(value) and hasattr(value, "__qualname__"):
        module = getattr(value, "__module__", None) or ""
        return f"<callable {module}.{value.__qualname__}>"
    content = _array_text(value)
    if content is not None:
        return content
    return repr(value)


def _callable_text(value: Any) -> str:
    """A function by its qualified name, its code (bytecode and constants) and the values it
    closes over and defaults to; a bound method by its instance too; a partial by its arguments."""
    if isinstance(value, types.MethodType):
        return f"<method of {_representation(value.__self__)} {_callable_text(value.__func__)}>"
    if isinstance(value, functools.partial):
        return (f"<partial {_representation(value.func)} {_representation(list(value.args))} "
                f"{_representation(dict(value.keywords))}>")
    cells = []
    for cell in value.__closure__ or ():
        try:
            contents = cell.cell_contents
        except ValueError:  # an empty cell
            continue
        if contents is not value:
            cells.append(contents)
    extra = [_representation(v) for v in (*cells, *(value.__defaults__ or ()), *(value.__kwdefaults__ or {}).values())]
    return f"<function {value.__module__}.{value.__qualname__} {code_digest(value.__code__)} ({', '.join(extra)})>"


@_representation.register(str)
@_representation.register(int)
@_representation.register(float)
@_representation.register(bool)
def _(value: Any) -> str:
    return repr(value)


@_representation.register(list)
@_representation.register(tuple)
def _(value: Any) -> str:
    if all(type(v) in _PLAIN for v in value):
        return repr(value)
    inner = ", ".join(_representation(v) for v in value)
    if isinstance(value, tuple):
        return f"({inner},)" if len(value) == 1 else f"({inner})"
    return f"[{inner}]"


@_representation.register(dict)
def _(value: dict) -> str:
    return "{" + ", ".join(f"{_representation(k)}: {_representation(v)}" for k, v in value.items()) + "}"


@_representation.register(set)
@_representation.register(frozenset)
def _(value: Any) -> str:
    # set iteration order depends on PYTHONHASHSEED: sort for a stable hash
    items = sorted(_representation(v) for v in value)
    return type(value).__name__ + "({" + ", ".join(items) + "})"


def _array_text(value: Any) -> str | None:
    """The content text of a numpy array or pandas object (their repr shortens large ones),
    ``None`` for anything else. Neither library is imported here: a value of theirs means
    the library is loaded already."""
    numpy = sys.modules.get("numpy")
    if numpy is not None and isinstance(value, numpy.ndarray):
        if value.dtype.hasobject:  # the bytes of an object array are pointers
            return f"<ndarray object {value.shape} {_representation(value.tolist())}>"
        masked = isinstance(value, numpy.ma.MaskedArray)  # the mask counts, and what is under it does not
        h = hashlib.blake2b(numpy.ascontiguousarray(value.filled(0) if masked else value).tobytes(), digest_size=16)
        if masked:
            h.update(numpy.ma.getmaskarray(value).tobytes())
        return f"<{type(value).__name__} {value.dtype.str} {value.shape} {h.hexdigest()}>"
    pandas = sys.modules.get("pandas")
    if pandas is not None and isinstance(value, (pandas.DataFrame, pandas.Series, pandas.Index)):
        kind = type(value).__name__
        try:
            rows = pandas.util.hash_pandas_object(value, index=not isinstance(value, pandas.Index)).to_numpy()
        except TypeError:  # cells that pandas cannot hash (lists, dicts): by their values
            return f"<{kind} {_representation(value.to_dict() if kind != 'Index' else list(value))}>"
        labels = list(value.columns) if kind == "DataFrame" else [value.name]
        dtypes = [repr(t) for t in value.dtypes] if kind == "DataFrame" else [repr(value.dtype)]  # categories too
        digest = hashlib.blake2b(rows.tobytes(), digest_size=16).hexdigest()
        return f"<{kind} {_representation(labels)} {dtypes} {value.shape} {digest}>"
    return None


def display_text(value: Any) -> str:
    """A value as a registry entry shows it (its ``repr``, an address left as it is), without
    the warning a hashed field gets."""
    return _cut(_array_text(value) or repr(value))


def hash_values(values: dict[str, Any], what: str = "value", where: str = "",
                code_text: Callable[[Any], str] | None = None) -> str:
    """The hash of named values (e.g. a function's arguments) by the rules of a parameter set's
    fields, strictly: a value that cannot be turned into stable, complete text is an error, not a
    warning; containers and dataclasses count element by element, a function by its code (what
    ``code_text(fn)`` says, by default its bytecode and constants) and the values it closes over,
    a bound method by its instance too, a ``functools.partial`` by its arguments.

    Raises:
        HashingError: a value's text holds a memory address (it would change every run) or is
            shortened (``...``), or making it failed; the message names the value (``what`` says
            what the names are, ``where`` whose they are).
    """
    strict = _Strict(code_text or (lambda fn: code_digest(fn.__code__)))
    out = []
    for name, value in values.items():
        if value is None:
            continue
        try:
            rep = strict.text(value)
        except HashingError as exc:
            raise HashingError(f"The {what} '{name}'{where} ({type(value).__name__}) cannot be hashed: {exc}, so "
                               f"two different values could look alike or one value differ every run. Pass a "
                               f"value that prints in full and the same each time (give its class a __repr__), "
                               f"or turn caching off (@cf.track(cache=False)).") from None
        except Exception as exc:
            raise HashingError(f"The {what} '{name}'{where} ({type(value).__name__}) cannot be hashed: turning "
                               f"it into text failed ({type(exc).__name__}: {exc}). Pass a value that can be "
                               f"printed, or turn caching off (@cf.track(cache=False)).") from None
        out.append(f"{len(name)}:{name}{len(rep)}:{rep}")
    return hashlib.blake2b("".join(out).encode("utf-8"), digest_size=16).hexdigest()


def code_digest(code: Any) -> str:
    """A digest of a code object: its bytecode, names and constants (nested code objects too)."""
    h = hashlib.blake2b(digest_size=12)
    h.update(code.co_code)
    h.update(repr(code.co_names).encode())
    for constant in code.co_consts:
        h.update(code_digest(constant).encode() if hasattr(constant, "co_code") else repr(constant).encode())
    return h.hexdigest()


_SHORTENED = re.compile(r"\.\.\.|…")


class _Strict:
    """The complete, stable text of a value for :func:`hash_values`."""

    def __init__(self, code_text: Callable[[Any], str]):
        self.code_text = code_text

    def text(self, value: Any) -> str:
        if value is None or type(value) in _PLAIN:
            return repr(value)
        if isinstance(value, types.FunctionType):
            return self.function(value)
        if isinstance(value, types.MethodType):
            return f"<method of {self.text(value.__self__)} {self.function(value.__func__)}>"
        if isinstance(value, functools.partial):
            return (f"<partial {self.text(value.func)} {self.text(list(value.args))} "
                    f"{self.text(dict(value.keywords))}>")
        if isinstance(value, (list, tuple)):
            return f"{type(value).__name__}({', '.join(self.text(v) for v in value)})"
        if isinstance(value, dict):
            return "{" + ", ".join(f"{self.text(k)}: {self.text(v)}" for k, v in value.items()) + "}"
        if isinstance(value, (set, frozenset)):
            return f"{type(value).__name__}({{{', '.join(sorted(self.text(v) for v in value))}}})"
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            fields = ", ".join(f"{f.name}={self.text(getattr(value, f.name))}" for f in dataclasses.fields(value))
            return f"<{type(value).__module__}.{type(value).__qualname__} {fields}>"
        if isinstance(value, type) or (callable(value) and hasattr(value, "__qualname__")):
            return _representation(value)  # a class, a builtin: by its qualified name
        content = _array_text(value)
        if content is not None:
            return content
        text = repr(value)
        if _ADDRESS.search(text):
            raise HashingError("its text holds a memory address")
        if _SHORTENED.search(text) and not isinstance(value, (str, bytes)):
            raise HashingError(f"its text is shortened ({text[:60]!r})")
        return text

    def function(self, fn: Any) -> str:
        """A plain function: its name, its code and the values it closes over and defaults to."""
        cells = tuple(cell.cell_contents for cell in fn.__closure__ or () if cell.cell_contents is not fn)
        extra = [self.text(v) for v in (*cells, *(fn.__defaults__ or ()), *(fn.__kwdefaults__ or {}).values())]
        return f"<function {fn.__module__}.{fn.__qualname__} {self.code_text(fn)} ({', '.join(extra)})>"


def _encode(obj: Any, prefix: str, out: list[str]) -> None:
    overrides = getattr(obj, "hash_representations", None) or {}
    for name in _hashed_field_names(type(obj)):
        value = getattr(obj, name)
        path = prefix + name
        if name in overrides:
            fn = overrides[name]
            if fn is None:
                continue
            value = fn(obj, value)
            if value is None:
                continue
            rep = value if isinstance(value, str) else _field_text(obj, path, value)
        elif value is None:
            continue
        elif type(value) in _PLAIN:
            rep = repr(value) if type(value) is not int else _field_text(obj, path, value)
        elif hasattr(type(value), "__dataclass_fields__"):
            _encode(value, f"{path}.", out)
            continue
        else:
            rep = _field_text(obj, path, value)
            _warn_if_unstable(obj, path, value, rep)
        out.append(f"{len(path)}:{path}{len(rep)}:{rep}")


def _set_name(obj: Any) -> str:
    name = getattr(obj, "name", None)
    return f" of the parameter set '{name}'" if isinstance(name, str) else ""


def _field_text(obj: Any, path: str, value: Any) -> str:
    try:
        return repr(value) if type(value) is int else _representation(value)
    except Exception as exc:  # e.g. an int past Python's digit limit, a broken __repr__
        raise HashingError(
            f"The field '{path}'{_set_name(obj)} ({type(value).__name__}) cannot be hashed: turning it into "
            f"text failed ({type(exc).__name__}: {exc}). Give the field a hash_representations entry "
            f"(cf.set_hash_functions), or a value that can be printed."
        ) from None


def _warn_if_unstable(obj: Any, path: str, value: Any, rep: str) -> None:
    if _ADDRESS.search(rep):
        logger.warning(
            "The field '%s'%s is hashed by its repr %s, which holds a memory address, so the parameter "
            "set's hash changes every run. Give the field a hash_representations entry (cf.set_hash_functions) "
            "or its class a __repr__.", path, _set_name(obj), rep[:80])
    elif type(value) not in (list, tuple, dict, set, frozenset) and _SHORTENED.search(rep):
        logger.warning(
            "The field '%s'%s is hashed by its repr %s, which is shortened, so values that differ only in "
            "the part left out hash alike. Give the field a hash_representations entry (cf.set_hash_functions).",
            path, _set_name(obj), rep[:80])


def param_set_encoding(param_set: Any) -> str:
    """The canonical text that :func:`hash_param_set` digests."""
    out: list[str] = []
    _encode(param_set, "", out)
    return "".join(out)


def compute_hash(param_set: Any) -> str:
    """Hash a parameter set from its fields, ignoring any stored ``.hash``."""
    return hashlib.blake2b(param_set_encoding(param_set).encode("utf-8"), digest_size=16).hexdigest()


def hash_param_set(param_set: Any, store_in_registry: bool = False, registry_path: str | None = None) -> str:
    """Return the hash of a parameter set, computing and keeping it in ``.hash`` once.

    A hand-set ``.hash`` wins. ``store_in_registry`` and ``registry_path`` are
    accepted for compatibility with 0.20 and ignored: hashing never writes files
    (the manager writes the registry once per run).
    """
    existing = getattr(param_set, "hash", None)
    if existing is not None:
        return existing
    digest = compute_hash(param_set)
    try:
        param_set.hash = digest
    except (AttributeError, dataclasses.FrozenInstanceError):
        pass
    return digest


def param_set_string_hash_representations(param_set: Any) -> dict[str, str]:
    """The string form of every field as it is hashed (the registry's entry for a set).

    Fields left out of the hash appear with the value ``"(not hashed)"``, except the
    bookkeeping fields, which are left out entirely; the set's name is included.
    """
    result: dict[str, str] = {"name": str(getattr(param_set, "name", ""))}
    hashed: list[str] = []
    _encode(param_set, "", hashed)
    for item in hashed:
        path, rep = _decode_pair(item)
        result[path] = rep
    return result


def _decode_pair(item: str) -> tuple[str, str]:
    length, rest = item.split(":", 1)
    path = rest[: int(length)]
    tail = rest[int(length):]
    rep_len, rep = tail.split(":", 1)
    return path, rep[: int(rep_len)]


PARAMETERS_BLACKLIST = sorted(SKIPPED_FIELDS)
"""The fields that never count in a hash (0.20's name for :data:`SKIPPED_FIELDS`)."""


def get_parameter_hash_value(param_set: Any, param_name: str) -> tuple[str, Any]:
    """How field ``param_name`` of ``param_set`` is hashed and the text (or nested dict) it is
    hashed by, as 0.20's helper of the same name reports it: ``("SKIPPED: ...", None)`` for a
    field left out, a ``hash_representations`` entry's result, a nested set's
    :func:`get_param_set_hash_values`, else the value's representation (see the module docstring)."""
    value = getattr(param_set, param_name)
    overrides = getattr(param_set, "hash_representations", None) or {}
    if param_name in SKIPPED_FIELDS:
        return ("SKIPPED: blacklist", None)
    if param_name in overrides:
        if overrides[param_name] is None:
            return ("SKIPPED: set to None in hash_representations", None)
        return (f"param_set.hash_representations['{param_name}'](param_set, {param_name})",
                overrides[param_name](param_set, value))
    if value is None:
        return ("SKIPPED: value is None", None)
    if hasattr(type(value), "__dataclass_fields__"):
        return (f"get_param_set_hash_values(param_set, {param_name})", get_param_set_hash_values(value))
    if type(value) in _PLAIN:
        return (f"repr({param_name})", repr(value))
    if callable(value) and not isinstance(value, type):
        return (f"{param_name}: qualified name, code and closure", _field_text(param_set, param_name, value))
    return (f"repr({param_name})", _field_text(param_set, param_name, value))


def get_param_set_hash_values(param_set: Any) -> dict[str, tuple[str, Any]]:
    """:func:`get_parameter_hash_value` of every field of a parameter set (0.20's helper)."""
    return {f.name: get_parameter_hash_value(param_set, f.name) for f in dataclasses.fields(param_set)}


def add_params_combo_hash(active_record: Any, records_list: Iterable[Any], registry_path: str | None = None,
                          store_in_registry: bool = False) -> str:
    """The combined hash of an aggregate's record over ``records_list`` (0.20's helper; the
    registry arguments are accepted and ignored: a run writes the registry itself)."""
    own = hash_param_set(active_record.params) if getattr(active_record, "params", None) is not None else "none"
    return combine_hashes(own, [r.get_hash() for r in records_list])


def combine_hashes(own_hash: str, input_hashes: Iterable[str]) -> str:
    """The hash of an aggregate: its own set's hash with its input records' hashes.

    The order of the input records does not matter.
    """
    text = own_hash + "|" + ",".join(sorted(input_hashes))
    return hashlib.blake2b(text.encode("utf-8"), digest_size=16).hexdigest()


def flatten_param_set(param_set: Any, prefix: str = "") -> dict[str, Any]:
    """``{dotted field path: value}`` of a parameter set, nested dataclasses flattened.

    ``name``, ``hash``, ``overwrite`` and ``hash_representations`` are left out; a
    value that is not a JSON scalar, list or dict is given by its ``repr``.
    """
    cls = type(param_set)
    if not dataclasses.is_dataclass(cls):
        return {}
    names = tuple(f.name for f in dataclasses.fields(cls)) if prefix else _hashed_field_names(cls)
    flat: dict[str, Any] = {}
    for name in names:
        value = getattr(param_set, name, None)
        if type(value) in _PLAIN or value is None:  # the common case, without _plain's checks
            flat[prefix + name] = value
        elif dataclasses.is_dataclass(value) and not isinstance(value, type):
            flat.update(flatten_param_set(value, f"{prefix}{name}."))
        else:
            flat[prefix + name] = _plain(value)
    return flat


def _plain(value: Any) -> Any:
    if value is None or type(value) in _PLAIN:
        return value
    if isinstance(value, (list, tuple)) and all(v is None or type(v) in _PLAIN for v in value):
        return list(value)
    if isinstance(value, dict) and all(isinstance(k, str) and (v is None or type(v) in _PLAIN)
                                       for k, v in value.items()):
        return dict(value)
    return _cut(repr(value))


def _cut(text: str) -> str:
    """A value's text as the registry and ``run.json`` show it: at most 200 characters."""
    return text if len(text) <= 200 else text[:197] + "..."
