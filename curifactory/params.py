"""Parameter sets: the dataclass base users subclass, and hash overrides."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Optional

HashFunction = Optional[Callable[[Any, Any], Any]]


@dataclass
class ExperimentParameters:
    """Base class of a parameter set. Subclass it as a ``@dataclass``.

    Attributes:
        name: a human-readable name; it does not count in the hash.
        hash: the parameter set's hash; computed on first use, or set by hand to
            pin it.
        overwrite: recompute every stage for this set instead of using the cache.
        hash_representations: per-field overrides of how a value is hashed (see
            :func:`set_hash_functions`).
    """

    name: str = "UNNAMED"
    hash: Optional[str] = None
    overwrite: bool = False
    hash_representations: dict = field(default_factory=dict, repr=False)

    def params_hash(self, dry: bool = False) -> Any:
        """The set's hash (0.20's helper); with ``dry``, what each field is hashed by instead:
        ``{field: (how, value)}`` (:func:`curifactory.hashing.get_param_set_hash_values`)."""
        from curifactory import hashing

        if dry:
            return hashing.get_param_set_hash_values(self)
        return hashing.hash_param_set(self)


def set_hash_functions(*args: Any, **kwargs: HashFunction) -> Any:
    """Declare how some fields are hashed; use as the ``hash_representations`` default.

    Each keyword names a field; its value is ``fn(param_set, value)`` returning what
    to hash for that field, or ``None`` to leave the field out of the hash::

        hash_representations: dict = cf.set_hash_functions(seed=None, model=lambda p, m: m.name)
    """
    overrides: dict[str, HashFunction] = {}
    for arg in args:
        overrides.update(dict(arg))
    overrides.update(kwargs)
    return field(default_factory=lambda: dict(overrides), repr=False)
