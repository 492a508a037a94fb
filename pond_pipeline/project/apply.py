"""``pond apply``: reconcile the pond with ``pond.yaml`` — each declared node created,
updated or left unchanged, and (with ``prune``) the nodes an earlier apply of the file
created that it no longer declares removed — in one transaction.

Materializing a node applies its declaration the same way (``apply_declaration``), so
there is one decision of what a declaration changes.
"""

from dataclasses import dataclass
from typing import Any, Literal, Protocol

from pond_pipeline.api import DynamicNode, Node, Pond, PondTransaction
from pond_pipeline.durations import normalize_refresh
from pond_pipeline.dynamic import registry
from pond_pipeline.errors import NotFoundError
from pond_pipeline.project.pipeline import Declaration, Pipeline

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
    under the write lock (so two applies at once agree on what each did)."""
    if dry_run:
        return plan(pond, pipeline, prune=prune)
    origin = _origin(pipeline)
    by_path = {node.path: node for node in pipeline.nodes}
    with pond.transaction(f"apply {pipeline.project.path.name}") as tx:
        items = plan(tx, pipeline, prune=prune)
        for item in items:
            if item.action == "remove":
                tx.remove(item.path, recursive=True)
            elif item.action != "unchanged":
                write_declaration(
                    tx,
                    item.path,
                    by_path[item.path].declaration,
                    item.action,
                    attributes={DECLARED_BY: origin},
                    check_cycles=False,
                )
        if any(item.action != "unchanged" for item in items):
            tx.check_cycles()  # once for the whole file, with every node in place
    return items


def apply_declaration(tx: PondTransaction, path: str, declared: Declaration) -> bool:
    """Create or update one node when its stored factory/config/refresh differ (what a
    materialization of a declared node does first); whether it wrote."""
    try:
        current: Node | None = tx.node(path)
    except Exception:  # noqa: BLE001 - absent (or unreadable): create it
        current = None
    action = decide(current, declared)
    if action == "unchanged":
        return False
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
    attributes: dict[str, Any] | None = None,
    check_cycles: bool = True,
) -> None:
    tx.create_dynamic(
        path,
        declared.factory,
        declared.config,
        overwrite=action == "update",
        refresh=declared.refresh,
        attributes=attributes,
        check_cycles=check_cycles,
    )


def _current(view: _View, path: str, *, follow: bool) -> Node | None:
    try:
        return view.node(path, follow=follow)
    except NotFoundError:
        return None


def _origin(pipeline: Pipeline) -> str:
    return pipeline.project.path.name
