"""``pond copy``: host files into the pond as data, tables or series."""

import os
from datetime import datetime

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pond_pipeline.factory import EntryType

CSV = "ts,sensor,value\n2024-01-01T00:00:00,a,1.5\n2024-01-01T01:00:00,b,2.5\n"
CSV2 = "ts,sensor,value\n2024-01-02T00:00:00,c,3.5\n"


def test_copy_csv_as_table(run, pond, host_file) -> None:
    source = host_file("readings.csv", CSV)
    result = run("copy", str(source), "/readings.table")
    assert result.exit_code == 0, result.stderr
    assert result.stdout == ""
    assert result.stderr == "readings.csv -> file:table version 1\n"
    table = pond.read_table("/readings.table")
    assert table.schema.names == ["ts", "sensor", "value"]
    assert str(table.schema.field("ts").type) == "timestamp[us]"
    assert table.to_pylist() == [
        {"ts": datetime(2024, 1, 1, 0), "sensor": "a", "value": 1.5},
        {"ts": datetime(2024, 1, 1, 1), "sensor": "b", "value": 2.5},
    ]
    assert pond.log()[0].command == f"copy {source} /readings.table"


def test_copy_csv_as_series_and_append(run, pond, host_file) -> None:
    assert run("copy", str(host_file("a.csv", CSV)), "/s.series", "--type", "series").exit_code == 0
    result = run("copy", str(host_file("b.csv", CSV2)), "/s.series")  # the series' type is kept
    assert result.exit_code == 0, result.stderr
    assert result.stderr == "b.csv -> file:series version 2\n"
    node = pond.node("/s.series")
    assert node.entry_type is EntryType.SERIES
    assert [r.version for r in node.versions] == [1, 2]
    assert pond.read_table("/s.series").column("sensor").to_pylist() == ["a", "b", "c"]
    described = pond.describe("/s.series")
    assert described["time_column"] == "ts"
    assert [(v["min_event_time"], v["max_event_time"]) for v in described["versions"]] == [
        ("2024-01-01T00:00:00+00:00", "2024-01-01T01:00:00+00:00"),
        ("2024-01-02T00:00:00+00:00", "2024-01-02T00:00:00+00:00"),
    ]


def test_copy_with_a_time_column(run, pond, host_file) -> None:
    text = "made,seen,v\n2024-01-01,2024-02-01T00:00:00,1\n2024-01-02,2024-02-03T00:00:00,2\n"
    source = host_file("two.csv", text)
    assert run("copy", str(source), "/s.series", "--type", "series").exit_code == 0
    assert pond.describe("/s.series")["time_column"] == "made"  # the first timestamp column
    result = run("copy", str(source), "/t.series", "--type", "series", "--time-column", "seen")
    assert result.exit_code == 0
    described = pond.describe("/t.series")
    assert described["time_column"] == "seen"
    assert described["versions"][0]["max_event_time"] == "2024-02-03T00:00:00+00:00"


def test_copy_parquet_as_table_and_series(run, pond, tmp_path, sample) -> None:
    path = tmp_path / "day.parquet"
    pq.write_table(sample.readings(1), path)
    assert run("copy", str(path), "/day.table").exit_code == 0
    assert run("copy", str(path), "/day.series", "--type", "series").exit_code == 0
    pq.write_table(sample.readings(2), path)
    assert run("copy", str(path), "/day.series").exit_code == 0
    assert pond.read_table("/day.table").equals(sample.readings(1))
    assert pond.read_table("/day.series").equals(
        pa.concat_tables([sample.readings(1), sample.readings(2)])
    )
    # a Parquet file is recognised by its magic bytes, whatever its name
    renamed = tmp_path / "day.bin"
    path.rename(renamed)
    assert run("copy", str(renamed), "/magic").exit_code == 0
    assert pond.node("/magic").entry_type is EntryType.TABLE


def test_dest_directory_keeps_the_name(run, pond, host_file) -> None:
    pond.mkdir("/in")
    first, second = host_file("one.csv", CSV), host_file("two.bin", b"\x00\x01")
    assert run("copy", str(first), "/in").exit_code == 0
    assert run("copy", str(second), "/in/").exit_code == 0
    assert [(i.path, i.entry_type.short) for i in pond.list_nodes("/in/")] == [
        ("/in/one.csv", "table"),
        ("/in/two.bin", "data"),
    ]


def test_several_files_into_a_directory_is_one_transaction(run, pond, host_file) -> None:
    pond.mkdir("/in")
    files = [str(host_file(f"f{i}.txt", f"file {i}")) for i in range(3)]
    transactions = len(pond.log())
    result = run("copy", *files, "/in")
    assert result.exit_code == 0, result.stderr
    assert len(pond.log()) == transactions + 1
    assert [pond.read_bytes(f"/in/f{i}.txt") for i in range(3)] == [b"file 0", b"file 1", b"file 2"]


def test_new_versions_of_a_table_and_a_data_file(run, pond, host_file) -> None:
    assert run("copy", str(host_file("t.csv", "v\n1\n")), "/t.table").exit_code == 0
    assert run("copy", str(host_file("t.csv", "v\n2\n3\n")), "/t.table").exit_code == 0
    assert pond.read_table("/t.table").column("v").to_pylist() == [2, 3]
    assert pond.read_table("/t.table", version=1).column("v").to_pylist() == [1]
    assert run("copy", str(host_file("d.txt", "old")), "/d.txt").exit_code == 0
    result = run("copy", str(host_file("d.txt", "new")), "/d.txt")
    assert result.stderr == "d.txt -> file:data version 2\n"
    assert pond.read_bytes("/d.txt") == b"new"
    assert pond.read_bytes("/d.txt", version=1) == b"old"


@pytest.mark.parametrize("size", [100, 64 * 1024, 64 * 1024 + 1, 300_000])
def test_data_bytes_are_kept_exactly(run, pond, host_file, size: int) -> None:
    data = os.urandom(size)
    source = host_file("random.bin", data)
    assert run("copy", str(source), "/random.bin").exit_code == 0
    assert pond.read_bytes("/random.bin") == data
    cat = run("cat", "/random.bin")
    assert cat.exit_code == 0
    assert cat.stdout_bytes == data
    blobs = list((pond.location.root / "blobs").rglob("*"))
    blob_files = [p for p in blobs if p.is_file()]
    if size > 64 * 1024:
        assert [p.read_bytes() for p in blob_files] == [data]
    else:
        assert blob_files == []


def test_a_csv_as_data_keeps_its_bytes(run, pond, host_file) -> None:
    text = "a , b\n1,  2\r\n"
    assert run("copy", str(host_file("odd.csv", text)), "/odd.csv", "--type", "data").exit_code == 0
    assert pond.read_bytes("/odd.csv") == text.encode()


def test_progress_never_reaches_stdout(run, pond, host_file) -> None:
    result = run("copy", str(host_file("p.csv", CSV)), "/p.table", env={"POND_PROGRESS": "1"})
    assert result.exit_code == 0
    assert result.stdout == ""


# -- bad input ---------------------------------------------------------------------------------
def test_malformed_csv_names_the_line(run, pond, host_file, pond_state, error) -> None:
    before = pond_state()
    source = host_file("bad.csv", "ts,v\n2024-01-01T00:00:00,1\n2024-01-02T00:00:00,2,3\n")
    for kind in ("table", "series"):
        result = run("copy", str(source), f"/bad.{kind}", "--type", kind)
        assert result.exit_code == 2
        assert error(result) == (
            f"{source}: not a readable CSV: line 3: Expected Number of Columns: 2 Found: 3"
        )
    assert pond_state() == before
    assert list((pond.location.root / "tmp").glob("*")) == []  # no scratch file left


def test_schema_clash_names_the_columns(run, sample_pond, sample, host_file, pond_state, error):
    before = pond_state()
    source = host_file("clash.csv", "ts,sensor,value\n2024-02-01T00:00:00,x,high\n")
    result = run("copy", str(source), sample.series)
    assert result.exit_code == 1
    assert error(result) == (
        f"{sample.series}: cannot append: 'ts' is timestamp[us], expected timestamp[us, tz=UTC]; "
        "'value' is string, expected double; cast the columns to the series' types before appending"
    )
    assert pond_state() == before


def test_parquet_schema_clash(run, sample_pond, sample, tmp_path, pond_state, error) -> None:
    path = tmp_path / "clash.parquet"
    clash = sample.readings(4).set_column(2, "value", pa.array(["a", "b", "c", "d"]))
    pq.write_table(clash, path)
    before = pond_state()
    result = run("copy", str(path), sample.series)
    assert result.exit_code == 1
    assert "'value' is string, expected double" in error(result)
    assert error(result).startswith(f"{sample.series}: cannot append: ")
    assert pond_state() == before


def test_unknown_time_column(run, pond, host_file, pond_state, error) -> None:
    before = pond_state()
    source = host_file("a.csv", CSV)
    result = run("copy", str(source), "/s.series", "--type", "series", "--time-column", "when")
    assert result.exit_code == 2
    assert error(result) == (
        f"{source}: no column 'when'; --time-column must be one of ts, sensor, value"
    )
    result = run("copy", str(source), "/s.series", "--type", "series", "--time-column", "value")
    assert result.exit_code == 2
    assert error(result).startswith(f"{source}: column 'value' is double, not a timestamp")
    assert pond_state() == before


def test_a_series_without_a_timestamp(run, pond, host_file, pond_state, error) -> None:
    before = pond_state()
    source = host_file("plain.csv", "a,b\n1,2\n")
    result = run("copy", str(source), "/p.series", "--type", "series")
    assert result.exit_code == 2
    assert error(result) == (
        f"{source}: a series needs a timestamp column and this data has none; "
        "columns are a, b; import it as --type table"
    )
    assert pond_state() == before


def test_copy_onto_another_type(run, sample_pond, sample, host_file, pond_state, error) -> None:
    before = pond_state()
    csv = host_file("t.csv", "ts,v\n2024-01-01T00:00:00,1\n")
    result = run("copy", str(csv), sample.table, "--type", "series")
    assert result.exit_code == 1
    assert error(result) == (
        f"{sample.table}: exists as a table, cannot write a series over it; "
        "remove it first or write to another path"
    )
    assert pond_state() == before  # and its converted Parquet is not left in tmp/
    result = run("copy", str(host_file("n.txt", "x")), sample.table)
    assert result.exit_code == 2
    assert error(result) == (
        f"{host_file('n.txt', 'x')}: cannot import as a table: not a .csv or .parquet file; "
        "import it as --type data"
    )
    result = run("copy", str(host_file("n.txt", "x")), sample.table, "--type", "data")
    assert result.exit_code == 1
    assert error(result) == (
        f"{sample.table}: exists as a table, cannot write a data over it; "
        "remove it first or write to another path"
    )
    assert pond_state() == before


def test_copy_bad_destinations(run, sample_pond, sample, host_file, pond_state, error) -> None:
    before = pond_state()
    source = str(host_file("x.txt", "x"))
    cases = [
        (
            ["/missing/x.txt"],
            1,
            "/missing: parent directory does not exist; create it first (mkdir -p) or pass -p",
        ),
        ([f"{sample.data}/x.txt"], 1, f"{sample.data}: not a directory"),
        (["../x.txt"], 2, "../x.txt: path escapes the pond's root; remove the extra '..'"),
        (
            [source, sample.table],
            2,
            f"{sample.table}: with several files, DEST must be an existing directory",
        ),
    ]
    for dest, code, message in cases:
        result = run("copy", source, *dest)
        assert result.exit_code == code, dest
        assert error(result) == message
    result = run("copy", str(host_file("x.txt", "x").parent / "nope.txt"), "/nope.txt")
    assert result.exit_code == 1
    assert error(result).endswith("nope.txt: no such host file")
    assert pond_state() == before


def test_copy_with_parents(run, pond, host_file) -> None:
    assert run("copy", "-p", str(host_file("x.txt", "x")), "/a/b/x.txt").exit_code == 0
    assert pond.read_bytes("/a/b/x.txt") == b"x"


def test_a_refused_csv_import_leaves_no_scratch(run, pond, host_file, pond_state, error) -> None:
    before = pond_state()
    result = run("copy", str(host_file("a.csv", CSV)), "/missing/a.table")
    assert result.exit_code == 1
    assert error(result).startswith("/missing: parent directory does not exist")
    assert pond_state() == before


def test_a_csv_series_reads_by_time_window(run, pond, host_file) -> None:
    rows = "".join(f"2024-01-01T{h:02d}:00:00,{h}\n" for h in range(6))
    assert (
        run(
            "copy", str(host_file("h.csv", "ts,v\n" + rows)), "/h.series", "--type", "series"
        ).exit_code
        == 0
    )
    result = run(
        "cat",
        "/h.series",
        "--time-start",
        "2024-01-01T02:00:00",
        "--time-end",
        "2024-01-01T05:00:00+01:00",
        "--format",
        "csv",
    )
    assert result.stdout.splitlines() == [
        '"ts","v"',
        "2024-01-01 02:00:00.000000,2",
        "2024-01-01 03:00:00.000000,3",
    ]
