"""Each dynamic node's factory and validated config, validated once per path and view."""

from typing import Any

from pond_pipeline import paths
from pond_pipeline.dynamic import registry
from pond_pipeline.dynamic.nodes import Node
from pond_pipeline.factory import Factory, FactoryConfig


class FactoryConfigs:
    def __init__(self) -> None:
        self._by_path: dict[str, tuple[Factory[Any], FactoryConfig]] = {}

    def factory_of(self, node: Node) -> tuple[Factory[Any], FactoryConfig]:
        if node.path not in self._by_path:
            return self.validate(node.path, node.factory, node.raw_config)
        return self._by_path[node.path]

    def validate(
        self, path: str, factory_name: str, raw_config: dict[str, Any]
    ) -> tuple[Factory[Any], FactoryConfig]:
        """The node at ``path`` is ``factory_name`` with ``raw_config`` (validated now)."""
        factory = registry.get(factory_name)
        config = registry.validate(factory, raw_config, subject=path)
        self._by_path[path] = (factory, config)
        return factory, config

    def source_patterns(self, node: Node) -> list[str]:
        """The normalized paths and globs a dynamic node reads (none for a static one)."""
        if not node.is_dynamic:
            return []
        factory, config = self.factory_of(node)
        return [paths.normalize(p) for p in factory.sources(config)]
