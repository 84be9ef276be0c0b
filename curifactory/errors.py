"""The single exception hierarchy of curifactory.

Every error curifactory raises on purpose derives from :class:`CurifactoryError`.
Where a built-in exception is the natural reading (a missing input is a lookup
failure), the class also derives from that built-in so existing ``except``
clauses keep working. Each message names the stage, artifact, record or file
involved and says what to do about it.
"""

from __future__ import annotations


class CurifactoryError(Exception):
    """Base class of every error curifactory raises deliberately.

    The CLI prints the message of a ``CurifactoryError`` as a one-paragraph error
    without a traceback (unless ``-v``).
    """

    exit_code: int = 1


class UsageError(CurifactoryError):
    """A user mistake on the command line or in a project layout (exit code 2)."""

    exit_code = 2


class ConfigError(UsageError):
    """Raised by :mod:`curifactory.config` when ``curifactory_config.json`` is unreadable."""


class ExperimentNotFoundError(UsageError):
    """Raised by :mod:`curifactory.experiment` when the experiment module is missing."""


class ParamsNotFoundError(UsageError):
    """Raised by :mod:`curifactory.experiment` when a ``-p`` parameter file is missing."""


class ParamsError(UsageError, RuntimeError):
    """Raised when ``get_params()`` returns something other than a list of parameter sets,
    or when a name/index selection matches no parameter set (also a ``RuntimeError``, which
    0.20 raised)."""


class StageDefinitionError(CurifactoryError, TypeError):
    """Base of the errors raised by ``@stage``/``@aggregate`` when the decorator is applied."""


class InputSignatureError(StageDefinitionError):
    """Raised when a stage's declared inputs don't match its function's parameters."""


class OutputSignatureError(CurifactoryError):
    """Raised when a stage returns a different number of values than it declares outputs."""


class EmptyCachersError(StageDefinitionError):
    """Raised by ``@stage(cachers=[])``: use ``cachers=None`` for no caching."""


class CachersMismatchError(StageDefinitionError):
    """Raised when a stage's cachers list is not as long as its outputs list."""


class MissingInputError(CurifactoryError, KeyError):
    """Raised by the executor when a stage input is not in the record's state.

    Also a :class:`KeyError`, as in curifactory 0.20.
    """

    def __init__(self, stage: str, input_name: str, record: str, available: list[str], suppressed: bool = False):
        self.stage = stage
        self.input_name = input_name
        self.record = record
        self.available = available
        have = ", ".join(repr(a) for a in available) or "nothing yet"
        fix = (f"give '{input_name}' a default value in the function signature (the stage uses "
               f"suppress_missing_inputs=True)" if suppressed else
               f"use suppress_missing_inputs=True with a default value for '{input_name}'")
        message = (
            f"Stage '{stage}' needs input '{input_name}', but record {record} has no "
            f"'{input_name}' in its state (it holds {have}). Run the stage that outputs "
            f"'{input_name}' on this record first, or pass it as a keyword argument, or {fix}."
        )
        super().__init__(message)

    def __str__(self) -> str:  # KeyError would quote the message otherwise
        return str(self.args[0])


class CacheError(CurifactoryError):
    """Raised when a cacher cannot save or load an artifact; names the cacher and file."""


class NameTooLongError(CacheError):
    """An artifact's cache file name is longer than file systems allow; raised before any stage runs."""


class CheckpointError(CurifactoryError):
    """A stage's checkpoint cannot be saved (e.g. its state cannot be pickled) or is asked for
    outside a stage."""


class StageExecutionError(CurifactoryError):
    """Raised by :func:`curifactory.experiment.run_experiment` when a stage raised.

    The original exception is chained as ``__cause__``.
    """


class StoreError(CurifactoryError):
    """Raised when ``store.json`` or ``params_registry.json`` cannot be read or written."""


class NestedStageError(CurifactoryError):
    """Raised when a stage calls another stage directly, which hides it from the DAG."""


class RunFolderExistsError(CurifactoryError, FileExistsError):
    """Raised by :func:`curifactory.runfolder.create_run_dir` when the ``--store-full``
    folder of a run already exists: an earlier run folder is never overwritten."""


class TrackingError(CurifactoryError, ValueError):
    """Raised by ``record.log_metric`` and the other tracking calls: a metric that is not a
    number, an empty name, logging outside a stage or after the run ended. Also a
    :class:`ValueError`."""


class HashingError(CurifactoryError, TypeError):
    """A value that must be hashed (a ``@cf.track`` function's argument) cannot be turned into
    stable text; the message names it. Also a :class:`TypeError`."""


class RunNotFoundError(UsageError, LookupError):
    """A run reference (``curifactory show REF``, ``cf.diff_runs``) names no run, or more than one."""


class CacheWarning(UserWarning):
    """Warned by the executor when a cache entry is corrupt or incomplete and its
    stage is recomputed (also logged; the CLI shows the log line instead)."""
