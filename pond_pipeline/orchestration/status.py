"""The schedules part of ``pond status``: whether the daemon runs, and each schedule of
the pipeline with its cron, its state in the project's Dagster instance, and its last
tick — read from the instance, never created by asking (no home yet: ``None``)."""

import os
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from dagster import DagsterInstance
from dagster._core.scheduler.instigation import InstigatorStatus, InstigatorType

from pond_pipeline.durations import refresh_cron
from pond_pipeline.orchestration.assets import schedule_name, scheduled_refreshes
from pond_pipeline.orchestration.instance import HOME_FOLDER
from pond_pipeline.project.pipeline import Pipeline

HEARTBEAT_SECONDS = 60.0
"""The daemon writes a heartbeat every 30 s: one older than this means it is not running."""


@dataclass(frozen=True)
class ScheduleStatus:
    name: str
    cron: str
    nodes: list[str]
    state: str
    """``running`` or ``stopped`` (as the UI or pond.yaml left it)."""
    last_tick: datetime | None
    last_tick_status: str | None


@dataclass(frozen=True)
class SchedulesStatus:
    home: Path
    daemon_running: bool
    daemon_seen: datetime | None
    """The daemon's last heartbeat (``None``: never)."""
    schedules: list[ScheduleStatus]


def existing_home(folder: Path) -> Path | None:
    """``DAGSTER_HOME``, or ``.dagster/`` beside pond.yaml when it has been made."""
    chosen = os.environ.get("DAGSTER_HOME")
    if chosen:
        return Path(chosen).expanduser().resolve()
    home = folder.resolve() / HOME_FOLDER
    return home if (home / "dagster.yaml").is_file() else None


def schedules_status(pipeline: Pipeline) -> SchedulesStatus | None:
    home = existing_home(pipeline.project.folder)
    if home is None or not home.is_dir():
        return None
    with DagsterInstance.from_config(str(home)) as instance:
        beats = [
            beat.timestamp
            for kind, beat in instance.get_daemon_heartbeats().items()
            if kind == "SCHEDULER"
        ]
        seen = max(beats) if beats else None
        states = {
            state.instigator_name: state
            for state in instance.all_instigator_state(instigator_type=InstigatorType.SCHEDULE)
        }
        default = "running" if pipeline.project.spec.schedules == "running" else "stopped"
        found = []
        for refresh, nodes in scheduled_refreshes(pipeline).items():
            name = schedule_name(refresh)
            state = states.get(name)
            tick = None
            if state is not None:
                ticks = instance.get_ticks(state.instigator_origin_id, state.selector_id, limit=1)
                tick = ticks[0] if ticks else None
            found.append(
                ScheduleStatus(
                    name,
                    refresh_cron(refresh),
                    [node.path for node in nodes],
                    _state(state.status if state else None, default),
                    datetime.fromtimestamp(tick.timestamp, UTC) if tick else None,
                    tick.status.value.lower() if tick else None,
                )
            )
    return SchedulesStatus(
        home,
        seen is not None and time.time() - seen < HEARTBEAT_SECONDS,
        datetime.fromtimestamp(seen, UTC) if seen is not None else None,
        found,
    )


def _state(status: InstigatorStatus | None, default: str) -> str:
    if status is InstigatorStatus.RUNNING:
        return "running"
    if status is InstigatorStatus.STOPPED:
        return "stopped"
    return default  # never toggled in the UI (or declared in code): pond.yaml's
