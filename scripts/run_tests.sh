#!/usr/bin/env bash
# Every test of the course, in one pytest run (so one summary line counts them all):
#   lint and format check (ruff), unit tests of course_utils, exercise-checker tests, the committed
#   state of the notebooks, papermill runs with small parameters, the browser test, and nbval over
#   every notebook (cells marked NBVAL_CHECK_OUTPUT must print what is committed).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
[ -n "${COURSE_CHROMIUM:-}" ] || bash scripts/install_chromium.sh
echo "== ruff (lint and format check: course_utils, tests, notebooks, scripts)"
"$BIN/ruff" check .
"$BIN/ruff" format --check .
echo "== pytest: unit tests, notebook runs, browser test, nbval"
export MPLBACKEND=Agg PYTHONHASHSEED=0
"$BIN/python" -m pytest tests notebooks --nbval-lax --nbval-current-env --nbval-cell-timeout=300 \
  -p no:cacheprovider --durations=15 "$@"
