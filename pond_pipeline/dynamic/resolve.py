"""Any pond path to its content, static or dynamic, as of one view of the tree.

A ``Resolver`` composes the pieces of the dynamic layer for one view and is what the
``Pond`` facade hands out; each piece does one thing:

- ``namespace``: paths to ``Node``s (resolve, list, glob, walk);
- ``configs``: each dynamic node's factory and validated config;
- ``fingerprints``: a node's cache key (factory, config, factory version, and the
  fingerprints of every source it reads), refusing derivation cycles;
- ``production``: running a factory through the cache, and what materializations left;
- ``reads``: datasets, schemas, bytes and CSV of any node;
- ``sql``: nodes and globs as tables of a DuckDB session;
- ``context``: the ``FactoryContext`` a factory gets (``NodeContext``).

The pieces that need each other in a loop (a dynamic directory's listing is produced,
production fingerprints, fingerprints glob; a ``SqlRelation`` output runs in a session
that registers other nodes) reach one another through this resolver.
"""

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.dataset as ds

from pond_pipeline.dynamic.cache import CacheEntry, MaterializationCache
from pond_pipeline.dynamic.configs import FactoryConfigs
from pond_pipeline.dynamic.context import NodeContext
from pond_pipeline.dynamic.fingerprints import Fingerprints
from pond_pipeline.dynamic.namespace import Namespace
from pond_pipeline.dynamic.nodes import Node, TimeRange
from pond_pipeline.dynamic.production import Production
from pond_pipeline.dynamic.reads import NodeReader
from pond_pipeline.dynamic.sql import SqlTables
from pond_pipeline.factory import Factory, FactoryConfig, Previous, SqlRelation
from pond_pipeline.fs.reader import PayloadReader
from pond_pipeline.fs.tree import TreeView
from pond_pipeline.query.engine import Connector, SqlSession
from pond_pipeline.store.oplog import OplogRecord

__all__ = ["Node", "Resolver", "TimeRange", "dynamic_paths"]


class Resolver:
    def __init__(
        self,
        view: TreeView,
        reader: PayloadReader,
        cache: MaterializationCache,
        *,
        scratch: Path,
        query_timeout: float | None = None,
        host_root: Path | None = None,
        connector: Connector | None = None,
    ):
        self.view = view
        self.host_root = host_root
        self.metrics: dict[str, dict[str, int | float | str]] = {}
        """Figures factories reported while producing, by node path."""
        self.configs = FactoryConfigs()
        self.namespace = Namespace(view, self.configs, content=self)
        self.fingerprints = Fingerprints(self.configs, self.namespace)
        self.production = Production(
            self.configs,
            self.fingerprints,
            self.namespace,
            cache,
            reader,
            relations=self,
            context=self.factory_context,
        )
        self.reads = NodeReader(self.configs, self.production, reader, scratch=scratch)
        self.sql = SqlTables(
            self.namespace,
            self.fingerprints,
            self.production,
            self.reads,
            query_timeout=query_timeout,
            connector=connector,
        )

    def factory_context(self, node: Node) -> NodeContext:
        """What ``node``'s factory may read while it produces."""
        return NodeContext(
            node,
            namespace=self.namespace,
            reads=self.reads,
            sql=self.sql,
            metrics=self.metrics,
            host_root=self.host_root,
        )

    # -- naming: namespace ---------------------------------------------------------------
    def resolve(self, path: str, *, follow: bool = True) -> Node:
        return self.namespace.resolve(path, follow=follow)

    def exists(self, path: str) -> bool:
        return self.namespace.exists(path)

    def children(self, node: Node) -> dict[str, Node]:
        return self.namespace.children(node)

    def glob(self, pattern: str, *, follow_links: bool = True) -> list[Node]:
        return self.namespace.glob(pattern, follow_links=follow_links)

    def walk_static(self, node: Node) -> Iterator[Node]:
        return self.namespace.walk_static(node)

    def walk_all(self, node: Node) -> Iterator[Node]:
        return self.namespace.walk_all(node)

    # -- factories: configs, fingerprints, production ------------------------------------
    def factory_of(self, node: Node) -> tuple[Factory[Any], FactoryConfig]:
        return self.configs.factory_of(node)

    def source_patterns(self, node: Node) -> list[str]:
        return self.configs.source_patterns(node)

    def fingerprint(self, node: Node) -> str:
        return self.fingerprints.fingerprint(node)

    def produce(self, node: Node) -> Any:
        return self.production.produce(node)

    def cached_output(self, node: Node, previous: Previous | None = None) -> CacheEntry:
        return self.production.cached_output(node, previous)

    def previous(self, node: Node) -> Previous | None:
        return self.production.previous(node)

    def materialized_record(self, node: Node) -> OplogRecord | None:
        return self.production.materialized_record(node)

    def source_versions(self, node: Node) -> dict[str, int]:
        return self.production.source_versions(node)

    # -- reading -------------------------------------------------------------------------
    def time_column(self, node: Node) -> str | None:
        return self.reads.time_column(node)

    def schema(self, node: Node) -> pa.Schema:
        return self.reads.schema(node)

    def dataset(
        self, node: Node, *, version: int | None = None, window: TimeRange | None = None
    ) -> ds.Dataset:
        return self.reads.dataset(node, version=version, window=window)

    def version_table(self, node: Node, record: OplogRecord) -> pa.Table:
        return self.reads.version_table(node, record)

    def read_bytes(self, node: Node, *, version: int | None = None) -> bytes:
        return self.reads.read_bytes(node, version=version)

    # -- SQL -----------------------------------------------------------------------------
    def session(self) -> SqlSession:
        return self.sql.session()

    def register(self, session: SqlSession, node: Node, window: TimeRange | None = None) -> str:
        return self.sql.register(session, node, window)

    def register_pattern(self, session: SqlSession, pattern: str, *, owner: str) -> str:
        return self.sql.register_pattern(session, pattern, owner=owner)

    def register_relation(self, session: SqlSession, node: Node, relation: SqlRelation) -> str:
        return self.sql.register_relation(session, node, relation)


def dynamic_paths(resolver: Resolver, root: str = "/") -> list[Node]:
    """Every persisted dynamic node below ``root``, and the children dynamic directories
    declare in their config (``dynamic_dir`` entries); other listings are not produced."""
    return resolver.namespace.dynamic_paths(root)
