"""``build_definitions``: the Dagster definitions of a ``pond.yaml`` (and its pond).

Kept apart from ``definitions.py`` (the code location, which builds ``defs`` when
imported) so ``pond materialize`` can hand over the pipeline it loaded, and the file is
read once per command. Building only reads: it never creates the pond or writes to it.
"""

from pathlib import Path

from dagster import AssetSpec, Definitions
from dagster_duckdb import DuckDBResource

from pond_pipeline.api import Pond
from pond_pipeline.errors import NotFoundError
from pond_pipeline.orchestration.assets import (
    asset_key,
    build_external_assets,
    build_node_asset,
    build_schedules,
)
from pond_pipeline.orchestration.resources import PondResource
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
            "pond": PondResource(uri=uri, host_root=str(declared.project.folder)),
            "duckdb": DuckDBResource(database=":memory:"),
        },
    )
