#!/usr/bin/env bash
# How cache/ and runs/ were made: curifactory 0.20.5 (from PyPI, in its own venv)
# runs the experiments once ("custom" with --store-full); its cache folder and the
# custom run's folder are kept as it wrote them.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
work="$(mktemp -d)"
python -m venv "$work/venv"
"$work/venv/bin/pip" install -q curifactory==0.20.5
cp -r "$here/project/experiments" "$work/"
(cd "$work" && "$work/venv/bin/experiment" nested && "$work/venv/bin/experiment" custom --store-full)
rm -rf "$here/cache" "$here/runs" && cp -r "$work/data/cache" "$here/cache"
mkdir "$here/runs" && cp -r "$work"/data/runs/custom_* "$here/runs/"
