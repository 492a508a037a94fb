"""``pond apply`` and ``pond materialize``: plans, exactly-the-edited-node updates, dry runs,
pruning, every bad ``pond.yaml`` as one ``Error:`` line (exit 2), and the example pipeline
run through Dagster from the CLI.

Each test works on a copy of the repository's ``pond.yaml`` + ``examples/`` in
``tmp_path`` (cwd and ``POND_CONFIG`` point there), so the repository is never written.
"""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from pond_pipeline.api import Pond
from pond_pipeline.cli.main import cli

REPO = Path(__file__).resolve().parents[2]
NODES = (  # the nodes of pond.yaml, in its order (which is also the derivation order)
    "/sensor_logs",
    "/processed/sensor_series",
    "/clean",
    "/reduced",
    "/analytics/north_south.series",
    "/analytics/daily_summary.series",
    "/analytics/warm_days.series",
    "/reports/sensors.md",
)
FACTORIES = (
    "ingest",
    "csv_directory",
    "dynamic_dir",
    "temporal_reduce",
    "timeseries_join",
    "sql_derived_series",
    "sql_derived_series",
    "template",
)
ENTRIES = ("/clean/north.series", "/clean/south.series", "/clean/east.series")
"""Declared inside ``/clean``: no plan line of their own, but a node (and an asset) each."""


class Folder:
    """A folder holding a ``pond.yaml``; its pond is ``.pond`` beside it."""

    def __init__(self, path: Path):
        self.path = path

    @property
    def config(self) -> Path:
        return self.path / "pond.yaml"

    @property
    def pond_path(self) -> Path:
        return self.path / ".pond"

    def open(self) -> Pond:
        return Pond.open(str(self.pond_path))

    def edit(self, old: str, new: str) -> None:
        text = self.config.read_text()
        assert text.count(old) == 1, old
        self.config.write_text(text.replace(old, new))

    def log(self) -> list[dict[str, Any]]:
        result = invoke("--pond", str(self.pond_path), "log", "--format", "json")
        assert result.exit_code == 0, result.stderr
        entries: list[dict[str, Any]] = json.loads(result.stdout)
        return entries


def invoke(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def error_line(result: Result) -> str:
    lines = [line for line in result.stderr.splitlines() if line.startswith("Error: ")]
    assert len(lines) == 1, result.stderr
    assert result.stderr.strip() == lines[0], result.stderr  # nothing else: no traceback
    return lines[0].removeprefix("Error: ")


def plan_lines(result: Result) -> list[tuple[str, str, str]]:
    """``(action, path, factory)`` of each plan line ``+ create    /a  (ingest)``."""
    found = []
    for line in result.stdout.splitlines():
        if line[:1] in "+~=-" and line[1:2] == " ":
            _, action, path, factory = line.split()
            found.append((action, path, factory.strip("()")))
    return found


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Folder:
    """The example pipeline copied into ``tmp_path/project`` (no pond yet)."""
    path = tmp_path / "project"
    path.mkdir()
    shutil.copy(REPO / "pond.yaml", path / "pond.yaml")
    shutil.copytree(REPO / "examples", path / "examples")
    monkeypatch.chdir(path)
    monkeypatch.setenv("POND_CONFIG", str(path / "pond.yaml"))
    monkeypatch.delenv("POND", raising=False)
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    return Folder(path)


@pytest.fixture
def applied(folder: Folder) -> Folder:
    result = invoke("apply")
    assert result.exit_code == 0, result.stderr
    return folder


# -- pond apply ----------------------------------------------------------------------------
def test_apply_creates_every_node_in_one_transaction(folder):
    result = invoke("apply")

    assert result.exit_code == 0, result.stderr
    assert plan_lines(result) == [("create", p, f) for p, f in zip(NODES, FACTORIES, strict=True)]
    assert result.stdout.splitlines()[-1] == f"applied 8 change(s) to {folder.pond_path}"
    log = folder.log()
    assert [t["command"] for t in log] == ["apply pond.yaml", "init"]
    assert set(NODES) <= set(log[0]["paths"])
    for entry in ENTRIES:  # created with their directory, in the same transaction
        node = folder.open().node(entry)
        assert node.is_dynamic
        assert node.factory == "sql_derived_series"
    pond = folder.open()
    summary = pond.node("/analytics/daily_summary.series")
    assert summary.factory == "sql_derived_series"
    assert summary.raw_config["source"] == "/processed/sensor_series/*.series"
    assert summary.latest.attributes["refresh"] == "1h"
    assert "refresh" not in pond.node("/processed/sensor_series").latest.attributes


def test_applying_twice_writes_nothing_the_second_time(applied):
    before = applied.log()

    result = invoke("apply")

    assert result.exit_code == 0, result.stderr
    assert plan_lines(result) == [
        ("unchanged", p, f) for p, f in zip(NODES, FACTORIES, strict=True)
    ]
    assert result.stdout.splitlines()[-1] == "nothing to do: the pond matches the file"
    assert applied.log() == before


def test_a_yaml_edit_plus_apply_changes_exactly_the_edited_node(applied):
    applied.edit("WHERE avg_temp > 15", "WHERE avg_temp > 18")
    pond = applied.open()
    versions = {p: len(pond.node(p).versions) for p in NODES}

    result = invoke("apply")

    assert result.exit_code == 0, result.stderr
    changed = [(a, p) for a, p, _ in plan_lines(result) if a != "unchanged"]
    assert changed == [("update", "/analytics/warm_days.series")]
    latest = applied.log()[0]
    assert latest["command"] == "apply pond.yaml"
    assert latest["paths"] == ["/analytics/warm_days.series"]
    after = {p: len(pond.node(p).versions) for p in NODES}
    assert {p for p in NODES if after[p] != versions[p]} == {"/analytics/warm_days.series"}
    assert "avg_temp > 18" in pond.node("/analytics/warm_days.series").raw_config["query"]


def test_a_refresh_edit_is_an_update_too(applied):
    applied.edit("    refresh: 1d\n", "    refresh: 6h\n")

    result = invoke("apply")

    assert [(a, p) for a, p, _ in plan_lines(result) if a != "unchanged"] == [
        ("update", "/reports/sensors.md")
    ]
    assert applied.open().describe("/reports/sensors.md")["refresh"] == "6h"


def test_dry_run_on_a_fresh_folder_creates_no_pond(folder):
    result = invoke("apply", "--dry-run")

    assert result.exit_code == 0, result.stderr
    assert [a for a, _, _ in plan_lines(result)] == ["create"] * 8
    assert result.stdout.splitlines()[-1] == "dry run: 8 change(s) planned, nothing written"
    assert not folder.pond_path.exists()


def test_dry_run_prints_the_plan_and_writes_nothing(applied):
    applied.edit("WHERE avg_temp > 15", "WHERE avg_temp > 18")
    before = applied.log()

    result = invoke("apply", "--dry-run", "--prune")

    assert result.exit_code == 0, result.stderr
    assert ("update", "/analytics/warm_days.series", "sql_derived_series") in plan_lines(result)
    assert result.stdout.splitlines()[-1] == "dry run: 1 change(s) planned, nothing written"
    assert applied.log() == before


def drop_report(folder: Folder) -> None:
    text = folder.config.read_text()
    folder.config.write_text(text[: text.index("  /reports/sensors.md:")])


def test_prune_removes_a_node_the_file_dropped(applied):
    drop_report(applied)

    kept = invoke("apply")
    assert kept.exit_code == 0, kept.stderr
    assert "remove" not in [a for a, _, _ in plan_lines(kept)]
    assert applied.open().node("/reports/sensors.md").is_dynamic

    result = invoke("apply", "--prune")

    assert result.exit_code == 0, result.stderr
    assert [(a, p) for a, p, _ in plan_lines(result) if a != "unchanged"] == [
        ("remove", "/reports/sensors.md")
    ]
    assert applied.log()[0]["paths"] == ["/reports/sensors.md"]
    assert [i.path for i in applied.open().list_nodes("/reports/")] == []
    again = invoke("apply", "--prune")
    assert [a for a, _, _ in plan_lines(again)] == ["unchanged"] * 7


def test_prune_keeps_nodes_the_file_never_created(applied):
    pond = applied.open()
    pond.create_dynamic(
        "/analytics/adhoc.series",
        "sql_derived_series",
        {"source": "/analytics/daily_summary.series", "query": "SELECT * FROM source"},
    )

    result = invoke("apply", "--prune")

    assert "remove" not in [a for a, _, _ in plan_lines(result)]
    assert applied.open().node("/analytics/adhoc.series").is_dynamic


def test_apply_takes_the_file_as_an_argument(folder, monkeypatch, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    monkeypatch.delenv("POND_CONFIG")

    result = invoke("apply", str(folder.config))

    assert result.exit_code == 0, result.stderr
    assert folder.pond_path.exists()  # relative to the file, not the working directory
    assert not (elsewhere / ".pond").exists()


# -- every bad pond.yaml ---------------------------------------------------------------------
NODE = "  /a:\n    factory: ingest\n    config: {host_pattern: 'data/*.csv'}\n"
SERIES = "  /{name}.series:\n    factory: sql_derived_series\n    config: {{source: {source}, query: 'SELECT * FROM source'}}\n"  # noqa: E501

BAD_FILES = {
    "yaml syntax": (
        "nodes:\n  /a: {factory: ingest\n  /b: 1\n",
        3,
        "",
        "invalid YAML",
    ),
    "unknown top-level key": (
        "pond: ./.pond\nnodez:\n" + NODE,
        2,
        "nodez",
        "unknown key; top-level keys are pond, schedules and nodes",
    ),
    "unknown node key": (
        "nodes:\n" + NODE + "    colour: red\n",
        5,
        "nodes./a.colour",
        "unknown key; node keys are factory, config, description, refresh, automation, schema",
    ),
    "duplicate path": (
        "nodes:\n" + NODE + NODE,
        5,
        "",
        "duplicate key 'nodes./a' (first on line 2)",
    ),
    "duplicate path once normalized": (
        "nodes:\n" + NODE + NODE.replace("/a:", "/b/../a:"),
        5,
        "nodes./b/../a",
        "duplicate node path '/a'",
    ),
    "unknown factory": (
        "nodes:\n  /a:\n    factory: injest\n",
        3,
        "nodes./a.factory",
        "unknown factory 'injest'",
    ),
    "bad config field": (
        "nodes:\n  /a:\n    factory: ingest\n    config: {host_pattern: 'a', type: csv}\n",
        4,
        "nodes./a.config.type",
        "invalid config for factory 'ingest': type: Input should be 'data', 'table' or 'series'",
    ),
    "unknown config field": (
        "nodes:\n  /a:\n    factory: ingest\n    config:\n      host_pattern: a\n"
        "      hostpattern: b\n",
        6,
        "nodes./a.config.hostpattern",
        "invalid config for factory 'ingest': hostpattern: unknown field",
    ),
    "bad refresh": (
        "nodes:\n" + NODE + "    refresh: 7m\n",
        5,
        "nodes./a.refresh",
        "refresh '7m' has no cron schedule",
    ),
    "refresh not a duration": (
        "nodes:\n" + NODE + "    refresh: hourly\n",
        5,
        "nodes./a.refresh",
        "is not a duration",
    ),
    "bad cron": (
        "nodes:\n" + NODE + "    refresh: 'cron: 15 3 *'\n",
        5,
        "nodes./a.refresh",
        "'15 3 *' is not a five-field cron expression",
    ),
    "bad automation": (
        "nodes:\n" + NODE + "    automation: lazy\n",
        5,
        "nodes./a.automation",
        "Input should be 'eager' or 'on_cron'",
    ),
    "on_cron without refresh": (
        "nodes:\n" + NODE + "    automation: on_cron\n",
        5,
        "nodes./a.automation",
        "automation: on_cron needs a refresh (its cron)",
    ),
    "bad schedules": (
        "pond: ./.pond\nschedules: paused\nnodes:\n" + NODE,
        2,
        "schedules",
        "Input should be 'running' or 'stopped'",
    ),
    "derivation cycle": (
        "nodes:\n"
        + SERIES.format(name="a", source="/b.series")
        + SERIES.format(name="b", source="/a.series"),
        2,
        "nodes./a.series",
        "derivation cycle: /a.series -> /b.series -> /a.series",
    ),
    "node reading itself": (
        "nodes:\n" + SERIES.format(name="a", source="/*.series"),
        2,
        "nodes./a.series",
        "derivation cycle: /a.series -> /a.series",
    ),
    "relative node key": (
        "nodes:\n" + NODE.replace("/a:", "a:"),
        2,
        "nodes.a",
        "a node key must be an absolute pond path; write /a",
    ),
    "bad schema type": (
        "nodes:\n"
        + SERIES.format(name="a", source="/x.series")
        + "    schema:\n      columns:\n        v: {type: decimal}\n",
        7,
        "nodes./a.series.schema.columns.v.type",
        "Input should be 'string'",
    ),
    "not a mapping": ("- /a\n- /b\n", 1, "", "must be a mapping with keys 'pond' and 'nodes'"),
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_a_bad_pond_yaml_is_one_error_line_naming_file_line_and_key(case, tmp_path, monkeypatch):
    text, line, key, reason = BAD_FILES[case]
    config = tmp_path / "pond.yaml"
    config.write_text(text)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("POND_CONFIG", raising=False)
    monkeypatch.delenv("POND", raising=False)

    result = invoke("apply", str(config))

    assert result.exit_code == 2, result.stdout + result.stderr
    message = error_line(result)
    assert message.startswith(f"{config}:{line}: {key}" if key else f"{config}:{line}: ")
    assert reason in message
    assert result.stdout == ""
    assert not (tmp_path / ".pond").exists()


def test_materialize_rejects_a_bad_pond_yaml_the_same_way(folder):
    folder.edit("    refresh: 1d\n", "    refresh: 7m\n")

    result = invoke("materialize", "--all")

    assert result.exit_code == 2
    message = error_line(result)
    assert message.startswith(f"{folder.config}:")
    assert "nodes./reports/sensors.md.refresh: refresh '7m' has no cron schedule" in message
    assert not folder.pond_path.exists()


# -- pond materialize ----------------------------------------------------------------------
def test_materialize_all_runs_the_pipeline_and_the_log_shows_the_run_ids(folder):
    result = invoke("materialize", "--all")

    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    # one run: Dagster orders it by the asset graph (each node after what it reads)
    done = [line for line in lines if line.startswith("✓ ")]
    order = [line.split(":")[0].removeprefix("✓ ") for line in done]
    assert sorted(order) == sorted([*NODES, *ENTRIES])
    by_path = dict(zip(order, done, strict=True))
    assert lines[0] == "✓ /sensor_logs: 3 version(s) written in txn 2"
    assert lines[1].startswith("✓ /processed/sensor_series: 216 rows; 4 version(s) written")
    # the directory writes its entries (214 rows: north's two fault rows dropped), so
    # their own steps, right after, find them current
    assert by_path["/clean"].startswith("✓ /clean: 214 rows; 4 version(s) written in txn ")
    assert order[order.index("/clean") + 1 :][:3] == sorted(ENTRIES)
    assert [by_path[entry] for entry in ENTRIES] == [
        f"✓ {entry}: 0 version(s) written" for entry in ENTRIES
    ]
    # 3 sites x (hourly + daily): 70 + 72 + 72 hours and 3 x 3 days, in 3 + 1 directories
    assert by_path["/reduced"].startswith("✓ /reduced: 223 rows; 10 version(s) written in txn ")
    assert by_path["/analytics/north_south.series"].startswith(
        "✓ /analytics/north_south.series: 72 rows; 1 version(s)"
    )
    summary = by_path["/analytics/daily_summary.series"]
    assert summary.startswith("✓ /analytics/daily_summary.series: 9 rows; 1 version(s)")
    assert summary.endswith("checks: schema passed, temporal_column passed")
    assert by_path["/analytics/warm_days.series"].startswith(
        "✓ /analytics/warm_days.series: 6 rows; 1 version(s)"
    )
    assert done[-1].startswith("✓ /reports/sensors.md: 1 version(s) written")
    assert "report: pond cat /reports/sensors.md" in result.stdout
    assert "dagster dev -w workspace.yaml" in lines[-1]
    log = folder.log()
    runs = [t for t in log if t["command"].startswith("materialize ")]
    written = [p for p in reversed(order) if p not in ENTRIES]  # newest first
    assert [t["command"] for t in runs] == [f"materialize {p}" for p in written]
    for path, t in zip(written, runs, strict=True):  # each line names its transaction
        assert by_path[path].split(" in txn ")[1].split(";")[0] == str(t["txn"])
    assert all(t.get("run_id") for t in runs)
    assert len({t["run_id"] for t in runs}) == 1  # one in-process run for the selection
    assert "run_id" not in log[-1]  # init
    table = invoke("--pond", str(folder.pond_path), "log", "--limit", "1").stdout
    assert runs[0]["run_id"] in table
    report = invoke("--pond", str(folder.pond_path), "cat", "/reports/sensors.md").stdout
    assert "| 2024-05-02 | north | 12.3 | 5.6 | 18.4 | 22 |" in report

    again = invoke("materialize", "--all")

    assert again.exit_code == 0, again.stderr
    assert folder.log() == log
    again_lines = [line for line in again.stdout.splitlines() if line.startswith("✓ ")]
    assert len(again_lines) == len(NODES) + len(ENTRIES)
    assert all(": 0 version(s) written" in line for line in again_lines), again_lines


def test_one_materialize_reads_pond_yaml_once(applied, monkeypatch):
    """`pond materialize --all` of the example (8 nodes, 3 entries) opens pond.yaml once:
    the CLI loads it and hands the pipeline to the definitions and every run."""
    config = applied.config.resolve()
    opened: list[Path] = []
    read_bytes = Path.read_bytes

    def counted(self: Path) -> bytes:
        if self.resolve() == config:
            opened.append(self)
        return read_bytes(self)

    monkeypatch.setattr(Path, "read_bytes", counted)

    result = invoke("materialize", "--all")

    assert result.exit_code == 0, result.stderr
    assert len([line for line in result.stdout.splitlines() if line.startswith("✓ ")]) == 11
    assert len(opened) == 1


def test_materialize_selected_paths_with_a_config_file_elsewhere(folder, monkeypatch, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # no pond.yaml here
    monkeypatch.delenv("POND_CONFIG")

    result = invoke("materialize", "/sensor_logs", "--config", str(folder.config))

    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines()[0] == "✓ /sensor_logs: 3 version(s) written in txn 2"
    assert [t["command"] for t in folder.log()] == ["materialize /sensor_logs", "init"]


def test_materialize_an_unknown_path_is_an_error(folder):
    result = invoke("materialize", "/nope")

    assert result.exit_code == 1
    assert error_line(result) == (
        "/nope: is not a dynamic node of this pipeline; see `pond list` or pond.yaml"
    )
    assert not folder.pond_path.exists()


def test_materialize_stops_at_a_failed_check_and_writes_nothing_for_it(folder):
    assert invoke("materialize", "--all").exit_code == 0
    folder.edit("checks: {ge: -60, le: 60}", "checks: {le: 10}")
    before = folder.log()

    result = invoke("materialize", "--all")

    assert result.exit_code == 1
    message = error_line(result)
    assert message.startswith("/analytics/daily_summary.series: schema checks failed")
    assert "avg_temp: less_than_or_equal_to(10.0)" in message
    assert "✗ /analytics/daily_summary.series" in result.stdout
    # what reads it is skipped; the rest of the run still ran (and found nothing to do)
    assert (
        "- /analytics/warm_days.series: skipped, /analytics/daily_summary.series failed"
        in result.stdout
    )
    assert "✓ /analytics/warm_days.series" not in result.stdout
    assert "✓ /analytics/north_south.series: 0 version(s) written" in result.stdout
    assert folder.log() == before


@pytest.mark.slow
def test_apply_in_a_subprocess_never_imports_dagster(folder):
    code = (
        "import sys\n"
        "from pond_pipeline.cli.main import cli\n"
        "try:\n"
        "    cli(['apply', '--dry-run'], prog_name='pond')\n"
        "except SystemExit:\n"
        "    pass\n"
        "print('dagster' in sys.modules)\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "POND"}

    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=folder.path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )

    assert result.stdout.splitlines()[-1] == "False"
    assert "dry run: 8 change(s) planned" in result.stdout
