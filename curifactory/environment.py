"""Capture of the environment a run executes in: git, pip, conda and the host.

Every function here is a *recorder*: it never raises. A missing ``git`` binary, a
folder outside any repository, a broken ``pip`` or an absent ``conda`` are facts
about the environment and are returned as such (``is_repo=False``, ``None``, a
fallback listing with a comment saying why), never as exceptions.

Cost matters: :func:`capture_git` runs at the start of every run, so it makes two
cheap git calls (about 3-5 ms in total on a small repository). The slow captures
(``pip freeze`` takes about half a second) are only made for ``--store-full`` runs
and can run in the background while the experiment executes, see
:func:`start_environment_capture`.

Decision: *untracked files do not make a work tree dirty*. ``dirty`` means "a
tracked file differs from ``HEAD``" (staged or not), as in curifactory 0.20 and
``git describe --dirty``. Untracked files are listed separately by
:func:`git_untracked` and stored in a ``--store-full`` run folder, so a dirty run
can still be rebuilt from the commit, ``git.patch`` and the untracked list.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import subprocess
import sys
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:
    from concurrent.futures import Future

logger = logging.getLogger(__name__)

GIT_TIMEOUT = 10.0
PIP_TIMEOUT = 120.0
CONDA_TIMEOUT = 120.0
CONDA_TOOLS = ("conda", "mamba", "micromamba")
FALLBACK_MARK = "# pip freeze was not available"
_PIP_CACHE_NAME = "pip_freeze_cache.json"
_PACKAGES_CACHE_NAME = "packages_cache.json"
_CONDA_CACHE_NAME = "conda_export_cache.json"
# An editable VCS install ("-e git+https://...@<sha>#egg=x") changes with the
# commits of its own repository, which no site-packages timestamp reflects.
_VOLATILE_LINE = re.compile(r"^-e\s+\w+\+", re.MULTILINE)


@dataclass(frozen=True)
class GitInfo:
    """What git says about the folder a run executes in.

    Attributes:
        is_repo: whether the folder is inside a git work tree (False when git is
            missing too; ``error`` then says why).
        commit: the full 40-character hash of ``HEAD``; None outside a repository
            or before the first commit.
        branch: the checked-out branch; None when detached or outside a repository.
        dirty: whether a tracked file differs from ``HEAD`` (untracked files do
            not count); None outside a repository.
        root: the top folder of the work tree; None outside a repository.
        error: why git could not be asked, when it could not (git missing, timed
            out, refused the folder); None otherwise, including "not a repository".
    """

    is_repo: bool
    commit: str | None = None
    branch: str | None = None
    dirty: bool | None = None
    root: str | None = None
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """The fields as a JSON-ready dict."""
        return asdict(self)


@dataclass(frozen=True)
class _Result:
    """Outcome of one external command: its output, or why there is none."""

    ok: bool
    stdout: bytes = b""
    stderr: str = ""
    problem: str | None = None


def run_in_group(args: list[str], cwd: str | None, timeout: float,
                  env: dict[str, str] | None) -> subprocess.CompletedProcess[bytes]:
    """``subprocess.run`` in a process group of its own: at the time limit the command and
    everything it started are killed (a wrapper script's children too)."""
    import signal

    process = subprocess.Popen(args, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, start_new_session=True)
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except OSError:
            process.kill()
        process.communicate()
        raise
    return subprocess.CompletedProcess(args, process.returncode, stdout, stderr)


def _run(args: list[str], cwd: str | None, timeout: float, env: dict[str, str] | None = None) -> _Result:
    """Run a command and return its outcome; never raises."""
    try:
        done = run_in_group(args, cwd, timeout, env)
    except FileNotFoundError:
        if cwd is not None and not os.path.isdir(cwd):
            return _Result(False, problem=f"the folder {cwd} does not exist")
        return _Result(False, problem=f"{args[0]} is not installed (not found on PATH)")
    except subprocess.TimeoutExpired:
        return _Result(False, problem=f"'{' '.join(args[:3])}' took more than {timeout:g} s")
    except OSError as exc:  # e.g. a cwd that vanished, permissions
        return _Result(False, problem=f"could not run {args[0]}: {exc}")
    stderr = done.stderr.decode("utf-8", "replace").strip()
    if done.returncode != 0:
        return _Result(False, done.stdout, stderr, f"{args[0]} exited with {done.returncode}: {stderr}")
    return _Result(True, done.stdout, stderr)


def _git_env() -> dict[str, str]:
    """Environment for git calls: no optional index lock, stable messages."""
    env = dict(os.environ)
    # `git status` refreshes the index and would take .git/index.lock, which can
    # make a concurrent `git commit` by the user fail; optional locks are not needed.
    env["GIT_OPTIONAL_LOCKS"] = "0"
    env["LC_ALL"] = "C"
    return env


def _git(path: str | os.PathLike[str], *args: str, timeout: float = GIT_TIMEOUT) -> _Result:
    return _run(["git", *args], os.fspath(path), timeout, _git_env())


def _not_a_repo(result: _Result) -> bool:
    return "not a git repository" in result.stderr.lower()


def _parse_status(text: str) -> tuple[str | None, str | None, bool]:
    """Read commit, branch and dirtiness from ``git status --porcelain=v2 --branch``."""
    commit = branch = None
    dirty = False
    for line in text.splitlines():
        if line.startswith("# branch.oid "):
            oid = line[len("# branch.oid ") :].strip()
            commit = None if oid == "(initial)" else oid
        elif line.startswith("# branch.head "):
            head = line[len("# branch.head ") :].strip()
            branch = None if head == "(detached)" else head
        elif line and not line.startswith("#"):
            dirty = True
    return commit, branch, dirty


def capture_git(path: str | os.PathLike[str] = ".") -> GitInfo:
    """Describe the git work tree holding ``path``: commit, branch, dirty flag, root.

    Two git calls (``status --porcelain=v2 --branch --untracked-files=no`` and
    ``rev-parse --show-toplevel``), a few milliseconds in total. Never raises.

    Args:
        path: any folder inside the work tree (usually the project root).

    Returns:
        A :class:`GitInfo`; ``is_repo=False`` outside a repository or when git is
        unavailable.
    """
    status = _git(path, "status", "--porcelain=v2", "--branch", "--untracked-files=no")
    if not status.ok:
        if _not_a_repo(status):
            return GitInfo(is_repo=False)
        logger.debug("git status failed in %s: %s", path, status.problem)
        return GitInfo(is_repo=False, error=status.problem)
    commit, branch, dirty = _parse_status(status.stdout.decode("utf-8", "replace"))
    top = _git(path, "rev-parse", "--show-toplevel")
    root = top.stdout.decode("utf-8", "replace").strip() if top.ok else None
    return GitInfo(is_repo=True, commit=commit, branch=branch, dirty=dirty, root=root or None)


def git_patch(path: str | os.PathLike[str] = ".") -> str:
    """The uncommitted changes to tracked files, as ``git diff HEAD --binary``.

    Binary files are included as git binary patches, so ``git apply`` on a checkout
    of the commit rebuilds the work tree (untracked files aside). Returns an empty
    string for a clean tree, outside a repository, before the first commit, or when
    git fails (the failure is logged). Never raises.
    """
    result = _git(path, "diff", "HEAD", "--binary", "--no-color", "--no-ext-diff", timeout=60.0)
    if not result.ok:
        if not _not_a_repo(result):
            logger.debug("git diff failed in %s: %s", path, result.problem)
        return ""
    # git emits bytes in the encoding of the files; surrogateescape keeps them
    # round-trippable (encode with the same handler to get the exact patch back).
    return result.stdout.decode("utf-8", "surrogateescape")


def git_untracked(path: str | os.PathLike[str] = ".") -> list[str]:
    """Untracked, not ignored files of the work tree, relative to its root, sorted.

    Returns an empty list outside a repository or when git fails. Never raises.
    """
    result = _git(path, "ls-files", "--others", "--exclude-standard", "-z", "--full-name", ":/", timeout=60.0)
    if not result.ok:
        return []
    names = result.stdout.decode("utf-8", "surrogateescape").split("\0")
    return sorted(name for name in names if name)


def _metadata_freeze() -> str:
    """``name==version`` lines of the installed distributions, sorted by name.

    Reads only the header of each distribution's ``METADATA`` (or ``PKG-INFO``): parsing
    it whole as :mod:`importlib.metadata` does took about 0.1 s for 200 distributions,
    the cost of a run's first ``pip`` metadata in a project."""
    from importlib import metadata

    lines = set()
    for dist in metadata.distributions():
        name, version = _name_and_version(dist.read_text("METADATA") or dist.read_text("PKG-INFO") or "")
        if name:
            lines.add(f"{name}=={version}")
    return "\n".join(sorted(lines, key=str.lower)) + "\n"


def _name_and_version(text: str) -> tuple[str | None, str | None]:
    """The ``Name`` and ``Version`` fields of a core-metadata header (the text before its first blank line)."""
    name = version = None
    for line in text.partition("\n\n")[0].splitlines():
        if name is None and line.startswith("Name:"):
            name = line[5:].strip()
        elif version is None and line.startswith("Version:"):
            version = line[8:].strip()
        if name and version:
            break
    return name, version


def _run_pip_freeze() -> _Result:
    return _run([sys.executable, "-m", "pip", "freeze", "--disable-pip-version-check"], None, PIP_TIMEOUT)


def _site_fingerprint() -> str:
    """A digest that changes whenever a distribution is installed or removed.

    Installing, upgrading or removing a package adds or removes a ``*.dist-info``
    folder (or a ``.pth`` file for editable installs) in a ``sys.path`` folder,
    which changes that folder's modification time.
    """
    h = hashlib.blake2b(digest_size=16)
    h.update(f"{sys.executable}\0{sys.version}\0".encode())
    for entry in sys.path:
        try:
            mtime = os.stat(entry or ".").st_mtime_ns
        except OSError:
            mtime = -1
        h.update(f"{entry}\0{mtime}\0".encode("utf-8", "surrogateescape"))
    return h.hexdigest()


def _read_pip_cache(cache_file: str, fingerprint: str) -> str | None:
    try:
        with open(cache_file, encoding="utf-8") as handle:
            cached = json.load(handle)
    except (OSError, ValueError):
        return None
    if isinstance(cached, dict) and cached.get("fingerprint") == fingerprint:
        text = cached.get("freeze")
        return text if isinstance(text, str) else None
    return None


def _write_pip_cache(cache_file: str, fingerprint: str, text: str) -> None:
    from curifactory.fileio import atomic_write_json

    try:
        atomic_write_json(cache_file, {"fingerprint": fingerprint, "freeze": text})
    except OSError as exc:
        logger.debug("could not write the pip freeze cache %s: %s", cache_file, exc)


def pip_freeze(cache_dir: str | os.PathLike[str] | None = None) -> str:
    """The full ``python -m pip freeze`` output of the running interpreter.

    The output is returned exactly as pip prints it (final line intact, ending
    in a newline). When pip is missing or fails, the installed distributions are
    listed from :mod:`importlib.metadata` instead (sorted ``name==version`` lines)
    under a first comment line starting with ``# pip freeze was not available``.
    Never raises.

    Args:
        cache_dir: optional folder for a small cache of the output, keyed on the
            interpreter and the modification times of the ``sys.path`` folders
            (any install or removal invalidates it). Outputs holding an editable
            VCS install (``-e git+...``) are never cached, since their commit can
            change without any install. ``pip freeze`` costs about 0.5 s, a cache
            hit about 1 ms.
    """
    return str(_cached_text(cache_dir, _PIP_CACHE_NAME, _site_fingerprint, _pip_freeze_text,
                            keep=lambda text: not text.startswith(FALLBACK_MARK) and not _VOLATILE_LINE.search(text)))


def _pip_freeze_text() -> str:
    result = _run_pip_freeze()
    if result.ok:
        text = result.stdout.decode("utf-8", "replace")
        return text if not text or text.endswith("\n") else text + "\n"
    logger.debug("pip freeze failed: %s", result.problem)
    reason = (result.problem or "unknown failure").splitlines()[0]
    return f"{FALLBACK_MARK} ({reason}); listed from importlib.metadata\n" + _metadata_freeze()


def _cached_text(cache_dir: str | os.PathLike[str] | None, name: str, stamp: Callable[[], str],
                 compute: Callable[[], str | None], keep: Callable[[str], bool] = lambda text: True) -> str | None:
    """``compute()``'s text, kept in ``cache_dir/name`` under ``stamp()`` (what changes when the
    text would: a changed stamp computes again); a ``None``, or a text ``keep`` refuses, is not kept."""
    cache_file = os.path.join(os.fspath(cache_dir), name) if cache_dir is not None else None
    fingerprint = stamp() if cache_file else ""
    cached = _read_pip_cache(cache_file, fingerprint) if cache_file else None
    if cached is not None:
        return cached
    text = compute()
    if cache_file and text is not None and keep(text):
        _write_pip_cache(cache_file, fingerprint, text)
    return text


def installed_packages(cache_dir: str | os.PathLike[str] | None = None) -> list[str]:
    """``name==version`` of every installed distribution, read with :mod:`importlib.metadata`
    (no subprocess: what a run's ``pip`` metadata provider records; ``--store-full`` keeps the
    real ``pip freeze``). Kept in ``cache_dir`` like :func:`pip_freeze`'s output: about 0.1 s,
    a cache hit about 1 ms. Never raises."""
    return str(_cached_text(cache_dir, _PACKAGES_CACHE_NAME, _site_fingerprint, _metadata_freeze)).splitlines()


def find_conda() -> str | None:
    """The first of ``conda``, ``mamba``, ``micromamba`` found on PATH, or None."""
    for tool in CONDA_TOOLS:
        found = shutil.which(tool)
        if found:
            return found
    return None


def conda_export(timeout: float = CONDA_TIMEOUT, cache_dir: str | os.PathLike[str] | None = None,
                 errors: bool = False) -> str | None:
    """``conda env export --from-history`` of the running interpreter's environment.

    Uses conda, mamba or micromamba, whichever is found first on PATH. The
    environment exported is ``sys.prefix`` when it is a conda environment (it holds
    ``conda-meta/``), else the active one. Returns None when no tool is installed
    or the export fails (logged; with ``errors``, raised as ``RuntimeError``). With ``cache_dir``, the output is kept
    there until the environment's ``conda-meta/history`` changes (every conda install
    or removal appends to it), so a run pays for the export once per change.
    """
    tool = find_conda()
    if tool is None:
        return None
    args = [tool, "env", "export", "--from-history"]
    if os.path.isdir(os.path.join(sys.prefix, "conda-meta")):
        args += ["--prefix", sys.prefix]

    def export() -> str | None:
        result = _run(args, None, timeout)
        if not result.ok and errors:
            raise RuntimeError(f"{os.path.basename(tool)} env export failed: {result.problem}")
        if not result.ok:
            logger.warning("%s env export failed: %s", os.path.basename(tool), result.problem)
            return None
        return result.stdout.decode("utf-8", "replace")

    return _cached_text(cache_dir, _CONDA_CACHE_NAME, lambda: _conda_stamp(tool), export)


def _conda_stamp(tool: str) -> str:
    """What changes when a conda environment changes: the tool, the prefix, its history file."""
    history = os.path.join(os.environ.get("CONDA_PREFIX") or sys.prefix, "conda-meta", "history")
    try:
        status = os.stat(history)
        changed = f"{status.st_mtime_ns}:{status.st_size}"
    except OSError:
        changed = "none"
    return f"{tool}\0{sys.prefix}\0{os.environ.get('CONDA_PREFIX', '')}\0{changed}"


def curifactory_version() -> str | None:
    """The installed curifactory version, else ``curifactory.__version__``, else None."""
    from importlib import metadata

    try:
        return metadata.version("curifactory")
    except metadata.PackageNotFoundError:
        pass
    except Exception:  # a broken installation is a fact, not a crash
        logger.debug("could not read curifactory's distribution metadata", exc_info=True)
    try:
        from curifactory import __version__  # type: ignore[attr-defined]
    except ImportError:
        return None
    return str(__version__)


def user_name() -> str | None:
    import getpass

    try:
        return getpass.getuser()
    except Exception:  # no passwd entry and no LOGNAME/USER in some containers
        return None


def host_info() -> dict[str, Any]:
    """Facts about the interpreter and machine, as a JSON-ready dict. Never raises.

    Keys: ``python_version``, ``python_implementation``, ``python_executable``,
    ``platform``, ``system``, ``release``, ``machine``, ``hostname``, ``user``,
    ``cpu_count``, ``curifactory_version``.
    """
    import platform
    import socket

    uname = platform.uname()
    return {
        "python_version": platform.python_version(),
        "python_implementation": platform.python_implementation(),
        "python_executable": sys.executable,
        "platform": platform.platform(),
        "system": uname.system,
        "release": uname.release,
        "machine": uname.machine,
        "hostname": socket.gethostname(),
        "user": user_name(),
        "cpu_count": os.cpu_count(),
        "curifactory_version": curifactory_version(),
    }


@dataclass(frozen=True)
class EnvironmentSnapshot:
    """Everything a ``--store-full`` run folder records about its environment.

    Attributes:
        git: the :class:`GitInfo` of the project folder.
        patch: ``git diff HEAD --binary`` (empty when clean or not a repository).
        untracked: untracked files relative to the repository root.
        requirements: :func:`pip_freeze` output.
        conda: :func:`conda_export` output, or None.
        conda_tool: path of the conda-like tool found on PATH, or None.
        host: :func:`host_info`.
    """

    git: GitInfo
    patch: str = ""
    untracked: tuple[str, ...] = ()
    requirements: str = ""
    conda: str | None = None
    conda_tool: str | None = None
    host: dict[str, Any] = field(default_factory=dict)


def _capture_git_details(path: str) -> tuple[GitInfo, str, tuple[str, ...]]:
    info = capture_git(path)
    if not info.is_repo:
        return info, "", ()
    return info, git_patch(path), tuple(git_untracked(path))


def start_environment_capture(
    path: str | os.PathLike[str] = ".", *, pip_cache_dir: str | os.PathLike[str] | None = None
) -> Future[EnvironmentSnapshot]:
    """Start capturing an :class:`EnvironmentSnapshot` in background threads.

    Start it when a ``--store-full`` run begins and call ``.result()`` when writing
    the run folder: the subprocesses (git, pip, conda) then overlap with the
    experiment instead of adding to its wall time. The future never holds an
    exception, since every capture records failures as facts.

    Args:
        path: the project folder (for git).
        pip_cache_dir: passed to :func:`pip_freeze` as ``cache_dir``.
    """
    from concurrent.futures import ThreadPoolExecutor

    path = os.fspath(path)
    pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="cf-env")
    git_part = pool.submit(_capture_git_details, path)
    pip_part = pool.submit(pip_freeze, pip_cache_dir)
    conda_part = pool.submit(lambda: (find_conda(), conda_export()))

    def collect() -> EnvironmentSnapshot:
        info, patch, untracked = git_part.result()
        tool, conda = conda_part.result()
        return EnvironmentSnapshot(info, patch, untracked, pip_part.result(), conda, tool, host_info())

    snapshot = pool.submit(collect)  # four workers: the collector never starves the others
    pool.shutdown(wait=False)
    return snapshot


def capture_environment(
    path: str | os.PathLike[str] = ".", *, pip_cache_dir: str | os.PathLike[str] | None = None
) -> EnvironmentSnapshot:
    """Capture an :class:`EnvironmentSnapshot` now (the slow parts run concurrently)."""
    return start_environment_capture(path, pip_cache_dir=pip_cache_dir).result()
