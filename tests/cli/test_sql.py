"""``pond sql``: quoted pond paths and globs are tables; the host is out of reach."""

import io
import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest


def test_quoted_paths_are_tables(run, sample_pond, sample) -> None:
    result = run(
        "sql",
        f"SELECT count(*) AS n, min(value) AS low FROM '{sample.series}'",
        "--format",
        "json",
    )
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout) == [{"n": 12, "low": 100.0}]


def test_a_join_of_two_paths_and_a_symlink(run, sample_pond, sample) -> None:
    query = (
        f'SELECT t.station, count(*) AS n FROM "{sample.link}" r '
        f"JOIN '{sample.table}' t ON t.height > 50 GROUP BY 1 ORDER BY 1"
    )
    result = run("sql", query, "--format", "csv")
    assert result.exit_code == 0, result.stderr
    assert result.stdout == '"station","n"\n"east",12\n"south",12\n'


def test_a_glob_path_is_the_union_of_its_matches(run, sample_pond, sample) -> None:
    sample_pond.write_table("/sensors/more.series", sample.readings(7), "series")
    result = run("sql", "SELECT count(*) AS n FROM '/sensors/*.series'", "--format", "json")
    assert json.loads(result.stdout) == [{"n": 16}]
    every = run("sql", "SELECT count(*) AS n FROM '/**/*.series'", "--format", "json")
    assert json.loads(every.stdout) == [{"n": 16}]


def test_sql_formats(run, sample_pond, sample) -> None:
    query = f"SELECT station, height FROM '{sample.table}' ORDER BY height"
    parquet = run("sql", query, "--format", "parquet")
    assert pq.read_table(io.BytesIO(parquet.stdout_bytes)).to_pylist() == sorted(
        sample.stations().to_pylist(), key=lambda r: r["height"]
    )
    text = run("sql", query).stdout.splitlines()
    assert text[0].split() == ["station", "┃", "height"]
    assert text[-1] == "3 rows"


def test_sql_at(run, sample_pond, sample) -> None:
    result = run(
        "sql", f"SELECT count(*) AS n FROM '{sample.series}'", "--at", "2", "--format", "json"
    )
    assert json.loads(result.stdout) == [{"n": 4}]


def test_sql_without_pond_tables(run, pond) -> None:
    assert run("sql", "SELECT 1 + 1 AS two", "--format", "csv").stdout == '"two"\n2\n'


# -- bad input -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("query", "reason"),
    [
        ("SELEC 1", 'syntax error at or near "SELEC"'),
        ("SELECT nope FROM '/sensors/stations.table'", 'Binder Error: Referenced column "nope"'),
        ("SELECT * FROM '/nothing.series'", None),
        ("SELECT 1/0::INT AS x, 'a'::INT AS y", "Conversion Error"),
    ],
)
def test_sql_errors_show_duckdb_and_the_query(
    run, sample_pond, pond_state, error, query: str, reason: str | None
) -> None:
    before = pond_state()
    result = run("sql", query)
    assert result.exit_code == 1
    line = error(result)
    if reason is None:
        assert line == (
            "/nothing.series: source '/nothing.series' matches no table or series; "
            "check the path, or create the source first"
        )
    else:
        assert reason in line  # DuckDB's words ...
        assert f"(in query: {query})" in line  # ... and the query
    assert pond_state() == before


REFUSALS = (
    "Permission Error",  # DuckDB: external access is off
    "Cannot change configuration",  # DuckDB: the configuration is locked
    "only SELECT queries may run",  # pond: statements other than queries never run
)
HOST_SQL = [
    "SELECT * FROM read_csv('{h}/secret.csv')",
    "SELECT * FROM read_csv('/etc/passwd')",
    "SELECT * FROM read_parquet('{h}/secret.parquet')",
    "SELECT * FROM read_text('{h}/secret.csv')",
    "SELECT * FROM glob('{h}/*')",
    "COPY (SELECT 1 AS x) TO '{h}/out.csv'",
    "EXPORT DATABASE '{h}/export'",
    "ATTACH '{h}/x.duckdb' AS x",
    "INSTALL httpfs",
    "LOAD httpfs",
    "SET enable_external_access = true",
]


@pytest.mark.parametrize("template", HOST_SQL)
def test_sql_cannot_touch_the_host(
    run, sample_pond, tmp_path: Path, pond_state, error, template: str
) -> None:
    host = tmp_path / "host"
    host.mkdir()
    (host / "secret.csv").write_text("a\n1\n")
    pq.write_table(sample_pond.read_table("/sensors/stations.table"), host / "secret.parquet")
    before = pond_state()
    query = template.format(h=host)
    result = run("sql", query)
    assert result.exit_code == 1
    line = error(result)
    assert f"(in query: {query})" in line
    assert any(why in line for why in REFUSALS), line
    assert sorted(p.name for p in host.iterdir()) == ["secret.csv", "secret.parquet"]
    assert pond_state() == before
    # the same through cat --sql
    cat = run("cat", "/sensors/stations.table", "--sql", query)
    assert cat.exit_code == 1
    assert f"(in query: {query})" in error(cat)


def test_the_query_timeout_interrupts(run, sample_pond, sample, error) -> None:
    query = f"SELECT count(*) FROM '{sample.series}', range(100000000000)"
    result = run("--query-timeout", "0.3", "sql", query)
    assert result.exit_code == 1
    assert error(result) == (
        f"interrupted after the 0.3s query timeout (in query: {query}); "
        "narrow the query or raise --query-timeout"
    )
