"""The oplog: a Delta table where one row is one version of one node (DESIGN §2).

Every pond transaction is exactly one Delta commit, appended under the pond's write
lock with ``max_commit_retries=0`` (a compare-and-swap on the table version), and
carries the transaction's number, command and touched paths as commit metadata.
"""

import contextlib
import json
import os
import re
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.fs as pafs
import pyarrow.parquet as pq
from deltalake import CommitProperties, DeltaTable, PostCommitHookProperties, write_deltalake
from deltalake.exceptions import CommitFailedError, DeltaError, TableNotFoundError

from pond_pipeline.errors import ConflictError, CorruptionError, NotFoundError, PondError
from pond_pipeline.factory import EntryType
from pond_pipeline.store.blobs import sha256_bytes, sha256_file
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

LOG_FOLDER = "_delta_log"
CHECKSUM_FOLDER = "_pond_checksums"
"""``<version>.json`` per commit: the sha256 of the commit file (and its checkpoint) and
of each data file it added, written right after the commit; ``files/<name>``: one data
file's sha256, for reads (Parquet has no checksum of its own: a flipped byte in a data
file can decode to a plausible, wrong value, or even abort a filtered scan)."""
_COMMIT_NAME = re.compile(r"^(\d{20})\.json$")
_CHECKPOINT_NAME = re.compile(r"^(\d{20})\.checkpoint(?:\.\d+\.\d+)?\.parquet$")
_TEMP_NAME = re.compile(r"^\.|^_commit_|\.tmp$|#\d+$")
"""Temporary files of a write interrupted before its rename (delta-rs: ``_commit_*``)."""
_RESTORE_HINT = "restore it from a backup"
_CHECKPOINT_HINT = (
    "a checkpoint only summarizes the JSON commits before it: delete it and "
    "_delta_log/_last_checkpoint, and the oplog is read from the commits"
)


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

    @property
    def needs_content_at_open(self) -> bool:
        """Structure (listings, link targets, factory configs) is read with the oplog."""
        return self.entry_type in _STRUCTURE_TYPES or self.is_dynamic


@dataclass(frozen=True)
class TransactionInfo:
    txn_seq: int
    time: datetime
    command: str
    paths: list[str]
    run_id: str | None = None


@dataclass(frozen=True)
class OplogProblem:
    """A damaged part of the oplog: the file (relative to ``oplog/``) and what is wrong;
    for one row of a data file, also its node and version."""

    file: str
    reason: str
    hint: str = _RESTORE_HINT
    node_id: str | None = None
    version: int | None = None

    def __str__(self) -> str:
        return f"oplog/{self.file} {self.reason}"


@dataclass
class OplogCheck:
    """What ``Oplog.check`` found. ``orphans`` are data files no commit ever added (a
    commit interrupted after writing them); ``leftovers`` are temporary files of
    interrupted commits (in ``_delta_log`` or ``_pond_checksums``). Neither is part of
    the table; ``remove_orphans`` deletes both."""

    problems: list[OplogProblem] = field(default_factory=list)
    orphans: list[str] = field(default_factory=list)
    leftovers: list[str] = field(default_factory=list)
    unchecksummed: list[int] = field(default_factory=list)
    """Commits without recorded checksums (their writer died right after committing)."""
    rows: int = 0


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
        self._verified_files: set[str] = set()  # data files checked against their sha256
        self._verified_footers: set[str] = set()  # ... their footer only

    @classmethod
    def create(cls, location: PondLocation) -> "Oplog":
        empty = OPLOG_SCHEMA.empty_table()
        try:
            write_deltalake(
                str(location.oplog),
                empty,
                partition_by=["part_id"],
                mode="error",
                name="pond_oplog",
                configuration=TABLE_CONFIGURATION,
            )
        except DeltaError as exc:
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
        found = self.check(data_files=False).problems
        if found:
            return CorruptionError(
                f"the oplog cannot be read: {found[0]}",
                subject=self.location.uri,
                hint=f"{found[0].hint}; `pond verify` lists every damaged part",
            )
        return CorruptionError(
            f"the oplog cannot be read: {_first_line(exc)}",
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
        self._verify_data_files((unquote(p) for p in files.column("path").to_pylist()), whole=False)
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
        except (OSError, ValueError, TypeError, ArithmeticError, pa.ArrowException) as exc:
            raise self._damaged_data(files, exc) from exc

    def _damaged_data(self, files: pa.Table, exc: Exception) -> CorruptionError:
        """The error for data files that failed to read, naming the first damaged one."""
        recorded = self._recorded_checksums(OplogCheck())
        sums = {path: sha for r in recorded.values() for path, sha in r["files"].items()}
        for path in files.column("path").to_pylist():
            found = self._check_data_file(unquote(path), None, None, sha=sums.get(unquote(path)))
            if found:
                return CorruptionError(
                    f"the oplog cannot be read: {found[0]}",
                    subject=self.location.uri,
                    hint=f"{found[0].hint}; `pond verify` lists every damaged part",
                )
        return CorruptionError(
            f"the oplog's data files cannot be read: {_first_line(exc)}",
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
        self._verify_data_files((unquote(p) for p in files.column("path").to_pylist()), whole=True)
        try:
            result = self._dataset(files).to_table(
                columns=["content"],
                filter=(pc.field("part_id") == part_id)
                & (pc.field("node_id") == node_id)
                & (pc.field("version") == version),
            )
        except (OSError, ValueError, TypeError, ArithmeticError, pa.ArrowException) as exc:
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
            write_deltalake(
                current,
                table,
                mode="append",
                commit_properties=CommitProperties(custom_metadata=metadata, max_commit_retries=0),
                post_commithook_properties=PostCommitHookProperties(
                    create_checkpoint=True, cleanup_expired_logs=False
                ),
            )
        except CommitFailedError as exc:
            raise ConflictError(
                "another commit landed first", subject=self.location.uri, hint="retry"
            ) from exc
        except (DeltaError, OSError, ValueError) as exc:
            # A step after the commit (the checkpoint) may fail once the commit landed:
            # then the transaction is done, and must not be reported as failed.
            if not self.landed(expected_version + 1, info.txn_seq):
                raise PondError(
                    f"the commit failed: {_first_line(exc)}",
                    subject=self.location.uri,
                    hint="nothing was written; retry",
                ) from exc
            self._local.handle = None
        self._record_checksums(expected_version + 1)
        committed = self._latest()
        if len(committed.file_uris()) >= COMPACT_AFTER_FILES:
            # the transaction is committed: a failed compaction is retried next commit
            with contextlib.suppress(DeltaError, OSError, ValueError):
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

    def _record_checksums(self, version: int) -> None:
        """Write ``_pond_checksums/<version>.json`` for a commit that just landed (under
        the write lock). Best effort: the commit stands either way, and verify notes a
        commit without checksums."""
        folder = self.location.oplog / CHECKSUM_FOLDER
        commit = self.location.oplog / LOG_FOLDER / f"{version:020}.json"
        try:
            actions = _read_commit(commit)
            added = [unquote(a["add"]["path"]) for a in actions if "add" in a]
            files = {path: sha256_file(self.location.oplog / path) for path in added}
            record: dict[str, Any] = {"commit": sha256_file(commit), "files": files}
            checkpoint = commit.with_name(f"{version:020}.checkpoint.parquet")
            if checkpoint.is_file():  # written by the commit's post-commit hook
                record["checkpoint"] = sha256_file(checkpoint)
            (folder / "files").mkdir(parents=True, exist_ok=True)
            for path, sha in files.items():
                tail, tail_sha = _footer_digest(self.location.oplog / path)
                _write_atomically(folder / "files" / Path(path).name, f"{sha} {tail} {tail_sha}")
            _write_atomically(folder / f"{version:020}.json", json.dumps(record, sort_keys=True))
        except (OSError, ValueError, KeyError):
            pass

    def _verify_data_files(self, paths: Iterable[str], *, whole: bool) -> None:
        """Check data files against the checksums recorded at commit before Parquet
        reads them, once per process: the whole file, or (``whole=False``, cheap enough
        for every open) its footer, where a flipped byte can make pyarrow abort the
        process instead of raising (its statistics are read by filtered scans)."""
        for path in paths:
            if path in self._verified_files or (not whole and path in self._verified_footers):
                continue
            index = self.location.oplog / CHECKSUM_FOLDER / "files" / Path(path).name
            file = self.location.oplog / path
            try:
                sha, tail, tail_sha = index.read_text().split()
                if whole:
                    intact = sha256_file(file) == sha
                else:
                    intact = (
                        file.stat().st_size >= int(tail) and _tail_sha(file, int(tail)) == tail_sha
                    )
            except FileNotFoundError:
                continue  # not recorded (or the data file is gone: the read reports it)
            except ValueError:
                intact = False  # a damaged checksum record: verify tells which
            if not intact:
                problem = OplogProblem(
                    path, "is damaged (its sha256 differs from the one recorded at commit)"
                )
                raise CorruptionError(
                    f"the oplog cannot be read: {problem}",
                    subject=self.location.uri,
                    hint=f"{problem.hint}; `pond verify` lists every damaged part",
                )
            (self._verified_files if whole else self._verified_footers).add(path)

    def landed(self, version: int, txn_seq: int) -> bool:
        """Whether Delta version ``version`` is pond transaction ``txn_seq``'s commit."""
        try:
            actions = _read_commit(self.location.oplog / LOG_FOLDER / f"{version:020}.json")
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

    def check(self, *, data_files: bool = True) -> OplogCheck:
        """Read every part of the oplog and report what is damaged, by file.

        The log: commits contiguous from 0, each one parseable JSON with as many
        add/remove actions as its metrics say; each checkpoint readable and equal to
        the commits it summarizes; ``_last_checkpoint`` naming one. With
        ``data_files``, every live data file: present, of the size the log records,
        readable to the end, with the recorded row count, and every inline payload
        matching its sha256 (a row's problem names its node and version).
        """
        result = OplogCheck()
        root = self.location.oplog
        log = root / LOG_FOLDER
        commits: dict[int, str] = {}
        checkpoints: dict[int, list[str]] = {}
        for entry in sorted(log.iterdir()) if log.is_dir() else []:
            if match := _COMMIT_NAME.match(entry.name):
                commits[int(match[1])] = entry.name
            elif match := _CHECKPOINT_NAME.match(entry.name):
                checkpoints.setdefault(int(match[1]), []).append(entry.name)
            elif _TEMP_NAME.search(entry.name) and entry.is_file():
                result.leftovers.append(f"{LOG_FOLDER}/{entry.name}")
        if not commits:
            result.problems.append(OplogProblem(LOG_FOLDER, "holds no commit"))
            return result
        intact = True
        for version in range(max(commits) + 1):
            if version not in commits:
                name = f"{LOG_FOLDER}/{version:020}.json"
                result.problems.append(OplogProblem(name, "is missing (a gap in the commits)"))
                intact = False
        recorded = self._recorded_checksums(result)
        file_sums = {path: sha for r in recorded.values() for path, sha in r["files"].items()}
        live: dict[str, tuple[int | None, int | None]] = {}
        added: set[str] = set()
        live_at: dict[int, frozenset[str]] = {}
        for version in sorted(v for v in recorded if v > max(commits)):
            name = f"{LOG_FOLDER}/{version:020}.json"
            if (root / name).exists():  # committed while this check ran
                continue
            reason = "is missing (its checksums were recorded when it was committed)"
            result.problems.append(OplogProblem(name, reason))
            intact = False
        for version in sorted(commits):
            name = f"{LOG_FOLDER}/{commits[version]}"
            if version not in recorded:
                result.unchecksummed.append(version)
            elif sha256_file(root / name) != recorded[version]["commit"]:
                reason = "is damaged (its sha256 differs from the one recorded at commit)"
                result.problems.append(OplogProblem(name, reason))
            try:
                actions = _read_commit(root / name)
                _check_metrics(actions)
            except (OSError, ValueError) as exc:
                result.problems.append(OplogProblem(name, f"is damaged ({_first_line(exc)})"))
                intact = False
                continue
            for action in actions:
                if "add" in action:
                    add = action["add"]
                    stats = json.loads(add.get("stats") or "{}")
                    live[unquote(add["path"])] = (add.get("size"), stats.get("numRecords"))
                    added.add(unquote(add["path"]))
                elif "remove" in action:
                    live.pop(unquote(action["remove"]["path"]), None)
            if intact and version in checkpoints:
                live_at[version] = frozenset(live)
        for version, names in sorted(checkpoints.items()):
            found = self._check_checkpoint(version, names, live_at.get(version))
            recorded_sum = recorded.get(version, {}).get("checkpoint")
            if not found and recorded_sum and sha256_file(log / names[0]) != recorded_sum:
                reason = "is damaged (its sha256 differs from the one recorded when written)"
                found = [OplogProblem(f"{LOG_FOLDER}/{names[0]}", reason, _CHECKPOINT_HINT)]
            result.problems += found
        last = log / "_last_checkpoint"
        if last.exists():
            name = f"{LOG_FOLDER}/_last_checkpoint"
            try:
                hinted = json.loads(last.read_text())["version"]
            except (OSError, ValueError, KeyError, TypeError) as exc:
                reason = f"is damaged ({_first_line(exc)})"
                result.problems.append(OplogProblem(name, reason, _CHECKPOINT_HINT))
            else:
                written = log / f"{hinted:020}.checkpoint.parquet"
                if hinted not in checkpoints and not written.exists():  # (or written since)
                    reason = f"names checkpoint {hinted}, which does not exist"
                    result.problems.append(OplogProblem(name, reason, _CHECKPOINT_HINT))
        if intact:
            on_disk = {
                str(path.relative_to(root))
                for path in root.rglob("*.parquet")
                if path.is_file() and not path.relative_to(root).parts[0].startswith(("_", "."))
            }
            result.orphans = sorted(on_disk - added)
        if data_files:
            if not intact:  # the log's replay is incomplete: take the files Delta sees
                try:
                    files = self._files(self._table())
                except CorruptionError:
                    return result
                live = {
                    unquote(path): (size, None)
                    for path, size in zip(
                        files.column("path").to_pylist(),
                        files.column("size_bytes").to_pylist(),
                        strict=True,
                    )
                }
            for path, (size, rows) in sorted(live.items()):
                result.problems += self._check_data_file(
                    path, size, rows, result, file_sums.get(path)
                )
        return result

    def _recorded_checksums(self, into: OplogCheck) -> dict[int, dict[str, Any]]:
        """``_pond_checksums``: version → {"commit": sha, "files": {path: sha}}."""
        folder = self.location.oplog / CHECKSUM_FOLDER
        recorded: dict[int, dict[str, Any]] = {}
        entries = sorted(folder.iterdir()) if folder.is_dir() else []
        index = folder / "files"
        for entry in sorted(index.iterdir()) if index.is_dir() else []:
            if entry.name.startswith("."):  # a write interrupted before its rename
                into.leftovers.append(f"{CHECKSUM_FOLDER}/files/{entry.name}")
        for entry in entries:
            name = f"{CHECKSUM_FOLDER}/{entry.name}"
            match = _COMMIT_NAME.match(entry.name)
            if entry == index:
                continue
            if match is None:
                if _TEMP_NAME.search(entry.name):
                    into.leftovers.append(name)
                continue
            try:
                value = json.loads(entry.read_text())
                if not isinstance(value.get("commit"), str) or not isinstance(
                    value.get("files"), dict
                ):
                    raise ValueError("not a checksum record")
            except (OSError, ValueError, AttributeError) as exc:
                into.problems.append(OplogProblem(name, f"is damaged ({_first_line(exc)})"))
                continue
            recorded[int(match[1])] = value
        return recorded

    def _check_checkpoint(
        self, version: int, names: list[str], expected: frozenset[str] | None
    ) -> list[OplogProblem]:
        found: set[str] = set()
        for name in names:
            relative = f"{LOG_FOLDER}/{name}"
            try:
                table = pq.read_table(self.location.oplog / relative, columns=["add"])
                found |= {unquote(a["path"]) for a in table.column("add").to_pylist() if a}
            except (OSError, ValueError, KeyError, TypeError, pa.ArrowException) as exc:
                reason = f"is damaged ({_first_line(exc)})"
                return [OplogProblem(relative, reason, _CHECKPOINT_HINT)]
        if expected is not None and found != expected:
            relative = f"{LOG_FOLDER}/{names[0]}"
            reason = "does not match the commits it summarizes"
            return [OplogProblem(relative, reason, _CHECKPOINT_HINT)]
        return []

    def _check_data_file(
        self,
        path: str,
        size: int | None,
        rows: int | None,
        into: OplogCheck | None = None,
        sha: str | None = None,
    ) -> list[OplogProblem]:
        """Problems of one data file; counts its rows ``into`` a check."""
        file = self.location.oplog / path
        try:
            actual = file.stat().st_size
        except FileNotFoundError:
            return [OplogProblem(path, "is missing")]
        if size is not None and actual != size:
            return [OplogProblem(path, f"is damaged ({actual} bytes, the log says {size})")]
        problems: list[OplogProblem] = []
        if sha is not None and sha256_file(file) != sha:
            reason = "is damaged (its sha256 differs from the one recorded at commit)"
            problems.append(OplogProblem(path, reason))
        count = 0
        try:
            parquet = pq.ParquetFile(file)
            for batch in parquet.iter_batches():
                count += batch.num_rows
                batch.validate(full=True)
                for row in batch.to_pylist():
                    _check_record(_record_from_row({**_NO_ROW, **row}, row.get("content")))
                    if (
                        row.get("sha256")
                        and not row.get("blob")
                        and (row.get("factory") or STATIC_FACTORY) == STATIC_FACTORY
                        and sha256_bytes(row.get("content") or b"") != row["sha256"]
                    ):
                        reason = "holds inline bytes that do not match their sha256"
                        problems.append(
                            OplogProblem(
                                path, reason, node_id=row.get("node_id"), version=row.get("version")
                            )
                        )
        except (OSError, ValueError, TypeError, ArithmeticError, pa.ArrowException) as exc:
            return problems or [OplogProblem(path, f"is damaged ({_first_line(exc)})")]
        if rows is not None and count != rows:
            problems.append(OplogProblem(path, f"is damaged ({count} rows, the log says {rows})"))
        if into is not None:
            into.rows += count
        return problems

    def remove_orphans(self, found: OplogCheck | None = None) -> list[str]:
        """Delete data files no commit references and leftovers of interrupted commits.

        Only under the pond's write lock (no commit is then in flight), and only when
        the whole log is readable (otherwise a damaged commit may reference them).
        ``found``: a ``check(data_files=False)`` made under the same lock.
        """
        found = found or self.check(data_files=False)
        if found.problems:
            return []
        removed = found.orphans + found.leftovers
        for name in removed:
            (self.location.oplog / name).unlink(missing_ok=True)
        return removed

    def record_missing_checksums(self, found: OplogCheck) -> list[int]:
        """Write the checksums a writer killed right after its commit did not get to
        write, for commits whose data files read cleanly. Under the write lock; ``found``:
        a ``check(data_files=False)`` made under it."""
        if found.problems:
            return []
        written = []
        for version in found.unchecksummed:
            actions = _read_commit(self.location.oplog / LOG_FOLDER / f"{version:020}.json")
            paths = [unquote(a["add"]["path"]) for a in actions if "add" in a]
            if not any(self._check_data_file(path, None, None) for path in paths):
                self._record_checksums(version)
                written.append(version)
        return written

    def _files(self, table: DeltaTable) -> pa.Table:
        """The live data files: relative ``path``, ``partition.part_id``, min/max stats."""
        try:
            return pa.table(table.get_add_actions(flatten=True))
        except (DeltaError, OSError, ValueError) as exc:
            raise self._corruption(exc) from exc

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
                unquote(path),
                filesystem=filesystem,
                partition_expression=pc.field("part_id").is_null()
                if part_id is None
                else pc.field("part_id") == pa.scalar(part_id, pa.string()),
            )
            for path, part_id in zip(
                files.column("path").to_pylist(),
                files.column("partition.part_id").to_pylist(),
                strict=True,
            )
        ]
        return ds.FileSystemDataset(fragments, OPLOG_SCHEMA, file_format, filesystem)


def _footer_digest(path: Path) -> tuple[int, str]:
    """How many bytes a Parquet file's footer takes at its end, and their sha256."""
    with path.open("rb") as handle:
        handle.seek(-8, os.SEEK_END)
        tail = 8 + int.from_bytes(handle.read(4), "little")
    return tail, _tail_sha(path, tail)


def _tail_sha(path: Path, length: int) -> str:
    with path.open("rb") as handle:
        handle.seek(-length, os.SEEK_END)
        return sha256_bytes(handle.read(length))


def _write_atomically(path: Path, text: str) -> None:
    temp = path.with_name(f".{path.name}.tmp")
    temp.write_text(text)
    os.replace(temp, path)


def _first_line(exc: BaseException) -> str:
    """An engine's message without its backtrace or debug dump."""
    text = str(exc).strip().splitlines()
    line = text[0] if text else type(exc).__name__
    return line if len(line) <= 200 else line[:197] + "..."


def _read_commit(path: Path) -> list[dict[str, Any]]:
    """The actions of one Delta commit file (JSON lines)."""
    actions = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        action = json.loads(line)
        if not isinstance(action, dict) or len(action) != 1:
            raise ValueError(f"line {number} is not a Delta action")
        actions.append(action)
    if not actions:
        raise ValueError("no actions")
    return actions


def _check_metrics(actions: list[dict[str, Any]]) -> None:
    """A commit cut at a line boundary still parses: compare its action counts with
    the metrics in its ``commitInfo``."""
    info = next((a["commitInfo"] for a in actions if "commitInfo" in a), None)
    if info is None:
        raise ValueError("no commitInfo")
    metrics = info.get("operationMetrics") or {}
    for kind, keys in (
        ("add", ("num_added_files", "numFilesAdded")),
        ("remove", ("num_removed_files", "numFilesRemoved")),
    ):
        count = sum(1 for a in actions if kind in a)
        for key in keys:
            if key in metrics and int(metrics[key]) != count:
                raise ValueError(f"{count} {kind} actions, its metrics say {metrics[key]}")


_NO_ROW = dict.fromkeys(OPLOG_SCHEMA.names)
_ENTRY_TYPES = frozenset(kind.value for kind in EntryType)


def _check_record(record: OplogRecord) -> None:
    """What any row must hold, so that a damaged but decodable one is caught here (what
    its content means is checked by the tree: ``fs.nodes.check_record``)."""
    if record.entry_type not in _ENTRY_TYPES:
        raise ValueError(f"unknown entry type {record.entry_type!r}")
    if not record.node_id or record.version < 1 or record.txn_seq < 1:
        raise ValueError(f"node {record.node_id!r} version {record.version}: bad identity")


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


def records_by_txn(records: Iterable[OplogRecord]) -> dict[int, list[OplogRecord]]:
    grouped: dict[int, list[OplogRecord]] = {}
    for record in records:
        grouped.setdefault(record.txn_seq, []).append(record)
    return grouped
