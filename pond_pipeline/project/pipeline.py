"""A pipeline: the dynamic nodes of ``pond.yaml`` (validated against the installed
factories), plus the pond's other persisted dynamic nodes, and how they depend on each
other (``dynamic.graph``)."""

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from pond_pipeline import paths
from pond_pipeline.api import Pond, PondOptions
from pond_pipeline.dynamic import graph, registry
from pond_pipeline.errors import ConfigError, ConflictError, NotFoundError
from pond_pipeline.factory import EntryType, Factory, FactoryConfig
from pond_pipeline.project import pond_yaml
from pond_pipeline.project.locate import project_file


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
    origin: str | None = None
    """The name of the file that declares it (its ``declared_by`` mark in the pond)."""
    as_of: int | None = None
    """The pond's last transaction when this node's declaration was read with it."""
    serving: tuple["PipelineNode", ...] = ()
    """Declared nodes it reads that only serve others (no asset of their own)."""

    @property
    def declaration(self) -> "Declaration":
        return Declaration(
            self.factory.name, self.raw_config, self.refresh, self.origin, self.as_of
        )

    @property
    def description(self) -> str | None:
        return self.spec.description if self.spec else None

    @property
    def prerequisites(self) -> list[tuple[str, "Declaration"]]:
        """What its run applies first: the directory declaring it as an entry, and the
        declared nodes that only serve it (they have no run of their own)."""
        found = [(self.declared_in.path, self.declared_in.declaration)] if self.declared_in else []
        return found + [(node.path, node.declaration) for node in self.serving]

    @property
    def is_asset(self) -> bool:
        """Whether it runs as a Dagster asset (a node only serving others does not)."""
        return self.factory.is_runnable(self.config)


@dataclass(frozen=True)
class Declaration:
    """A node as ``pond.yaml`` declares it: what ``apply`` writes when the pond differs."""

    factory: str
    config: dict[str, Any]
    refresh: str | None = None
    origin: str | None = None
    """The file that declares it (stored as the node's ``declared_by`` mark)."""
    as_of: int | None = None
    """The pond's transaction when the file was read: a declaration the pond changed
    after it is older than the pond's, and never written back."""


@dataclass
class Pipeline:
    project: pond_yaml.Project
    nodes: list[PipelineNode]
    """In derivation order: every node after the nodes it reads."""
    upstream: dict[str, list[str]] = field(default_factory=dict)
    declared: list[PipelineNode] = field(default_factory=list)
    """The nodes of ``pond.yaml``, in the file's order."""

    @property
    def assets(self) -> list[PipelineNode]:
        """The nodes that run as Dagster assets, in derivation order."""
        return [node for node in self.nodes if node.is_asset]

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
        declared = _as_of(declared, pond.last_txn)
        nodes = dict(declared)
        for persisted in _persisted_nodes(pond):
            nodes.setdefault(persisted.path, persisted)
    upstream = graph.upstream_index(
        graph.Vertex(
            node.path,
            node.sources,
            node.entry_type is EntryType.DIRECTORY,
            node.factory.declared_children(node.config) is not None,
        )
        for node in nodes.values()
    )
    try:
        order = graph.derivation_order(upstream)
    except graph.DerivationCycleError as exc:
        raise project.error(exc.reason, "nodes", exc.cycle[0], hint=exc.hint) from exc
    for path, node in nodes.items():
        node.serving = tuple(
            nodes[p] for p in upstream[path] if nodes[p].spec is not None and not nodes[p].is_asset
        )
    return Pipeline(project, [nodes[path] for path in order], upstream, list(declared.values()))


def _as_of(declared: dict[str, PipelineNode], txn: int) -> dict[str, PipelineNode]:
    """The declared nodes as read with the pond at transaction ``txn`` (copies; an entry
    keeps pointing at its directory's copy)."""
    copies: dict[str, PipelineNode] = {}
    for path, node in declared.items():
        parent = copies.get(node.declared_in.path) if node.declared_in else None
        copies[path] = replace(node, as_of=txn, declared_in=parent)
    return copies


def open_pond(
    pipeline: Pipeline,
    *,
    create: bool = False,
    uri: str | None = None,
    options: PondOptions | None = None,
) -> Pond:
    """The pipeline's pond (``uri`` overrides the file's ``pond:``), with relative host
    paths resolved against ``pond.yaml``'s folder; ``create`` makes it when missing."""
    chosen = replace(options or PondOptions(), host_root=pipeline.project.folder)
    location = pipeline.project.pond_uri(uri)
    try:
        return Pond.open(location, chosen)
    except NotFoundError:
        if not create:
            raise
    try:
        return Pond.create(location, options=chosen)
    except ConflictError:  # another process created it meanwhile (two applies at once)
        return Pond.open(location, chosen)


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
        origin=project.path.name,
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
    return [
        PipelineNode(
            node.path,
            node.factory,
            node.config,
            dict(node.raw_config),
            node.entry_type,
            list(node.sources),
            None,
            node.refresh,
        )
        for node in pond.dynamic_nodes()
        if node.factory is not None and node.config is not None
    ]


def static_inputs(pond: Pond, pipeline: Pipeline) -> dict[str, list[str]]:
    """For each node, the static files (outside dynamic directories) its sources match."""
    static_segments = [(s, paths.split(s)) for s in pond.static_files()]
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
