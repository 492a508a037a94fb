"""Dagster assets, checks, jobs and schedules built from a pipeline.

One asset per dynamic node (key from its path; code version from its factory and config;
``automation:`` as its automation condition), dependencies from the nodes' sources, one
job and schedule per refresh interval, and the node's ``schema:`` as the blocking asset
checks ``schema`` and ``temporal_column``. The static files nodes read are observable
source assets (``observations``).
"""

import hashlib
import json
import re
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pyarrow as pa
from dagster import (
    AssetCheckResult,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetKey,
    AssetsDefinition,
    AssetSelection,
    AutomationCondition,
    DataVersion,
    DefaultScheduleStatus,
    Failure,
    MaterializeResult,
    MetadataValue,
    ScheduleDefinition,
    TableColumn,
    TableSchema,
    asset,
    define_asset_job,
)
from dagster._core.definitions.utils import is_valid_name  # Dagster's own rule for names
from dagster_duckdb import DuckDBResource

from pond_pipeline.durations import refresh_cron
from pond_pipeline.errors import CheckFailedError
from pond_pipeline.orchestration.checks import SchemaValidator
from pond_pipeline.orchestration.resources import PondResource
from pond_pipeline.project.materialize import Materialized, materialize
from pond_pipeline.project.pipeline import Pipeline, PipelineNode
from pond_pipeline.project.pond_yaml import NodeSpec, SchemaSpec

CHECK_NAMES = ("schema", "temporal_column")


def asset_key(path: str) -> AssetKey:
    """``/analytics/daily_summary.series`` → ``analytics/daily_summary_series``; a name
    Dagster reserves (``/in``, ``/class``, ``/input``) gets a trailing ``_``."""
    return AssetKey([dagster_name(s) for s in path.strip("/").split("/")])


def group_name(path: str) -> str:
    return dagster_name(path.strip("/").split("/")[0]) if path.strip("/") else "root"


def dagster_name(segment: str) -> str:
    """A path segment as a name Dagster accepts for an op, asset key or group: every
    character outside ``[A-Za-z0-9_]`` becomes ``_``, and a reserved name (a Python
    keyword or one of Dagster's own, such as ``in``, ``class``, ``input``) gets a ``_``."""
    name = re.sub(r"[^A-Za-z0-9_]", "_", segment) or "_"
    return name if is_valid_name(name) else f"{name}_"


def job_name(refresh: str) -> str:
    return "refresh_" + re.sub(r"[^A-Za-z0-9_]", "_", refresh.replace("*", "x").replace(":", ""))


def build_node_asset(node: PipelineNode, deps: Sequence[AssetKey]) -> AssetsDefinition:
    """The asset of one dynamic node (built in its own function: no loop-variable capture)."""
    key = asset_key(node.path)
    # an entry of a declared directory is checked against the directory's schema: the
    # directory writes it first, but the entry's own run writes it when its sources change
    declared = declaring_spec(node)
    schema_spec = declared.schema_ if declared else None
    check_specs = (
        [
            AssetCheckSpec(name, asset=key, blocking=True, description=description)
            for name, description in check_descriptions(schema_spec).items()
        ]
        if schema_spec
        else []
    )
    metadata: dict[str, Any] = {
        "pond/path": node.path,
        "pond/factory": node.factory.name,
        # as stored: a YAML timestamp (synthetic's start) becomes its text
        "pond/config": MetadataValue.json(json.loads(json.dumps(node.raw_config, default=str))),
        "pond/type": node.entry_type.value,
    }
    if node.refresh:
        metadata["pond/refresh"] = node.refresh

    @asset(
        key=key,
        deps=list(deps),
        group_name=group_name(node.path),
        description=node.description or f"{node.factory.name} node {node.path}",
        metadata=metadata,
        check_specs=check_specs,
        kinds={"pond"},
        code_version=code_version(node),
        automation_condition=automation_condition(node),
    )
    def node_asset(
        context: AssetExecutionContext, pond: PondResource, duckdb: DuckDBResource
    ) -> Iterator[Any]:
        opened = pond.open(duckdb)
        validator = SchemaValidator(schema_spec) if schema_spec else None
        try:
            result = materialize(
                opened,
                node.path,
                run_id=context.run.run_id,
                validate=validator,
                declared=node.declaration if node.spec else None,
                prerequisites=node.prerequisites,
            )
        except CheckFailedError as exc:
            assert validator is not None
            for outcome in validator.outcomes.values():
                yield AssetCheckResult(
                    check_name=outcome.name,
                    passed=outcome.passed,
                    description=outcome.description,
                    metadata={"failures": MetadataValue.json(outcome.failures)},
                )
            raise Failure(
                description=exc.message,
                metadata={
                    "failures": MetadataValue.json(
                        [f for o in validator.outcomes.values() for f in o.failures]
                    ),
                },
            ) from exc
        checks = [
            AssetCheckResult(
                check_name=outcome.name,
                passed=outcome.passed,
                description=outcome.description if outcome.tables else "no new data to check",
            )
            for outcome in (validator.outcomes.values() if validator else [])
        ]
        context.log.info(
            f"{node.path}: {result.written} version(s) written"
            + (f" in transaction {result.txn}" if result.txn else " (unchanged)")
        )
        yield MaterializeResult(
            metadata=result_metadata(result),
            data_version=DataVersion(result.fingerprint),
            check_results=checks,
        )

    return node_asset


def declaring_spec(node: PipelineNode) -> NodeSpec | None:
    """The ``pond.yaml`` entry that declares the node (an entry of a ``dynamic_dir``: the
    directory's); ``None`` for a node only the pond holds."""
    return node.spec or (node.declared_in.spec if node.declared_in else None)


def code_version(node: PipelineNode) -> str:
    """What produces the node's content: its factory, the factory's version and its config
    (as written, ``${env:…}`` unexpanded); a change marks the asset stale."""
    identity = {
        "factory": node.factory.name,
        "factory_version": node.factory.version,
        "config": node.raw_config,
    }
    text = json.dumps(identity, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def automation_condition(node: PipelineNode) -> AutomationCondition[Any] | None:
    """``automation: eager`` → ``AutomationCondition.eager()``; ``on_cron`` →
    ``AutomationCondition.on_cron`` at the node's refresh cron."""
    declared = declaring_spec(node)
    automation = declared.automation if declared else None
    if automation == "eager":
        return AutomationCondition.eager()
    if automation == "on_cron" and node.refresh:
        return AutomationCondition.on_cron(refresh_cron(node.refresh), "UTC")
    return None


def check_descriptions(spec: SchemaSpec) -> dict[str, str]:
    """What each check of a ``schema:`` block verifies, in words."""
    columns = []
    for name, column in spec.columns.items():
        rules = [column.type] + ([] if column.nullable else ["not null"])
        checks = column.checks
        rules += [
            f"{op} {getattr(checks, op)}"
            for op in ("ge", "le", "gt", "lt")
            if getattr(checks, op) is not None
        ]
        if checks.isin is not None:
            rules.append(f"in {checks.isin}")
        if checks.str_matches is not None:
            rules.append(f"matches {checks.str_matches!r}")
        if checks.unique:
            rules.append("unique")
        columns.append(f"{name} ({', '.join(rules)})")
    temporal = spec.temporal_column
    return {
        "schema": "Blocks the write (and the downstream assets) unless every column of "
        "pond.yaml's schema holds: " + ("; ".join(columns) or "no columns declared"),
        "temporal_column": (
            f"Blocks the write unless {temporal} is present, timestamp-typed and not null"
            if temporal
            else "No temporal_column declared: always passes"
        ),
    }


def result_metadata(result: Materialized) -> dict[str, Any]:
    metadata: dict[str, Any] = {
        "pond/changed": result.changed,
        "pond/versions_written": result.written,
    }
    if result.txn is not None:
        metadata["pond/txn"] = result.txn
    if result.version is not None:
        metadata["pond/version"] = result.version
    rows = result.rows if result.rows is not None else _children_rows(result)
    if rows is not None:
        metadata["dagster/row_count"] = rows
    if result.min_event_time is not None and result.max_event_time is not None:
        metadata["pond/temporal_range"] = (
            f"{_iso(result.min_event_time)} .. {_iso(result.max_event_time)}"
        )
    if result.schema is not None:
        metadata["dagster/column_schema"] = TableSchema(
            columns=[TableColumn(f.name, str(f.type)) for f in result.schema]
        )
    if result.preview is not None:
        metadata["pond/preview"] = MetadataValue.md(markdown_rows(result.preview))
    # a directory's figures are its children's (a temporal_reduce: every bucket series)
    for name, value in (result.metrics or _children_metrics(result)).items():
        metadata[f"pond/{name}"] = value
    if result.children:
        metadata["pond/children"] = MetadataValue.json([_child(c) for c in result.children])
    return metadata


def _child(child: Materialized) -> dict[str, Any]:
    rows = child.rows if child.rows is not None else _children_rows(child)
    entry = {"path": child.path, "changed": child.changed, "version": child.version, "rows": rows}
    if child.metrics:
        entry["metrics"] = dict(child.metrics)
    if child.children:  # a nested directory (temporal_reduce's <out>/res=…)
        entry["children"] = [_child(c) for c in child.children]
    return entry


def markdown_rows(table: pa.Table) -> str:
    header = "| " + " | ".join(table.column_names) + " |"
    rule = "|" + "---|" * len(table.column_names)
    body = ["| " + " | ".join(str(v) for v in row.values()) + " |" for row in table.to_pylist()]
    return "\n".join([header, rule, *body])


def scheduled_refreshes(pipeline: Pipeline) -> dict[str, list[PipelineNode]]:
    """Each refresh interval a schedule runs (sorted) → its nodes. A node with
    ``automation: on_cron`` is left to the automation sensor."""
    by_refresh: dict[str, list[PipelineNode]] = {}
    for node in pipeline.assets:
        declared = declaring_spec(node)
        if node.refresh and not (declared and declared.automation == "on_cron"):
            by_refresh.setdefault(node.refresh, []).append(node)
    return dict(sorted(by_refresh.items()))


def schedule_name(refresh: str) -> str:
    return f"{job_name(refresh)}_schedule"


def build_schedules(
    pipeline: Pipeline,
    static_inputs: dict[str, list[str]],
    status: DefaultScheduleStatus = DefaultScheduleStatus.RUNNING,
) -> list[ScheduleDefinition]:
    """One job and schedule per refresh interval of ``scheduled_refreshes`` (``status``:
    running unless pond.yaml says ``schedules: stopped``). Each job also observes the
    static files its nodes read, first, so every materialization records the versions
    it read."""
    schedules = []
    for refresh, nodes in scheduled_refreshes(pipeline).items():
        statics = sorted({p for node in nodes for p in static_inputs.get(node.path, [])})
        job = define_asset_job(
            job_name(refresh),
            selection=AssetSelection.assets(*[asset_key(n.path) for n in nodes])
            | AssetSelection.assets(*[asset_key(p) for p in statics]),
            description=f"Refresh the nodes with refresh: {refresh}",
        )
        schedules.append(
            ScheduleDefinition(
                name=schedule_name(refresh),
                cron_schedule=refresh_cron(refresh),
                job=job,
                execution_timezone="UTC",
                default_status=status,
            )
        )
    return schedules


def _children_rows(result: Materialized) -> int | None:
    """The rows the children wrote, nested directories' included."""
    found = [c.rows if c.rows is not None else _children_rows(c) for c in result.children]
    rows = [r for r in found if r is not None]
    return sum(rows) if rows else None


def _children_metrics(result: Materialized) -> dict[str, int | float]:
    """The numeric figures the children reported (e.g. ``rows_read``), summed."""
    total: dict[str, int | float] = {}
    for child in result.children:
        for name, value in (child.metrics or _children_metrics(child)).items():
            if isinstance(value, int | float) and not isinstance(value, bool):
                total[name] = total.get(name, 0) + value
    return total


def _iso(micros: int) -> str:
    return (datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=micros)).isoformat()
