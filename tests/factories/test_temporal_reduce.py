"""``temporal_reduce`` (and its ``temporal_resolutions`` / ``temporal_bucket`` children):
downsampling synthetic minute data, listing, incremental re-materialization, bad input."""

import statistics
from datetime import UTC, datetime, timedelta
from functools import cache

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from factories.synthetic import SyntheticConfig, generate
from factories.temporal_reduce import expand_out_pattern
from pond_pipeline import paths
from pond_pipeline.errors import ConfigError, FactoryError
from pond_pipeline.paths import glob_captures, wildcard_count
from pond_pipeline.project.materialize import Materialized, materialize

START = datetime(2024, 1, 1, tzinfo=UTC)
TS = pa.timestamp("us", tz="UTC")
DAY = 1440
"""Minutes in a day: rows per day of the generated series."""
REDUCE = "/reduce"
SOURCE = "/sites/north/data.series"
ALL_SERIES = {"type": "avg", "columns": ["*"]}
STATS = [
    {"type": "avg", "columns": ["*"]},
    {"type": "min", "columns": ["*"]},
    {"type": "max", "columns": ["*"]},
    {"type": "count", "columns": ["*"]},
]


@cache
def minute_data(days: int = 4) -> pa.Table:
    """``days`` of minute rows from ``START`` (synthetic): ``temp`` a daily sine around 20
    with noise, ``level`` the constant 3.5."""
    config = SyntheticConfig.model_validate(
        {
            "start": START.isoformat(),
            "end": (START + timedelta(days=days, minutes=-1)).isoformat(),
            "interval": "1m",
            "points": [
                {
                    "name": "temp",
                    "components": [
                        {"type": "sine", "amplitude": 5, "period": "1d", "offset": 20},
                        {"type": "noise", "stddev": 0.5, "seed": 7},
                    ],
                },
                {"name": "level", "components": [{"type": "constant", "value": 3.5}]},
            ],
        }
    )
    schema = pa.schema([("timestamp", TS), ("temp", pa.float64()), ("level", pa.float64())])
    return pa.Table.from_batches(list(generate(config, schema)), schema)


def minutes(first: int, count: int) -> pa.Table:
    """Rows ``first`` .. ``first + count - 1`` (minutes since ``START``)."""
    return minute_data().slice(first, count)


def write_versions(pond, path, *parts: tuple[int, int]) -> None:
    """One series version per ``(first minute, count)``, one transaction each."""
    for first, count in parts:
        with pond.transaction(f"append {path}") as tx:
            tx.write_table(path, minutes(first, count), "series", parents=True)


def reduce_config(**changes):
    return {
        "in_pattern": "/sites/*/data.series",
        "out_pattern": "$1",
        "resolutions": ["1h", "1d"],
        "aggregations": STATS,
        **changes,
    }


def quarters(day: int) -> list[tuple[int, int]]:
    """Day ``day`` (0-based) as four versions of six hours."""
    return [(day * DAY + q * 360, 360) for q in range(4)]


def leaves(result: Materialized) -> dict[str, Materialized]:
    """Every materialized series below a directory's result, by path."""
    found = {}
    for child in result.children:
        if "/res=" in child.path:
            found[child.path] = child
        else:
            found |= leaves(child)
    return found


def full_recompute(pond, path: str) -> tuple[pa.Table, int]:
    """The node produced from scratch (cache cleared), and the rows it read."""
    pond.cache.clear()
    resolver = pond.resolver()
    entry = resolver.cached_output(resolver.resolve(path))
    return pq.read_table(entry.path), int(resolver.metrics[path]["rows_read"])


# -- reducing ---------------------------------------------------------------------------
def test_hourly_and_daily_reduce_of_a_day_of_minute_data(pond):
    write_versions(pond, SOURCE, *quarters(0))
    pond.create_dynamic(REDUCE, "temporal_reduce", reduce_config())
    day = minutes(0, DAY).to_pydict()

    hourly = pond.read_table("/reduce/north/res=1h.series")
    daily = pond.read_table("/reduce/north/res=1d.series")

    columns = ["timestamp", "temp.avg", "level.avg", "temp.min", "level.min"]
    columns += ["temp.max", "level.max", "count"]
    assert hourly.column_names == columns
    assert hourly.num_rows == 24
    assert daily.num_rows == 1
    assert hourly.column("timestamp").to_pylist() == [START + timedelta(hours=h) for h in range(24)]
    assert daily.column("timestamp").to_pylist() == [START]
    assert hourly.schema.field("timestamp").type == TS
    rows = hourly.to_pylist()
    assert [row["count"] for row in rows] == [60] * 24
    assert daily.column("count").to_pylist() == [1440]
    # a constant input: every average (and min and max) is the constant
    for table in (hourly, daily):
        for name in ("level.avg", "level.min", "level.max"):
            assert set(table.column(name).to_pylist()) == {3.5}
    assert all(row["temp.min"] <= row["temp.avg"] <= row["temp.max"] for row in rows)
    for hour in (0, 6, 18):  # against the raw minutes of that hour
        values = day["temp"][hour * 60 : (hour + 1) * 60]
        assert rows[hour]["temp.avg"] == pytest.approx(statistics.fmean(values), abs=1e-12)
        assert rows[hour]["temp.min"] == min(values)
        assert rows[hour]["temp.max"] == max(values)
    assert rows[6]["temp.avg"] == pytest.approx(24.9, abs=0.2)  # the sine's crest at 6h
    assert rows[18]["temp.avg"] == pytest.approx(15.1, abs=0.2)  # its trough at 18h
    assert daily.column("temp.avg")[0].as_py() == pytest.approx(20, abs=0.05)
    assert daily.column("temp.max")[0].as_py() == max(day["temp"])
    assert pond.describe("/reduce/north/res=1h.series")["time_column"] == "timestamp"


def test_listing_is_out_pattern_then_one_series_per_resolution(pond):
    write_versions(pond, SOURCE, (0, 60))
    write_versions(pond, "/sites/south/data.series", (0, 60))
    with pond.transaction("other") as tx:  # not matched: another name, and a table
        tx.write_table("/sites/south/notes.series", minutes(0, 5), "series")
        tx.write_table("/sites/east/data.series", minutes(0, 5), "table", parents=True)
    pond.create_dynamic(REDUCE, "temporal_reduce", reduce_config(resolutions=["6h", "30m"]))

    listed = [(n.path, n.entry_type.short, n.factory) for n in pond.list_nodes("/reduce/**")][1:]

    assert listed == [
        ("/reduce/north", "directory", "temporal_resolutions"),
        ("/reduce/north/res=30m.series", "series", "temporal_bucket"),
        ("/reduce/north/res=6h.series", "series", "temporal_bucket"),
        ("/reduce/south", "directory", "temporal_resolutions"),
        ("/reduce/south/res=30m.series", "series", "temporal_bucket"),
        ("/reduce/south/res=6h.series", "series", "temporal_bucket"),
    ]
    assert pond.read_table("/reduce/south/res=30m.series").column("count").to_pylist() == [30, 30]
    described = pond.describe("/reduce/north/res=6h.series")
    assert described["config"]["source"] == SOURCE
    assert described["config"]["resolution"] == "6h"


def test_a_source_added_later_appears_without_touching_the_node(pond):
    write_versions(pond, SOURCE, (0, 120))
    pond.create_dynamic(REDUCE, "temporal_reduce", reduce_config(resolutions=["1h"]))
    assert [n.path for n in pond.list_nodes("/reduce/")] == ["/reduce/north"]
    log_length = len(pond.log())

    write_versions(pond, "/sites/west/data.series", (0, 180))

    assert [n.path for n in pond.list_nodes("/reduce/")] == ["/reduce/north", "/reduce/west"]
    west = pond.read_table("/reduce/west/res=1h.series")
    assert west.column("count").to_pylist() == [60, 60, 60]
    assert len(pond.log()) == log_length + 1  # only the new series' own transaction
    assert pond.query("SELECT sum(count) AS n FROM '/reduce/*/res=1h.series'").to_pylist() == [
        {"n": 300}
    ]


def test_count_over_star_counts_rows_and_a_column_count_skips_nulls(pond):
    table = minutes(0, 120)
    gaps = pa.array([None if i % 4 == 0 else 1.0 for i in range(120)], pa.float64())
    with pond.transaction("load") as tx:
        tx.write_table("/s/a.series", table.append_column("gappy", gaps), "series", parents=True)
    pond.create_dynamic(
        "/r",
        "temporal_reduce",
        {
            "in_pattern": "/s/*.series",
            "out_pattern": "$1",
            "resolutions": ["1h"],
            "aggregations": [
                {"type": "count", "columns": ["*", "gappy"]},
                {"type": "sum", "columns": ["gappy"]},
            ],
        },
    )

    result = pond.read_table("/r/a/res=1h.series")

    assert result.column_names == ["timestamp", "count", "gappy.count", "gappy.sum"]
    assert result.to_pylist() == [
        {"timestamp": START, "count": 60, "gappy.count": 45, "gappy.sum": 45.0},
        {
            "timestamp": START + timedelta(hours=1),
            "count": 60,
            "gappy.count": 45,
            "gappy.sum": 45.0,
        },
    ]


def test_column_globs_and_first_last_by_time(pond):
    ts = [START + timedelta(minutes=m) for m in (0, 10, 20)]
    early = pa.table(
        {
            "timestamp": pa.array(ts, TS),
            "temp_in": [1.0, 2.0, 3.0],
            "temp_out": pa.array([10, 20, 30], pa.int64()),
            "humidity": [50.0, 60.0, 70.0],
            "station": ["a", "b", "c"],
        }
    )
    late = early.slice(0, 1).set_column(0, "timestamp", pa.array([START - timedelta(hours=1)], TS))
    late = late.set_column(4, "station", pa.array(["z"]))
    with pond.transaction("load") as tx:
        tx.write_table("/s/a.series", early, "series", parents=True)
    with pond.transaction("late") as tx:
        tx.write_table("/s/a.series", late.slice(0, 1), "series")  # an earlier day, arriving last
    pond.create_dynamic(
        "/r",
        "temporal_reduce",
        {
            "in_pattern": "/s/*.series",
            "out_pattern": "x-$1",
            "resolutions": ["1d"],
            "aggregations": [
                {"type": "avg", "columns": ["temp_*"]},
                {"type": "max", "columns": ["*"]},  # numeric columns only
                {"type": "first", "columns": ["station"]},
                {"type": "last", "columns": ["sta*", "temp_in"]},
            ],
        },
    )

    result = pond.read_table("/r/x-a/res=1d.series")

    assert result.column_names == [
        "timestamp",
        "temp_in.avg",
        "temp_out.avg",
        "temp_in.max",
        "temp_out.max",
        "humidity.max",
        "station.first",
        "station.last",
        "temp_in.last",
    ]
    assert result.schema.field("temp_out.avg").type == pa.float64()
    assert result.schema.field("temp_out.max").type == pa.int64()
    assert result.to_pylist()[1] == {
        "timestamp": START,
        "temp_in.avg": 2.0,
        "temp_out.avg": 20.0,
        "temp_in.max": 3.0,
        "temp_out.max": 30,
        "humidity.max": 70.0,
        "station.first": "a",
        "station.last": "c",
        "temp_in.last": 3.0,
    }
    assert result.to_pylist()[0]["station.first"] == "z"  # the late row's own day
    assert result.to_pylist()[0]["timestamp"] == START - timedelta(days=1)


def test_out_pattern_captures(pond):
    for path in ("/a/n1/x.series", "/a/n2/y.series", "/b.series"):
        write_versions(pond, path, (0, 60))
    pond.create_dynamic(
        "/two", "temporal_reduce", reduce_config(in_pattern="/a/*/*.series", out_pattern="$2_$1")
    )
    pond.create_dynamic(
        "/whole", "temporal_reduce", reduce_config(in_pattern="/*.series", out_pattern="$0")
    )

    assert [n.path for n in pond.list_nodes("/two/")] == ["/two/x_n1", "/two/y_n2"]
    assert [n.path for n in pond.list_nodes("/whole/")] == ["/whole/b.series"]
    assert pond.read_table("/whole/b.series/res=1h.series").column("count").to_pylist() == [60]


@pytest.mark.parametrize(
    ("pattern", "path"),
    [
        ("/sites/*/data.series", "/sites/north/data.series"),
        ("/a/*/*.series", "/a/n1/x.series"),
        ("/a/st?-*.series", "/a/st1-north.series"),
        ("/**/data.series", "/x/y/data.series"),
        ("/**/data.series", "/data.series"),
        ("/x/**", "/x/y/z.series"),
        ("/[ab]/*.series", "/a/q.series"),
        ("/[ab]/*.series", "/c/q.series"),
    ],
)
def test_captures_agree_with_the_pond_globs(pattern, path):
    captures = glob_captures(pattern, path)
    matched = paths.match_segments(paths.split(pattern), paths.split(path))
    assert (captures is not None) == matched
    if captures is not None:
        assert wildcard_count(pattern) == len(captures)


def test_expand_out_pattern():
    assert expand_out_pattern("$1-$2.$1", "/a/b/c", ["b", "c"]) == "b-c.b"
    assert expand_out_pattern("$0", "/a/b", []) == "a/b"


# -- incremental materialization ------------------------------------------------------
@pytest.fixture
def reduced(pond):
    """Three days of minute data in 12 versions, reduced to 1h and 1d and materialized."""
    for day in range(3):
        write_versions(pond, SOURCE, *quarters(day))
    pond.create_dynamic(REDUCE, "temporal_reduce", reduce_config())
    first = leaves(materialize(pond, REDUCE))
    assert {path: r.metrics["rows_read"] for path, r in first.items()} == {
        "/reduce/north/res=1h.series": 3 * DAY,
        "/reduce/north/res=1d.series": 3 * DAY,
    }
    return pond


def test_appending_a_version_rematerializes_only_its_buckets(reduced):
    pond = reduced
    before = pond.read_table("/reduce/north/res=1h.series")
    write_versions(pond, SOURCE, (3 * DAY, 360))  # day 4, 00:00 to 05:59

    result = materialize(pond, REDUCE)

    updated = leaves(result)
    assert {path: r.metrics["rows_read"] for path, r in updated.items()} == {
        "/reduce/north/res=1h.series": 360,  # only the new hours
        "/reduce/north/res=1d.series": 360,  # day 4 holds only the new rows
    }
    for path in updated:
        expected, rows_read = full_recompute(pond, path)
        assert rows_read == 3 * DAY + 360
        assert pond.read_table(path).equals(expected)
    hourly = pond.read_table("/reduce/north/res=1h.series")
    assert hourly.num_rows == 72 + 6
    assert hourly.slice(0, 72).equals(before)
    assert pond.read_table("/reduce/north/res=1d.series").column("count").to_pylist() == [
        1440,
        1440,
        1440,
        360,
    ]
    assert materialize(pond, REDUCE).written == 0  # nothing new: nothing written


def test_a_late_version_recomputes_the_earlier_bucket_it_falls_in(reduced):
    pond = reduced
    before = pond.read_table("/reduce/north/res=1h.series")
    moment = START + timedelta(days=1, hours=3, seconds=30)  # between day 2's minutes
    late = pa.table(
        {
            "timestamp": pa.array([moment + timedelta(minutes=7 * i) for i in range(5)], TS),
            "temp": [-40.0, 0.1, 0.2, 0.3, 99.9],
            "level": [3.5] * 5,
        }
    )
    with pond.transaction("late rows") as tx:
        tx.write_table(SOURCE, late, "series")

    updated = leaves(materialize(pond, REDUCE))

    assert {path: r.metrics["rows_read"] for path, r in updated.items()} == {
        "/reduce/north/res=1h.series": 60 + 5,  # hour 3 of day 2, with its old rows
        "/reduce/north/res=1d.series": DAY + 5,  # day 2
    }
    for path in updated:
        expected, rows_read = full_recompute(pond, path)
        assert rows_read == 3 * DAY + 5
        assert pond.read_table(path).equals(expected)
    hourly = pond.read_table("/reduce/north/res=1h.series")
    changed = [i for i in range(72) if hourly.slice(i, 1) != before.slice(i, 1)]
    assert changed == [24 + 3]
    row = hourly.slice(27, 1).to_pylist()[0]
    assert (row["count"], row["temp.min"], row["temp.max"]) == (65, -40.0, 99.9)


def test_a_changed_config_recomputes_in_full(reduced):
    pond = reduced
    write_versions(pond, SOURCE, (3 * DAY, 60))
    changed = reduce_config(aggregations=[*STATS, {"type": "sum", "columns": ["level"]}])
    pond.create_dynamic(REDUCE, "temporal_reduce", changed, overwrite=True)

    updated = leaves(materialize(pond, REDUCE))

    assert {r.metrics["rows_read"] for r in updated.values()} == {3 * DAY + 60}
    daily = pond.read_table("/reduce/north/res=1d.series")
    assert daily.column("level.sum").to_pylist() == [5040.0, 5040.0, 5040.0, 210.0]


# -- bad input --------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        (
            {"aggregations": [{"type": "median", "columns": ["temp"]}]},
            "aggregations.0.type: Value error, unknown aggregation type 'median'; "
            "use one of avg, min, max, sum, count, first, last",
        ),
        ({"resolutions": ["1h", "soon"]}, "resolutions.1: Value error, 'soon': is not a duration"),
        ({"resolutions": ["1h", "60m"]}, "resolutions must differ: 1h listed twice"),
        (
            {"out_pattern": "$1-$2"},
            "out_pattern: Value error, '$1-$2' refers to $2, but in_pattern "
            "'/sites/*/data.series' has 1 wildcard(s); use $0..$1",
        ),
        (
            {"out_pattern": "$1/x"},
            "out_pattern: Value error, '$1/x' names one child, so it cannot hold '/'",
        ),
        ({"aggregations": []}, "aggregations: List should have at least 1 item"),
        (
            {"aggregations": [{"type": "avg", "columns": []}]},
            "aggregations.0.columns: List should have at least 1 item",
        ),
    ],
)
def test_bad_config_is_refused_at_create_and_writes_nothing(pond, changes, expected):
    write_versions(pond, SOURCE, (0, 60))
    log_length = len(pond.log())

    with pytest.raises(ConfigError) as caught:
        pond.create_dynamic(REDUCE, "temporal_reduce", reduce_config(**changes))

    assert caught.value.subject == REDUCE
    assert expected in caught.value.reason
    assert len(pond.log()) == log_length
    assert not pond.resolver().exists(REDUCE)


@pytest.mark.parametrize(
    ("aggregations", "expected"),
    [
        (
            [{"type": "avg", "columns": ["pressure*"]}],
            "avg: the columns glob 'pressure*' matches no numeric column of "
            "/sites/north/data.series; its columns are timestamp, temp, level, site",
        ),
        (
            [{"type": "max", "columns": ["temp", "pressure"]}],
            "max: unknown column 'pressure'; /sites/north/data.series has no such column",
        ),
        (
            [{"type": "sum", "columns": ["site"]}],
            "sum: column 'site' of /sites/north/data.series is string, not a number",
        ),
        (
            [{"type": "avg", "columns": ["*"]}, {"type": "avg", "columns": ["temp"]}],
            "the output column 'temp.avg' is produced twice",
        ),
    ],
)
def test_bad_columns_fail_at_read_naming_node_and_column(pond, aggregations, expected):
    table = minutes(0, 60).append_column("site", pa.array(["north"] * 60))
    with pond.transaction("load") as tx:
        tx.write_table(SOURCE, table, "series", parents=True)
    pond.create_dynamic(REDUCE, "temporal_reduce", reduce_config(aggregations=aggregations))

    with pytest.raises(FactoryError) as caught:
        pond.read_table("/reduce/north/res=1h.series")

    assert caught.value.subject == "/reduce/north/res=1h.series"
    assert "factory 'temporal_bucket' failed" in caught.value.reason
    assert expected in caught.value.message


def test_a_missing_time_column_fails_at_read(pond):
    write_versions(pond, SOURCE, (0, 60))
    pond.create_dynamic(REDUCE, "temporal_reduce", reduce_config(time_column="ts"))

    with pytest.raises(FactoryError, match="the time column 'ts' is not a column of /sites/"):
        pond.read_table("/reduce/north/res=1d.series")


def test_two_inputs_mapped_to_one_child_is_an_error(pond):
    write_versions(pond, "/sites/north/a.series", (0, 60))
    write_versions(pond, "/sites/north/b.series", (0, 60))
    pond.create_dynamic(
        REDUCE, "temporal_reduce", reduce_config(in_pattern="/sites/*/*.series", out_pattern="$1")
    )

    with pytest.raises(FactoryError) as caught:
        pond.list_nodes("/reduce/")

    assert caught.value.subject == REDUCE
    assert (
        "out_pattern '$1' maps both /sites/north/a.series and /sites/north/b.series "
        "to the child 'north'"
    ) in caught.value.message


def test_bad_input_on_the_command_line_exits_non_zero_and_changes_nothing(
    pond, run, error, host_file, pond_state
):
    write_versions(pond, SOURCE, (0, 60))
    config = host_file(
        "reduce.yaml",
        "in_pattern: /sites/*/data.series\nout_pattern: $1\nresolutions: [1h, often]\n"
        "aggregations: [{type: avg, columns: ['*']}]\n",
    )
    before = pond_state()

    result = run("mknod", "temporal_reduce", REDUCE, "--config", str(config))

    assert result.exit_code == 2
    assert "resolutions.1: Value error, 'often': is not a duration" in error(result)
    assert pond_state() == before


def test_a_time_column_other_than_the_series_own_recomputes_in_full(pond):
    def version(first: int) -> pa.Table:
        table = minutes(first, 120).rename_columns(["ts", "temp", "level"])
        measured = pa.array([t + timedelta(minutes=90) for t in table.column("ts").to_pylist()], TS)
        return table.append_column("measured", measured)

    with pond.transaction("load") as tx:
        tx.write_table(SOURCE, version(0), "series", time_column="ts", parents=True)
    pond.create_dynamic(
        REDUCE, "temporal_reduce", reduce_config(time_column="measured", resolutions=["1h"])
    )
    materialize(pond, REDUCE)
    with pond.transaction("append") as tx:
        tx.write_table(SOURCE, version(120), "series")

    updated = leaves(materialize(pond, REDUCE))

    assert updated["/reduce/north/res=1h.series"].metrics["rows_read"] == 240  # all of it
    expected, _ = full_recompute(pond, "/reduce/north/res=1h.series")
    assert pond.read_table("/reduce/north/res=1h.series").equals(expected)
    assert expected.column("count").to_pylist() == [30, 60, 60, 60, 30]
