"""``PondTransaction``: the changes one transaction can make (see ``Pond.transaction``)."""

from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.parquet as pq

from pond_pipeline import paths
from pond_pipeline.api.catalog import DynamicNode, dynamic_nodes_of
from pond_pipeline.durations import normalize_refresh
from pond_pipeline.dynamic import graph, registry, sql_check
from pond_pipeline.dynamic.nodes import Node
from pond_pipeline.dynamic.resolve import Resolver, dynamic_paths
from pond_pipeline.errors import (
    ConfigError,
    CorruptionError,
    NotFoundError,
)
from pond_pipeline.factory import EntryType, Factory, FactoryConfig, HostFile
from pond_pipeline.fs import host_files
from pond_pipeline.fs.nodes import (
    listing_attribute,
)
from pond_pipeline.fs.payloads import Payload, describe_parquet
from pond_pipeline.fs.transaction import Transaction
from pond_pipeline.store.blobs import changed_while_reading, sha256_bytes, sha256_file
from pond_pipeline.store.oplog import OplogRecord

if TYPE_CHECKING:
    from pond_pipeline.api.pond import Pond


class PondTransaction:
    """The changes one transaction can make; see ``Pond.transaction``."""

    def __init__(self, pond: "Pond", changes: Transaction):
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

    def symlink(self, path: str, target: str) -> bool:
        """A symlink at ``path`` to ``target`` (absolute, or relative to the link's
        directory). Returns whether the target exists as this transaction leaves the pond:
        a link to nothing is allowed, as in POSIX, and reads as a ``DanglingLinkError``."""
        from pond_pipeline.errors import ConflictError, FactoryError  # (to hoist)

        self._changes.symlink(path, paths.normalize(target) if target.startswith("/") else target)
        try:
            return self.resolver().exists(path)
        except ConflictError:  # a loop, or a target below a file: nothing there either
            return False
        except FactoryError:  # a dynamic directory on the way cannot list: cannot tell
            return True

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
        check_sql: bool = True,
    ) -> OplogRecord:
        """Validate and persist a dynamic node: one row, the config stored unexpanded.

        Its SQL (and its declared children's) is bound against its sources' schemas
        (``check_sql``). ``check_cycles=False`` / ``check_sql=False`` leave those checks
        to the caller, who creates many nodes in this transaction and checks once
        (``check_cycles()``, then ``check_sql(path)`` for each)."""
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
        if check_sql:
            self.check_sql(path)
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

    def check_sql(self, path: str) -> None:
        """The SQL of the dynamic node at ``path`` (and of the children its config
        declares), as this transaction leaves the pond, bound (never run) against its
        sources' schemas; DuckDB refusing it is a ``SqlCheckError`` naming the node, the
        config field and DuckDB's words. See ``dynamic.sql_check`` for what is bound."""
        path = paths.normalize(path)
        resolver = self.resolver()
        factory, config = resolver.factory_of(resolver.resolve(path, follow=False))
        sql_check.check_sql(resolver, path, factory, config)

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
            payload = self._produced_parquet(node, content, time_column)
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
        before = host_files.file_state(host.path)
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
        imported = host_files.host_payload(
            self.pond.blobs, host.path, host.entry_type, base, time_column=host.time_column
        )
        if host.entry_type is EntryType.DATA:
            sha = imported.sha256  # the bytes stored, even if the file changed since hashing
        elif host_files.file_state(host.path) != before:  # converted from other bytes
            if imported.owned and isinstance(imported.source, Path):
                imported.source.unlink(missing_ok=True)
            raise changed_while_reading(host.path)
        payload: Payload | None = imported
        if base is not None:
            payload = host_files.rows_after(self.pond.blobs, imported, base)
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
    def _produced_parquet(self, node: Node, content: Path, time_column: str | None) -> Payload:
        """A produced Parquet file as a payload: copied into a scratch file in one hashing
        read. A cache entry whose copy does not hash to its recorded checksum changed
        after it was checked (it is dropped, and the materialization fails); the pages of
        a file not from the cache are checked."""
        scratch, sha, _ = self.pond.blobs.copy_to_scratch(content, ".parquet")
        recorded = self.pond.cache.recorded_sha256(content)
        if recorded is not None and recorded != sha:
            scratch.unlink(missing_ok=True)
            self.pond.cache.drop(content)
            raise CorruptionError(
                "its cache entry changed while it was read",
                subject=node.path,
                hint="materialize it again (the entry was dropped and is recomputed)",
            )
        return describe_parquet(
            scratch,
            node.entry_type,
            time_column=time_column,
            subject=node.path,
            owned=True,
            sha256=sha,
            check_pages=recorded is None,
        )

    def dynamic_nodes(self) -> list[DynamicNode]:
        """``Pond.dynamic_nodes`` as this transaction leaves the pond."""
        return dynamic_nodes_of(self.resolver())

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
