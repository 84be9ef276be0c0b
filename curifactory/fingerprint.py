"""Code fingerprints: a hash of what a stage's code is, following the helpers it reaches.

A stage's fingerprint covers its own normalised code (the syntax tree without
docstrings, comments or formatting) and, transitively, every project-local
function, method, class and module-level constant it reaches by name, its default
arguments and the values its closures captured. *Project-local* means defined in a
file under the project root (not in site-packages, the standard library or
curifactory itself), or in ``__main__`` / a notebook cell. Covering a class covers
all its methods (so calls through ``self`` are covered) and its project-local bases.

What cannot be read (a function built in C, generated at run time, a lambda typed
in a REPL) is listed as *not covered* and logged once at debug level; a fingerprint
never fails a run. Cycles between helpers terminate. The only I/O is reading
source text through :mod:`linecache`, once per file and process; fingerprints are
computed once per function and process.
"""

from __future__ import annotations

import ast
import dataclasses
import enum
import functools
import hashlib
import inspect
import linecache
import logging
import os
import sys
import types
import weakref
from dataclasses import dataclass, field
from typing import Any, Callable

logger = logging.getLogger(__name__)

_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))
_LIBRARY_MARKERS = (os.sep + "site-packages" + os.sep, os.sep + "dist-packages" + os.sep)
_STDLIB_DIRS = tuple({os.path.realpath(os.path.dirname(os.__file__))})


@dataclass(frozen=True)
class Helper:
    """One covered piece of code: ``module.qualname``, ``file:line`` and its digest."""

    name: str
    where: str
    digest: str
    kind: str = "helper"  # "stage", "helper", "class" or "constant"


@dataclass(frozen=True)
class Fingerprint:
    """A stage's code fingerprint.

    Attributes:
        digest: the hash of everything covered (or of ``version`` when pinned).
        helpers: what it covers, the stage itself first.
        not_covered: names of project-local code whose source could not be read.
        version: the stage's pinned version, if any (it replaces the code part).
    """

    digest: str
    helpers: tuple[Helper, ...] = ()
    not_covered: tuple[str, ...] = ()
    version: str | None = None

    def as_metadata(self) -> dict[str, Any]:
        """The ``code`` block of an artifact's metadata (made once per fingerprint)."""
        return self._metadata

    @functools.cached_property
    def _metadata(self) -> dict[str, Any]:
        return {"digest": self.digest, "version": self.version,
                "helpers": {h.name: [h.digest, h.where, h.kind] for h in self.helpers},
                "not_covered": list(self.not_covered)}

    def change_since(self, stored: dict[str, Any]) -> str:
        """What changed since the fingerprint ``stored`` in metadata ("" if nothing did)."""
        if not isinstance(stored, dict) or stored.get("digest") in (None, self.digest):
            return ""
        if self.version is not None or stored.get("version") is not None:
            return f"version {stored.get('version')!r} -> {self.version!r}"
        old = stored.get("helpers") or {}
        for helper in self.helpers:
            before = old.get(helper.name)
            short = helper.name.rsplit(".", 1)[-1] if helper.kind != "stage" else helper.name.split(".")[-1]
            if before is None:
                return f"{helper.kind} '{short}' ({helper.where}) is new"
            if before[0] != helper.digest:
                return f"code of {helper.kind} '{short}' ({helper.where}) changed"
        gone = [name for name in old if name not in {h.name for h in self.helpers}]
        if gone:
            return f"helper '{gone[0].rsplit('.', 1)[-1]}' is no longer used"
        return "its code changed"


def fingerprint(function: Callable[..., Any], root: str, version: str | None = None) -> Fingerprint:
    """The fingerprint of ``function`` (a stage's undecorated function) in the project at ``root``."""
    try:
        return _fingerprint(function, _real(root), version)
    except Exception as exc:  # fingerprinting must never fail a run
        logger.debug("could not fingerprint %r: %s", function, exc, exc_info=True)
        name = getattr(function, "__qualname__", repr(function))
        return Fingerprint(_digest("uncovered", name), (), (name,), version)


_Probe = tuple[dict[str, Any], str, Any]
_KNOWN: weakref.WeakKeyDictionary[Any, dict[tuple[str, str | None], tuple[Fingerprint, tuple[_Probe, ...]]]] = \
    weakref.WeakKeyDictionary()
"""Fingerprints made in this process, with the name bindings they were made from: a
notebook cell that redefines a helper, or a reloaded module, rebinds one of those
names, and the fingerprint is made again."""


def _fingerprint(function: Callable[..., Any], root: str, version: str | None) -> Fingerprint:
    known = _KNOWN.get(function)
    entry = known.get((root, version)) if known is not None else None
    if entry is not None and all(space.get(name, _MISSING) is value for space, name, value in entry[1]):
        return entry[0]
    if version is not None:
        made, probes = Fingerprint(_digest("version", str(version)), (), (), str(version)), ()
    else:
        walk = _Walk(root)
        walk.cover(inspect.unwrap(function), kind="stage")
        parts = [f"{h.kind}:{h.name}:{h.digest}" for h in walk.helpers]
        made = Fingerprint(_digest(*parts, *walk.not_covered), tuple(walk.helpers), tuple(walk.not_covered))
        probes = tuple(walk.probes)
    try:
        _KNOWN.setdefault(function, {})[(root, version)] = (made, probes)
    except TypeError:  # not weak-referenceable: not kept
        pass
    return made


@functools.lru_cache(maxsize=4096)
def _real(path: str) -> str:
    return os.path.realpath(path)


def _digest(*parts: str) -> str:
    return hashlib.blake2b("\0".join(parts).encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()


# -- reading source -------------------------------------------------------------------------
@dataclass
class _Source:
    """One file's syntax tree (docstrings removed) indexed by qualified name and by line."""

    tree: ast.Module
    by_name: dict[str, ast.AST] = field(default_factory=dict)
    by_line: dict[int, ast.AST] = field(default_factory=dict)


@functools.lru_cache(maxsize=None)
def _source(filename: str, stamp: tuple[int, int] | None) -> _Source | None:
    lines = linecache.getlines(filename)
    if not lines:
        return None
    source = _Source(ast.parse("".join(lines), filename))
    _index(source, source.tree, [])
    return source


def _source_of(filename: str) -> _Source | None:
    try:
        info = os.stat(filename)
        stamp: tuple[int, int] | None = (info.st_mtime_ns, info.st_size)
        linecache.checkcache(filename)
    except OSError:
        stamp = None  # a notebook cell or other source linecache holds itself
    return _source(filename, stamp)


_BODIES = ("body", "orelse", "handlers", "finalbody", "cases")


def _index(source: _Source, node: ast.AST, stack: list[str]) -> None:
    """Index the functions and classes in ``node``'s statement bodies (expressions are not
    visited: lambdas are found on demand), removing docstrings on the way."""
    if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and _has_docstring(node):
        node.body = node.body[1:] or [ast.Pass()]
    for field_name in _BODIES:
        for child in getattr(node, field_name, None) or ():
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                qualname = ".".join([*stack, child.name])
                source.by_name.setdefault(qualname, child)
                first = min([child.lineno, *(d.lineno for d in child.decorator_list)])
                source.by_line.setdefault(first, child)
                inner = [*stack, child.name] + ([] if isinstance(child, ast.ClassDef) else ["<locals>"])
                _index(source, child, inner)
            elif isinstance(child, ast.AST):
                _index(source, child, stack)


def _lambda_at(source: _Source, line: int) -> ast.AST | None:
    for node in ast.walk(source.tree):
        if isinstance(node, ast.Lambda) and node.lineno == line:
            return node
    return None


def _has_docstring(node: ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    first = node.body[0] if node.body else None
    return isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str)


# -- walking what a function reaches -----------------------------------------------------------
class _Walk:
    """One fingerprint's traversal: what it covered so far, and what it could not."""

    def __init__(self, root: str):
        self.root = root
        self.seen: set[int] = set()
        self.helpers: list[Helper] = []
        self.not_covered: list[str] = []
        self.probes: list[_Probe] = []  # (namespace, name, value) bindings the walk relied on

    def local(self, obj: Any) -> bool:
        """Whether ``obj`` is the project's own code."""
        module = getattr(obj, "__module__", None)
        if module == "__main__":
            return True
        filename = _file_of(obj)
        if not filename or filename.startswith("<"):
            return False
        path = _real(filename)
        if path.startswith(_PACKAGE_DIR + os.sep) or any(m in path for m in _LIBRARY_MARKERS):
            return False
        if any(path.startswith(d + os.sep) for d in _STDLIB_DIRS):
            return False
        return path.startswith(self.root + os.sep)

    def generated(self, obj: Any, user: Any) -> bool:
        """Code made at run time (``eval``, ``exec``: no file) by or for the project's own code."""
        filename = _file_of(obj) or ""
        return filename.startswith("<") and (self.local(user) or getattr(obj, "__module__", None) is None)

    def where(self, filename: str, line: int) -> str:
        path = _real(filename)
        shown = os.path.relpath(path, self.root) if path.startswith(self.root + os.sep) else filename
        return f"{shown}:{line}"

    def cover(self, obj: Any, kind: str = "helper") -> None:
        """Add ``obj`` (a function or class) and what it reaches."""
        if id(obj) in self.seen:
            return
        self.seen.add(id(obj))
        name = f"{getattr(obj, '__module__', '?')}.{getattr(obj, '__qualname__', repr(obj))}"
        node, filename = self.node_of(obj)
        if node is None:
            self.not_covered.append(name)
            logger.debug("code fingerprint: cannot read the source of %s; it is not covered", name)
            return
        extra = _function_values(obj) if inspect.isfunction(obj) else ""
        line = getattr(node, "lineno", 0)
        text, names = _read_node(node)
        self.helpers.append(Helper(name, self.where(filename, line), _digest(text, extra),
                                   "class" if inspect.isclass(obj) else kind))
        self.follow(obj, names)

    def node_of(self, obj: Any) -> tuple[ast.AST | None, str]:
        filename = _file_of(obj)
        source = _source_of(filename) if filename else None
        if source is None:
            return None, filename or ""
        if inspect.isfunction(obj) and obj.__name__ == "<lambda>":
            return _lambda_at(source, obj.__code__.co_firstlineno), filename
        node = source.by_name.get(obj.__qualname__)
        if node is None and inspect.isfunction(obj):
            node = source.by_line.get(obj.__code__.co_firstlineno)
        return node, filename

    def follow(self, obj: Any, names: list[str]) -> None:
        """Cover what ``names`` (read by ``obj``'s code) point at, in ``obj``'s namespace."""
        namespace = _namespace(obj)
        if inspect.isclass(obj):
            for base in obj.__mro__[1:]:
                if self.local(base):
                    self.cover(base)
        elif "." in obj.__qualname__ and "<locals>" not in obj.__qualname__.rsplit(".", 1)[0]:
            owner, _, _ = _resolve(namespace, obj.__qualname__.rsplit(".", 1)[0])
            if inspect.isclass(owner) and self.local(owner):
                self.cover(owner)  # a method: its class (and so calls through self) is covered
        for dotted in names:
            head = namespace.get(dotted.split(".", 1)[0], _MISSING)
            if inspect.ismodule(head) and not self.local_module(head):
                continue  # a library's module: nothing of the project's is reached through it
            target, owner, dotted = _resolve(namespace, dotted)
            if target is _MISSING:
                continue
            self.probe(obj, dotted, owner, target)
            # a constant counts only as a global of the project's own code (not e.g. os.environ)
            constants = owner is None or (inspect.ismodule(owner) and self.local_module(owner))
            self.reach(target, dotted, namespace, obj, constants)

    def probe(self, obj: Any, dotted: str, owner: Any, target: Any) -> None:
        """Remember the binding ``dotted`` resolved through (a module's or the globals' entry)."""
        if owner is None:
            space = getattr(obj, "__globals__", None) if inspect.isfunction(obj) else None
            if space is None:
                module = sys.modules.get(getattr(obj, "__module__", "") or "")
                space = vars(module) if module is not None else None
            name = dotted.split(".", 1)[0]
            if space is not None and name in space:
                self.probes.append((space, name, space[name]))
        elif inspect.ismodule(owner):
            name = dotted.rsplit(".", 1)[-1]
            self.probes.append((vars(owner), name, vars(owner).get(name, _MISSING)))

    def local_module(self, module: types.ModuleType) -> bool:
        """Whether a module (or package) is the project's: its file, or a package's folder, is under the root."""
        if module.__name__ == "__main__":
            return True
        filename = getattr(module, "__file__", None)
        if filename:
            return self.local(types.SimpleNamespace(__module__=module.__name__))
        paths = list(getattr(module, "__path__", None) or ())  # a namespace package
        return any(_real(p).startswith(self.root + os.sep) for p in paths)

    def reach(self, target: Any, dotted: str, namespace: dict[str, Any], user: Any, constants: bool = True) -> None:
        if isinstance(target, (staticmethod, classmethod)):
            target = target.__func__
        if isinstance(target, types.MethodType):
            target = target.__func__
        if isinstance(target, functools.partial):
            self.reach(target.func, dotted, namespace, user, constants)
            return
        if inspect.isfunction(target):
            target = inspect.unwrap(target)
        if inspect.isfunction(target) or inspect.isclass(target):
            if self.local(target):
                self.cover(target)
            elif self.generated(target, user):
                name = f"{getattr(target, '__module__', '?')}.{getattr(target, '__qualname__', dotted)}"
                if name not in self.not_covered:
                    self.not_covered.append(name)
                    logger.debug("code fingerprint: %s was made at run time (no source); it is not covered", name)
        elif constants and not inspect.ismodule(target) and not callable(target) and self.local(user):
            self.constant(dotted, target, user)

    def constant(self, dotted: str, value: Any, user: Any) -> None:
        module = getattr(user, "__module__", "?")
        name = f"{module}.{dotted}"
        if any(h.name == name for h in self.helpers):
            return
        text = _literal_text(value)
        if text is None:  # a logger, a client, a lock...: state at run time, not code
            if name not in self.not_covered:
                self.not_covered.append(f"{name} (a {type(value).__qualname__}: only values are hashed)")
            return
        filename = _file_of(user) or ""
        self.helpers.append(Helper(name, self.where(filename, 0).rsplit(":", 1)[0], _digest(text), "constant"))


_MISSING = object()


def _file_of(obj: Any) -> str | None:
    code = getattr(obj, "__code__", None)
    if code is not None:
        return str(code.co_filename)
    module = sys.modules.get(getattr(obj, "__module__", "") or "")
    return getattr(module, "__file__", None)


def _namespace(obj: Any) -> dict[str, Any]:
    if inspect.isfunction(obj):
        if not obj.__closure__:
            return obj.__globals__  # read only
        names = dict(obj.__globals__)
        if obj.__closure__:
            for var, cell in zip(obj.__code__.co_freevars, obj.__closure__):
                try:
                    names[var] = cell.cell_contents
                except ValueError:  # an empty cell
                    pass
        return names
    module = sys.modules.get(getattr(obj, "__module__", "") or "")
    return vars(module) if module is not None else {}


def _resolve(namespace: dict[str, Any], dotted: str) -> tuple[Any, Any, str]:
    """The object ``dotted`` names, following attributes of modules and classes only, the
    module or class it was found in (None for a name of ``namespace`` itself), and the
    part of ``dotted`` that named it (``log`` of ``log.info`` when ``log`` is a value).

    Attributes are read from ``__dict__`` (no ``getattr``), so a module's lazy
    ``__getattr__`` or a class's descriptors never run during fingerprinting.
    """
    head, *rest = dotted.split(".")
    if head not in namespace:
        return _MISSING, None, head
    value, owner, consumed = namespace[head], None, [head]
    for part in rest:
        if inspect.ismodule(value):
            found = vars(value).get(part, _MISSING)
        elif inspect.isclass(value):
            found = next((vars(k)[part] for k in value.__mro__ if part in vars(k)), _MISSING)
        else:
            break
        if found is _MISSING:
            return _MISSING, None, dotted
        owner, value = value, found
        consumed.append(part)
    return value, owner, ".".join(consumed)


def _read_node(node: ast.AST) -> tuple[str, list[str]]:
    """``node`` as canonical text (what its digest is made of: no line numbers, comments or
    formatting) and the names and dotted names it reads without binding them itself."""
    out: list[str] = []
    bound: set[str] = set()
    used: dict[str, str] = {}  # dotted name -> its head
    inner: set[int] = set()  # Name/Attribute nodes inside a longer dotted name

    def visit(item: Any) -> None:
        if isinstance(item, ast.AST):
            if isinstance(item, ast.Name):
                if not isinstance(item.ctx, ast.Load):
                    bound.add(item.id)
                elif id(item) not in inner:
                    used.setdefault(item.id, item.id)
            elif isinstance(item, ast.arg):
                bound.add(item.arg)
            elif isinstance(item, ast.Attribute) and id(item) not in inner and isinstance(item.ctx, ast.Load):
                _note_dotted(item, inner, used)
            out.append(type(item).__name__)
            out.append("(")
            for name in item._fields:
                value = getattr(item, name, None)
                if value is not None and value != []:
                    out.append(name)
                    visit(value)
            out.append(")")
        elif isinstance(item, list):
            out.append("[")
            for element in item:
                visit(element)
                out.append(",")
            out.append("]")
        else:
            out.append(repr(item))

    visit(node)
    return "".join(out), [dotted for dotted, head in used.items() if head not in bound]


def _note_dotted(node: ast.Attribute, inner: set[int], used: dict[str, str]) -> None:
    parts = [node.attr]
    current = node.value
    while isinstance(current, ast.Attribute):
        inner.add(id(current))
        parts.append(current.attr)
        current = current.value
    if isinstance(current, ast.Name):
        inner.add(id(current))
        used.setdefault(".".join([current.id, *reversed(parts)]), current.id)


def _function_values(function: types.FunctionType) -> str:
    """Default arguments and captured non-code values, as text."""
    parts = [_value_text(function.__defaults__), _value_text(function.__kwdefaults__)]
    for var, cell in zip(function.__code__.co_freevars, function.__closure__ or ()):
        try:
            value = cell.cell_contents
        except ValueError:
            continue
        if not (inspect.isfunction(value) or inspect.isclass(value) or inspect.ismodule(value)):
            parts.append(f"{var}={_value_text(value)}")
    return "|".join(parts)


def _value_text(value: Any) -> str:
    """A default argument or captured value as text: its content when it is a plain value
    (see :func:`_literal_text`), else only its type (its state is not code)."""
    text = _literal_text(value)
    return text if text is not None else f"<{type(value).__module__}.{type(value).__qualname__}>"


_SCALARS = (type(None), bool, int, float, complex, str, bytes)


def _literal_text(value: Any, depth: int = 0) -> str | None:
    """Plain values as canonical text: scalars, containers of them (sets sorted, so the
    text never depends on ``PYTHONHASHSEED``), enums, dataclass instances, arrays (dtype,
    shape and bytes). None for anything else."""
    if depth > 20:
        return None
    if isinstance(value, _SCALARS):
        try:
            return f"{type(value).__name__}:{value!r}"
        except ValueError:  # an int past the digit limit
            return f"int:{hashlib.blake2b(value.to_bytes((value.bit_length() + 8) // 8, 'big', signed=True)).hexdigest()}"
    if isinstance(value, enum.Enum):
        return f"{type(value).__qualname__}.{value.name}"
    if isinstance(value, (list, tuple, set, frozenset)):
        items = [_literal_text(item, depth + 1) for item in value]
        if any(item is None for item in items):
            return None
        if isinstance(value, (set, frozenset)):
            items = sorted(items)  # type: ignore[arg-type]
        return f"{type(value).__name__}[{','.join(items)}]"  # type: ignore[arg-type]
    if isinstance(value, dict):
        pairs = [(_literal_text(k, depth + 1), _literal_text(v, depth + 1)) for k, v in value.items()]
        if any(k is None or v is None for k, v in pairs):
            return None
        return "dict{" + ",".join(sorted(f"{k}:{v}" for k, v in pairs)) + "}"
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = {f.name: getattr(value, f.name, None) for f in dataclasses.fields(value)}
        inner = _literal_text(fields, depth + 1)
        return None if inner is None else f"{type(value).__qualname__}{inner}"
    if all(hasattr(value, a) for a in ("dtype", "shape", "tobytes")) and not callable(getattr(value, "shape")):
        try:
            data = value.tobytes()
        except Exception:
            return None
        return f"array({value.dtype},{tuple(value.shape)},{hashlib.blake2b(data, digest_size=16).hexdigest()})"
    return None
