"""The oplog: a Delta table where one row is one version of one node (DESIGN §2).

Every pond transaction is exactly one Delta commit, appended under the pond's write
lock with ``max_commit_retries=0`` (a compare-and-swap on the table version), and
carries the transaction's number, command and touched paths as commit metadata.
Reads and commits verify and record the checksums of its files through
``store.integrity``, which also checks every part for ``pond verify``.
"""

import contextlib
import json
import os
import sys
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.fs as pafs
from deltalake import CommitProperties, DeltaTable, PostCommitHookProperties, write_deltalake
from deltalake.exceptions import CommitFailedError, DeltaError, TableNotFoundError

from pond_pipeline.errors import ConflictError, CorruptionError, NotFoundError, PondError
from pond_pipeline.factory import EntryType
from pond_pipeline.store.blobs import sha256_bytes
from pond_pipeline.store.integrity import (
    PARQUET_READ_ERRORS,
    OplogIntegrity,
    first_line,
    read_commit,
)
from pond_pipeline.store.io_errors import storage_error
from pond_pipeline.store.location import PondLocation

STATIC_FACTORY = "tlogfs"

OPLOG_SCHEMA = pa.schema(
    [
        ("part_id", pa.string()),
        ("node_id", pa.string()),
        ("entry_type", pa.string()),
        ("version", pa.int64()),
        ("txn_seq", pa.int64()),
        ("timestamp", pa.timestamp("us", tz="UTC")),
        ("factory", pa.string()),
        ("content", pa.binary()),
        ("blob", pa.string()),
        ("sha256", pa.string()),
        ("size", pa.int64()),
        ("min_event_time", pa.int64()),
        ("max_event_time", pa.int64()),
        ("extended_attributes", pa.string()),
    ]
)

# The table keeps its whole log: time travel and `pond log` need every commit.
TABLE_CONFIGURATION = {
    "delta.logRetentionDuration": "interval 36500 days",
    "delta.enableExpiredLogCleanup": "false",
    "delta.checkpointInterval": "50",
}

# Compact the oplog's small data files when this many have piled up (under the lock).
COMPACT_AFTER_FILES = 200

# A kept table handle is brought up to date incrementally, and reopened after this many
# commits (a long-lived handle slows down as its log grows).
REOPEN_AFTER_VERSIONS = 100

_STRUCTURE_TYPES = ("directory", "symlink")


@dataclass(frozen=True)
class OplogRecord:
    """One oplog row: one version of one node."""

    part_id: str
    node_id: str
    entry_type: str
    version: int
    txn_seq: int
    timestamp: datetime
    factory: str = STATIC_FACTORY
    content: bytes | None = None
    blob: str | None = None
    sha256: str | None = None
    size: int | None = None
    min_event_time: int | None = None
    max_event_time: int | None = None
    attributes: dict[str, Any] = field(default_factory=dict)

    @property
    def is_dynamic(self) -> bool:
        return self.factory != STATIC_FACTORY


@dataclass(frozen=True)
class TransactionInfo:
    txn_seq: int
    time: datetime
    command: str
    paths: list[str]
    run_id: str | None = None


@dataclass(frozen=True)
class _ReadCache:
    """What ``read`` returned last: the table version, its data files, their records."""

    version: int
    paths: frozenset[str]
    records: tuple[OplogRecord, ...]


class Oplog:
    def __init__(self, location: PondLocation):
        self.location = location
        self._uri = str(location.oplog)
        # Per thread (a DeltaTable handle must not be updated by two threads at once)
        # and per process (a handle must not cross a fork): handle, its version, cache.
        self._local = threading.local()
        self.integrity = OplogIntegrity(location, check_row=_check_row, live_files=self._live_files)

    @classmethod
    def create(cls, location: PondLocation) -> "Oplog":
        empty = OPLOG_SCHEMA.empty_table()
        try:
            with rust_panics_silenced():
                write_deltalake(
                    str(location.oplog),
                    empty,
                    partition_by=["part_id"],
                    mode="error",
                    name="pond_oplog",
                    configuration=TABLE_CONFIGURATION,
                )
        except (DeltaError, OSError) as exc:
            failure = storage_error(
                exc, pond=location.uri, root=location.root, writing="the new oplog"
            )
            if failure is not None:
                raise failure from exc
            raise ConflictError("cannot create the oplog", subject=str(location.oplog)) from exc
        oplog = cls(location)
        oplog._record_checksums(0)
        return oplog

    @staticmethod
    def exists(location: PondLocation) -> bool:
        return DeltaTable.is_deltatable(str(location.oplog))

    def _table(self, version: int | None = None) -> DeltaTable:
        try:
            return DeltaTable(self._uri, version=version)
        except TableNotFoundError as exc:
            raise NotFoundError(
                "no pond here", subject=self.location.uri, hint="create one with `pond init`"
            ) from exc
        except (DeltaError, OSError, ValueError) as exc:
            raise self._corruption(exc) from exc

    def _corruption(self, exc: Exception) -> CorruptionError:
        """The error for a log Delta could not read, naming the damaged file."""
        found = self.integrity.check(data_files=False).problems
        if found:
            return found[0].as_error(self.location.uri)
        return CorruptionError(
            f"the oplog cannot be read: {first_line(exc)}",
            subject=self.location.uri,
            hint="run `pond verify`",
        )

    def _latest(self) -> DeltaTable:
        """The table at its latest version: a kept handle, updated incrementally."""
        local = self._local
        handle: DeltaTable | None = getattr(local, "handle", None)
        if (
            handle is not None
            and local.pid == os.getpid()
            and handle.version() - local.opened_at < REOPEN_AFTER_VERSIONS
        ):
            try:
                handle.update_incremental()
                return handle
            except (DeltaError, OSError, ValueError):
                pass  # reopen: a fresh handle reports the problem properly
        local.handle = None
        handle = self._table()
        local.handle, local.opened_at, local.pid = handle, handle.version(), os.getpid()
        return handle

    def version(self) -> int:
        return self._latest().version()

    def read(self) -> tuple[int, list[OplogRecord]]:
        """The table version and every record; file contents are left for ``read_content``.

        Data files are immutable and the oplog only grows between compactions, so when
        every file read last time is still live, only the new files are read.
        """
        table = self._latest()
        version = table.version()
        cache: _ReadCache | None = getattr(self._local, "cache", None)
        if cache is not None and cache.version == version:
            return version, list(cache.records)
        files = self._files(table)
        paths = frozenset(files.column("path").to_pylist())
        if cache is not None and cache.paths <= paths:
            fresh = pc.invert(
                pc.is_in(files.column("path"), pa.array(list(cache.paths), pa.string()))
            )
            records = list(cache.records) + self._read_records(files.filter(fresh))
        else:
            records = self._read_records(files)
        self._local.cache = _ReadCache(version, paths, tuple(records))
        return version, records

    def _read_records(self, files: pa.Table) -> list[OplogRecord]:
        if files.num_rows == 0:
            return []
        self.integrity.verify_data_files(_paths(files), whole=False)
        dataset = self._dataset(files)
        columns = [name for name in OPLOG_SCHEMA.names if name != "content"]
        try:
            meta = dataset.to_table(columns=columns)
            structure = dataset.to_table(
                columns=["node_id", "version", "content"],
                filter=pc.field("entry_type").isin(_STRUCTURE_TYPES)
                | (pc.field("factory") != STATIC_FACTORY),
            )
            meta.validate(full=True)  # damaged strings fail here, not in to_pylist
            structure.validate(full=True)
            contents = {
                (row["node_id"], row["version"]): row["content"] for row in structure.to_pylist()
            }
            records = [
                _record_from_row(row, contents.get((row["node_id"], row["version"])))
                for row in meta.to_pylist()
            ]
            for record in records:
                _check_record(record)
            return records
        except PARQUET_READ_ERRORS as exc:
            raise self._damaged_data(files, exc) from exc

    def _damaged_data(self, files: pa.Table, exc: Exception) -> CorruptionError:
        """The error for data files that failed to read, naming the first damaged one."""
        found = self.integrity.first_damaged_file(_paths(files))
        if found:
            return found.as_error(self.location.uri)
        return CorruptionError(
            f"the oplog's data files cannot be read: {first_line(exc)}",
            subject=self.location.uri,
            hint="run `pond verify`",
        )

    def read_content(self, part_id: str, node_id: str, version: int) -> bytes | None:
        """An inline payload, fetched on demand (pruned by the parent's id and file stats)."""
        files = self._files(self._latest())
        keep = pc.equal(files.column("partition.part_id"), part_id)
        for column, value in (("node_id", node_id), ("version", version)):
            if f"min.{column}" in files.column_names and f"max.{column}" in files.column_names:
                low, high = files.column(f"min.{column}"), files.column(f"max.{column}")
                keep = pc.and_(keep, pc.or_(pc.is_null(low), pc.less_equal(low, value)))
                keep = pc.and_(keep, pc.or_(pc.is_null(high), pc.greater_equal(high, value)))
        files = files.filter(pc.fill_null(keep, True))
        self.integrity.verify_data_files(_paths(files), whole=True)
        try:
            result = self._dataset(files).to_table(
                columns=["content"],
                filter=(pc.field("part_id") == part_id)
                & (pc.field("node_id") == node_id)
                & (pc.field("version") == version),
            )
        except PARQUET_READ_ERRORS as exc:
            raise self._damaged_data(files, exc) from exc
        if result.num_rows == 0:
            raise CorruptionError(f"version {version} vanished from the oplog", subject=node_id)
        value = result.column("content")[0].as_py()
        return value if value is None else bytes(value)

    def append(
        self,
        records: Sequence[OplogRecord],
        *,
        expected_version: int,
        info: TransactionInfo,
    ) -> int:
        """Commit ``records`` as one Delta commit on top of ``expected_version``."""
        table = pa.Table.from_pylist([_row_from_record(r) for r in records], schema=OPLOG_SCHEMA)
        metadata: dict[str, Any] = {
            "pond.txn": info.txn_seq,
            "pond.command": info.command,
            "pond.paths": info.paths,
        }
        if info.run_id:
            metadata["pond.run_id"] = info.run_id
        current = self._latest()
        if current.version() != expected_version:
            raise ConflictError(
                "the oplog changed while this transaction was prepared",
                subject=self.location.uri,
                hint="retry; writers must hold the pond's write lock",
            )
        try:
            with rust_panics_silenced():
                write_deltalake(
                    current,
                    table,
                    mode="append",
                    commit_properties=CommitProperties(
                        custom_metadata=metadata, max_commit_retries=0
                    ),
                    post_commithook_properties=PostCommitHookProperties(
                        create_checkpoint=True, cleanup_expired_logs=False
                    ),
                )
        except CommitFailedError as exc:
            failure = storage_error(
                exc, pond=self.location.uri, root=self.location.root, writing="the oplog commit"
            )
            if failure is not None:
                raise failure from exc
            raise ConflictError(
                "another commit landed first", subject=self.location.uri, hint="retry"
            ) from exc
        except (DeltaError, OSError, ValueError) as exc:
            # A step after the commit (the checkpoint) may fail once the commit landed:
            # then the transaction is done, and must not be reported as failed.
            if not self.landed(expected_version + 1, info.txn_seq):
                self._local.handle = None
                self._remove_leftovers()
                failure = storage_error(
                    exc,
                    pond=self.location.uri,
                    root=self.location.root,
                    writing="the oplog commit",
                )
                if failure is not None:
                    raise failure from exc
                raise PondError(
                    f"the commit failed: {first_line(exc)}",
                    subject=self.location.uri,
                    hint="nothing was written; retry",
                ) from exc
            self._local.handle = None
        self._record_checksums(expected_version + 1)
        committed = self._latest()
        if len(committed.file_uris()) >= COMPACT_AFTER_FILES:
            # the transaction is committed: a failed compaction is retried next commit
            with contextlib.suppress(DeltaError, OSError, ValueError), rust_panics_silenced():
                committed.optimize.compact(
                    post_commithook_properties=PostCommitHookProperties(
                        create_checkpoint=True, cleanup_expired_logs=False
                    )
                )
            self._local.handle = None
            committed = self._latest()
            for version in range(expected_version + 2, committed.version() + 1):
                self._record_checksums(version)
        return committed.version()

    def _remove_leftovers(self) -> None:
        """After a failed commit (under the write lock): delete the data files it wrote
        that no commit references, so a full disk gets its space back. Best effort:
        ``pond gc`` does the same."""
        with contextlib.suppress(PondError, OSError, ValueError):
            self.integrity.remove_orphans()

    def _record_checksums(self, version: int) -> None:
        """Record the checksums of commit ``version``, which just landed."""
        self.integrity.record_checksums(version)

    def landed(self, version: int, txn_seq: int) -> bool:
        """Whether Delta version ``version`` is pond transaction ``txn_seq``'s commit."""
        try:
            actions = read_commit(self.location.oplog, version)
        except (OSError, ValueError):
            return False
        return any(a.get("commitInfo", {}).get("pond.txn") == txn_seq for a in actions)

    def transactions(self, limit: int | None = None) -> list[TransactionInfo]:
        """Pond transactions, newest first (compaction commits are not transactions)."""
        found: list[TransactionInfo] = []
        table = self._table()
        try:
            history = table.history()
        except (DeltaError, OSError, ValueError) as exc:
            raise self._corruption(exc) from exc
        for commit in history:
            if limit is not None and len(found) >= limit:
                break
            if "pond.txn" not in commit:
                continue
            found.append(
                TransactionInfo(
                    txn_seq=int(commit["pond.txn"]),
                    time=datetime.fromtimestamp(commit["timestamp"] / 1000, tz=UTC),
                    command=str(commit.get("pond.command", "")),
                    paths=list(commit.get("pond.paths", [])),
                    run_id=commit.get("pond.run_id"),
                )
            )
        return sorted(found, key=lambda t: -t.txn_seq)

    def _files(self, table: DeltaTable) -> pa.Table:
        """The live data files: relative ``path``, ``partition.part_id``, min/max stats."""
        try:
            return pa.table(table.get_add_actions(flatten=True))
        except (DeltaError, OSError, ValueError) as exc:
            raise self._corruption(exc) from exc

    def _live_files(self) -> dict[str, int | None]:
        """The live data files Delta sees, and their sizes (for ``OplogIntegrity``)."""
        files = self._files(self._table())
        return dict(zip(_paths(files), files.column("size_bytes").to_pylist(), strict=True))

    def _dataset(self, files: pa.Table) -> ds.Dataset:
        """A dataset over ``files``, built directly (``DeltaTable.to_pyarrow_dataset``
        builds per-file statistics expressions in Python: ~1 ms a file). The explicit
        file system avoids deltalake's abort at exit (see DEPENDENCY-FACTS)."""
        filesystem = pafs.SubTreeFileSystem(self._uri, pafs.LocalFileSystem())
        file_format = ds.ParquetFileFormat(
            default_fragment_scan_options=ds.ParquetFragmentScanOptions(pre_buffer=True)
        )
        fragments = [
            file_format.make_fragment(
                path,
                filesystem=filesystem,
                partition_expression=pc.field("part_id").is_null()
                if part_id is None
                else pc.field("part_id") == pa.scalar(part_id, pa.string()),
            )
            for path, part_id in zip(
                _paths(files), files.column("partition.part_id").to_pylist(), strict=True
            )
        ]
        return ds.FileSystemDataset(fragments, OPLOG_SCHEMA, file_format, filesystem)


_NO_ROW = dict.fromkeys(OPLOG_SCHEMA.names)
_ENTRY_TYPES = frozenset(kind.value for kind in EntryType)


def _check_record(record: OplogRecord) -> None:
    """What any row must hold, so that a damaged but decodable one is caught here (what
    its content means is checked by the tree: ``fs.nodes.check_record``)."""
    if record.entry_type not in _ENTRY_TYPES:
        raise ValueError(f"unknown entry type {record.entry_type!r}")
    if not record.node_id or record.version < 1 or record.txn_seq < 1:
        raise ValueError(f"node {record.node_id!r} version {record.version}: bad identity")


def _check_row(row: dict[str, Any]) -> str | None:
    """A data file's row, as ``OplogIntegrity`` checks it: raises if it is no record;
    names a static inline payload that does not match its sha256."""
    record = _record_from_row({**_NO_ROW, **row}, row.get("content"))
    _check_record(record)
    if (
        record.sha256
        and not record.blob
        and not record.is_dynamic
        and sha256_bytes(record.content or b"") != record.sha256
    ):
        return "holds inline bytes that do not match their sha256"
    return None


def _paths(files: pa.Table) -> list[str]:
    """The relative paths of ``files`` (Delta's add actions), unquoted."""
    return [unquote(path) for path in files.column("path").to_pylist()]


def _record_from_row(row: dict[str, Any], content: bytes | None) -> OplogRecord:
    attributes = json.loads(row["extended_attributes"]) if row["extended_attributes"] else {}
    return OplogRecord(
        part_id=row["part_id"],
        node_id=row["node_id"],
        entry_type=row["entry_type"],
        version=row["version"],
        txn_seq=row["txn_seq"],
        timestamp=row["timestamp"],
        factory=row["factory"] or STATIC_FACTORY,
        content=bytes(content) if content is not None else None,
        blob=row["blob"],
        sha256=row["sha256"],
        size=row["size"],
        min_event_time=row["min_event_time"],
        max_event_time=row["max_event_time"],
        attributes=attributes,
    )


def _row_from_record(record: OplogRecord) -> dict[str, Any]:
    return {
        "part_id": record.part_id,
        "node_id": record.node_id,
        "entry_type": record.entry_type,
        "version": record.version,
        "txn_seq": record.txn_seq,
        "timestamp": record.timestamp,
        "factory": record.factory,
        "content": record.content,
        "blob": record.blob,
        "sha256": record.sha256,
        "size": record.size,
        "min_event_time": record.min_event_time,
        "max_event_time": record.max_event_time,
        "extended_attributes": json.dumps(record.attributes, sort_keys=True)
        if record.attributes
        else None,
    }


_STDERR_LOCK = threading.Lock()


@contextlib.contextmanager
def rust_panics_silenced() -> Iterator[None]:
    """Keep delta-rs's panic reports off stderr while a write runs.

    On some I/O failures (a full disk) a delta-rs worker thread panics and Rust's panic
    hook prints ``thread 'tokio-rt-worker' panicked at ... stack backtrace`` to file
    descriptor 2, while the call itself raises an ordinary error (which pond reports).
    Python cannot replace Rust's hook (``RUST_BACKTRACE=0`` only shortens the report),
    so file descriptor 2 goes to a pipe for the call; what was written there is passed
    on to stderr afterwards, from the first panic report on dropped.
    """
    with _STDERR_LOCK:
        try:
            sys.stderr.flush()
            saved = os.dup(2)
        except (OSError, ValueError, AttributeError):  # no stderr to protect
            yield
            return
        read_end, write_end = os.pipe()
        chunks: list[bytes] = []
        drain = threading.Thread(target=_drain, args=(read_end, chunks), daemon=True)
        drain.start()
        os.dup2(write_end, 2)
        os.close(write_end)
        try:
            yield
        finally:
            os.dup2(saved, 2)  # closes the pipe's last write end: the drain ends
            os.close(saved)
            drain.join(timeout=5)
            kept = _without_panic(b"".join(chunks))
            if kept:
                with contextlib.suppress(OSError):
                    os.write(2, kept)


def _drain(fd: int, into: list[bytes]) -> None:
    try:
        while chunk := os.read(fd, 65536):
            into.append(chunk)
    finally:
        os.close(fd)


def _without_panic(output: bytes) -> bytes:
    """``output`` up to the first Rust panic report (the rest belongs to it)."""
    lines = output.splitlines(keepends=True)
    for number, line in enumerate(lines):
        if line.startswith(b"thread '") and b"panicked at" in line:
            kept = b"".join(lines[:number]).rstrip(b"\n")
            return kept + b"\n" if kept else b""
    return output
