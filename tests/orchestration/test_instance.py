"""One Dagster instance per project: ``.dagster/`` beside ``pond.yaml`` (unless the user
set ``DAGSTER_HOME``); ``pond materialize`` records ONE run there, which a
``dagster-webserver`` started on the same home lists with its materializations and
checks; a failed node skips what reads it while the unrelated nodes still run."""

import json
import socket
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner, Result

from pond_pipeline.cli.main import cli
from pond_pipeline.errors import ConfigError
from pond_pipeline.orchestration.assets import asset_key
from pond_pipeline.orchestration.instance import dagster_home, open_instance, workspace_file

from .conftest import ENTRIES, PATHS
from .servers import graphql, is_up, start_webserver, stop

STARTUP_SECONDS = 120
WEBSERVER = str(Path(sys.executable).parent / "dagster-webserver")
RUNS = """
{ runsOrError { __typename ... on Runs { results {
    runId status jobName assetSelection { path }
    tags { key value }
    assetMaterializations {
      assetKey { path }
      metadataEntries { label ... on IntMetadataEntry { intValue } }
    }
} } } }
"""
CHECKS = """
query Checks($id: ID!) { logsForRun(runId: $id) { __typename ... on EventConnection { events {
  __typename ... on AssetCheckEvaluationEvent { evaluation { checkName success assetKey { path } } }
} } } }
"""


def invoke(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def dagster_transactions(folder: Path) -> dict[str, dict[str, Any]]:
    """``pond log``: command → transaction, for the transactions a Dagster run wrote."""
    result = invoke("--pond", str(folder / ".pond"), "log", "--format", "json")
    assert result.exit_code == 0, result.stderr
    return {t["command"]: t for t in json.loads(result.stdout) if t.get("run_id")}


def run_ids(folder: Path) -> dict[str, str]:
    return {command: t["run_id"] for command, t in dagster_transactions(folder).items()}


# -- the home --------------------------------------------------------------------------------
def test_the_home_is_made_beside_pond_yaml_on_first_use(tmp_path, monkeypatch):
    monkeypatch.delenv("DAGSTER_HOME", raising=False)

    home = dagster_home(tmp_path)

    assert home == tmp_path.resolve() / ".dagster"
    settings = yaml.safe_load((home / "dagster.yaml").read_text())
    assert settings == {"telemetry": {"enabled": False}}  # storage: Dagster's SQLite default
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: true\n")  # the user's edit
    assert dagster_home(tmp_path) == home
    assert "enabled: true" in (home / "dagster.yaml").read_text()  # kept


def test_dagster_home_set_by_the_user_wins(tmp_path, monkeypatch):
    mine = tmp_path / "mine"
    mine.mkdir()
    monkeypatch.setenv("DAGSTER_HOME", str(mine))

    assert dagster_home(tmp_path / "project") == mine
    assert list(mine.iterdir()) == []  # nothing written into it
    assert not (tmp_path / "project").exists()

    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "missing"))
    with pytest.raises(ConfigError) as error:
        dagster_home(tmp_path)
    assert error.value.subject == f"DAGSTER_HOME {tmp_path / 'missing'}"
    assert "unset DAGSTER_HOME" in str(error.value.hint)


def test_the_workspace_is_the_projects_or_one_written_into_the_home(tmp_path, monkeypatch):
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    home = dagster_home(tmp_path)

    written = workspace_file(tmp_path, home)

    assert written == home / "workspace.yaml"
    (location,) = yaml.safe_load(written.read_text())["load_from"]
    assert location == {
        "python_module": {
            "module_name": "pond_pipeline.orchestration.definitions",
            "working_directory": str(tmp_path.resolve()),
        }
    }
    (tmp_path / "workspace.yaml").write_text("load_from: []\n")
    assert workspace_file(tmp_path, home) == (tmp_path / "workspace.yaml").resolve()


# -- one run, seen by the webserver ----------------------------------------------------------


@pytest.mark.slow
def test_the_webserver_on_the_projects_home_lists_the_run_of_pond_materialize(example, tmp_path):
    home = dagster_home(example.folder)  # what the first `pond materialize` or `pond ui` does
    assert home == example.folder / ".dagster"
    # DAGSTER_HOME=.dagster, as the README says to start it
    server, port = start_webserver(example.folder, home, tmp_path / "webserver.log")
    try:
        result = invoke("materialize", "--all")  # while the webserver starts
        assert result.exit_code == 0, result.stderr
        ids = run_ids(example.folder)
        assert set(ids) == {f"materialize {p}" for p in PATHS}  # the entries wrote nothing new
        (run_id,) = set(ids.values())  # ONE run for the whole selection

        deadline = time.monotonic() + STARTUP_SECONDS
        while not is_up(port):
            assert server.poll() is None, f"dagster-webserver exited ({server.returncode})"
            assert time.monotonic() < deadline, "the webserver did not start"
            time.sleep(0.5)

        runs = graphql(port, RUNS)["runsOrError"]["results"]
        (run,) = runs
        assert run["runId"] == run_id
        assert run["status"] == "SUCCESS"
        assert {"key": "pond/cli", "value": "materialize"} in run["tags"]
        every = sorted(asset_key(p).path for p in (*PATHS, *ENTRIES))
        assert sorted(k["path"] for k in run["assetSelection"]) == every
        materialized = {
            "/".join(m["assetKey"]["path"]): {
                e["label"]: e.get("intValue") for e in m["metadataEntries"]
            }
            for m in run["assetMaterializations"]
        }
        assert sorted(k.split("/") for k in materialized) == every
        assert materialized["sensor_logs"]["pond/versions_written"] == 3
        assert materialized["processed/sensor_series"]["dagster/row_count"] == 216
        assert materialized["clean"]["dagster/row_count"] == 214
        summary = dagster_transactions(example.folder)[
            "materialize /analytics/daily_summary.series"
        ]
        assert materialized["analytics/daily_summary_series"]["pond/txn"] == summary["txn"]

        events = graphql(port, CHECKS, id=run_id)["logsForRun"]["events"]
        checks = {
            ("/".join(e["evaluation"]["assetKey"]["path"]), e["evaluation"]["checkName"]): e[
                "evaluation"
            ]["success"]
            for e in events
            if e["__typename"] == "AssetCheckEvaluationEvent"
        }
        assert checks == {
            ("analytics/daily_summary_series", "schema"): True,
            ("analytics/daily_summary_series", "temporal_column"): True,
        }
    finally:
        stop(server)


# -- a failure in the middle -----------------------------------------------------------------
@pytest.mark.slow
def test_a_failed_node_skips_its_downstream_and_the_unrelated_nodes_still_run(example):
    example.edit("avg(temperature) AS avg_temp", "avg(no_such_column) AS avg_temp")
    example.edit(
        '- {pattern: "/reduced/south/res=1h.series", scope: south}\n',
        '- {pattern: "/reduced/south/res=1h.series", scope: south}\n      time_column: nope\n',
    )

    result = invoke("materialize", "--all")

    assert result.exit_code == 1
    errors = result.stderr.splitlines()
    assert len(errors) == 2, result.stderr  # one line per failed node, no traceback
    assert errors[0].startswith("Error: /analytics/daily_summary.series: ")
    assert 'Referenced column "no_such_column" not found' in errors[0]
    assert errors[1].startswith("Error: /analytics/north_south.series: ")
    assert "has no time column 'nope'" in errors[1]
    out = result.stdout
    assert out.count("no_such_column") == 0  # said once, on stderr
    assert "✗ /analytics/daily_summary.series: failed" in out
    assert "✗ /analytics/north_south.series: failed" in out
    assert "- /analytics/warm_days.series: skipped, /analytics/daily_summary.series failed" in out
    assert (
        "- /reports/sensors.md: skipped, "
        "/analytics/daily_summary.series, /analytics/north_south.series failed"
    ) in out
    ran = ("/sensor_logs", "/processed/sensor_series", "/clean", *ENTRIES, "/reduced")
    succeeded = {line.split(":")[0] for line in out.splitlines() if line.startswith("✓ ")}
    assert succeeded == {f"✓ {p}" for p in ran}
    ids = run_ids(example.folder)  # the entries: written by /clean
    assert set(ids) == {f"materialize {p}" for p in ran if p not in ENTRIES}
    (run_id,) = set(ids.values())
    pond = example.open()
    assert pond.read_table("/reduced/north/res=1h.series").num_rows == 70
    with open_instance(example.folder) as instance:
        run = instance.get_run_by_id(run_id)
        assert run is not None
        assert run.status.value == "FAILURE"
        keys = {
            event.dagster_event.asset_key
            for event in instance.all_logs(run_id)
            if event.dagster_event
            and event.dagster_event.event_type_value == "ASSET_MATERIALIZATION"
        }
        assert keys == {asset_key(p) for p in ran}


def test_pond_ui_refuses_a_busy_port_before_starting_anything(example):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]

        result = CliRunner().invoke(cli, ["ui", "--port", str(port)])

    assert result.exit_code == 1
    assert result.stderr.strip() == (
        f"Error: 127.0.0.1:{port}: cannot serve there: Address already in use; "
        "stop what listens there, or pass --port N"
    )
    assert not (example.folder / ".dagster").exists()
