"""``pond list``: everything, globs, ``/dir/`` vs ``/dir``, ``--long``, ``--format json``."""

import json

import pytest

EVERYTHING = [
    "/latest",
    "/notes.txt",
    "/sensors/",
    "/sensors/readings.series",
    "/sensors/stations.table",
]


def lines(result) -> list[str]:
    assert result.exit_code == 0, result.stderr
    return result.stdout.splitlines()


def test_no_pattern_lists_everything(run, sample_pond) -> None:
    assert lines(run("list")) == EVERYTHING


def test_an_empty_pond_lists_nothing(run, pond) -> None:
    assert run("list").stdout == ""


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ("/*", ["/latest", "/notes.txt", "/sensors/"]),
        ("/sensors/*", ["/sensors/readings.series", "/sensors/stations.table"]),
        ("/sensors/*.series", ["/sensors/readings.series"]),
        ("/**", EVERYTHING),
        ("/**/*.table", ["/sensors/stations.table"]),
        ("/notes.tx?", ["/notes.txt"]),
        ("/notes.t?", []),
        ("/*/*s.*", ["/sensors/readings.series", "/sensors/stations.table"]),
        ("/sensors/", ["/sensors/readings.series", "/sensors/stations.table"]),
        ("/sensors", ["/sensors/"]),
        ("/", ["/latest", "/notes.txt", "/sensors/"]),
        ("sensors/*.table", ["/sensors/stations.table"]),
        ("/nothing/*", []),
    ],
)
def test_patterns(run, sample_pond, pattern: str, expected: list[str]) -> None:
    assert lines(run("list", pattern)) == expected


def test_a_symlink_is_listed_as_itself(run, sample_pond, sample) -> None:
    assert lines(run("list", sample.link)) == [sample.link]
    listed = json.loads(run("list", sample.link, "--format", "json").stdout)
    assert [(e["path"], e["type"]) for e in listed] == [(sample.link, "symlink")]


def test_long(run, sample_pond, sample) -> None:
    result = run("list", "--long")
    rows = lines(result)
    assert rows[0].split() == [
        "type",
        "┃",
        "versions",
        "┃",
        "size",
        "┃",
        "last",
        "change",
        "┃",
        "path",
    ]
    by_path = {row.split()[-1]: row for row in rows[2:]}
    assert set(by_path) == {p.rstrip("/") for p in EVERYTHING}
    series = by_path["/sensors/readings.series"].split()
    assert series[0] == "series"
    assert series[2] == "3"  # versions
    assert by_path["/notes.txt"].split()[:6] == ["data", "│", "1", "│", str(len(sample.notes)), "B"]
    assert by_path["/latest"].split()[0] == "symlink"
    assert by_path["/sensors"].split()[0] == "directory"


def test_json(run, sample_pond, sample) -> None:
    result = run("list", "--format", "json")
    assert result.exit_code == 0
    listed = json.loads(result.stdout)
    assert [e["path"] for e in listed] == [p.rstrip("/") for p in EVERYTHING]
    by_path = {e["path"]: e for e in listed}
    assert by_path[sample.series]["type"] == "file:series"
    assert by_path[sample.series]["versions"] == 3
    assert by_path[sample.data]["size"] == len(sample.notes)
    assert by_path[sample.data]["factory"] == "tlogfs"
    assert set(by_path[sample.table]) == {"path", "type", "factory", "versions", "size", "modified"}


def test_list_at(run, sample_pond, sample) -> None:
    sample_pond.mkdir("/later")
    assert "/later/" in lines(run("list"))
    assert lines(run("list", "--at", "4")) == EVERYTHING
    assert lines(run("list", "--at", "1")) == []


def test_list_errors(run, sample_pond, sample, error) -> None:
    result = run("list", "/missing")
    assert result.exit_code == 1
    assert error(result) == "/missing: no such file or directory"
    result = run("list", f"{sample.data}/")
    assert result.exit_code == 1
    assert error(result) == f"{sample.data}: not a directory"
    result = run("list", "/../x")
    assert result.exit_code == 2
    assert error(result) == "/../x: path escapes the pond's root; remove the extra '..'"
    result = run("list", "--at", "9")
    assert result.exit_code == 1
    assert error(result).endswith("no transaction 9; transactions are 1..4")


def test_a_glob_survives_broken_and_looping_links(run, sample_pond) -> None:
    assert run("ln", "/nowhere", "/dangling").exit_code == 0
    assert run("ln", "/", "/sensors/up").exit_code == 0
    assert "/dangling" in lines(run("list", "/*"))
    assert "/sensors/up" in lines(run("list", "/**"))
