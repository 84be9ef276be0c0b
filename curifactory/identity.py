"""Who a run is: its experiment name, run number and timestamp, and the reference built from them."""

from __future__ import annotations

import datetime
import functools

TIMESTAMP_FORMAT = "%Y-%m-%d-T%H%M%S"


@functools.lru_cache(maxsize=64)
def str_timestamp(timestamp: datetime.datetime) -> str:
    """A run timestamp as used in references: ``YYYY-MM-DD-THHMMSS``."""
    return timestamp.strftime(TIMESTAMP_FORMAT)


@functools.lru_cache(maxsize=64)
def reference_name(experiment_name: str, run_number: int, timestamp: datetime.datetime) -> str:
    """``<experiment>_<run number>_<timestamp>``: names the run's store entry, log, report and folder."""
    return f"{experiment_name}_{run_number}_{str_timestamp(timestamp)}"
