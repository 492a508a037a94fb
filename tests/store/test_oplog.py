"""The Delta oplog: records round-trip, one commit per transaction, history metadata."""

import tempfile
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pytest
from deltalake import write_deltalake
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pond_pipeline.errors import ConflictError, NotFoundError
from pond_pipeline.store.location import PondLocation
from pond_pipeline.store.oplog import (
    OPLOG_SCHEMA,
    STATIC_FACTORY,
    Oplog,
    OplogRecord,
    TransactionInfo,
)

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
ENTRY_TYPES = ["directory", "symlink", "file:data", "file:table", "file:series"]


def make_oplog(root: Path) -> Oplog:
    return Oplog.create(PondLocation.parse(str(root)))


def info(txn: int, command: str = "test", paths: list[str] | None = None) -> TransactionInfo:
    return TransactionInfo(txn, NOW, command, paths or ["/x"])


def record(txn: int = 1, **fields: object) -> OplogRecord:
    values: dict[str, object] = {
        "part_id": "parent",
        "node_id": str(uuid.uuid4()),
        "entry_type": "file:data",
        "version": 1,
        "txn_seq": txn,
        "timestamp": NOW,
        "content": b"abc",
        "sha256": "0" * 64,
        "size": 3,
    }
    values.update(fields)
    return OplogRecord(**values)  # type: ignore[arg-type]


micros = st.integers(min_value=-(2**60), max_value=2**60)
records = st.builds(
    OplogRecord,
    part_id=st.uuids().map(str),
    node_id=st.uuids().map(str),
    entry_type=st.sampled_from(ENTRY_TYPES),
    version=st.integers(min_value=1, max_value=2**40),
    txn_seq=st.integers(min_value=1, max_value=2**40),
    timestamp=st.datetimes(
        min_value=datetime(1971, 1, 1), max_value=datetime(2200, 1, 1), timezones=st.just(UTC)
    ),
    factory=st.sampled_from([STATIC_FACTORY, "synthetic", "template"]),
    content=st.none() | st.binary(max_size=300),
    blob=st.none() | st.text("0123456789abcdef", min_size=64, max_size=64),
    sha256=st.none() | st.text("0123456789abcdef", min_size=64, max_size=64),
    size=st.none() | st.integers(min_value=0, max_value=2**50),
    min_event_time=st.none() | micros,
    max_event_time=st.none() | micros,
    attributes=st.dictionaries(
        st.text(min_size=1, max_size=10),
        st.one_of(st.integers(-(2**40), 2**40), st.text(max_size=20), st.booleans()),
        max_size=3,
    ),
)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(batch=st.lists(records, min_size=1, max_size=4, unique_by=lambda r: (r.node_id, r.version)))
def test_records_round_trip(batch: list[OplogRecord]) -> None:
    with tempfile.TemporaryDirectory() as folder:
        oplog = make_oplog(Path(folder) / "pond")
        oplog.append(batch, expected_version=oplog.version(), info=info(1))
        _, found = oplog.read()
        by_key = {(r.node_id, r.version): r for r in found}
        assert len(found) == len(batch)
        for written in batch:
            read = by_key[(written.node_id, written.version)]
            # file contents are fetched on demand; structure and dynamic configs come along
            if written.entry_type in ("directory", "symlink") or written.is_dynamic:
                assert read == written
            else:
                assert read.content is None
                expected = oplog.read_content(written.part_id, written.node_id, written.version)
                assert expected == written.content
                assert {**vars(read), "content": written.content} == vars(written)


def test_each_append_is_one_commit_with_its_metadata(tmp_path: Path) -> None:
    oplog = make_oplog(tmp_path / "pond")
    first = oplog.version()
    oplog.append([record(1), record(1)], expected_version=first, info=info(1, "one", ["/a"]))
    oplog.append([record(2)], expected_version=first + 1, info=info(2, "two", ["/b", "/c"]))
    assert oplog.version() == first + 2
    log = oplog.transactions()
    assert [(t.txn_seq, t.command, t.paths) for t in log] == [
        (2, "two", ["/b", "/c"]),
        (1, "one", ["/a"]),
    ]
    assert [t.txn_seq for t in oplog.transactions(limit=1)] == [2]
    assert oplog.transactions(limit=0) == []
    _, found = oplog.read()
    assert Counter(r.txn_seq for r in found) == {1: 2, 2: 1}


def test_stale_expected_version_is_a_conflict_and_writes_nothing(tmp_path: Path) -> None:
    oplog = make_oplog(tmp_path / "pond")
    start = oplog.version()
    oplog.append([record(1)], expected_version=start, info=info(1))
    with pytest.raises(ConflictError) as caught:
        oplog.append([record(2)], expected_version=start, info=info(2))
    assert "changed while this transaction was prepared" in caught.value.reason
    assert oplog.version() == start + 1
    assert [t.txn_seq for t in oplog.transactions()] == [1]


def test_missing_oplog_is_not_found(tmp_path: Path) -> None:
    location = PondLocation.parse(str(tmp_path / "nothing"))
    assert not Oplog.exists(location)
    with pytest.raises(NotFoundError) as caught:
        Oplog(location).version()
    assert caught.value.subject == str(tmp_path / "nothing")
    assert caught.value.reason == "no pond here"


def test_creating_twice_is_a_conflict(tmp_path: Path) -> None:
    make_oplog(tmp_path / "pond")
    with pytest.raises(ConflictError):
        make_oplog(tmp_path / "pond")


def test_rows_without_a_factory_read_as_static(tmp_path: Path) -> None:
    oplog = make_oplog(tmp_path / "pond")
    row = dict.fromkeys(OPLOG_SCHEMA.names)
    row.update(
        part_id="p",
        node_id="n",
        entry_type="directory",
        version=1,
        txn_seq=1,
        timestamp=NOW,
        content=b"",
    )
    write_deltalake(
        str(oplog.location.oplog), pa.Table.from_pylist([row], schema=OPLOG_SCHEMA), mode="append"
    )
    _, found = oplog.read()
    assert [(r.node_id, r.factory, r.is_dynamic) for r in found] == [("n", STATIC_FACTORY, False)]


def test_transactions_are_newest_first_with_times(tmp_path: Path) -> None:
    oplog = make_oplog(tmp_path / "pond")
    for txn in range(1, 4):
        oplog.append([record(txn)], expected_version=oplog.version(), info=info(txn))
    log = oplog.transactions()
    assert [t.txn_seq for t in log] == [3, 2, 1]
    now = datetime.now(UTC)
    assert all(now - timedelta(minutes=5) < t.time <= now + timedelta(seconds=1) for t in log)
