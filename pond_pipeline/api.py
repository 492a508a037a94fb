"""The ``Pond`` facade: open or create a pond, read any node, change it in transactions.

    pond = Pond.create("./my.pond")
    with pond.transaction("load sensors") as tx:
        tx.mkdir("/sensors")
        tx.copy("north.csv", "/sensors/north.series", "series")
    pond.read_table("/sensors/north.series", time_start=datetime(2024, 1, 1))

Every ``transaction`` is one Delta commit taken under the pond's write lock: all of
its changes land together, or (on any exception) none do.
"""

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from pond_pipeline import paths
from pond_pipeline.durations import normalize_refresh
from pond_pipeline.dynamic import graph, registry
from pond_pipeline.dynamic.cache import MaterializationCache
from pond_pipeline.dynamic.nodes import Node, TimeRange
from pond_pipeline.dynamic.resolve import Resolver, dynamic_paths
from pond_pipeline.errors import (
    ConfigError,
    ConflictError,
    NotFoundError,
    PondError,
)
from pond_pipeline.factory import EntryType, Factory, FactoryConfig, HostFile
from pond_pipeline.fs import host_files
from pond_pipeline.fs.nodes import (
    ROOT_ID,
    check_record,
    encode_listing,
    listing_attribute,
)
from pond_pipeline.fs.payloads import Payload, describe_parquet
from pond_pipeline.fs.reader import PayloadReader
from pond_pipeline.fs.transaction import Transaction
from pond_pipeline.fs.tree import Snapshot, TreeView
from pond_pipeline.fs.verify import VerifyReport, collect_garbage, verify_pond
from pond_pipeline.query.engine import Connector, SqlSession, referenced_tables, with_bindings
from pond_pipeline.store.blobs import BlobStore, sha256_bytes, sha256_file
from pond_pipeline.store.location import PondLocation
from pond_pipeline.store.lock import DEFAULT_LOCK_TIMEOUT, write_lock
from pond_pipeline.store.oplog import Oplog, OplogRecord, TransactionInfo
from pond_pipeline.store.settings import DEFAULT_INLINE_THRESHOLD, SETTINGS_FILE, PondSettings

__all__ = [
    "DynamicNode",
    "Node",
    "NodeInfo",
    "OplogRecord",
    "Pond",
    "PondOptions",
    "PondTransaction",
    "TimeRange",
    "VerifyReport",
]


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


@dataclass(frozen=True)
class PondOptions:
    """How this process uses a pond (the pond's own settings are in ``pond.json``)."""

    lock_timeout: float = DEFAULT_LOCK_TIMEOUT
    """Seconds a writer waits for the write lock."""
    query_timeout: float | None = None
    """Seconds before a query is interrupted (0: never); ``None``: the pond's setting."""
    host_root: Path | None = None
    """The folder relative host paths resolve against (``pond.yaml``'s)."""
    connector: Connector | None = None
    """Where SQL sessions get their DuckDB connection (default: the process's own)."""


@dataclass(frozen=True)
class DynamicNode:
    """A persisted dynamic node with its validated config (see ``Pond.dynamic_nodes``)."""

    path: str
    entry_type: EntryType
    factory_name: str
    factory: Factory[Any] | None
    """``None`` when the config no longer validates (or its factory is not installed)."""
    config: FactoryConfig | None
    raw_config: dict[str, Any]
    sources: list[str]
    attributes: dict[str, Any]

    @property
    def refresh(self) -> str | None:
        value = self.attributes.get("refresh")
        return str(value) if value is not None else None


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
        location.root.mkdir(parents=True, exist_ok=True)
        settings = PondSettings(inline_threshold=inline_threshold)
        settings.write(location.root / SETTINGS_FILE)
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
        """All changes in the block become one commit, or none (on any exception)."""
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

    # -- reading ----------------------------------------------------------------------------
    def node(self, path: str, *, at: int | None = None, follow: bool = True) -> Node:
        """What ``path`` names (a symlink: its target, unless not ``follow``)."""
        return self.resolver(at).resolve(path, follow=follow)

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
        """Check every stored part and report what is damaged (see ``fs.verify``)."""
        return verify_pond(self.oplog, self.blobs, lambda: _fresh_snapshot(self))

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
        return _dynamic_nodes(self.resolver())

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


class PondTransaction:
    """The changes one transaction can make; see ``Pond.transaction``."""

    def __init__(self, pond: Pond, changes: Transaction):
        self.pond = pond
        self._changes = changes

    @property
    def txn_seq(self) -> int:
        return self._changes.txn_seq

    def resolver(self) -> Resolver:
        """Reads that see this transaction's own pending changes."""
        return self.pond.resolver(view=self._changes)

    def node(self, path: str, *, follow: bool = True) -> Node:
        """What ``path`` names as this transaction leaves the pond."""
        return self.resolver().resolve(path, follow=follow)

    def mkdir(self, path: str, *, parents: bool = False) -> None:
        self._changes.mkdir(path, parents=parents)

    def symlink(self, path: str, target: str) -> None:
        self._changes.symlink(path, paths.normalize(target) if target.startswith("/") else target)

    def remove(self, path: str, *, recursive: bool = False) -> None:
        self._changes.remove(path, recursive=recursive)

    def write_bytes(self, path: str, data: bytes, *, parents: bool = False) -> OplogRecord:
        payload = Payload(data, len(data), sha256_bytes(data))
        return self._changes.write_file(path, EntryType.DATA, payload, parents=parents)

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
        base = self._series_base(self._existing(path))
        scratch = self.pond.blobs.scratch_file(".parquet")
        pq.write_table(table, scratch, compression="zstd")
        payload = host_files.parquet_payload(
            scratch, kind, base, time_column, owned=True, subject=path
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
        kind = host_files.import_kind(
            source, entry_type, existing.entry_type if existing is not None else None
        )
        payload = host_files.host_payload(
            self.pond.blobs,
            source,
            kind,
            self._series_base(existing) if kind.is_tabular else None,
            time_column=time_column,
            on_progress=on_progress,
        )
        return self._write_payload(dest, kind, payload, parents=parents)

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
        record = self._changes.write_dynamic(
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

    def check_cycles(self) -> None:
        """No dynamic node of the pond (as this transaction leaves it) reads itself,
        directly or through others; a cycle is an error naming it."""
        resolver = self.resolver()
        upstream = graph.upstream_index(
            graph.Vertex(n.path, resolver.source_patterns(n), n.entry_type is EntryType.DIRECTORY)
            for n in dynamic_paths(resolver)
        )
        graph.derivation_order(upstream)

    # -- materialization: produced content written back as versions ----------------------
    def write_produced(
        self,
        node: Node,
        content: Path | bytes,
        attributes: dict[str, Any],
        *,
        time_column: str | None = None,
        listed_in: str | None = None,
    ) -> OplogRecord:
        """A dynamic node's produced content as its new version: ``content`` is the
        Parquet file of a table or series (from the cache, copied into a blob) or a data
        file's bytes. ``listed_in``: the node id of the dynamic directory whose listing
        holds the node (an entry that directory produced)."""
        if isinstance(content, bytes):
            payload = Payload(content, len(content), sha256_bytes(content))
        else:
            payload = describe_parquet(
                content,
                node.entry_type,
                time_column=time_column,
                subject=node.path,
            )
        config = registry.encode_config(node.raw_config)
        merged = {**payload.attributes, **attributes}
        if listed_in is not None:
            return self._changes.write_child(
                listed_in,
                paths.parent_and_name(node.path)[1],
                node.entry_type,
                path=node.path,
                payload=payload,
                factory=node.factory,
                content=config,
                attributes=merged,
            )
        return self._changes.write_dynamic(
            node.path,
            node.entry_type,
            node.factory,
            config,
            overwrite=True,
            attributes=merged,
            payload=payload,
        )

    def write_directory(
        self, node: Node, attributes: dict[str, Any], *, listed_in: str | None = None
    ) -> OplogRecord:
        """A materialized version of a dynamic directory (its children are written with
        ``write_produced(..., listed_in=<its node id>)``); nested in another dynamic
        directory's listing (``listed_in``), it keeps the children it listed before."""
        config = registry.encode_config(node.raw_config)
        if listed_in is None:
            return self._changes.write_dynamic(
                node.path,
                EntryType.DIRECTORY,
                node.factory,
                config,
                overwrite=True,
                attributes=attributes,
            )
        name = paths.parent_and_name(node.path)[1]
        entry = self._changes.listing(listed_in).get(name)
        if entry is not None:
            attributes = {
                **attributes,
                "listing": listing_attribute(self._changes.listing(entry.node_id)),
            }
        return self._changes.write_child(
            listed_in,
            name,
            EntryType.DIRECTORY,
            path=node.path,
            factory=node.factory,
            content=config,
            attributes=attributes,
        )

    def listed_versions(self, directory_id: str) -> dict[str, OplogRecord | None]:
        """The latest version of each child a directory lists, by name."""
        return {
            name: self._changes.latest(entry.node_id)
            for name, entry in self._changes.listing(directory_id).items()
        }

    def unlist(self, directory_id: str, name: str, path: str) -> None:
        """Drop a child from a directory's listing (its history stays)."""
        self._changes.unlink_child(directory_id, name, path)

    def import_host_file(self, directory: Node, host: HostFile) -> tuple[str, OplogRecord | None]:
        """A host file a non-lazy directory (``ingest``) lists, imported as its static
        child: the file's sha256 and the version written, or ``None`` when the child
        already holds that file (same sha256) or, for a series, every row of it."""
        assert directory.node_id is not None
        child_path = paths.join(directory.path, host.name)
        sha = sha256_file(host.path)
        entry = self._changes.listing(directory.node_id).get(host.name)
        existing = self.node(child_path) if entry is not None else None
        if existing is not None and existing.latest is not None:
            if existing.latest.attributes.get("source_sha256") == sha:
                return sha, None
            if existing.entry_type is not host.entry_type:
                raise ConfigError(
                    f"exists as a {existing.entry_type.short}, cannot import a "
                    f"{host.entry_type.short} over it",
                    subject=child_path,
                    hint="change the node's type back or remove the file first",
                )
        base = self._series_base(existing) if host.entry_type is EntryType.SERIES else None
        payload: Payload | None = host_files.host_payload(
            self.pond.blobs, host.path, host.entry_type, base, time_column=host.time_column
        )
        if base is not None and payload is not None:
            payload = host_files.rows_after(self.pond.blobs, payload, base)
        if payload is None:  # nothing after what the series holds: nothing to append
            return sha, None
        record = self._changes.write_child(
            directory.node_id,
            host.name,
            host.entry_type,
            path=child_path,
            payload=payload,
            attributes={"source_sha256": sha, "source_path": str(host.path)},
        )
        return sha, record

    # -- internals --------------------------------------------------------------------------
    def dynamic_nodes(self) -> list[DynamicNode]:
        """``Pond.dynamic_nodes`` as this transaction leaves the pond."""
        return _dynamic_nodes(self.resolver())

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

    def _write_payload(
        self, path: str, kind: EntryType, payload: Payload, *, parents: bool
    ) -> OplogRecord:
        """``write_file``; when it refuses (type clash, missing parent), no scratch file stays."""
        try:
            return self._changes.write_file(path, kind, payload, parents=parents)
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
            return self.node(path)
        except NotFoundError:
            return None

    def _series_base(self, existing: Node | None) -> host_files.SeriesBase | None:
        """A static series an import appends to."""
        if existing is None or existing.entry_type is not EntryType.SERIES or existing.is_dynamic:
            return None
        latest = existing.latest
        times = [r.max_event_time for r in existing.versions if r.max_event_time is not None]
        return host_files.SeriesBase(
            existing.path,
            partial(self.resolver().schema, existing),
            latest.attributes.get("time_column") if latest else None,
            max(times, default=None),
        )


def _dynamic_nodes(resolver: Resolver) -> list[DynamicNode]:
    found = []
    for node in dynamic_paths(resolver):
        factory: Factory[Any] | None
        typed: FactoryConfig | None
        try:
            factory, typed = resolver.factory_of(node)
            sources = resolver.source_patterns(node)
        except PondError:
            factory, typed, sources = None, None, []
        attributes = dict(node.latest.attributes) if node.latest else {}
        found.append(
            DynamicNode(
                node.path,
                node.entry_type,
                node.factory,
                factory,
                typed,
                dict(node.raw_config),
                sources,
                attributes,
            )
        )
    return found


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


def _fresh_snapshot(pond: Pond) -> Snapshot:
    """The pond's snapshot read afresh (for verify and gc)."""
    pond._snapshot = None
    return pond.snapshot()


def _unique(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))
