#!/usr/bin/env bash
# Install pond with its development tools into .venv, then run every check CI runs:
# ruff (lint + format), import-linter (layer contracts), mypy, and the whole pytest suite.
# The browser test of the Dagster UI drives Debian's chromium (/usr/bin/chromium) through
# playwright (never `playwright install`); it is installed here when missing, if we can.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x /usr/bin/chromium ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get install -y chromium >/dev/null \
      || { apt-get update >/dev/null && apt-get install -y chromium >/dev/null; }
  else
    echo "note: /usr/bin/chromium is missing (apt-get install chromium, as root); the browser test will be skipped" >&2
  fi
fi
python3 -m venv .venv
.venv/bin/pip install --quiet --upgrade pip
.venv/bin/pip install --quiet -e '.[dev]'
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/lint-imports
.venv/bin/mypy
.venv/bin/pytest -n 2 --durations=15 "$@"
