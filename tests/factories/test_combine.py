"""``combine``: the union, by column name, of the series a glob matches."""

from datetime import UTC, datetime, timedelta

import pyarrow as pa
import pytest

from pond_pipeline.errors import FactoryError

BASE_TIME = datetime(2024, 1, 1, tzinfo=UTC)
TS = pa.timestamp("us", tz="UTC")


def readings(minutes, values, **extra):
    return pa.table(
        {
            "ts": pa.array([BASE_TIME + timedelta(minutes=m) for m in minutes], TS),
            "value": pa.array(values, pa.float64()),
            **extra,
        }
    )


def test_union_of_matching_series(pond):
    with pond.transaction("sites") as tx:
        tx.write_table("/sites/a/temp.series", readings([0, 2], [1.0, 3.0]), "series", parents=True)
        tx.write_table("/sites/b/temp.series", readings([1], [2.0]), "series", parents=True)
        tx.write_table("/sites/b/other.series", readings([9], [9.0]), "series")
        tx.create_dynamic("/all/temp.series", "combine", {"pattern": "/sites/*/temp.series"})

    table = pond.read_table("/all/temp.series")

    assert table.column("value").to_pylist() == [1.0, 2.0, 3.0]
    assert pond.describe("/all/temp.series")["time_column"] == "ts"


def test_columns_are_matched_by_name(pond):
    station = {"station": ["b1", "b1"]}
    with pond.transaction("sites") as tx:
        tx.write_table("/s/a.series", readings([0], [1.0]), "series", parents=True)
        tx.write_table("/s/b.series", readings([1, 2], [2.0, 3.0], **station), "series")
        tx.create_dynamic("/all.series", "combine", {"pattern": "/s/*.series", "time_column": "ts"})

    table = pond.read_table("/all.series")

    assert table.select(["value", "station"]).to_pylist() == [
        {"value": 1.0, "station": None},
        {"value": 2.0, "station": "b1"},
        {"value": 3.0, "station": "b1"},
    ]


def test_later_members_are_included(pond):
    with pond.transaction("one") as tx:
        tx.write_table("/s/a.series", readings([0], [1.0]), "series", parents=True)
        tx.create_dynamic("/all.series", "combine", {"pattern": "/s/*.series"})
    assert pond.read_table("/all.series").num_rows == 1

    pond.write_table("/s/b.series", readings([5, 6], [5.0, 6.0]), "series")

    assert pond.read_table("/all.series").num_rows == 3


def test_member_with_another_column_type_is_named(pond):
    bad = pa.table({"ts": readings([1], [0.0]).column("ts"), "value": ["high"]})
    with pond.transaction("sites") as tx:
        tx.write_table("/s/a.series", readings([0], [1.0]), "series", parents=True)
        tx.write_table("/s/b.series", bad, "series")
        tx.create_dynamic("/all.series", "combine", {"pattern": "/s/*.series"})

    with pytest.raises(FactoryError) as caught:
        pond.read_table("/all.series")

    assert caught.value.subject == "/all.series"
    assert "/s/b.series: does not fit the combined schema: " in caught.value.message
    assert "value is string here but double in /s/a.series" in caught.value.message


def test_member_without_the_time_column_is_named(pond):
    with pond.transaction("sites") as tx:
        tx.write_table("/s/a.series", readings([0], [1.0]), "series", parents=True)
        tx.write_table(
            "/s/b.series", readings([0], [1.0]).rename_columns(["time", "value"]), "series"
        )
        tx.create_dynamic("/all.series", "combine", {"pattern": "/s/*.series"})

    with pytest.raises(FactoryError) as caught:
        pond.read_table("/all.series")

    assert "/s/b.series: has no time column 'ts' (its columns: time, value)" in caught.value.message


def test_pattern_matching_nothing_is_an_error(pond):
    pond.create_dynamic("/all.series", "combine", {"pattern": "/nowhere/*.series"})

    with pytest.raises(FactoryError) as caught:
        pond.read_table("/all.series")

    assert "pattern '/nowhere/*.series' matches no series" in caught.value.message
