#!/usr/bin/env bash
# Install pond with its development tools into .venv, then run every check CI runs:
# ruff (lint + format), import-linter (layer contracts), mypy, and the whole pytest suite.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/pip install --quiet --upgrade pip
.venv/bin/pip install --quiet -e '.[dev]'
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/lint-imports
.venv/bin/mypy
.venv/bin/pytest -n 2 --durations=15 "$@"
