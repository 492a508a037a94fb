"""The ``Pond`` facade: open or create a pond, read any node, change it in transactions.

    pond = Pond.create("./my.pond")
    with pond.transaction("load sensors") as tx:
        tx.mkdir("/sensors")
        tx.copy("north.csv", "/sensors/north.series", "series")
    pond.read_table("/sensors/north.series", time_start=datetime(2024, 1, 1))

Every ``transaction`` is one Delta commit taken under the pond's write lock: all of
its changes land together, or (on any exception) none do.
"""

import json
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from pond_pipeline import paths
from pond_pipeline.config import normalize_refresh
from pond_pipeline.dynamic import registry
from pond_pipeline.dynamic.cache import MaterializationCache
from pond_pipeline.dynamic.resolve import (
    Node,
    Resolver,
    TimeRange,
    derivation_order,
    dynamic_paths,
)
from pond_pipeline.errors import (
    ConfigError,
    ConflictError,
    CorruptionError,
    NotFoundError,
    PondError,
)
from pond_pipeline.factory import EntryType, Factory, FactoryConfig
from pond_pipeline.fs.nodes import ROOT_ID, check_record, decode_listing, encode_listing
from pond_pipeline.fs.payloads import (
    DEFAULT_INLINE_THRESHOLD,
    Payload,
    describe_parquet,
    unify_series_schema,
)
from pond_pipeline.fs.reader import PayloadReader
from pond_pipeline.fs.transaction import Transaction
from pond_pipeline.fs.tree import Snapshot, TreeView
from pond_pipeline.query.engine import (
    Connector,
    SqlSession,
    csv_to_parquet,
    referenced_tables,
    with_bindings,
)
from pond_pipeline.store.blobs import BlobStore, sha256_bytes, sha256_file
from pond_pipeline.store.location import PondLocation
from pond_pipeline.store.lock import DEFAULT_LOCK_TIMEOUT, write_lock
from pond_pipeline.store.oplog import Oplog, OplogRecord, TransactionInfo

__all__ = ["NodeInfo", "Pond", "PondTransaction", "TimeRange", "VerifyReport"]

SETTINGS_FILE = "pond.json"
SCRATCH_MAX_AGE = 3600.0
"""Seconds after which ``gc`` takes a temporary file for the leftover of a dead writer."""
TABULAR_SUFFIXES = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}


@dataclass(frozen=True)
class NodeInfo:
    """One row of ``pond list``."""

    path: str
    entry_type: EntryType
    factory: str
    versions: int
    size: int | None
    modified: datetime | None

    @property
    def kind(self) -> str:
        dynamic = self.factory != "tlogfs"
        return f"{self.entry_type.short} ({self.factory})" if dynamic else self.entry_type.short


@dataclass
class VerifyReport:
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    unreferenced_blobs: list[str] = field(default_factory=list)
    checked: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems


class Pond:
    def __init__(self, location: PondLocation, settings: dict[str, Any]):
        self.location = location
        self.settings = settings
        self.oplog = Oplog(location)
        self.blobs = BlobStore(location.blobs, location.scratch)
        self.reader = PayloadReader(self.oplog, self.blobs)
        self.cache = MaterializationCache(location.cache)
        self.lock_timeout = DEFAULT_LOCK_TIMEOUT
        self.query_timeout: float | None = float(settings.get("query_timeout", 300))
        self.host_root: Path | None = None
        self.connector: Connector | None = None
        """Where SQL sessions get their DuckDB connection (default: a fresh one each)."""
        self._snapshot: Snapshot | None = None
        self._checked: tuple[int, OplogRecord] | None = None

    # -- opening -------------------------------------------------------------------------
    @classmethod
    def create(cls, uri: str, *, inline_threshold: int = DEFAULT_INLINE_THRESHOLD) -> "Pond":
        location = PondLocation.parse(uri)
        if Oplog.exists(location):
            raise ConflictError("a pond already exists here", subject=location.uri)
        location.root.mkdir(parents=True, exist_ok=True)
        settings = {"inline_threshold": inline_threshold, "query_timeout": 300}
        (location.root / SETTINGS_FILE).write_text(json.dumps(settings, indent=2))
        oplog = Oplog.create(location)
        root = OplogRecord(
            part_id=ROOT_ID,
            node_id=ROOT_ID,
            entry_type=EntryType.DIRECTORY.value,
            version=1,
            txn_seq=1,
            timestamp=datetime.now().astimezone(),
            content=encode_listing({}),
            size=0,
        )
        info = TransactionInfo(1, root.timestamp, "init", ["/"])
        oplog.append([root], expected_version=oplog.version(), info=info)
        return cls(location, settings)

    @classmethod
    def open(cls, uri: str) -> "Pond":
        location = PondLocation.parse(uri)
        if not Oplog.exists(location):
            raise NotFoundError(
                "no pond here", subject=location.uri, hint="create one with `pond init`"
            )
        settings_path = location.root / SETTINGS_FILE
        settings = _read_settings(settings_path) if settings_path.exists() else {}
        return cls(location, settings)

    @property
    def inline_threshold(self) -> int:
        return int(self.settings.get("inline_threshold", DEFAULT_INLINE_THRESHOLD))

    # -- views ----------------------------------------------------------------------------
    def snapshot(self, at: int | None = None) -> Snapshot:
        """The pond as of transaction ``at`` (default: now). Readers take no lock."""
        version = self.oplog.version()
        if self._snapshot is None or self._snapshot.delta_version != version:
            delta_version, records = self.oplog.read()
            self._check_records(records)
            self._snapshot = Snapshot(records, delta_version)
        if at is None:
            return self._snapshot
        last = self._snapshot.last_txn
        if not 1 <= at <= last:
            raise NotFoundError(
                f"no transaction {at}",
                subject=self.location.uri,
                hint=f"transactions are 1..{last}",
            )
        return Snapshot(self._snapshot.all_records(), self._snapshot.delta_version, at)

    def _check_records(self, records: list[OplogRecord]) -> None:
        """Refuse versions a damaged data file made unusable (``check_record``). The
        oplog returns the records it read before first, so only new ones are checked."""
        start = 0
        if self._checked is not None:
            count, last = self._checked
            if len(records) >= count and records[count - 1] is last:
                start = count
        for record in records[start:]:
            check_record(record)
        self._checked = (len(records), records[-1]) if records else None

    def resolver(self, at: int | None = None, view: TreeView | None = None) -> Resolver:
        return Resolver(
            view or self.snapshot(at),
            self.reader,
            self.cache,
            scratch=self.location.scratch,
            query_timeout=self.query_timeout,
            host_root=self.host_root,
            connector=self.connector,
        )

    @contextmanager
    def transaction(
        self, command: str = "", *, run_id: str | None = None
    ) -> Iterator["PondTransaction"]:
        """All changes in the block become one commit, or none (on any exception)."""
        with write_lock(self.location.lock_file, self.lock_timeout, holder=command):
            self._snapshot = None
            snapshot = self.snapshot()
            tx = Transaction(
                snapshot, self.blobs, command=command, inline_threshold=self.inline_threshold
            )
            yield PondTransaction(self, tx)
            records = tx.finish()
            if records:
                info = TransactionInfo(tx.txn_seq, tx.now, command, _unique(tx.touched), run_id)
                self.oplog.append(records, expected_version=snapshot.delta_version, info=info)
            self._snapshot = None

    # -- reading ----------------------------------------------------------------------------
    def node(self, path: str, *, at: int | None = None) -> Node:
        return self.resolver(at).resolve(path)

    def list_nodes(self, pattern: str | None = None, *, at: int | None = None) -> list[NodeInfo]:
        """``None``: everything; ``/dir/``: its children; ``/dir``: the entry; globs match."""
        resolver = self.resolver(at)
        if pattern is None:
            nodes = [n for n in resolver.walk_all(resolver.resolve("/")) if n.path != "/"]
        elif pattern.endswith("/") and not paths.is_glob(pattern):
            directory = resolver.resolve(pattern)
            nodes = list(resolver.children(directory).values())
        elif paths.is_glob(pattern):
            nodes = resolver.glob(pattern, follow_links=False)
        else:
            nodes = [resolver.resolve(pattern, follow=False)]
        return [_info(n) for n in sorted(nodes, key=lambda n: n.path)]

    def read_bytes(self, path: str, *, version: int | None = None, at: int | None = None) -> bytes:
        resolver = self.resolver(at)
        return resolver.read_bytes(resolver.resolve(path), version=version)

    def read_table(
        self,
        path: str,
        *,
        version: int | None = None,
        at: int | None = None,
        time_start: datetime | None = None,
        time_end: datetime | None = None,
        columns: Sequence[str] | None = None,
    ) -> pa.Table:
        resolver = self.resolver(at)
        window = _window(time_start, time_end)
        dataset = resolver.dataset(resolver.resolve(path), version=version, window=window)
        table = dataset.to_table(columns=list(columns) if columns else None)
        time_column = resolver.time_column(resolver.resolve(path))
        if time_column and time_column in table.column_names:
            table = table.sort_by(time_column)
        return table

    def query(
        self,
        sql: str,
        *,
        source: str | None = None,
        version: int | None = None,
        at: int | None = None,
        time_start: datetime | None = None,
        time_end: datetime | None = None,
    ) -> pa.Table:
        """Run DuckDB ``sql``: ``source`` is the table ``source``; quoted pond paths
        (``FROM '/a/b.series'``, globs too) are tables."""
        with self.sql_session(
            sql, source=source, version=version, at=at, time_start=time_start, time_end=time_end
        ) as (session, bindings):
            return session.query(sql, bindings)

    def explain(self, sql: str, *, source: str | None = None, at: int | None = None) -> str:
        """DuckDB's ``EXPLAIN ANALYZE`` of ``sql`` (operators, filters pushed, rows read)."""
        with self.sql_session(sql, source=source, at=at) as (session, bindings):
            return session.explain(with_bindings(sql, bindings))

    @contextmanager
    def sql_session(
        self,
        sql: str,
        *,
        source: str | None = None,
        version: int | None = None,
        at: int | None = None,
        time_start: datetime | None = None,
        time_end: datetime | None = None,
    ) -> Iterator[tuple[SqlSession, dict[str, str]]]:
        """A sandboxed session with ``sql``'s pond tables registered, and its bindings."""
        resolver = self.resolver(at)
        window = _window(time_start, time_end)
        with resolver.session() as session:
            bindings: dict[str, str] = {}
            if source is not None:
                node = resolver.resolve(source)
                if version is not None or window is not None:
                    name = f"__pond_source_{version}"
                    session.register(name, resolver.dataset(node, version=version, window=window))
                else:
                    name = resolver.register(session, node)
                bindings["source"] = name
            for table in sorted(referenced_tables(sql)):
                if table.startswith("/") and table not in bindings:
                    target = resolver.register_pattern(session, table, owner=table)
                    bindings[table] = target
            yield session, bindings

    def describe(self, path: str, *, at: int | None = None) -> dict[str, Any]:
        resolver = self.resolver(at)
        node = resolver.resolve(path, follow=False)
        result: dict[str, Any] = {
            "path": node.path,
            "type": node.entry_type.value,
            "factory": node.factory,
        }
        if node.is_dynamic:
            result["config"] = node.raw_config
            latest = node.latest
            if latest is not None and latest.attributes.get("refresh"):
                result["refresh"] = latest.attributes["refresh"]
        if node.entry_type is EntryType.SYMLINK and node.node_id:
            result["target"] = resolver.view.symlink_target(node.node_id, node.path)
        if node.entry_type.is_tabular:
            schema = resolver.schema(node)
            result["schema"] = [{"name": f.name, "type": str(f.type)} for f in schema]
            result["time_column"] = resolver.time_column(node)
        result["versions"] = [
            {
                "version": r.version,
                "txn": r.txn_seq,
                "time": r.timestamp.isoformat(),
                "size": r.size,
                "rows": r.attributes.get("rows"),
                "min_event_time": _iso_micros(r.min_event_time),
                "max_event_time": _iso_micros(r.max_event_time),
            }
            for r in node.versions
        ]
        return result

    def log(self, limit: int | None = None) -> list[TransactionInfo]:
        return self.oplog.transactions(limit)

    def verify(self) -> VerifyReport:
        """Check every stored part: the oplog's files (commits, checkpoints, data files,
        inline payloads), every blob's checksum, and that every listing entry is live.

        Problems name the node and version, or the damaged file. Unreferenced blobs and
        files left by interrupted commits are notes: `gc` removes them.
        """
        report = VerifyReport()
        found = self.oplog.check()
        self._snapshot = None
        try:
            snapshot: Snapshot | None = self.snapshot()
        except PondError as exc:
            snapshot = None
            if not found.problems:
                report.problems.append(exc.message)
        for problem in found.problems:
            if problem.node_id is not None and snapshot is not None:
                label = f"{_path_hint(snapshot, problem.node_id)} version {problem.version}"
                where = f"oplog/{problem.file}"
                report.problems.append(
                    f"{label}: {problem.reason.removeprefix('holds ')} in {where}"
                )
            else:
                report.problems.append(f"{problem}; {problem.hint}")
        if found.orphans or found.leftovers:
            count = len(found.orphans) + len(found.leftovers)
            report.notes.append(
                f"{count} oplog file(s) no commit references, left by interrupted commits; "
                "`pond gc` removes them"
            )
        if found.unchecksummed:
            report.notes.append(
                f"{len(found.unchecksummed)} commit(s) have no recorded checksums (their "
                "writer stopped right after committing); `pond gc` records them"
            )
        if snapshot is None:
            report.checked = found.rows
            return report
        referenced: set[str] = set()
        for record in snapshot.all_records():
            report.checked += 1
            if record.blob:
                referenced.add(record.blob)
                label = f"{_path_hint(snapshot, record.node_id)} version {record.version}"
                blob_path = self.blobs.path(record.blob)
                if not blob_path.is_file():
                    report.problems.append(f"{label}: blob {record.blob} is missing")
                elif sha256_file(blob_path) != record.blob:
                    report.problems.append(f"{label}: blob {record.blob} is damaged")
            if record.entry_type == EntryType.DIRECTORY.value and not record.is_dynamic:
                try:
                    decode_listing(record.content)
                except PondError as exc:
                    label = f"{_path_hint(snapshot, record.node_id)} version {record.version}"
                    report.problems.append(f"{label}: {exc.reason}")
        for record in snapshot.all_records():
            if record.entry_type != EntryType.DIRECTORY.value or record.is_dynamic:
                continue
            if snapshot.latest(record.node_id) is not record:
                continue
            try:
                listing = snapshot.listing(record.node_id)
            except PondError:
                continue  # reported above
            for name, entry in listing.items():
                if snapshot.latest(entry.node_id) is None:
                    where = _path_hint(snapshot, record.node_id)
                    report.problems.append(f"{paths.join(where, name)}: listed but has no versions")
        for sha in self.blobs.all_shas():
            if sha not in referenced:
                report.unreferenced_blobs.append(sha)
        if report.unreferenced_blobs:
            report.notes.append(
                f"{len(report.unreferenced_blobs)} unreferenced blob(s), left by interrupted "
                "writes; `pond gc` removes them"
            )
        return report

    def gc(self) -> list[str]:
        """Remove unreferenced blobs (under the write lock, so no writer is mid-flight),
        oplog files no commit references, and writers' temporary files over an hour old;
        record the checksums a writer killed right after its commit did not write.
        Returns the removed blobs. Nothing is removed while the oplog is damaged."""
        with write_lock(self.location.lock_file, self.lock_timeout, holder="gc"):
            found = self.oplog.check(data_files=False)
            if found.problems:  # a blob may be referenced by the part that cannot be read
                raise CorruptionError(
                    f"gc removes nothing while the oplog is damaged: {found.problems[0]}",
                    subject=self.location.uri,
                    hint="run `pond verify`; repair the oplog first",
                )
            self._snapshot = None
            referenced = {r.blob for r in self.snapshot().all_records() if r.blob}
            removed = [sha for sha in self.blobs.all_shas() if sha not in referenced]
            for sha in removed:
                self.blobs.remove(sha)
            self.oplog.remove_orphans(found)
            self.oplog.record_missing_checksums(found)
            self.blobs.remove_stale_scratch(SCRATCH_MAX_AGE)
            return removed

    # -- dynamic nodes ----------------------------------------------------------------------
    @staticmethod
    def factories() -> list[Any]:
        return registry.describe_all()

    # -- one-call writes ----------------------------------------------------------------------
    def mkdir(self, path: str, *, parents: bool = False) -> None:
        with self.transaction(f"mkdir {path}") as tx:
            tx.mkdir(path, parents=parents)

    def write_table(self, path: str, table: pa.Table, entry_type: str = "table", **kw: Any) -> None:
        with self.transaction(f"write {path}") as tx:
            tx.write_table(path, table, entry_type, **kw)

    def create_dynamic(self, path: str, factory: str, config: dict[str, Any], **kw: Any) -> None:
        with self.transaction(f"mknod {factory} {path}") as tx:
            tx.create_dynamic(path, factory, config, **kw)


class PondTransaction:
    """The changes one transaction can make; see ``Pond.transaction``."""

    def __init__(self, pond: Pond, tx: Transaction):
        self.pond = pond
        self.tx = tx

    @property
    def txn_seq(self) -> int:
        return self.tx.txn_seq

    def resolver(self) -> Resolver:
        """Reads that see this transaction's own pending changes."""
        return self.pond.resolver(view=self.tx)

    def mkdir(self, path: str, *, parents: bool = False) -> None:
        self.tx.mkdir(path, parents=parents)

    def symlink(self, path: str, target: str) -> None:
        self.tx.symlink(path, paths.normalize(target) if target.startswith("/") else target)

    def remove(self, path: str, *, recursive: bool = False) -> None:
        self.tx.remove(path, recursive=recursive)

    def write_bytes(self, path: str, data: bytes, *, parents: bool = False) -> OplogRecord:
        payload = Payload(data, len(data), sha256_bytes(data))
        return self.tx.write_file(path, EntryType.DATA, payload, parents=parents)

    def write_table(
        self,
        path: str,
        table: pa.Table,
        entry_type: str = "table",
        *,
        time_column: str | None = None,
        parents: bool = False,
    ) -> OplogRecord:
        """A table (new version replaces) or series (new version appends) from Arrow."""
        kind = EntryType.from_short(entry_type)
        existing = self._existing(path)
        scratch = self.pond.blobs.scratch_file(".parquet")
        pq.write_table(table, scratch, compression="zstd")
        payload = self._parquet_payload(
            scratch, kind, existing, time_column, owned=True, subject=path
        )
        return self._write_payload(path, kind, payload, parents=parents)

    def copy(
        self,
        host_file: str | Path,
        dest: str,
        entry_type: str | None = None,
        *,
        time_column: str | None = None,
        parents: bool = False,
        on_progress: Callable[[float], None] | None = None,
    ) -> OplogRecord:
        """Import one host file. ``dest`` may be a directory (the file keeps its name)."""
        source = Path(host_file)
        if not source.is_file():
            raise NotFoundError("no such host file", subject=str(source))
        dest = paths.normalize(dest)
        existing = self._existing(dest)
        if (
            existing is not None
            and existing.entry_type is EntryType.DIRECTORY
            and not existing.is_dynamic
        ):
            dest = paths.join(dest, source.name)
            existing = self._existing(dest)
        kind = _import_kind(source, entry_type, existing)
        payload = self.host_payload(
            source, kind, existing, time_column=time_column, on_progress=on_progress
        )
        return self._write_payload(dest, kind, payload, parents=parents)

    def host_payload(
        self,
        source: Path,
        kind: EntryType,
        existing: Node | None,
        *,
        time_column: str | None = None,
        on_progress: Callable[[float], None] | None = None,
    ) -> Payload:
        """A host file as a payload of ``kind``: bytes kept exactly, or Parquet (CSV is
        converted by DuckDB); a series append is checked against ``existing``."""
        if kind is EntryType.DATA:
            return Payload(source, source.stat().st_size, sha256_file(source))
        if _format_of(source) != "csv":
            return self._parquet_payload(
                source, kind, existing, time_column, owned=False, subject=str(source)
            )
        scratch = self.pond.blobs.scratch_file(".parquet")
        try:
            csv_to_parquet(source, scratch, subject=str(source), on_progress=on_progress)
        except PondError:
            scratch.unlink(missing_ok=True)
            raise
        return self._parquet_payload(
            scratch, kind, existing, time_column, owned=True, subject=str(source)
        )

    def create_dynamic(
        self,
        path: str,
        factory_name: str,
        config: dict[str, Any],
        *,
        overwrite: bool = False,
        refresh: str | None = None,
        parents: bool = True,
        attributes: dict[str, Any] | None = None,
        check_cycles: bool = True,
    ) -> OplogRecord:
        """Validate and persist a dynamic node: one row, the config stored unexpanded.

        ``check_cycles=False`` leaves the (whole-pond) cycle check to the caller, who
        creates many nodes in this transaction and checks once (``check_cycles()``)."""
        path = paths.normalize(path)
        factory = registry.get(factory_name)
        typed = registry.validate(factory, config, subject=path)
        extra = dict(attributes or {})
        if refresh is not None:
            extra["refresh"] = normalize_refresh(refresh)
        record = self.tx.write_dynamic(
            path,
            factory.entry_type(typed),
            factory.name,
            registry.encode_config(config),
            overwrite=overwrite,
            parents=parents,
            attributes=extra,
        )
        # checked with the node in place, so entries of a dynamic directory may read
        # each other; any error aborts the transaction: nothing is written
        self._check_sources(path, factory, typed)
        if check_cycles:
            self.check_cycles()
        return record

    def _check_sources(self, path: str, factory: Factory[Any], typed: FactoryConfig) -> None:
        """Literal sources must exist; declared children are validated the same way."""
        for pattern in factory.sources(typed):
            normalized = paths.normalize(pattern)
            if not paths.is_glob(normalized) and not self._may_exist(normalized):
                raise ConfigError(
                    f"source {pattern!r} does not exist",
                    subject=path,
                    hint="create the source first, or fix the path in the config",
                )
        for spec in factory.declared_children(typed) or []:
            child_path = paths.join(path, spec.name)
            try:
                child_factory = registry.get(spec.factory)
            except ConfigError as exc:
                raise ConfigError(exc.reason, subject=child_path, hint=exc.hint) from exc
            child_typed = registry.validate(child_factory, spec.config, subject=child_path)
            self._check_sources(child_path, child_factory, child_typed)

    def check_cycles(self) -> None:
        """No dynamic node of the pond (as this transaction leaves it) reads itself,
        directly or through others; a cycle is an error naming it."""
        resolver = self.resolver()
        derivation_order(resolver, dynamic_paths(resolver))

    # -- internals --------------------------------------------------------------------------
    def _write_payload(
        self, path: str, kind: EntryType, payload: Payload, *, parents: bool
    ) -> OplogRecord:
        """``write_file``; when it refuses (type clash, missing parent), no scratch file stays."""
        try:
            return self.tx.write_file(path, kind, payload, parents=parents)
        except BaseException:
            if payload.owned and isinstance(payload.source, Path):
                payload.source.unlink(missing_ok=True)
            raise

    def _may_exist(self, path: str) -> bool:
        """It exists, or lies in a dynamic directory that may produce it later."""
        resolver = self.resolver()
        if resolver.exists(path):
            return True
        segments = paths.split(path)
        for end in range(len(segments) - 1, 0, -1):
            prefix = "/" + "/".join(segments[:end])
            if resolver.exists(prefix):
                return resolver.resolve(prefix).is_dynamic
        return False

    def _existing(self, path: str) -> Node | None:
        try:
            return self.resolver().resolve(path)
        except NotFoundError:
            return None

    def _parquet_payload(
        self,
        source: Path,
        entry_type: EntryType,
        existing: Node | None,
        time_column: str | None,
        *,
        owned: bool,
        subject: str,
    ) -> Payload:
        appending = (
            existing is not None
            and existing.entry_type is EntryType.SERIES
            and not existing.is_dynamic
        )
        try:
            if appending and existing is not None:
                current = existing.latest.attributes.get("time_column") if existing.latest else None
                if time_column and current and time_column != current:
                    raise ConfigError(
                        f"the series' time column is {current!r}, not {time_column!r}",
                        subject=existing.path,
                        hint="omit --time-column when appending",
                    )
                time_column = time_column or current
            payload = describe_parquet(
                source,
                source.stat().st_size,
                sha256_file(source),
                entry_type,
                time_column=time_column,
                subject=subject,
                owned=owned,
            )
            if appending and existing is not None:
                incoming = pq.read_schema(source)
                unify_series_schema(self.resolver().schema(existing), incoming, existing.path)
            return payload
        except BaseException:
            if owned:
                source.unlink(missing_ok=True)
            raise


def _read_settings(path: Path) -> dict[str, Any]:
    """``pond.json``; damaged JSON or a bad value is a ``ConfigError`` naming file and key."""
    hint = "fix it, or delete it to use the defaults"
    try:
        value = json.loads(path.read_bytes())
    except (OSError, ValueError) as exc:  # JSONDecodeError and UnicodeDecodeError too
        raise ConfigError(
            f"cannot read the pond's settings: {exc}", subject=str(path), hint=hint
        ) from exc
    if not isinstance(value, dict):
        raise ConfigError("the pond's settings must be a JSON object", subject=str(path), hint=hint)
    for key in ("inline_threshold", "query_timeout"):
        number = value.get(key, 0)
        if (
            isinstance(number, bool)
            or not isinstance(number, int | float)
            or not 0 <= number < 1e12
        ):
            raise ConfigError(
                f"{key} must be a number of {'bytes' if key == 'inline_threshold' else 'seconds'} "
                f">= 0, not {number!r}",
                subject=str(path),
                hint=hint,
            )
    return value


def _import_kind(source: Path, requested: str | None, existing: Node | None) -> EntryType:
    if requested is not None:
        try:
            kind = EntryType.from_short(requested)
        except ValueError:
            raise ConfigError(
                f"unknown type {requested!r}", hint="use data, table or series"
            ) from None
    elif existing is not None:
        kind = existing.entry_type
    else:
        kind = EntryType.TABLE if _format_of(source) else EntryType.DATA
    if kind.is_tabular and _format_of(source) is None:
        raise ConfigError(
            f"cannot import as a {kind.short}: not a .csv or .parquet file",
            subject=str(source),
            hint="import it as --type data",
        )
    if not kind.is_file:
        raise ConfigError(f"cannot import a file as a {kind.short}", subject=str(source))
    return kind


def _format_of(source: Path) -> str | None:
    suffix = TABULAR_SUFFIXES.get(source.suffix.lower())
    if suffix:
        return suffix
    with source.open("rb") as handle:
        return "parquet" if handle.read(4) == b"PAR1" else None


def _info(node: Node) -> NodeInfo:
    latest = node.latest
    size: int | None
    if node.entry_type is EntryType.SERIES and not node.is_dynamic:
        size = sum(r.size or 0 for r in node.versions)
    elif node.entry_type.is_file and not node.is_dynamic and latest is not None:
        size = latest.size
    else:
        size = None
    return NodeInfo(
        node.path,
        node.entry_type,
        node.factory,
        len(node.versions),
        size,
        latest.timestamp if latest else None,
    )


def _window(start: datetime | None, end: datetime | None) -> TimeRange | None:
    if start is None and end is None:
        return None
    if start is not None and end is not None and _aware(end) <= _aware(start):
        raise ConfigError("--time-end must be after --time-start", hint="the range is [start, end)")
    return TimeRange(start, end)


def _aware(value: datetime) -> datetime:
    from datetime import UTC

    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _iso_micros(value: int | None) -> str | None:
    if value is None:
        return None
    from datetime import UTC, timedelta

    return (datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=value)).isoformat()


def _path_hint(snapshot: Snapshot, node_id: str) -> str:
    """Best-effort path of a node id (for messages), else the id."""
    if node_id == ROOT_ID:
        return "/"
    stack: list[tuple[str, str]] = [(ROOT_ID, "")]
    while stack:
        directory, prefix = stack.pop()
        record = snapshot.latest(directory)
        if record is None or record.is_dynamic or record.entry_type != EntryType.DIRECTORY.value:
            continue
        try:
            listing = snapshot.listing(directory)
        except PondError:  # a damaged listing: verify reports it
            continue
        for name, entry in listing.items():
            if entry.node_id == node_id:
                return f"{prefix}/{name}"
            stack.append((entry.node_id, f"{prefix}/{name}"))
    return f"node {node_id}"


def _unique(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))
