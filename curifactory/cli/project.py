"""Project-level commands: ``experiment ls``, ``curifactory init`` and shell completion.

``ls`` reads module docstrings and functions with :mod:`ast`, then imports each module,
as 0.20.5 did, to flag one that fails to import with its error (a broken module never
breaks the listing); the names for shell completion are read without importing.
"""

from __future__ import annotations

import ast
import dataclasses
import json
import os
import shutil
import sys
from dataclasses import dataclass
from typing import Callable, TextIO

from curifactory.config import CONFIG_FILENAME, DEFAULTS, Settings

# -- ls --------------------------------------------------------------------------------


@dataclass(frozen=True)
class ModuleInfo:
    """One project module as ``experiment ls`` shows it."""

    name: str
    summary: str
    defines: frozenset[str]
    problem: str | None = None


def read_module_info(path: str) -> ModuleInfo:
    """Docstring first line and top-level function names of a module file (not imported)."""
    name = os.path.splitext(os.path.basename(path))[0]
    try:
        with open(path, encoding="utf-8") as handle:
            tree = ast.parse(handle.read(), filename=path)
    except (OSError, SyntaxError, ValueError) as exc:
        return ModuleInfo(name, "", frozenset(), f"cannot be parsed: {type(exc).__name__}: {exc}")
    docstring = ast.get_docstring(tree) or ""
    summary = docstring.strip().splitlines()[0].strip() if docstring.strip() else ""
    functions = frozenset(node.name for node in tree.body if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)))
    return ModuleInfo(name, summary, functions)


def project_modules(settings: Settings, package: str) -> list[ModuleInfo]:
    """Every public module file of a project package folder, sorted by name."""
    folder = os.path.join(settings.root, package)
    if not os.path.isdir(folder):
        return []
    files = sorted(f for f in os.listdir(folder) if f.endswith(".py") and not f.startswith("_"))
    modules = [read_module_info(os.path.join(folder, f)) for f in files]
    if package == settings.params_module_name:  # YAML parameter files (see curifactory.paramfiles)
        known = {m.name for m in modules}
        modules += [ModuleInfo(f.rsplit(".", 1)[0], f"YAML parameter file ({f})", frozenset({"get_params"}))
                    for f in sorted(os.listdir(folder)) if f.endswith((".yaml", ".yml"))
                    and f.rsplit(".", 1)[0] not in known]
        modules.sort(key=lambda m: m.name)
    return modules


def _imported(settings: Settings, package: str, module: ModuleInfo) -> ModuleInfo:
    """``module`` with the error its import raises, if any (a YAML file or an unparsable one as it is)."""
    if module.problem or module.summary.startswith("YAML parameter file"):
        return module
    import importlib

    from curifactory.loading import project_on_path

    try:
        with project_on_path(settings.root):
            importlib.import_module(f"{package}.{module.name}")
    except (Exception, SystemExit) as exc:  # the module's own code: any error is a fact to show
        return dataclasses.replace(module, problem=f"fails to import: {type(exc).__name__}: {exc}")
    return module


def _print_modules(title: str, modules: list[ModuleInfo], required: str, out: TextIO) -> None:
    print(f"{title}:", file=out)
    if not modules:
        print("  (none)", file=out)
        return
    width = max(len(m.name) for m in modules)
    for module in modules:
        text = module.summary
        if module.problem:
            text = f"({module.problem})"
        elif required not in module.defines:
            text = f"{text} (no {required}() found)".strip()
        print(f"  {module.name:<{width}}  {text}".rstrip(), file=out)


def list_project(settings: Settings, out: TextIO, names: str | None = None) -> None:
    """Print the experiments and parameter files of the project.

    Args:
        settings: the project settings.
        out: where to print.
        names: ``experiments`` or ``params`` to print only those names, one a line
            (for shell completion).
    """
    experiments = project_modules(settings, settings.experiments_module_name)
    params = project_modules(settings, settings.params_module_name)
    if names:
        for module in experiments if names == "experiments" else params:
            print(module.name, file=out)
        return
    experiments = [_imported(settings, settings.experiments_module_name, m) for m in experiments]
    params = [_imported(settings, settings.params_module_name, m) for m in params]
    known = {m.name for m in params}
    params += [dataclasses.replace(m, summary=f"{m.summary} (the experiment's own get_params())".strip())
               for m in experiments if "get_params" in m.defines and m.name not in known and not m.problem]
    params.sort(key=lambda m: m.name)
    _print_modules(f"experiments ({settings.experiments_module_name}/)", experiments, "run", out)
    print(file=out)
    _print_modules(f"parameter files ({settings.params_module_name}/)", params, "get_params", out)


# -- init --------------------------------------------------------------------------------

FOLDER_KEYS = ("manager_cache_path", "cache_path", "runs_path", "logs_path", "notebooks_path", "reports_path")
IGNORED_KEYS = ("manager_cache_path", "cache_path", "runs_path", "logs_path", "reports_path")
PACKAGED_CSS = os.path.join(os.path.dirname(os.path.dirname(__file__)), "reporting", "static", "style.css")


@dataclass
class InitOptions:
    """How ``curifactory init`` asks questions."""

    interactive: bool
    ask: Callable[[str], str] = input
    docker: bool = True
    git: bool = False


def folder_entry(path: str) -> str:
    """``path`` as a ``.gitignore`` folder line (``data/``)."""
    return path.replace(os.sep, "/").strip("/") + "/"


def docker_folders(values: dict[str, str]) -> list[str]:
    """The configured folders a project's docker image leaves out (see ``dockerfiles.ignored_for``)."""
    return [values[k] for k in FOLDER_KEYS] + [os.path.join(values["notebooks_path"], "experiments")]


def ask_config(options: InitOptions) -> dict[str, str]:
    """The config values: the defaults, or the user's answers when interactive."""
    values = dict(DEFAULTS)
    if not options.interactive:
        return values
    for key, default in DEFAULTS.items():
        answer = options.ask(f"{key} [{default}]: ").strip()
        if answer:
            values[key] = answer
    return values


def _confirm(options: InitOptions, question: str) -> bool:
    return options.interactive and options.ask(f"{question} [y/N]: ").strip().lower() in ("y", "yes")


def init_project(root: str, options: InitOptions, out: TextIO) -> int:
    """Create the config, folders, style sheet and ``.gitignore`` entries under ``root``.

    An existing config is kept unless the user agrees (interactively) to replace it.
    Returns the exit code.
    """
    config_path = os.path.join(root, CONFIG_FILENAME)
    if os.path.exists(config_path) and not _confirm(options, f"{CONFIG_FILENAME} exists; overwrite it?"):
        print(f"kept the existing {CONFIG_FILENAME}", file=out)
        values = read_existing(config_path)
    else:
        values = ask_config(options)
        with open(config_path, "w", encoding="utf-8") as handle:
            json.dump(values, handle, indent=4)
            handle.write("\n")
        print(f"wrote {CONFIG_FILENAME}", file=out)
    for created in make_folders(root, values):
        print(f"created {created}", file=out)
    if copy_css(root, values["report_css_path"]):
        print(f"created {values['report_css_path']}", file=out)
    added = update_gitignore(root, [folder_entry(values[k]) for k in IGNORED_KEYS])
    if added:
        print(f"added to .gitignore: {', '.join(added)}", file=out)
    if options.docker:
        from curifactory.dockerfiles import write_docker_folder

        for written in write_docker_folder(root, docker_folders(values)):
            print(f"created {written}", file=out)
    _offer_git(root, options, out)
    print("the project is ready: put an experiment in "
          f"{values['experiments_module_name']}/ and run 'experiment <name>'", file=out)
    return 0


def _offer_git(root: str, options: InitOptions, out: TextIO) -> None:
    """Run ``git init`` when the folder is in no repository and the user asks (``--git``, or yes
    on a terminal): a run records its commit, and reproducing it needs one."""
    import subprocess

    inside = subprocess.run(["git", "rev-parse", "--is-inside-work-tree"], cwd=root, capture_output=True,
                            text=True, check=False) if shutil.which("git") else None
    if inside is None or inside.returncode == 0:
        return
    if options.git or _confirm(options, "This folder is not a git repository; run 'git init'?"):
        done = subprocess.run(["git", "init", "-q"], cwd=root, capture_output=True, text=True, check=False)
        print("ran git init" if done.returncode == 0 else f"git init failed: {done.stderr.strip()}", file=out)
    else:
        print("not a git repository: runs record no commit; run 'git init' (or 'curifactory init --git')",
              file=out)


def read_existing(config_path: str) -> dict[str, str]:
    values = dict(DEFAULTS)
    try:
        with open(config_path, encoding="utf-8") as handle:
            loaded = json.load(handle)
        if isinstance(loaded, dict):
            values.update({k: str(v) for k, v in loaded.items() if k in DEFAULTS})
    except (OSError, ValueError):
        pass  # a broken config is the user's to fix; the defaults still give the folders
    return values


def make_folders(root: str, values: dict[str, str]) -> list[str]:
    created = []
    packages = (values["experiments_module_name"], values["params_module_name"])
    notebooks = os.path.join(values["notebooks_path"], "experiments")  # where --notebook writes
    for relative in (*packages, *(values[k] for k in FOLDER_KEYS), notebooks):
        folder = os.path.join(root, relative)
        if not os.path.isdir(folder):
            os.makedirs(folder)
            created.append(folder_entry(relative))
    for package in packages:
        init = os.path.join(root, package, "__init__.py")
        if not os.path.exists(init):
            open(init, "w", encoding="utf-8").close()
    return created


def copy_css(root: str, css_relative: str) -> bool:
    target = os.path.join(root, css_relative)
    if os.path.exists(target) or not os.path.exists(PACKAGED_CSS):
        return False
    os.makedirs(os.path.dirname(target) or root, exist_ok=True)
    shutil.copyfile(PACKAGED_CSS, target)
    return True


def update_gitignore(root: str, entries: list[str]) -> list[str]:
    """Append the entries ``.gitignore`` lacks (an entry under another one is left out)."""
    path = os.path.join(root, ".gitignore")
    text = ""
    if os.path.exists(path):
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    present = {line.strip().strip("/") for line in text.splitlines()}
    wanted: list[str] = []
    for entry in entries:
        covered = any(entry.startswith(other) and entry != other for other in entries)
        if not covered and entry not in wanted:
            wanted.append(entry)
    missing = [e for e in wanted if e.strip("/") not in present]
    if missing:
        separator = "" if not text else ("" if text.endswith("\n") else "\n") + ("" if text.endswith("\n\n") else "\n")
        with open(path, "a", encoding="utf-8") as handle:
            handle.write(separator + "# curifactory paths\n" + "\n".join(missing) + "\n")
    return missing


# -- completion ------------------------------------------------------------------------------

_BASH_TEMPLATE = """\
# curifactory shell completion ({shell}); load it with:  eval "$(curifactory completion {shell})"
_cf_experiment() {{
    local cur prev
    cur="${{COMP_WORDS[COMP_CWORD]}}"
    prev="${{COMP_WORDS[COMP_CWORD-1]}}"
    case "$prev" in
        -p|--params)
            COMPREPLY=( $(compgen -W "$(experiment ls --names params 2>/dev/null)" -- "$cur") ); return 0 ;;
        -c|--cache)
            COMPREPLY=( $(compgen -d -- "$cur") ); return 0 ;;
        {takes_value})
            return 0 ;;
    esac
    if [[ "$cur" == -* ]]; then
        COMPREPLY=( $(compgen -W "{experiment_flags}" -- "$cur") )
    elif [[ $COMP_CWORD -eq 1 ]]; then
        COMPREPLY=( $(compgen -W "ls reports $(experiment ls --names experiments 2>/dev/null)" -- "$cur") )
    fi
}}
_cf_curifactory() {{
    local cur="${{COMP_WORDS[COMP_CWORD]}}"
    if [[ $COMP_CWORD -eq 1 ]]; then
        COMPREPLY=( $(compgen -W "init completion why {curifactory_flags}" -- "$cur") )
    elif [[ "${{COMP_WORDS[1]}}" == completion ]]; then
        COMPREPLY=( $(compgen -W "bash zsh" -- "$cur") )
    elif [[ "${{COMP_WORDS[1]}}" == init ]]; then
        COMPREPLY=( $(compgen -W "{init_flags}" -- "$cur") )
    fi
}}
complete -F _cf_experiment experiment
complete -F _cf_curifactory curifactory
"""


def completion_script(shell: str, experiment_flags: list[str], takes_value: list[str],
                      curifactory_flags: list[str], init_flags: list[str]) -> str:
    """A completion script for ``bash`` or ``zsh`` (through zsh's bash compatibility)."""
    script = _BASH_TEMPLATE.format(
        shell=shell,
        experiment_flags=" ".join(experiment_flags),
        takes_value="|".join(takes_value) or "--no-such-flag",
        curifactory_flags=" ".join(curifactory_flags),
        init_flags=" ".join(init_flags),
    )
    if shell == "zsh":
        script = "autoload -U +X compinit && compinit\nautoload -U +X bashcompinit && bashcompinit\n" + script
    return script


def stdin_is_interactive() -> bool:
    """Whether questions can be asked (stdin is a terminal)."""
    try:
        return sys.stdin is not None and sys.stdin.isatty()
    except (AttributeError, ValueError):
        return False
