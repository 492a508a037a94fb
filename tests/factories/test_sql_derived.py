"""``sql_derived_series`` / ``sql_derived_table``: SQL over pond files, chained to any depth."""

import re
from datetime import UTC, datetime, timedelta

import pyarrow as pa
import pytest

from pond_pipeline.errors import ConfigError, FactoryError

BASE_TIME = datetime(2024, 1, 1, tzinfo=UTC)
EVENTS = 1000

HIGH = "SELECT * FROM events WHERE priority >= 3"
TRENDING = "SELECT * FROM high WHERE score >= 40"
HAND_WRITTEN = "SELECT * FROM source WHERE priority >= 3 AND score >= 40"


def create_chain(pond):
    """all events → high-priority alerts → trending alerts."""
    with pond.transaction("derive") as tx:
        tx.create_dynamic(
            "/alerts/high.series",
            "sql_derived_series",
            {"sources": {"events": "/events/all.series"}, "query": HIGH, "time_column": "ts"},
        )
        tx.create_dynamic(
            "/alerts/trending.series",
            "sql_derived_series",
            {"sources": {"high": "/alerts/high.series"}, "query": TRENDING},
        )


def arrow_scan_rows(plan: str) -> int:
    """Rows the arrow scans of an ``EXPLAIN ANALYZE`` read (summed over every scan)."""
    total, in_scan = 0, False
    for line in plan.splitlines():
        if "ARROW_SCAN" in line:
            in_scan = True
        match = re.search(r"│\s*([\d,]+) rows?\b", line)
        if in_scan and match:
            total += int(match.group(1).replace(",", ""))
            in_scan = False
    return total


def test_source_shorthand_filters_rows(events_pond):
    events_pond.create_dynamic(
        "/alerts/p4.series",
        "sql_derived_series",
        {"source": "/events/all.series", "query": "SELECT ts, host FROM source WHERE priority = 4"},
    )

    table = events_pond.read_table("/alerts/p4.series")

    assert table.num_rows == EVENTS // 5
    assert table.column_names == ["ts", "host"]
    assert table.column("ts")[0].as_py() == BASE_TIME + timedelta(minutes=4)
    assert table.column("host").to_pylist()[:3] == ["h0", "h1", "h2"]  # events 4, 9, 14
    assert events_pond.describe("/alerts/p4.series")["time_column"] == "ts"


def test_table_joins_named_sources(events_pond):
    hosts = pa.table({"host": ["h0", "h1", "h2", "h3"], "site": ["n", "n", "s", "s"]})
    with events_pond.transaction("hosts") as tx:
        tx.write_table("/ref/hosts.table", hosts, "table", parents=True)
        tx.create_dynamic(
            "/reports/by_site.table",
            "sql_derived_table",
            {
                "sources": {"e": "/events/all.series", "h": "/ref/hosts.table"},
                "query": "SELECT site, count(*) AS n, max(score) AS top FROM e JOIN h USING (host) "
                "GROUP BY site ORDER BY site",
            },
        )

    table = events_pond.read_table("/reports/by_site.table")

    assert table.to_pylist() == [
        {"site": "n", "n": 500, "top": 49.0},
        {"site": "s", "n": 500, "top": 49.0},
    ]
    assert events_pond.describe("/reports/by_site.table")["type"] == "file:table"


def test_three_level_chain_equals_hand_written_sql(events_pond):
    create_chain(events_pond)

    chained = events_pond.read_table("/alerts/trending.series")
    direct = events_pond.query(f"{HAND_WRITTEN} ORDER BY ts", source="/events/all.series")

    assert chained.num_rows == 80  # per 50 events: score 43, 44, 48, 49 have priority 3 or 4
    assert chained.to_pylist() == direct.to_pylist()
    assert set(chained.column("priority").to_pylist()) == {3, 4}
    assert min(chained.column("score").to_pylist()) == 43.0
    queried = events_pond.query("SELECT count(*) AS n FROM '/alerts/trending.series'")
    assert queried.column("n")[0].as_py() == 80


def test_filter_on_chain_reads_fewer_base_rows(events_pond):
    create_chain(events_pond)
    window = "ts < TIMESTAMPTZ '2024-01-01 02:00:00+00'"

    unfiltered = events_pond.explain(
        "SELECT count(*) FROM source", source="/alerts/trending.series"
    )
    filtered = events_pond.explain(
        f"SELECT count(*) FROM source WHERE {window}", source="/alerts/trending.series"
    )

    assert "ARROW_SCAN" in filtered
    assert arrow_scan_rows(filtered) < arrow_scan_rows(unfiltered) <= EVENTS
    assert arrow_scan_rows(filtered) <= 120  # at most the first two hours of events
    result = events_pond.query(
        f"SELECT count(*) AS n FROM source WHERE {window}", source="/alerts/trending.series"
    )
    assert result.column("n")[0].as_py() == 8  # events 43, 44, 48, 49, 93, 94, 98, 99


def test_glob_source_reads_as_union(pond, make_events):
    with pond.transaction("two hosts") as tx:
        tx.write_table(
            "/sensors/a.series", make_events(10), "series", time_column="ts", parents=True
        )
        tx.write_table("/sensors/b.series", make_events(15, start=100), "series", time_column="ts")
        tx.create_dynamic(
            "/all/sensors.series",
            "sql_derived_series",
            {"source": "/sensors/*.series", "query": "SELECT * FROM source ORDER BY ts"},
        )

    assert pond.read_table("/all/sensors.series").num_rows == 25

    pond.write_table("/sensors/c.series", make_events(5, start=500), "series", time_column="ts")
    table = pond.read_table("/all/sensors.series")
    assert table.num_rows == 30
    assert table.column("ts")[-1].as_py() == BASE_TIME + timedelta(minutes=504)


def test_both_or_neither_source_field_is_an_error(events_pond):
    both = {
        "source": "/events/all.series",
        "sources": {"e": "/events/all.series"},
        "query": "SELECT 1",
    }
    neither = {"query": "SELECT 1"}
    for config, word in ((both, "both"), (neither, "neither")):
        with pytest.raises(ConfigError) as caught:
            events_pond.create_dynamic("/x.series", "sql_derived_series", config)
        assert "give exactly one of 'source'" in caught.value.message
        assert "'sources'" in caught.value.message
        assert word in caught.value.message
        assert caught.value.subject == "/x.series"


def test_bad_sql_fails_at_read_naming_the_node(events_pond):
    # refused at create (tests/factories/test_sql_check.py); unchecked, the read names it
    with events_pond.transaction("unchecked") as tx:
        tx.create_dynamic(
            "/broken.series",
            "sql_derived_series",
            {"source": "/events/all.series", "query": "SELECT no_such_column FROM source"},
            check_sql=False,
        )

    with pytest.raises(FactoryError) as caught:
        events_pond.read_table("/broken.series")

    assert caught.value.subject == "/broken.series"
    assert "no_such_column" in caught.value.message
