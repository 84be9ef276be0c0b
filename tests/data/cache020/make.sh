#!/usr/bin/env bash
# How cache/ was made: curifactory 0.20.5 (from PyPI, in its own venv) runs the
# experiment once; its cache folder is kept as it wrote it.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
work="$(mktemp -d)"
python -m venv "$work/venv"
"$work/venv/bin/pip" install -q curifactory==0.20.5
cp -r "$here/project/experiments" "$work/"
(cd "$work" && "$work/venv/bin/experiment" nested)
rm -rf "$here/cache" && cp -r "$work/data/cache" "$here/cache"
