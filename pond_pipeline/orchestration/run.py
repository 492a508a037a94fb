"""Running assets in process through Dagster (``pond materialize``)."""

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from dagster import AssetsDefinition, AssetSpec, DagsterInstance, materialize

from pond_pipeline.orchestration.assets import asset_key
from pond_pipeline.orchestration.build import build_definitions
from pond_pipeline.project.pipeline import Pipeline


@dataclass
class AssetRun:
    """The outcome of one asset's run."""

    path: str
    success: bool
    run_id: str
    metadata: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    checks: dict[str, bool] = field(default_factory=dict)


def selected_paths(pipeline: Pipeline, paths: Sequence[str], everything: bool) -> list[str]:
    """The dynamic nodes to run, in derivation order (upstream first)."""
    if everything or not paths:
        return [node.path for node in pipeline.nodes]
    wanted = {pipeline.node(p).path for p in paths}
    return [node.path for node in pipeline.nodes if node.path in wanted]


def run_assets(
    pipeline: Pipeline,
    paths: Sequence[str],
    *,
    pond_uri: str | None = None,
    on_start: Callable[[str], None] | None = None,
    on_done: Callable[[AssetRun], None] | None = None,
) -> list[AssetRun]:
    """Materialize each node in its own in-process Dagster run, upstream first; a failed
    node stops the nodes after it (they would read what it failed to write)."""
    defs = build_definitions(pipeline, pond_uri=pond_uri)
    assets = [a for a in defs.assets or [] if isinstance(a, (AssetsDefinition, AssetSpec))]
    resources = dict(defs.resources or {})
    instance = (
        DagsterInstance.get() if os.environ.get("DAGSTER_HOME") else DagsterInstance.ephemeral()
    )
    runs: list[AssetRun] = []
    for path in paths:
        if on_start:
            on_start(path)
        key = asset_key(path)
        result = materialize(
            assets,
            instance=instance,
            resources=resources,
            selection=[key],
            raise_on_error=False,
            tags={"pond/cli": "materialize"},
            # the caller reports each outcome; Dagster's console would repeat failures as
            # stack traces
            run_config={"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}},
        )
        run = AssetRun(path, result.success, result.run_id)
        for event in result.get_asset_materialization_events():
            materialization = event.step_materialization_data.materialization
            run.metadata = {k: _plain(v) for k, v in materialization.metadata.items()}
        for evaluation in result.get_asset_check_evaluations():
            run.checks[evaluation.check_name] = evaluation.passed
        if not result.success:
            failures = result.get_step_failure_events()
            data = failures[0].step_failure_data if failures else None
            error = (
                data.user_failure_data.description
                if data and data.user_failure_data and data.user_failure_data.description
                else (_error_text(data.error) if data and data.error else "run failed")
            )
            run.error = error.removeprefix(f"{path}: ")  # the CLI names the node itself
        runs.append(run)
        if on_done:
            on_done(run)
        if not run.success:
            break
    return runs


def _error_text(error: Any) -> str:
    """The innermost cause's message (a pond error without its module and class name),
    not Dagster's "Error occurred while executing op" wrapper."""
    while getattr(error, "cause", None) is not None:
        error = error.cause
    text = str(error.message).strip()
    name, _, rest = text.partition(": ")
    return rest if name.startswith("pond_pipeline.errors.") and rest else text


def _plain(value: Any) -> Any:
    return getattr(value, "value", value)
