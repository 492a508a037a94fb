"""``timeseries_pivot``: the same columns of many series as ``<name>.<column>``, on time."""

from datetime import UTC, datetime, timedelta

import pyarrow as pa
import pytest

from factories.timeseries_pivot import series_name
from pond_pipeline.errors import ConfigError, FactoryError
from pond_pipeline.project.materialize import materialize

T0 = datetime(2024, 1, 1, tzinfo=UTC)


def weather(start, end, interval, **values):
    return {
        "start": f"2024-01-01T{start}:00Z",
        "end": f"2024-01-01T{end}:00Z",
        "interval": interval,
        "points": [
            {"name": name, "components": [{"type": "constant", "value": value}]}
            for name, value in values.items()
        ],
    }


def two_sites(pond, south_humidity=True):
    """north: 00:00..01:00 every 10 min (7 rows); south: 00:30..01:30 every 15 min (5 rows)."""
    south = {"temp": 20, "humidity": 60} if south_humidity else {"temp": 20}
    with pond.transaction("sites") as tx:
        tx.create_dynamic(
            "/sites/north/weather.series",
            "synthetic",
            weather("00:00", "01:00", "10m", temp=10, humidity=50, pressure=1000),
            parents=True,
        )
        tx.create_dynamic(
            "/sites/south/weather.series",
            "synthetic",
            weather("00:30", "01:30", "15m", **south),
            parents=True,
        )


def pivot(pond, pattern="/sites/*/weather.series", columns=("temp", "humidity"), **extra):
    config = {"pattern": pattern, "columns": list(columns), **extra}
    pond.create_dynamic("/pivot.series", "timeseries_pivot", config)


def minutes(table):
    return [int((t - T0).total_seconds() // 60) for t in table.column("timestamp").to_pylist()]


def test_two_columns_across_two_sites(pond):
    two_sites(pond)
    pivot(pond)

    table = pond.read_table("/pivot.series")

    assert table.column_names == [
        "timestamp",
        "north.temp",
        "north.humidity",
        "south.temp",
        "south.humidity",
    ]
    assert table.num_rows == 7 + 5 - 2  # 00:30 and 01:00 are both sites' times
    assert minutes(table) == [0, 10, 20, 30, 40, 45, 50, 60, 75, 90]
    north = [10.0, 10.0, 10.0, 10.0, 10.0, None, 10.0, 10.0, None, None]
    south = [None, None, None, 20.0, None, 20.0, None, 20.0, 20.0, 20.0]
    assert table.column("north.temp").to_pylist() == north
    assert table.column("south.temp").to_pylist() == south
    assert table.column("north.humidity").to_pylist() == [v and 50.0 for v in north]
    assert table.column("south.humidity").to_pylist() == [v and 60.0 for v in south]
    both = pond.query(
        'SELECT count(*) AS n FROM source WHERE "north.temp" IS NOT NULL AND "south.temp" '
        "IS NOT NULL",
        source="/pivot.series",
    )
    assert both.column("n")[0].as_py() == 2
    assert pond.describe("/pivot.series")["time_column"] == "timestamp"


def test_a_column_missing_from_one_series_is_nulls_for_it(pond):
    two_sites(pond, south_humidity=False)
    pivot(pond)

    table = pond.read_table("/pivot.series")

    assert table.schema.field("south.humidity").type == pa.float64()
    assert table.column("south.humidity").null_count == table.num_rows == 10
    assert table.column("north.humidity").null_count == 3


def test_a_series_added_later_appears(pond):
    two_sites(pond)
    pivot(pond, columns=["temp"])
    assert pond.read_table("/pivot.series").column_names == [
        "timestamp",
        "north.temp",
        "south.temp",
    ]

    pond.create_dynamic(
        "/sites/east/weather.series",
        "synthetic",
        weather("02:00", "02:00", "1m", temp=30),
        parents=True,
    )
    table = pond.read_table("/pivot.series")

    assert table.column_names == ["timestamp", "east.temp", "north.temp", "south.temp"]
    assert table.num_rows == 11
    assert table.column("timestamp")[-1].as_py() == T0 + timedelta(hours=2)


def test_without_a_wildcard_the_base_name_is_used(pond):
    two_sites(pond)
    pivot(pond, pattern="/sites/north/weather.series", columns=["pressure"])

    table = pond.read_table("/pivot.series")

    assert table.column_names == ["timestamp", "weather.pressure"]
    assert table.num_rows == 7


@pytest.mark.parametrize(
    ("pattern", "path", "name"),
    [
        ("/sites/*/weather.series", "/sites/north/weather.series", "north"),
        ("/sites/*.series", "/sites/north.series", "north"),
        ("/sites/*/*.series", "/sites/north/wind.series", "north.wind"),
        ("/sites/**/temp.series", "/sites/a/b/temp.series", "a.b"),
        ("/sites/north.series", "/sites/north.series", "north"),
        ("/sites/[ns]orth.series", "/sites/north.series", "north"),  # a class is no capture
        ("/sites/site-?.series", "/sites/site-4.series", "4"),
    ],
)
def test_series_name(pattern, path, name):
    assert series_name(pattern, path) == name


def test_transforms_apply_to_every_series_first(pond):
    two_sites(pond)
    rules = [{"type": "direct", "from": "temp", "to": "Temperature", "cast": "integer"}]
    pond.create_dynamic("/rules/temp", "column_rename", {"rules": rules}, parents=True)
    pivot(pond, columns=["Temperature"], transforms=["/rules/temp"])

    table = pond.read_table("/pivot.series")

    assert table.column_names == ["timestamp", "north.Temperature", "south.Temperature"]
    assert table.schema.field("north.Temperature").type == pa.int32()
    assert table.column("south.Temperature").drop_null().to_pylist() == [20] * 5


def test_a_pattern_matching_nothing_is_an_empty_series(pond):
    pivot(pond, pattern="/nowhere/*.series")

    table = pond.read_table("/pivot.series")

    assert (table.column_names, table.num_rows) == (["timestamp"], 0)


def test_a_column_no_series_has_is_an_error_and_nothing_is_written(pond):
    two_sites(pond)
    pivot(pond, columns=["temp", "humidty"])
    before = len(pond.log())

    with pytest.raises(FactoryError) as caught:
        pond.read_table("/pivot.series")
    with pytest.raises(FactoryError):
        materialize(pond, "/pivot.series")

    assert caught.value.subject == "/pivot.series"
    assert (
        "unknown column 'humidty': none of the 2 series '/sites/*/weather.series' matches has it "
        "(columns of /sites/north/weather.series: timestamp, temp, humidity, pressure)"
    ) in caught.value.message
    assert len(pond.log()) == before


def test_two_series_with_one_name_is_an_error(pond):
    with pond.transaction("two files, one stem") as tx:
        config = weather("00:00", "00:10", "5m", temp=1)
        tx.create_dynamic("/a/weather.series", "synthetic", config, parents=True)
        tx.create_dynamic("/b/weather.series", "synthetic", config, parents=True)
    pivot(pond, pattern="/[ab]/weather.series", columns=["temp"])

    with pytest.raises(FactoryError) as caught:
        pond.read_table("/pivot.series")

    assert (
        "/a/weather.series and /b/weather.series would both be named 'weather'"
        in caught.value.message
    )


def test_different_time_column_types_are_an_error(pond):
    two_sites(pond)
    naive = pa.table(
        {"timestamp": pa.array([datetime(2024, 1, 1)], pa.timestamp("us")), "temp": [1.0]}
    )
    pond.write_table("/sites/west/weather.series", naive, "series", parents=True)
    pivot(pond, columns=["temp"])

    with pytest.raises(FactoryError) as caught:
        pond.read_table("/pivot.series")

    assert "inputs have different time-column types" in caught.value.message
    assert "timestamp[us] in /sites/west/weather.series (series 'west')" in caught.value.message


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"columns": []}, "columns: List should have at least 1 item"),
        ({"columns": ["temp", "temp"]}, "column 'temp' is listed more than once"),
        ({"column": ["temp"]}, "column: unknown field"),
    ],
)
def test_bad_configs_are_refused(pond, change, expected):
    config = {"pattern": "/sites/*/weather.series", "columns": ["temp"], **change}

    with pytest.raises(ConfigError) as caught:
        pond.create_dynamic("/pivot.series", "timeseries_pivot", config)

    assert expected in caught.value.reason
    assert len(pond.log()) == 1
