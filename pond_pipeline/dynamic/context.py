"""The ``FactoryContext`` a factory gets while producing one node: reads of the pond
limited to the node's declared sources, and a place to report figures."""

from datetime import datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.dataset as ds

from pond_pipeline import paths
from pond_pipeline.dynamic import registry
from pond_pipeline.dynamic.namespace import Namespace
from pond_pipeline.dynamic.nodes import Node, TimeRange
from pond_pipeline.dynamic.reads import NodeReader
from pond_pipeline.dynamic.sql import SqlTables
from pond_pipeline.errors import ConfigError
from pond_pipeline.factory import EntryType, SourceVersion


class NodeContext:
    def __init__(
        self,
        node: Node,
        *,
        namespace: Namespace,
        reads: NodeReader,
        sql: SqlTables,
        metrics: dict[str, dict[str, int | float | str]],
        host_root: Path | None,
    ):
        self._node = node
        self._namespace = namespace
        self._reads = reads
        self._sql = sql
        self._metrics = metrics
        self._host_root = host_root
        self._declared = [paths.split(p) for p in namespace.configs.source_patterns(node)]

    @property
    def path(self) -> str:
        return self._node.path

    def glob(self, pattern: str) -> list[str]:
        return [n.path for n in self._namespace.glob(pattern) if self._allowed(n.path)]

    def entry_type(self, path: str) -> EntryType:
        return self._get(path).entry_type

    def schema(self, path: str) -> pa.Schema:
        return self._reads.schema(self._get(path))

    def time_column(self, path: str) -> str | None:
        return self._reads.time_column(self._get(path))

    def dataset(
        self, path: str, start: datetime | None = None, end: datetime | None = None
    ) -> ds.Dataset:
        window = TimeRange(start, end) if start is not None or end is not None else None
        return self._reads.dataset(self._get(path), window=window)

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
        self._metrics.setdefault(self._node.path, {})[name] = value

    def read_bytes(self, path: str) -> bytes:
        return self._reads.read_bytes(self._get(path))

    def read_csv(self, path: str, *, formats: dict[str, str] | None = None) -> pa.Table:
        return self._reads.read_csv(self._get(path), formats=formats)

    def query(self, sql: str, tables: dict[str, str]) -> pa.Table:
        for pattern in tables.values():
            self._check(paths.normalize(pattern))
        with self._sql.session() as session:
            bindings = {
                alias: self._sql.register_pattern(session, pattern, owner=self._node.path)
                for alias, pattern in tables.items()
            }
            return session.query(sql, bindings)

    def host_root(self) -> Path | None:
        return self._host_root

    def _get(self, path: str) -> Node:
        normalized = paths.normalize(path)
        self._check(normalized)
        return self._namespace.resolve(normalized)

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
