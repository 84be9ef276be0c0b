"""0.20's ``curifactory.project`` functions, for code that calls them directly.

The ``curifactory`` command (:mod:`curifactory.cli.main`) is what they wrap:
``initialize_project()`` is ``curifactory init`` on the terminal, ``add_completion_to_rc``
installs the completion hook ``curifactory completion`` prints.
"""

from __future__ import annotations

import os
import sys

from curifactory.cli.main import curifactory_main
from curifactory.cli.project import InitOptions, init_project, stdin_is_interactive

__all__ = ["add_completion_to_rc", "initialize_project", "main"]


def initialize_project() -> int:
    """Set up a project in the working folder, asking for each setting on a terminal
    (``curifactory init``); returns the exit code."""
    return init_project(os.getcwd(), InitOptions(interactive=stdin_is_interactive()), sys.stdout)


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
