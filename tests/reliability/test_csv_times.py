"""Times in CSV files are read one documented way, or refused naming the column and lines.

- a time without a zone is read as UTC (kept as a zone-less ``timestamp``), recorded so,
  and ``pond describe`` says it;
- a column with both zone-less and zoned times is refused (anywhere in the file, not only
  in the rows DuckDB's sniffer samples), naming the first line of each kind;
- a named-zone time that a daylight-saving change makes ambiguous or non-existent is
  refused, naming its line;
- numbers are never cast to times; a ``format`` (DuckDB strptime) reads them, and text
  such as ``Jan 1 2000``;
- a line over DuckDB's 2 MB limit is reported at its own line number.

All data is generated here, small and deterministic.
"""

import json
from datetime import UTC, date, datetime, timedelta

import pyarrow as pa
import pytest

from pond_pipeline.errors import ConfigError, FactoryError

SNIFFED_ROWS = 20480
"""Rows DuckDB samples to infer types; a time past them must be checked all the same."""

ZONELESS = "ts,v\n2024-01-01T00:00:00,1\n2024-01-01T01:00:00,2\n"
MIXED = "ts,v\n2024-01-01T00:00:00,1\n2024-01-01T01:00:00,2\n2024-01-01T02:00:00+02:00,3\n"


def csv_of(times: list[str]) -> str:
    return "ts,v\n" + "".join(f"{t},{i}\n" for i, t in enumerate(times))


def minutely(count: int, suffix: str = "") -> list[str]:
    """``count`` times a minute apart from 2024-01-01, each followed by ``suffix``."""
    start = datetime(2024, 1, 1)
    return [(start + timedelta(minutes=i)).isoformat() + suffix for i in range(count)]


# -- through `pond copy` -----------------------------------------------------------------------
def test_zoneless_times_are_read_as_utc_and_described(run, pond, host_file) -> None:
    source = host_file("plain.csv", ZONELESS)
    assert run("copy", str(source), "/plain.series", "--type", "series").exit_code == 0

    table = pond.read_table("/plain.series")
    info = pond.describe("/plain.series")
    text = run("describe", "/plain.series")

    assert table.schema.field("ts").type == pa.timestamp("us")
    assert table.column("ts").to_pylist() == [datetime(2024, 1, 1, 0), datetime(2024, 1, 1, 1)]
    assert info["schema"][0] == {"name": "ts", "type": "timestamp[us]", "zone": "UTC"}
    assert info["zoneless_utc"] == ["ts"]
    assert info["versions"][0]["min_event_time"] == "2024-01-01T00:00:00+00:00"  # as UTC
    assert text.exit_code == 0
    assert "  ts: timestamp[us]  (no zone: UTC)  (time column)" in text.stdout
    assert "zone-less times were read as UTC: ts" in text.stdout
    assert json.loads(run("describe", "/plain.series", "--format", "json").stdout)[
        "zoneless_utc"
    ] == ["ts"]


def test_zoned_times_are_utc_without_a_note(run, pond, host_file) -> None:
    source = host_file("zoned.csv", csv_of(["2024-01-01T00:00:00Z", "2024-01-01T03:00:00+02:00"]))
    assert run("copy", str(source), "/zoned.series", "--type", "series").exit_code == 0

    info = pond.describe("/zoned.series")

    assert pond.read_table("/zoned.series").column("ts").to_pylist() == [
        datetime(2024, 1, 1, 0, tzinfo=UTC),
        datetime(2024, 1, 1, 1, tzinfo=UTC),
    ]
    assert info["schema"][0] == {"name": "ts", "type": "timestamp[us, tz=UTC]"}
    assert "zoneless_utc" not in info
    assert "zone-less" not in run("describe", "/zoned.series").stdout


@pytest.mark.parametrize("kind", ["table", "series"])
def test_mixed_zones_are_refused_naming_column_and_lines(
    run, pond, host_file, pond_state, error, kind
) -> None:
    source = host_file("mixed.csv", MIXED)
    before = pond_state()

    result = run("copy", str(source), f"/m.{kind}", "--type", kind)

    assert result.exit_code == 2
    assert error(result) == (
        f"{source}: column 'ts' holds times with a zone (line 4: '2024-01-01T02:00:00+02:00') "
        "and times without one (line 2: '2024-01-01T00:00:00'); write every time with its "
        "offset (e.g. +00:00), or every time without one (zone-less times are read as UTC)"
    )
    assert pond_state() == before


@pytest.mark.parametrize(
    ("first", "later", "zoned_line", "zoneless_line"),
    [
        ("", "+02:00", SNIFFED_ROWS + 12, 2),  # sniffed zone-less: the offset was dropped
        ("Z", "", 2, SNIFFED_ROWS + 12),  # sniffed zoned: the zone-less time was taken as UTC
    ],
)
def test_a_mixed_column_is_refused_past_the_sniffed_rows(
    run, pond, host_file, pond_state, error, first, later, zoned_line, zoneless_line
) -> None:
    times = [*minutely(SNIFFED_ROWS + 10, first), f"2025-06-01T12:00:00{later}"]
    source = host_file("late.csv", csv_of(times))
    before = pond_state()

    result = run("copy", str(source), "/late.series", "--type", "series")

    assert result.exit_code == 2
    assert f"(line {zoned_line}: " in error(result)
    assert f"(line {zoneless_line}: " in error(result)
    assert error(result).startswith(f"{source}: column 'ts' holds times with a zone")
    assert pond_state() == before


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ("2024-10-27 02:30:00 Europe/Berlin", "is ambiguous (it happens twice"),
        ("2024-03-31 02:30:00 Europe/Berlin", "does not exist (it is skipped"),
        ("2024-11-03 01:30:00 America/New_York", "is ambiguous (it happens twice"),
    ],
)
def test_a_daylight_saving_time_is_refused(
    run, pond, host_file, pond_state, error, value, why
) -> None:
    times = ["2024-06-01 12:00:00 Europe/Berlin", "2024-12-01 12:00:00 Europe/Berlin", value]
    source = host_file("dst.csv", csv_of(times))
    before = pond_state()

    result = run("copy", str(source), "/dst.series", "--type", "series")

    assert result.exit_code == 2
    assert error(result) == (
        f"{source}: line 4: column 'ts' holds {value!r}, which {why} when the clocks "
        "change); write it with its UTC offset (e.g. +01:00) instead of the zone's name"
    )
    assert pond_state() == before


def test_named_zones_away_from_a_change_are_read(run, pond, host_file) -> None:
    times = ["2024-06-01 12:00:00 Europe/Berlin", "2024-10-27 03:30:00 Europe/Berlin"]
    source = host_file("named.csv", csv_of(times))
    assert run("copy", str(source), "/named.series", "--type", "series").exit_code == 0

    assert pond.read_table("/named.series").column("ts").to_pylist() == [
        datetime(2024, 6, 1, 10, tzinfo=UTC),
        datetime(2024, 10, 27, 2, 30, tzinfo=UTC),
    ]


@pytest.mark.parametrize("line", [3, 12, 30000])
def test_a_line_over_2_mb_is_reported_at_its_line(
    run, pond, host_file, pond_state, error, line
) -> None:
    rows = [f"{i},x" for i in range(line - 2)] + ["5," + "y" * (3 << 20), "6,z", "7,z"]
    source = host_file("long.csv", "a,b\n" + "\n".join(rows) + "\n")
    before = pond_state()

    result = run("copy", str(source), "/long.table")

    assert result.exit_code == 2
    assert error(result).startswith(
        f"{source}: not a readable CSV: line {line}: Maximum line size of 2000000 bytes exceeded"
    )
    assert error(result).endswith("; a CSV line may hold at most 2 MB")
    assert pond_state() == before


# -- through csv_directory / csv_to_parquet, where `schema:` lives ----------------------------
CO2 = b"date,co2\n19580329,316.1\n19580405,317.3\n19580412,317.6\n"
WORDS = b"date,v\nJan 1 2000,1\nFeb 29 2000,2\n"


def csv_dir(pond, data: bytes, config: dict, name: str = "x.csv") -> None:
    with pond.transaction("csv") as tx:
        tx.write_bytes(f"/inbox/{name}", data, parents=True)
        tx.create_dynamic("/csv", "csv_directory", {"pattern": "/inbox/*.csv", **config})


def test_numbers_cast_to_timestamp_are_refused(pond) -> None:
    csv_dir(pond, CO2, {"schema": {"date": "timestamp"}}, "co2.csv")

    with pytest.raises(FactoryError) as caught:
        pond.read_table("/csv/co2.table")

    assert "column 'date' holds numbers (int64, e.g. 19580329), not times" in caught.value.message
    assert 'schema: {date: {type: timestamp, format: "%Y%m%d"}}' in caught.value.message
    assert caught.value.subject == "/csv/co2.table"


@pytest.mark.parametrize("kind", ["timestamp", "timestamptz", "date"])
def test_numbers_read_with_a_format(pond, kind) -> None:
    csv_dir(pond, CO2, {"schema": {"date": {"type": kind, "format": "%Y%m%d"}}}, "co2.csv")

    dates = pond.read_table("/csv/co2.table").column("date").to_pylist()

    expected = {
        "timestamp": datetime(1958, 3, 29),
        "timestamptz": datetime(1958, 3, 29, tzinfo=UTC),
        "date": date(1958, 3, 29),
    }
    assert dates[0] == expected[kind]
    assert len(dates) == 3


def test_a_formatted_series_time_column(pond) -> None:
    csv_dir(
        pond,
        CO2,
        {
            "type": "series",
            "temporal_column": "date",
            "schema": {"date": {"type": "timestamp", "format": "%Y%m%d"}},
        },
        "co2.csv",
    )

    table = pond.read_table("/csv/co2.series")
    info = pond.describe("/csv/co2.series")

    assert table.column("date").to_pylist()[-1] == datetime(1958, 4, 12)
    assert info["time_column"] == "date"
    assert info["zoneless_utc"] == ["date"]
    assert info["config"]["schema"] == {"date": {"type": "timestamp", "format": "%Y%m%d"}}


def test_words_read_with_a_format(pond) -> None:
    csv_dir(pond, WORDS, {"schema": {"date": {"type": "timestamp", "format": "%b %d %Y"}}})

    assert pond.read_table("/csv/x.table").column("date").to_pylist() == [
        datetime(2000, 1, 1),
        datetime(2000, 2, 29),
    ]


def test_words_without_a_format_suggest_one(pond) -> None:
    csv_dir(pond, WORDS, {"schema": {"date": "timestamp"}})

    with pytest.raises(FactoryError) as caught:
        pond.read_table("/csv/x.table")

    assert "column 'date' holds text that is not a timestamp" in caught.value.message
    assert "not ISO 8601" in caught.value.message
    assert "format: " in caught.value.message
    assert "zone offset" not in caught.value.message


def test_a_value_not_matching_the_format_names_its_line(pond) -> None:
    data = b"date,co2\n19580329,316.1\n1958-04-05,317.3\n"
    csv_dir(pond, data, {"schema": {"date": {"type": "timestamp", "format": "%Y%m%d"}}})

    with pytest.raises(FactoryError) as caught:
        pond.read_table("/csv/x.table")

    assert caught.value.message == (
        "/csv/x.table: factory 'csv_to_parquet' failed: /inbox/x.csv: line 3: column 'date' "
        "holds '1958-04-05', which does not match the format '%Y%m%d'; fix the value, or "
        "change the format of 'date' in schema"
    )


def test_the_short_form_still_works(pond) -> None:
    csv_dir(pond, b"ts,v\n2024-01-01 00:00:00,1\n", {"schema": {"v": "double", "ts": "TIMESTAMP"}})

    table = pond.read_table("/csv/x.table")

    assert table.schema.field("v").type == pa.float64()
    assert pond.describe("/csv/x.table")["zoneless_utc"] == ["ts"]


@pytest.mark.parametrize(
    ("schema", "expected"),
    [
        ({"v": {"type": "double", "format": "%Y"}}, "'format' applies to timestamp"),
        ({"v": {"type": "timestamp", "format": ""}}, "format"),
        ({"v": {"type": "timestamp", "fmt": "%Y"}}, "fmt"),
        ({"v": {"type": "instant"}}, "unknown type 'instant'"),
    ],
)
def test_a_bad_schema_entry_fails_at_create(pond, schema, expected) -> None:
    with pytest.raises(ConfigError) as caught:
        pond.create_dynamic("/csv", "csv_directory", {"pattern": "/in/*.csv", "schema": schema})

    assert expected in caught.value.message
    assert pond.list_nodes("/") == []


def test_mixed_zones_are_refused_in_a_csv_directory(pond) -> None:
    csv_dir(pond, MIXED.encode(), {"type": "series", "temporal_column": "ts"})

    with pytest.raises(FactoryError) as caught:
        pond.read_table("/csv/x.series")

    assert caught.value.subject == "/csv/x.series"
    assert "/inbox/x.csv: column 'ts' holds times with a zone (line 4: " in caught.value.message
    assert "times without one (line 2: " in caught.value.message


def test_a_format_strptime_cannot_use_is_refused_at_read(pond) -> None:
    csv_dir(pond, CO2, {"schema": {"date": {"type": "timestamp", "format": "%Y%Q"}}})

    with pytest.raises(FactoryError) as caught:
        pond.read_table("/csv/x.table")

    assert "column 'date': '%Y%Q' is not a strptime format" in caught.value.message
