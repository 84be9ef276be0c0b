"""The parsers of the ``experiment`` and ``curifactory`` commands (standard library only)."""

from __future__ import annotations

import argparse
from typing import Any

from curifactory.cli.common import EDIT_NOTES, VERSION

# -- parsers ------------------------------------------------------------------------------


def build_experiment_parser() -> argparse.ArgumentParser:
    """The parser of ``experiment NAME [flags]``."""
    parser = argparse.ArgumentParser(
        prog="experiment",
        usage="experiment NAME [options]\n       experiment ls [--names {experiments,params}]\n"
              "       experiment reports [--host HOST] [--port PORT] [--update]",
        description="Run experiments/NAME.py with parameter sets from params/ (see 'experiment ls').",
        epilog="'experiment ls' lists experiments and parameter files; 'experiment reports' serves the reports.",
    )
    parser.add_argument("experiment", metavar="NAME", help="the experiment module to run (experiments/NAME.py)")
    parser.add_argument("--version", action="version", version=VERSION)
    _add_selection_flags(parser.add_argument_group("parameter sets"))
    _add_cache_flags(parser.add_argument_group("cache and run"))
    _add_output_flags(parser.add_argument_group("records and output"))
    _add_inspect_flags(parser.add_argument_group("inspect without running (imply --dry)"))
    _add_display_flags(parser.add_argument_group("display"))
    return parser


def _add_selection_flags(group: Any) -> None:
    group.add_argument("-p", "--params", action="append", metavar="FILE", dest="params",
                       help="a parameter file (params/FILE.py, else experiments/FILE.py) whose get_params() "
                            "gives the sets, or params/FILE.yaml (a list, base/grid/random blocks); "
                            "repeatable. Default: the experiment's own get_params()")
    group.add_argument("-n", "--names", action="append", metavar="NAME", dest="names",
                       help="run only the parameter sets with this name; repeatable")
    group.add_argument("--indices", action="append", metavar="A-B",
                       help="run only these sets of each parameter file: an index or an end-exclusive range; "
                            "repeatable or comma-separated")
    group.add_argument("--global-indices", action="append", metavar="A-B",
                       help="like --indices, over all parameter files' sets in order")
    group.add_argument("--set", action="append", metavar="FIELD=VALUE", dest="overrides",
                       help="set a field of every loaded set (dotted for nested sets, typed by the field: "
                            "--set lr=0.01 --set model.depth=3); applied last, it wins over the files")
    group.add_argument("--params-from", metavar="REF[:SET]",
                       help="run the parameter sets of an earlier run (or only its set SET) instead of -p files")
    group.add_argument("--original-run", metavar="REF", help="the run this one repeats (set by 'curifactory rerun')")


def _add_cache_flags(group: Any) -> None:
    group.add_argument("-c", "--cache", metavar="DIR", help="the cache folder to use instead of the configured one")
    group.add_argument("-s", "--store-full", action="store_true",
                       help="also copy every artifact, the environment and the report into data/runs/<ref>/")
    group.add_argument("--docker", action="store_true",
                       help="also write a Docker build context of the run (implies --store-full) and build "
                            "the image when docker is on PATH")
    group.add_argument("--dry", action="store_true",
                       help="run without writing anything: no cache, store, log or report")
    group.add_argument("--dry-cache", action="store_true",
                       help="run without writing cache entries (the store, log and report are written)")
    group.add_argument("--overwrite", action="store_true", help="recompute every stage, ignoring the cache")
    group.add_argument("--overwrite-stage", action="append", metavar="STAGE",
                       help="recompute this stage and every stage downstream of it; repeatable")
    group.add_argument("--code-changes", choices=("rerun", "warn", "ignore"),
                       help="when a stage's code changed since its cache entry was written: rerun it "
                            "(default), use the entry with a warning, or ignore code (as 0.20)")
    group.add_argument("--prefix", metavar="PREFIX", help="artifact file prefix instead of the experiment name")
    group.add_argument("--lazy", action="store_true",
                       help="make every stage output Lazy (saved, dropped from memory, loaded on access)")
    group.add_argument("--ignore-lazy", action="store_true", help="keep every output in memory, even Lazy ones")
    group.add_argument("--no-dag", action="store_true",
                       help="do not map the experiment first; each stage decides from the cache as it is called")
    group.add_argument("--parallel", type=_positive_int, metavar="N",
                       help="run the parameter sets in N worker processes")
    group.add_argument("--executor", choices=("in-process", "process-pool", "dask"),
                       help="where stage calls run: here, forked workers (like --parallel), or a task per distinct "
                            "stage call on Dask (pip install 'curifactory[dask]'; a local cluster of --parallel N "
                            "workers unless --scheduler)")
    group.add_argument("--scheduler", metavar="ADDRESS",
                       help="with --executor dask: the scheduler to use, e.g. tcp://HOST:8786 (default: "
                            "\"dask\": {\"scheduler\": ...} in curifactory_config.json, else a local cluster)")
    group.add_argument("--parallel-safe", action="store_true",
                       help="lock each artifact while it is computed, for experiments started several times at once")


def _add_output_flags(group: Any) -> None:
    group.add_argument("--notes", nargs="?", const=EDIT_NOTES, metavar="TEXT",
                       help="notes stored with the run; without TEXT, opens $EDITOR (or asks) on a terminal")
    group.add_argument("--tag", action="append", type=tag_pair, metavar="KEY=VALUE",
                       help="tag the run (a column of 'curifactory runs' and cf.load_runs); repeatable")
    group.add_argument("--notebook", action="store_true", help="also write a notebook that loads this run")
    group.add_argument("--no-log", action="store_true", help="do not write logs/<ref>.log")
    group.add_argument("--log-errors", action="store_true", help="write the traceback of a failure into the log")
    group.add_argument("--all-loggers", action="store_true",
                       help="log every library's messages, not only curifactory's and the project's")
    group.add_argument("--no-report", action="store_true", help="do not write the HTML report")


def _add_inspect_flags(group: Any) -> None:
    group.add_argument("--map", action="store_true",
                       help="print the planned stage calls of each record: run (and why) or cached")
    group.add_argument("--explain", action="store_true",
                       help="print why each stage call will run or is cached, with what changed: parameters, "
                            "code, input content, overwrite flags")
    group.add_argument("--hashes", action="store_true", help="print the name and hash of each parameter set")
    group.add_argument("--print-params", nargs="?", const="", metavar="NAME|HASH",
                       help="print the values of every parameter set, or of the one with this name or hash prefix")
    group.add_argument("--paths", action="store_true",
                       help="print the artifact path each stage call will write or read")


def _add_display_flags(group: Any) -> None:
    group.add_argument("-v", "--verbose", action="store_true",
                       help="log at INFO on the console (DEBUG in the log file) and show tracebacks")
    group.add_argument("--quiet", action="store_true", help="print only errors and the report path")
    group.add_argument("--progress", action="store_true", help="show the live progress bar even without a terminal")
    group.add_argument("--plain", action="store_true", help="plain progress lines instead of the live progress bar")
    group.add_argument("--no-color", action="store_true", help="no colors in the progress display")


def tag_pair(text: str) -> tuple[str, str]:
    """``KEY=VALUE`` -> ``(KEY, VALUE)`` (the value may be empty, the key may not)."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"{text!r} is not KEY=VALUE (e.g. --tag model=ridge)")
    return key.strip(), value


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"a TCP port is a whole number from 0 to 65535, not {text!r}")
    return value


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number of workers, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected at least 1 worker, got {value}")
    return value


def build_ls_parser() -> argparse.ArgumentParser:
    """The parser of ``experiment ls``."""
    parser = argparse.ArgumentParser(prog="experiment ls",
                                     description="List the project's experiments and parameter files.")
    parser.add_argument("--names", choices=("experiments", "params"),
                        help="print only the names of experiments or parameter files, one a line")
    return parser


def build_reports_parser() -> argparse.ArgumentParser:
    """The parser of ``experiment reports``."""
    parser = argparse.ArgumentParser(prog="experiment reports", description="Serve the reports folder over HTTP.")
    parser.add_argument("--host", default="127.0.0.1", help="the address to bind (default: %(default)s)")
    parser.add_argument("--port", type=_port, default=8080, help="the port, 0 to 65535; 0 picks a free one "
                                                                 "(default: %(default)s)")
    parser.add_argument("--update", action="store_true", help="rebuild the run index from the store first")
    return parser


def build_curifactory_parser() -> argparse.ArgumentParser:
    """The parser of ``curifactory init`` and ``curifactory completion``."""
    parser = argparse.ArgumentParser(prog="curifactory", description="Set up a curifactory project.")
    parser.add_argument("--version", action="version", version=VERSION)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    init = commands.add_parser("init", help="create curifactory_config.json, the folders and the style sheet")
    init.add_argument("-y", "--yes", action="store_true", help="use the defaults without asking")
    init.add_argument("--git", action="store_true", help="run 'git init' when the folder is not a repository")
    init.add_argument("--no-docker", dest="docker", action="store_false",
                      help="do not create the docker folder (docker/dockerfile)")
    completion = commands.add_parser("completion", help="print a shell completion script")
    completion.add_argument("shell", choices=("bash", "zsh"), nargs="?")
    completion.add_argument("--bash", dest="shell_flag", action="store_const", const="bash",
                            help="the bash script (as 0.20's 'curifactory completion --bash')")
    completion.add_argument("--zsh", dest="shell_flag", action="store_const", const="zsh", help="the zsh script")
    why = commands.add_parser("why", help="say why a stage ran (or was cached) in a past run")
    why.add_argument("reference", metavar="REF", help="the run: its reference, a unique prefix of it "
                                                      "(e.g. polyfit_3), EXPERIMENT#N or 'latest'")
    why.add_argument("stage", metavar="STAGE", help="the stage")
    why.add_argument("record", metavar="RECORD", nargs="?",
                     help="only this record: its index, parameter set name or hash prefix")
    _add_tracking_commands(commands)
    _add_cache_commands(commands)
    return parser


def _add_cache_commands(commands: Any) -> None:
    cache = commands.add_parser("cache", help="look after the cache: status, verify, gc")
    actions = cache.add_subparsers(dest="action", metavar="ACTION", required=True)
    status = actions.add_parser("status", help="entries and bytes per experiment and stage, and what needs attention")
    status.add_argument("--format", choices=("text", "json"), default="text")
    verify = actions.add_parser("verify", help="re-hash every entry against its metadata")
    verify.add_argument("--fix", action="store_true",
                        help="move every entry that fails to <cache>/.quarantine/, so the next run recomputes it")
    gc = actions.add_parser("gc", help="delete the entries no kept, pinned, --store-full or running run uses")
    gc.add_argument("--keep-last", type=int, metavar="N",
                    help="keep the entries of the newest N runs of each experiment (others may go)")
    gc.add_argument("--older-than", type=float, metavar="DAYS",
                    help="only delete entries made more than DAYS days ago; runs started since are kept")
    gc.add_argument("--max-size", metavar="SIZE",
                    help="delete the oldest deletable entries only until the cache is at most SIZE (e.g. 20G); "
                         "keeps the newest run of each experiment unless --keep-last says otherwise")
    gc.add_argument("--dry-run", action="store_true", help="print what would be deleted, delete nothing")
    for parser in (status, gc):
        parser.add_argument("--limit", type=int, default=20, metavar="N",
                            help="list at most N entries per section (0: all; default 20)")
    for parser in (status, verify, gc):
        parser.add_argument("--cache", metavar="DIR", help="this cache folder instead of the project's")
        parser.add_argument("-v", "--verbose", action="store_true", help="print the traceback of an error")
    pin = commands.add_parser("pin", help="keep a run's cache entries through 'cache gc' (no REF: list pins)")
    pin.add_argument("reference", metavar="REF", nargs="?", help=REF_HELP)
    unpin = commands.add_parser("unpin", help="let 'cache gc' delete a pinned run's entries again")
    unpin.add_argument("reference", metavar="REF", help=REF_HELP)
    for parser in (pin, unpin):
        parser.add_argument("-v", "--verbose", action="store_true", help="print the traceback of an error")


REF_HELP = "a run: its reference, a unique prefix of it, EXPERIMENT#N, EXPERIMENT#latest or 'latest'"


def _add_tracking_commands(commands: Any) -> None:
    runs = commands.add_parser("runs", help="list runs (a row per record) with parameters, metrics and tags")
    runs.add_argument("experiment", metavar="EXPERIMENT-GLOB", nargs="?",
                      help="only runs of experiments matching this name or pattern (e.g. 'poly*')")
    runs.add_argument("--status", action="append", metavar="S",
                      help="only runs with this status (complete, error, interrupted, running, live); repeatable")
    runs.add_argument("--tag", action="append", type=tag_pair, metavar="K=V", help="only rows with this tag; repeatable")
    runs.add_argument("--where", metavar="QUERY", help="a pandas query over the columns, e.g. 'metrics.loss < 0.3'")
    runs.add_argument("--since", metavar="WHEN", help="only runs started at or after this date/time")
    runs.add_argument("--sort", metavar="COLUMN", help="sort by this column (default: start time)")
    runs.add_argument("--desc", action="store_true", help="sort in descending order")
    runs.add_argument("--limit", type=int, metavar="N",
                      help="show at most N rows, the newest (default: 50 for a table, all otherwise; 0: all)")
    runs.add_argument("--columns", metavar="COLS",
                      help="comma-separated columns or patterns (e.g. 'params_name,metrics.*'); default: the "
                           "identity columns and every column whose value varies across the rows shown "
                           "(csv and json: every column)")
    runs.add_argument("--level", choices=("record", "run"), default="record", help="a row per record or per run")
    runs.add_argument("--format", choices=("table", "csv", "json", "markdown"), default="table")
    runs.add_argument("--reindex", action="store_true", help="rebuild the run index from the run log files first")
    runs.add_argument("--chart", metavar="METRIC",
                      help="write a page charting METRIC across the rows (final values; over steps for up to 20 "
                           "rows) to reports/_charts/ (or -o FILE) instead of printing the table")
    runs.add_argument("-o", "--output", metavar="FILE", help="with --chart: the page to write")
    show = commands.add_parser("show", help="print one run whole: status, stages, params, metrics, artifacts")
    show.add_argument("reference", metavar="REF", help=REF_HELP)
    show.add_argument("--format", choices=("text", "json"), default="text")
    show.add_argument("--lineage", action="store_true",
                      help="also list the runs whose cached artifacts this run loaded, and the runs that "
                           "loaded artifacts it produced")
    diff = commands.add_parser("diff", help="what differs between two runs, record by record")
    diff.add_argument("reference_a", metavar="REF_A", help=REF_HELP)
    diff.add_argument("reference_b", metavar="REF_B", help=REF_HELP)
    diff.add_argument("--format", choices=("text", "json", "html"), default="text")
    diff.add_argument("-o", "--output", metavar="FILE", help="write the diff to FILE instead of printing it")
    rerun = commands.add_parser("rerun", help="run a past run again: its experiment, flags and exact parameter sets")
    rerun.add_argument("reference", metavar="REF", help=REF_HELP)
    export = commands.add_parser("export", help="export runs to another tracker (mlflow: one MLflow run per record)")
    export.add_argument("target", choices=("mlflow",), help="where to export to")
    export.add_argument("references", metavar="REF", nargs="*", help="the runs to export (default: every run)")
    export.add_argument("--experiment", metavar="NAME", help="the MLflow experiment (default: the run's experiment)")
    export.add_argument("--tracking-uri", metavar="URI",
                        help="the MLflow tracking URI, e.g. sqlite:///mlflow.db (default: MLflow's own default)")
    export.add_argument("--artifacts", action="store_true", help="also upload each record's attached files")
    for parser in (runs, show, diff, export):
        parser.add_argument("--store", action="append", metavar="WHERE",
                            help="read runs from another project folder (or its data folder), a glob "
                                 "('~/projects/*/data') or an fsspec URL ('s3://bucket/project/data') instead of "
                                 "this project; repeatable")
    for parser in (runs, show, diff, rerun, export):
        parser.add_argument("-v", "--verbose", action="store_true", help="print the traceback of an error")


def all_parsers() -> dict[str, argparse.ArgumentParser]:
    """Every parser by command, e.g. for the documentation check."""
    main_parser = build_curifactory_parser()
    subparsers = next(a for a in main_parser._actions if isinstance(a, argparse._SubParsersAction))
    return {
        "experiment": build_experiment_parser(),
        "experiment ls": build_ls_parser(),
        "experiment reports": build_reports_parser(),
        "curifactory": main_parser,
        "curifactory init": subparsers.choices["init"],
        "curifactory completion": subparsers.choices["completion"],
        "curifactory why": subparsers.choices["why"],
        "curifactory runs": subparsers.choices["runs"],
        "curifactory show": subparsers.choices["show"],
        "curifactory diff": subparsers.choices["diff"],
        "curifactory rerun": subparsers.choices["rerun"],
        "curifactory export": subparsers.choices["export"],
        "curifactory cache": subparsers.choices["cache"],
        **{f"curifactory cache {name}": sub for name, sub in _subcommands(subparsers.choices["cache"]).items()},
        "curifactory pin": subparsers.choices["pin"],
        "curifactory unpin": subparsers.choices["unpin"],
    }


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def option_strings(parser: argparse.ArgumentParser) -> list[str]:
    """The long and short flags of a parser (without ``-h/--help``)."""
    flags = []
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction):
            continue
        flags.extend(action.option_strings)
    return flags


