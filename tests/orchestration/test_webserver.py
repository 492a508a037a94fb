"""``dagster-webserver`` on ``workspace.yaml``: the asset graph read through its GraphQL
API, a materialization launched through it, and the new versions seen in the pond."""

import pytest

from .servers import graphql, immediate_home, is_up, start_webserver, stop, wait_until

LOCATION = "pond_pipeline.orchestration.definitions"
STARTUP_SECONDS = 120
RUN_SECONDS = 180

ASSET_GRAPH = """
{ assetNodes { assetKey { path } dependencyKeys { path } groupName } }
"""
LAUNCH = """
mutation Launch($params: ExecutionParams!) {
  launchRun(executionParams: $params) {
    __typename
    ... on LaunchRunSuccess { run { runId } }
    ... on PythonError { message }
    ... on InvalidSubsetError { message }
    ... on RunConfigValidationInvalid { errors { message } }
  }
}
"""
RUN_STATUS = """
query Status($id: ID!) { runOrError(runId: $id) { __typename ... on Run { status } } }
"""
LATEST_MATERIALIZATION = """
query Latest($key: AssetKeyInput!) {
  assetOrError(assetKey: $key) {
    ... on Asset {
      assetMaterializations(limit: 1) {
        runId
        metadataEntries { label ... on IntMetadataEntry { intValue } }
      }
    }
  }
}
"""


@pytest.mark.slow
def test_webserver_serves_the_graph_and_runs_a_materialization(example, tmp_path):
    home = immediate_home(tmp_path / "dagster_home")
    server, port = start_webserver(example.folder, home, tmp_path / "webserver.log")
    try:
        wait_until(lambda: is_up(port), STARTUP_SECONDS, "the webserver", server)

        nodes = graphql(port, ASSET_GRAPH)["assetNodes"]
        graph = {
            "/".join(n["assetKey"]["path"]): sorted(
                "/".join(d["path"]) for d in n["dependencyKeys"]
            )
            for n in nodes
        }
        assert graph == {
            "sensor_logs": [],
            "processed/sensor_series": ["sensor_logs"],
            "clean": ["processed/sensor_series"],
            "clean/north_series": ["processed/sensor_series"],
            "clean/south_series": ["processed/sensor_series"],
            "clean/east_series": ["processed/sensor_series"],
            "reduced": ["clean", "clean/east_series", "clean/north_series", "clean/south_series"],
            "analytics/north_south_series": ["reduced"],
            "analytics/daily_summary_series": ["processed/sensor_series"],
            "analytics/warm_days_series": ["analytics/daily_summary_series"],
            "reports/sensors_md": [
                "analytics/daily_summary_series",
                "analytics/north_south_series",
                "analytics/warm_days_series",
                "reduced",
            ],
        }
        assert {"/".join(n["assetKey"]["path"]): n["groupName"] for n in nodes}[
            "analytics/daily_summary_series"
        ] == "analytics"

        selection = [{"path": ["sensor_logs"]}, {"path": ["processed", "sensor_series"]}]
        params = {
            "selector": {
                "repositoryLocationName": LOCATION,
                "repositoryName": "__repository__",
                "jobName": "__ASSET_JOB",
                "assetSelection": selection,
            }
        }
        launched = graphql(port, LAUNCH, params=params)["launchRun"]
        assert launched["__typename"] == "LaunchRunSuccess", launched
        run_id = launched["run"]["runId"]

        def finished() -> bool:
            status = graphql(port, RUN_STATUS, id=run_id)["runOrError"]["status"]
            return status in ("SUCCESS", "FAILURE", "CANCELED")

        wait_until(finished, RUN_SECONDS, f"run {run_id}", server)
        assert graphql(port, RUN_STATUS, id=run_id)["runOrError"]["status"] == "SUCCESS"

        pond = example.open()
        written = {t.command: t.run_id for t in pond.log() if t.run_id}
        assert written == {
            "materialize /sensor_logs": run_id,
            "materialize /processed/sensor_series": run_id,
        }
        series = pond.node("/processed/sensor_series")
        assert pond.read_table("/processed/sensor_series/north.series").num_rows == 72
        latest = graphql(port, LATEST_MATERIALIZATION, key={"path": ["processed", "sensor_series"]})
        (materialization,) = latest["assetOrError"]["assetMaterializations"]
        assert materialization["runId"] == run_id
        entries = {e["label"]: e.get("intValue") for e in materialization["metadataEntries"]}
        assert entries["pond/version"] == series.latest.version
        assert entries["dagster/row_count"] == 216
    finally:
        stop(server)
