#!/usr/bin/env bash
# Install pond into .venv and run the example pipeline of pond.yaml end to end:
# a local pond in ./.pond, DuckDB and Dagster in process.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/pip install --quiet --upgrade pip
.venv/bin/pip install --quiet -e .
.venv/bin/pond apply pond.yaml
.venv/bin/pond materialize --all
.venv/bin/pond --pond .pond cat /reports/sensors.md > report.md
echo "the report is in the pond at /reports/sensors.md, and copied to $(pwd)/report.md"
echo "query it:  .venv/bin/pond --pond .pond cat /analytics/daily_summary.series --sql 'SELECT * FROM source WHERE avg_temp > 15'"
echo "open the UI:  .venv/bin/pond ui   (then http://127.0.0.1:3000; it shows the run above)"
