"""``csv_directory`` and its transient ``csv_to_parquet`` children."""

from datetime import UTC, datetime

import pyarrow as pa
import pytest

from pond_pipeline.errors import ConfigError, FactoryError

NORTH = b"ts,value,station\n2024-01-01T00:00:00,1.5,n1\n2024-01-01T01:00:00,2.5,n1\n"
SOUTH = (
    b"ts,value,station\n"
    b"2024-01-01T00:30:00,7,s1\n2024-01-01T01:30:00,8,s1\n2024-01-01T02:30:00,9,s1\n"
)


@pytest.fixture
def inbox(pond):
    """``/inbox/north.csv`` and a ``csv_directory`` of series over ``/inbox/*.csv``."""
    with pond.transaction("inbox") as tx:
        tx.write_bytes("/inbox/north.csv", NORTH, parents=True)
        tx.create_dynamic(
            "/csv",
            "csv_directory",
            {"pattern": "/inbox/*.csv", "type": "series", "temporal_column": "ts"},
        )
    return pond


def test_lists_one_series_per_csv(inbox):
    listed = inbox.list_nodes("/csv/")

    assert [(n.path, n.entry_type.value, n.factory) for n in listed] == [
        ("/csv/north.series", "file:series", "csv_to_parquet")
    ]
    table = inbox.read_table("/csv/north.series")
    assert table.to_pylist() == [
        {"ts": datetime(2024, 1, 1, 0), "value": 1.5, "station": "n1"},
        {"ts": datetime(2024, 1, 1, 1), "value": 2.5, "station": "n1"},
    ]
    assert inbox.describe("/csv/north.series")["time_column"] == "ts"
    assert inbox.describe("/csv")["type"] == "directory"


def test_csv_added_later_appears_without_touching_the_directory(inbox):
    log_length = len(inbox.log())
    with inbox.transaction("another file") as tx:
        tx.write_bytes("/inbox/south.csv", SOUTH)

    assert [n.path for n in inbox.list_nodes("/csv/")] == ["/csv/north.series", "/csv/south.series"]
    assert inbox.read_table("/csv/south.series").column("value").to_pylist() == [7, 8, 9]
    assert len(inbox.log()) == log_length + 1  # only the CSV's own transaction


def test_children_are_queryable(inbox):
    by_source = inbox.query("SELECT sum(value) AS total FROM source", source="/csv/north.series")
    by_path = inbox.query("SELECT max(ts) AS last FROM '/csv/north.series'")
    by_glob = inbox.query("SELECT count(*) AS n FROM '/csv/*.series'")

    assert by_source.to_pylist() == [{"total": 4.0}]
    assert by_path.to_pylist() == [{"last": datetime(2024, 1, 1, 1)}]
    assert by_glob.to_pylist() == [{"n": 2}]


def test_only_data_files_are_listed(pond, make_events):
    with pond.transaction("mixed") as tx:
        tx.write_bytes("/inbox/north.csv", NORTH, parents=True)
        tx.write_table("/inbox/events.series", make_events(3), "series", time_column="ts")
        tx.create_dynamic("/tables", "csv_directory", {"pattern": "/inbox/*"})

    assert [n.path for n in pond.list_nodes("/tables/")] == ["/tables/north.table"]
    assert pond.read_table("/tables/north.table").num_rows == 2


def test_schema_overrides_types(pond):
    with pond.transaction("typed") as tx:
        tx.write_bytes("/inbox/south.csv", SOUTH, parents=True)
        tx.create_dynamic(
            "/typed",
            "csv_directory",
            {"pattern": "/inbox/*.csv", "schema": {"value": "double", "ts": "timestamptz"}},
        )

    table = pond.read_table("/typed/south.table")

    assert table.schema.field("value").type == pa.float64()
    assert table.schema.field("ts").type == pa.timestamp("us", tz="UTC")
    assert table.column("value").to_pylist() == [7.0, 8.0, 9.0]
    assert table.column("ts")[0].as_py() == datetime(2024, 1, 1, 0, 30, tzinfo=UTC)


def test_text_temporal_column_is_parsed_as_timestamps(pond):
    with pond.transaction("text times") as tx:
        tx.write_bytes("/inbox/north.csv", NORTH, parents=True)
        tx.create_dynamic(
            "/s",
            "csv_directory",
            {
                "pattern": "/inbox/*.csv",
                "type": "series",
                "temporal_column": "ts",
                "schema": {"ts": "varchar"},
            },
        )

    table = pond.read_table("/s/north.series")

    assert table.schema.field("ts").type == pa.timestamp("us")
    assert table.column("ts")[1].as_py() == datetime(2024, 1, 1, 1)


def test_bad_cast_names_the_column(pond):
    with pond.transaction("bad cast") as tx:
        tx.write_bytes("/inbox/north.csv", NORTH, parents=True)
        tx.create_dynamic(
            "/bad", "csv_directory", {"pattern": "/inbox/*.csv", "schema": {"station": "double"}}
        )

    with pytest.raises(FactoryError) as caught:
        pond.read_table("/bad/north.table")

    assert caught.value.subject == "/bad/north.table"
    assert "column 'station' (string) does not convert to double" in caught.value.message
    assert "change the type of 'station' in schema" in caught.value.message


def test_series_temporal_column_defaults_to_timestamp(pond):
    with pond.transaction("default") as tx:
        tx.write_bytes("/inbox/x.csv", b"timestamp,v\n2024-01-01 00:00:00,1\n", parents=True)
        tx.create_dynamic("/s", "csv_directory", {"pattern": "/inbox/*.csv", "type": "series"})

    assert pond.describe("/s/x.series")["time_column"] == "timestamp"
    assert pond.read_table("/s/x.series").num_rows == 1


@pytest.mark.parametrize(
    ("csv", "config", "expected"),
    [
        (NORTH, {"temporal_column": "time"}, "the temporal column 'time' is missing"),
        (
            b"ts,value\n1,2\n",
            {"temporal_column": "ts"},
            "the temporal column 'ts' is int64, not a timestamp",
        ),
        (
            b"ts,value\nsoon,2\n",
            {"temporal_column": "ts"},
            "'ts' holds text that is not a timestamp",
        ),
    ],
)
def test_series_needs_a_timestamp_column(pond, csv, config, expected):
    with pond.transaction("series") as tx:
        tx.write_bytes("/inbox/x.csv", csv, parents=True)
        tx.create_dynamic(
            "/s", "csv_directory", {"pattern": "/inbox/*.csv", "type": "series", **config}
        )

    with pytest.raises(FactoryError) as caught:
        pond.read_table("/s/x.series")

    assert expected in caught.value.message


def test_schema_with_an_unknown_type_fails_at_create(pond):
    with pytest.raises(ConfigError) as caught:
        pond.create_dynamic(
            "/csv", "csv_directory", {"pattern": "/in/*.csv", "schema": {"v": "decimalish"}}
        )

    assert "schema: Value error, column 'v': unknown type 'decimalish'" in caught.value.message
    assert pond.list_nodes("/") == []


def test_children_carry_the_directory_settings(inbox):
    with inbox.transaction("ttl") as tx:
        tx.create_dynamic(
            "/csv",
            "csv_directory",
            {
                "pattern": "/inbox/*.csv",
                "type": "series",
                "temporal_column": "ts",
                "cache_ttl": "6h",
            },
            overwrite=True,
        )

    child = inbox.describe("/csv/north.series")

    assert child["factory"] == "csv_to_parquet"
    assert child["config"] == {
        "source": "/inbox/north.csv",
        "type": "series",
        "temporal_column": "ts",
        "cache_ttl": "6h",
    }
    assert inbox.read_table("/csv/north.series").num_rows == 2


def test_same_file_name_twice_is_an_error(pond):
    with pond.transaction("two dirs") as tx:
        tx.write_bytes("/in/a/north.csv", NORTH, parents=True)
        tx.write_bytes("/in/b/north.csv", NORTH, parents=True)
        tx.create_dynamic("/csv", "csv_directory", {"pattern": "/in/**/*.csv"})

    with pytest.raises(FactoryError) as caught:
        pond.list_nodes("/csv/")

    assert "/in/a/north.csv and /in/b/north.csv would both be listed as 'north.table'" in (
        caught.value.message
    )


def test_children_carry_the_schema_formats(pond):
    with pond.transaction("co2") as tx:
        tx.write_bytes("/inbox/co2.csv", b"date,co2\n19580329,316.1\n", parents=True)
        tx.create_dynamic(
            "/csv",
            "csv_directory",
            {"pattern": "/inbox/*.csv", "schema": {"date": {"type": "date", "format": "%Y%m%d"}}},
        )

    child = pond.describe("/csv/co2.table")

    assert child["config"]["schema"] == {"date": {"type": "date", "format": "%Y%m%d"}}
    assert pond.read_table("/csv/co2.table").to_pylist() == [
        {"date": datetime(1958, 3, 29).date(), "co2": 316.1}
    ]
