"""``pond materialize``: one in-process Dagster run for the selected nodes, on the
project's instance, followed event by event.

Dagster orders the run by the asset graph: a failed asset skips what reads it (directly or
not), and the unrelated assets still run. The caller sees each asset start and finish as
the run's events are stored in the instance, so the run and its materializations, checks
and metadata are what ``dagster dev`` (or ``pond ui``) shows on the same home afterwards.
"""

import re
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from dagster import (
    AssetKey,
    AssetsDefinition,
    AssetSpec,
    DagsterEventType,
    DagsterInstance,
    Definitions,
    EventLogEntry,
    define_asset_job,
)

from pond_pipeline import paths as pond_paths
from pond_pipeline.errors import NotFoundError, PondError
from pond_pipeline.orchestration.assets import asset_key
from pond_pipeline.orchestration.build import build_definitions
from pond_pipeline.project.pipeline import Pipeline

JOB_NAME = "__ASSET_JOB"
"""The name Dagster gives a code location's own asset job: the UI shows such a run by the
assets it materialized."""

QUIET = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}
"""The caller reports each outcome; Dagster's console would repeat failures as tracebacks."""


@dataclass
class AssetRun:
    """The outcome of one asset in the run."""

    path: str
    success: bool
    run_id: str
    metadata: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    checks: dict[str, bool] = field(default_factory=dict)
    skipped_for: list[str] = field(default_factory=list)
    """Not run: these failed upstream nodes."""

    @property
    def is_skipped(self) -> bool:
        return bool(self.skipped_for)


@dataclass
class PreparedRun:
    """The definitions built once for the run, and the nodes it materializes."""

    definitions: Definitions
    paths: list[str]
    """The selected nodes, in derivation order (upstream first)."""
    node_paths: dict[AssetKey, str]
    """Every node asset of the definitions (not the static files' external assets)."""


def prepare_run(
    pipeline: Pipeline,
    paths: Sequence[str],
    *,
    everything: bool = False,
    pond_uri: str | None = None,
) -> PreparedRun:
    """The definitions of ``pipeline`` and its selection: ``paths`` (any dynamic node the
    definitions have: ``pond.yaml``'s, and the pond's other persisted ones), or with
    ``everything`` / no paths, every node of ``pond.yaml``. Only reads."""
    definitions = build_definitions(pipeline, pond_uri=pond_uri)
    node_paths = {
        key: str(assets.metadata_by_key[key]["pond/path"])
        for assets in definitions.assets or []
        if isinstance(assets, AssetsDefinition)
        for key in assets.keys
    }
    declared = [node.path for node in pipeline.nodes]
    known = set(declared)
    ordered = declared + [p for p in node_paths.values() if p not in known]
    if everything or not paths:
        wanted = known
    else:
        wanted = set()
        for path in paths:
            normalized = pond_paths.normalize(path)
            if asset_key(normalized) not in node_paths:
                raise NotFoundError(
                    "is not a dynamic node of this pipeline",
                    subject=normalized,
                    hint="see `pond list` or pond.yaml",
                )
            wanted.add(node_paths[asset_key(normalized)])
    selected = [p for p in ordered if p in wanted and asset_key(p) in node_paths]
    return PreparedRun(definitions, selected, node_paths)


def run_assets(
    prepared: PreparedRun,
    instance: DagsterInstance,
    *,
    on_start: Callable[[str], None] | None = None,
    on_done: Callable[[AssetRun], None] | None = None,
) -> list[AssetRun]:
    """Materialize the selection in ONE in-process run on ``instance``; ``on_start`` and
    ``on_done`` are called as each asset starts and ends (a skipped one: at the end).
    Returns every selected node's outcome, in the order they ended."""
    if not prepared.paths:  # an empty selection would mean "every asset" to Dagster
        return []
    definitions = prepared.definitions
    assets = [a for a in definitions.assets or [] if isinstance(a, AssetsDefinition | AssetSpec)]
    keys = [asset_key(p) for p in prepared.paths]
    job = Definitions(
        jobs=[define_asset_job(JOB_NAME)],
        assets=assets,
        resources=dict(definitions.resources or {}),
    ).resolve_job_def(JOB_NAME)
    graph = definitions.resolve_asset_graph()
    # the static files the selection reads are observed first, so each materialization
    # records the versions it read (else the next observation would mark it stale)
    observed = sorted(
        {
            parent
            for key in keys
            for parent in graph.get(key).parent_keys
            if graph.has(parent) and graph.get(parent).is_observable
        }
    )
    run_id = str(uuid.uuid4())
    follower = _RunFollower(run_id, _step_paths(assets), on_start, on_done)
    instance.add_event_listener(run_id, follower)
    result = job.execute_in_process(
        instance=instance,
        run_id=run_id,
        asset_selection=[*observed, *keys],  # recorded with the run: the UI shows its target
        raise_on_error=False,
        tags={"pond/cli": "materialize"},
        run_config=QUIET,
    )
    ended = follower.ended
    if not result.success and not any(not r.success for r in ended.values()):
        raise PondError(
            f"Dagster run {run_id} failed before its assets ran: {_run_failure(result)}",
            hint="see the run's logs in the UI (`pond ui`)",
        )
    failed = [p for p, r in ended.items() if not r.success]
    for path in prepared.paths:
        if path in ended:
            continue
        upstream = _ancestors(graph, asset_key(path))
        run = AssetRun(
            path,
            success=False,
            run_id=run_id,
            skipped_for=[p for p in failed if asset_key(p) in upstream] or ["an upstream node"],
        )
        ended[path] = run
        if on_done:
            on_done(run)
    return list(ended.values())


class _RunFollower:
    """Called with each event of the run as the instance stores it."""

    def __init__(
        self,
        run_id: str,
        step_paths: dict[str, str],
        on_start: Callable[[str], None] | None,
        on_done: Callable[[AssetRun], None] | None,
    ):
        self.run_id = run_id
        self.step_paths = step_paths
        self.on_start = on_start
        self.on_done = on_done
        self.running: dict[str, AssetRun] = {}
        self.ended: dict[str, AssetRun] = {}

    def __call__(self, entry: EventLogEntry) -> None:
        event = entry.dagster_event
        path = self.step_paths.get(entry.step_key or "")
        if event is None or path is None:
            return
        kind = event.event_type
        if kind == DagsterEventType.STEP_START:
            self.running[path] = AssetRun(path, success=False, run_id=self.run_id)
            if self.on_start:
                self.on_start(path)
            return
        run = self.running.get(path)
        if run is None:
            return
        if kind == DagsterEventType.ASSET_MATERIALIZATION:
            materialization = event.step_materialization_data.materialization
            run.metadata = {k: _plain(v) for k, v in materialization.metadata.items()}
        elif kind == DagsterEventType.ASSET_CHECK_EVALUATION:
            evaluation = event.asset_check_evaluation_data
            run.checks[evaluation.check_name] = evaluation.passed
        elif kind in (DagsterEventType.STEP_SUCCESS, DagsterEventType.STEP_FAILURE):
            run.success = kind == DagsterEventType.STEP_SUCCESS
            if not run.success:
                run.error = _failure_text(event.step_failure_data).removeprefix(f"{path}: ")
            self.ended[path] = self.running.pop(path)
            if self.on_done:
                self.on_done(run)


def _step_paths(assets: Sequence[AssetsDefinition | AssetSpec]) -> dict[str, str]:
    """Step key (the asset's op) → node path."""
    found = {}
    for definition in assets:
        if (
            isinstance(definition, AssetsDefinition)
            and definition.is_executable
            and not definition.is_observable  # the static files' observation
        ):
            for key in definition.keys:
                found[definition.node_def.name] = str(definition.metadata_by_key[key]["pond/path"])
    return found


def _ancestors(graph: Any, key: AssetKey) -> set[AssetKey]:
    seen: set[AssetKey] = set()
    todo = [key]
    while todo:
        for parent in graph.get(todo.pop()).parent_keys:
            if parent not in seen and graph.has(parent):
                seen.add(parent)
                todo.append(parent)
    return seen


def _failure_text(data: Any) -> str:
    if data is None:
        return "failed"
    if data.user_failure_data and data.user_failure_data.description:
        return str(data.user_failure_data.description)
    return _error_text(data.error) if data.error else "failed"


def _run_failure(result: Any) -> str:
    for event in result.all_events:
        if event.event_type == DagsterEventType.RUN_FAILURE:
            data = event.event_specific_data
            if data is not None and getattr(data, "error", None) is not None:
                return _error_text(data.error)
            return str(event.message or "run failed")
    return "run failed"


def _error_text(error: Any) -> str:
    """One line a person reads: the first pond error along the causes (it names the node
    and says what to do), else the innermost cause — never Dagster's "Error occurred
    while executing op" wrapper, and never DuckDB's ``LINE 1: ...`` context, which shows
    the internal views the query was run over rather than the user's query."""
    while getattr(error, "cause", None) is not None and not _is_pond_error(error):
        error = error.cause
    text = str(error.message).strip().splitlines()[0] if str(error.message).strip() else ""
    name, _, rest = text.partition(": ")  # "pond_pipeline.errors.QueryError: ..."
    text = rest if rest and re.fullmatch(r"[\w.]+(Error|Exception)", name) else text
    return re.sub(r"__pond_\w+", "its source", text) or "failed"


def _is_pond_error(error: Any) -> bool:
    return str(getattr(error, "cls_name", "")) in _POND_ERRORS


def _error_classes(cls: type[PondError]) -> set[str]:
    return {cls.__name__}.union(*(_error_classes(sub) for sub in cls.__subclasses__()))


_POND_ERRORS = _error_classes(PondError)


def _plain(value: Any) -> Any:
    return getattr(value, "value", value)
