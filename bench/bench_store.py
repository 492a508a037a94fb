"""Benchmark of the pond's store: query speed against plain DuckDB, start-up, commits.

    .venv/bin/python bench/bench_store.py            # the full run (a few minutes)
    .venv/bin/python bench/bench_store.py --quick    # a small sanity run
    .venv/bin/python bench/bench_store.py --workdir /tmp/pond-bench  # keep the data

Prints figures only (no asserts). Every comparison runs in the same process on the
same data: a series of V versions x R rows (timestamp, sensor, value) stored in a
pond, and the same V Parquet files as plain files read by DuckDB's ``read_parquet``.
"""

import argparse
import math
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pond_pipeline.api import Pond
from pond_pipeline.store.blobs import sha256_file

SERIES = "/bench/sensors.series"
SMALL_TABLE = "/bench/small.table"
BASE_TIME = datetime(2024, 1, 1, tzinfo=UTC)
SENSORS = 20
RATIO_GOAL = 1.3
OPEN_GOAL_S = 1.0
PYTHON = sys.executable
POND_CLI = str(Path(sys.executable).with_name("pond"))


@dataclass
class Row:
    """One line of the summary table."""

    name: str
    value: str
    goal: str = ""
    ok: bool | None = None


# -- data --------------------------------------------------------------------------------
def make_version(index: int, rows: int, base_us: pa.Array, sensors: pa.Array) -> pa.Table:
    """Version ``index``: ``rows`` consecutive seconds after the previous version's."""
    start_us = (BASE_TIME - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)
    offset = start_us + index * rows * 1_000_000
    micros = pc.add(base_us, pa.scalar(offset, pa.int64()))
    timestamps = micros.cast(pa.timestamp("us", tz="UTC"))
    value = pc.multiply(pc.random(rows), 100.0)
    return pa.table({"timestamp": timestamps, "sensor_id": sensors, "value": value})


def build(workdir: Path, versions: int, rows: int) -> tuple[Pond, list[str], list[Row]]:
    pond_dir = workdir / "pond"
    plain_dir = workdir / "plain"
    for folder in (pond_dir, plain_dir):
        if folder.exists():
            shutil.rmtree(folder)
    plain_dir.mkdir(parents=True)
    base_us = pc.multiply(pa.array(range(rows), pa.int64()), 1_000_000)
    sensors = pa.array([f"sensor-{i % SENSORS:02d}" for i in range(rows)], pa.string())
    pond = Pond.create(str(pond_dir))
    files: list[str] = []
    generate = pond_time = plain_time = 0.0
    for index in range(versions):
        t0 = time.perf_counter()
        table = make_version(index, rows, base_us, sensors)
        t1 = time.perf_counter()
        with pond.transaction(f"bench append {index}") as tx:
            tx.write_table(SERIES, table, "series", parents=True)
        t2 = time.perf_counter()
        path = plain_dir / f"v{index:04d}.parquet"
        pq.write_table(table, path, compression="zstd")
        files.append(str(path))
        t3 = time.perf_counter()
        generate += t1 - t0
        pond_time += t2 - t1
        plain_time += t3 - t2
    blobs = [r.blob for r in pond.node(SERIES).versions]
    same_bytes = sum(
        1 for blob, file in zip(blobs, files, strict=True) if blob == sha256_file(Path(file))
    )
    print(f"  plain files byte-identical to the pond's blobs: {same_bytes}/{versions}")
    with pond.transaction("bench small table") as tx:
        tx.write_table(SMALL_TABLE, pa.table({"a": list(range(10)), "b": ["x"] * 10}), "table")
    rows_out = [
        Row("build: generate data", f"{generate:.2f} s"),
        Row(
            f"build: pond, {versions} transactions",
            f"{pond_time:.2f} s ({pond_time / versions * 1000:.0f} ms/version)",
        ),
        Row(f"build: {versions} plain Parquet files", f"{plain_time:.2f} s"),
    ]
    for row in rows_out:
        print(f"  {row.name:<40} {row.value}")
    return pond, files, rows_out


# -- timing helpers ------------------------------------------------------------------------
def timed(action: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    """Median milliseconds of ``repeat`` runs after one warm-up, and the last result."""
    result = action()
    samples = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = action()
        samples.append((time.perf_counter() - t0) * 1000)
    return statistics.median(samples), result


def timed_pair(
    a: Callable[[], Any], b: Callable[[], Any], repeat: int
) -> tuple[float, Any, float, Any]:
    """Like ``timed`` for two actions, run alternately (so both see the same load)."""
    a_result, b_result = a(), b()
    a_samples, b_samples = [], []
    for _ in range(repeat):
        t0 = time.perf_counter()
        a_result = a()
        t1 = time.perf_counter()
        b_result = b()
        t2 = time.perf_counter()
        a_samples.append((t1 - t0) * 1000)
        b_samples.append((t2 - t1) * 1000)
    return statistics.median(a_samples), a_result, statistics.median(b_samples), b_result


def run_median(argv: list[str], repeat: int, env: dict[str, str] | None = None) -> float:
    """Median wall-clock milliseconds of a subprocess (it must succeed)."""
    samples = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        done = subprocess.run(argv, capture_output=True, text=True, env=env, check=False)
        samples.append((time.perf_counter() - t0) * 1000)
        if done.returncode != 0:
            print(f"  !! {' '.join(argv)} failed ({done.returncode}): {done.stderr.strip()[:300]}")
    return statistics.median(samples)


# -- 2. queries ----------------------------------------------------------------------------
def literal(moment: datetime) -> str:
    return f"TIMESTAMPTZ '{moment.isoformat()}'"


def same(left: tuple[Any, ...], right: tuple[Any, ...]) -> bool:
    if len(left) != len(right):
        return False
    for a, b in zip(left, right, strict=True):
        if isinstance(a, float) or isinstance(b, float):
            if a is None or b is None or not math.isclose(a, b, rel_tol=1e-9):
                return False
        elif a != b:
            return False
    return True


def first_row(table: pa.Table) -> tuple[Any, ...]:
    return tuple(column[0].as_py() for column in table.columns)


def queries(pond: Pond, files: list[str], versions: int, rows: int, repeat: int) -> list[Row]:
    total = timedelta(seconds=versions * rows)
    start = BASE_TIME + total * 0.4 + timedelta(seconds=rows // 3)
    end = start + total * 0.01
    where = f"WHERE timestamp >= {literal(start)} AND timestamp < {literal(end)}"
    count_sql = "SELECT count(*) FROM source"
    filter_sql = f"SELECT count(*), avg(value) FROM source {where}"
    window_sql = "SELECT count(*), avg(value) FROM source"

    con = duckdb.connect(":memory:")
    con.execute("SET TimeZone='UTC'")
    file_list = "[" + ", ".join("'" + f.replace("'", "''") + "'" for f in files) + "]"
    con.execute(f"CREATE VIEW source AS SELECT * FROM read_parquet({file_list})")

    cases: list[tuple[str, Callable[[], pa.Table], str]] = [
        ("count(*)", lambda: pond.query(count_sql, source=SERIES), count_sql),
        ("1% filter, SQL WHERE", lambda: pond.query(filter_sql, source=SERIES), filter_sql),
        (
            "1% filter, time_start/time_end",
            lambda: pond.query(window_sql, source=SERIES, time_start=start, time_end=end),
            filter_sql,
        ),
    ]
    out: list[Row] = []
    print(f"  {'query':<32} {'pond ms':>9} {'duckdb ms':>10} {'a/b':>6}  result")
    for name, pond_call, duck_sql in cases:
        a_ms, a_result, b_ms, b_result = timed_pair(
            pond_call, lambda sql=duck_sql: con.sql(sql).to_arrow_table(), repeat
        )
        ratio = a_ms / b_ms
        a_row, b_row = first_row(a_result), first_row(b_result)
        shown = ", ".join(f"{v:.6g}" if isinstance(v, float) else str(v) for v in a_row)
        print(f"  {name:<32} {a_ms:9.1f} {b_ms:10.1f} {ratio:6.2f}  {shown}")
        if not same(a_row, b_row):
            print(f"  !!!!! MISMATCH for {name}: pond {a_row} != duckdb {b_row} !!!!!")
        ok = ratio <= RATIO_GOAL and same(a_row, b_row)
        out.append(
            Row(
                f"query: {name} (a/b)",
                f"{ratio:.2f}  ({a_ms:.1f} vs {b_ms:.1f} ms)",
                f"<= {RATIO_GOAL}",
                ok,
            )
        )
    floor_ms, _ = timed(lambda: pond.query("SELECT 42", source=SERIES), repeat)
    print(f"  {'fixed cost: SELECT 42 (pond)':<32} {floor_ms:9.1f}")
    out.append(Row("query: fixed cost of pond.query (SELECT 42)", f"{floor_ms:.1f} ms"))
    expected = versions * rows
    count = first_row(cases[0][1]())[0]
    if count != expected:
        print(f"  !!!!! MISMATCH: count(*) is {count}, expected {expected} !!!!!")
    con.close()
    return out


# -- 3. start-up ---------------------------------------------------------------------------
def importtime_total() -> tuple[float, str]:
    """Total import time (ms) of the CLI module, and the slowest top-level imports."""
    done = subprocess.run(
        [PYTHON, "-X", "importtime", "-c", "import pond_pipeline.cli.main"],
        capture_output=True,
        text=True,
        check=False,
    )
    top: list[tuple[int, str]] = []
    pattern = re.compile(r"^import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)")
    for line in done.stderr.splitlines():
        match = pattern.match(line)
        if match and len(match.group(3)) == 1:
            top.append((int(match.group(2)), match.group(4)))
    total_ms = sum(us for us, _ in top) / 1000
    slowest = ", ".join(f"{name} {us / 1000:.0f}" for us, name in sorted(top, reverse=True)[:5])
    return total_ms, slowest


def startup(pond_uri: str, repeat: int) -> list[Row]:
    env = {**os.environ, "POND": pond_uri}
    help_ms = run_median([POND_CLI, "--help"], repeat, env)
    cat_ms = run_median([POND_CLI, "cat", SMALL_TABLE], repeat, env)
    list_ms = run_median([POND_CLI, "list"], repeat, env)
    baseline_ms = run_median([PYTHON, "-c", "pass"], repeat)
    import_ms, slowest = importtime_total()
    check = subprocess.run(
        [
            PYTHON,
            "-c",
            "import sys, pond_pipeline.cli.main; "
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'dagster', 'pandera', "
            "'pandas', 'jinja2', 'deltalake', 'duckdb', 'pydantic'}))",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    loaded = check.stdout.strip()
    no_dagster = check.returncode == 0 and "'dagster'" not in loaded
    print(f"  python -c pass                    {baseline_ms:7.0f} ms")
    print(f"  pond --help                       {help_ms:7.0f} ms")
    print(f"  pond cat {SMALL_TABLE:<24} {cat_ms:7.0f} ms")
    print(f"  pond list                         {list_ms:7.0f} ms  (goal < 350)")
    print(f"  -X importtime pond_pipeline.cli   {import_ms:7.0f} ms  (slowest, ms: {slowest})")
    print(f"  heavy modules after importing the CLI: {loaded or check.stderr.strip()[-300:]}")
    return [
        Row("start-up: python -c pass", f"{baseline_ms:.0f} ms"),
        Row("start-up: pond --help", f"{help_ms:.0f} ms", "< 150 ms", help_ms < 150),
        Row("start-up: pond list", f"{list_ms:.0f} ms", "< 350 ms", list_ms < 350),
        Row("start-up: pond cat <small table>", f"{cat_ms:.0f} ms"),
        Row("start-up: import pond_pipeline.cli.main", f"{import_ms:.0f} ms"),
        Row("start-up: dagster not imported by CLI", str(no_dagster), "True", no_dagster),
    ]


# -- 4. commits and opening ------------------------------------------------------------------
OPEN_SCRIPT = """
import sys, time
t0 = time.perf_counter()
from pond_pipeline.api import Pond
t1 = time.perf_counter()
snapshot = Pond.open(sys.argv[1]).snapshot()
t2 = time.perf_counter()
print(t1 - t0, t2 - t1, snapshot.last_txn)
"""


def commits(workdir: Path, transactions: int, open_after: int, repeat: int) -> list[Row]:
    pond_dir = workdir / "commits.pond"
    if pond_dir.exists():
        shutil.rmtree(pond_dir)
    pond = Pond.create(str(pond_dir))
    durations: list[float] = []
    t0 = time.perf_counter()
    for index in range(open_after):
        t = time.perf_counter()
        with pond.transaction(f"bench commit {index}") as tx:
            tx.write_bytes(f"/commits/f{index:05d}.txt", f"tiny {index}\n".encode(), parents=True)
        durations.append(time.perf_counter() - t)
        if index + 1 == transactions < open_after:
            elapsed = time.perf_counter() - t0
            print(
                f"  {transactions} commits: {elapsed:.2f} s, {transactions / elapsed:.1f} commits/s"
            )
    total = time.perf_counter() - t0
    rate = transactions / sum(durations[:transactions])
    slices = []
    step = max(1, open_after // 5)
    for begin in range(0, open_after, step):
        part = durations[begin : begin + step]
        slices.append(f"{begin + 1}-{begin + len(part)}: {statistics.median(part) * 1000:.0f}")
    print(f"  {open_after} commits: {total:.2f} s, {open_after / total:.1f} commits/s")
    print(f"  median ms per commit by range: {'; '.join(slices)}")

    imports, opens, walls = [], [], []
    last = None
    for _ in range(repeat):
        t = time.perf_counter()
        done = subprocess.run(
            [PYTHON, "-c", OPEN_SCRIPT, str(pond_dir)], capture_output=True, text=True, check=False
        )
        walls.append(time.perf_counter() - t)
        if done.returncode != 0:
            print(f"  !! open failed: {done.stderr.strip()[-300:]}")
            continue
        imp, opened, last = done.stdout.split()
        imports.append(float(imp))
        opens.append(float(opened))
    open_s = statistics.median(opens) if opens else float("nan")
    import_s = statistics.median(imports) if imports else float("nan")
    wall_s = statistics.median(walls)
    print(
        f"  open after {open_after} transactions (last txn {last}): "
        f"Pond.open().snapshot() {open_s * 1000:.0f} ms, import {import_s * 1000:.0f} ms, "
        f"whole process {wall_s * 1000:.0f} ms"
    )
    return [
        Row(f"oplog: commits/s (first {transactions})", f"{rate:.1f}"),
        Row(f"oplog: commits/s (all {open_after})", f"{open_after / total:.1f}"),
        Row(
            f"open after {open_after} txns: open+snapshot",
            f"{open_s * 1000:.0f} ms",
            f"< {OPEN_GOAL_S * 1000:.0f} ms",
            open_s < OPEN_GOAL_S,
        ),
        Row(
            f"open after {open_after} txns: whole process",
            f"{wall_s * 1000:.0f} ms (import {import_s * 1000:.0f} ms)",
        ),
    ]


# -- main ------------------------------------------------------------------------------------
def summary(rows: list[Row]) -> None:
    width = max(len(r.name) for r in rows)
    value_width = max(len(r.value) for r in rows)
    print()
    print("=" * (width + value_width + 24))
    print(f"{'SUMMARY':<{width}}  {'figure':<{value_width}}  {'goal':<10} ok")
    print("-" * (width + value_width + 24))
    for r in rows:
        mark = "" if r.ok is None else ("yes" if r.ok else "NO")
        print(f"{r.name:<{width}}  {r.value:<{value_width}}  {r.goal:<10} {mark}")
    print("=" * (width + value_width + 24))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="20 versions, 200 transactions")
    parser.add_argument("--workdir", type=Path, help="keep the data here (default: a temp dir)")
    parser.add_argument("--versions", type=int, help="series versions (default 200; quick 20)")
    parser.add_argument("--rows", type=int, default=50_000, help="rows per version")
    parser.add_argument("--repeat", type=int, default=5, help="timed runs per query")
    parser.add_argument("--transactions", type=int, default=200, help="commits timed")
    parser.add_argument("--open-after", type=int, help="transactions before the open test")
    args = parser.parse_args()
    versions = args.versions or (20 if args.quick else 200)
    open_after = args.open_after or (args.transactions if args.quick else 1000)
    open_after = max(open_after, args.transactions)

    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="pond-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    print(
        f"pond store benchmark: {versions} versions x {args.rows:,} rows, "
        f"{args.transactions} commits, open after {open_after}; in {workdir}"
    )
    print(
        f"python {sys.version.split()[0]}, duckdb {duckdb.__version__}, pyarrow {pa.__version__}, "
        f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}"
    )
    rows: list[Row] = []
    try:
        print("\n1. build")
        pond, files, built = build(workdir, versions, args.rows)
        rows += built
        print(f"\n2. queries (median of {args.repeat} after a warm-up; pond and DuckDB alternate)")
        rows += queries(pond, files, versions, args.rows, args.repeat)
        print("\n3. start-up (median of 5)")
        rows += startup(str(workdir / "pond"), 5)
        print("\n4. commits and opening")
        rows += commits(workdir, args.transactions, open_after, 3)
    finally:
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)
    rows.append(Row("load average (1 min) at the end", f"{os.getloadavg()[0]:.2f}"))
    summary(rows)


if __name__ == "__main__":
    main()
