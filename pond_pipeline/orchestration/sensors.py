"""Sensors: one per ``ingest`` node, launching its run when a host file appears or
changes, and the automation condition sensor evaluating the nodes' ``automation:``."""

import glob
import hashlib
import json
import re
from collections.abc import Sequence
from pathlib import Path

from dagster import (
    AssetKey,
    AssetSelection,
    AutomationConditionSensorDefinition,
    DefaultSensorStatus,
    RunRequest,
    SensorDefinition,
    SensorEvaluationContext,
    SensorResult,
    sensor,
)

from pond_pipeline.api import Pond
from pond_pipeline.errors import NotFoundError
from pond_pipeline.orchestration.resources import PondResource
from pond_pipeline.project.pipeline import PipelineNode

AUTOMATION_SENSOR_NAME = "pond_automation_sensor"

Seen = dict[str, list[int]]
"""Host file (absolute path) → [size, mtime in ns]: what a sensor's cursor holds."""


def ingest_sensor_name(path: str) -> str:
    return re.sub(r"[^A-Za-z0-9_]", "_", path.strip("/")) + "_ingest_sensor"


def host_glob(pattern: str, folder: Path) -> str:
    """``pattern`` as the ``ingest`` factory reads it: relative to ``pond.yaml``'s folder."""
    expanded = Path(pattern).expanduser()
    return str(expanded if expanded.is_absolute() else folder.resolve() / expanded)


def host_files(pattern: str) -> Seen:
    found: Seen = {}
    for name in sorted(glob.glob(pattern, recursive=True)):
        path = Path(name)
        if path.is_file():
            stat = path.stat()
            found[str(path.resolve())] = [stat.st_size, stat.st_mtime_ns]
    return found


def imported_files(uri: str, path: str) -> set[str]:
    """The sha256 of each host file the ingest node ``path`` holds (by content, not by
    path: a project folder moved or copied elsewhere still counts them as imported)."""
    try:
        pond = Pond.open(uri)
        resolver = pond.resolver()
        children = resolver.children(resolver.resolve(path))
    except NotFoundError:
        return set()
    return {
        str(child.latest.attributes["source_sha256"])
        for child in children.values()
        if child.latest is not None and "source_sha256" in child.latest.attributes
    }


def build_ingest_sensor(
    node: PipelineNode,
    folder: Path,
    target: AssetSelection,
    status: DefaultSensorStatus = DefaultSensorStatus.RUNNING,
) -> SensorDefinition:
    """Launches a run of ``target`` (the node and its downstream) when a file matching the
    node's ``host_pattern`` appears or changes (size or mtime). On its first tick the
    files the pond already imported (same sha256) count as seen."""
    pattern = host_glob(str(node.config.model_dump()["host_pattern"]), folder)
    path = node.path

    @sensor(
        name=ingest_sensor_name(path),
        target=target,
        default_status=status,
        description=f"Runs {path} and its downstream when a host file matching {pattern} "
        "appears or changes",
    )
    def ingest_sensor(context: SensorEvaluationContext, pond: PondResource) -> SensorResult:
        files = host_files(pattern)
        if context.cursor is None:
            imported = imported_files(pond.uri, path)
            seen: Seen = {f: stat for f, stat in files.items() if _sha(f) in imported}
        else:
            seen = json.loads(context.cursor)
        changed = [f for f, stat in files.items() if seen.get(f) != stat]
        cursor = json.dumps(files)
        if not changed:
            return SensorResult(
                skip_reason=f"no new or changed file matches {pattern}", cursor=cursor
            )
        context.log.info(f"{path}: new or changed host files: {', '.join(changed)}")
        key = hashlib.sha256(json.dumps({f: files[f] for f in changed}).encode()).hexdigest()
        return SensorResult(
            run_requests=[RunRequest(run_key=key, tags={"pond/ingest": path})], cursor=cursor
        )

    return ingest_sensor


def build_automation_sensor(
    keys: Sequence[AssetKey], status: DefaultSensorStatus = DefaultSensorStatus.RUNNING
) -> AutomationConditionSensorDefinition | None:
    """Evaluates the automation conditions of ``keys`` (the nodes with ``automation:``);
    running by default, unlike Dagster's own default sensor."""
    if not keys:
        return None
    return AutomationConditionSensorDefinition(
        AUTOMATION_SENSOR_NAME,
        target=AssetSelection.assets(*keys),
        default_status=status,
        description="Runs the nodes whose pond.yaml says automation: eager or on_cron",
    )


def _sha(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
