"""Materializing the example pipeline through Dagster: versions and rows written, run ids
in the log, repeats write nothing, a changed CSV flows downstream, reads serve the
materialized versions, and schema checks stop bad data before it lands."""

from datetime import datetime
from typing import Any

import dagster as dg
import duckdb
import pytest

from factories.sql_derived import SqlDerivedSeriesFactory

SUMMARY = "/analytics/daily_summary.series"
WARM = "/analytics/warm_days.series"
REPORT = "/reports/sensors.md"
PATHS = (
    "/sensor_logs",
    "/processed/sensor_series",
    "/clean",
    "/reduced",
    "/analytics/north_south.series",
    SUMMARY,
    WARM,
    REPORT,
)
ENTRIES = ("/clean/north.series", "/clean/south.series", "/clean/east.series")
UPSTREAM = {  # the nodes of pond.yaml each node reads (directly or through a glob)
    "/sensor_logs": [],
    "/processed/sensor_series": ["/sensor_logs"],
    "/clean": ["/processed/sensor_series"],
    "/reduced": ["/clean"],
    "/analytics/north_south.series": ["/reduced"],
    SUMMARY: ["/processed/sensor_series"],
    WARM: [SUMMARY],
    REPORT: [SUMMARY, WARM, "/analytics/north_south.series", "/reduced"],
}


def expected_summary(data_folder) -> list[dict[str, Any]]:
    """The daily summary computed straight from the CSVs, outside the pond."""
    rows = duckdb.sql(
        f"""
        SELECT sensor, date_trunc('day', timestamp) AS day, avg(temperature) AS avg_temp,
               min(temperature) AS min_temp, max(temperature) AS max_temp, count(*) AS readings
        FROM read_csv('{data_folder}/*.csv', timestampformat='%Y-%m-%d %H:%M:%S')
        WHERE temperature > -100
        GROUP BY ALL ORDER BY day, sensor
        """
    ).fetchall()
    names = ("sensor", "day", "avg_temp", "min_temp", "max_temp", "readings")
    return [dict(zip(names, row, strict=True)) for row in rows]


def expected_report_lines(data_folder) -> list[str]:
    """The report's table rows, rounded as DuckDB rounds (half away from zero)."""
    rows = duckdb.sql(
        f"""
        SELECT strftime(date_trunc('day', timestamp), '%Y-%m-%d'), sensor,
               round(avg(temperature), 1), round(min(temperature), 1),
               round(max(temperature), 1), count(*)
        FROM read_csv('{data_folder}/*.csv', timestampformat='%Y-%m-%d %H:%M:%S')
        WHERE temperature > -100
        GROUP BY ALL ORDER BY 1, 2
        """
    ).fetchall()
    return ["| " + " | ".join(str(v) for v in row) + " |" for row in rows]


def materializations(result: dg.ExecuteInProcessResult) -> dict[str, dg.AssetMaterialization]:
    return {
        e.asset_key.to_user_string(): e.step_materialization_data.materialization
        for e in result.get_asset_materialization_events()
    }


def versions(pond, *paths: str) -> dict[str, int]:
    return {p: len(pond.node(p).versions) for p in paths}


def state(pond) -> tuple[int, int]:
    return len(pond.log()), pond.oplog.version()


def test_materializing_everything_writes_the_expected_versions_and_rows(materialized_once):
    example, result = materialized_once.project, materialized_once.result

    pond = example.open()
    assert result.success
    for sensor in ("east", "north", "south"):
        csv = pond.node(f"/sensor_logs/{sensor}.csv")
        assert len(csv.versions) == 1
        assert pond.read_bytes(csv.path) == (example.data / f"{sensor}.csv").read_bytes()
        series = pond.read_table(f"/processed/sensor_series/{sensor}.series")
        assert series.num_rows == 72
        assert series.column_names == ["timestamp", "sensor", "temperature", "humidity"]
        assert set(series.column("sensor").to_pylist()) == {sensor}

    summary = pond.read_table(SUMMARY).to_pylist()
    expected = expected_summary(example.data)
    assert len(summary) == 9
    assert [(r["sensor"], r["day"], r["readings"]) for r in summary] == [
        (r["sensor"], r["day"], r["readings"]) for r in expected
    ]
    for got, want in zip(summary, expected, strict=True):
        for column in ("avg_temp", "min_temp", "max_temp"):
            assert got[column] == pytest.approx(want[column])
    # the two -999 fault readings of north on May 2nd are filtered out
    assert [r["readings"] for r in summary if r["sensor"] == "north"] == [24, 22, 24]

    warm = pond.read_table(WARM).to_pylist()
    assert [(r["sensor"], r["day"]) for r in warm] == [
        (r["sensor"], r["day"]) for r in expected if r["avg_temp"] > 15
    ]
    assert len(warm) == 6

    report = pond.read_bytes(REPORT).decode()
    assert report.startswith("# Sensor report")
    assert "| day | sensor | mean | min | max | readings |" in report
    for line in expected_report_lines(example.data):
        assert line in report
    assert "- **east**: 3 days" in report
    assert "- **south**: 3 days" in report
    warm_section = report.split("## Warm days")[1].split("\n## ")[0]
    assert "- **" in warm_section
    assert "north" not in warm_section


def test_every_transaction_of_a_run_carries_its_run_id(materialized_once):
    example, result = materialized_once.project, materialized_once.result

    log = example.open().log()
    written = [t for t in log if t.command.startswith("materialize ")]
    order = [t.command.removeprefix("materialize ") for t in reversed(written)]
    # one transaction per node of pond.yaml (/clean's writes its entries), each after the
    # transactions of the nodes it reads
    assert sorted(order) == sorted(PATHS)
    for path, sources in UPSTREAM.items():
        assert all(order.index(s) < order.index(path) for s in sources), (path, order)
    clean = next(t for t in written if t.command == "materialize /clean")
    assert set(ENTRIES) < set(clean.paths)
    assert {t.run_id for t in written} == {result.run_id}
    assert [t.run_id for t in log if t.command == "init"] == [None]


def test_materialization_metadata_reports_rows_range_txn_version_and_data_version(
    materialized_once,
):
    example, result = materialized_once.project, materialized_once.result

    pond = example.open()
    summary = materializations(result)["analytics/daily_summary_series"]
    meta = {k: getattr(v, "value", v) for k, v in summary.metadata.items()}
    node = pond.node(SUMMARY)
    assert meta["dagster/row_count"] == 9
    assert meta["pond/version"] == node.latest.version
    assert meta["pond/txn"] == node.latest.txn_seq
    assert meta["pond/temporal_range"] == "2024-05-01T00:00:00+00:00 .. 2024-05-03T00:00:00+00:00"
    assert [c.name for c in meta["dagster/column_schema"].columns] == [
        "sensor",
        "day",
        "avg_temp",
        "min_temp",
        "max_temp",
        "readings",
    ]
    assert "| sensor | day | avg_temp |" in meta["pond/preview"]
    assert summary.tags["dagster/data_version"] == node.latest.attributes["fingerprint"]
    checks = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
    assert checks == {"schema": True, "temporal_column": True}
    series = materializations(result)["processed/sensor_series"]
    assert series.metadata["dagster/row_count"].value == 216
    assert len(series.metadata["pond/children"].value) == 3


def test_materializing_again_with_no_change_writes_nothing(materialized):
    pond = materialized.open()
    before = (state(pond), versions(pond, *_all_paths(pond)))

    result = materialized.materialize()

    assert result.success
    assert (state(pond), versions(pond, *_all_paths(pond))) == before
    for materialization in materializations(result).values():
        assert materialization.metadata["pond/versions_written"].value == 0
        assert "pond/txn" not in materialization.metadata


def test_a_changed_csv_is_reimported_alone_and_downstream_nodes_get_new_versions(materialized):
    pond = materialized.open()
    east = materialized.data / "east.csv"
    east.write_text(east.read_text().replace("00:00:00,east,11.37,", "00:00:00,east,31.37,"))
    before = versions(pond, *_all_paths(pond))
    log_before = len(pond.log())

    result = materialized.materialize()

    after = versions(pond, *_all_paths(pond))
    changed = sorted(p for p in after if after[p] != before[p])
    assert changed == sorted(
        [
            "/sensor_logs/east.csv",
            "/processed/sensor_series",
            "/processed/sensor_series/east.series",
            # an entry of /clean (an asset of its own); the directory's listing is as it was
            "/clean/east.series",
            "/reduced",
            "/reduced/east",
            "/reduced/east/res=1h.series",
            "/reduced/east/res=1d.series",
            # not the north/south join: neither of its inputs changed
            SUMMARY,
            WARM,
            REPORT,
        ]
    )
    assert all(after[p] == before[p] + 1 for p in changed)
    new = pond.log()[: len(pond.log()) - log_before]
    assert sorted(t.paths for t in new if t.command == "materialize /sensor_logs") == [
        ["/sensor_logs/east.csv"]
    ]
    assert {t.run_id for t in new} == {result.run_id}
    first_east = pond.query(
        f"SELECT avg_temp FROM source WHERE sensor = 'east' AND day = '{datetime(2024, 5, 1)}'",
        source=SUMMARY,
    ).column(0)[0]
    assert first_east.as_py() == pytest.approx(expected_summary(materialized.data)[0]["avg_temp"])
    assert first_east.as_py() == pytest.approx(16.6625 + 20 / 24)


def test_a_materialized_node_is_read_without_producing_it(materialized, monkeypatch):
    pond = materialized.open()
    stored = pond.read_table(SUMMARY)
    pond.cache.clear()

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the factory ran")

    monkeypatch.setattr(SqlDerivedSeriesFactory, "produce", refuse)
    again = materialized.open()

    assert again.read_table(SUMMARY).equals(stored)
    assert again.read_table(WARM).num_rows == 6
    assert "| 2024-05-01 | east | 16.7 |" in again.read_bytes(REPORT).decode()
    assert again.cache.stats().entries == 0


def test_a_read_after_a_source_changed_reflects_the_new_data(materialized):
    north = materialized.data / "north.csv"
    north.write_text(north.read_text().replace(",north,-999.00,", ",north,40.00,"))
    materialized.materialize("/sensor_logs")  # only the import: the summary is now stale

    summary = materialized.open().read_table(SUMMARY).to_pylist()

    by_day = {(r["sensor"], r["day"].day): r for r in summary}
    assert by_day["north", 2]["readings"] == 24
    assert by_day["north", 2]["max_temp"] == 40.0
    assert [
        (r["sensor"], r["day"], r["readings"]) for r in expected_summary(materialized.data)
    ] == [(r["sensor"], r["day"], r["readings"]) for r in summary]


def test_the_pond_yaml_config_is_applied_by_the_materializing_transaction(materialized):
    materialized.edit("WHERE avg_temp > 15", "WHERE avg_temp > 20")
    pond = materialized.open()
    log_before = len(pond.log())

    materialized.materialize(WARM)

    new = pond.log()[: len(pond.log()) - log_before]
    assert [t.command for t in new] == [f"materialize {WARM}"]
    node = pond.node(WARM)
    assert "avg_temp > 20" in node.raw_config["query"]
    assert [(r["sensor"], r["day"].day) for r in pond.read_table(WARM).to_pylist()] == [
        ("south", 1),
        ("south", 2),
        ("south", 3),
    ]


def test_a_schema_violation_fails_the_run_and_its_check_and_writes_nothing(materialized):
    pond = materialized.open()
    east = materialized.data / "east.csv"
    hot = [
        line if i == 0 else line.replace(",east,", ",east,1")
        for i, line in enumerate(east.read_text().splitlines())
    ]
    east.write_text("\n".join(hot) + "\n")  # 11.37 → 111.37: daily means above 60
    materialized.materialize("/sensor_logs", "/processed/sensor_series")
    before = (versions(pond, SUMMARY, WARM, REPORT), pond.node(SUMMARY).latest.txn_seq)
    log_before = len(pond.log())

    result = materialized.materialize(SUMMARY, raise_on_error=False)

    assert not result.success
    evaluations = {e.check_name: e for e in result.get_asset_check_evaluations()}
    assert not evaluations["schema"].passed
    assert evaluations["schema"].description.startswith(  # which column, which check
        "failed: column avg_temp: less_than_or_equal_to(60.0) (e.g. ["
    )
    failures = evaluations["schema"].metadata["failures"].value
    assert {(f["column"], f["check"]) for f in failures} == {
        ("avg_temp", "less_than_or_equal_to(60.0)")
    }
    assert len(failures[0]["values"]) == 3  # east's three days
    assert evaluations["temporal_column"].passed
    failure = result.get_step_failure_events()[0].step_failure_data.user_failure_data
    assert "avg_temp: less_than_or_equal_to(60.0)" in failure.description
    assert "nothing was written" in failure.description
    assert not result.get_asset_materialization_events()
    assert (versions(pond, SUMMARY, WARM, REPORT), pond.node(SUMMARY).latest.txn_seq) == before
    assert len(pond.log()) == log_before


def test_a_stricter_schema_fails_on_data_already_materialized(materialized):
    materialized.edit(
        "avg_temp: {type: double, checks: {ge: -60, le: 60}}",
        "avg_temp: {type: double, checks: {le: 10}}",
    )
    pond = materialized.open()
    before = (state(pond), versions(pond, SUMMARY))

    result = materialized.materialize(SUMMARY, raise_on_error=False)

    assert not result.success
    (evaluation,) = [e for e in result.get_asset_check_evaluations() if e.check_name == "schema"]
    assert not evaluation.passed
    assert "avg_temp" in evaluation.description
    assert (state(pond), versions(pond, SUMMARY)) == before


def test_a_violation_on_a_fresh_pond_leaves_no_trace_of_the_node(example):
    example.edit(
        "avg_temp: {type: double, checks: {ge: -60, le: 60}}",
        "avg_temp: {type: double, checks: {le: 10}}",
    )

    result = example.materialize(raise_on_error=False)

    assert not result.success
    pond = example.open()
    # every node but the summary and those reading it (which never ran) was written
    assert sorted(t.command for t in pond.log() if t.command.startswith("materialize ")) == [
        "materialize /analytics/north_south.series",
        "materialize /clean",
        "materialize /processed/sensor_series",
        "materialize /reduced",
        "materialize /sensor_logs",
    ]
    assert not any(p.path.startswith((SUMMARY, WARM, "/reports")) for p in pond.list_nodes())
    assert pond.node("/analytics/north_south.series").latest is not None
    checks = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
    assert checks == {"schema": False, "temporal_column": True}


@pytest.mark.parametrize(
    ("temporal", "problem"),
    [
        ("sensor", "timestamp-typed (is string)"),
        ("hour", "temporal column present"),
    ],
)
def test_a_temporal_column_problem_fails_its_check(example, temporal, problem):
    example.edit("temporal_column: day", f"temporal_column: {temporal}")

    result = example.materialize(raise_on_error=False)

    assert not result.success
    evaluations = {e.check_name: e for e in result.get_asset_check_evaluations()}
    assert evaluations["schema"].passed
    assert not evaluations["temporal_column"].passed
    failures = evaluations["temporal_column"].metadata["failures"].value
    assert [(f["column"], f["check"]) for f in failures] == [(temporal, problem)]


def _all_paths(pond) -> list[str]:
    return [info.path for info in pond.list_nodes()]


SERIES_INGEST = """\
nodes:
  /raw:
    factory: ingest
    config: {host_pattern: "logs/*.csv", type: series}
"""


def test_a_grown_series_file_appends_only_its_new_rows(project):
    logs = project.folder / "logs"
    logs.mkdir()
    log = logs / "a.csv"
    log.write_text("ts,v\n2024-01-01 00:00:00,1\n2024-01-01 01:00:00,2\n")
    project.config.write_text(SERIES_INGEST)
    project.materialize()
    log.write_text(log.read_text() + "2024-01-01 02:00:00,3\n")

    project.materialize()

    pond = project.open()
    child = pond.node("/raw/a.series")
    assert [(r.version, r.attributes.get("rows")) for r in child.versions] == [(1, 2), (2, 1)]
    assert pond.read_table("/raw/a.series").column("v").to_pylist() == [1, 2, 3]
    before = len(pond.log())
    project.materialize()
    assert len(pond.log()) == before
