"""``pond status``: what a user asks first — does the pond match ``pond.yaml`` (the apply
plan), when did each node last materialize (time, transaction, run, rows), and which
nodes are stale, and why.

A node is fresh when its latest version is a materialization whose fingerprint still
matches its config and the versions of what it reads (``Resolver.materialized_record``,
the same test a read uses to serve it at static speed). A stale node names the cause:
its config changed after the materialization, or which of its sources got a new version
since (a static file: its transaction; a dynamic source: stale itself, or materialized
later), or a refresh interval that has passed. Only reads: nothing is written.
"""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

from pond_pipeline.api import Node, OplogRecord, Pond
from pond_pipeline.durations import parse_duration
from pond_pipeline.errors import NotFoundError, PondError
from pond_pipeline.project.apply import PlanItem, plan, plan_new
from pond_pipeline.project.pipeline import Pipeline, PipelineNode, open_pond

State = Literal["fresh", "stale", "due", "never materialized", "not applied", "unreadable"]


@dataclass(frozen=True)
class NodeStatus:
    path: str
    factory: str
    state: State
    why: str
    """What made it so, in words (empty when fresh)."""
    refresh: str | None = None
    materialized_txn: int | None = None
    materialized_at: datetime | None = None
    run_id: str | None = None
    rows: int | None = None


@dataclass(frozen=True)
class PondStatus:
    uri: str
    exists: bool
    last_txn: int | None
    last_time: datetime | None
    plan: list[PlanItem]
    nodes: list[NodeStatus]

    @property
    def changes(self) -> list[PlanItem]:
        return [item for item in self.plan if item.action != "unchanged"]


def status(pipeline: Pipeline, pond: Pond | None, *, now: datetime | None = None) -> PondStatus:
    """The status of ``pipeline``'s pond (``None``: it does not exist yet)."""
    declared = pipeline.project.pond_uri(None)
    if pond is None:
        items = plan_new(pipeline)
        nodes = [
            NodeStatus(i.path, i.factory, "not applied", "the pond does not exist yet")
            for i in items
        ]
        return PondStatus(declared, False, None, None, items, nodes)
    items = plan(pond, pipeline)
    log = pond.log()
    runs = {t.txn_seq: t.run_id for t in log}
    return PondStatus(
        pond.location.uri,
        True,
        log[0].txn_seq if log else None,
        log[0].time if log else None,
        items,
        _Judge(pond, runs, now or datetime.now(UTC)).all(pipeline, items),
    )


class _Judge:
    """Each asset's state, in derivation order (a source is judged before its readers)."""

    def __init__(self, pond: Pond, runs: dict[int, str | None], now: datetime):
        self.resolver = pond.resolver()
        self.runs = runs
        self.now = now
        self.judged: dict[str, NodeStatus] = {}

    def all(self, pipeline: Pipeline, items: list[PlanItem]) -> list[NodeStatus]:
        pending = {i.path: i.action for i in items if i.action in ("create", "update")}
        for node in pipeline.assets:
            if node.path in pending:
                action = "is new in pond.yaml" if pending[node.path] == "create" else "changed"
                self.judged[node.path] = NodeStatus(
                    node.path,
                    node.factory.name,
                    "not applied",
                    f"its declaration {action}: run `pond apply`",
                    node.refresh,
                )
            else:
                self.judged[node.path] = self._judge(node)
        return [self.judged[node.path] for node in pipeline.assets]

    def _judge(self, declared: PipelineNode) -> NodeStatus:
        try:
            node = self.resolver.resolve(declared.path)
            current = self.resolver.materialized_record(node)
        except PondError as exc:
            return NodeStatus(
                declared.path, declared.factory.name, "unreadable", str(exc), declared.refresh
            )
        lazy = declared.factory.lazy
        last = _last_materialization(node, lazy)
        if last is None:
            return self._status(declared, "never materialized", "run `pond materialize`", None)
        if current is not None:
            overdue = self._overdue(declared, last)
            if overdue:
                return self._status(declared, "due", overdue, last)
            # an import (ingest) is as fresh as its last run: it reads host files then
            why = "" if lazy else "new host files are imported when it runs"
            return self._status(declared, "fresh", why, last)
        if node.latest is not None and node.latest.txn_seq > last.txn_seq:
            why = f"its config changed in txn {node.latest.txn_seq}"
        else:
            why = "; ".join(self._changed_sources(node, last)) or "its sources changed"
        return self._status(declared, "stale", why, last)

    def _changed_sources(self, node: Node, last: OplogRecord) -> list[str]:
        found = []
        for pattern in self.resolver.source_patterns(node):
            try:
                sources = self.resolver.glob(pattern)
            except PondError:
                continue
            for source in sources:
                upstream = self.judged.get(source.path)
                if upstream is not None and upstream.state in ("stale", "never materialized"):
                    found.append(f"{source.path} is {upstream.state}")
                elif source.latest is not None and source.latest.txn_seq > last.txn_seq:
                    found.append(f"{source.path} changed in txn {source.latest.txn_seq}")
        return found

    def _overdue(self, declared: PipelineNode, last: OplogRecord) -> str:
        if not declared.refresh or declared.refresh.startswith("cron:"):
            return ""
        try:
            interval = parse_duration(declared.refresh)
        except PondError:
            return ""
        late = self.now - last.timestamp - interval
        if late <= timedelta(0):
            return ""
        return f"refresh {declared.refresh}: overdue by {_span(late)}"

    def _status(
        self, declared: PipelineNode, state: State, why: str, last: OplogRecord | None
    ) -> NodeStatus:
        rows = last.attributes.get("rows") if last is not None else None
        return NodeStatus(
            declared.path,
            declared.factory.name,
            state,
            why,
            declared.refresh,
            last.txn_seq if last else None,
            last.timestamp if last else None,
            self.runs.get(last.txn_seq) if last else None,
            rows if isinstance(rows, int) else None,
        )


def _last_materialization(node: Node, lazy: bool) -> OplogRecord | None:
    """The node's newest version a materialization wrote: it records a fingerprint (an
    import, ``lazy = False``: the listing of what it imported)."""
    mark = "fingerprint" if lazy else "listing"
    for record in reversed(node.versions):
        if mark in record.attributes:
            return record
    return None


def _span(value: timedelta) -> str:
    minutes = int(value.total_seconds() // 60)
    if minutes < 60:
        return f"{max(minutes, 1)} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    return f"{hours // 24} days"


def open_for_status(pipeline: Pipeline, uri: str | None) -> Pond | None:
    """The pipeline's pond, or ``None`` when it does not exist yet."""
    try:
        return open_pond(pipeline, uri=uri)
    except NotFoundError:
        return None
