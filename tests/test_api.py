"""The ``Pond`` facade: round trips, series, history, transactions, crashes, concurrency."""

import os
import signal
import subprocess
import sys
import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pond_pipeline.api import Pond, PondOptions
from pond_pipeline.errors import (
    ConfigError,
    ConflictError,
    CorruptionError,
    NotFoundError,
    QueryError,
)
from pond_pipeline.factory import EntryType
from pond_pipeline.store.blobs import sha256_bytes
from pond_pipeline.store.oplog import Oplog

THRESHOLD = 64 * 1024


def blob_shas(pond: Pond) -> set[str]:
    return set(pond.blobs.all_shas())


# -- creating and opening ------------------------------------------------------------------
def test_create_then_open(pond_path: Path) -> None:
    created = Pond.create(str(pond_path))
    assert (pond_path / "oplog" / "_delta_log").is_dir()
    opened = Pond.open(str(pond_path))
    assert [(t.txn_seq, t.command, t.paths) for t in opened.log()] == [(1, "init", ["/"])]
    assert opened.list_nodes() == []
    assert created.inline_threshold == opened.inline_threshold == THRESHOLD


def test_create_over_a_pond_and_open_a_missing_one(pond: Pond, tmp_path: Path) -> None:
    with pytest.raises(ConflictError) as exists:
        Pond.create(str(pond.location.root))
    assert (exists.value.subject, exists.value.reason) == (
        str(pond.location.root),
        "a pond already exists here",
    )
    assert len(pond.log()) == 1
    with pytest.raises(NotFoundError) as missing:
        Pond.open(str(tmp_path / "nowhere"))
    assert missing.value.reason == "no pond here"
    assert "pond init" in (missing.value.hint or "")
    assert not (tmp_path / "nowhere").exists()


# -- round trips ------------------------------------------------------------------------------
@settings(
    max_examples=8,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.binary(max_size=2 * THRESHOLD) | st.binary(min_size=THRESHOLD + 1, max_size=70_000))
def test_bytes_round_trip(pond: Pond, data: bytes) -> None:
    path = f"/bytes/{sha256_bytes(data)[:16]}.bin"
    with pond.transaction("bytes") as tx:
        record = tx.write_bytes(path, data, parents=True)
    assert pond.read_bytes(path) == data
    assert record.sha256 == sha256_bytes(data)
    if len(data) > THRESHOLD:
        assert record.blob == sha256_bytes(data)
        assert pond.blobs.path(record.blob).read_bytes() == data
    else:
        assert record.blob is None
        assert sha256_bytes(data) not in blob_shas(pond)


def test_large_bytes_go_to_a_blob_small_ones_inline(pond: Pond) -> None:
    large, small = os.urandom(THRESHOLD + 1), os.urandom(THRESHOLD)
    with pond.transaction("two files") as tx:
        tx.write_bytes("/large.bin", large)
        tx.write_bytes("/small.bin", small)
    assert blob_shas(pond) == {sha256_bytes(large)}
    blob = pond.location.root / "blobs" / sha256_bytes(large)[:2] / sha256_bytes(large)
    assert blob.read_bytes() == large
    assert pond.read_bytes("/large.bin") == large
    assert pond.read_bytes("/small.bin") == small
    assert {i.path: i.size for i in pond.list_nodes()} == {
        "/large.bin": len(large),
        "/small.bin": len(small),
    }


def test_the_inline_threshold_is_configurable(tmp_path: Path) -> None:
    pond = Pond.create(str(tmp_path / "p"), inline_threshold=10)
    with pond.transaction("t") as tx:
        tx.write_bytes("/eleven.bin", b"x" * 11)
        tx.write_bytes("/ten.bin", b"y" * 10)
    assert blob_shas(Pond.open(str(tmp_path / "p"))) == {sha256_bytes(b"x" * 11)}


def test_rows_round_trip(pond: Pond) -> None:
    table = pa.table(
        {
            "id": pa.array([1, 2, 3], pa.int64()),
            "name": ["a", None, "ç"],
            "x": [0.5, float("inf"), -1.0],
            "day": pa.array([datetime(2024, 1, i).date() for i in (1, 2, 3)], pa.date32()),
            "flag": [True, False, None],
        }
    )
    pond.write_table("/t.table", table)
    assert pond.read_table("/t.table").equals(table)
    assert pond.read_table("/t.table", columns=["name"]).column("name").to_pylist() == [
        "a",
        None,
        "ç",
    ]


def test_a_new_table_version_replaces_it_for_readers(pond: Pond) -> None:
    pond.write_table("/t.table", pa.table({"v": [1]}))
    pond.write_table("/t.table", pa.table({"v": [2, 3]}))
    assert pond.read_table("/t.table").column("v").to_pylist() == [2, 3]
    assert pond.read_table("/t.table", version=1).column("v").to_pylist() == [1]
    assert len(pond.node("/t.table").versions) == 2


# -- series -----------------------------------------------------------------------------------
def test_a_series_reads_as_the_union_of_its_versions(sample_pond: Pond, sample) -> None:
    expected = pa.concat_tables([sample.readings(v) for v in (1, 2, 3)])
    assert sample_pond.read_table(sample.series).equals(expected)
    assert sample_pond.read_table(sample.series, version=2).equals(sample.readings(2))
    assert [r.version for r in sample_pond.node(sample.series).versions] == [1, 2, 3]


def test_versions_union_by_column_name(pond: Pond) -> None:
    ts = pa.timestamp("us", tz="UTC")
    day = datetime(2024, 1, 1, tzinfo=UTC)
    pond.write_table("/s.series", pa.table({"ts": pa.array([day], ts), "a": [1]}), "series")
    pond.write_table(
        "/s.series",
        pa.table({"b": ["x"], "ts": pa.array([day + timedelta(days=1)], ts)}),
        "series",
    )
    rows = pond.read_table("/s.series").to_pylist()
    assert [(r["a"], r["b"]) for r in rows] == [(1, None), (None, "x")]
    assert pond.read_table("/s.series").column_names == ["ts", "a", "b"]


def test_a_time_window_keeps_every_column_of_the_series(pond: Pond) -> None:
    ts = pa.timestamp("us", tz="UTC")
    day = datetime(2024, 1, 1, tzinfo=UTC)
    pond.write_table("/s.series", pa.table({"ts": pa.array([day], ts), "a": [1]}), "series")
    pond.write_table(
        "/s.series", pa.table({"ts": pa.array([day + timedelta(days=1)], ts), "b": [2]}), "series"
    )
    late = pond.read_table("/s.series", time_start=day + timedelta(days=1))
    assert late.column_names == ["ts", "a", "b"]


@pytest.mark.parametrize(
    ("start_hours", "end_hours"),
    [(0, 72), (1, 3), (2, 26), (23, 49), (24, 48), (None, 30), (50, None), (100, 200)],
)
def test_a_time_window_returns_exactly_the_rows_in_range(
    sample_pond: Pond, sample, start_hours: int | None, end_hours: int | None
) -> None:
    start = sample.base_time + timedelta(hours=start_hours) if start_hours is not None else None
    end = sample.base_time + timedelta(hours=end_hours) if end_hours is not None else None
    everything = pa.concat_tables([sample.readings(v) for v in (1, 2, 3)]).to_pylist()
    expected = [
        r
        for r in everything
        if (start is None or r["ts"] >= start) and (end is None or r["ts"] < end)
    ]
    got = sample_pond.read_table(sample.series, time_start=start, time_end=end).to_pylist()
    assert [(r["ts"], r["value"]) for r in got] == [(r["ts"], r["value"]) for r in expected]
    count = sample_pond.query(
        "SELECT count(*) AS n FROM source", source=sample.series, time_start=start, time_end=end
    )
    assert count.to_pylist() == [{"n": len(expected)}]


def test_a_time_window_skips_versions_outside_it(tmp_path: Path, sample) -> None:
    """Version 1 is damaged; a window that excludes it never opens it."""
    pond = Pond.create(str(tmp_path / "blobby"), inline_threshold=100)
    for version in (1, 2, 3):
        pond.write_table("/big.series", sample.readings(version, rows=24), "series")
    first = pond.node("/big.series").versions[0]
    assert first.blob is not None
    blob = pond.blobs.path(first.blob)
    blob.chmod(0o644)
    blob.write_bytes(b"garbage")
    day2 = sample.base_time + timedelta(days=1)
    fresh = Pond.open(str(pond.location.root))
    assert fresh.read_table("/big.series", time_start=day2).num_rows == 48
    with pytest.raises(CorruptionError) as caught:
        Pond.open(str(pond.location.root)).read_table("/big.series")
    assert caught.value.subject == "/big.series"
    assert "version 1 is corrupt" in caught.value.reason


def test_the_time_column_defaults_to_the_first_timestamp(pond: Pond) -> None:
    day = datetime(2024, 3, 1, tzinfo=UTC)
    table = pa.table({"n": [1], "made": [day], "seen": [day + timedelta(hours=1)]})
    pond.write_table("/a.series", table, "series")
    pond.write_table("/b.series", table, "series", time_column="seen")
    assert pond.describe("/a.series")["time_column"] == "made"
    assert pond.describe("/b.series")["time_column"] == "seen"
    assert pond.describe("/b.series")["versions"][0]["min_event_time"] == (
        "2024-03-01T01:00:00+00:00"
    )


def test_series_errors_name_the_columns(pond: Pond) -> None:
    day = datetime(2024, 3, 1, tzinfo=UTC)
    pond.write_table("/s.series", pa.table({"ts": [day], "v": [1]}), "series")
    state = (pond.oplog.version(), blob_shas(pond))
    with pytest.raises(ConflictError) as clash:
        pond.write_table("/s.series", pa.table({"ts": [day], "v": ["one"]}), "series")
    assert clash.value.subject == "/s.series"
    assert "'v' is string, expected int64" in clash.value.reason
    with pytest.raises(ConfigError) as unknown:
        pond.write_table("/t.series", pa.table({"ts": [day]}), "series", time_column="when")
    assert unknown.value.reason == "no column 'when'"
    assert "ts" in (unknown.value.hint or "")
    with pytest.raises(ConfigError) as none:
        pond.write_table("/u.series", pa.table({"v": [1]}), "series")
    assert "needs a timestamp column" in none.value.reason
    assert (pond.oplog.version(), blob_shas(pond)) == state


# -- history -----------------------------------------------------------------------------------
def test_at_reads_the_pond_as_it_was(sample_pond: Pond, sample) -> None:
    with sample_pond.transaction("change") as tx:
        tx.write_bytes(sample.data, b"rewritten")
        tx.remove(sample.table)
    assert sample_pond.read_bytes(sample.data) == b"rewritten"
    assert sample_pond.read_bytes(sample.data, at=4) == sample.notes
    assert sample_pond.read_table(sample.table, at=4).equals(sample.stations())
    assert sample_pond.read_table(sample.series, at=3).num_rows == 8
    assert sample_pond.read_table(sample.series, at=2).equals(sample.readings(1))
    assert [i.path for i in sample_pond.list_nodes(at=1)] == []
    assert sample.table in [i.path for i in sample_pond.list_nodes(at=4)]
    assert sample.table not in [i.path for i in sample_pond.list_nodes()]
    for bad in (0, 6, -1):
        with pytest.raises(NotFoundError) as caught:
            sample_pond.read_table(sample.series, at=bad)
        assert caught.value.reason == f"no transaction {bad}"
        assert caught.value.hint == "transactions are 1..5"
    with pytest.raises(NotFoundError) as version:
        sample_pond.read_table(sample.series, version=4)
    assert (version.value.reason, version.value.hint) == ("no version 4", "versions are 1..3")


def test_log_lists_transactions_newest_first(sample_pond: Pond, sample) -> None:
    log = sample_pond.log()
    assert [t.txn_seq for t in log] == [4, 3, 2, 1]
    assert [t.command for t in log] == ["append day 3", "append day 2", "sample", "init"]
    assert log[0].paths == [sample.series]
    assert set(log[2].paths) >= {sample.directory, sample.series, sample.table, sample.link}
    assert [t.txn_seq for t in sample_pond.log(limit=2)] == [4, 3]


# -- transactions ------------------------------------------------------------------------------
def test_a_failed_transaction_changes_nothing(sample_pond: Pond, sample) -> None:
    version, blobs = sample_pond.oplog.version(), blob_shas(sample_pond)

    def change_then_fail() -> None:
        with sample_pond.transaction("x") as tx:
            tx.mkdir("/new")
            tx.write_bytes("/new/big.bin", os.urandom(THRESHOLD * 2))
            raise RuntimeError("changed my mind")

    with pytest.raises(RuntimeError, match="changed my mind"):
        change_then_fail()
    assert sample_pond.oplog.version() == version
    assert not sample_pond.resolver().exists("/new")
    # the blob written before the failure is the only trace, and gc removes it
    assert len(blob_shas(sample_pond) - blobs) == 1
    assert sample_pond.verify().ok
    assert len(sample_pond.gc()) == 1
    assert blob_shas(sample_pond) == blobs


def test_a_transaction_sees_its_own_changes_and_is_one_commit(pond: Pond) -> None:
    before = pond.oplog.version()
    with pond.transaction("many") as tx:
        tx.mkdir("/a/b", parents=True)
        tx.write_bytes("/a/b/f.bin", b"1")
        tx.symlink("/a/l", "/a/b/f.bin")
        assert tx.resolver().read_bytes(tx.resolver().resolve("/a/l")) == b"1"
        tx.write_bytes("/a/b/f.bin", b"2")
    assert pond.oplog.version() == before + 1
    assert pond.read_bytes("/a/l") == b"2"
    assert [r.version for r in pond.node("/a/b/f.bin").versions] == [1, 2]


def test_crash_between_blob_and_commit(
    sample_pond: Pond, sample, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = sample_pond.read_table(sample.series)
    version, blobs = sample_pond.oplog.version(), blob_shas(sample_pond)

    def crash(*args: object, **kwargs: object) -> int:
        raise OSError("simulated power cut")

    monkeypatch.setattr(Oplog, "append", crash)
    big = sample.readings(4, rows=8000)
    with pytest.raises(OSError, match="simulated power cut"):
        sample_pond.write_table(sample.series, big, "series")
    monkeypatch.undo()
    new_blobs = blob_shas(sample_pond) - blobs
    assert len(new_blobs) == 1  # written before the commit that never came
    reopened = Pond.open(str(sample_pond.location.root))
    assert reopened.oplog.version() == version
    assert reopened.read_table(sample.series).equals(before)
    report = reopened.verify()
    assert report.ok, report.problems
    assert report.unreferenced_blobs == sorted(new_blobs)
    assert reopened.gc() == sorted(new_blobs)
    assert blob_shas(reopened) == blobs
    assert reopened.verify().notes == []


KILL_SCRIPT = textwrap.dedent(
    """
    import os, signal, sys
    from pond_pipeline.api import Pond
    from pond_pipeline.store.oplog import Oplog
    def die(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGKILL)
    Oplog.append = die
    pond = Pond.open(sys.argv[1])
    with pond.transaction("doomed") as tx:
        tx.write_bytes("/doomed.bin", os.urandom(200_000))
    """
)


def test_a_writer_killed_before_its_commit(sample_pond: Pond, sample) -> None:
    version, blobs = sample_pond.oplog.version(), blob_shas(sample_pond)
    done = subprocess.run(
        [sys.executable, "-c", KILL_SCRIPT, str(sample_pond.location.root)], timeout=60
    )
    assert done.returncode == -signal.SIGKILL
    # the dead writer's lock is gone with it
    reopened = Pond.open(str(sample_pond.location.root), PondOptions(lock_timeout=2))
    assert reopened.oplog.version() == version
    assert not reopened.resolver().exists("/doomed.bin")
    assert reopened.read_bytes(sample.data) == sample.notes
    report = reopened.verify()
    assert report.ok
    assert len(report.unreferenced_blobs) == 1
    assert reopened.gc() == report.unreferenced_blobs
    assert blob_shas(reopened) == blobs
    reopened.mkdir("/after")
    assert reopened.resolver().exists("/after")


# -- verify ------------------------------------------------------------------------------------
def test_verify_finds_a_damaged_blob(pond: Pond) -> None:
    data = os.urandom(THRESHOLD + 10)
    with pond.transaction("t") as tx:
        tx.write_bytes("/f.bin", data)
    blob = pond.blobs.path(sha256_bytes(data))
    blob.chmod(0o644)
    blob.write_bytes(data[:-1] + b"!")
    report = pond.verify()
    assert not report.ok
    assert report.problems == [f"/f.bin version 1: blob {sha256_bytes(data)} is damaged"]
    with pytest.raises(CorruptionError):
        Pond.open(str(pond.location.root)).read_bytes("/f.bin")


# -- queries -----------------------------------------------------------------------------------
def test_query_over_quoted_paths_and_globs(sample_pond: Pond, sample) -> None:
    rows = sample_pond.query(
        f"SELECT s.station, count(*) AS n FROM '{sample.table}' s, '{sample.series}' r "
        "GROUP BY s.station ORDER BY s.station"
    ).to_pylist()
    assert rows == [{"station": name, "n": 12} for name in ("east", "north", "south")]
    sample_pond.write_table("/sensors/other.series", sample.readings(9), "series")
    union = sample_pond.query("SELECT count(*) AS n FROM '/sensors/*.series'").to_pylist()
    assert union == [{"n": 16}]


def test_query_errors(sample_pond: Pond, sample) -> None:
    with pytest.raises(QueryError) as bad:
        sample_pond.query("SELECT nope FROM source", source=sample.series)
    assert "nope" in bad.value.reason
    assert bad.value.subject == "SELECT nope FROM source"
    with pytest.raises(QueryError) as host:
        sample_pond.query("SELECT * FROM read_csv('/etc/passwd')")
    assert "/etc/passwd" in host.value.reason
    with pytest.raises(NotFoundError) as missing:
        sample_pond.query("SELECT * FROM '/nope.series'")
    assert "matches no table or series" in missing.value.reason


def test_query_timeout(sample_pond: Pond, sample) -> None:
    timed = Pond.open(sample_pond.location.uri, PondOptions(query_timeout=0.3))
    with pytest.raises(QueryError) as caught:
        timed.query("SELECT count(*) FROM source, range(100000000000)", source=sample.series)
    assert caught.value.reason == "interrupted after the 0.3s query timeout"


# -- paths ---------------------------------------------------------------------------------------
def test_paths_are_normalized_and_cannot_escape(sample_pond: Pond, sample) -> None:
    assert sample_pond.read_bytes("notes.txt") == sample.notes  # relative = from the root
    assert sample_pond.read_bytes("/sensors/../notes.txt") == sample.notes
    assert sample_pond.read_bytes("//sensors/./..//notes.txt") == sample.notes
    for escaping in ("..", "../notes.txt", "/sensors/../../notes.txt"):
        with pytest.raises(ConfigError) as caught:
            sample_pond.read_bytes(escaping)
        assert (caught.value.subject, caught.value.reason) == (
            escaping,
            "path escapes the pond's root",
        )
    version = sample_pond.oplog.version()
    with pytest.raises(ConfigError):
        sample_pond.mkdir("/sensors/../../up")
    assert sample_pond.oplog.version() == version


def test_symlinks_are_followed_on_read(sample_pond: Pond, sample) -> None:
    assert sample_pond.read_table(sample.link).equals(sample_pond.read_table(sample.series))
    assert sample_pond.node(sample.link).entry_type is EntryType.SERIES
    assert sample_pond.describe(sample.link)["target"] == sample.series


# -- concurrency ---------------------------------------------------------------------------------
APPEND_SCRIPT = textwrap.dedent(
    """
    import sys
    from datetime import UTC, datetime, timedelta
    import pyarrow as pa
    from pond_pipeline.api import Pond, PondOptions
    pond = Pond.open(sys.argv[1], PondOptions(lock_timeout=60))
    writer = int(sys.argv[2])
    start = datetime(2024, 1, 1, tzinfo=UTC) + timedelta(days=writer)
    print("ready", flush=True)
    sys.stdin.readline()
    for i in range(50):
        row = pa.table(
            {"ts": [start + timedelta(minutes=i)], "writer": [writer], "i": [i]}
        )
        pond.write_table("/shared.series", row, "series")
    """
)


def test_two_processes_appending_lose_nothing(pond: Pond) -> None:
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", APPEND_SCRIPT, str(pond.location.root), str(n)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for n in (1, 2)
    ]
    for writer in writers:  # both loaded, then both start at once
        assert writer.stdout is not None
        assert writer.stdout.readline().strip() == "ready"
    for writer in writers:
        assert writer.stdin is not None
        writer.stdin.write("go\n")
        writer.stdin.close()
    assert [w.wait(timeout=80) for w in writers] == [0, 0]
    reopened = Pond.open(str(pond.location.root))
    node = reopened.node("/shared.series")
    assert [r.version for r in node.versions] == list(range(1, 101))
    rows = reopened.read_table("/shared.series").to_pylist()
    assert sorted((r["writer"], r["i"]) for r in rows) == [
        (w, i) for w in (1, 2) for i in range(50)
    ]
    log = reopened.log()
    assert [t.txn_seq for t in log] == list(range(101, 0, -1))
    assert reopened.verify().ok


def test_a_refused_write_leaves_no_scratch_file(sample_pond: Pond, sample) -> None:
    version = sample_pond.oplog.version()
    with pytest.raises(ConflictError) as caught:
        sample_pond.write_table(sample.table, sample.readings(1), "series")
    assert caught.value.reason == "exists as a table, cannot write a series over it"
    with pytest.raises(NotFoundError):
        sample_pond.write_table("/missing/t.table", sample.stations())
    assert sample_pond.oplog.version() == version
    assert list(sample_pond.location.scratch.glob("*")) == []


def test_verify_finds_a_listing_entry_without_a_node(pond: Pond) -> None:
    from dataclasses import replace

    from pond_pipeline.fs.nodes import ROOT_ID, ListingEntry, encode_listing
    from pond_pipeline.store.oplog import TransactionInfo

    root = pond.snapshot().latest(ROOT_ID)
    assert root is not None
    ghost = {"ghost": ListingEntry("no-such-node", EntryType.DATA)}
    broken = replace(root, version=2, txn_seq=2, content=encode_listing(ghost), size=1)
    info = TransactionInfo(2, root.timestamp, "tamper", ["/ghost"])
    pond.oplog.append([broken], expected_version=pond.oplog.version(), info=info)
    report = Pond.open(str(pond.location.root)).verify()
    assert report.problems == ["/ghost: listed but has no versions"]


def test_readers_never_see_half_a_transaction(sample_pond: Pond, sample) -> None:
    reader = Pond.open(str(sample_pond.location.root))
    with sample_pond.transaction("two steps") as tx:
        tx.write_bytes(sample.data, b"step one")
        tx.mkdir("/step-two")
        # mid-transaction, a reader (no lock needed) sees the pond as it was
        assert reader.read_bytes(sample.data) == sample.notes
        assert not reader.resolver().exists("/step-two")
        assert len(reader.log()) == 4
    assert reader.read_bytes(sample.data) == b"step one"
    assert reader.resolver().exists("/step-two")
