"""``Pond``: open or create a pond, read any node, query it, check it, and change it in
transactions (one Delta commit each, under the write lock)."""

import errno
import os
import shutil
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from datetime import datetime
from pathlib import Path
from typing import Any

import pyarrow as pa

from pond_pipeline import paths
from pond_pipeline.api.catalog import DynamicNode, NodeInfo, dynamic_nodes_of, info_of
from pond_pipeline.api.options import PondOptions
from pond_pipeline.api.transaction import PondTransaction
from pond_pipeline.dynamic import registry
from pond_pipeline.dynamic.cache import MaterializationCache
from pond_pipeline.dynamic.nodes import Node, TimeRange
from pond_pipeline.dynamic.resolve import Resolver
from pond_pipeline.errors import (
    ConfigError,
    ConflictError,
    NotFoundError,
    PondError,
    StorageError,
)
from pond_pipeline.factory import EntryType
from pond_pipeline.fs.nodes import (
    ROOT_ID,
    check_record,
    encode_listing,
)
from pond_pipeline.fs.reader import PayloadReader
from pond_pipeline.fs.transaction import Transaction
from pond_pipeline.fs.tree import Snapshot, TreeView
from pond_pipeline.fs.verify import VerifyReport, collect_garbage, verify_pond
from pond_pipeline.query.engine import (
    SqlSession,
    referenced_tables,
    with_bindings,
    zoneless_columns,
)
from pond_pipeline.store.blobs import BlobStore
from pond_pipeline.store.io_errors import storage_error
from pond_pipeline.store.location import PondLocation
from pond_pipeline.store.lock import write_lock
from pond_pipeline.store.oplog import Oplog, OplogRecord, TransactionInfo
from pond_pipeline.store.settings import DEFAULT_INLINE_THRESHOLD, SETTINGS_FILE, PondSettings


class Pond:
    def __init__(
        self, location: PondLocation, settings: PondSettings, options: PondOptions | None = None
    ):
        self.location = location
        self.settings = settings
        self.options = options or PondOptions()
        self.oplog = Oplog(location)
        self.blobs = BlobStore(location.blobs, location.scratch)
        self.reader = PayloadReader(self.oplog, self.blobs)
        self.cache = MaterializationCache(location.cache)
        self._snapshot: Snapshot | None = None
        self._checked: tuple[int, OplogRecord] | None = None

    # -- opening -------------------------------------------------------------------------
    @classmethod
    def create(
        cls,
        uri: str,
        *,
        inline_threshold: int = DEFAULT_INLINE_THRESHOLD,
        options: PondOptions | None = None,
    ) -> "Pond":
        location = PondLocation.parse(uri)
        if Oplog.exists(location):
            raise ConflictError("a pond already exists here", subject=location.uri)
        parts = (
            location.root / SETTINGS_FILE,
            location.oplog,
            location.scratch,
            location.lock_file,
            location.root / _STAGING,
        )
        existed = location.root.exists(), [part.exists() for part in parts]
        settings = PondSettings(inline_threshold=inline_threshold)
        timeout = (options or PondOptions()).lock_timeout
        try:
            location.root.mkdir(parents=True, exist_ok=True)
            with write_lock(location.lock_file, timeout, holder="init"):
                if Oplog.exists(location):  # another init finished while this one waited
                    raise ConflictError("a pond already exists here", subject=location.uri)
                settings.write(location.root / SETTINGS_FILE)
                _create_oplog(location)
        except (OSError, StorageError) as exc:
            failure = storage_error(
                exc,
                pond=location.uri,
                root=location.root,
                writing="the new pond",
                outcome="no pond was created",
            )
            if failure is None:
                raise
            # the storage refused: undo the half-made pond, so that `pond init` can be
            # run again once there is space (or permission)
            if not existed[0]:
                shutil.rmtree(location.root, ignore_errors=True)
            else:
                for part, was_there in zip(parts, existed[1], strict=True):
                    if not was_there:
                        _remove(part)
            if failure is exc:
                failure = StorageError(
                    failure.reason,
                    subject=failure.subject,
                    hint=_init_hint(failure),
                    errno=failure.errno,
                )
            raise failure from exc
        return cls(location, settings, options)

    @classmethod
    def open(cls, uri: str, options: PondOptions | None = None) -> "Pond":
        location = PondLocation.parse(uri)
        if not Oplog.exists(location):
            raise NotFoundError(
                "no pond here", subject=location.uri, hint="create one with `pond init`"
            )
        return cls(location, PondSettings.read(location.root / SETTINGS_FILE), options)

    @property
    def inline_threshold(self) -> int:
        return self.settings.inline_threshold

    @property
    def last_txn(self) -> int:
        """The number of the pond's last transaction."""
        return self.snapshot().last_txn

    @property
    def lock_timeout(self) -> float:
        return self.options.lock_timeout

    @property
    def query_timeout(self) -> float:
        chosen = self.options.query_timeout
        return self.settings.query_timeout if chosen is None else chosen

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
            host_root=self.options.host_root,
            connector=self.options.connector,
        )

    @contextmanager
    def transaction(
        self, command: str = "", *, run_id: str | None = None
    ) -> Iterator["PondTransaction"]:
        """All changes in the block become one commit, or none (on any exception).

        A write the storage refuses (disk full, no permission, read-only) raises one
        ``StorageError`` naming the pond, what was being written and what to do."""
        try:
            with write_lock(self.location.lock_file, self.lock_timeout, holder=command):
                self._snapshot = None
                snapshot = self.snapshot()
                changes = Transaction(
                    snapshot, self.blobs, command=command, inline_threshold=self.inline_threshold
                )
                yield PondTransaction(self, changes)
                records = changes.finish()
                if records:
                    touched = _unique(changes.touched)
                    info = TransactionInfo(changes.txn_seq, changes.now, command, touched, run_id)
                    self.oplog.append(records, expected_version=snapshot.delta_version, info=info)
                self._snapshot = None
        except (OSError, ConfigError) as exc:
            # an OSError, or bad input that was really the storage failing (DuckDB
            # writing a converted CSV to a full disk reports an IO Error)
            failure = self.storage_error(
                exc, writing=f"transaction `{command}`" if command else "a transaction"
            )
            if failure is None:
                raise
            self._snapshot = None
            raise failure from exc

    def storage_error(self, exc: BaseException, *, writing: str) -> StorageError | None:
        """``exc`` as a ``StorageError`` of this pond, if the storage refused a write."""
        return storage_error(exc, pond=self.location.uri, root=self.location.root, writing=writing)

    # -- reading ----------------------------------------------------------------------------
    def node(self, path: str, *, at: int | None = None, follow: bool = True) -> Node:
        """What ``path`` names (a symlink: its target, unless not ``follow``)."""
        return self.resolver(at).resolve(path, follow=follow)

    def exists(self, path: str, *, at: int | None = None) -> bool:
        """Whether ``path`` names something (a symlink: whether its target exists)."""
        return self.resolver(at).exists(path)

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
        return [info_of(n) for n in sorted(nodes, key=lambda n: n.path)]

    def read_bytes(
        self, path: str | Node, *, version: int | None = None, at: int | None = None
    ) -> bytes:
        """A data file's bytes; ``path`` may be a ``Node`` already resolved (``node``)."""
        resolver = self.resolver(at)
        return resolver.read_bytes(_resolved(resolver, path), version=version)

    def read_table(
        self,
        path: str | Node,
        *,
        version: int | None = None,
        at: int | None = None,
        time_start: datetime | None = None,
        time_end: datetime | None = None,
        columns: Sequence[str] | None = None,
    ) -> pa.Table:
        """A table's or series' rows (a series: sorted by time); ``path`` may be a ``Node``
        already resolved (``node``)."""
        resolver = self.resolver(at)
        window = _window(time_start, time_end)
        node = _resolved(resolver, path)
        dataset = resolver.dataset(node, version=version, window=window)
        table = dataset.to_table(columns=list(columns) if columns else None)
        time_column = resolver.time_column(node)
        if time_column and time_column in table.column_names:
            table = table.sort_by(time_column)
        return table

    def query(
        self,
        sql: str,
        *,
        source: str | Node | None = None,
        version: int | None = None,
        at: int | None = None,
        time_start: datetime | None = None,
        time_end: datetime | None = None,
    ) -> pa.Table:
        """Run DuckDB ``sql``: ``source`` (a path or a resolved ``Node``) is the table
        ``source``; quoted pond paths (``FROM '/a/b.series'``, globs too) are tables."""
        with self.sql_session(
            sql, source=source, version=version, at=at, time_start=time_start, time_end=time_end
        ) as (session, bindings):
            return session.query(sql, bindings)

    def explain(self, sql: str, *, source: str | Node | None = None, at: int | None = None) -> str:
        """DuckDB's ``EXPLAIN ANALYZE`` of ``sql`` (operators, filters pushed, rows read)."""
        with self.sql_session(sql, source=source, at=at) as (session, bindings):
            return session.explain(with_bindings(sql, bindings))

    @contextmanager
    def sql_session(
        self,
        sql: str,
        *,
        source: str | Node | None = None,
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
                node = _resolved(resolver, source)
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
            try:
                schema = resolver.schema(node)
            except PondError as exc:
                if not node.is_dynamic:
                    raise
                # what it is stays describable when its sources cannot be read yet
                result["schema_error"] = str(exc)
                schema = None
        if node.entry_type.is_tabular and schema is not None:
            result["schema"] = [_described_column(f) for f in schema]
            zoneless = zoneless_columns(schema)
            if zoneless:  # recorded by the CSV conversion
                result["zoneless_utc"] = zoneless
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
        """Check every stored part and report what is damaged (see ``fs.verify``)."""
        return verify_pond(
            self.oplog,
            self.blobs,
            lambda: _fresh_snapshot(self),
            damaged_cache=self.cache.damaged_entries,
        )

    def gc(self) -> list[str]:
        """Remove what interrupted writers left; returns the removed blobs (``fs.verify``)."""
        return collect_garbage(
            self.oplog, self.blobs, self.location, lambda: _fresh_snapshot(self), self.lock_timeout
        )

    # -- dynamic nodes ----------------------------------------------------------------------
    @staticmethod
    def factories() -> list[Any]:
        return registry.describe_all()

    def dynamic_nodes(self) -> list["DynamicNode"]:
        """Every persisted dynamic node (and the entries directories declare), with its
        validated config (``None`` for a broken node, so it does not hide the rest)."""
        return dynamic_nodes_of(self.resolver())

    def static_files(self) -> list[str]:
        """The paths of every static file outside dynamic directories."""
        resolver = self.resolver()
        return [
            n.path
            for n in resolver.walk_static(resolver.resolve("/"))
            if n.entry_type is not EntryType.DIRECTORY
        ]

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


def _resolved(resolver: Resolver, path: str | Node) -> Node:
    """``path``'s node, or ``path`` itself when the caller already resolved it."""
    return path if isinstance(path, Node) else resolver.resolve(path)


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


_STAGING = ".init"
"""Where ``pond init`` builds the oplog (under the write lock) before renaming it into
place, so that no reader ever sees an oplog without its root directory."""


def _create_oplog(location: PondLocation) -> None:
    """The oplog with its first transaction (the empty root), appearing at once."""
    staging = location.root / _STAGING
    shutil.rmtree(staging, ignore_errors=True)  # left by an init that was killed
    staged = PondLocation(location.uri, staging)
    oplog = Oplog.create(staged)
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
    try:
        os.rename(staged.oplog, location.oplog)  # replaces an empty folder only
    except OSError as exc:
        if exc.errno not in (errno.ENOTEMPTY, errno.EEXIST, errno.ENOTDIR):
            raise
        shutil.rmtree(staging, ignore_errors=True)
        raise ConflictError(
            "oplog/ exists and is not a pond's oplog",
            subject=location.uri,
            hint="choose another folder, or move it away",
        ) from exc
    staging.rmdir()


def _remove(part: Path) -> None:
    """Delete a file or folder ``pond init`` made, if it can."""
    if part.is_dir():
        shutil.rmtree(part, ignore_errors=True)
    else:
        with suppress(OSError):
            part.unlink(missing_ok=True)


def _init_hint(failure: PondError) -> str:
    """A commit's hint (``... the pond is unchanged``), said of a pond not created."""
    hint = failure.hint or ""
    return hint.rsplit(";", 1)[0] + "; no pond was created" if ";" in hint else hint


def _fresh_snapshot(pond: Pond) -> Snapshot:
    """The pond's snapshot read afresh (for verify and gc)."""
    pond._snapshot = None
    return pond.snapshot()


def _unique(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))


def _described_column(field: pa.Field) -> dict[str, str]:
    """A column's name and type; a timestamp without zone says it is read as UTC."""
    described = {"name": field.name, "type": str(field.type)}
    if pa.types.is_timestamp(field.type) and field.type.tz is None:
        described["zone"] = "UTC"
    return described
