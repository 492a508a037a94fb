"""``pond apply``: reconcile the pond with ``pond.yaml`` — each declared node created,
updated or left unchanged, and (with ``prune``) the nodes an earlier apply of the file
created that it no longer declares removed — in one transaction.

Materializing a node applies its declaration the same way (``apply_declaration``), so
there is one decision of what a declaration changes.
"""

from dataclasses import dataclass
from typing import Literal, Protocol

from pond_pipeline import paths
from pond_pipeline.api import DynamicNode, Node, Pond, PondTransaction
from pond_pipeline.durations import normalize_refresh
from pond_pipeline.dynamic import graph, registry
from pond_pipeline.dynamic.sql_check import SqlCheckError
from pond_pipeline.errors import ConflictError, NotFoundError
from pond_pipeline.factory import EntryType
from pond_pipeline.project.pipeline import Declaration, Pipeline, PipelineNode

DECLARED_BY = "declared_by"
Action = Literal["create", "update", "unchanged", "remove"]


@dataclass(frozen=True)
class PlanItem:
    action: Action
    path: str
    factory: str


class _View(Protocol):
    """A pond as it is (``Pond``) or as a transaction leaves it (``PondTransaction``)."""

    def node(self, path: str, *, follow: bool = True) -> Node: ...

    def dynamic_nodes(self) -> list[DynamicNode]: ...


def plan(view: _View, pipeline: Pipeline, *, prune: bool = False) -> list[PlanItem]:
    """What ``apply`` would do, node by node, in the file's order (removals last)."""
    items: list[PlanItem] = []
    declared_paths = set()
    for node in pipeline.nodes:
        if node.spec is None:
            continue
        declared_paths.add(node.path)
        action = decide(_current(view, node.path, follow=False), node.declaration)
        items.append(PlanItem(action, node.path, node.factory.name))
    if prune:
        origin = _origin(pipeline)
        for persisted in view.dynamic_nodes():
            if (
                persisted.path not in declared_paths
                and persisted.attributes.get(DECLARED_BY) == origin
            ):
                items.append(PlanItem("remove", persisted.path, persisted.factory_name))
    return items


def plan_new(pipeline: Pipeline) -> list[PlanItem]:
    """The plan against a pond that does not exist yet: every declared node is created."""
    return [PlanItem("create", n.path, n.factory.name) for n in pipeline.nodes if n.spec]


def apply(
    pond: Pond, pipeline: Pipeline, *, prune: bool = False, dry_run: bool = False
) -> list[PlanItem]:
    """Reconcile the pond with ``pond.yaml`` in one transaction; returns the plan, decided
    under the write lock (so two applies at once both leave the pond equal to the file).
    Removing a node, or changing its type, while another node that stays reads it is
    refused, naming both; so is SQL DuckDB refuses, naming the file, line and key
    (checked once every node is in place); nothing is written then."""
    if dry_run:
        return plan(pond, pipeline, prune=prune)
    by_path = {node.path: node for node in pipeline.nodes}
    with pond.transaction(f"apply {pipeline.project.path.name}") as tx:
        items = plan(tx, pipeline, prune=prune)
        _check_readers(tx, pipeline, items)
        for item in items:
            if item.action == "remove":
                tx.remove(item.path, recursive=True)
            elif item.action != "unchanged":
                write_declaration(
                    tx,
                    item.path,
                    by_path[item.path].declaration,
                    item.action,
                    check_cycles=False,
                    check_sql=False,
                )
        if any(item.action != "unchanged" for item in items):
            tx.check_cycles()  # once for the whole file, with every node in place
        for item in items:  # in derivation order: a node's sources are checked first
            if item.action in ("create", "update"):
                _check_sql(tx, pipeline, item.path)
    return items


def apply_declaration(tx: PondTransaction, path: str, declared: Declaration) -> bool:
    """Create or update one node when its stored factory/config/refresh differ (what a
    materialization of a declared node does first); whether it wrote.

    A declaration read before the pond's changed (another ``apply`` since, or the node
    removed) is older than the pond's and is refused: a run never undoes an apply."""
    try:
        current: Node | None = tx.node(path)
    except Exception:  # noqa: BLE001 - absent (or unreadable): create it
        current = None
    action = decide(current, declared)
    if action == "unchanged":
        return False
    if declared.as_of is not None and not _same(_current_at(tx, path, declared.as_of), current):
        raise ConflictError(
            "pond.yaml changed since this run started; rerun",
            subject=path,
            hint="the pond holds a newer declaration (applied while this run ran)",
        )
    write_declaration(tx, path, declared, action)
    return True


def decide(current: Node | None, declared: Declaration) -> Action:
    """``create`` (absent), ``unchanged`` (same factory, config and refresh) or ``update``."""
    if current is None:
        return "create"
    stored_refresh = current.latest.attributes.get("refresh") if current.latest else None
    same = (
        current.factory == declared.factory
        and registry.encode_config(current.raw_config) == registry.encode_config(declared.config)
        and stored_refresh
        == (None if declared.refresh is None else normalize_refresh(declared.refresh))
    )
    return "unchanged" if same else "update"


def write_declaration(
    tx: PondTransaction,
    path: str,
    declared: Declaration,
    action: Action,
    *,
    check_cycles: bool = True,
    check_sql: bool = True,
) -> None:
    """The one way a declaration reaches the pond (``apply`` and materializations alike):
    the node carries the ``declared_by`` mark of its file, so ``--prune`` can remove it."""
    tx.create_dynamic(
        path,
        declared.factory,
        declared.config,
        overwrite=action == "update",
        refresh=declared.refresh,
        attributes={DECLARED_BY: declared.origin} if declared.origin else None,
        check_cycles=check_cycles,
        check_sql=check_sql,
    )


def _check_sql(tx: PondTransaction, pipeline: Pipeline, path: str) -> None:
    """The node's SQL (``tx.check_sql``); refused, an error naming the file, line and key."""
    try:
        tx.check_sql(path)
    except SqlCheckError as exc:
        keys = _config_keys(pipeline, exc.path)
        if keys is None:
            raise
        name = pipeline.project.path.name
        if exc.field:
            keys, hint = (*keys, exc.field), f"fix the {exc.field} in {name}"
        else:
            hint = f"fix its config in {name}"
        raise pipeline.project.error(exc.words, *keys, hint=hint) from exc


def _config_keys(pipeline: Pipeline, path: str) -> tuple[str, ...] | None:
    """Where the config of the declared node at ``path`` is in the file: under its key
    in ``nodes``, or as an entry (by position) of a directory the file declares."""
    tops = {paths.normalize(key): key for key in pipeline.project.spec.nodes}
    if path in tops:
        return ("nodes", tops[path], "config")
    declared = {node.path: node for node in pipeline.nodes}
    for top, key in tops.items():
        if path.startswith(top.rstrip("/") + "/"):
            found = _entry_keys(declared, top, paths.split(path)[len(paths.split(top)) :])
            if found is not None:
                return ("nodes", key, "config", *found)
    return None


def _entry_keys(
    declared: dict[str, PipelineNode], parent: str, names: list[str]
) -> tuple[str, ...] | None:
    """The keys, below ``parent``'s config, of the entry ``names`` leads to."""
    keys: tuple[str, ...] = ()
    for name in names:
        node = declared.get(parent)
        children = (node.factory.declared_children(node.config) or []) if node else []
        index = next((i for i, child in enumerate(children) if child.name == name), None)
        if index is None:
            return None
        keys += ("entries", str(index), "config")
        parent = paths.join(parent, name)
    return keys


def _check_readers(tx: PondTransaction, pipeline: Pipeline, items: list[PlanItem]) -> None:
    """No node that stays may read one the plan removes or changes the type of."""
    removed = {i.path for i in items if i.action == "remove"}
    retyped = set()
    by_path = {node.path: node for node in pipeline.nodes}
    for item in items:
        if item.action == "update":
            current = _current(tx, item.path, follow=False)
            if current is not None and current.entry_type is not by_path[item.path].entry_type:
                retyped.add(item.path)
    if not removed and not retyped:
        return
    vertices = {
        n.path: graph.Vertex(n.path, n.sources, n.entry_type is EntryType.DIRECTORY)
        for n in tx.dynamic_nodes()
    }
    for node in pipeline.nodes:  # as the file leaves them
        vertices[node.path] = graph.Vertex(
            node.path, node.sources, node.entry_type is EntryType.DIRECTORY
        )
    upstream = graph.upstream_index(vertices.values())
    for reader, reads in upstream.items():
        if reader in removed or _inside(reader, removed):
            continue
        for source in reads:
            if source == reader or _inside(reader, {source}):
                continue
            if source in removed or _inside(source, removed):
                raise ConflictError(
                    f"cannot remove it: {reader} reads it",
                    subject=source,
                    hint=f"remove {reader} from the pond too, or change what it reads first",
                )
            if source in retyped:
                raise ConflictError(
                    f"cannot change its type to a {by_path[source].entry_type.short}: "
                    f"{reader} reads it",
                    subject=source,
                    hint=f"change {reader} first, or apply the two changes separately",
                )


def _inside(path: str, folders: set[str]) -> bool:
    return any(path.startswith(folder.rstrip("/") + "/") for folder in folders)


def _same(a: Node | None, b: Node | None) -> bool:
    """The same declaration: both absent, or the same factory, config and refresh."""
    if a is None or b is None:
        return a is b
    refresh = a.latest.attributes.get("refresh") if a.latest else None
    return decide(b, Declaration(a.factory, a.raw_config, refresh)) == "unchanged"


def _current_at(tx: PondTransaction, path: str, txn: int) -> Node | None:
    try:
        return tx.pond.node(path, at=txn)
    except Exception:  # noqa: BLE001 - absent (or unreadable) then
        return None


def _current(view: _View, path: str, *, follow: bool) -> Node | None:
    try:
        return view.node(path, follow=follow)
    except NotFoundError:
        return None


def _origin(pipeline: Pipeline) -> str:
    return pipeline.project.path.name
