"""The ``experiment`` and ``curifactory`` commands.

- :mod:`~curifactory.cli.main`: the entry points, dispatch and error handling;
- :mod:`~curifactory.cli.parsers`: the argument parsers;
- :mod:`~curifactory.cli.run`: ``experiment NAME``, running;
- :mod:`~curifactory.cli.inspect`: ``--map``, ``--paths``, ``--hashes``, ``--print-params``;
- :mod:`~curifactory.cli.project`: ``experiment ls``, ``curifactory init``, completion;
- :mod:`~curifactory.cli.common`: what they share.

Imports only flow down this list (main to the others, run to inspect, all to
common), so the package has no import circle. Start-up imports only the standard
library; the library, rich and the reporting package load when a command needs them.
"""

from __future__ import annotations

from curifactory.cli.common import EDIT_NOTES, VERSION, CommandError, display_path, print_error, quote_argv
from curifactory.cli.main import completion, curifactory_main, main, serve
from curifactory.cli.parsers import all_parsers, build_experiment_parser, option_strings

__all__ = ["EDIT_NOTES", "VERSION", "CommandError", "all_parsers", "build_experiment_parser", "completion",
           "curifactory_main", "display_path", "main", "option_strings", "print_error", "quote_argv", "serve"]
