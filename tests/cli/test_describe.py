"""``pond describe``: type, schema, time column, and every version."""

import json


def describe(run, *args: str) -> dict:
    result = run("describe", *args, "--format", "json")
    assert result.exit_code == 0, result.stderr
    document: dict = json.loads(result.stdout)
    return document


def test_describe_a_series(run, sample_pond, sample) -> None:
    info = describe(run, sample.series)
    assert info["type"] == "file:series"
    assert info["path"] == sample.series
    assert info["time_column"] == "ts"
    assert info["schema"] == [
        {"name": "ts", "type": "timestamp[us, tz=UTC]"},
        {"name": "sensor", "type": "string"},
        {"name": "value", "type": "double"},
    ]
    versions = info["versions"]
    assert [v["version"] for v in versions] == [1, 2, 3]
    assert [v["txn"] for v in versions] == [2, 3, 4]
    assert [v["rows"] for v in versions] == [4, 4, 4]
    assert all(
        set(v) >= {"version", "txn", "rows", "size", "min_event_time", "max_event_time"}
        for v in versions
    )
    assert versions[1]["min_event_time"] == "2024-01-02T00:00:00+00:00"
    assert versions[1]["max_event_time"] == "2024-01-02T03:00:00+00:00"
    sizes = [r.size for r in sample_pond.node(sample.series).versions]
    assert [v["size"] for v in versions] == sizes
    assert all(size > 0 for size in sizes)


def test_describe_other_kinds(run, sample_pond, sample) -> None:
    table = describe(run, sample.table)
    assert table["type"] == "file:table"
    assert [c["name"] for c in table["schema"]] == ["station", "height"]
    assert table["time_column"] is None
    assert [(v["rows"], v["min_event_time"]) for v in table["versions"]] == [(3, None)]
    data = describe(run, sample.data)
    assert data["type"] == "file:data"
    assert "schema" not in data
    assert [v["size"] for v in data["versions"]] == [len(sample.notes)]
    link = describe(run, sample.link)
    assert (link["type"], link["target"]) == ("symlink", sample.series)
    directory = describe(run, sample.directory)
    assert directory["type"] == "directory"


def test_describe_at(run, sample_pond, sample) -> None:
    assert [v["version"] for v in describe(run, sample.series, "--at", "3")["versions"]] == [1, 2]


def test_describe_as_text(run, sample_pond, sample) -> None:
    result = run("describe", sample.series)
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert lines[0].split() == [sample.series, "file:series"]
    assert "  ts: timestamp[us, tz=UTC]  (time column)" in lines
    assert "  value: double" in lines
    header = next(line for line in lines if line.startswith("version "))
    assert [w for w in header.split() if w != "┃"] == [
        "version",
        "txn",
        "time",
        "size",
        "rows",
        "min_event_time",
        "max_event_time",
    ]


def test_describe_errors(run, sample_pond, sample, error) -> None:
    result = run("describe", "/missing")
    assert result.exit_code == 1
    assert error(result) == "/missing: no such file or directory"
    result = run("describe", sample.series, "--at", "99")
    assert result.exit_code == 1
    assert error(result).endswith("no transaction 99; transactions are 1..4")
