"""The code location built from ``pond.yaml``: asset keys, dependencies, groups, observable
source assets, metadata, schedules and crons; loading never writes."""

import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pyarrow as pa
import pytest

from pond_pipeline.api import Pond
from pond_pipeline.errors import ConfigError
from pond_pipeline.orchestration.assets import asset_key, job_name
from pond_pipeline.orchestration.build import build_definitions

KEYS = {
    "/sensor_logs": "sensor_logs",
    "/processed/sensor_series": "processed/sensor_series",
    "/clean": "clean",
    "/clean/north.series": "clean/north_series",
    "/clean/south.series": "clean/south_series",
    "/clean/east.series": "clean/east_series",
    "/reduced": "reduced",
    "/analytics/north_south.series": "analytics/north_south_series",
    "/analytics/daily_summary.series": "analytics/daily_summary_series",
    "/analytics/warm_days.series": "analytics/warm_days_series",
    "/reports/sensors.md": "reports/sensors_md",
}


def graph_of(defs: dg.Definitions) -> dict[str, dict]:
    graph = defs.resolve_asset_graph()
    return {
        key.to_user_string(): {
            "deps": sorted(p.to_user_string() for p in graph.get(key).parent_keys),
            "group": graph.get(key).group_name,
            "materializable": graph.get(key).is_materializable,
            "description": graph.get(key).description,
            "metadata": dict(graph.get(key).metadata),
        }
        for key in graph.get_all_asset_keys()
    }


def test_asset_key_replaces_every_character_outside_word_characters():
    assert asset_key("/analytics/daily_summary.series") == dg.AssetKey(
        ["analytics", "daily_summary_series"]
    )
    assert asset_key("/a-b/c d.2024.csv") == dg.AssetKey(["a_b", "c_d_2024_csv"])


def test_example_assets_keys_dependencies_and_groups(example):
    graph = graph_of(example.definitions())

    assert set(graph) == set(KEYS.values())
    assert len(graph) == 11  # 8 nodes in pond.yaml + the 3 entries of /clean
    assert {key: node["deps"] for key, node in graph.items()} == {
        "sensor_logs": [],
        # a glob over the host is no pond dependency; a pond glob into a dynamic directory is
        "processed/sensor_series": ["sensor_logs"],
        # each entry from its own source (a file inside a dynamic directory)
        "clean/north_series": ["processed/sensor_series"],
        "clean/south_series": ["processed/sensor_series"],
        "clean/east_series": ["processed/sensor_series"],
        # the directory runs after its entries' sources, never after its own entries
        "clean": ["processed/sensor_series"],
        # /clean/*.series: the entries it matches and the directory holding them
        "reduced": ["clean", "clean/east_series", "clean/north_series", "clean/south_series"],
        # a file inside the reduce's listing: the reduce (its children are no assets)
        "analytics/north_south_series": ["reduced"],
        "analytics/daily_summary_series": ["processed/sensor_series"],
        # a dynamic file read directly
        "analytics/warm_days_series": ["analytics/daily_summary_series"],
        "reports/sensors_md": [
            "analytics/daily_summary_series",
            "analytics/north_south_series",
            "analytics/warm_days_series",
            "reduced",
        ],
    }
    assert {key: node["group"] for key, node in graph.items()} == {
        "sensor_logs": "sensor_logs",
        "processed/sensor_series": "processed",
        "clean": "clean",
        "clean/north_series": "clean",
        "clean/south_series": "clean",
        "clean/east_series": "clean",
        "reduced": "reduced",
        "analytics/north_south_series": "analytics",
        "analytics/daily_summary_series": "analytics",
        "analytics/warm_days_series": "analytics",
        "reports/sensors_md": "reports",
    }
    assert all(node["materializable"] for node in graph.values())


def test_metadata_names_path_factory_config_and_description(example):
    graph = graph_of(example.definitions())

    summary = graph["analytics/daily_summary_series"]
    assert summary["description"] == "Daily mean temperature per sensor"
    meta = summary["metadata"]
    assert meta["pond/path"] == "/analytics/daily_summary.series"
    assert meta["pond/factory"] == "sql_derived_series"
    assert meta["pond/config"].data["source"] == "/processed/sensor_series/*.series"
    assert "avg(temperature) AS avg_temp" in meta["pond/config"].data["query"]
    assert meta["pond/refresh"] == "1h"
    logs = graph["sensor_logs"]["metadata"]
    assert logs["pond/config"].data == {"host_pattern": "examples/data/*.csv", "type": "data"}
    for path, key in KEYS.items():
        assert graph[key]["metadata"]["pond/path"] == path


def test_schema_block_becomes_two_asset_checks(example):
    graph = example.definitions().resolve_asset_graph()

    assert {(k.asset_key.to_user_string(), k.name) for k in graph.asset_check_keys} == {
        ("analytics/daily_summary_series", "schema"),
        ("analytics/daily_summary_series", "temporal_column"),
    }


def test_example_schedules_one_job_per_interval(example):
    defs = example.definitions()

    schedules = {s.name: s for s in defs.schedules or []}
    assert {name: s.cron_schedule for name, s in schedules.items()} == {
        "refresh_1h_schedule": "0 * * * *",
        "refresh_1d_schedule": "0 0 * * *",
    }
    # running unless pond.yaml says `schedules: stopped`
    assert {s.default_status for s in schedules.values()} == {dg.DefaultScheduleStatus.RUNNING}
    hourly = defs.resolve_job_def("refresh_1h")
    daily = defs.resolve_job_def("refresh_1d")
    assert {k.to_user_string() for k in hourly.asset_layer.executable_asset_keys} == {
        "sensor_logs",
        "clean",
        # the entries share their directory's refresh
        "clean/north_series",
        "clean/south_series",
        "clean/east_series",
        "reduced",
        "analytics/north_south_series",
        "analytics/daily_summary_series",
        "analytics/warm_days_series",
    }
    assert {k.to_user_string() for k in daily.asset_layer.executable_asset_keys} == {
        "reports/sensors_md"
    }


REFRESH_NODES = """\
nodes:
  /every_5m:
    factory: ingest
    config: {host_pattern: "a/*.csv"}
    refresh: 5m
  /every_6h:
    factory: ingest
    config: {host_pattern: "b/*.csv"}
    refresh: 6h
  /also_6h:
    factory: ingest
    config: {host_pattern: "c/*.csv"}
    refresh: 360m
  /daily:
    factory: ingest
    config: {host_pattern: "d/*.csv"}
    refresh: 1d
  /at_3_15:
    factory: ingest
    config: {host_pattern: "e/*.csv"}
    refresh: "cron: 15 3 * * *"
  /never:
    factory: ingest
    config: {host_pattern: "f/*.csv"}
"""


def test_refresh_intervals_map_to_crons(project):
    project.config.write_text(REFRESH_NODES)

    defs = project.definitions()

    crons = {s.job.name: s.cron_schedule for s in defs.schedules or []}
    assert crons == {
        "refresh_5m": "*/5 * * * *",
        "refresh_6h": "0 */6 * * *",
        "refresh_1d": "0 0 * * *",
        job_name("cron: 15 3 * * *"): "15 3 * * *",
    }
    six = defs.resolve_job_def("refresh_6h")
    assert {k.to_user_string() for k in six.asset_layer.executable_asset_keys} == {
        "every_6h",
        "also_6h",
    }


def test_refresh_without_a_cron_is_an_error_at_load_naming_file_line_and_key(project):
    project.config.write_text(REFRESH_NODES.replace("refresh: 6h", "refresh: 7m"))

    with pytest.raises(ConfigError) as caught:
        project.definitions()

    assert caught.value.subject == f"{project.config}:9: nodes./every_6h.refresh"
    assert "'7m' has no cron schedule" in caught.value.reason


def test_a_node_reading_a_glob_of_dynamic_files_depends_on_each(example):
    text = example.config.read_text()
    example.config.write_text(
        text
        + """
  /exports/all.table:
    factory: sql_derived_table
    config:
      source: /analytics/*.series
      query: SELECT sensor, count(*) AS n FROM source GROUP BY ALL
"""
    )

    graph = graph_of(example.definitions())

    assert graph["exports/all_table"]["deps"] == [
        "analytics/daily_summary_series",
        "analytics/north_south_series",
        "analytics/warm_days_series",
    ]
    assert graph["exports/all_table"]["group"] == "exports"


def test_static_files_a_node_reads_become_observable_source_assets(project):
    pond = Pond.create(str(project.pond_path))
    readings = pa.table({"ts": pa.array([1, 2], pa.timestamp("us")), "v": [1.0, 2.0]})
    pond.write_table("/raw/readings.series", readings, "series", parents=True)
    pond.write_table("/raw/stations.table", pa.table({"s": ["a"]}), "table")
    project.config.write_text(
        """\
nodes:
  /derived/high.series:
    factory: sql_derived_series
    config: {source: /raw/readings.series, query: "SELECT * FROM source WHERE v > 1"}
"""
    )

    graph = graph_of(project.definitions())

    assert graph["derived/high_series"]["deps"] == ["raw/readings_series"]
    external = graph["raw/readings_series"]
    assert not external["materializable"]
    assert (
        project.definitions()
        .resolve_asset_graph()
        .get(asset_key("/raw/readings.series"))
        .is_observable
    )
    assert external["metadata"]["pond/path"] == "/raw/readings.series"
    assert external["group"] == "raw"
    assert "raw/stations_table" not in graph  # read by no node


def test_persisted_dynamic_nodes_outside_the_file_are_assets_too(project):
    pond = Pond.create(str(project.pond_path))
    pond.write_table(
        "/raw/readings.series",
        pa.table({"ts": pa.array([1], pa.timestamp("us")), "v": [1.0]}),
        "series",
        parents=True,
    )
    pond.create_dynamic(
        "/adhoc/all.series",
        "sql_derived_series",
        {"source": "/raw/readings.series", "query": "SELECT * FROM source"},
    )
    project.config.write_text(
        """\
nodes:
  /derived/copy.series:
    factory: sql_derived_series
    config: {source: /adhoc/all.series, query: "SELECT * FROM source"}
"""
    )

    graph = graph_of(project.definitions())

    assert graph["adhoc/all_series"]["deps"] == ["raw/readings_series"]
    assert graph["adhoc/all_series"]["metadata"]["pond/factory"] == "sql_derived_series"
    assert graph["derived/copy_series"]["deps"] == ["adhoc/all_series"]


def test_loading_creates_no_pond(example):
    build_definitions()  # POND_CONFIG names the copy

    assert not example.pond_path.exists()
    assert sorted(p.name for p in example.folder.iterdir()) == [
        "examples",
        "pond.yaml",
        "workspace.yaml",
    ]


def test_loading_writes_nothing_to_an_existing_pond(materialized):
    pond = materialized.open()
    before = (len(pond.log()), pond.oplog.version())
    text = materialized.config.read_text()
    materialized.config.write_text(text.replace("refresh: 1d", "refresh: 6h"))  # differs

    materialized.definitions()
    build_definitions()

    assert (len(pond.log()), pond.oplog.version()) == before


def test_code_location_module_reads_pond_config(example, monkeypatch):
    monkeypatch.chdir(example.folder.parent)  # no pond.yaml here: POND_CONFIG is used
    monkeypatch.delitem(sys.modules, "pond_pipeline.orchestration.definitions", raising=False)

    from pond_pipeline.orchestration import definitions

    assert {
        k.to_user_string() for k in definitions.defs.resolve_asset_graph().get_all_asset_keys()
    } >= set(KEYS.values())


@pytest.mark.slow
def test_dagster_definitions_validate_passes(example, tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("POND", "POND_CONFIG")}
    env["DAGSTER_HOME"] = str(tmp_path / "dagster_home")
    Path(env["DAGSTER_HOME"]).mkdir()
    dagster = Path(sys.executable).parent / "dagster"

    result = subprocess.run(
        [str(dagster), "definitions", "validate", "-w", "workspace.yaml"],
        cwd=example.folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert "All code locations passed validation" in result.stdout + result.stderr
    assert not example.pond_path.exists()
