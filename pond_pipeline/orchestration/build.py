"""``build_definitions``: the Dagster definitions of a ``pond.yaml`` (and its pond).

Kept apart from ``definitions.py`` (the code location, which builds ``defs`` when
imported) so ``pond materialize`` can hand over the pipeline it loaded, and the file is
read once per command. Building only reads: it never creates the pond or writes to it.
"""

from pathlib import Path
from typing import Any

from dagster import (
    AssetSelection,
    DefaultScheduleStatus,
    DefaultSensorStatus,
    Definitions,
    SensorDefinition,
)
from dagster_duckdb import DuckDBResource

from pond_pipeline.api import Pond
from pond_pipeline.errors import NotFoundError
from pond_pipeline.orchestration.assets import (
    asset_key,
    automation_condition,
    build_node_asset,
    build_schedules,
)
from pond_pipeline.orchestration.observations import (
    build_observation_sensor,
    build_static_assets,
)
from pond_pipeline.orchestration.resources import PondResource
from pond_pipeline.orchestration.sensors import build_automation_sensor, build_ingest_sensor
from pond_pipeline.project import pipeline as pipelines


def build_definitions(
    source: pipelines.Pipeline | str | Path | None = None, *, pond_uri: str | None = None
) -> Definitions:
    """``source``: a loaded pipeline, or the path of its ``pond.yaml`` (default: env
    ``POND_CONFIG``, else ``./pond.yaml``); ``pond_uri`` overrides the file's ``pond:``."""
    declared = source if isinstance(source, pipelines.Pipeline) else pipelines.load(source)
    uri = declared.project.pond_uri(pond_uri)
    try:
        pond: Pond | None = Pond.open(uri)
    except NotFoundError:
        pond = None
    pipeline = pipelines.with_pond(declared, pond) if pond is not None else declared
    static_inputs = pipelines.static_inputs(pond, pipeline) if pond is not None else {}
    static_paths = sorted({p for inputs in static_inputs.values() for p in inputs})
    # a node that only serves others (its config is read by them) is no asset of its own
    runnable = {node.path for node in pipeline.assets}
    assets: list[Any] = [
        build_node_asset(
            node,
            [asset_key(p) for p in pipeline.upstream[node.path] if p in runnable]
            + [asset_key(p) for p in static_inputs.get(node.path, [])],
        )
        for node in pipeline.assets
    ]
    observer = build_static_assets(static_paths)
    running = declared.project.spec.schedules == "running"
    sensor_status = DefaultSensorStatus.RUNNING if running else DefaultSensorStatus.STOPPED
    sensors: list[Any] = [
        build_ingest_sensor(
            node,
            declared.project.folder,
            _with_static_inputs(
                AssetSelection.assets(asset_key(node.path)).downstream(), static_paths
            ),
            sensor_status,
        )
        for node in pipeline.assets
        if node.factory.name == "ingest"
    ]
    automation = build_automation_sensor(
        [asset_key(n.path) for n in pipeline.assets if automation_condition(n) is not None],
        sensor_status,
    )
    observation: SensorDefinition | None = build_observation_sensor(static_paths)
    return Definitions(
        assets=[*([observer] if observer else []), *assets],
        schedules=build_schedules(
            pipeline,
            static_inputs,
            DefaultScheduleStatus.RUNNING if running else DefaultScheduleStatus.STOPPED,
        ),
        sensors=[*sensors, *(s for s in (automation, observation) if s is not None)],
        resources={
            "pond": PondResource(uri=uri, host_root=str(declared.project.folder)),
            "duckdb": DuckDBResource(database=":memory:"),
        },
    )


def _with_static_inputs(selection: AssetSelection, static_paths: list[str]) -> AssetSelection:
    """``selection`` plus the static files its assets read (observed first in the run)."""
    if not static_paths:
        return selection
    return selection | (
        selection.upstream(depth=1) & AssetSelection.assets(*[asset_key(p) for p in static_paths])
    )
