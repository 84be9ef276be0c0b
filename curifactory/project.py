"""0.20's ``curifactory.project`` functions, for code that calls them directly.

The ``curifactory`` command (:mod:`curifactory.cli.main`) is what they wrap:
``initialize_project()`` asks 0.20's questions and builds the project ``curifactory
init`` builds, ``add_completion_to_rc`` installs the completion hook ``curifactory
completion`` prints.
"""

from __future__ import annotations

import json
import os
import subprocess

from curifactory.cli.main import curifactory_main

__all__ = ["add_completion_to_rc", "initialize_project", "main"]


_QUESTIONS = (("Experiments module name", "experiments_module_name"), ("Parameters module name", "params_module_name"),
              ("Data path", "manager_cache_path"), ("Logs path", "logs_path"), ("Notebooks path", "notebooks_path"),
              ("Reports path", "reports_path"))
"""0.20's questions, in its order; the cache, runs and style sheet paths follow from the answers."""


def initialize_project() -> int:
    """0.20's ``initialize_project()``: set up a project in the working folder, asking (with
    ``input()``, in 0.20's order) for the six paths, then whether to add the docker folder
    ([Y/n]), to run ``git init`` when there is no ``.git`` folder ([y/N]) and to add the
    project's paths to ``.gitignore`` ([Y/n]). An empty answer keeps the default shown (the
    existing config's value, if there is one). ``curifactory init`` is the command-line form,
    with flags instead of the yes/no questions. Returns the exit code."""
    from curifactory import fileio
    from curifactory.config import CONFIG_FILENAME, DEFAULTS
    from curifactory.cli.project import (IGNORED_KEYS, copy_css, docker_folders, folder_entry, make_folders,
                                         read_existing, update_gitignore)

    print("Initializing curifactory project...")
    print("Enter paths for the configuration file; defaults are shown in '[]' (leave an entry blank to keep it)")
    config_path = os.path.join(os.getcwd(), CONFIG_FILENAME)
    values = read_existing(config_path) if os.path.exists(config_path) else dict(DEFAULTS)
    for question, key in _QUESTIONS:
        answer = input(f"{question} ['{values[key]}']: ").strip()
        if answer:
            values[key] = answer
    values["cache_path"] = os.path.join(values["manager_cache_path"], "cache")
    values["runs_path"] = os.path.join(values["manager_cache_path"], "runs")
    values["report_css_path"] = os.path.join(values["reports_path"], "style.css")
    fileio.atomic_write_text(config_path, json.dumps(values, indent=4) + "\n")
    root = os.getcwd()
    make_folders(root, values)
    copy_css(root, values["report_css_path"])
    if _yes_no("Include docker folder and default dockerfile? [Y/n] ", True):
        from curifactory.dockerfiles import write_docker_folder

        write_docker_folder(root, docker_folders(values))
    if not os.path.exists(".git") and _yes_no("No .git folder found. Run `git init`? [y/N] ", False):
        subprocess.run(["git", "init", "-q"], check=False)
    if _yes_no("Append curifactory paths to .gitignore? [Y/n] ", True):
        update_gitignore(root, [folder_entry(values[k]) for k in IGNORED_KEYS])
    print("Curifactory project initialization complete!")
    return 0


def _yes_no(question: str, default: bool) -> bool:
    """Ask until the answer is y, n or empty (the default), as 0.20 did."""
    while True:
        answer = input(question).strip().lower()
        if answer in ("", "y", "yes", "n", "no"):
            return default if not answer else answer.startswith("y")
        print("Please answer 'y' or 'n', or leave it blank for the default.")


def add_completion_to_rc(bash: bool = False, zsh: bool = False) -> list[str]:
    """Print the completion hook; with ``bash`` / ``zsh``, append it to ``~/.bashrc`` /
    ``~/.zshrc`` unless it is there already. Returns the files changed."""
    changed = []
    for wanted, shell, rc in ((bash, "bash", "~/.bashrc"), (zsh, "zsh", "~/.zshrc")):
        hook = f'eval "$(curifactory completion {shell})"'
        print(f"# tab completion for experiment and curifactory ({shell})\n{hook}")
        if not wanted:
            continue
        path = os.path.expanduser(rc)
        try:
            with open(path, encoding="utf-8") as handle:
                present = hook in handle.read()
        except FileNotFoundError:
            present = False
        if not present:
            with open(path, "a", encoding="utf-8") as handle:
                handle.write(f"\n# tab completion for experiment and curifactory\n{hook}\n")
            changed.append(path)
    return changed


def main() -> int:
    """The ``curifactory`` command (0.20's entry point name)."""
    return curifactory_main()
