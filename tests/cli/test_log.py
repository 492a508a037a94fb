"""``pond log``: transactions, newest first, with what made them and the paths touched."""

import json
from datetime import UTC, datetime, timedelta


def test_log_json(run, sample_pond, sample) -> None:
    result = run("log", "--format", "json")
    assert result.exit_code == 0, result.stderr
    log = json.loads(result.stdout)
    assert [t["txn"] for t in log] == [4, 3, 2, 1]
    assert [t["command"] for t in log] == ["append day 3", "append day 2", "sample", "init"]
    assert log[0]["paths"] == [sample.series]
    assert log[-1]["paths"] == ["/"]
    assert all(set(t) >= {"txn", "time", "command", "paths"} for t in log)
    now = datetime.now(UTC)
    times = [datetime.fromisoformat(t["time"]) for t in log]
    assert all(now - timedelta(minutes=5) < t <= now + timedelta(seconds=1) for t in times)
    assert times == sorted(times, reverse=True)


def test_log_records_cli_commands(run, pond, host_file) -> None:
    source = host_file("a.txt", "a")
    assert run("mkdir", "-p", "/x/y").exit_code == 0
    assert run("copy", str(source), "/x/y/a.txt").exit_code == 0
    assert run("rm", "/x/y/a.txt").exit_code == 0
    log = json.loads(run("log", "--format", "json").stdout)
    assert [(t["command"], t["paths"]) for t in log[:3]] == [
        ("rm /x/y/a.txt", ["/x/y/a.txt"]),
        (f"copy {source} /x/y/a.txt", ["/x/y/a.txt"]),
        ("mkdir /x/y", ["/x", "/x/y"]),
    ]


def test_log_limit(run, sample_pond) -> None:
    log = json.loads(run("log", "--limit", "2", "--format", "json").stdout)
    assert [t["txn"] for t in log] == [4, 3]
    assert json.loads(run("log", "--limit", "0", "--format", "json").stdout) == []
    negative = run("log", "--limit", "-1")
    assert negative.exit_code == 2
    assert "Invalid value for '--limit': -1 is not in the range x>=0" in negative.stderr


def test_log_as_text(run, sample_pond, sample) -> None:
    lines = run("log", "--limit", "1").stdout.splitlines()
    assert [w for w in lines[0].split() if w != "┃"] == ["txn", "time", "command", "paths"]
    assert lines[2].split()[0] == "4"
    assert lines[2].split()[-1] == sample.series
