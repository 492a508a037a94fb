"""Pond paths to nodes, as of one view of the tree: resolving, listing static and dynamic
directories, globbing and walking. A dynamic directory lists what its factory produces
(or, once materialized with its sources unchanged, what it persisted)."""

from collections.abc import Iterator
from typing import Any, Protocol

from pond_pipeline import paths
from pond_pipeline.dynamic import registry
from pond_pipeline.dynamic.configs import FactoryConfigs
from pond_pipeline.dynamic.nodes import Node, factory_failure
from pond_pipeline.errors import ConflictError, DanglingLinkError, NotFoundError
from pond_pipeline.factory import ChildSpec, EntryType
from pond_pipeline.fs.tree import TreeView
from pond_pipeline.store.oplog import OplogRecord


class DynamicContent(Protocol):
    """What listing a dynamic directory needs of production."""

    def materialized_record(self, node: Node) -> OplogRecord | None: ...

    def produce(self, node: Node) -> Any: ...


class Namespace:
    def __init__(self, view: TreeView, configs: FactoryConfigs, content: DynamicContent):
        self.view = view
        self.configs = configs
        self.content = content
        self._children: dict[str, dict[str, Node]] = {}

    def resolve(self, path: str, *, follow: bool = True) -> Node:
        located = self.view.walk(path, follow=follow)
        node = self._persisted(located.path, located.node_id)
        for index, name in enumerate(located.rest):
            if node.entry_type is not EntryType.DIRECTORY:
                raise ConflictError("not a directory", subject=node.path)
            child = self.children(node).get(name)
            if child is None:
                link = located.link
                if link is not None and index < link.depth:  # the link's target is missing
                    raise DanglingLinkError(link.path, link.target)
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
        if not node.is_dynamic or self.content.materialized_record(node) is not None:
            assert node.node_id is not None
            return {
                name: self._persisted(paths.join(node.path, name), child_id)
                for name, child_id, _ in self.view.iter_children(node.node_id)
            }
        if node.path not in self._children:
            self._children[node.path] = self._produced_children(node)
        return self._children[node.path]

    def glob(self, pattern: str, *, follow_links: bool = True) -> list[Node]:
        """Nodes whose path matches ``pattern`` (``*``, ``?``, ``**``), sorted by path;
        a matched symlink stands for its target unless ``follow_links`` is false."""
        normalized = paths.normalize(pattern)
        if not paths.is_glob(normalized):
            try:
                return [self.resolve(normalized)]
            except NotFoundError:
                return []
        wanted = paths.split(normalized)
        prefix = paths.glob_prefix(normalized)
        start = "/" + "/".join(prefix)
        try:
            root = self.resolve(start)
        except NotFoundError:
            return []
        found = list(self._walk(root, prefix, wanted, follow_links))
        return sorted(found, key=lambda n: n.path)

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

    def dynamic_paths(self, root: str = "/") -> list[Node]:
        """Every persisted dynamic node below ``root``, and the children dynamic directories
        declare in their config (``dynamic_dir`` entries); other listings are not produced."""
        found: list[Node] = []

        def visit(node: Node) -> None:
            if node.is_dynamic:
                found.append(node)
                factory, config = self.configs.factory_of(node)
                if factory.declared_children(config) is not None:
                    for child in self.children(node).values():
                        visit(child)
                return
            if node.entry_type is EntryType.DIRECTORY:
                for child in self.children(node).values():
                    visit(child)

        visit(self.resolve(root))
        return found

    def _produced_children(self, node: Node) -> dict[str, Node]:
        listing = self.content.produce(node)
        if not isinstance(listing, list):
            raise factory_failure(node, "a directory factory must list child nodes")
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
        return children

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

    def _persisted(self, path: str, node_id: str) -> Node:
        versions = tuple(self.view.versions(node_id))
        if not versions:
            raise NotFoundError("no such file or directory", subject=path)
        latest = versions[-1]
        raw = registry.decode_config(latest.content) if latest.is_dynamic else {}
        return Node(path, EntryType(latest.entry_type), latest.factory, node_id, versions, raw)

    def _transient(self, parent: Node, spec: ChildSpec) -> Node:
        path = paths.join(parent.path, spec.name)
        factory, config = self.configs.validate(path, spec.factory, spec.config)
        return Node(path, factory.entry_type(config), spec.factory, None, (), dict(spec.config))
