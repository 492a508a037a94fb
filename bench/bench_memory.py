"""Bounded memory: big imports and big reads stay under a fixed RSS, whatever the size.

    .venv/bin/python bench/bench_memory.py            # 2 GB CSV, 50 M rows (several minutes)
    .venv/bin/python bench/bench_memory.py --quick    # 200 MB CSV, 5 M rows
    .venv/bin/python bench/bench_memory.py --workdir /tmp/pond-mem   # keep the data

Each step runs the installed ``pond`` in its own process and reads that process's peak
resident set size from ``os.wait4`` (``ru_maxrss``): the pond's whole memory, DuckDB's
and Arrow's included. The data is generated in the work folder by DuckDB, streamed
(``COPY ... TO``), never held in this process. The steps:

1. ``pond copy big.csv /big.series --type series``: a CSV of ROWS rows (timestamp,
   sensor, value, flag) converted to Parquet and imported as a series.
2. ``pond copy more.csv /big.series``: a small append to it (the append checks the
   incoming schema against the series').
3. ``pond cat /big.series --sql "SELECT sensor, count(*), avg(value), ..."``: an
   aggregate over every row of the series.
4. ``pond cat /big.series --sql "... WHERE ts >= ..."``: a filter on the time column
   (pushed into the Parquet row groups).
5. (shown, not judged) ``GROUP BY ts``: one group per row, the worst case for an
   aggregate. DuckDB keeps to its memory limit (``SESSION_MEMORY_LIMIT``, spilling to
   disk); the Arrow dataset scan that feeds it buffers outside that limit.

Goal: steps 1-4 under ``--limit-mb`` (1536 MB) peak RSS. Prints a table; exits 1 if a
step fails or goes over the limit.
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import duckdb

PYTHON = Path(sys.executable)
POND_CLI = str(PYTHON.with_name("pond"))
SERIES = "/big.series"
SENSORS = 50
APPEND_ROWS = 1_000


@dataclass
class Step:
    name: str
    seconds: float
    peak_mb: float
    exit_code: int
    output: str
    judged: bool = True


def generate_csv(path: Path, rows: int, start_second: int = 0) -> None:
    """``rows`` lines of (ts, sensor, value, flag), written by DuckDB as it goes."""
    con = duckdb.connect(":memory:")
    try:
        con.execute("SET memory_limit='512MB'")
        con.execute("SET preserve_insertion_order=true")
        con.execute(
            f"""
            COPY (
                SELECT TIMESTAMP '2024-01-01' + to_seconds(range + {start_second}) AS ts,
                       'sensor-' || lpad(CAST(range % {SENSORS} AS VARCHAR), 2, '0') AS sensor,
                       round(20 + 10 * sin(range / 5000.0) + (range % 97) / 10.0, 3) AS value,
                       range % 7 = 0 AS flag
                FROM range({rows})
            ) TO '{path}' (HEADER, DELIMITER ',')
            """
        )
    finally:
        con.close()


def run_measured(name: str, args: list[str], *, judged: bool = True) -> Step:
    """Run ``pond ARGS`` in a child process; its wall time and peak RSS (``wait4``)."""
    started = time.perf_counter()
    with tempfile.TemporaryFile() as out:
        child = subprocess.Popen([POND_CLI, *args], stdout=out, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(child.pid, 0)
        child.returncode = os.waitstatus_to_exitcode(status)
        seconds = time.perf_counter() - started
        out.seek(0)
        text = out.read().decode("utf-8", "replace")
    peak_mb = usage.ru_maxrss / 1024  # Linux reports kilobytes
    return Step(name, seconds, peak_mb, child.returncode, text, judged)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="200 MB / 5 M rows")
    parser.add_argument("--rows", type=int, help="rows of the big CSV (default 50 M)")
    parser.add_argument("--limit-mb", type=float, default=1536.0)
    parser.add_argument("--workdir", type=Path, help="keep the data here")
    parser.add_argument("--query-timeout", type=float, default=1800.0)
    options = parser.parse_args()
    rows = options.rows or (5_000_000 if options.quick else 50_000_000)

    workdir = options.workdir or Path(tempfile.mkdtemp(prefix="pond-memory-"))
    workdir.mkdir(parents=True, exist_ok=True)
    pond_dir = workdir / "pond"
    if pond_dir.exists():
        shutil.rmtree(pond_dir)
    print(f"load average at start: {os.getloadavg()[0]:.2f}; work folder {workdir}")
    try:
        big = workdir / f"big-{rows}.csv"
        t0 = time.perf_counter()
        if not big.exists():
            generate_csv(big, rows)
        more = workdir / "more.csv"
        generate_csv(more, APPEND_ROWS, start_second=rows)
        size_mb = big.stat().st_size / 2**20
        took = time.perf_counter() - t0
        print(f"generated {big.name}: {rows:,} rows, {size_mb:,.0f} MB in {took:.1f} s")

        base = [f"--pond={pond_dir}", f"--query-timeout={options.query_timeout}"]
        subprocess.run([POND_CLI, *base, "init"], check=True, capture_output=True)
        aggregate = (
            "SELECT sensor, count(*) AS n, avg(value) AS mean, min(ts) AS first, "
            "max(ts) AS last, sum(CASE WHEN flag THEN 1 ELSE 0 END) AS flagged "
            "FROM source GROUP BY sensor ORDER BY sensor"
        )
        per_row = "SELECT count(*) AS groups FROM (SELECT ts, count(*) FROM source GROUP BY ts)"
        window = (
            "SELECT count(*) AS n, avg(value) AS mean FROM source "
            f"WHERE ts >= TIMESTAMP '2024-01-01' + to_seconds({rows // 2})"
        )
        steps = [
            run_measured(
                f"copy {size_mb:,.0f} MB CSV as a series",
                [*base, "copy", str(big), SERIES, "--type", "series"],
            ),
            run_measured(f"append {APPEND_ROWS:,} rows", [*base, "copy", str(more), SERIES]),
            run_measured(
                f"cat --sql aggregate, {rows + APPEND_ROWS:,} rows",
                [*base, "cat", SERIES, "--sql", aggregate, "--format", "csv"],
            ),
            run_measured(
                "cat --sql time filter, second half",
                [*base, "cat", SERIES, "--sql", window, "--format", "csv"],
            ),
            run_measured(
                "(worst case) GROUP BY ts, one group a row",
                [*base, "cat", SERIES, "--sql", per_row, "--format", "csv"],
                judged=False,
            ),
        ]
        stored = sum(f.stat().st_size for f in (pond_dir / "blobs").rglob("*") if f.is_file())
    finally:
        if options.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)

    print(f"\n{'step':<44} {'time':>9} {'peak RSS':>10}  result")
    failed = False
    for step in steps:
        ok = step.exit_code == 0 and (step.peak_mb <= options.limit_mb or not step.judged)
        failed |= not ok
        verdict = "ok" if ok else ("FAILED" if step.exit_code else "OVER LIMIT")
        verdict += "" if step.judged else " (not judged)"
        print(f"{step.name:<44} {step.seconds:>7.1f} s {step.peak_mb:>7.0f} MB  {verdict}")
        if step.exit_code:
            print("    " + step.output.strip().replace("\n", "\n    "))
    print(f"\nlimit {options.limit_mb:,.0f} MB; blobs on disk {stored / 2**20:,.0f} MB")
    answer = steps[2].output.strip().splitlines()
    print(
        f"aggregate: {len(answer) - 1} sensors; first line {answer[1] if len(answer) > 1 else '-'}"
    )
    print(f"time filter: {steps[3].output.strip().splitlines()[-1]}")
    print(f"load average at end: {os.getloadavg()[0]:.2f}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
