"""A node's fingerprint: the cache key of its content, a digest of everything it depends
on (a static node: its id and latest version; a dynamic one: its factory, the factory's
version, its config, and the fingerprints of every source its patterns match now)."""

import hashlib
import json
from typing import Any

from pond_pipeline.dynamic import graph
from pond_pipeline.dynamic.configs import FactoryConfigs
from pond_pipeline.dynamic.namespace import Namespace
from pond_pipeline.dynamic.nodes import Node


class Fingerprints:
    def __init__(self, configs: FactoryConfigs, namespace: Namespace):
        self.configs = configs
        self.namespace = namespace
        self._by_path: dict[str, str] = {}

    def fingerprint(self, node: Node) -> str:
        """A digest of everything the node's content depends on; a node that reads itself,
        directly or through others, is a ``graph.DerivationCycleError`` starting at it."""
        return self._fingerprint(node, ())

    def _fingerprint(self, node: Node, reading: tuple[str, ...]) -> str:
        if node.path in self._by_path:
            return self._by_path[node.path]
        if node.path in reading:
            raise graph.DerivationCycleError([*reading[reading.index(node.path) :], node.path])
        if not node.is_dynamic:
            latest = node.latest
            parts: list[Any] = [node.node_id, latest.version if latest else 0]
        else:
            factory, config = self.configs.factory_of(node)
            sources = [
                (source.path, self._fingerprint(source, (*reading, node.path)))
                for pattern in self.configs.source_patterns(node)
                for source in self.namespace.glob(pattern)
            ]
            parts = [factory.name, factory.version, config.model_dump(mode="json"), sorted(sources)]
        digest = hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()
        self._by_path[node.path] = digest
        return digest
