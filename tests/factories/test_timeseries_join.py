"""``timeseries_join``: series lined up on one time axis (full outer join on time)."""

import re
from datetime import UTC, datetime, timedelta

import pyarrow as pa
import pytest

from pond_pipeline.errors import ConfigError, FactoryError
from pond_pipeline.project.materialize import materialize

T0 = datetime(2024, 1, 1, tzinfo=UTC)
NORTH = "/stations/north.series"  # 00:00 .. 02:00 every minute: 121 rows, temp 1.0
SOUTH = "/stations/south.series"  # 01:00 .. 03:00 every 5 minutes: 25 rows, temp 2.0


def synthetic(start, end, interval, value, *, name="temp", time_column="timestamp"):
    return {
        "start": f"2024-01-01T{start}:00Z",
        "end": f"2024-01-01T{end}:00Z",
        "interval": interval,
        "time_column": time_column,
        "points": [{"name": name, "components": [{"type": "constant", "value": value}]}],
    }


def two_stations(pond):
    with pond.transaction("stations") as tx:
        tx.create_dynamic(NORTH, "synthetic", synthetic("00:00", "02:00", "1m", 1), parents=True)
        tx.create_dynamic(SOUTH, "synthetic", synthetic("01:00", "03:00", "5m", 2))


def join(pond, *inputs, path="/joined.series", **extra):
    pond.create_dynamic(path, "timeseries_join", {"inputs": list(inputs), **extra})


def counts(pond, path="/joined.series", where="true"):
    """(rows, rows with both stations, south only null, north only null) where ``where``."""
    sql = (
        'SELECT count(*) AS n, count(*) FILTER ("north.temp" IS NOT NULL AND "south.temp" IS NOT '
        'NULL) AS both, count(*) FILTER ("south.temp" IS NULL) AS south_null, '
        'count(*) FILTER ("north.temp" IS NULL) AS north_null FROM source WHERE ' + where
    )
    return tuple(pond.query(sql, source=path).to_pylist()[0].values())


def arrow_scan_rows(plan: str) -> int:
    """Rows the arrow scans of an ``EXPLAIN ANALYZE`` read, summed over every scan (also
    scans drawn side by side, as the branches of a union are)."""
    total = 0
    pending: list[tuple[int, int]] = []  # the columns of scan boxes whose rows are not seen yet
    for line in plan.splitlines():
        for found in re.finditer("ARROW_SCAN", line):
            left = line.rfind("│", 0, found.start())
            pending.append((left, line.find("│", found.end()) + 1))
        for box in list(pending):
            match = re.search(r"│\s*([\d,]+) rows?\b", line[box[0] : box[1]])
            if match:
                total += int(match.group(1).replace(",", ""))
                pending.remove(box)
    return total


def test_two_stations_with_overlapping_ranges(pond):
    two_stations(pond)
    join(pond, {"pattern": NORTH, "scope": "north"}, {"pattern": SOUTH, "scope": "south"})

    table = pond.read_table("/joined.series")

    assert table.column_names == ["timestamp", "north.temp", "south.temp"]
    assert table.num_rows == 121 + 25 - 13  # the 13 south times 01:00..02:00 are north's too
    times = table.column("timestamp").to_pylist()
    assert times == sorted(set(times))
    assert (times[0], times[-1]) == (T0, T0 + timedelta(hours=3))
    # before the overlap only north, after it only south; inside both every 5 minutes
    assert counts(pond) == (133, 13, 108, 12)
    assert counts(pond, where="timestamp < '2024-01-01 01:00:00+00'") == (60, 0, 60, 0)
    assert counts(
        pond, where="timestamp BETWEEN '2024-01-01 01:00:00+00' AND '2024-01-01 02:00:00+00'"
    ) == (61, 13, 48, 0)
    assert counts(pond, where="timestamp > '2024-01-01 02:00:00+00'") == (12, 0, 0, 12)
    assert set(table.column("north.temp").drop_null().to_pylist()) == {1.0}
    assert set(table.column("south.temp").drop_null().to_pylist()) == {2.0}
    assert pond.describe("/joined.series")["time_column"] == "timestamp"


def test_a_time_filter_reaches_every_source(pond):
    two_stations(pond)
    with pond.transaction("static copies") as tx:
        for station in ("north", "south"):
            rows = pond.read_table(f"/stations/{station}.series")
            tx.write_table(f"/static/{station}.series", rows, "series", parents=True)
    join(
        pond,
        {"pattern": "/static/north.series", "scope": "north"},
        {"pattern": "/static/south.series", "scope": "south"},
    )
    first_half_hour = "timestamp < TIMESTAMPTZ '2024-01-01 00:30:00+00'"

    unfiltered = pond.explain("SELECT count(*) FROM source", source="/joined.series")
    filtered = pond.explain(
        f"SELECT count(*) FROM source WHERE {first_half_hour}", source="/joined.series"
    )

    assert arrow_scan_rows(unfiltered) == 121 + 25
    assert arrow_scan_rows(filtered) == 30  # north's first 30 minutes; nothing of south
    assert "\"timestamp\" < TIMESTAMPTZ '2024-01-01 00:30:00+00'" in filtered


def test_unscoped_inputs_keep_their_names(pond):
    with pond.transaction("two measures") as tx:
        tx.create_dynamic(
            "/m/temp.series",
            "synthetic",
            synthetic("00:00", "00:09", "1m", 5, name="temp"),
            parents=True,
        )
        tx.create_dynamic(
            "/m/wind.series", "synthetic", synthetic("00:05", "00:14", "1m", 9, name="wind")
        )
    join(pond, {"pattern": "/m/temp.series"}, {"pattern": "/m/wind.series"})

    table = pond.read_table("/joined.series")

    assert table.column_names == ["timestamp", "temp", "wind"]
    assert table.num_rows == 15
    assert table.column("temp").null_count == 5
    assert table.column("wind").null_count == 5


def test_inputs_sharing_a_scope_are_unioned_first(pond):
    """An instrument replaced at 01:00: the old one's rows until then, the new one's after."""
    with pond.transaction("two instruments") as tx:
        tx.create_dynamic("/old.series", "synthetic", synthetic("00:00", "01:30", "1m", 1))
        tx.create_dynamic("/new.series", "synthetic", synthetic("00:30", "02:00", "1m", 3))
        tx.create_dynamic("/other.series", "synthetic", synthetic("00:00", "02:00", "30m", 7))
    join(
        pond,
        {"pattern": "/old.series", "scope": "site", "range": {"end": "2024-01-01T01:00:00Z"}},
        {"pattern": "/new.series", "scope": "site", "range": {"begin": "2024-01-01T01:00:00Z"}},
        {"pattern": "/other.series", "scope": "other"},
    )

    table = pond.read_table("/joined.series")

    assert table.column_names == ["timestamp", "site.temp", "other.temp"]
    assert table.num_rows == 121
    values = table.column("site.temp").to_pylist()
    assert values[:60] == [1.0] * 60  # 00:00 .. 00:59 from the old instrument
    assert values[60:] == [3.0] * 61  # 01:00 .. 02:00 from the new one
    assert table.column("other.temp").drop_null().to_pylist() == [7.0] * 5


def test_where_a_scope_overlaps_the_later_input_wins(pond):
    with pond.transaction("two instruments") as tx:
        tx.create_dynamic("/old.series", "synthetic", synthetic("00:00", "00:09", "1m", 1))
        tx.create_dynamic("/new.series", "synthetic", synthetic("00:05", "00:14", "1m", 3))
    join(pond, {"pattern": "/old.series", "scope": "s"}, {"pattern": "/new.series", "scope": "s"})

    values = pond.read_table("/joined.series").column("s.temp").to_pylist()

    assert values == [1.0] * 5 + [3.0] * 10


def test_a_glob_input_is_the_union_of_its_matches_and_follows_new_ones(pond):
    with pond.transaction("first site") as tx:
        tx.create_dynamic(
            "/sites/a.series", "synthetic", synthetic("00:00", "00:09", "1m", 1), parents=True
        )
        tx.create_dynamic(
            "/ref.series", "synthetic", synthetic("00:00", "00:29", "10m", 0, name="ref")
        )
    join(pond, {"pattern": "/sites/*.series", "scope": "sites"}, {"pattern": "/ref.series"})
    assert pond.read_table("/joined.series").num_rows == 12  # 00:00..00:09, 00:20

    pond.create_dynamic("/sites/b.series", "synthetic", synthetic("00:10", "00:19", "1m", 2))
    table = pond.read_table("/joined.series")

    assert table.num_rows == 21  # 00:00 .. 00:20
    assert table.column("sites.temp").to_pylist() == [1.0] * 10 + [2.0] * 10 + [None]


def test_an_input_matching_nothing_contributes_no_rows(pond):
    two_stations(pond)
    join(pond, {"pattern": NORTH, "scope": "north"}, {"pattern": "/nowhere/*.series", "scope": "x"})
    join(pond, {"pattern": "/nowhere/*.series"}, path="/empty.series")

    table = pond.read_table("/joined.series")
    empty = pond.read_table("/empty.series")

    assert (table.column_names, table.num_rows) == (["timestamp", "north.temp"], 121)
    assert (empty.column_names, empty.num_rows) == (["timestamp"], 0)


def test_range_trims_one_input(pond):
    two_stations(pond)
    north = {
        "pattern": NORTH,
        "scope": "north",
        "range": {"begin": "2024-01-01T00:30:00Z", "end": "2024-01-01T01:00:00Z"},
    }
    join(pond, north, {"pattern": SOUTH, "scope": "south"})

    assert counts(pond) == (30 + 25, 0, 30, 25)


def test_transforms_rename_an_inputs_columns(pond):
    """The south logger names its time ``Time`` and its measure ``Temperature (C)``."""
    logger = synthetic("01:00", "03:00", "5m", 2, name="Temperature (C)", time_column="Time")
    rules = [
        {"type": "direct", "from": "Time", "to": "timestamp"},
        {"type": "pattern", "pattern": r"^(\w+) \((\w+)\)$", "replacement": "$1.$2"},
    ]
    with pond.transaction("logger") as tx:
        tx.create_dynamic(NORTH, "synthetic", synthetic("00:00", "02:00", "1m", 1), parents=True)
        tx.create_dynamic("/logger/south.series", "synthetic", logger, parents=True)
        tx.create_dynamic("/rules/logger", "column_rename", {"rules": rules}, parents=True)
    join(
        pond,
        {"pattern": NORTH, "scope": "north"},
        {"pattern": "/logger/*.series", "scope": "south", "transforms": ["/rules/logger"]},
    )

    table = pond.read_table("/joined.series")

    assert table.column_names == ["timestamp", "north.temp", "south.Temperature.C"]
    assert table.num_rows == 133
    assert table.column("south.Temperature.C").drop_null().to_pylist() == [2.0] * 25


def test_a_column_two_unscoped_inputs_give_is_an_error(pond):
    two_stations(pond)
    join(pond, {"pattern": NORTH}, {"pattern": SOUTH})

    with pytest.raises(FactoryError) as caught:
        pond.read_table("/joined.series")

    assert caught.value.subject == "/joined.series"
    assert (
        "column 'temp' would come from both input 0 ('/stations/north.series') "
        "(/stations/north.series) and input 1 ('/stations/south.series') (/stations/south.series)"
    ) in caught.value.message
    assert "give the inputs a scope" in caught.value.message


def test_different_time_column_types_are_an_error_and_nothing_is_written(pond):
    naive = pa.table(
        {
            "timestamp": pa.array([datetime(2024, 1, 1, h) for h in range(3)], pa.timestamp("ms")),
            "temp": [1.0, 2.0, 3.0],
        }
    )
    two_stations(pond)
    pond.write_table("/naive.series", naive, "series", time_column="timestamp")
    join(pond, {"pattern": NORTH, "scope": "north"}, {"pattern": "/naive.series", "scope": "naive"})
    before = len(pond.log())

    with pytest.raises(FactoryError) as caught:
        pond.read_table("/joined.series")
    with pytest.raises(FactoryError):
        materialize(pond, "/joined.series")

    assert (
        "inputs have different time-column types: 'timestamp' is timestamp[us, tz=UTC] in "
        "/stations/north.series (input 0 ('/stations/north.series')) but timestamp[ms] in "
        "/naive.series (input 1 ('/naive.series'))"
    ) in caught.value.message
    assert len(pond.log()) == before


def test_an_input_without_the_time_column_is_named(pond):
    two_stations(pond)
    join(pond, {"pattern": NORTH, "scope": "north"}, time_column="ts")

    with pytest.raises(FactoryError) as caught:
        pond.read_table("/joined.series")

    assert (
        "/stations/north.series (input 0 ('/stations/north.series')) has no time column 'ts'"
        in caught.value.message
    )


@pytest.mark.parametrize(
    ("inputs", "expected"),
    [
        ([], "inputs: List should have at least 1 item"),
        (
            [
                {
                    "pattern": NORTH,
                    "range": {"begin": "2024-01-02T00:00:00Z", "end": "2024-01-01T00:00:00Z"},
                }
            ],
            "inputs.0.range: Value error, 'end' must be after 'begin'",
        ),
        (
            [{"pattern": NORTH, "scope": ""}],
            "inputs.0.scope: String should have at least 1 character",
        ),
        ([{"pattern": NORTH, "window": "1h"}], "inputs.0.window: unknown field"),
        (
            [{"pattern": NORTH, "transforms": ["/rules/none"]}],
            "source '/rules/none' does not exist",
        ),
    ],
)
def test_bad_configs_are_refused_and_nothing_is_written(pond, inputs, expected):
    two_stations(pond)
    before = len(pond.log())

    with pytest.raises(ConfigError) as caught:
        join(pond, *inputs)

    assert expected in caught.value.reason
    assert caught.value.subject == "/joined.series"
    assert len(pond.log()) == before


def test_a_transform_that_is_not_a_column_rename_is_an_error(pond):
    two_stations(pond)
    join(pond, {"pattern": NORTH, "scope": "north", "transforms": [SOUTH]})

    with pytest.raises(FactoryError) as caught:
        pond.read_table("/joined.series")

    assert (
        "transform /stations/south.series is a 'synthetic' node, not a column_rename node"
        in caught.value.message
    )
