"""`pond status` (issue 13): pond.yaml against the pond, each node's last materialization,
what is stale and why, and whether the schedules run — through the installed CLI."""

import json
import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pytest
from click.testing import CliRunner, Result

from pond_pipeline.api import Pond
from pond_pipeline.cli.main import cli

PIPELINE = """
pond: ./.pond
nodes:
  /a/hot.series:
    factory: sql_derived_series
    config: {source: /raw/x.series, query: "SELECT * FROM source WHERE temperature > 25"}
    refresh: 1h
  /a/hotter.series:
    factory: sql_derived_series
    config: {source: /a/hot.series, query: "SELECT * FROM source WHERE temperature > 27"}
  /b/tall.table:
    factory: sql_derived_table
    config: {source: /raw/stations.table, query: "SELECT * FROM source WHERE height > 100"}
"""


def readings(day: int) -> pa.Table:
    start = datetime(2024, 1, day, tzinfo=UTC)
    return pa.table(
        {
            "timestamp": pa.array(
                [start + timedelta(hours=i) for i in range(3)], pa.timestamp("us", tz="UTC")
            ),
            "temperature": [20.5, 26.0, 27.5],
        }
    )


def invoke(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def status() -> dict:
    result = invoke("status", "--format", "json")
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def by_path(document: dict) -> dict[str, dict]:
    return {node["path"]: node for node in document["nodes"]}


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "project"
    folder.mkdir()
    monkeypatch.chdir(folder)
    for name in ("POND", "POND_CONFIG", "DAGSTER_HOME"):
        monkeypatch.delenv(name, raising=False)
    (folder / "pond.yaml").write_text(textwrap.dedent(PIPELINE).lstrip())
    return folder


def seed(folder: Path) -> Pond:
    pond = Pond.create(str(folder / ".pond"))
    with pond.transaction("seed") as tx:
        tx.write_table("/raw/x.series", readings(1), "series", parents=True)
        tx.write_table(
            "/raw/stations.table",
            pa.table({"station": ["n", "s"], "height": [12, 340]}),
            "table",
            parents=True,
        )
    return pond


def test_status_before_the_pond_exists_plans_every_node(project: Path) -> None:
    document = status()
    assert document["exists"] is False
    assert [(i["action"], i["path"]) for i in document["plan"]] == [
        ("create", "/a/hot.series"),
        ("create", "/a/hotter.series"),
        ("create", "/b/tall.table"),
    ]
    assert {n["state"] for n in document["nodes"]} == {"not applied"}
    text = invoke("status").stdout
    assert "does not exist yet" in text
    assert "pond.yaml differs from the pond: 3 change(s) to apply" in text


@pytest.mark.slow
def test_status_after_apply_materialize_and_a_new_static_version(project: Path) -> None:
    pond = seed(project)
    assert invoke("apply").exit_code == 0
    applied = status()
    assert all(i["action"] == "unchanged" for i in applied["plan"])
    assert {n["state"] for n in applied["nodes"]} == {"never materialized"}

    done = invoke("materialize")
    assert done.exit_code == 0, done.stderr
    fresh = by_path(status())
    assert {p: n["state"] for p, n in fresh.items()} == dict.fromkeys(fresh, "fresh")
    run_id = pond.log(1)[0].run_id
    hot = fresh["/a/hot.series"]
    assert hot["rows"] == 2
    assert hot["run_id"] == run_id
    assert hot["materialized_txn"] > 1
    assert fresh["/b/tall.table"]["rows"] == 1

    with pond.transaction("day 2") as tx:  # a change to a static series
        tx.write_table("/raw/x.series", readings(2), "series")
    changed_in = pond.log(1)[0].txn_seq
    after = by_path(status())
    assert after["/a/hot.series"]["state"] == "stale"
    assert after["/a/hot.series"]["why"] == f"/raw/x.series changed in txn {changed_in}"
    assert after["/a/hotter.series"]["state"] == "stale"
    assert after["/a/hotter.series"]["why"] == "/a/hot.series is stale"
    assert after["/b/tall.table"]["state"] == "fresh"
    text = invoke("status", "--no-schedules").stdout
    assert "2 node(s) to materialize: pond materialize /a/hot.series /a/hotter.series" in text

    (project / "pond.yaml").write_text(
        (project / "pond.yaml").read_text().replace("height > 100", "height > 10")
    )
    edited = status()
    assert [(i["action"], i["path"]) for i in edited["plan"] if i["action"] != "unchanged"] == [
        ("update", "/b/tall.table")
    ]
    assert by_path(edited)["/b/tall.table"]["state"] == "not applied"
    assert by_path(edited)["/b/tall.table"]["why"] == "its declaration changed: run `pond apply`"


@pytest.mark.slow
def test_schedules_without_and_with_a_running_daemon(project: Path) -> None:
    from dagster import DagsterInstance
    from dagster._daemon.types import DaemonHeartbeat

    seed(project)
    assert invoke("apply").exit_code == 0
    none_yet = invoke("status")
    assert "schedules: no Dagster instance yet; pond ui starts the UI and the daemon" in (
        none_yet.stdout
    )
    assert status()["schedules"] is None
    assert invoke("materialize", "/a/hot.series").exit_code == 0  # makes .dagster/

    stopped = status()["schedules"]
    assert stopped["daemon_running"] is False
    assert [(s["name"], s["cron"], s["state"], s["nodes"]) for s in stopped["schedules"]] == [
        ("refresh_1h_schedule", "0 * * * *", "running", ["/a/hot.series"])
    ]
    assert "daemon: not running: schedules do not fire; start it with pond ui" in (
        invoke("status").stdout
    )

    with DagsterInstance.from_config(str(project / ".dagster")) as instance:
        instance.add_daemon_heartbeat(  # what a running daemon writes every 30 s
            DaemonHeartbeat(datetime.now(UTC).timestamp(), "SCHEDULER", "test", None)
        )
    assert status()["schedules"]["daemon_running"] is True
    assert "daemon: running (heartbeat " in invoke("status").stdout
