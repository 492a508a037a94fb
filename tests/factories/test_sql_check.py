"""A node's SQL is bound against its sources' schemas when it is created (issue 13):
refused with a ``SqlCheckError`` (a ``ConfigError``) naming the node, the field and
DuckDB's first line, and nothing written; what cannot be known without producing a
source is left to the read (syntax and the one-SELECT rule are still checked)."""

import pytest

from pond_pipeline.api import Pond
from pond_pipeline.dynamic.sql_check import SqlCheckError
from pond_pipeline.errors import ConfigError, FactoryError
from pond_pipeline.project.materialize import materialize

EVENTS = "/events/all.series"
NORTH = b"ts,value,station\n2024-01-01T00:00:00,1.5,n1\n2024-01-01T01:00:00,2.5,n1\n"

REFUSED = [
    pytest.param(
        "SELEC * FROM source", 'Parser Error: syntax error at or near "SELEC"', id="syntax"
    ),
    pytest.param(
        "SELECT * FROM source; SELECT 1",
        "only SELECT queries may run, not 2 statements: SELECT + SELECT",
        id="two-statements",
    ),
    pytest.param("DROP TABLE source", "only SELECT queries may run, not DROP", id="drop"),
    pytest.param(
        "INSERT INTO source VALUES (1)", "only SELECT queries may run, not INSERT", id="insert"
    ),
    pytest.param(
        "SELECT ts, prio FROM source",
        'Binder Error: Referenced column "prio" not found in FROM clause!',
        id="unknown-column",
    ),
    pytest.param(
        "SELECT * FROM events",
        "Catalog Error: Table with name events does not exist!",
        id="unknown-table",
    ),
    pytest.param(
        "SELECT no_such_fn(score) AS s FROM source",
        "Catalog Error: Scalar Function with name no_such_fn does not exist!",
        id="unknown-function",
    ),
]


def derived(query: str, source: str = EVENTS) -> dict[str, str]:
    return {"source": source, "query": query}


def exists(pond: Pond, path: str) -> bool:
    return pond.resolver().exists(path)


@pytest.mark.parametrize(("query", "words"), REFUSED)
def test_bad_sql_is_refused_at_create_and_nothing_is_written(events_pond, query, words):
    before = len(events_pond.log())

    with pytest.raises(SqlCheckError) as caught:
        events_pond.create_dynamic("/a/hot.series", "sql_derived_series", derived(query))

    error = caught.value
    assert isinstance(error, ConfigError)
    assert error.exit_code == 2
    assert (error.path, error.field, error.words) == ("/a/hot.series", "query", words)
    assert error.message == f"/a/hot.series: query: {words}; fix the query"
    assert "__pond_" not in error.message
    assert len(events_pond.log()) == before
    assert not exists(events_pond, "/a/hot.series")
    assert not exists(events_pond, "/a")  # not even the parent it would have made


def test_a_good_query_is_created_and_nothing_is_read_to_check_it(events_pond):
    events_pond.create_dynamic(
        "/a/hot.series", "sql_derived_series", derived("SELECT ts, host FROM source")
    )

    assert events_pond.cache.stats().entries == 0  # bound, not run: nothing produced
    assert events_pond.read_table("/a/hot.series").column_names == ["ts", "host"]


def test_every_table_of_sources_is_bound(events_pond):
    config = {
        "sources": {"e": EVENTS, "f": EVENTS},
        "query": "SELECT e.ts, f.hots FROM e JOIN f USING (ts)",
    }
    with pytest.raises(SqlCheckError) as caught:
        events_pond.create_dynamic("/joined.table", "sql_derived_table", config)

    assert caught.value.words == (
        'Binder Error: Values list "f" does not have a column named "hots"'
    )
    assert "__pond_" not in caught.value.message


def test_a_glob_is_bound_as_the_union_of_its_matches(events_pond, make_events):
    with events_pond.transaction("more") as tx:
        tx.write_table("/events/more.series", make_events(10), "series", time_column="ts")

    with pytest.raises(SqlCheckError) as caught:
        events_pond.create_dynamic(
            "/a/hot.series",
            "sql_derived_series",
            derived("SELECT ts, hots FROM source", "/events/*.series"),
        )
    assert caught.value.words == 'Binder Error: Referenced column "hots" not found in FROM clause!'

    events_pond.create_dynamic(
        "/a/hot.series",
        "sql_derived_series",
        derived("SELECT ts, host FROM source", "/events/*.series"),
    )


def test_a_derivation_of_a_derivation_is_bound_against_its_sql(events_pond):
    """The source is dynamic and never produced: its own SQL gives its columns."""
    events_pond.create_dynamic(
        "/high.series", "sql_derived_series", derived("SELECT ts, host AS machine FROM source")
    )

    with pytest.raises(SqlCheckError) as caught:
        events_pond.create_dynamic(
            "/top.series",
            "sql_derived_series",
            derived("SELECT ts, host FROM source", "/high.series"),
        )
    assert caught.value.words == 'Binder Error: Referenced column "host" not found in FROM clause!'

    events_pond.create_dynamic(
        "/top.series",
        "sql_derived_series",
        derived("SELECT ts, machine FROM source", "/high.series"),
    )
    assert events_pond.cache.stats().entries == 0


def test_in_one_transaction_a_node_may_read_one_made_before_it(events_pond):
    def create_both() -> None:
        with events_pond.transaction("two") as tx:
            tx.create_dynamic("/one.series", "sql_derived_series", derived("SELECT ts FROM source"))
            tx.create_dynamic(
                "/two.series",
                "sql_derived_series",
                derived("SELECT ts, host FROM source", "/one.series"),
            )

    before = len(events_pond.log())
    with pytest.raises(SqlCheckError) as caught:
        create_both()

    assert caught.value.path == "/two.series"
    assert caught.value.words == 'Binder Error: Referenced column "host" not found in FROM clause!'
    assert len(events_pond.log()) == before
    assert not exists(events_pond, "/one.series")  # the whole transaction is aborted


def test_an_entry_of_a_dynamic_dir_is_checked_by_its_path(events_pond):
    entries = [
        {
            "name": "a.series",
            "factory": "sql_derived_series",
            "config": derived("SELECT ts FROM source"),
        },
        {
            "name": "b.series",
            "factory": "sql_derived_series",
            "config": derived("SELECT ts, host FROM source", "/d/a.series"),
        },
    ]

    with pytest.raises(SqlCheckError) as caught:
        events_pond.create_dynamic("/d", "dynamic_dir", {"entries": entries})

    assert caught.value.message == (
        '/d/b.series: query: Binder Error: Referenced column "host" not found in FROM clause!; '
        "fix the query"
    )
    assert not exists(events_pond, "/d")


def test_a_glob_matching_nothing_yet_is_accepted_but_its_syntax_is_checked(pond):
    pond.create_dynamic(
        "/later.series",
        "sql_derived_series",
        derived("SELECT ts, anything FROM source", "/in/*.series"),
    )

    with pytest.raises(SqlCheckError) as caught:
        pond.create_dynamic("/never.series", "sql_derived_series", derived("SELEC", "/in/*.series"))
    assert caught.value.words == 'Parser Error: syntax error at or near "SELEC"'


@pytest.fixture
def csv_pond(pond):
    """``/csv/north.series``: a ``csv_to_parquet`` child of a ``csv_directory``."""
    with pond.transaction("inbox") as tx:
        tx.write_bytes("/inbox/north.csv", NORTH, parents=True)
        tx.create_dynamic(
            "/csv",
            "csv_directory",
            {"pattern": "/inbox/*.csv", "type": "series", "temporal_column": "ts"},
        )
    return pond


def test_a_source_known_only_by_producing_it_is_not_produced_to_check(csv_pond):
    """A CSV child not materialized: converting it would read the CSV, so the query is
    only checked for syntax at create, and its columns when it is read."""
    csv_pond.create_dynamic(
        "/hot.series",
        "sql_derived_series",
        derived("SELECT ts, valu FROM source", "/csv/north.series"),
    )

    assert csv_pond.cache.stats().entries == 0  # the CSV was not converted
    with pytest.raises(FactoryError, match='column "valu" not found'):
        csv_pond.read_table("/hot.series")


def test_a_materialized_source_is_bound_by_its_recorded_schema(csv_pond):
    materialize(csv_pond, "/csv")

    with pytest.raises(SqlCheckError) as caught:
        csv_pond.create_dynamic(
            "/hot.series",
            "sql_derived_series",
            derived("SELECT ts, valu FROM source", "/csv/north.series"),
        )
    assert caught.value.words == 'Binder Error: Referenced column "valu" not found in FROM clause!'

    csv_pond.create_dynamic(
        "/hot.series",
        "sql_derived_series",
        derived("SELECT ts, value FROM source", "/csv/north.series"),
    )


def test_updating_a_node_checks_its_new_query(events_pond):
    events_pond.create_dynamic("/a.series", "sql_derived_series", derived("SELECT ts FROM source"))
    before = len(events_pond.log())

    with pytest.raises(SqlCheckError):
        events_pond.create_dynamic(
            "/a.series", "sql_derived_series", derived("SELECT tss FROM source"), overwrite=True
        )

    assert len(events_pond.log()) == before
    assert events_pond.node("/a.series").raw_config["query"] == "SELECT ts FROM source"


def test_check_sql_false_leaves_the_query_to_the_read(events_pond):
    """What ``apply`` does per node before checking the whole file at once."""
    with events_pond.transaction("unchecked") as tx:
        tx.create_dynamic(
            "/broken.series",
            "sql_derived_series",
            derived("SELECT nope FROM source"),
            check_sql=False,
        )

    with pytest.raises(FactoryError, match='"nope" not found'):
        events_pond.read_table("/broken.series")
