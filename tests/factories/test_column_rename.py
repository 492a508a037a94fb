"""``column_rename``: columns renamed (and cast) by direct and regex rules, lazily."""

import re
from datetime import UTC, datetime, timedelta

import pyarrow as pa
import pytest

from factories.tabular import (
    ColumnRenameConfig,
    DirectRule,
    PatternRule,
    rename_columns,
    select_list,
)
from pond_pipeline.errors import ConfigError, FactoryError
from pond_pipeline.project.materialize import materialize

START = datetime(2024, 1, 1, tzinfo=UTC)
ROWS = 1440  # one day at 1m, 00:00 .. 23:59
INSTRUMENT = {
    "start": "2024-01-01T00:00:00Z",
    "end": "2024-01-01T23:59:00Z",
    "interval": "1m",
    "time_column": "Time",
    "points": [
        # 0.001 per second: 0.06 per minute
        {"name": "Temperature (C)", "components": [{"type": "line", "slope": 0.001}]},
        {"name": "Pressure (hPa)", "components": [{"type": "constant", "value": 1013.25}]},
        {"name": "Station ID", "components": [{"type": "constant", "value": 7}]},
    ],
}
UNITS = {"type": "pattern", "pattern": r"^(.+) \((.+)\)$", "replacement": "$1.$2"}
RULES = [
    {"type": "direct", "from": "Time", "to": "timestamp"},
    {"type": "direct", "from": "Station ID", "to": "station", "cast": "integer"},
    UNITS,
]


def instrument_pond(pond):
    """``/raw.series``: the synthetic instrument export, stored as four 6-hour versions."""
    pond.create_dynamic("/gen/instrument.series", "synthetic", INSTRUMENT, parents=True)
    day = pond.read_table("/gen/instrument.series")
    for quarter in range(4):
        pond.write_table("/raw.series", day.slice(quarter * 360, 360), "series", time_column="Time")
    return pond


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


def test_direct_and_pattern_rules_rename_and_cast(pond):
    instrument_pond(pond)
    pond.create_dynamic("/clean.series", "column_rename", {"source": "/raw.series", "rules": RULES})

    table = pond.read_table("/clean.series")

    assert table.schema == pa.schema(
        [
            ("timestamp", pa.timestamp("us", tz="UTC")),
            ("Temperature.C", pa.float64()),
            ("Pressure.hPa", pa.float64()),
            ("station", pa.int32()),
        ]
    )
    assert table.num_rows == ROWS
    assert table.column("timestamp")[-1].as_py() == START + timedelta(minutes=ROWS - 1)
    assert table.column("Temperature.C")[100].as_py() == pytest.approx(6.0)
    assert set(table.column("Pressure.hPa").to_pylist()) == {1013.25}
    assert set(table.column("station").to_pylist()) == {7}
    described = pond.describe("/clean.series")
    assert (described["type"], described["time_column"]) == ("file:series", "timestamp")


def test_filter_on_a_renamed_column_reaches_the_source_parquet(pond):
    instrument_pond(pond)
    pond.create_dynamic("/clean.series", "column_rename", {"source": "/raw.series", "rules": RULES})
    last_two_hours = "timestamp >= TIMESTAMPTZ '2024-01-01 22:00:00+00'"

    unfiltered = pond.explain("SELECT count(*) FROM source", source="/clean.series")
    filtered = pond.explain(
        f'SELECT count(*), max("Temperature.C") FROM source WHERE {last_two_hours}',
        source="/clean.series",
    )

    # the filter is on the source's own column name, inside the scan of its Parquet
    assert "Filters:" in filtered
    assert "\"Time\" >= TIMESTAMPTZ '2024-01-01 22:00:00+00'" in filtered
    assert arrow_scan_rows(unfiltered) == ROWS
    assert arrow_scan_rows(filtered) == 120
    result = pond.query(
        f'SELECT count(*) AS n, max("Temperature.C") AS top FROM source WHERE {last_two_hours}',
        source="/clean.series",
    )
    assert result.column("n")[0].as_py() == 120
    assert result.column("top")[0].as_py() == pytest.approx(0.06 * 1439)


def test_select_list_for_column_names():
    rules = ColumnRenameConfig.model_validate({"rules": RULES}).rules
    columns = ["Time", "Temperature (C)", "Station ID", "note"]

    assert select_list(rules, columns) == (
        '"Time" AS "timestamp", "Temperature (C)" AS "Temperature.C", '
        'CAST("Station ID" AS INTEGER) AS "station", "note"'
    )
    assert [c.name for c in rename_columns(rules, columns)] == [
        "timestamp",
        "Temperature.C",
        "station",
        "note",
    ]


@pytest.mark.parametrize(
    ("rule", "column", "renamed"),
    [
        ({"pattern": r"\s*\((\w+)\)$", "replacement": ".$1"}, "Depth (m)", "Depth.m"),
        ({"pattern": r"^(\w)(\w+)$", "replacement": "${2}0$1"}, "abc", "bc0a"),
        ({"pattern": "^.*$", "replacement": "[$0] $$"}, "x y", "[x y] $"),
        ({"pattern": "^temp", "replacement": "t"}, "pressure", "pressure"),  # no match: kept
    ],
)
def test_pattern_replacement(rule, column, renamed):
    parsed = PatternRule.model_validate({"type": "pattern", **rule})

    assert [c.name for c in rename_columns([parsed], [column])] == [renamed]


def test_first_matching_rule_wins():
    rules = [
        DirectRule.model_validate({"type": "direct", "from": "Depth (m)", "to": "depth"}),
        PatternRule.model_validate(UNITS),
    ]

    renamed = rename_columns(rules, ["Depth (m)", "Level (m)"])

    assert [(c.name, c.rule) for c in renamed] == [("depth", 0), ("Level.m", 1)]


def test_a_table_source_gives_a_table(pond):
    pond.write_table("/ref/sites.table", pa.table({"Site Name": ["n", "s"]}), parents=True)
    rename = {"type": "direct", "from": "Site Name", "to": "site"}

    pond.create_dynamic(
        "/ref/clean.table", "column_rename", {"source": "/ref/sites.table", "rules": [rename]}
    )

    assert pond.describe("/ref/clean.table")["type"] == "file:table"
    assert pond.read_table("/ref/clean.table").to_pylist() == [{"site": "n"}, {"site": "s"}]


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        (
            {"type": "pattern", "pattern": "(unclosed", "replacement": "$1"},
            "rules.1.pattern.pattern: Value error, invalid regular expression '(unclosed': "
            "missing ), unterminated subpattern",
        ),
        (
            {"type": "pattern", "pattern": "(a)(b)", "replacement": "$1.$3"},
            "rules.1.pattern: Value error, replacement '$1.$3' refers to group 3, "
            "but the pattern has 2 groups",
        ),
        (
            {"type": "direct", "from": "a", "to": "b", "cast": "complex"},
            "rules.1.direct.cast: Value error, unknown type 'complex'",
        ),
        ({"type": "rename", "from": "a", "to": "b"}, "rules.1: Input tag 'rename' found"),
        ({"type": "direct", "from": "a"}, "rules.1.direct.to: required field missing"),
    ],
)
def test_bad_rules_are_refused_naming_the_rule(pond, rule, expected):
    before = len(pond.log())

    with pytest.raises(ConfigError) as caught:
        pond.create_dynamic(
            "/clean.series", "column_rename", {"source": "/raw.series", "rules": [UNITS, rule]}
        )

    assert expected in caught.value.reason
    assert caught.value.subject == "/clean.series"
    assert len(pond.log()) == before


def test_unknown_column_is_an_error_at_read_and_nothing_is_written(pond):
    instrument_pond(pond)
    typo = {"type": "direct", "from": "Humidity (%)", "to": "humidity"}
    pond.create_dynamic(
        "/clean.series", "column_rename", {"source": "/raw.series", "rules": [typo]}
    )
    before = len(pond.log())

    with pytest.raises(FactoryError) as caught:
        pond.read_table("/clean.series")
    assert caught.value.subject == "/clean.series"
    assert (
        "factory 'column_rename' failed: rule 0: unknown column 'Humidity (%)' in /raw.series "
        "(its columns: Time, Temperature (C), Pressure (hPa), Station ID)"
    ) in caught.value.message

    with pytest.raises(FactoryError):
        materialize(pond, "/clean.series")
    assert len(pond.log()) == before


def test_two_columns_renamed_alike_is_an_error(pond):
    instrument_pond(pond)
    strip_units = {"type": "pattern", "pattern": r" \(.*\)$", "replacement": ""}
    both = {"type": "direct", "from": "Station ID", "to": "Temperature"}
    pond.create_dynamic(
        "/clean.series", "column_rename", {"source": "/raw.series", "rules": [strip_units, both]}
    )

    with pytest.raises(FactoryError) as caught:
        pond.read_table("/clean.series")

    assert (
        "columns 'Temperature (C)' (rule 0) and 'Station ID' (rule 1) would both be named "
        "'Temperature'"
    ) in caught.value.message


def test_without_a_source_it_only_serves_as_a_transform(pond):
    pond.create_dynamic("/rules/units", "column_rename", {"rules": [UNITS]}, parents=True)

    with pytest.raises(FactoryError) as caught:
        pond.read_table("/rules/units")

    assert "has no source: it only serves as a transform" in caught.value.message


def test_a_type_other_than_the_sources_is_an_error(pond):
    instrument_pond(pond)
    config = {"source": "/raw.series", "rules": [UNITS], "type": "table"}
    pond.create_dynamic("/clean.table", "column_rename", config)

    with pytest.raises(FactoryError) as caught:
        pond.read_table("/clean.table")

    assert "source /raw.series is a series, but this node is a table" in caught.value.message
    assert "recreate it with 'type: series'" in caught.value.message
