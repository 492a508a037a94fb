"""Issue 7's factories in Dagster: each ``dynamic_dir`` entry an asset of its own (key
and dependencies from its path and patterns), a ``temporal_reduce`` one asset writing
every child, ``refresh`` and ``schema:`` on all of them, the example's reductions and
join checked against DuckDB over the sample CSVs, repeats writing nothing, and an
appended hour re-reducing only what it touches."""

import shutil
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb
import pyarrow as pa
import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
SENSORS = ("east", "north", "south")
ENTRIES = ("/clean/north.series", "/clean/south.series", "/clean/east.series")
REDUCED = "/reduced"
JOIN = "/analytics/north_south.series"
RESOLUTIONS = {"1h": "hour", "1d": "day"}
CHILDREN = [f"/reduced/{s}/res={r}.series" for s in SENSORS for r in RESOLUTIONS]
REDUCE_COLUMNS = [
    "timestamp",
    "temperature.avg",
    "humidity.avg",
    "temperature.min",
    "temperature.max",
    "count",
]
NOON = datetime(2024, 5, 1, 12)
LATER_HOURS = "2024-05-04 00:00:00,north,9.50,60.0\n2024-05-04 01:00:00,north,9.10,61.0\n"


def materializations(result: dg.ExecuteInProcessResult) -> dict[str, dict[str, Any]]:
    """Each materialized asset's metadata, as plain values."""
    return {
        e.asset_key.to_user_string(): {
            k: getattr(v, "value", v)
            for k, v in e.step_materialization_data.materialization.metadata.items()
        }
        for e in result.get_asset_materialization_events()
    }


def checks(result: dg.ExecuteInProcessResult) -> dict[tuple[str, str], dg.AssetCheckEvaluation]:
    return {
        (e.asset_key.to_user_string(), e.check_name): e
        for e in result.get_asset_check_evaluations()
    }


def graph_of(defs: dg.Definitions) -> dict[str, Any]:
    graph = defs.resolve_asset_graph()
    return {key.to_user_string(): graph.get(key) for key in graph.get_all_asset_keys()}


def deps(node: Any) -> list[str]:
    return sorted(p.to_user_string() for p in node.parent_keys)


def jobs(defs: dg.Definitions) -> dict[str, set[str]]:
    return {
        s.job.name: {
            k.to_user_string()
            for k in defs.resolve_job_def(s.job.name).asset_layer.executable_asset_keys
        }
        for s in defs.schedules or []
    }


def versions(pond: Any) -> dict[str, int]:
    return {info.path: len(pond.node(info.path).versions) for info in pond.list_nodes()}


def csv(data: Path, sensor: str) -> str:
    return f"read_csv('{data}/{sensor}.csv', timestampformat='%Y-%m-%d %H:%M:%S')"


def expected_reduction(data: Path, sensor: str, unit: str) -> list[tuple[Any, ...]]:
    """One site's readings without the fault markers, reduced to ``unit`` buckets by
    DuckDB straight from its CSV (the pond is not involved)."""
    return duckdb.sql(
        f"""
        SELECT date_trunc('{unit}', timestamp) AS bucket, avg(temperature), avg(humidity),
               min(temperature), max(temperature), count(*)
        FROM {csv(data, sensor)} WHERE temperature > -100
        GROUP BY ALL ORDER BY bucket
        """
    ).fetchall()


def assert_reduction(table: pa.Table, expected: list[tuple[Any, ...]]) -> None:
    assert table.column_names == REDUCE_COLUMNS
    rows = [tuple(r.values()) for r in table.to_pylist()]
    assert [(r[0], r[5]) for r in rows] == [(e[0], e[5]) for e in expected]  # buckets, counts
    for got, want in zip(rows, expected, strict=True):
        assert got[1:5] == pytest.approx(want[1:5])


def reading(data: Path, sensor: str, hour: datetime) -> float:
    """The mean temperature of one site over one hour, from its CSV."""
    ((value,),) = duckdb.sql(
        f"""
        SELECT avg(temperature) FROM {csv(data, sensor)}
        WHERE timestamp >= '{hour}' AND timestamp < '{hour}'::TIMESTAMP + INTERVAL 1 HOUR
          AND temperature > -100
        """
    ).fetchall()
    assert value is not None
    return float(value)


# -- dynamic_dir: an asset per entry -------------------------------------------------------
def test_each_entry_of_the_dynamic_dir_is_an_asset_of_its_own(example):
    graph = graph_of(example.definitions())
    declared = yaml.safe_load(example.config.read_text())["nodes"]["/clean"]["config"]["entries"]

    for entry, spec in zip(ENTRIES, declared, strict=True):
        key = "clean/" + entry.removeprefix("/clean/").replace(".", "_")
        node = graph[key]
        assert deps(node) == ["processed/sensor_series"]  # from its source, a literal path
        assert node.group_name == "clean"
        assert node.is_materializable
        assert node.metadata["pond/path"] == entry == f"/clean/{spec['name']}"
        assert node.metadata["pond/factory"] == "sql_derived_series"
        assert node.metadata["pond/config"].data == spec["config"]
        assert node.metadata["pond/refresh"] == "1h"  # the directory's
    assert graph["clean/north_series"].metadata["pond/config"].data["source"] == (
        "/processed/sensor_series/north.series"
    )
    # the directory runs after what its entries read, and nothing inside it waits for it
    assert deps(graph["clean"]) == ["processed/sensor_series"]
    assert [k for k, n in graph.items() if "clean" in deps(n)] == ["reduced"]
    # the reduce's children are no assets: it is one
    assert not [k for k in graph if k.startswith("reduced/")]


TWO_SOURCES = """\
nodes:
  /gen/a.series:
    factory: synthetic
    config:
      start: 2024-01-01T00:00:00Z
      end: 2024-01-01T12:00:00Z
      interval: 1h
      points: [{name: v, components: [{type: line, slope: 0.001, offset: 1}]}]
  /deep/more/b.series:
    factory: sql_derived_series
    config: {source: /gen/a.series, query: "SELECT timestamp, v * 2 AS v FROM source"}
  /d:
    factory: dynamic_dir
    config:
      entries:
        - name: a.series
          factory: sql_derived_series
          config: {source: /gen/a.series, query: "SELECT * FROM source WHERE v > 1"}
        - name: a_high.series
          factory: sql_derived_series
          config: {source: /d/a.series, query: "SELECT * FROM source WHERE v > 10"}
        - name: b.series
          factory: sql_derived_series
          config: {source: /deep/*/b.series, query: "SELECT * FROM source"}
    refresh: 6h
  /reduced:
    factory: temporal_reduce
    config:
      in_pattern: /d/*.series
      out_pattern: $1
      resolutions: [6h]
      aggregations: [{type: count, columns: ["*"]}]
    refresh: 1d
  /joined.series:
    factory: timeseries_join
    config:
      inputs:
        - {pattern: /reduced/a/res=6h.series, scope: a}
        - {pattern: /reduced/b/res=6h.series, scope: b}
    refresh: 5m
"""


def test_entry_dependencies_come_from_their_patterns_and_refresh_from_the_directory(project):
    project.config.write_text(TWO_SOURCES)

    defs = project.definitions()
    graph = graph_of(defs)

    assert {key: deps(node) for key, node in graph.items()} == {
        "gen/a_series": [],
        "deep/more/b_series": ["gen/a_series"],
        "d/a_series": ["gen/a_series"],
        # a later entry reading an earlier one (not the directory holding both)
        "d/a_high_series": ["d/a_series"],
        "d/b_series": ["deep/more/b_series"],
        # the entries' sources outside the directory, through a glob into another folder
        "d": ["deep/more/b_series", "gen/a_series"],
        "reduced": ["d", "d/a_high_series", "d/a_series", "d/b_series"],
        "joined_series": ["reduced"],
    }
    assert jobs(defs) == {
        "refresh_6h": {"d", "d/a_series", "d/a_high_series", "d/b_series"},
        "refresh_1d": {"reduced"},
        "refresh_5m": {"joined_series"},
    }
    assert {s.job.name: s.cron_schedule for s in defs.schedules or []} == {
        "refresh_6h": "0 */6 * * *",
        "refresh_1d": "0 0 * * *",
        "refresh_5m": "*/5 * * * *",
    }

    result = project.materialize()

    assert result.success
    pond = project.open()
    order = [t.command.removeprefix("materialize ") for t in reversed(pond.log())][1:]
    assert order.index("/d") > order.index("/deep/more/b.series") > order.index("/gen/a.series")
    assert pond.read_table("/d/a.series").num_rows == 12  # 13 hours, v = 1 at the first
    assert pond.read_table("/d/a_high.series").num_rows == 10  # from 03:00 (v = 11.8)
    assert pond.read_table("/d/b.series").num_rows == 13
    assert pond.read_table("/reduced/b/res=6h.series").column("count").to_pylist() == [6, 6, 1]
    assert pond.read_table("/joined.series").column("a.count").to_pylist() == [5, 6, 1]


def test_an_entry_materialized_alone_creates_its_directory_first(example):
    result = example.materialize("/sensor_logs", "/processed/sensor_series", ENTRIES[0])

    assert result.success
    pond = example.open()
    (entry_txn,) = [t for t in pond.log() if t.command == f"materialize {ENTRIES[0]}"]
    assert entry_txn.paths == ["/clean", ENTRIES[0]]
    assert entry_txn.run_id == result.run_id
    assert pond.read_table(ENTRIES[0]).num_rows == 70
    assert pond.node("/clean").factory == "dynamic_dir"
    assert [len(pond.node(e).versions) for e in ENTRIES] == [1, 0, 0]


def test_an_entry_materialized_alone_applies_its_edited_config(materialized):
    north = 'north.series, query: "SELECT * FROM source WHERE temperature > -100"'
    materialized.edit(north, 'north.series, query: "SELECT * FROM source WHERE temperature > 10"')
    pond = materialized.open()
    before = versions(pond)
    log_before = len(pond.log())

    result = materialized.materialize(ENTRIES[0])

    assert result.success
    new = pond.log()[: len(pond.log()) - log_before]
    assert [t.command for t in new] == [f"materialize {ENTRIES[0]}"]
    ((warm,),) = duckdb.sql(
        f"SELECT count(*) FROM {csv(materialized.data, 'north')} WHERE temperature > 10"
    ).fetchall()
    assert pond.read_table(ENTRIES[0]).num_rows == warm == 43
    stored = pond.node("/clean").raw_config["entries"][0]["config"]["query"]
    assert stored.endswith("temperature > 10")
    after = versions(pond)
    assert {p for p in after if after[p] != before[p]} == {"/clean", ENTRIES[0]}


SCHEMA_ON_DIR = """\
    schema:
      temporal_column: timestamp
      columns:
        temperature: {type: double, checks: {le: 30}}
"""


def test_an_entry_is_checked_against_its_directory_schema(materialized):
    text = materialized.config.read_text()
    anchor = "  /reduced:\n"
    materialized.config.write_text(text.replace(anchor, SCHEMA_ON_DIR + anchor))
    east = materialized.data / "east.csv"
    east.write_text(east.read_text().replace("00:00:00,east,11.37,", "00:00:00,east,41.37,"))
    materialized.materialize("/sensor_logs", "/processed/sensor_series")
    pond = materialized.open()
    before = (versions(pond), len(pond.log()))

    # /clean itself is current (its entries' configs did not change): the entries write
    result = materialized.materialize("/clean", *ENTRIES, raise_on_error=False)

    assert not result.success
    found = checks(result)
    assert found["clean", "schema"].passed  # what it holds still passes
    assert not found["clean/east_series", "schema"].passed
    failures = found["clean/east_series", "schema"].metadata["failures"].value
    assert [(f["path"], f["column"]) for f in failures] == [("/clean/east.series", "temperature")]
    assert found["clean/north_series", "schema"].passed
    assert found["clean/south_series", "schema"].passed
    assert (versions(pond), len(pond.log())) == before


# -- the example's reductions and join -----------------------------------------------------
def test_the_reduce_is_one_asset_whose_run_writes_every_child(materialized_once):
    example, result = materialized_once.project, materialized_once.result

    pond = example.open()
    meta = materializations(result)["reduced"]
    (txn,) = [t for t in pond.log() if t.command == "materialize /reduced"]
    assert sorted(txn.paths) == sorted(["/reduced", *(f"/reduced/{s}" for s in SENSORS), *CHILDREN])
    assert meta["pond/txn"] == txn.txn_seq
    assert meta["pond/versions_written"] == 10  # the reduce, 3 site folders, 6 series
    assert meta["dagster/row_count"] == 70 + 72 + 72 + 3 * 3
    assert meta["pond/rows_read"] == 2 * (70 + 72 + 72)  # each resolution read its site
    sites = {c["path"]: c for c in meta["pond/children"]}
    assert sorted(sites) == [f"/reduced/{s}" for s in SENSORS]
    for sensor in SENSORS:
        site = sites[f"/reduced/{sensor}"]
        assert [c["path"] for c in site["children"]] == [
            f"/reduced/{sensor}/res={r}.series" for r in RESOLUTIONS
        ]
        hours = 70 if sensor == "north" else 72
        assert [c["rows"] for c in site["children"]] == [hours, 3]
        assert [c["metrics"]["rows_read"] for c in site["children"]] == [hours, hours]

    for sensor in SENSORS:
        for resolution, unit in RESOLUTIONS.items():
            table = pond.read_table(f"/reduced/{sensor}/res={resolution}.series")
            assert_reduction(table, expected_reduction(example.data, sensor, unit))
    hourly = {s: pond.read_table(f"/reduced/{s}/res=1h.series") for s in SENSORS}
    assert {s: t.num_rows for s, t in hourly.items()} == {"east": 72, "north": 70, "south": 72}
    missing = {datetime(2024, 5, 2, 6), datetime(2024, 5, 2, 7)}  # north's two faults
    assert missing.isdisjoint(hourly["north"].column("timestamp").to_pylist())
    assert missing <= set(hourly["south"].column("timestamp").to_pylist())
    daily = {s: pond.read_table(f"/reduced/{s}/res=1d.series") for s in SENSORS}
    assert {s: t.column("count").to_pylist() for s, t in daily.items()} == {
        "east": [24, 24, 24],
        "north": [24, 22, 24],
        "south": [24, 24, 24],
    }
    assert daily["north"].column("timestamp").to_pylist() == [
        datetime(2024, 5, d) for d in (1, 2, 3)
    ]


def test_the_join_lines_up_north_and_south_hour_by_hour(materialized_once):
    example, result = materialized_once.project, materialized_once.result

    joined = example.open().read_table(JOIN)

    assert materializations(result)["analytics/north_south_series"]["dagster/row_count"] == 72
    assert joined.column_names == [
        "timestamp",
        *(f"{site}.{c}" for site in ("north", "south") for c in REDUCE_COLUMNS[1:]),
    ]
    rows = {r["timestamp"]: r for r in joined.to_pylist()}
    assert len(rows) == joined.num_rows == 72
    noon = rows[NOON]
    assert noon["north.temperature.avg"] == pytest.approx(reading(example.data, "north", NOON))
    assert noon["south.temperature.avg"] == pytest.approx(reading(example.data, "south", NOON))
    assert (noon["north.temperature.avg"], noon["south.temperature.avg"]) == pytest.approx(
        (16.37, 25.11)
    )
    # north's two fault hours: south alone
    gaps = [t for t, r in rows.items() if r["north.count"] is None]
    assert gaps == [datetime(2024, 5, 2, 6), datetime(2024, 5, 2, 7)]
    assert all(rows[t]["south.count"] == 1 for t in rows)


def test_the_report_sections_from_the_join_and_the_reductions(materialized_once):
    example = materialized_once.project

    report = example.open().read_bytes("/reports/sensors.md").decode()

    data = example.data
    ((hours, diff, widest),) = duckdb.sql(
        f"""
        WITH n AS (SELECT date_trunc('hour', timestamp) AS h, avg(temperature) AS t,
                          max(temperature) AS m
                   FROM {csv(data, "north")} WHERE temperature > -100 GROUP BY 1),
             s AS (SELECT date_trunc('hour', timestamp) AS h, avg(temperature) AS t,
                          max(temperature) AS m
                   FROM {csv(data, "south")} WHERE temperature > -100 GROUP BY 1)
        SELECT count(*), round(avg(s.t - n.t), 1), round(max(s.m - n.m), 1)
        FROM s FULL JOIN n USING (h)
        """
    ).fetchall()
    assert (hours, diff, widest) == (72, 9.0, 10.3)
    assert (
        f"Over {hours} hours the south site was on average {diff} °C warmer than the north "
        f"(at most {widest} °C between their hourly maxima)."
    ) in report
    extremes = duckdb.sql(
        f"""
        SELECT strftime(date_trunc('day', timestamp), '%Y-%m-%d'), round(min(temperature), 1),
               round(max(temperature), 1), count(*)
        FROM read_csv('{data}/*.csv', timestampformat='%Y-%m-%d %H:%M:%S')
        WHERE temperature > -100 GROUP BY 1 ORDER BY 1
        """
    ).fetchall()
    section = report.split("## Daily extremes")[1]
    assert [line for line in section.splitlines() if line.startswith("| 2024")] == [
        "| " + " | ".join(str(v) for v in row) + " |" for row in extremes
    ]
    assert "| 2024-05-02 | 5.6 | 27.6 | 70 |" in section


def test_rematerializing_the_transforms_with_no_change_writes_nothing(materialized):
    pond = materialized.open()
    before = (len(pond.log()), pond.oplog.version(), versions(pond))

    result = materialized.materialize("/clean", *ENTRIES, REDUCED, JOIN)

    assert result.success
    assert (len(pond.log()), pond.oplog.version(), versions(pond)) == before
    found = materializations(result)
    assert len(found) == 6
    for meta in found.values():
        assert meta["pond/versions_written"] == 0
        assert "pond/txn" not in meta
    assert "pond/rows_read" not in found["reduced"]  # nothing was read again


# -- a later hour --------------------------------------------------------------------------
def append_later_hours(data: Path) -> None:
    north = data / "north.csv"
    north.write_text(north.read_text() + LATER_HOURS)


def test_an_appended_hour_updates_that_site_only_and_equals_a_full_computation(materialized):
    pond = materialized.open()
    before = versions(pond)
    append_later_hours(materialized.data)

    result = materialized.materialize()

    assert result.success
    after = versions(pond)
    changed = {p for p in after if after[p] != before.get(p)}
    assert {p for p in changed if p.startswith(REDUCED)} == {
        "/reduced",
        "/reduced/north",
        "/reduced/north/res=1h.series",
        "/reduced/north/res=1d.series",
    }
    assert JOIN in changed
    meta = materializations(result)["reduced"]
    assert meta["pond/versions_written"] == 4
    assert [c["path"] for c in meta["pond/children"] if c["changed"]] == ["/reduced/north"]
    # at most north's 72 rows per resolution: east and south are not read again (a first
    # run reads 2 x 214)
    assert 0 < meta["pond/rows_read"] <= 2 * 72
    for sensor in SENSORS:
        for resolution, unit in RESOLUTIONS.items():
            table = pond.read_table(f"/reduced/{sensor}/res={resolution}.series")
            assert_reduction(table, expected_reduction(materialized.data, sensor, unit))
    north = pond.read_table("/reduced/north/res=1d.series").to_pylist()
    assert [(r["timestamp"].day, r["count"]) for r in north] == [(1, 24), (2, 22), (3, 24), (4, 2)]
    joined = pond.read_table(JOIN)
    assert joined.num_rows == 74
    assert joined.slice(73).to_pylist()[0]["south.count"] is None


@pytest.mark.xfail(
    reason="the example's reduce reads /clean/*.series, dynamic nodes rewritten whole by "
    "each materialization: temporal_bucket only reads new versions of a static series",
    strict=True,
)
def test_an_appended_hour_is_reduced_incrementally_in_the_example(materialized):
    append_later_hours(materialized.data)

    result = materialized.materialize()

    sites = {c["path"]: c for c in materializations(result)["reduced"]["pond/children"]}
    read = [c["metrics"]["rows_read"] for c in sites["/reduced/north"]["children"]]
    assert max(read) < 72 // 10, read  # a full read is 72 rows per resolution


# -- a hand-written pipeline: ingested series, schema on the reduce and the join ------------
def small_pipeline(
    project: Any, reduce_schema: str = "", join_schema: str = "", data: Path | None = None
) -> None:
    """A ``pond.yaml`` in ``project``'s folder: the sample CSVs (copied to ``data/``)
    ingested as series (fault rows kept), reduced, and north and south joined."""
    shutil.copytree(data or REPO / "examples" / "data", project.folder / "data")
    project.config.write_text(
        f"""\
nodes:
  /raw:
    factory: ingest
    config: {{host_pattern: "data/*.csv", type: series, time_column: timestamp}}
  /reduced:
    factory: temporal_reduce
    config:
      in_pattern: /raw/*.series
      out_pattern: $1
      resolutions: [1h, 1d]
      aggregations:
        - {{type: avg, columns: [temperature]}}
        - {{type: min, columns: [temperature]}}
        - {{type: count, columns: ["*"]}}
{reduce_schema}\
  /joined.series:
    factory: timeseries_join
    config:
      inputs:
        - {{pattern: /reduced/north/res=1h.series, scope: north}}
        - {{pattern: /reduced/south/res=1h.series, scope: south}}
{join_schema}"""
    )


REDUCE_PASSES = """\
    schema:
      temporal_column: timestamp
      columns:
        count: {type: int64, checks: {gt: 0, le: 24}}
        temperature.avg: {type: double}
"""
REDUCE_FAILS = """\
    schema:
      temporal_column: timestamp
      columns:
        temperature.min: {type: double, checks: {ge: -60}}
"""
JOIN_PASSES = """\
    schema:
      temporal_column: timestamp
      columns:
        south.temperature.avg: {type: double, nullable: false, checks: {ge: 10, le: 35}}
        north.count: {type: int64, checks: {isin: [1]}}
"""
JOIN_FAILS = """\
    schema:
      temporal_column: timestamp
      columns:
        north.temperature.avg: {type: double, checks: {ge: -60}}
"""


def test_a_schema_on_the_reduce_and_the_join_passes(project):
    small_pipeline(project, REDUCE_PASSES, JOIN_PASSES)

    result = project.materialize()

    assert result.success
    found = {k: (e.passed, e.description) for k, e in checks(result).items()}
    assert found == {
        ("reduced", "schema"): (True, "passed on 6 table(s)"),  # every child
        ("reduced", "temporal_column"): (True, "passed on 6 table(s)"),
        ("joined_series", "schema"): (True, "passed on 1 table(s)"),
        ("joined_series", "temporal_column"): (True, "passed on 1 table(s)"),
    }
    pond = project.open()
    assert pond.read_table("/joined.series").num_rows == 72
    assert pond.read_table("/reduced/north/res=1h.series").num_rows == 72  # faults kept


def test_a_schema_on_the_join_fails_and_nothing_of_it_lands(project):
    small_pipeline(project, join_schema=JOIN_FAILS)

    result = project.materialize(raise_on_error=False)

    assert not result.success
    found = checks(result)
    assert found["joined_series", "temporal_column"].passed
    schema = found["joined_series", "schema"]
    assert not schema.passed
    assert schema.description.startswith("failed: column north.temperature.avg: ")
    (failure,) = schema.metadata["failures"].value
    assert (failure["path"], failure["column"], failure["check"]) == (
        "/joined.series",
        "north.temperature.avg",
        "greater_than_or_equal_to(-60.0)",
    )
    assert [float(v) for v in failure["values"]] == [-999.0, -999.0]  # north's fault hours
    assert set(materializations(result)) == {"raw", "reduced"}
    pond = project.open()
    assert "/joined.series" not in {i.path for i in pond.list_nodes()}
    assert pond.read_table("/reduced/north/res=1h.series").num_rows == 72


def test_a_schema_on_the_reduce_fails_and_no_child_lands(project):
    small_pipeline(project, reduce_schema=REDUCE_FAILS)

    result = project.materialize(raise_on_error=False)

    assert not result.success
    found = checks(result)
    assert not found["reduced", "schema"].passed
    (failure,) = found["reduced", "schema"].metadata["failures"].value
    assert failure["path"].startswith("/reduced/north/res=")
    assert failure["column"] == "temperature.min"
    assert set(materializations(result)) == {"raw"}  # the join never ran
    assert not [i.path for i in project.open().list_nodes() if i.path.startswith("/reduced")]


def test_a_stricter_schema_on_the_reduce_fails_on_what_it_holds(project):
    small_pipeline(project, REDUCE_PASSES)
    assert project.materialize().success
    pond = project.open()
    before = (len(pond.log()), versions(pond))
    project.config.write_text(
        project.config.read_text().replace("{gt: 0, le: 24}", "{gt: 0, le: 23}")
    )

    result = project.materialize(REDUCED, raise_on_error=False)

    assert not result.success
    (failure,) = checks(result)["reduced", "schema"].metadata["failures"].value
    assert (failure["column"], failure["path"]) == ("count", "/reduced/east/res=1d.series")
    assert (len(pond.log()), versions(pond)) == before


def test_an_appended_hour_is_reduced_incrementally_from_ingested_series(project, tmp_path):
    small_pipeline(project)
    project.materialize()
    append_later_hours(project.folder / "data")

    result = project.materialize()

    found = materializations(result)
    assert found["raw"]["dagster/row_count"] == 2  # only the new rows were imported
    reduced = found["reduced"]
    sites = {c["path"]: c for c in reduced["pond/children"]}
    assert [p for p, c in sites.items() if c["changed"]] == ["/reduced/north"]
    # each resolution read the two new rows (their buckets hold nothing older), not 74
    assert [c["metrics"]["rows_read"] for c in sites["/reduced/north"]["children"]] == [2, 2]
    assert reduced["pond/rows_read"] == 4
    pond = project.open()
    assert pond.read_table("/reduced/north/res=1h.series").num_rows == 74
    # exactly what a fresh pond computes from the grown CSVs in one go, reading them all
    fresh = replace(project, folder=tmp_path / "fresh")
    fresh.folder.mkdir()
    small_pipeline(fresh, data=project.folder / "data")
    full = materializations(fresh.materialize())["reduced"]
    full_sites = {c["path"]: c for c in full["pond/children"]}
    assert [c["metrics"]["rows_read"] for c in full_sites["/reduced/north"]["children"]] == [
        74,
        74,
    ]
    fresh_pond = fresh.open()
    for child in [*CHILDREN, "/joined.series"]:
        assert pond.read_table(child).equals(fresh_pond.read_table(child)), child
