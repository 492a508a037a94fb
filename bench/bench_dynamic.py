"""Benchmark of dynamic nodes: cached dynamic series vs static, and csv_directory vs read_csv.

    .venv/bin/python bench/bench_dynamic.py            # the full run (about two minutes)
    .venv/bin/python bench/bench_dynamic.py --quick    # a small sanity run
    .venv/bin/python bench/bench_dynamic.py --workdir /tmp/pond-bench  # keep the data

Prints figures only (no asserts). Every comparison runs in the same process on the
same data:

1. A dynamic series read from the materialization cache vs the same rows stored as a
   static series (goal: within 10%), for a ``sql_derived_series`` over a static series
   and for a ``synthetic`` series; plain pyarrow / DuckDB on a Parquet file of the same
   rows are shown as the floor.
2. A ``csv_directory`` child over a 1,000,000-row CSV imported as a data file: its first
   (uncached) read, cached reads (same process; a fresh process reading the disk cache),
   and DuckDB ``read_csv`` of the same host file, for ``count(*)`` and a full read.
"""

import argparse
import math
import os
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

BASE = "/bench/base.series"
DERIVED = "/bench/derived.series"
DERIVED_STATIC = "/bench/derived_static.series"
SYNTHETIC = "/bench/synthetic.series"
SYNTHETIC_STATIC = "/bench/synthetic_static.series"
CSV_DATA = "/inbox/big.csv"
CSV_DIRECTORY = "/processed"
CSV_CHILD = "/processed/big.series"
CSV_STATIC = "/static/big.series"
BASE_TIME = datetime(2024, 1, 1, tzinfo=UTC)
SENSORS = 20
CACHED_GOAL = 1.10
PYTHON = sys.executable
DERIVED_QUERY = (
    "SELECT timestamp, sensor_id, value, value * 1.8 + 32 AS value_f FROM source WHERE value >= 5"
)


@dataclass
class Row:
    """One line of the summary table."""

    name: str
    value: str
    goal: str = ""
    ok: bool | None = None


# -- timing helpers ------------------------------------------------------------------------
def interleaved(actions: list[Callable[[], Any]], repeat: int) -> list[tuple[float, Any]]:
    """Median milliseconds of ``repeat`` runs of each action after one warm-up, and its
    last result. The actions run in turn in each round (in reverse order every other
    round), so a change in the machine's load, or a cost an action leaves behind, hits
    them all alike."""
    results = [action() for action in actions]
    samples: list[list[float]] = [[] for _ in actions]
    for round_ in range(repeat):
        order = list(range(len(actions)))
        for index in order if round_ % 2 == 0 else reversed(order):
            t0 = time.perf_counter()
            results[index] = actions[index]()
            samples[index].append((time.perf_counter() - t0) * 1000)
    return [(statistics.median(s), r) for s, r in zip(samples, results, strict=True)]


def once(action: Callable[[], Any]) -> tuple[float, Any]:
    t0 = time.perf_counter()
    result = action()
    return (time.perf_counter() - t0) * 1000, result


def literal(moment: datetime) -> str:
    return f"TIMESTAMPTZ '{moment.isoformat()}'"


def first_row(table: pa.Table) -> tuple[Any, ...]:
    return tuple(column[0].as_py() for column in table.columns)


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


def shown(row: tuple[Any, ...]) -> str:
    return ", ".join(f"{v:.6g}" if isinstance(v, float) else str(v) for v in row)


def duck() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(":memory:")
    con.execute("SET TimeZone='UTC'")
    return con


def quoted(path: Path) -> str:
    return "'" + str(path).replace("'", "''") + "'"


# -- 1. cached dynamic series vs static --------------------------------------------------------
def build_base(pond: Pond, versions: int, rows: int) -> float:
    """The static series the derivation reads: ``versions`` x ``rows`` consecutive seconds."""
    base_us = pc.multiply(pa.array(range(rows), pa.int64()), 1_000_000)
    sensors = pa.array([f"sensor-{i % SENSORS:02d}" for i in range(rows)], pa.string())
    start_us = (BASE_TIME - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)
    t0 = time.perf_counter()
    for index in range(versions):
        micros = pc.add(base_us, pa.scalar(start_us + index * rows * 1_000_000, pa.int64()))
        table = pa.table(
            {
                "timestamp": micros.cast(pa.timestamp("us", tz="UTC")),
                "sensor_id": sensors,
                "value": pc.multiply(pc.random(rows), 100.0),
            }
        )
        with pond.transaction(f"bench base {index}") as tx:
            tx.write_table(BASE, table, "series", parents=True)
    return time.perf_counter() - t0


def synthetic_config(total_rows: int) -> dict[str, Any]:
    end = BASE_TIME + timedelta(seconds=total_rows - 1)
    return {
        "start": BASE_TIME.isoformat(),
        "end": end.isoformat(),
        "interval": "1s",
        "points": [
            {
                "name": "temperature",
                "components": [
                    {"type": "sine", "amplitude": 5, "period": "1d", "offset": 20},
                    {"type": "square", "amplitude": 0.5, "period": "1h"},
                ],
            },
            {"name": "level", "components": [{"type": "line", "slope": 0.001, "offset": 3}]},
        ],
    }


def cached_vs_static(
    pond: Pond, plain_dir: Path, versions: int, rows: int, repeat: int
) -> list[Row]:
    total = versions * rows
    built = build_base(pond, versions, rows)
    print(f"  static base series {BASE}: {versions} versions x {rows:,} rows in {built:.2f} s")
    with pond.transaction("bench dynamic nodes") as tx:
        tx.create_dynamic(DERIVED, "sql_derived_series", {"source": BASE, "query": DERIVED_QUERY})
        tx.create_dynamic(SYNTHETIC, "synthetic", synthetic_config(total))

    pairs = [
        ("sql_derived_series", DERIVED, DERIVED_STATIC, "value"),
        ("synthetic", SYNTHETIC, SYNTHETIC_STATIC, "temperature"),
    ]
    out: list[Row] = []
    for label, dynamic, static, column in pairs:
        print(f"\n  {label}: {dynamic}")
        pond.cache.clear()
        fill_ms, content = once(lambda path=dynamic: pond.read_table(path))
        print(
            f"    first read (produce, fill the cache): {fill_ms:.1f} ms, {content.num_rows:,} rows"
        )
        write_ms, _ = once(lambda t=content, p=static: _write_static(pond, p, t))
        plain = plain_dir / f"{label}.parquet"
        pq.write_table(content, plain, compression="zstd")
        print(
            f"    same rows stored as static {static}: {write_ms:.1f} ms; plain file {plain.name}"
        )

        start = BASE_TIME + timedelta(seconds=total * 0.4 + 17)
        end = start + timedelta(seconds=max(1, total // 100))
        where = f"WHERE timestamp >= {literal(start)} AND timestamp < {literal(end)}"
        filter_sql = f"SELECT count(*), avg({column}) FROM source {where}"
        count_sql = f"SELECT count(*), sum({column}) FROM source"
        con = duck()
        con.execute(f"CREATE VIEW source AS SELECT * FROM read_parquet({quoted(plain)})")

        cases: list[tuple[str, Callable[[str], Any], Callable[[], Any]]] = [
            (
                "full read (read_table)",
                lambda path: pond.read_table(path),
                lambda p=plain: pq.read_table(p),
            ),
            (
                "count+sum (query)",
                lambda path, sql=count_sql: pond.query(sql, source=path),
                lambda sql=count_sql, c=con: c.sql(sql).to_arrow_table(),
            ),
            (
                "1% time filter (query)",
                lambda path, sql=filter_sql: pond.query(sql, source=path),
                lambda sql=filter_sql, c=con: c.sql(sql).to_arrow_table(),
            ),
        ]
        print(
            f"    {'case':<24} {'cached ms':>10} {'static ms':>10} {'ratio':>6} "
            f"{'plain ms':>9}  result"
        )
        for name, pond_call, plain_call in cases:
            (dyn_ms, dyn_result), (sta_ms, sta_result), (plain_ms, plain_result) = interleaved(
                [
                    lambda call=pond_call, p=dynamic: call(p),
                    lambda call=pond_call, p=static: call(p),
                    plain_call,
                ],
                repeat,
            )
            ratio = dyn_ms / sta_ms
            if name.startswith("full read"):
                ok_rows = dyn_result.num_rows == sta_result.num_rows == plain_result.num_rows
                agree = ok_rows and dyn_result.equals(sta_result)
                result = f"{dyn_result.num_rows:,} rows"
            else:
                rows_seen = [first_row(t) for t in (dyn_result, sta_result, plain_result)]
                agree = same(rows_seen[0], rows_seen[1]) and same(rows_seen[0], rows_seen[2])
                result = shown(rows_seen[0])
            print(
                f"    {name:<24} {dyn_ms:10.1f} {sta_ms:10.1f} {ratio:6.2f} {plain_ms:9.1f}  "
                + result
            )
            if not agree:
                print(
                    f"    !!!!! MISMATCH for {label} {name}: cached, static and plain differ !!!!!"
                )
            out.append(
                Row(
                    f"{label}: {name}, cached/static",
                    f"{ratio:.2f}  ({dyn_ms:.1f} vs {sta_ms:.1f} ms; plain {plain_ms:.1f})",
                    f"<= {CACHED_GOAL:.2f}",
                    ratio <= CACHED_GOAL and agree,
                )
            )
        con.close()
    return out


def _write_static(pond: Pond, path: str, table: pa.Table) -> None:
    with pond.transaction(f"bench static copy {path}") as tx:
        tx.write_table(path, table, "series", time_column="timestamp", parents=True)


# -- 2. csv_directory over a large CSV ----------------------------------------------------------
def make_csv(target: Path, rows: int) -> float:
    """``rows`` lines of timestamp, sensor, value (one second apart), written by DuckDB."""
    t0 = time.perf_counter()
    con = duck()
    con.execute("SELECT setseed(0.42)")
    con.execute(
        "COPY (SELECT TIMESTAMP '2024-01-01 00:00:00' + i * INTERVAL 1 SECOND AS timestamp, "
        f"'sensor-' || lpad((i % {SENSORS})::VARCHAR, 2, '0') AS sensor, "
        f"round(random() * 100 - 20, 4) AS value FROM range({rows}) t(i)) "
        f"TO {quoted(target)} (HEADER, DELIMITER ',')"
    )
    con.close()
    return time.perf_counter() - t0


FRESH_SCRIPT = """
import sys, time
t0 = time.perf_counter()
from pond_pipeline.api import Pond
t1 = time.perf_counter()
pond = Pond.open(sys.argv[1])
t2 = time.perf_counter()
count = pond.query("SELECT count(*) FROM source", source=sys.argv[2]).column(0)[0].as_py()
t3 = time.perf_counter()
table = pond.read_table(sys.argv[2])
t4 = time.perf_counter()
print(t1 - t0, t2 - t1, t3 - t2, t4 - t3, count, table.num_rows, pond.cache.hits, pond.cache.misses)
"""


def csv_directory(pond_uri: str, workdir: Path, rows: int, repeat: int) -> list[Row]:
    csv_path = workdir / "big.csv"
    made = make_csv(csv_path, rows)
    size_mb = csv_path.stat().st_size / 1e6
    print(f"  generated {csv_path.name}: {rows:,} rows, {size_mb:.1f} MB in {made:.2f} s")
    pond = Pond.open(pond_uri)
    import_ms, _ = once(lambda: _import(pond, csv_path, CSV_DATA, "data"))
    static_ms, _ = once(lambda: _import(pond, csv_path, CSV_STATIC, "series"))
    with pond.transaction("bench csv_directory") as tx:
        tx.create_dynamic(
            CSV_DIRECTORY,
            "csv_directory",
            {"pattern": "/inbox/*.csv", "type": "series", "temporal_column": "timestamp"},
        )
    print(f"  pond copy as data file {CSV_DATA}: {import_ms:.0f} ms")
    print(f"  pond copy as static series {CSV_STATIC} (reference): {static_ms:.0f} ms")
    print(f"  csv_directory {CSV_DIRECTORY} lists {pond.list_nodes(CSV_DIRECTORY + '/')[0].path}")

    count_sql = "SELECT count(*) FROM source"

    def uncached(action: Callable[[Pond], Any]) -> Callable[[], Any]:
        """A fresh ``Pond`` (so the blob's checksum is checked too) and an empty cache;
        only ``action`` is timed."""

        def run() -> tuple[float, Any]:
            fresh = Pond.open(pond_uri)
            fresh.cache.clear()
            t0 = time.perf_counter()
            result = action(fresh)
            return (time.perf_counter() - t0) * 1000, result

        return run

    first = [
        uncached(lambda p: p.read_table(CSV_CHILD)),
        uncached(lambda p: p.query(count_sql, source=CSV_CHILD)),
    ]
    first_samples: list[list[float]] = [[], []]
    first_results: list[Any] = [None, None]
    for _ in range(repeat):
        for index, run in enumerate(first):
            elapsed, first_results[index] = run()
            first_samples[index].append(elapsed)
    first_full_ms, first_count_ms = (statistics.median(s) for s in first_samples)
    first_full, first_count = first_results

    con = duck()
    source = f"read_csv({quoted(csv_path)}, header=true)"
    cached = Pond.open(pond_uri)
    cached.read_table(CSV_CHILD)  # fills the cache
    (full_ms, full), (static_full_ms, static_full), (duck_full_ms, duck_full) = interleaved(
        [
            lambda: cached.read_table(CSV_CHILD),
            lambda: cached.read_table(CSV_STATIC),
            lambda: con.sql(f"SELECT * FROM {source}").to_arrow_table(),
        ],
        repeat,
    )
    (count_ms, count), (static_count_ms, _), (duck_count_ms, duck_count) = interleaved(
        [
            lambda: cached.query(count_sql, source=CSV_CHILD),
            lambda: cached.query(count_sql, source=CSV_STATIC),
            lambda: con.sql(f"SELECT count(*) FROM {source}").to_arrow_table(),
        ],
        repeat,
    )
    con.close()

    fresh_samples: list[list[float]] = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        done = subprocess.run(
            [PYTHON, "-c", FRESH_SCRIPT, pond_uri, CSV_CHILD],
            capture_output=True,
            text=True,
            check=False,
            env={k: v for k, v in os.environ.items() if k != "POND"},
        )
        wall = time.perf_counter() - t0
        if done.returncode != 0:
            print(f"  !! fresh process failed ({done.returncode}): {done.stderr.strip()[-300:]}")
            continue
        parts = done.stdout.split()
        fresh_samples.append([float(x) * 1000 for x in parts[:4]] + [wall * 1000])
        if int(parts[4]) != rows or int(parts[5]) != rows or int(parts[7]) != 0:
            print(f"  !!!!! fresh process: count {parts[4]}, rows {parts[5]}, misses {parts[7]}")
    fresh = [statistics.median(s[i] for s in fresh_samples) for i in range(5)]
    fresh_import, fresh_open, fresh_count, fresh_full, fresh_wall = fresh

    counts = {
        "uncached": first_count.column(0)[0].as_py(),
        "cached": count.column(0)[0].as_py(),
        "duckdb": duck_count.column(0)[0].as_py(),
    }
    full_rows = {
        "uncached": first_full.num_rows,
        "cached": full.num_rows,
        "static": static_full.num_rows,
        "duckdb": duck_full.num_rows,
    }
    if set(counts.values()) != {rows} or set(full_rows.values()) != {rows}:
        print(f"  !!!!! MISMATCH: counts {counts}, full reads {full_rows}, expected {rows} !!!!!")
    if not full.equals(first_full):
        print("  !!!!! MISMATCH: the cached read differs from the first read !!!!!")

    print(f"\n  {'read of ' + CSV_CHILD:<46} {'count(*) ms':>12} {'full read ms':>13}")
    lines = [
        ("first read, uncached (fresh Pond, cache cleared)", first_count_ms, first_full_ms),
        ("cached, same process", count_ms, full_ms),
        ("cached, fresh process (disk cache)", fresh_count, fresh_full),
        ("DuckDB read_csv of the host file", duck_count_ms, duck_full_ms),
        (f"static series {CSV_STATIC} (reference)", static_count_ms, static_full_ms),
    ]
    for name, a, b in lines:
        print(f"  {name:<46} {a:12.1f} {b:13.1f}")
    print(
        f"  fresh process: import {fresh_import:.0f} ms, open {fresh_open:.0f} ms, "
        f"whole process {fresh_wall:.0f} ms (count + full read)"
    )
    print(
        f"  schema: pond {', '.join(f'{f.name} {f.type}' for f in full.schema)}; "
        f"read_csv {', '.join(f'{f.name} {f.type}' for f in duck_full.schema)}"
    )
    return [
        Row(f"csv: import {rows:,}-row CSV as data file", f"{import_ms:.0f} ms ({size_mb:.1f} MB)"),
        Row(
            "csv: first read / cached, full",
            f"{first_full_ms / full_ms:.1f}x  ({first_full_ms:.0f} vs {full_ms:.1f} ms)",
        ),
        Row(
            "csv: first read / cached, count",
            f"{first_count_ms / count_ms:.1f}x  ({first_count_ms:.0f} vs {count_ms:.1f} ms)",
        ),
        Row(
            "csv: cached (fresh process) full, count",
            f"{fresh_full:.1f} ms, {fresh_count:.1f} ms",
        ),
        Row(
            "csv: cached / DuckDB read_csv, full",
            f"{full_ms / duck_full_ms:.2f}  ({full_ms:.1f} vs {duck_full_ms:.1f} ms)",
        ),
        Row(
            "csv: cached / DuckDB read_csv, count",
            f"{count_ms / duck_count_ms:.2f}  ({count_ms:.1f} vs {duck_count_ms:.1f} ms)",
        ),
        Row(
            "csv: first read / DuckDB read_csv, full",
            f"{first_full_ms / duck_full_ms:.2f}  ({first_full_ms:.0f} vs {duck_full_ms:.1f} ms)",
        ),
        Row(
            "csv: first read / DuckDB read_csv, count",
            f"{first_count_ms / duck_count_ms:.2f}  "
            f"({first_count_ms:.0f} vs {duck_count_ms:.1f} ms)",
        ),
    ]


def _import(pond: Pond, host: Path, path: str, kind: str) -> None:
    with pond.transaction(f"bench copy {path}") as tx:
        tx.copy(host, path, kind, parents=True)


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
    parser.add_argument("--quick", action="store_true", help="100,000-row series and CSV")
    parser.add_argument("--workdir", type=Path, help="keep the data here (default: a temp dir)")
    parser.add_argument("--versions", type=int, default=10, help="versions of the base series")
    parser.add_argument("--rows", type=int, help="rows per base version (default 100,000)")
    parser.add_argument("--csv-rows", type=int, help="rows of the CSV (default 1,000,000)")
    parser.add_argument("--repeat", type=int, default=9, help="timed runs per case")
    args = parser.parse_args()
    rows = args.rows or (10_000 if args.quick else 100_000)
    csv_rows = args.csv_rows or (100_000 if args.quick else 1_000_000)

    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="pond-bench-dynamic-"))
    workdir.mkdir(parents=True, exist_ok=True)
    print(
        f"pond dynamic-node benchmark: series {args.versions} x {rows:,} rows, "
        f"CSV {csv_rows:,} rows, median of {args.repeat} after a warm-up; in {workdir}"
    )
    print(
        f"python {sys.version.split()[0]}, duckdb {duckdb.__version__}, pyarrow {pa.__version__}, "
        f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}"
    )
    out: list[Row] = []
    try:
        pond_dir = workdir / "pond"
        plain_dir = workdir / "plain"
        for folder in (pond_dir, plain_dir):
            if folder.exists():
                shutil.rmtree(folder)
        plain_dir.mkdir(parents=True)
        pond = Pond.create(str(pond_dir))
        print("\n1. a cached dynamic series vs the same rows as a static series")
        out += cached_vs_static(pond, plain_dir, args.versions, rows, args.repeat)
        print(f"\n2. a csv_directory child over a {csv_rows:,}-row CSV")
        out += csv_directory(str(pond_dir), workdir, csv_rows, args.repeat)
    finally:
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)
    out.append(Row("load average (1 min) at the end", f"{os.getloadavg()[0]:.2f}"))
    summary(out)


if __name__ == "__main__":
    main()
