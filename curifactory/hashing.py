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
from typing import Any, Iterable

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
    if callable(value) and hasattr(value, "__qualname__"):
        module = getattr(value, "__module__", None) or ""
        return f"<callable {module}.{value.__qualname__}>"
    content = _array_text(value)
    if content is not None:
        return content
    text = repr(value)
    if _ADDRESS.search(text):
        logger.warning(
            "The value %s is hashed by its repr, which holds a memory address, so the "
            "parameter set's hash changes every run. Give the field a "
            "hash_representations entry (cf.set_hash_functions).",
            text[:80],
        )
    return text


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
        data = numpy.ascontiguousarray(value).tobytes()
        return f"<ndarray {value.dtype.str} {value.shape} {hashlib.blake2b(data, digest_size=16).hexdigest()}>"
    pandas = sys.modules.get("pandas")
    if pandas is not None and isinstance(value, (pandas.DataFrame, pandas.Series, pandas.Index)):
        kind = type(value).__name__
        try:
            rows = pandas.util.hash_pandas_object(value, index=not isinstance(value, pandas.Index)).to_numpy()
        except TypeError:  # cells that pandas cannot hash (lists, dicts): by their values
            return f"<{kind} {_representation(value.to_dict() if kind != 'Index' else list(value))}>"
        labels = list(value.columns) if kind == "DataFrame" else [value.name]
        dtypes = [str(t) for t in value.dtypes] if kind == "DataFrame" else [str(value.dtype)]
        digest = hashlib.blake2b(rows.tobytes(), digest_size=16).hexdigest()
        return f"<{kind} {_representation(labels)} {dtypes} {value.shape} {digest}>"
    return None


def display_text(value: Any) -> str:
    """A value as a registry entry shows it (its ``repr``, an address left as it is), without
    the warning a hashed field gets."""
    text = _array_text(value) or repr(value)
    return text if len(text) <= 200 else text[:197] + "..."


def hash_values(values: dict[str, Any], what: str = "value", where: str = "") -> str:
    """The hash of named values (e.g. a function's arguments) by the rules of a parameter set's
    fields, strictly: a value that cannot be turned into stable text is an error, not a warning,
    and a function counts by its code and the values it closes over, not its name alone.

    Raises:
        HashingError: a value's text holds a memory address (it would change every run), or
            making it failed; the message names the value (``what`` says what the names are).
    """
    out = []
    for name, value in values.items():
        if value is None:
            continue
        try:
            rep = repr(value) if type(value) in _PLAIN else _strict(value)
        except HashingError:
            raise HashingError(f"The {what} '{name}'{where} ({type(value).__name__}) cannot be hashed: its text "
                               f"holds a memory address, so it would differ every run. Pass a value that prints "
                               f"the same each time (give its class a __repr__), or turn caching off "
                               f"(@cf.track(cache=False)).") from None
        except Exception as exc:
            raise HashingError(f"The {what} '{name}'{where} ({type(value).__name__}) cannot be hashed: turning "
                               f"it into text failed ({type(exc).__name__}: {exc}). Pass a value that can be "
                               f"printed, or turn caching off (@cf.track(cache=False)).") from None
        out.append(f"{len(name)}:{name}{len(rep)}:{rep}")
    return hashlib.blake2b("".join(out).encode("utf-8"), digest_size=16).hexdigest()


def _code_digest(code: Any) -> str:
    """A digest of a code object: its bytecode, names and constants (nested code objects too)."""
    h = hashlib.blake2b(digest_size=12)
    h.update(code.co_code)
    h.update(repr(code.co_names).encode())
    for constant in code.co_consts:
        h.update(_code_digest(constant).encode() if hasattr(constant, "co_code") else repr(constant).encode())
    return h.hexdigest()


def _function_text(fn: Any) -> str:
    """A plain function strictly: its qualified name, its code and the values it closes over and
    defaults to (two lambdas, or two closures made by one factory, differ)."""
    cells = tuple(cell.cell_contents for cell in fn.__closure__ or () if cell.cell_contents is not fn)
    extra = [_strict(v) for v in (*cells, *(fn.__defaults__ or ()), *(fn.__kwdefaults__ or {}).values())]
    return f"<function {fn.__module__}.{fn.__qualname__} {_code_digest(fn.__code__)} ({', '.join(extra)})>"


def _strict(value: Any) -> str:
    if isinstance(value, types.FunctionType):
        return _function_text(value)
    if isinstance(value, (list, tuple)) and not all(type(v) in _PLAIN for v in value):
        inner = ", ".join("None" if v is None else _strict(v) for v in value)
        return f"{type(value).__name__}({inner})"
    if isinstance(value, dict) and not all(type(v) in _PLAIN for v in value.values()):
        return "{" + ", ".join(f"{_strict(k)}: {'None' if v is None else _strict(v)}" for k, v in value.items()) + "}"
    if type(value) in _PLAIN:
        return repr(value)
    if callable(value) and hasattr(value, "__qualname__"):
        return _representation(value)
    text = _array_text(value)
    if text is not None:
        return text
    if _ADDRESS.search(repr(value)):
        raise HashingError("address")
    return _representation(value)


def _encode(obj: Any, prefix: str, out: list[str]) -> None:
    overrides = getattr(obj, "hash_representations", None) or {}
    for name in _hashed_field_names(type(obj)):
        value = getattr(obj, name)
        if name in overrides:
            fn = overrides[name]
            if fn is None:
                continue
            value = fn(obj, value)
            if value is None:
                continue
            rep = value if isinstance(value, str) else _representation(value)
        elif value is None:
            continue
        elif type(value) in _PLAIN:
            rep = repr(value)
        elif hasattr(type(value), "__dataclass_fields__"):
            _encode(value, f"{prefix}{name}.", out)
            continue
        else:
            rep = _representation(value)
        path = prefix + name
        out.append(f"{len(path)}:{path}{len(rep)}:{rep}")


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
    text = repr(value)
    return text if len(text) <= 200 else text[:197] + "..."
