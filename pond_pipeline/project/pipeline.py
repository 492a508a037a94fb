"""A pipeline: the dynamic nodes of ``pond.yaml`` (validated against the installed
factories), how they depend on each other, and ``apply``, which reconciles the pond
with the file in one transaction."""

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from pond_pipeline import config as pond_yaml
from pond_pipeline import paths
from pond_pipeline.api import Pond
from pond_pipeline.dynamic import registry
from pond_pipeline.dynamic.resolve import Node, dynamic_paths
from pond_pipeline.errors import ConfigError, NotFoundError, PondError
from pond_pipeline.factory import EntryType, Factory, FactoryConfig
from pond_pipeline.materialize import Declaration, is_current

DECLARED_BY = "declared_by"


@dataclass
class PipelineNode:
    """One dynamic node of the pipeline, from ``pond.yaml`` or persisted in the pond."""

    path: str
    factory: Factory[Any]
    config: FactoryConfig
    raw_config: dict[str, Any]
    entry_type: EntryType
    sources: list[str]
    spec: pond_yaml.NodeSpec | None = None
    """``None`` for a node that lives only in the pond (made with ``mknod``)."""
    refresh: str | None = None
    declared_in: "PipelineNode | None" = None
    """For an entry of a directory ``pond.yaml`` declares (``dynamic_dir``): that node."""

    @property
    def declaration(self) -> Declaration:
        return Declaration(self.factory.name, self.raw_config, self.refresh)

    @property
    def description(self) -> str | None:
        return self.spec.description if self.spec else None


@dataclass
class Pipeline:
    project: pond_yaml.Project
    nodes: list[PipelineNode]
    """In derivation order: every node after the nodes it reads."""
    upstream: dict[str, list[str]] = field(default_factory=dict)
    declared: list[PipelineNode] = field(default_factory=list)
    """The nodes of ``pond.yaml``, in the file's order."""

    def node(self, path: str) -> PipelineNode:
        normalized = paths.normalize(path)
        for node in self.nodes:
            if node.path == normalized:
                return node
        raise NotFoundError(
            "is not a dynamic node of this pipeline",
            subject=normalized,
            hint="see `pond list` or pond.yaml",
        )


@dataclass(frozen=True)
class PlanItem:
    action: str  # create | update | unchanged | remove
    path: str
    factory: str


def project_file(path: str | Path | None = None) -> Path:
    """``path``, else env ``POND_CONFIG``, else ``pond.yaml`` in the working directory."""
    return Path(path or os.environ.get("POND_CONFIG") or pond_yaml.DEFAULT_FILE)


def load(path: str | Path | None = None, *, pond: Pond | None = None) -> Pipeline:
    """The validated pipeline of ``pond.yaml``, plus (with ``pond``) the pond's other
    persisted dynamic nodes. Never writes."""
    project = pond_yaml.load(project_file(path))
    nodes: dict[str, PipelineNode] = {}
    for key, spec in project.spec.nodes.items():
        node = _declared(project, key, spec)
        for member in [node, *_declared_children(project, key, node)]:
            if member.path in nodes:
                raise project.error(f"duplicate node path {member.path!r}", "nodes", key)
            nodes[member.path] = member
    return _assemble(project, nodes, pond)


def with_pond(pipeline: Pipeline, pond: Pond) -> Pipeline:
    """``pipeline`` (loaded without a pond) plus the pond's other persisted dynamic nodes:
    what ``load(path, pond=pond)`` gives, without reading and validating the file again."""
    return _assemble(pipeline.project, {node.path: node for node in pipeline.declared}, pond)


def _assemble(
    project: pond_yaml.Project, declared: dict[str, PipelineNode], pond: Pond | None
) -> Pipeline:
    nodes = dict(declared)
    if pond is not None:
        for persisted in _persisted_nodes(pond):
            nodes.setdefault(persisted.path, persisted)
    index = _PathIndex(nodes.values())
    upstream = {path: _not_above(path, index.upstream(node)) for path, node in nodes.items()}
    for path, node in nodes.items():
        if node.factory.declared_children(node.config) is not None:
            upstream[path] = _through_children(path, upstream)
    order = _derivation_order(project, nodes, upstream)
    return Pipeline(project, order, upstream, list(declared.values()))


def open_pond(pipeline: Pipeline, *, create: bool = False) -> Pond:
    uri = pipeline.project.pond_uri
    try:
        pond = Pond.open(uri)
    except NotFoundError:
        if not create:
            raise
        pond = Pond.create(uri)
    pond.host_root = pipeline.project.folder
    return pond


def plan(pond: Pond, pipeline: Pipeline, *, prune: bool = False) -> list[PlanItem]:
    items: list[PlanItem] = []
    resolver = pond.resolver()
    declared_paths = set()
    for node in pipeline.nodes:
        if node.spec is None:
            continue
        declared_paths.add(node.path)
        try:
            current = resolver.resolve(node.path, follow=False)
        except NotFoundError:
            items.append(PlanItem("create", node.path, node.factory.name))
            continue
        action = "unchanged" if is_current(current, node.declaration) else "update"
        items.append(PlanItem(action, node.path, node.factory.name))
    if prune:
        origin = _origin(pipeline)
        for persisted in dynamic_paths(resolver):
            latest = persisted.latest
            if (
                persisted.path not in declared_paths
                and latest is not None
                and latest.attributes.get(DECLARED_BY) == origin
            ):
                items.append(PlanItem("remove", persisted.path, persisted.factory))
    return items


def apply(
    pond: Pond, pipeline: Pipeline, *, prune: bool = False, dry_run: bool = False
) -> list[PlanItem]:
    """Reconcile the pond with ``pond.yaml`` in one transaction; returns the plan."""
    items = plan(pond, pipeline, prune=prune)
    if dry_run or all(item.action == "unchanged" for item in items):
        return items
    origin = _origin(pipeline)
    by_path = {node.path: node for node in pipeline.nodes}
    with pond.transaction(f"apply {pipeline.project.path.name}") as tx:
        for item in items:
            if item.action == "remove":
                tx.remove(item.path, recursive=True)
            elif item.action in ("create", "update"):
                node = by_path[item.path]
                tx.create_dynamic(
                    node.path,
                    node.factory.name,
                    node.raw_config,
                    overwrite=item.action == "update",
                    refresh=node.refresh,
                    attributes={DECLARED_BY: origin},
                    check_cycles=False,
                )
        tx.check_cycles()  # once for the whole file, with every node in place
    return items


def _origin(pipeline: Pipeline) -> str:
    return pipeline.project.path.name


def _declared(project: pond_yaml.Project, key: str, spec: pond_yaml.NodeSpec) -> PipelineNode:
    try:
        path = paths.normalize(key)
    except ConfigError as exc:
        raise project.error(exc.reason, "nodes", key) from exc
    try:
        factory = registry.get(spec.factory)
    except ConfigError as exc:
        raise project.error(exc.reason, "nodes", key, "factory", hint=exc.hint) from exc
    try:
        typed = factory.Config.model_validate(registry.expand_env(spec.config, subject=path))
    except ValidationError as exc:
        first = exc.errors()[0]
        location = tuple(str(p) for p in first["loc"])
        reason = registry.describe_validation(exc)
        raise project.error(
            f"invalid config for factory {factory.name!r}: {reason}",
            "nodes",
            key,
            "config",
            *location,
            hint=f"see `pond factories` for the fields of {factory.name}",
        ) from exc
    except ConfigError as exc:
        raise project.error(exc.reason, "nodes", key, "config", hint=exc.hint) from exc
    try:
        sources = [paths.normalize(p) for p in factory.sources(typed)]
    except ConfigError as exc:
        raise project.error(exc.reason, "nodes", key, "config") from exc
    return PipelineNode(
        path,
        factory,
        typed,
        dict(spec.config),
        factory.entry_type(typed),
        sources,
        spec,
        spec.refresh,
    )


def _declared_children(
    project: pond_yaml.Project, key: str, parent: PipelineNode
) -> list[PipelineNode]:
    """The children a directory declares in its config (``dynamic_dir`` entries), each a
    node of its own; they share the directory's refresh."""
    found = []
    for index, child in enumerate(parent.factory.declared_children(parent.config) or []):
        path = paths.join(parent.path, child.name)
        where = ("nodes", key, "config", "entries", str(index))
        try:
            factory = registry.get(child.factory)
            typed = factory.Config.model_validate(registry.expand_env(child.config, subject=path))
        except ValidationError as exc:
            raise project.error(
                f"entry {child.name!r}: invalid config for factory {child.factory!r}: "
                f"{registry.describe_validation(exc)}",
                *where,
                "config",
            ) from exc
        except ConfigError as exc:
            raise project.error(
                f"entry {child.name!r}: {exc.reason}", *where, hint=exc.hint
            ) from exc
        node = PipelineNode(
            path,
            factory,
            typed,
            dict(child.config),
            factory.entry_type(typed),
            [paths.normalize(p) for p in factory.sources(typed)],
            None,
            parent.refresh,
            parent.declared_in or parent,
        )
        found.extend([node, *_declared_children(project, key, node)])
    return found


def _persisted_nodes(pond: Pond) -> list[PipelineNode]:
    resolver = pond.resolver()
    found = []
    for node in dynamic_paths(resolver):
        try:
            factory, typed = resolver.factory_of(node)
        except PondError:
            continue  # a broken persisted node must not hide the rest of the pipeline
        refresh = node.latest.attributes.get("refresh") if node.latest else None
        found.append(
            PipelineNode(
                node.path,
                factory,
                typed,
                dict(node.raw_config),
                node.entry_type,
                [paths.normalize(p) for p in factory.sources(typed)],
                None,
                refresh,
            )
        )
    return found


def _not_above(path: str, upstream: list[str]) -> list[str]:
    """A node never depends on a directory that contains it."""
    return [p for p in upstream if not path.startswith(p.rstrip("/") + "/")]


def _through_children(path: str, upstream: dict[str, list[str]]) -> list[str]:
    """A directory of declared children reads what its children read from outside it,
    so it runs after their sources (and its children's own order stays theirs)."""
    inside = path.rstrip("/") + "/"
    found = set(upstream[path])
    for child, sources in upstream.items():
        if child.startswith(inside):
            found.update(s for s in sources if s != path and not s.startswith(inside))
    return sorted(found)


class _PathIndex:
    """Which candidates each node reads: matched by one of its source patterns, or a
    directory that a pattern reaches into. A literal pattern can only match the
    candidate at its own path or a directory above it, found by lookup (no scan over
    every pair, which made loading 500 nodes take seconds); a glob is matched by scan."""

    def __init__(self, candidates: Any):
        self.items = [
            (c.path, paths.split(c.path), c.entry_type is EntryType.DIRECTORY) for c in candidates
        ]
        self.position = {tuple(segments): i for i, (_, segments, _) in enumerate(self.items)}

    def upstream(self, node: PipelineNode) -> list[str]:
        hits: set[int] = set()
        for pattern in node.sources:
            wanted = paths.split(pattern)
            if paths.is_glob(pattern):
                hits.update(
                    i
                    for i, (_, segments, is_directory) in enumerate(self.items)
                    if paths.match_segments(wanted, segments)
                    or (is_directory and paths.could_descend(wanted, segments))
                )
                continue
            exact = self.position.get(tuple(wanted))
            if exact is not None:
                hits.add(exact)
            for end in range(len(wanted)):
                above = self.position.get(tuple(wanted[:end]))
                if above is not None and self.items[above][2]:
                    hits.add(above)
        return [self.items[i][0] for i in sorted(hits)]


def _derivation_order(
    project: pond_yaml.Project,
    nodes: dict[str, PipelineNode],
    upstream: dict[str, list[str]],
) -> list[PipelineNode]:
    ordered: list[PipelineNode] = []
    state: dict[str, int] = {}

    def visit(path: str, stack: tuple[str, ...]) -> None:
        if state.get(path) == 2:
            return
        if state.get(path) == 1 or path in upstream[path]:
            loop = [*stack[stack.index(path) :], path] if path in stack else [path, path]
            raise project.error(
                f"derivation cycle: {' -> '.join(loop)}",
                "nodes",
                path,
                hint="change a source so the nodes do not read each other",
            )
        state[path] = 1
        for dependency in upstream[path]:
            visit(dependency, (*stack, path))
        state[path] = 2
        ordered.append(nodes[path])

    for path in nodes:
        visit(path, ())
    return ordered


def static_inputs(pond: Pond, pipeline: Pipeline) -> dict[str, list[str]]:
    """For each node, the static files (outside dynamic directories) its sources match."""
    resolver = pond.resolver()
    static: list[str] = []

    def visit(node: Node) -> None:
        if node.is_dynamic:
            return
        if node.entry_type is EntryType.DIRECTORY:
            for child in resolver.children(node).values():
                visit(child)
        elif node.path != "/":
            static.append(node.path)

    visit(resolver.resolve("/"))
    static_segments = [(s, paths.split(s)) for s in static]
    found: dict[str, list[str]] = {}
    for node in pipeline.nodes:
        literal = {p for p in node.sources if not paths.is_glob(p)}
        globs = [paths.split(p) for p in node.sources if paths.is_glob(p)]
        matched = [
            s
            for s, segments in static_segments
            if s in literal or any(paths.match_segments(p, segments) for p in globs)
        ]
        if matched:
            found[node.path] = matched
    return found
