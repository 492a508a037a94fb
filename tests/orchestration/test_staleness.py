"""Staleness from static data: the static files nodes read are observable source assets
whose data version is their pond version; a node's code version is its factory and
config; ``schema:`` checks block. Read back through ``dagster-webserver``'s GraphQL API
after ``pond copy`` appended a day."""

import subprocess
import sys
from pathlib import Path
from typing import Any

import dagster as dg
import pytest

from pond_pipeline.api import Pond
from pond_pipeline.orchestration.assets import job_name
from pond_pipeline.orchestration.observations import SENSOR_NAME
from pond_pipeline.orchestration.sensors import AUTOMATION_SENSOR_NAME, ingest_sensor_name

from .servers import graphql, immediate_home, start_webserver, stop, wait_until

PIPELINE = """\
nodes:
  /daily.series:
    factory: sql_derived_series
    config:
      source: /raw/readings.series
      query: SELECT date_trunc('day', ts) AS day, avg(v) AS v FROM source GROUP BY ALL ORDER BY day
      time_column: day
    refresh: 1h
    schema:
      temporal_column: day
      columns:
        v: {type: double, checks: {ge: 0, le: 100}}
  /weekly.series:
    factory: sql_derived_series
    config:
      source: /daily.series
      query: SELECT date_trunc('week', day) AS week, avg(v) AS v FROM source GROUP BY ALL
      time_column: week
"""
RAW = dg.AssetKey(["raw", "readings_series"])
DAILY = dg.AssetKey(["daily_series"])
WEEKLY = dg.AssetKey(["weekly_series"])


def day_csv(folder: Path, day: int, value: float) -> Path:
    path = folder / f"day{day}.csv"
    rows = [f"2024-05-{day:02d} {hour:02d}:00:00,{value}" for hour in range(24)]
    path.write_text("ts,v\n" + "\n".join(rows) + "\n")
    return path


def pond_cli(*args: str, pond: Path) -> None:
    command = [str(Path(sys.executable).parent / "pond"), "--pond", str(pond), *args]
    subprocess.run(command, check=True, capture_output=True)


@pytest.fixture
def pipeline(project):
    """``PIPELINE`` over a static series of one day, copied in with ``pond copy``."""
    project.config.write_text(PIPELINE)
    pond_cli("init", pond=project.pond_path)
    pond_cli("mkdir", "/raw", pond=project.pond_path)
    csv = day_csv(project.folder, 1, 10.0)
    pond_cli("copy", str(csv), "/raw/readings.series", "--type", "series", pond=project.pond_path)
    return project


def test_static_files_are_observable_and_nodes_carry_code_versions(pipeline):
    defs = pipeline.definitions()
    graph = defs.resolve_asset_graph()

    raw = graph.get(RAW)
    assert raw.is_observable
    assert not raw.is_materializable
    assert raw.metadata["pond/path"] == "/raw/readings.series"
    daily = graph.get(DAILY)
    assert daily.code_version
    assert len(daily.code_version) == 16
    assert graph.get(WEEKLY).code_version != daily.code_version
    # the same config, the same code version; another query, another one
    assert pipeline.definitions().resolve_asset_graph().get(DAILY).code_version == (
        daily.code_version
    )
    pipeline.edit(
        "avg(v) AS v FROM source GROUP BY ALL ORDER BY",
        "max(v) AS v FROM source GROUP BY ALL ORDER BY",
    )
    assert pipeline.definitions().resolve_asset_graph().get(DAILY).code_version != (
        daily.code_version
    )
    assert SENSOR_NAME in {s.name for s in defs.sensors or []}


def test_an_observation_reports_the_pond_version_and_transaction(pipeline):
    defs = pipeline.definitions()
    pond = Pond.open(str(pipeline.pond_path))
    latest = pond.node("/raw/readings.series").latest
    instance = dg.DagsterInstance.ephemeral()

    # the refresh job observes the static files its nodes read, before running them
    defs.resolve_job_def("refresh_1h").execute_in_process(instance=instance)

    record = instance.fetch_observations(RAW, limit=1).records[0]
    observation = record.asset_observation
    assert observation is not None
    assert observation.tags["dagster/data_version"] == f"v{latest.version}@txn{latest.txn_seq}"
    assert observation.metadata["pond/txn"].value == latest.txn_seq


def test_the_observation_sensor_reports_only_what_changed(pipeline):
    defs = pipeline.definitions()
    sensor = defs.resolve_sensor_def(SENSOR_NAME)
    instance = dg.DagsterInstance.ephemeral()
    resources = dict(defs.resources or {})

    def tick(cursor: str | None) -> Any:
        return sensor(
            dg.build_sensor_context(instance=instance, resources=resources, cursor=cursor)
        )

    first = tick(None)
    assert [e.asset_key for e in first.asset_events] == [RAW]
    again = tick(first.cursor)
    assert isinstance(again, dg.SkipReason)
    pond_cli(
        "copy",
        str(day_csv(pipeline.folder, 2, 20.0)),
        "/raw/readings.series",
        pond=pipeline.pond_path,
    )
    after = tick(first.cursor)
    (event,) = after.asset_events
    assert event.tags["dagster/data_version"].startswith("v2@txn")


def test_schema_checks_block_and_describe_what_they_check(pipeline):
    graph = pipeline.definitions().resolve_asset_graph()

    specs = {k.name: graph.get_check_spec(k) for k in graph.asset_check_keys}
    assert set(specs) == {"schema", "temporal_column"}
    assert all(spec.blocking for spec in specs.values())
    assert specs["schema"].description.endswith("v (double, ge 0.0, le 100.0)")
    assert "day is present, timestamp-typed and not null" in specs["temporal_column"].description


def test_a_failed_check_names_the_column_and_the_check(pipeline):
    pond_cli(
        "copy",
        str(day_csv(pipeline.folder, 2, 500.0)),
        "/raw/readings.series",
        pond=pipeline.pond_path,
    )

    result = pipeline.materialize("/daily.series", "/weekly.series", raise_on_error=False)

    assert not result.success
    (evaluation,) = [e for e in result.get_asset_check_evaluations() if e.check_name == "schema"]
    assert not evaluation.passed
    assert evaluation.description == (
        "failed: column v: less_than_or_equal_to(100.0) (e.g. ['500.0'])"
    )
    assert [e.asset_key for e in result.get_asset_materialization_events()] == []


def test_schedules_and_sensors_run_by_default_and_pond_yaml_can_stop_them(project):
    project.config.write_text(
        PIPELINE.replace(
            "nodes:\n",
            "nodes:\n  /logs:\n    factory: ingest\n    config: {host_pattern: 'data/*.csv'}\n",
            1,
        ).replace("      time_column: week\n", "      time_column: week\n    automation: eager\n")
    )
    defs = project.definitions()
    (schedule,) = defs.schedules or []
    assert schedule.default_status is dg.DefaultScheduleStatus.RUNNING
    sensors = {s.name: s for s in defs.sensors or []}
    assert set(sensors) == {ingest_sensor_name("/logs"), AUTOMATION_SENSOR_NAME}  # no pond yet
    assert all(s.default_status is dg.DefaultSensorStatus.RUNNING for s in sensors.values())
    assert defs.resolve_asset_graph().get(WEEKLY).automation_condition is not None

    project.config.write_text("schedules: stopped\n" + project.config.read_text())
    defs = project.definitions()
    assert [s.default_status for s in defs.schedules or []] == [dg.DefaultScheduleStatus.STOPPED]
    assert {s.default_status for s in defs.sensors or []} == {dg.DefaultSensorStatus.STOPPED}


def test_on_cron_automation_replaces_the_schedule(project):
    project.config.write_text(
        PIPELINE.replace("    refresh: 1h\n", "    refresh: 1h\n    automation: on_cron\n")
    )
    defs = project.definitions()

    assert defs.schedules in (None, [])
    condition = defs.resolve_asset_graph().get(DAILY).automation_condition
    assert condition is not None
    assert "on_cron(0 * * * *, UTC)" in str(condition.get_label())
    assert job_name("1h") == "refresh_1h"


# -- through the webserver -------------------------------------------------------------------
STALENESS = """
{ assetNodes { assetKey { path } opVersion dataVersion staleStatus
    staleCauses { key { path } category reason dependency { path } } } }
"""
LAUNCH = """
mutation Launch($params: ExecutionParams!) {
  launchRun(executionParams: $params) {
    __typename
    ... on LaunchRunSuccess { run { runId } }
    ... on PythonError { message }
  }
}
"""
RUN_STATUS = """
query Status($id: ID!) { runOrError(runId: $id) { __typename ... on Run { status } } }
"""


def staleness(port: int) -> dict[str, dict[str, Any]]:
    return {"/".join(n["assetKey"]["path"]): n for n in graphql(port, STALENESS)["assetNodes"]}


@pytest.mark.slow
def test_the_webserver_shows_readers_of_an_appended_series_as_stale(pipeline, tmp_path):
    home = immediate_home(tmp_path / ".dagster")
    (pipeline.folder / "workspace.yaml").write_text(
        "load_from:\n  - python_module:\n"
        "      module_name: pond_pipeline.orchestration.definitions\n"
        "      working_directory: .\n"
    )
    defs = pipeline.definitions()
    resources = dict(defs.resources or {})
    with dg.DagsterInstance.from_config(str(home)) as instance:  # what a first run records
        defs.resolve_implicit_global_asset_job_def().execute_in_process(
            instance=instance, resources=resources, asset_selection=[RAW, DAILY, WEEKLY]
        )

    server, port = start_webserver(pipeline.folder, home, tmp_path / "webserver.log")
    try:
        wait_until(lambda: staleness(port), 120, "the webserver", server)
        before = staleness(port)
        assert before["daily_series"]["staleStatus"] == "FRESH", before
        assert before["weekly_series"]["staleStatus"] == "FRESH", before

        pond_cli(
            "copy",
            str(day_csv(pipeline.folder, 2, 20.0)),
            "/raw/readings.series",
            pond=pipeline.pond_path,
        )
        latest = Pond.open(str(pipeline.pond_path)).node("/raw/readings.series").latest
        # the UI's "Observe sources" (the daemon's sensor does it on its own)
        params = {
            "selector": {
                "repositoryLocationName": "pond_pipeline.orchestration.definitions",
                "repositoryName": "__repository__",
                "jobName": "__ASSET_JOB",
                "assetSelection": [{"path": RAW.path}],
            }
        }
        launched = graphql(port, LAUNCH, params=params)["launchRun"]
        assert launched["__typename"] == "LaunchRunSuccess", launched
        run_id = launched["run"]["runId"]

        def observed() -> bool:
            status = graphql(port, RUN_STATUS, id=run_id)["runOrError"]["status"]
            return status in ("SUCCESS", "FAILURE", "CANCELED")

        wait_until(observed, 120, "the observation run", server)
        after = staleness(port)
        assert after["raw/readings_series"]["dataVersion"] == f"v2@txn{latest.txn_seq}"
        daily = after["daily_series"]
        assert daily["staleStatus"] == "STALE", after
        # the root cause: the static file's new data version (its pond version)
        assert daily["staleCauses"] == [
            {
                "key": {"path": ["raw", "readings_series"]},
                "category": "DATA",
                "reason": "has a new data version",
                "dependency": None,
            }
        ]
        assert daily["opVersion"] == defs.resolve_asset_graph().get(DAILY).code_version
        # Dagster 1.13 does not carry staleness past an asset whose data version is
        # unchanged: /weekly.series turns stale once /daily.series has a new version
        assert after["weekly_series"]["staleStatus"] == "FRESH", after
    finally:
        stop(server)
