"""The static files nodes read, as observable source assets.

Their data version is the pond node's latest version and the transaction that wrote it
(``v3@txn12``), so Dagster marks a node stale once ``pond copy`` appends to a series it
reads. Observed two ways: by the asset ``pond_static_files`` (in every refresh job, and
from the UI's "Observe sources"), and by the sensor ``pond_static_files_sensor``, which
reports an observation, without a run, whenever a file's version changed.
"""

import json
from collections.abc import Iterator, Sequence

from dagster import (
    AssetExecutionContext,
    AssetObservation,
    AssetsDefinition,
    AssetSpec,
    DataVersion,
    DefaultSensorStatus,
    ObserveResult,
    SensorDefinition,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    multi_observable_source_asset,
    sensor,
)

from pond_pipeline.api import Pond
from pond_pipeline.errors import NotFoundError
from pond_pipeline.orchestration.assets import asset_key, group_name
from pond_pipeline.orchestration.resources import PondResource

OBSERVER_NAME = "pond_static_files"
SENSOR_NAME = f"{OBSERVER_NAME}_sensor"
DATA_VERSION_TAG = "dagster/data_version"
"""The tag an observation carries its data version in (what ``ObserveResult`` writes)."""


def static_versions(uri: str, paths: Sequence[str]) -> dict[str, tuple[int, int]]:
    """Each path's latest (version, txn); a path gone from the pond (or no pond) is left out."""
    try:
        pond = Pond.open(uri)
    except NotFoundError:
        return {}
    resolver = pond.resolver()
    found = {}
    for path in paths:
        try:
            latest = resolver.resolve(path).latest
        except NotFoundError:
            continue
        if latest is not None:
            found[path] = (latest.version, latest.txn_seq)
    return found


def data_version(version: int, txn: int) -> DataVersion:
    return DataVersion(f"v{version}@txn{txn}")


def build_static_assets(paths: Sequence[str]) -> AssetsDefinition | None:
    """One observable source asset per static file, observed together (subsettable)."""
    if not paths:
        return None
    by_key = {asset_key(p): p for p in paths}
    specs = [
        AssetSpec(
            key,
            group_name=group_name(path),
            description=f"static file {path} in the pond; its data version is its latest "
            "version and transaction",
            metadata={"pond/path": path},
            kinds={"pond"},
        )
        for key, path in by_key.items()
    ]

    @multi_observable_source_asset(
        specs=specs,
        name=OBSERVER_NAME,
        can_subset=True,
        required_resource_keys={"pond"},
        description="The pond versions of the static files nodes read",
    )
    def observe(context: AssetExecutionContext) -> Iterator[ObserveResult]:
        resource: PondResource = context.resources.pond
        selected = [by_key[k] for k in sorted(context.selected_asset_keys) if k in by_key]
        versions = static_versions(resource.uri, selected)
        for path in selected:
            if path not in versions:
                context.log.warning(f"{path}: not in the pond; not observed")
                continue
            version, txn = versions[path]
            yield ObserveResult(
                asset_key=asset_key(path),
                data_version=data_version(version, txn),
                metadata={"pond/version": version, "pond/txn": txn},
            )

    observer: AssetsDefinition = observe
    return observer


def build_observation_sensor(paths: Sequence[str]) -> SensorDefinition | None:
    """Reports an ``AssetObservation`` (no run) for each static file whose version changed
    since the last tick; the cursor holds each path's last reported data version."""
    if not paths:
        return None
    wanted = sorted(paths)

    @sensor(
        name=SENSOR_NAME,
        description="Observes the static files nodes read: a new pond version is a new "
        "data version, which marks their readers stale (and triggers eager automation)",
        default_status=DefaultSensorStatus.RUNNING,
    )
    def observe_static_files(
        context: SensorEvaluationContext, pond: PondResource
    ) -> SensorResult | SkipReason:
        seen: dict[str, str] = json.loads(context.cursor) if context.cursor else {}
        current = {
            path: data_version(version, txn).value
            for path, (version, txn) in static_versions(pond.uri, wanted).items()
        }
        events = [
            AssetObservation(
                asset_key=asset_key(path),
                tags={DATA_VERSION_TAG: value},
                metadata={"pond/path": path},
            )
            for path, value in sorted(current.items())
            if seen.get(path) != value
        ]
        if not events:
            return SkipReason("no static file changed")
        return SensorResult(asset_events=events, cursor=json.dumps({**seen, **current}))

    return observe_static_files
