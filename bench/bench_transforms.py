"""Benchmark of ``temporal_reduce``: vs hand-written DuckDB, and incremental vs full.

    .venv/bin/python bench/bench_transforms.py            # a year: 10 sensors x 365 days
    .venv/bin/python bench/bench_transforms.py --quick    # 30 days
    .venv/bin/python bench/bench_transforms.py --workdir /tmp/reduce-bench  # keep the data

Prints figures only (no asserts). The data: one series per sensor
(``/sensors/s00.series``...), one version per day of 1-minute rows (a year of 10 sensors:
5,256,000 rows in 3,650 versions), written with ``tx.write_table`` in batches of
transactions; the same rows as plain Parquet files on the host, one file per sensor and
day. Everything runs in one process on the same data:

1. (a) a ``temporal_reduce`` to 1h and 1d (avg, min, max of ``value``, and the row count)
   read child by child with an empty cache, and materialized in full, vs (b) the same
   ``time_bucket`` GROUP BY written by hand in DuckDB over the plain Parquet files, one
   query per sensor and resolution. Goal: a/b <= 1.3.
2. After appending one more day (one version per sensor): the incremental
   re-materialization vs a full one (the same config at another path, never materialized
   before), ``--repeat`` rounds of one day each. Goal: under 5% of the full time. The
   results are checked bit-for-bit equal, and ``rows_read`` of both is shown.

``--inline-threshold`` sets the pond's inline threshold. The default here is 0 (every
version a blob file, like the plain Parquet files): a day of one sensor is ~20 KB, below
the pond default of 64 KB, and inline versions are fetched from the oplog one by one.
"""

import argparse
import math
import os
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pond_pipeline.api import Pond
from pond_pipeline.project.materialize import Materialized, materialize

START = datetime(2024, 1, 1, tzinfo=UTC)
MINUTES = 1440
TS = pa.timestamp("us", tz="UTC")
REDUCE = "/reduce"
FULL = "/full"
RESOLUTIONS = {"1h": "1 hour", "1d": "1 day"}
AGGREGATIONS = [
    {"type": "avg", "columns": ["value"]},
    {"type": "min", "columns": ["value"]},
    {"type": "max", "columns": ["value"]},
    {"type": "count", "columns": ["*"]},
]
RATIO_GOAL = 1.3
INCREMENTAL_GOAL = 0.05


def day_table(sensor: int, day: int) -> pa.Table:
    """One sensor's minutes of one day: a daily sine, a faster wobble and a trend."""
    first = int((START + timedelta(days=day)).timestamp()) * 1_000_000
    offsets = pc.multiply(pa.array(range(MINUTES), pa.int64()), 60_000_000)
    micros = pc.add(offsets, first)
    seconds = pc.divide(micros.cast(pa.float64()), 1e6)
    daily = pc.sin(pc.add(pc.multiply(seconds, 2 * math.pi / 86400), sensor))
    wobble = pc.sin(pc.multiply(seconds, 0.0173 * (sensor + 1)))
    value = pc.add(pc.add(pc.multiply(daily, 5.0), pc.multiply(wobble, 0.7)), 20.0 + sensor)
    return pa.table({"timestamp": micros.cast(TS), "value": value})


def sensor_path(sensor: int) -> str:
    return f"/sensors/s{sensor:02d}.series"


def write_days(pond: Pond, plain: Path, sensors: int, days: range, batch: int) -> float:
    """Each day as one version per sensor (``batch`` days per transaction), and the same
    rows as plain Parquet files; returns the seconds the pond writes took."""
    spent = 0.0
    for first in range(days.start, days.stop, batch):
        chunk = range(first, min(first + batch, days.stop))
        tables = {(s, d): day_table(s, d) for d in chunk for s in range(sensors)}
        for (sensor, day), table in tables.items():
            folder = plain / f"s{sensor:02d}"
            folder.mkdir(parents=True, exist_ok=True)
            pq.write_table(table, folder / f"{day:04d}.parquet", compression="zstd")
        t0 = time.perf_counter()
        with pond.transaction(f"bench days {chunk.start}..{chunk.stop - 1}") as tx:
            for (sensor, _day), table in tables.items():
                tx.write_table(sensor_path(sensor), table, "series", parents=True)
        spent += time.perf_counter() - t0
    return spent


def reduce_config(sensors_glob: str = "/sensors/*.series") -> dict[str, Any]:
    return {
        "in_pattern": sensors_glob,
        "out_pattern": "$1",
        "resolutions": list(RESOLUTIONS),
        "aggregations": AGGREGATIONS,
    }


def leaf_paths(root: str, sensors: int) -> list[str]:
    return [
        f"{root}/s{sensor:02d}/res={resolution}.series"
        for sensor in range(sensors)
        for resolution in RESOLUTIONS
    ]


def hand_written(plain: Path, sensors: int) -> dict[tuple[int, str], pa.Table]:
    """(b): one DuckDB ``time_bucket`` GROUP BY per sensor and resolution."""
    con = duckdb.connect(":memory:")
    con.execute("SET TimeZone='UTC'")
    out = {}
    for sensor in range(sensors):
        files = str(plain / f"s{sensor:02d}" / "*.parquet").replace("'", "''")
        for resolution, interval in RESOLUTIONS.items():
            out[(sensor, resolution)] = con.sql(
                f"SELECT time_bucket(INTERVAL '{interval}', timestamp) AS timestamp, "
                'avg(value) AS "value.avg", min(value) AS "value.min", '
                'max(value) AS "value.max", count(*) AS "count" '
                f"FROM read_parquet('{files}') GROUP BY 1 ORDER BY 1"
            ).to_arrow_table()
    con.close()
    return out


def read_children(pond: Pond, sensors: int) -> dict[tuple[int, str], pa.Table]:
    """(a): every child of the reduce read with an empty cache (each one produced)."""
    pond.cache.clear()
    return {
        (sensor, resolution): pond.read_table(f"{REDUCE}/s{sensor:02d}/res={resolution}.series")
        for sensor in range(sensors)
        for resolution in RESOLUTIONS
    }


def agree(ours: dict[Any, pa.Table], theirs: dict[Any, pa.Table]) -> bool:
    """Same buckets, counts, min and max; averages within 1e-9 (summation order)."""
    for key, table in ours.items():
        other = theirs[key]
        if table.num_rows != other.num_rows:
            return False
        for name in ("timestamp", "value.min", "value.max", "count"):
            if table.column(name).to_pylist() != other.column(name).to_pylist():
                return False
        averages = table.column("value.avg").to_pylist()
        pairs = zip(averages, other.column("value.avg").to_pylist(), strict=True)
        if not all(math.isclose(a, b, rel_tol=1e-9) for a, b in pairs):
            return False
    return True


def alternated(
    first: Callable[[], Any], second: Callable[[], Any], repeat: int
) -> tuple[tuple[float, Any], tuple[float, Any]]:
    """The median seconds of ``repeat`` runs of each (after one warm-up each), run in
    turns so a change in the machine's load weighs on both alike; and the last results."""
    results = [first(), second()]
    samples: list[list[float]] = [[], []]
    for _ in range(repeat):
        for index, action in enumerate((first, second)):
            t0 = time.perf_counter()
            results[index] = action()
            samples[index].append(time.perf_counter() - t0)
    return (
        (statistics.median(samples[0]), results[0]),
        (statistics.median(samples[1]), results[1]),
    )


def once(action: Callable[[], Any]) -> tuple[float, Any]:
    t0 = time.perf_counter()
    result = action()
    return time.perf_counter() - t0, result


def leaf_metrics(result: Materialized) -> dict[str, Any]:
    found = {}
    for child in result.children:
        if child.metrics:
            found[child.path] = child.metrics
        found |= leaf_metrics(child)
    return found


def verdict(value: float, goal: float) -> str:
    return "meets the goal" if value <= goal else "MISSES the goal"


def materialize_fresh(pond: Pond, path: str) -> tuple[float, Materialized]:
    """A new ``temporal_reduce`` at ``path`` (never materialized) materialized in full,
    with an empty cache: its seconds and result."""
    with pond.transaction(f"bench {path}") as tx:
        tx.create_dynamic(path, "temporal_reduce", reduce_config())
    pond.cache.clear()
    return once(lambda: materialize(pond, path))


def rows_read(result: Materialized) -> int:
    return sum(int(m["rows_read"]) for m in leaf_metrics(result).values())


def run(workdir: Path, days: int, sensors: int, batch: int, repeat: int, inline: int) -> None:
    print(f"load average at start: {os.getloadavg()[0]:.2f} ({os.cpu_count()} CPUs)")
    pond = Pond.create(str(workdir / "pond"), inline_threshold=inline)
    plain = workdir / "plain"
    rows = days * sensors * MINUTES
    print(f"data: {sensors} sensors x {days} days of 1-minute rows = {rows:,} rows")
    written = write_days(pond, plain, sensors, range(days), batch)
    versions = days * sensors
    transactions = math.ceil(days / batch)
    print(f"  pond: {versions:,} versions in {transactions} transactions, {written:.1f} s")
    print(f"  plain Parquet: {versions:,} files under {plain}")
    with pond.transaction("bench reduce node") as tx:
        tx.create_dynamic(REDUCE, "temporal_reduce", reduce_config())
    leaves = len(leaf_paths(REDUCE, sensors))

    print(f"\n1. reduce to {', '.join(RESOLUTIONS)} ({leaves} child series), median of {repeat}")
    (hand_s, theirs), (read_s, ours) = alternated(
        lambda: hand_written(plain, sensors), lambda: read_children(pond, sensors), repeat
    )
    print(f"  (b)  DuckDB time_bucket GROUP BY over plain Parquet: {hand_s:8.3f} s")
    ratio = read_s / hand_s
    print(f"  (a)  temporal_reduce, children read (empty cache):  {read_s:8.3f} s")
    print(f"       a/b = {ratio:.2f} (goal <= {RATIO_GOAL}): {verdict(ratio, RATIO_GOAL)}")
    print(f"       same figures as (b): {agree(ours, theirs)}")
    pond.cache.clear()
    runs = [once(lambda: materialize(pond, REDUCE))]
    runs += [materialize_fresh(pond, f"{FULL}_{i}") for i in range(1, repeat)]
    full_s = statistics.median(seconds for seconds, _ in runs)
    first = runs[0][1]
    print(
        f"  (a') temporal_reduce materialized (produce + write {first.written} versions): "
        f"{full_s:8.3f} s, a'/b = {full_s / hand_s:.2f}; rows read {rows_read(first):,}"
    )

    print(f"\n2. one more day appended (one version per sensor), {repeat} rounds")
    shares, equal = [], True
    for round_ in range(repeat):
        day = days + round_
        append_s = write_days(pond, plain, sensors, range(day, day + 1), batch)
        pond.cache.clear()
        incremental_s, incremental = once(lambda: materialize(pond, REDUCE))
        recompute = f"{FULL}_day{day}"
        recompute_s, recomputed = materialize_fresh(pond, recompute)
        shares.append(incremental_s / recompute_s)
        print(
            f"  day {day + 1} (appended in {append_s:.2f} s): incremental {incremental_s:.3f} s, "
            f"rows read {rows_read(incremental):,} | full {recompute_s:.3f} s, "
            f"rows read {rows_read(recomputed):,} | {shares[-1]:.1%}"
        )
        equal = equal and all(
            pond.read_table(path).equals(pond.read_table(path.replace(REDUCE, recompute, 1)))
            for path in leaf_paths(REDUCE, sensors)
        )
    share = statistics.median(shares)
    print(
        f"  incremental / full = {share:.1%} (median; goal < {INCREMENTAL_GOAL:.0%}): "
        f"{verdict(share, INCREMENTAL_GOAL)}"
    )
    print(f"  incremental results equal the full ones, bit for bit: {equal}")
    print(f"\nload average at end: {os.getloadavg()[0]:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="30 days instead of a year")
    parser.add_argument("--days", type=int, help="days of data (default 365, --quick 30)")
    parser.add_argument("--sensors", type=int, default=10)
    parser.add_argument("--batch", type=int, default=30, help="days per write transaction")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs / rounds per figure")
    parser.add_argument("--inline-threshold", type=int, default=0)
    parser.add_argument("--workdir", type=Path, help="keep the data here (default: a temp dir)")
    args = parser.parse_args()
    days = args.days or (30 if args.quick else 365)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="pond-reduce-bench-"))
    if args.workdir and workdir.exists():
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        run(workdir, days, args.sensors, args.batch, args.repeat, args.inline_threshold)
    finally:
        if not args.workdir:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
