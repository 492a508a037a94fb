"""What the pond holds, as the API reports it: ``pond list`` rows and dynamic nodes."""

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pond_pipeline.dynamic.nodes import Node
from pond_pipeline.dynamic.resolve import Resolver, dynamic_paths
from pond_pipeline.errors import (
    PondError,
)
from pond_pipeline.factory import EntryType, Factory, FactoryConfig


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


def dynamic_nodes_of(resolver: Resolver) -> list[DynamicNode]:
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


def info_of(node: Node) -> NodeInfo:
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
