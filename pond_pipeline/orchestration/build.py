"""``build_definitions``: the Dagster definitions of a ``pond.yaml`` (and its pond).

Kept apart from ``definitions.py`` (the code location, which builds ``defs`` when
imported) so ``pond materialize --config FILE`` can build them without reading the
working directory's ``pond.yaml``. Building only reads: it never creates the pond or
writes to it.
"""

import os

from dagster import AssetSpec, Definitions
from dagster_duckdb import DuckDBResource

from pond_pipeline import pipeline as pipelines
from pond_pipeline.api import Pond
from pond_pipeline.errors import NotFoundError
from pond_pipeline.orchestration.assets import (
    asset_key,
    build_external_assets,
    build_node_asset,
    build_schedules,
)
from pond_pipeline.orchestration.resources import PondResource


def build_definitions(config_path: str | None = None) -> Definitions:
    path = str(pipelines.project_file(config_path))
    project_pipeline = pipelines.load(path)
    try:
        pond: Pond | None = Pond.open(project_pipeline.project.pond_uri)
    except NotFoundError:
        pond = None
    pipeline = pipelines.with_pond(project_pipeline, pond) if pond is not None else project_pipeline
    static_inputs = pipelines.static_inputs(pond, pipeline) if pond is not None else {}
    externals: list[AssetSpec] = build_external_assets(static_inputs)
    assets = [
        build_node_asset(
            node,
            [asset_key(p) for p in pipeline.upstream[node.path]]
            + [asset_key(p) for p in static_inputs.get(node.path, [])],
        )
        for node in pipeline.nodes
    ]
    return Definitions(
        assets=[*externals, *assets],
        schedules=build_schedules(pipeline),
        resources={
            "pond": PondResource(config_path=os.path.abspath(path)),
            "duckdb": DuckDBResource(database=":memory:"),
        },
    )
