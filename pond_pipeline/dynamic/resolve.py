"""Any pond path to its content, static or dynamic, as of one view of the tree.

A ``Node`` is what a path names: a persisted node (static or dynamic) or a transient
child of a dynamic directory. The ``Resolver`` lists, globs, fingerprints, reads and
registers nodes into a SQL session; dynamic content goes through the cache, keyed by
the node's fingerprint (factory, config, factory version, and the fingerprints of
every source it reads).
"""

import hashlib
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from pond_pipeline import paths
from pond_pipeline.dynamic import cache as cache_module
from pond_pipeline.dynamic import registry
from pond_pipeline.errors import ConfigError, ConflictError, FactoryError, NotFoundError, PondError
from pond_pipeline.factory import (
    ChildSpec,
    EntryType,
    Factory,
    FactoryConfig,
    Previous,
    SourceVersion,
    SqlRelation,
)
from pond_pipeline.fs.payloads import first_timestamp_column
from pond_pipeline.fs.reader import PayloadReader
from pond_pipeline.fs.tree import TreeView
from pond_pipeline.query.engine import Connector, SqlSession, csv_to_parquet, quote
from pond_pipeline.store.oplog import STATIC_FACTORY, OplogRecord


@dataclass(frozen=True)
class Node:
    """What a path names. ``versions`` is empty for a transient child."""

    path: str
    entry_type: EntryType
    factory: str = STATIC_FACTORY
    node_id: str | None = None
    versions: tuple[OplogRecord, ...] = ()
    raw_config: dict[str, Any] = field(default_factory=dict)

    @property
    def is_dynamic(self) -> bool:
        return self.factory != STATIC_FACTORY

    @property
    def latest(self) -> OplogRecord | None:
        return self.versions[-1] if self.versions else None


@dataclass(frozen=True)
class TimeRange:
    """A half-open ``[start, end)`` window on a series' timestamp column."""

    start: datetime | None = None
    end: datetime | None = None

    def overlaps(self, record: OplogRecord) -> bool:
        if record.min_event_time is None or record.max_event_time is None:
            return True
        from pond_pipeline.fs.payloads import to_micros

        if self.start is not None and record.max_event_time < to_micros(self.start):
            return False
        return not (self.end is not None and record.min_event_time >= to_micros(self.end))

    def expression(self, column: str, column_type: pa.DataType) -> pc.Expression:
        condition = pc.scalar(True)
        for bound, compare in ((self.start, "ge"), (self.end, "lt")):
            if bound is None:
                continue
            value = _bound_scalar(bound, column_type)
            term = pc.field(column) >= value if compare == "ge" else pc.field(column) < value
            condition = condition & term
        return condition


class Resolver:
    def __init__(
        self,
        view: TreeView,
        reader: PayloadReader,
        cache: cache_module.MaterializationCache,
        *,
        scratch: Path,
        query_timeout: float | None = None,
        host_root: Path | None = None,
        connector: Connector | None = None,
    ):
        self.connector = connector
        self.view = view
        self.reader = reader
        self.cache = cache
        self.scratch = scratch
        self.query_timeout = query_timeout
        self.host_root = host_root
        self._fingerprints: dict[str, str] = {}
        self._configs: dict[str, tuple[Factory[Any], FactoryConfig]] = {}
        self._children: dict[str, dict[str, Node]] = {}
        self.metrics: dict[str, dict[str, int | float | str]] = {}
        """Figures factories reported while producing, by node path."""

    # -- naming ------------------------------------------------------------------------
    def resolve(self, path: str, *, follow: bool = True) -> Node:
        located = self.view.walk(path, follow=follow)
        node = self._persisted(located.path, located.node_id)
        for name in located.rest:
            if node.entry_type is not EntryType.DIRECTORY:
                raise ConflictError("not a directory", subject=node.path)
            child = self.children(node).get(name)
            if child is None:
                raise NotFoundError(
                    "no such file or directory", subject=paths.join(node.path, name)
                )
            node = child
        return node

    def exists(self, path: str) -> bool:
        try:
            self.resolve(path)
        except NotFoundError:
            return False
        return True

    def children(self, node: Node) -> dict[str, Node]:
        """A directory's entries: its listing, or what its factory lists right now."""
        if node.entry_type is not EntryType.DIRECTORY:
            raise ConflictError("not a directory", subject=node.path)
        if not node.is_dynamic or self.materialized_record(node) is not None:
            assert node.node_id is not None
            return {
                name: self._persisted(paths.join(node.path, name), child_id)
                for name, child_id, _ in self.view.iter_children(node.node_id)
            }
        if node.path not in self._children:
            listing = self._produce(node)
            if not isinstance(listing, list):
                raise self._failure(node, "a directory factory must list child nodes")
            persisted = self.view.listing(node.node_id) if node.node_id else {}
            children = {}
            for spec in listing:
                entry = persisted.get(spec.name)
                child = self._transient(node, spec)
                if entry is not None:
                    stored = self._persisted(child.path, entry.node_id)
                    if stored.factory == spec.factory and stored.raw_config == spec.config:
                        child = stored  # same node, with the versions materializations wrote
                children[spec.name] = child
            self._children[node.path] = children
        return self._children[node.path]

    def glob(self, pattern: str, *, follow_links: bool = True) -> list[Node]:
        """Nodes whose path matches ``pattern`` (``*``, ``?``, ``**``), sorted by path;
        a matched symlink stands for its target unless ``follow_links`` is false."""
        normalized = paths.normalize(pattern)
        if not paths.is_glob(normalized):
            return [self.resolve(normalized)] if self.exists(normalized) else []
        wanted = paths.split(normalized)
        prefix = paths.glob_prefix(normalized)
        start = "/" + "/".join(prefix)
        try:
            root = self.resolve(start)
        except NotFoundError:
            return []
        found = list(self._walk(root, prefix, wanted, follow_links))
        return sorted(found, key=lambda n: n.path)

    def _walk(
        self, node: Node, segments: list[str], wanted: list[str], follow_links: bool
    ) -> Iterator[Node]:
        if segments and paths.match_segments(wanted, segments):
            yield node
        if node.entry_type is not EntryType.DIRECTORY or not paths.could_descend(wanted, segments):
            return
        for name, child in self.children(node).items():
            if child.entry_type is EntryType.SYMLINK:
                # a link matches as what it points to, but a walk never descends through
                # one (no loops); a broken or looping link matches as the link itself
                if paths.match_segments(wanted, [*segments, name]):
                    yield self._follow(child) if follow_links else child
                continue
            yield from self._walk(child, [*segments, name], wanted, follow_links)

    def _follow(self, node: Node) -> Node:
        try:
            target = self.resolve(node.path)
        except (NotFoundError, ConflictError):
            return node
        return Node(
            node.path,
            target.entry_type,
            target.factory,
            target.node_id,
            target.versions,
            target.raw_config,
        )

    def walk_static(self, node: Node) -> Iterator[Node]:
        """``node`` and the static nodes below it (never into a dynamic node)."""
        if node.is_dynamic:
            return
        yield node
        if node.entry_type is EntryType.DIRECTORY:
            for child in self.children(node).values():
                yield from self.walk_static(child)

    def walk_all(self, node: Node) -> Iterator[Node]:
        """``node`` and everything below it (dynamic directories listed by their factory)."""
        yield node
        if node.entry_type is EntryType.DIRECTORY:
            for child in self.children(node).values():
                yield from self.walk_all(child)

    # -- factories ---------------------------------------------------------------------
    def factory_of(self, node: Node) -> tuple[Factory[Any], FactoryConfig]:
        if node.path not in self._configs:
            factory = registry.get(node.factory)
            config = registry.validate(factory, node.raw_config, subject=node.path)
            self._configs[node.path] = (factory, config)
        return self._configs[node.path]

    def source_patterns(self, node: Node) -> list[str]:
        if not node.is_dynamic:
            return []
        factory, config = self.factory_of(node)
        return [paths.normalize(p) for p in factory.sources(config)]

    def fingerprint(self, node: Node, _stack: tuple[str, ...] = ()) -> str:
        """A digest of everything the node's content depends on (its cache key)."""
        if node.path in self._fingerprints:
            return self._fingerprints[node.path]
        if node.path in _stack:
            cycle = " -> ".join([*_stack[_stack.index(node.path) :], node.path])
            raise ConfigError(
                f"derivation cycle: {cycle}",
                subject=node.path,
                hint="change a source so the nodes do not read each other",
            )
        if not node.is_dynamic:
            latest = node.latest
            parts: list[Any] = [node.node_id, latest.version if latest else 0]
        else:
            factory, config = self.factory_of(node)
            stack = (*_stack, node.path)
            sources = []
            for pattern in self.source_patterns(node):
                for source in self.glob(pattern):
                    if source.path == node.path:
                        cycle = f"{node.path} -> {node.path}"
                        raise ConfigError(
                            f"derivation cycle: {cycle}",
                            subject=node.path,
                            hint=f"source {pattern!r} matches the node itself",
                        )
                    sources.append((source.path, self.fingerprint(source, stack)))
            parts = [factory.name, factory.version, config.model_dump(mode="json"), sorted(sources)]
        digest = hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()
        self._fingerprints[node.path] = digest
        return digest

    # -- reading -----------------------------------------------------------------------
    def time_column(self, node: Node) -> str | None:
        if node.entry_type is not EntryType.SERIES:
            return None
        if not node.is_dynamic:
            latest = node.latest
            return latest.attributes.get("time_column") if latest else None
        factory, config = self.factory_of(node)
        return factory.time_column(config) or first_timestamp_column(self.schema(node))

    def schema(self, node: Node) -> pa.Schema:
        self._require_tabular(node)
        if not node.is_dynamic:
            return pa.unify_schemas([self.reader.schema(r, node.path) for r in node.versions])
        return self.dataset(node).schema

    def dataset(
        self, node: Node, *, version: int | None = None, window: TimeRange | None = None
    ) -> ds.Dataset:
        """A table or series as a pyarrow dataset (a series: the union of its versions)."""
        self._require_tabular(node)
        if node.is_dynamic:
            if version is not None:
                raise ConfigError(
                    "--version applies to static files and materialized versions", subject=node.path
                )
            dataset = self._dynamic_dataset(node)
        else:
            records = self._select_versions(node, version)
            schema = None
            if window is not None and node.entry_type is EntryType.SERIES:
                # skip versions outside the window, keeping every column of the series
                schema = self.schema(node)
                records = [r for r in records if window.overlaps(r)]
                if not records:
                    return ds.dataset(schema.empty_table())
            dataset = self.reader.dataset(records, node.path, schema)
        if window is not None:
            column = self.time_column(node)
            if column is None:
                raise ConfigError("--time-start/--time-end apply to series", subject=node.path)
            dataset = dataset.filter(window.expression(column, dataset.schema.field(column).type))
        return dataset

    def version_table(self, node: Node, record: OplogRecord) -> pa.Table:
        """The rows one stored version of a table or series holds."""
        return self.reader.dataset([record], node.path).to_table()

    def read_bytes(self, node: Node, *, version: int | None = None) -> bytes:
        if node.entry_type is not EntryType.DATA:
            raise ConflictError(f"is a {node.entry_type.short}, not a data file", subject=node.path)
        if node.is_dynamic:
            record = self.materialized_record(node)
            if record is not None:  # materialized and its sources unchanged: static speed
                return self.reader.read_bytes(record, node.path)
            return self.cached_output(node).read_bytes()
        return self.reader.read_bytes(self._select_versions(node, version)[-1], node.path)

    def read_csv(self, node: Node) -> pa.Table:
        """A CSV data file as a table, types inferred by DuckDB."""
        if node.entry_type is not EntryType.DATA:
            raise ConflictError(
                f"is a {node.entry_type.short}, not a CSV data file", subject=node.path
            )
        source: Path | bytes
        source = (
            self.reader.source(node.latest, node.path)
            if node.latest and not node.is_dynamic
            else self.read_bytes(node)
        )
        self.scratch.mkdir(parents=True, exist_ok=True)
        temp_files = []
        try:
            if isinstance(source, bytes):
                csv_path = _scratch_path(self.scratch, ".csv")
                csv_path.write_bytes(source)
                temp_files.append(csv_path)
                source = csv_path
            parquet_path = _scratch_path(self.scratch, ".parquet")
            temp_files.append(parquet_path)
            csv_to_parquet(source, parquet_path, subject=node.path)
            return pq.read_table(parquet_path)
        finally:
            for temp in temp_files:
                temp.unlink(missing_ok=True)

    def cached_output(
        self, node: Node, previous: Previous | None = None
    ) -> "cache_module.CacheEntry":
        """The node's produced content, from the cache or freshly produced into it;
        with ``previous``, an incremental factory updates its last output instead."""
        factory, config = self.factory_of(node)
        key = self.fingerprint(node)
        entry = self.cache.lookup(key, factory.ttl(config))
        if entry is not None:
            return entry
        output = self._produce(node, previous) if previous is not None else None
        if output is None:
            output = self._produce(node)
        meta = {"factory": factory.name, "path": node.path}
        if isinstance(output, bytes):
            if node.entry_type is not EntryType.DATA:
                raise self._failure(node, "produced bytes for a table or series")
            return self.cache.store_bytes(key, output, meta)
        if isinstance(output, list):
            raise self._failure(node, "produced a listing, but it is not a directory")
        if isinstance(output, SqlRelation):
            with self.session() as session:
                name = self._register_relation(session, node, output)
                return self.cache.store_table(
                    key, session.stream(f"SELECT * FROM {quote(name)}"), meta
                )
        return self.cache.store_table(key, output, meta)

    def source_versions(self, node: Node) -> dict[str, int]:
        """The latest version of every static series the node's sources match now."""
        found = {}
        for pattern in self.source_patterns(node):
            for source in self.glob(pattern):
                if (
                    not source.is_dynamic
                    and source.entry_type is EntryType.SERIES
                    and source.latest
                ):
                    found[source.path] = source.latest.version
        return found

    def previous(self, node: Node) -> Previous | None:
        """What the node's last materialization wrote, when it recorded its sources."""
        latest = node.latest
        if latest is None or not latest.blob or "source_versions" not in latest.attributes:
            return None
        if not node.entry_type.is_tabular:
            return None
        return Previous(
            self.reader.dataset([latest], node.path), dict(latest.attributes["source_versions"])
        )

    def materialized_record(self, node: Node) -> OplogRecord | None:
        """A version written by a materialization whose sources are still current.

        A non-lazy factory's node (``ingest``) is only ever what it last materialized;
        a directory's materialized version lists its persisted children.
        """
        latest = node.latest
        if latest is None or not node.is_dynamic:
            return None
        factory, _ = self.factory_of(node)
        if not factory.lazy:
            return latest
        if "fingerprint" not in latest.attributes:
            return None
        if node.entry_type is not EntryType.DIRECTORY and not latest.blob:
            return None
        if latest.attributes["fingerprint"] != self.fingerprint(node):
            return None
        return latest

    # -- SQL -----------------------------------------------------------------------------
    def session(self) -> SqlSession:
        return SqlSession(timeout=self.query_timeout, connector=self.connector)

    def register(self, session: SqlSession, node: Node, window: TimeRange | None = None) -> str:
        """Make ``node`` a table of ``session``; returns its name there."""
        self._require_tabular(node)
        name = f"__pond_{self.fingerprint(node)[:20]}"
        if window is not None:
            name += f"_{abs(hash(window)):x}"
        if session.is_registered(name):
            return name
        relation = self._lazy_relation(node) if node.is_dynamic and window is None else None
        if relation is not None:
            inner = self._register_relation(session, node, relation)
            session.create_view(name, f"SELECT * FROM {quote(inner)}", {})
            return name
        session.register(name, self.dataset(node, window=window))
        return name

    def register_pattern(self, session: SqlSession, pattern: str, *, owner: str) -> str:
        """A path or glob as one table (a glob: the union of its matches by column name)."""
        nodes = [n for n in self.glob(pattern) if n.entry_type.is_tabular]
        if not nodes:
            raise NotFoundError(
                f"source {pattern!r} matches no table or series",
                subject=owner,
                hint="check the path, or create the source first",
            )
        names = [self.register(session, n) for n in nodes]
        if len(names) == 1:
            return names[0]
        union = "__pond_union_" + hashlib.sha256("|".join(names).encode()).hexdigest()[:20]
        if not session.is_registered(union):
            body = " UNION ALL BY NAME ".join(f"SELECT * FROM {quote(n)}" for n in names)
            session.create_view(union, body, {})
        return union

    def _lazy_relation(self, node: Node) -> SqlRelation | None:
        """A dynamic node's SQL, when it has one and no cached or materialized rows."""
        factory, config = self.factory_of(node)
        if self.materialized_record(node) is not None:
            return None
        if self.cache.lookup(self.fingerprint(node), factory.ttl(config)) is not None:
            return None
        output = self._produce(node)
        if isinstance(output, SqlRelation):
            return output
        meta = {"factory": factory.name, "path": node.path}
        if isinstance(output, (pa.Table, pa.RecordBatchReader)):
            self.cache.store_table(self.fingerprint(node), output, meta)
        return None

    def _register_relation(self, session: SqlSession, node: Node, relation: SqlRelation) -> str:
        bindings = {
            alias: self.register_pattern(session, pattern, owner=node.path)
            for alias, pattern in relation.tables.items()
        }
        name = f"__pond_sql_{self.fingerprint(node)[:20]}"
        if not session.is_registered(name):
            try:
                session.create_view(name, relation.query, bindings)
            except PondError as exc:
                raise self._failure(node, exc.message) from exc
        return name

    # -- internals -----------------------------------------------------------------------
    def _dynamic_dataset(self, node: Node) -> ds.Dataset:
        record = self.materialized_record(node)
        if record is not None:
            return self.reader.dataset([record], node.path)
        return self.cached_output(node).dataset()

    def produce(self, node: Node) -> Any:
        """Run the node's factory (errors name the node, the factory and the cause)."""
        return self._produce(node)

    def _produce(self, node: Node, previous: Previous | None = None) -> Any:
        factory, config = self.factory_of(node)
        self.fingerprint(node)  # cycles surface before any work
        context = ResolverContext(self, node)
        try:
            if previous is not None:
                return factory.produce_incremental(config, context, previous)
            return factory.produce(config, context)
        except PondError as exc:
            raise self._failure(node, exc.message) from exc
        except Exception as exc:
            raise self._failure(node, f"{type(exc).__name__}: {exc}") from exc

    def _failure(self, node: Node, cause: str) -> FactoryError:
        return FactoryError(f"factory {node.factory!r} failed: {cause}", subject=node.path)

    def _persisted(self, path: str, node_id: str) -> Node:
        versions = tuple(self.view.versions(node_id))
        if not versions:
            raise NotFoundError("no such file or directory", subject=path)
        latest = versions[-1]
        raw = registry.decode_config(latest.content) if latest.is_dynamic else {}
        return Node(path, EntryType(latest.entry_type), latest.factory, node_id, versions, raw)

    def _transient(self, parent: Node, spec: ChildSpec) -> Node:
        path = paths.join(parent.path, spec.name)
        factory = registry.get(spec.factory)
        config = registry.validate(factory, spec.config, subject=path)
        self._configs[path] = (factory, config)
        return Node(path, factory.entry_type(config), spec.factory, None, (), dict(spec.config))

    def _select_versions(self, node: Node, version: int | None) -> list[OplogRecord]:
        records = list(node.versions)
        if version is not None:
            chosen = [r for r in records if r.version == version]
            if not chosen:
                raise NotFoundError(
                    f"no version {version}",
                    subject=node.path,
                    hint=f"versions are 1..{records[-1].version}" if records else None,
                )
            return chosen
        if node.entry_type is EntryType.SERIES:
            return records
        return records[-1:]

    def _require_tabular(self, node: Node) -> None:
        if not node.entry_type.is_tabular:
            raise ConflictError(
                f"is a {node.entry_type.short}, not a table or series",
                subject=node.path,
                hint="`pond cat` prints data files as bytes"
                if node.entry_type is EntryType.DATA
                else None,
            )


class ResolverContext:
    """The ``FactoryContext`` a factory gets: reads limited to its declared sources."""

    def __init__(self, resolver: Resolver, node: Node):
        self._resolver = resolver
        self._node = node
        self._declared = [paths.split(p) for p in resolver.source_patterns(node)]

    @property
    def path(self) -> str:
        return self._node.path

    def glob(self, pattern: str) -> list[str]:
        return [n.path for n in self._resolver.glob(pattern) if self._allowed(n.path)]

    def entry_type(self, path: str) -> EntryType:
        return self._get(path).entry_type

    def schema(self, path: str) -> pa.Schema:
        return self._resolver.schema(self._get(path))

    def time_column(self, path: str) -> str | None:
        return self._resolver.time_column(self._get(path))

    def dataset(
        self, path: str, start: datetime | None = None, end: datetime | None = None
    ) -> ds.Dataset:
        window = TimeRange(start, end) if start is not None or end is not None else None
        return self._resolver.dataset(self._get(path), window=window)

    def versions(self, path: str) -> list[SourceVersion]:
        node = self._get(path)
        if node.is_dynamic or node.entry_type is not EntryType.SERIES:
            return []
        return [
            SourceVersion(r.version, r.min_event_time, r.max_event_time, r.attributes.get("rows"))
            for r in node.versions
        ]

    def config_of(self, path: str) -> tuple[str, dict[str, Any]]:
        node = self._get(path)
        if not node.is_dynamic:
            raise ConfigError("is a static file, not a dynamic node", subject=node.path)
        return node.factory, registry.expand_env(node.raw_config, subject=node.path)

    def record_metric(self, name: str, value: int | float | str) -> None:
        self._resolver.metrics.setdefault(self._node.path, {})[name] = value

    def read_bytes(self, path: str) -> bytes:
        return self._resolver.read_bytes(self._get(path))

    def read_csv(self, path: str) -> pa.Table:
        return self._resolver.read_csv(self._get(path))

    def query(self, sql: str, tables: dict[str, str]) -> pa.Table:
        for pattern in tables.values():
            self._check(paths.normalize(pattern))
        with self._resolver.session() as session:
            bindings = {
                alias: self._resolver.register_pattern(session, pattern, owner=self._node.path)
                for alias, pattern in tables.items()
            }
            return session.query(sql, bindings)

    def host_root(self) -> Path | None:
        return self._resolver.host_root

    def _get(self, path: str) -> Node:
        normalized = paths.normalize(path)
        self._check(normalized)
        return self._resolver.resolve(normalized)

    def _check(self, pattern: str) -> None:
        if not self._allowed(pattern):
            raise ConfigError(
                f"reads {pattern!r}, which is not among its declared sources",
                subject=self._node.path,
                hint="add it to the node's sources",
            )

    def _allowed(self, path: str) -> bool:
        segments = paths.split(path)
        return any(
            paths.match_segments(declared, segments) or declared == segments
            for declared in self._declared
        )


def _bound_scalar(bound: datetime, column_type: pa.DataType) -> pa.Scalar:
    from datetime import UTC

    aware = bound if bound.tzinfo else bound.replace(tzinfo=UTC)
    if pa.types.is_timestamp(column_type):
        value = aware if column_type.tz else aware.astimezone(UTC).replace(tzinfo=None)
        return pa.scalar(value, type=column_type)
    return pa.scalar(aware.date(), type=column_type)


def _scratch_path(folder: Path, suffix: str) -> Path:
    import os
    import tempfile

    handle, name = tempfile.mkstemp(dir=folder, suffix=suffix)
    os.close(handle)
    return Path(name)


def dynamic_paths(resolver: Resolver, root: str = "/") -> list[Node]:
    """Every persisted dynamic node below ``root``, and the children dynamic directories
    declare in their config (``dynamic_dir`` entries); other listings are not produced."""
    found: list[Node] = []

    def visit(node: Node) -> None:
        if node.is_dynamic:
            found.append(node)
            factory, config = resolver.factory_of(node)
            if factory.declared_children(config) is not None:
                for child in resolver.children(node).values():
                    visit(child)
            return
        if node.entry_type is EntryType.DIRECTORY:
            for child in resolver.children(node).values():
                visit(child)

    visit(resolver.resolve(root))
    return found


def derivation_order(resolver: Resolver, nodes: Sequence[Node]) -> list[Node]:
    """Nodes sorted so every node comes after the dynamic nodes it reads."""
    by_path = {n.path: n for n in nodes}
    ordered: list[Node] = []
    state: dict[str, int] = {}

    def visit(node: Node, stack: tuple[str, ...]) -> None:
        if state.get(node.path) == 2:
            return
        if state.get(node.path) == 1:
            cycle = " -> ".join([*stack[stack.index(node.path) :], node.path])
            raise ConfigError(
                f"derivation cycle: {cycle}",
                subject=node.path,
                hint="change a source so the nodes do not read each other",
            )
        state[node.path] = 1
        for dependency in upstream_dynamic(resolver, node, by_path.values()):
            visit(dependency, (*stack, node.path))
        state[node.path] = 2
        ordered.append(node)

    for node in nodes:
        visit(node, ())
    return ordered


def upstream_dynamic(resolver: Resolver, node: Node, candidates: Any) -> list[Node]:
    """The persisted dynamic nodes among ``candidates`` that ``node``'s sources may read:
    matched by a source pattern, or a dynamic directory a pattern descends into."""
    found = []
    patterns = [paths.split(p) for p in resolver.source_patterns(node)]
    for candidate in candidates:
        segments = paths.split(candidate.path)
        for pattern in patterns:
            inside = candidate.entry_type is EntryType.DIRECTORY and paths.could_descend(
                pattern, segments
            )
            if paths.match_segments(pattern, segments) or inside:
                found.append(candidate)
                break
    return found
