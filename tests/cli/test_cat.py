"""``pond cat``: bytes, rows in every format, --sql, --version, time windows, --at."""

import io
import json
from datetime import datetime, timedelta

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest


def all_readings(sample) -> pa.Table:
    return pa.concat_tables([sample.readings(v) for v in (1, 2, 3)])


def iso(value: datetime) -> str:
    return value.isoformat()


def test_cat_data_prints_its_bytes(run, sample_pond, sample) -> None:
    result = run("cat", sample.data)
    assert result.exit_code == 0
    assert result.stdout_bytes == sample.notes


def test_cat_csv(run, sample_pond, sample) -> None:
    result = run("cat", sample.series, "--format", "csv")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines()[0] == '"ts","sensor","value"'
    parsed = pacsv.read_csv(io.BytesIO(result.stdout_bytes))
    expected = all_readings(sample)
    ts_type = expected.schema.field("ts").type
    assert parsed.column("ts").cast(ts_type).to_pylist() == expected.column("ts").to_pylist()
    assert parsed.column("sensor").to_pylist() == expected.column("sensor").to_pylist()
    # 100.0 prints as 100: compare values, not the type the reader guesses
    assert parsed.column("value").to_pylist() == expected.column("value").to_pylist()


def test_cat_json(run, sample_pond, sample) -> None:
    result = run("cat", sample.table, "--format", "json")
    assert result.exit_code == 0
    assert json.loads(result.stdout) == sample.stations().to_pylist()
    rows = json.loads(run("cat", sample.series, "--format", "json").stdout)
    expected = all_readings(sample).to_pylist()
    assert rows == [{**r, "ts": iso(r["ts"])} for r in expected]


def test_cat_parquet(run, sample_pond, sample) -> None:
    result = run("cat", sample.series, "--format", "parquet")
    assert result.exit_code == 0
    assert pq.read_table(io.BytesIO(result.stdout_bytes)).equals(all_readings(sample))


def test_cat_table_format(run, sample_pond, sample) -> None:
    result = run("cat", sample.table)
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["station", "┃", "height"]
    assert [line.split() for line in lines[2:5]] == [
        ["north", "│", "12"],
        ["south", "│", "340"],
        ["east", "│", "55"],
    ]
    assert lines[5] == "3 rows"


def test_cat_follows_a_symlink(run, sample_pond, sample) -> None:
    via_link = run("cat", sample.link, "--format", "csv").stdout
    assert via_link == run("cat", sample.series, "--format", "csv").stdout


def test_cat_sql(run, sample_pond, sample) -> None:
    result = run(
        "cat",
        sample.series,
        "--sql",
        "SELECT sensor, count(*) AS n, max(value) AS top FROM source GROUP BY sensor ORDER BY 1",
        "--format",
        "json",
    )
    assert result.exit_code == 0, result.stderr
    expected: dict[str, list[float]] = {}
    for row in all_readings(sample).to_pylist():
        expected.setdefault(row["sensor"], []).append(row["value"])
    assert json.loads(result.stdout) == [
        {"sensor": s, "n": len(v), "top": max(v)} for s, v in sorted(expected.items())
    ]


def test_cat_version(run, sample_pond, sample) -> None:
    result = run("cat", sample.series, "--version", "2", "--format", "parquet")
    assert pq.read_table(io.BytesIO(result.stdout_bytes)).equals(sample.readings(2))
    sql = run(
        "cat",
        sample.series,
        "--version",
        "3",
        "--sql",
        "SELECT min(value) AS m FROM source",
        "--format",
        "json",
    )
    assert json.loads(sql.stdout) == [{"m": 300.0}]


@pytest.mark.parametrize(
    ("start", "end"),
    [
        ("2024-01-01T01:00:00", "2024-01-02T02:00:00"),
        ("2024-01-02", "2024-01-03"),
        ("2024-01-02T00:00:00Z", None),
        (None, "2024-01-01T02:00:00+00:00"),
        ("2024-01-03T03:00:00", "2024-01-03T03:00:01"),
        ("2024-01-03T01:00:00+01:00", "2024-01-03T02:00:00+01:00"),
        ("2024-02-01", None),
    ],
)
def test_cat_time_window_is_start_inclusive_end_exclusive(
    run, sample_pond, sample, start: str | None, end: str | None
) -> None:
    args = ["cat", sample.series, "--format", "json"]
    if start:
        args += ["--time-start", start]
    if end:
        args += ["--time-end", end]
    result = run(*args)
    assert result.exit_code == 0, result.stderr
    low = _parse(start)
    high = _parse(end)
    expected = [
        iso(r["ts"])
        for r in all_readings(sample).to_pylist()
        if (low is None or r["ts"] >= low) and (high is None or r["ts"] < high)
    ]
    assert [r["ts"] for r in json.loads(result.stdout)] == expected


def _parse(text: str | None) -> datetime | None:
    if text is None:
        return None
    from datetime import UTC

    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def test_cat_time_window_with_sql(run, sample_pond, sample) -> None:
    result = run(
        "cat",
        sample.series,
        "--time-start",
        "2024-01-02T02:00:00",
        "--time-end",
        "2024-01-03T01:00:00",
        "--sql",
        "SELECT count(*) AS n FROM source",
        "--format",
        "csv",
    )
    assert result.stdout == '"n"\n3\n'


def test_cat_at(run, sample_pond, sample, host_file) -> None:
    assert run("copy", str(host_file("notes.txt", "new notes")), sample.data).exit_code == 0
    assert run("cat", sample.data).stdout == "new notes"
    assert run("cat", sample.data, "--at", "4").stdout_bytes == sample.notes
    at3 = run("cat", sample.series, "--at", "3", "--format", "parquet")
    expected = pa.concat_tables([sample.readings(1), sample.readings(2)])
    assert pq.read_table(io.BytesIO(at3.stdout_bytes)).equals(expected)


# -- bad input -----------------------------------------------------------------------------
def test_cat_errors(run, sample_pond, sample, pond_state, error) -> None:
    before = pond_state()
    cases = [
        (["/missing"], 1, "/missing: no such file or directory"),
        ([sample.directory], 2, f"{sample.directory}: is a directory; use `pond list /sensors/`"),
        ([sample.series, "--version", "4"], 1, f"{sample.series}: no version 4; versions are 1..3"),
        ([sample.series, "--version", "0"], 1, f"{sample.series}: no version 0; versions are 1..3"),
        ([sample.data, "--version", "2"], 1, f"{sample.data}: no version 2; versions are 1..1"),
        ([sample.series, "--at", "5"], 1, None),
        ([sample.series, "--at", "0"], 1, None),
        ([sample.series, "--at", "1"], 1, f"{sample.directory}: no such file or directory"),
        ([sample.data, "--time-start", "2024-01-01"], 2, None),
        (
            [sample.table, "--time-start", "2024-01-01"],
            2,
            f"{sample.table}: --time-start/--time-end apply to series",
        ),
        (
            [sample.series, "--time-start", "2024-01-02", "--time-end", "2024-01-01"],
            2,
            "--time-end must be after --time-start; the range is [start, end)",
        ),
        ([sample.series, "--sql", "SELECT nope FROM source"], 1, None),
        (["../notes.txt"], 2, "../notes.txt: path escapes the pond's root; remove the extra '..'"),
    ]
    for args, code, message in cases:
        result = run("cat", *args)
        assert result.exit_code == code, (args, result.stderr)
        line = error(result)
        if message is not None:
            assert line == message
    at = run("cat", sample.series, "--at", "5")
    assert error(at) == f"{sample_pond.location.root}: no transaction 5; transactions are 1..4"
    bad_sql = run("cat", sample.series, "--sql", "SELECT nope FROM source")
    assert 'Binder Error: Referenced column "nope" not found' in error(bad_sql)
    assert "(in query: SELECT nope FROM source)" in error(bad_sql)
    assert pond_state() == before


def test_cat_bad_timestamp_is_a_usage_error(run, sample_pond, sample) -> None:
    result = run("cat", sample.series, "--time-start", "yesterday")
    assert result.exit_code == 2
    assert "'yesterday' is not an ISO 8601 time" in result.stderr


def test_cat_data_with_a_time_window(run, sample_pond, sample, error) -> None:
    result = run("cat", sample.data, "--time-start", "2024-01-01")
    assert error(result) == f"{sample.data}: --time-start/--time-end apply to series"


def test_time_bounds_are_in_utc_when_naive(run, sample_pond, sample) -> None:
    start = sample.base_time + timedelta(hours=1)
    result = run(
        "cat",
        sample.series,
        "--time-start",
        start.replace(tzinfo=None).isoformat(),
        "--time-end",
        (start + timedelta(hours=1)).isoformat(),
        "--format",
        "json",
    )
    assert [r["ts"] for r in json.loads(result.stdout)] == [iso(start)]


def test_text_output_prints_values_not_markup(run, pond) -> None:
    pond.write_table("/m.table", pa.table({"[col]": ["[bold]x[/bold]", "[red]"]}))
    lines = run("cat", "/m.table").stdout.splitlines()
    assert lines[0].strip() == "[col]"
    assert [line.strip() for line in lines[2:4]] == ["[bold]x[/bold]", "[red]"]
    long = run("list", "--long").stdout
    assert "/m.table" in long
