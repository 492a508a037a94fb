"""A dynamic node's content is reused until a source changes."""

from datetime import UTC, datetime, timedelta


def high_priority(pond):
    pond.create_dynamic(
        "/alerts/high.series",
        "sql_derived_series",
        {"source": "/events/all.series", "query": "SELECT * FROM source WHERE priority >= 3"},
    )


def test_repeat_read_is_a_cache_hit(events_pond):
    high_priority(events_pond)
    first = events_pond.read_table("/alerts/high.series")
    hits, misses = events_pond.cache.hits, events_pond.cache.misses

    again = events_pond.read_table("/alerts/high.series")

    assert again.equals(first)
    assert events_pond.cache.hits > hits
    assert events_pond.cache.misses == misses
    assert events_pond.cache.stats().by_factory["sql_derived_series"][0] == 1
    assert len(list(events_pond.location.cache.glob("*/*.parquet"))) == 1


def test_new_source_version_is_a_miss_with_the_new_rows(events_pond, make_events):
    high_priority(events_pond)
    assert events_pond.read_table("/alerts/high.series").num_rows == 400
    misses = events_pond.cache.misses

    events_pond.write_table("/events/all.series", make_events(10, start=1000), "series")
    table = events_pond.read_table("/alerts/high.series")

    assert events_pond.cache.misses > misses
    assert table.num_rows == 404  # events 1003, 1004, 1008, 1009 are priority 3 or 4
    assert table.column("ts")[-1].as_py() == datetime(2024, 1, 1, tzinfo=UTC) + timedelta(
        minutes=1009
    )
    assert len(list(events_pond.location.cache.glob("*/*.parquet"))) == 2


def test_csv_child_is_converted_once(pond):
    with pond.transaction("inbox") as tx:
        tx.write_bytes("/inbox/a.csv", b"k,v\n1,2\n3,4\n", parents=True)
        tx.create_dynamic("/csv", "csv_directory", {"pattern": "/inbox/*.csv", "cache_ttl": "1h"})

    pond.read_table("/csv/a.table")
    hits = pond.cache.hits
    table = pond.read_table("/csv/a.table")

    assert pond.cache.hits > hits
    assert table.to_pylist() == [{"k": 1, "v": 2}, {"k": 3, "v": 4}]
    assert pond.cache.stats().by_factory["csv_to_parquet"][0] == 1
