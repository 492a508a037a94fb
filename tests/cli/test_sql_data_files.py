"""A data file named ``*.csv`` reads as a table in ``pond sql``, ``pond cat --sql`` and as
a source of ``sql_derived_*`` (issue 13, item 7), typed as ``copy --type table`` types
it; any other data file used as a table is refused, saying how to read it."""

import json
from datetime import datetime

import pyarrow as pa
import pytest

NORTH = b"ts,sensor,temperature\n2024-05-01T00:00:00,a,1.5\n2024-05-01T01:00:00,b,2.5\n"
SOUTH = b"ts,sensor,temperature\n2024-05-01T00:00:00,c,-4.0\n"
NOT_A_TABLE = (
    "is a data file, not a table; `pond cat {path}` prints its bytes; only data files "
    "named *.csv read as tables (or import CSV as one: `pond copy FILE DEST --type table`, "
    "or a csv_directory node)"
)


@pytest.fixture
def raw(pond):
    """``/raw/north.csv`` and ``/raw/south.csv`` (CSV), ``/raw/notes.txt`` (not named so)."""
    with pond.transaction("raw") as tx:
        tx.mkdir("/raw")
        tx.write_bytes("/raw/north.csv", NORTH)
        tx.write_bytes("/raw/south.csv", SOUTH)
        tx.write_bytes("/raw/notes.txt", NORTH)
    return pond


def rows(result) -> list[dict]:
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def test_sql_reads_a_csv_data_file_as_a_table(run, raw) -> None:
    result = run("sql", "SELECT * FROM '/raw/north.csv' ORDER BY ts", "--format", "json")
    assert rows(result) == [
        {"ts": "2024-05-01T00:00:00", "sensor": "a", "temperature": 1.5},
        {"ts": "2024-05-01T01:00:00", "sensor": "b", "temperature": 2.5},
    ]


def test_its_types_are_those_copy_type_table_infers(run, raw, tmp_path) -> None:
    host = tmp_path / "north.csv"
    host.write_bytes(NORTH)
    assert run("copy", str(host), "/imported.table", "--type", "table").exit_code == 0
    imported = raw.read_table("/imported.table").schema
    as_data = raw.query("SELECT * FROM '/raw/north.csv'")
    assert as_data.schema.equals(imported)
    # read through the API it keeps what the conversion recorded (zone-less times: UTC)
    assert raw.read_table("/raw/north.csv").schema.equals(imported, check_metadata=True)
    assert as_data.schema.field("ts").type == pa.timestamp("us")
    assert as_data.column("ts").to_pylist()[0] == datetime(2024, 5, 1)


def test_a_csv_stored_as_a_blob_is_read_too(run, raw) -> None:
    lines = [f"{i},{i * 0.5}" for i in range(6000)]  # > 64 KiB: a blob, not inline
    data = ("n,half\n" + "\n".join(lines) + "\n").encode()
    with raw.transaction("big") as tx:
        assert tx.write_bytes("/raw/big.csv", data).blob
    result = run(
        "sql", "SELECT count(*) AS n, sum(half) AS s FROM '/raw/big.csv'", "--format", "json"
    )
    assert rows(result) == [{"n": 6000, "s": sum(i * 0.5 for i in range(6000))}]


def test_a_glob_of_csv_data_files_is_their_union(run, raw) -> None:
    query = "SELECT sensor FROM '/raw/*.csv' ORDER BY sensor"
    assert rows(run("sql", query, "--format", "json")) == [
        {"sensor": "a"},
        {"sensor": "b"},
        {"sensor": "c"},
    ]


def test_cat_sql_reads_it_as_source_and_cat_prints_its_bytes(run, raw) -> None:
    query = "SELECT sensor, temperature * 2 AS t FROM source ORDER BY 1"
    result = run("cat", "/raw/north.csv", "--sql", query, "--format", "csv")
    assert result.exit_code == 0, result.stderr
    assert result.stdout == '"sensor","t"\n"a",3\n"b",5\n'
    plain = run("cat", "/raw/north.csv")
    assert plain.exit_code == 0
    assert plain.stdout_bytes == NORTH


def test_cat_sql_version_reads_that_version(run, raw) -> None:
    with raw.transaction("north v2") as tx:
        tx.write_bytes("/raw/north.csv", SOUTH)
    query = "SELECT sensor FROM source ORDER BY 1"
    latest = run("cat", "/raw/north.csv", "--sql", query, "--format", "json")
    first = run("cat", "/raw/north.csv", "--sql", query, "--version", "1", "--format", "json")
    assert rows(latest) == [{"sensor": "c"}]
    assert rows(first) == [{"sensor": "a"}, {"sensor": "b"}]


def test_a_csv_data_file_is_a_source_of_sql_derived(run, raw) -> None:
    raw.create_dynamic(
        "/warm.table",
        "sql_derived_table",
        {"source": "/raw/north.csv", "query": "SELECT sensor FROM source WHERE temperature > 2"},
    )
    assert rows(run("cat", "/warm.table", "--format", "json")) == [{"sensor": "b"}]


@pytest.mark.parametrize(
    "args",
    [
        ("sql", "SELECT * FROM '/raw/notes.txt'"),
        ("cat", "/raw/notes.txt", "--sql", "SELECT * FROM source"),
    ],
)
def test_another_data_file_is_refused_saying_how_to_read_it(run, raw, error, args) -> None:
    result = run(*args)
    assert result.exit_code == 1
    assert error(result) == "/raw/notes.txt: " + NOT_A_TABLE.format(path="/raw/notes.txt")


def test_a_derived_node_reading_another_data_file_names_itself(run, raw, error) -> None:
    raw.create_dynamic(
        "/notes.table", "sql_derived_table", {"source": "/raw/notes.txt", "query": "SELECT 1"}
    )
    result = run("cat", "/notes.table")
    assert result.exit_code == 1
    assert error(result) == "/notes.table: reads /raw/notes.txt, which " + NOT_A_TABLE.format(
        path="/raw/notes.txt"
    )


def test_a_glob_matching_only_other_data_files(run, raw, error) -> None:
    result = run("sql", "SELECT * FROM '/raw/*.txt'")
    assert result.exit_code == 1
    assert error(result) == (
        "/raw/*.txt: source '/raw/*.txt' matches 1 file(s), none a table, series or "
        "*.csv data file; `pond list '/raw/*.txt'` shows what it matches"
    )


def test_a_csv_that_does_not_parse_is_bad_input(run, raw, error) -> None:
    with raw.transaction("bad") as tx:
        tx.write_bytes("/raw/bad.csv", b"a,b\n1,2\n3,4,5\n")
    result = run("sql", "SELECT * FROM '/raw/bad.csv'")
    assert result.exit_code == 2
    assert error(result).startswith("/raw/bad.csv: not a readable CSV: ")


def test_a_time_window_applies_to_series_only(run, raw, error) -> None:
    result = run(
        "cat", "/raw/north.csv", "--sql", "SELECT * FROM source", "--time-start", "2024-05-01"
    )
    assert result.exit_code == 2
    assert error(result) == "/raw/north.csv: --time-start/--time-end apply to series"
