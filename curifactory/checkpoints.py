"""Checkpoints of long stages: progress saved while a stage runs, resumed after a kill.

A checkpoint belongs to one stage call: it is kept in ``<cache>/.checkpoints/`` under
the call's artifact key (prefix, parameter-set hash, stage) and the stage's code
fingerprint, so another parameter set or changed code never resumes it. It is removed
once the stage's outputs are committed to the cache.
"""

from __future__ import annotations

import logging
import os
import pickle
import re
import time
from typing import Any

from curifactory import fileio
from curifactory.errors import CheckpointError

logger = logging.getLogger(__name__)
FOLDER = ".checkpoints"


class Checkpoint:
    """The checkpoint of one stage call.

    Args:
        cache_path: the cache folder.
        stem: ``<prefix>_<params hash>_<stage>``, as the call's artifacts are named.
        code: the stage's code digest ("" when code changes are ignored).
        writable: False for a dry run: nothing is saved.
    """

    def __init__(self, cache_path: str, stem: str, code: str = "", writable: bool = True):
        self.folder = os.path.join(cache_path, FOLDER)
        self.stem = stem
        self.path = os.path.join(self.folder, f"{stem}_{(code or 'any')[:16]}.pkl")
        self.writable = writable
        self.last_saved = time.monotonic()
        self.saves = 0

    def save(self, state: Any, every: float = 0.0) -> bool:
        """Save ``state`` if ``every`` seconds have passed since the stage started or the last
        save; returns whether it saved.

        Raises:
            CheckpointError: ``state`` cannot be pickled, or the file cannot be written.
        """
        now = time.monotonic()
        if not self.writable or (every > 0 and now - self.last_saved < every):
            return False
        try:
            data = pickle.dumps(state, protocol=pickle.HIGHEST_PROTOCOL)
        except Exception as exc:
            raise CheckpointError(f"The checkpoint of {self.stem} cannot be pickled: {type(exc).__name__}: "
                                  f"{exc}. Checkpoint plain values (numbers, lists, dicts, arrays).") from exc
        try:
            os.makedirs(self.folder, exist_ok=True)
            fileio.atomic_write_bytes(self.path, data)
        except OSError as exc:
            raise CheckpointError(f"The checkpoint of {self.stem} cannot be written to {self.path}: "
                                  f"{exc.strerror or exc}.") from exc
        self.last_saved = now
        self.saves += 1
        return True

    def load(self, default: Any = None) -> Any:
        """The last saved state, or ``default`` when there is none (or it cannot be read)."""
        try:
            with open(self.path, "rb") as handle:
                return pickle.load(handle)
        except FileNotFoundError:
            return default
        except Exception as exc:  # written atomically, so only a damaged disk gets here
            logger.warning("The checkpoint %s cannot be read (%s: %s); the stage starts from the beginning.",
                           self.path, type(exc).__name__, exc)
            return default

    def clear(self) -> None:
        """Remove this call's checkpoints (those of older code too): its outputs are committed."""
        if not self.writable or not os.path.isdir(self.folder):
            return
        own = re.compile(re.escape(self.stem) + r"_([0-9a-f]{1,16}|any)\.pkl")
        for name in os.listdir(self.folder):
            if own.fullmatch(name):
                fileio.discard(os.path.join(self.folder, name))
