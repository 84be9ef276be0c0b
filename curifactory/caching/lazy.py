"""``Lazy`` outputs and ``Deferred`` cache entries: values loaded when they are read."""

from __future__ import annotations

from typing import Any

from curifactory.caching.base import Cacheable
from curifactory.errors import CacheError

class Lazy:
    """An output placeholder: the value is saved, dropped from memory, loaded on access.

    Args:
        name: the output name.
        resolve: when ``False``, a stage taking this input gets the ``Lazy`` itself
            and calls ``.load()`` when it wants the value.
    """

    memoize = False

    def __init__(self, name: str, resolve: bool = True):
        self.name = name
        self.resolve = resolve
        self.cacher: Cacheable | None = None

    def load(self) -> Any:
        """Load the value through its cacher."""
        if self.cacher is None:
            raise CacheError(f"Lazy '{self.name}' has no cacher yet: its stage has not saved it.")
        self.cacher.verify_before_load()
        try:
            return self.cacher.load()
        except Exception as exc:
            path = self.cacher.cache_paths[0] if self.cacher.cache_paths else self.cacher.metadata_path()
            raise CacheError(
                f"Could not load '{self.name}' (stage '{self.cacher.stage}') from {path} with "
                f"{type(self.cacher).__name__}: {type(exc).__name__}: {exc}. Rerun that stage with "
                f"--overwrite-stage {self.cacher.stage} to rebuild the entry."
            ) from exc

    def __str__(self) -> str:
        return self.name

    def __repr__(self) -> str:
        return f"Lazy({self.name!r})"


class Deferred(Lazy):
    """A cached output that has not been loaded yet; loaded once, on first access."""

    memoize = True

    def __init__(self, name: str, cacher: Cacheable):
        super().__init__(name, resolve=True)
        self.cacher = cacher

    def __repr__(self) -> str:
        return f"<cached {self.name!r}, not loaded>"
