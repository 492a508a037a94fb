"""``dagster-daemon run`` on a copy of the project: a ``refresh`` schedule ticks, an
``ingest`` sensor picks up a new host file, eager automation runs a chain after a
static file gained a version. Each daemon runs with ``DAGSTER_HOME=<tmp>/.dagster``
(SQLite storage, Dagster's defaults otherwise) and is stopped by its process group."""

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import dagster as dg
import pyarrow as pa
import pytest
from dagster._core.scheduler.instigation import InstigatorType, TickStatus

from pond_pipeline.api import Pond
from pond_pipeline.errors import NotFoundError
from pond_pipeline.orchestration.assets import job_name
from pond_pipeline.orchestration.observations import SENSOR_NAME
from pond_pipeline.orchestration.sensors import AUTOMATION_SENSOR_NAME, ingest_sensor_name

TICK_SECONDS = 150  # a cron minute or a 30 s sensor interval, plus a run in a subprocess
REPORT = "/reports/sensors.md"
SUMMARY = "/analytics/daily_summary.series"


class Daemon:
    """A running ``dagster-daemon run -w workspace.yaml`` and the instance it writes."""

    def __init__(
        self,
        folder: Path,
        home: Path,
        log: Path,
        before: Callable[[dg.DagsterInstance], None] | None = None,
    ):
        home.mkdir(parents=True, exist_ok=True)
        (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
        env = {k: v for k, v in os.environ.items() if k != "POND"}
        env["DAGSTER_HOME"] = str(home)
        env["POND_CONFIG"] = str(folder / "pond.yaml")  # also read by the runs it launches
        # the storage is made here, before the daemon opens it (two first openings race)
        self.instance = dg.DagsterInstance.from_config(str(home))
        if before is not None:
            before(self.instance)
        self.home = home
        self.log = log
        self._log = log.open("wb")
        self.process = subprocess.Popen(
            [str(Path(sys.executable).parent / "dagster-daemon"), "run", "-w", "workspace.yaml"],
            cwd=folder,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def wait_for(
        self, condition: Callable[[], Any], what: str, seconds: float = TICK_SECONDS
    ) -> Any:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"dagster-daemon exited ({self.process.returncode}) before {what}")
            found = condition()
            if found:
                return found
            time.sleep(0.5)
        tail = self.log.read_text(errors="replace")[-3000:]
        pytest.fail(f"timed out after {seconds}s waiting for {what}; daemon log:\n{tail}")

    def sensor_ticks(self, name: str) -> list[Any]:
        states = [
            s
            for s in self.instance.all_instigator_state(instigator_type=InstigatorType.SENSOR)
            if s.instigator_name == name
        ]
        if not states:
            return []
        state = states[0]
        return list(self.instance.get_ticks(state.instigator_origin_id, state.selector_id))

    def run(self, run_id: str) -> dg.DagsterRun:
        run = self.instance.get_run_by_id(run_id)
        assert run is not None, run_id
        return run

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=20)
        with contextlib.suppress(ProcessLookupError):  # a run or code server left behind
            os.killpg(self.process.pid, signal.SIGKILL)
        self._log.close()
        self.instance.dispose()


@pytest.fixture
def start_daemon(tmp_path: Path) -> Iterator[Callable[..., Daemon]]:
    """``start(folder, before=None)``; ``before(instance)`` runs before the daemon starts."""
    started: list[Daemon] = []

    def start(folder: Path, before: Callable[[dg.DagsterInstance], None] | None = None) -> Daemon:
        daemon = Daemon(folder, tmp_path / ".dagster", tmp_path / "daemon.log", before)
        started.append(daemon)
        return daemon

    yield start
    for daemon in started:
        daemon.stop()


def latest_run_of(pond: Pond, path: str) -> tuple[int, str] | None:
    """(version, run id) of the newest version a Dagster run wrote for ``path``."""
    runs = {t.txn_seq: t.run_id for t in pond.log() if t.run_id and path in t.paths}
    try:
        latest = pond.node(path).latest if runs else None
    except NotFoundError:
        return None
    if latest is None or latest.txn_seq not in runs:
        return None
    run_id = runs[latest.txn_seq]
    assert run_id is not None
    return latest.version, run_id


@pytest.mark.slow
def test_a_refresh_schedule_ticks_and_its_run_writes_a_version(example, start_daemon):
    example.edit("    refresh: 1d\n", '    refresh: "cron: * * * * *"\n')  # the report's
    example.materialize(
        "/sensor_logs",
        "/processed/sensor_series",
        "/clean",
        "/clean/north.series",
        "/clean/south.series",
        "/clean/east.series",
        "/reduced",
        "/analytics/north_south.series",
        SUMMARY,
        "/analytics/warm_days.series",
    )
    assert latest_run_of(example.open(), REPORT) is None

    daemon = start_daemon(example.folder)
    version, run_id = daemon.wait_for(lambda: latest_run_of(example.open(), REPORT), "the tick")

    run = daemon.run(run_id)
    assert run.tags["dagster/schedule_name"] == job_name("cron: * * * * *") + "_schedule"
    assert run.job_name == job_name("cron: * * * * *")
    assert version >= 1
    (info,) = [t for t in example.open().log() if t.run_id == run_id]
    assert info.command == f"materialize {REPORT}"
    assert "# Sensor report" in example.open().read_bytes(REPORT).decode()


@pytest.mark.slow
def test_a_new_host_file_runs_the_ingest_sensor_and_the_downstream(materialized, start_daemon):
    pond = materialized.open()
    before = pond.node(SUMMARY).latest
    assert before is not None
    sensor = ingest_sensor_name("/sensor_logs")

    daemon = start_daemon(materialized.folder)
    # the first tick finds every host file imported already: no run
    (tick,) = daemon.wait_for(
        lambda: [t for t in daemon.sensor_ticks(sensor) if t.status is not TickStatus.STARTED],
        "the sensor's first tick",
    )
    assert tick.status is TickStatus.SKIPPED, tick
    assert daemon.instance.get_runs() == []

    day = "\n".join(
        f"2024-05-04 {hour:02d}:00:00,north,{10 + hour / 4:.2f},60.0" for hour in range(24)
    )
    dropped = time.monotonic()
    (materialized.data / "north-late.csv").write_text(
        "timestamp,sensor,temperature,humidity\n" + day + "\n"
    )

    def summary_updated() -> tuple[int, str] | None:
        found = latest_run_of(materialized.open(), SUMMARY)
        return found if found and found[0] > before.version else None

    _, run_id = daemon.wait_for(summary_updated, "the downstream's new version")
    elapsed = time.monotonic() - dropped
    print(f"new host file -> {SUMMARY} new version: {elapsed:.1f}s")  # noqa: T201

    run = daemon.run(run_id)
    assert run.tags["dagster/sensor_name"] == sensor
    assert run.tags["pond/ingest"] == "/sensor_logs"
    pond = materialized.open()
    assert "north-late.csv" in {n.path.rsplit("/", 1)[1] for n in pond.list_nodes("/sensor_logs/")}
    days = {(r["sensor"], r["day"].day) for r in pond.read_table(SUMMARY).to_pylist()}
    assert ("north", 4) in days
    assert {t.run_id for t in pond.log() if t.command == "materialize /sensor_logs"} >= {run_id}


CHAIN = """\
nodes:
  /a.series:
    factory: sql_derived_series
    config: {source: /raw/readings.series, query: "SELECT ts, v * 2 AS v FROM source"}
    automation: eager
  /b.series:
    factory: sql_derived_series
    config: {source: /a.series, query: "SELECT ts, v + 1 AS v FROM source"}
    automation: eager
"""


RAW = dg.AssetKey(["raw", "readings_series"])


def readings(*values: float, start: int = 0) -> pa.Table:
    ts = pa.array([(start + i) * 3_600_000_000 for i in range(len(values))], pa.timestamp("us"))
    return pa.table({"ts": ts, "v": list(values)})


@pytest.mark.slow
def test_eager_automation_runs_a_chain_after_its_static_source_gains_a_version(
    project, start_daemon
):
    (project.folder / "workspace.yaml").write_text(
        "load_from:\n  - python_module:\n"
        "      module_name: pond_pipeline.orchestration.definitions\n"
        "      working_directory: .\n"
    )
    project.config.write_text(CHAIN)
    pond = Pond.create(str(project.pond_path))
    pond.write_table("/raw/readings.series", readings(1.0, 2.0), "series", parents=True)

    def first_run(instance: dg.DagsterInstance) -> None:
        # observe the static file, materialize the chain: what the daemon starts from
        defs = project.definitions()
        defs.resolve_implicit_global_asset_job_def().execute_in_process(
            instance=instance,
            asset_selection=[RAW, dg.AssetKey("a_series"), dg.AssetKey("b_series")],
        )

    daemon = start_daemon(project.folder, before=first_run)
    first = project.open().node("/b.series").latest.version
    # eager reacts to updates after the automation sensor's first evaluation
    daemon.wait_for(lambda: daemon.sensor_ticks(AUTOMATION_SENSOR_NAME), "automation's tick")
    daemon.wait_for(lambda: daemon.sensor_ticks(SENSOR_NAME), "the observation sensor's tick")
    assert latest_run_of(project.open(), "/b.series")[0] == first  # nothing ran again

    project.open().write_table("/raw/readings.series", readings(3.0, start=2), "series")
    appended = time.monotonic()

    def b_materialized_again() -> tuple[int, str] | None:
        found = latest_run_of(project.open(), "/b.series")
        return found if found and found[0] > first else None

    version, run_id = daemon.wait_for(b_materialized_again, "eager automation down the chain")
    print(f"static append -> /b.series new version: {time.monotonic() - appended:.1f}s")  # noqa: T201

    pond = project.open()  # the versions the runs wrote (a read would compute them anyway)
    a_version = pond.node("/a.series").latest.version
    assert pond.read_table("/a.series", version=a_version).column("v").to_pylist() == [
        2.0,
        4.0,
        6.0,
    ]
    assert pond.read_table("/b.series", version=version).column("v").to_pylist() == [
        3.0,
        5.0,
        7.0,
    ]
    run = daemon.run(run_id)
    assert run.tags["dagster/sensor_name"] == AUTOMATION_SENSOR_NAME
    a_run = latest_run_of(pond, "/a.series")
    assert a_run is not None
    assert a_run[1] == run_id  # both in one run: b waits for what a will write
