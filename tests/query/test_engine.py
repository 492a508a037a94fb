"""The DuckDB adapter: the sandbox, the query timeout, table references, CSV import."""

import time
from pathlib import Path

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from pond_pipeline.errors import ConfigError, QueryError
from pond_pipeline.query.engine import (
    SqlSession,
    csv_to_parquet,
    referenced_tables,
    with_bindings,
)


@pytest.fixture
def session():
    with SqlSession(timeout=10) as opened:
        yield opened


@pytest.fixture
def host(tmp_path: Path) -> Path:
    """A host folder with files a query must never reach."""
    (tmp_path / "secret.csv").write_text("a,b\n1,2\n")
    pq.write_table(pa.table({"a": [1]}), tmp_path / "secret.parquet")
    return tmp_path


HOST_ACCESS = [
    ("SELECT * FROM read_csv('{h}/secret.csv')", "{h}/secret.csv"),
    ("SELECT * FROM read_csv('/etc/passwd')", "/etc/passwd"),
    ("SELECT * FROM read_parquet('{h}/secret.parquet')", "{h}/secret.parquet"),
    ("SELECT * FROM '{h}/secret.parquet'", None),
    ("SELECT * FROM read_text('{h}/secret.csv')", "{h}/secret.csv"),
    ("SELECT * FROM read_blob('{h}/secret.csv')", "{h}/secret.csv"),
    ("SELECT * FROM read_json('{h}/secret.csv')", "{h}/secret.csv"),
    ("SELECT * FROM glob('{h}/*')", "{h}/*"),
    ("COPY (SELECT 42 AS x) TO '{h}/out.csv'", "{h}/out.csv"),
    ("CREATE TABLE t AS SELECT 1 AS x; COPY t TO '{h}/out.parquet'", "{h}/out.parquet"),
    ("EXPORT DATABASE '{h}/export'", "{h}/export"),
    ("ATTACH '{h}/other.duckdb' AS other", "{h}/other.duckdb"),
    ("INSTALL httpfs", None),
    ("LOAD httpfs", None),
    ("SET enable_external_access = true", "enable_external_access"),
    ("RESET enable_external_access", "enable_external_access"),
    ("SET lock_configuration = false", "lock_configuration"),
]


@pytest.mark.parametrize(("sql", "named"), HOST_ACCESS)
def test_sql_cannot_touch_the_host(
    session: SqlSession, host: Path, sql: str, named: str | None
) -> None:
    before = sorted(p.name for p in host.iterdir())
    query = sql.format(h=host)
    with pytest.raises(QueryError) as caught:
        session.query(query)
    assert caught.value.subject == query  # the message carries the query
    assert f"(in query: {query})" in caught.value.message
    reason = caught.value.reason
    if reason.startswith("only SELECT queries may run, not "):  # refused before DuckDB runs it
        assert reason.split()[-1] in query.upper()  # names a statement that is in the query
    elif named is not None:  # DuckDB's refusal names what it would have touched
        assert named.format(h=host) in reason
    assert sorted(p.name for p in host.iterdir()) == before  # nothing written
    # and the session still works, still sandboxed
    assert session.query("SELECT current_setting('enable_external_access') AS on").to_pylist() == [
        {"on": False}
    ]


def test_a_runaway_query_is_interrupted() -> None:
    with SqlSession(timeout=0.3) as slow:
        started = time.monotonic()
        with pytest.raises(QueryError) as caught:
            slow.query("SELECT count(*) FROM range(100000000000) a")
        assert time.monotonic() - started < 5
    assert caught.value.reason == "interrupted after the 0.3s query timeout"
    assert "--query-timeout" in (caught.value.hint or "")
    assert "range(100000000000)" in (caught.value.subject or "")


def test_sql_errors_carry_duckdbs_words_and_the_query(session: SqlSession) -> None:
    with pytest.raises(QueryError) as caught:
        session.query("SELECT nope FROM range(3)")
    assert caught.value.reason.startswith("Binder Error")
    assert '"nope"' in caught.value.reason
    assert caught.value.subject == "SELECT nope FROM range(3)"


def test_registered_arrow_and_bindings(session: SqlSession, tmp_path: Path) -> None:
    pq.write_table(pa.table({"k": [1, 2, 3], "v": ["a", "b", "c"]}), tmp_path / "p.parquet")
    session.register("__data", ds.dataset(str(tmp_path / "p.parquet")))
    assert session.is_registered("__data")
    result = session.query("SELECT v FROM source WHERE k >= 2 ORDER BY k", {"source": "__data"})
    assert result.column("v").to_pylist() == ["b", "c"]
    cte = "WITH t AS (SELECT * FROM source) SELECT count(*) AS n FROM t"
    assert session.query(cte, {"source": "__data"}).to_pylist() == [{"n": 3}]
    session.create_view("v", "SELECT k * 10 AS k10 FROM source", {"source": "__data"})
    assert session.query("SELECT sum(k10) AS s FROM v").to_pylist() == [{"s": 60}]
    assert session.stream("SELECT k FROM v2", {"v2": "__data"}).read_all().num_rows == 3


def test_with_bindings_prefixes_ctes() -> None:
    assert with_bindings("SELECT 1", {}) == "SELECT 1"
    assert with_bindings("SELECT * FROM source;", {"source": "__x"}) == (
        'WITH "source" AS NOT MATERIALIZED (SELECT * FROM "__x") SELECT * FROM source'
    )
    merged = with_bindings("with a as (select 1) select * from a, source", {"source": "__x"})
    assert merged.startswith('with "source" AS NOT MATERIALIZED (SELECT * FROM "__x"), a as')


def test_referenced_tables_reads_quoted_paths_without_binding() -> None:
    sql = (
        "SELECT * FROM '/data/a.series' JOIN \"/data/b.table\" USING (k) "
        "WHERE k IN (SELECT k FROM '/x/*.series')"
    )
    assert referenced_tables(sql) == {"/data/a.series", "/data/b.table", "/x/*.series"}
    with pytest.raises(QueryError) as caught:
        referenced_tables("SELEC 1")
    assert "syntax error" in caught.value.reason
    assert caught.value.subject == "SELEC 1"


def test_csv_to_parquet_infers_types(tmp_path: Path) -> None:
    source = tmp_path / "in.csv"
    source.write_text('ts,n,x,s\n2024-01-01T00:00:00,1,1.5,"a, b"\n2024-01-02T06:00:00,2,,c\n')
    csv_to_parquet(source, tmp_path / "out.parquet", subject="in.csv")
    table = pq.read_table(tmp_path / "out.parquet")
    assert [str(t) for t in table.schema.types] == ["timestamp[us]", "int64", "double", "string"]
    assert table.column("s").to_pylist() == ["a, b", "c"]
    assert table.column("x").to_pylist() == [1.5, None]


@pytest.mark.parametrize(
    ("text", "line", "why"),
    [
        ("a,b\n1,2\n3,4,5\n", 3, "Expected Number of Columns: 2 Found: 3"),
        ("a,b\n1,2\n3\n4,5\n", 3, "Expected Number of Columns: 2 Found: 1"),
        ("a,b\n1,2\n3,4,5\n6,7\n", 3, "Expected Number of Columns: 2 Found: 3"),
        ('a,b\n1,2\n3,"open\n', 3, "unterminated quote"),
    ],
)
def test_malformed_csv_names_the_line(tmp_path: Path, text: str, line: int, why: str) -> None:
    source = tmp_path / "bad.csv"
    source.write_text(text)
    with pytest.raises(ConfigError) as caught:
        csv_to_parquet(source, tmp_path / "out.parquet", subject="bad.csv")
    assert caught.value.subject == "bad.csv"
    assert caught.value.reason.startswith(f"not a readable CSV: line {line}: ")
    assert why in caught.value.reason


def test_a_bad_value_past_the_type_sample_names_the_line(tmp_path: Path) -> None:
    source = tmp_path / "late.csv"
    rows = "".join(f"{i},{i}\n" for i in range(25_000))
    source.write_text(f"a,b\n{rows}oops,1\n")
    with pytest.raises(ConfigError) as caught:
        csv_to_parquet(source, tmp_path / "out.parquet", subject="late.csv")
    assert caught.value.reason.startswith("not a readable CSV: line 25002: ")
    assert 'column "a"' in caught.value.reason
    assert '"oops"' in caught.value.reason
