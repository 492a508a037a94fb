"""Producing a dynamic node's content: running its factory (with the context that limits
it to its sources), through the materialization cache keyed by its fingerprint, and
what the node's last materialization left (``materialized_record``, ``previous``)."""

from collections.abc import Callable
from dataclasses import KW_ONLY, dataclass
from typing import Any, Protocol

import pyarrow as pa

from pond_pipeline.dynamic.cache import CacheEntry, MaterializationCache
from pond_pipeline.dynamic.configs import FactoryConfigs
from pond_pipeline.dynamic.fingerprints import Fingerprints
from pond_pipeline.dynamic.namespace import Namespace
from pond_pipeline.dynamic.nodes import Node, factory_failure
from pond_pipeline.errors import PondError
from pond_pipeline.factory import EntryType, FactoryContext, Previous, SqlRelation
from pond_pipeline.fs.reader import PayloadReader
from pond_pipeline.query.engine import SqlSession, quote
from pond_pipeline.store.oplog import OplogRecord


class Relations(Protocol):
    """What running a factory's ``SqlRelation`` needs of SQL registration."""

    def session(self) -> SqlSession: ...

    def register_relation(self, session: SqlSession, node: Node, relation: SqlRelation) -> str: ...


@dataclass(frozen=True)
class Production:
    configs: FactoryConfigs
    fingerprints: Fingerprints
    namespace: Namespace
    cache: MaterializationCache
    reader: PayloadReader
    _: KW_ONLY
    relations: Relations
    context: Callable[[Node], FactoryContext]
    """The context a factory gets while it produces the node."""

    def produce(self, node: Node, previous: Previous | None = None) -> Any:
        """Run the node's factory (errors name the node, the factory and the cause); with
        ``previous``, an incremental factory updates its last output instead."""
        factory, config = self.configs.factory_of(node)
        self.fingerprints.fingerprint(node)  # cycles surface before any work
        context = self.context(node)
        try:
            if previous is not None:
                return factory.produce_incremental(config, context, previous)
            return factory.produce(config, context)
        except PondError as exc:
            raise factory_failure(node, exc.message) from exc
        except Exception as exc:
            raise factory_failure(node, f"{type(exc).__name__}: {exc}") from exc

    def cached_output(self, node: Node, previous: Previous | None = None) -> CacheEntry:
        """The node's produced content, from the cache or freshly produced into it;
        with ``previous``, an incremental factory updates its last output instead."""
        factory, config = self.configs.factory_of(node)
        key = self.fingerprints.fingerprint(node)
        entry = self.cache.lookup(key, factory.ttl(config))
        if entry is not None:
            return entry
        output = self.produce(node, previous) if previous is not None else None
        if output is None:
            output = self.produce(node)
        meta = {"factory": factory.name, "path": node.path}
        if isinstance(output, bytes):
            if node.entry_type is not EntryType.DATA:
                raise factory_failure(node, "produced bytes for a table or series")
            return self.cache.store_bytes(key, output, meta)
        if isinstance(output, list):
            raise factory_failure(node, "produced a listing, but it is not a directory")
        if isinstance(output, SqlRelation):
            with self.relations.session() as session:
                name = self.relations.register_relation(session, node, output)
                return self.cache.store_table(
                    key, session.stream(f"SELECT * FROM {quote(name)}"), meta
                )
        return self.cache.store_table(key, output, meta)

    def lazy_relation(self, node: Node) -> SqlRelation | None:
        """A dynamic node's SQL, when it has one and no cached or materialized rows
        (rows it produced instead are cached)."""
        factory, config = self.configs.factory_of(node)
        if self.materialized_record(node) is not None:
            return None
        key = self.fingerprints.fingerprint(node)
        if self.cache.lookup(key, factory.ttl(config)) is not None:
            return None
        output = self.produce(node)
        if isinstance(output, SqlRelation):
            return output
        meta = {"factory": factory.name, "path": node.path}
        if isinstance(output, (pa.Table, pa.RecordBatchReader)):
            self.cache.store_table(key, output, meta)
        return None

    def source_versions(self, node: Node) -> dict[str, int]:
        """The latest version of every static series the node's sources match now."""
        found = {}
        for pattern in self.configs.source_patterns(node):
            for source in self.namespace.glob(pattern):
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
        factory, _ = self.configs.factory_of(node)
        if not factory.lazy:
            return latest
        if "fingerprint" not in latest.attributes:
            return None
        if node.entry_type is not EntryType.DIRECTORY and not latest.blob:
            return None
        if latest.attributes["fingerprint"] != self.fingerprints.fingerprint(node):
            return None
        return latest
