"""``python -m curifactory NAME ...``: the same as the ``experiment`` command."""

from __future__ import annotations

import sys

from curifactory.cli import main

if __name__ == "__main__":
    sys.exit(main())
