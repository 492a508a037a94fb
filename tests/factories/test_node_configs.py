"""Creating dynamic nodes with the built-ins: every bad config fails at create, clearly,
and writes nothing; ``${env:NAME}`` is stored as written and expanded when read."""

import pytest

from pond_pipeline.errors import ConfigError

PRIORITY = "SELECT * FROM source WHERE priority >= 3"


def derived(source, query=PRIORITY):
    return {"source": source, "query": query}


@pytest.mark.parametrize(
    ("factory", "config", "expected"),
    [
        ("nope", derived("/events/all.series"), "unknown factory 'nope'"),
        (
            "sql_derived_series",
            {**derived("/events/all.series"), "bogus": 1},
            "invalid config for factory 'sql_derived_series': bogus: unknown field",
        ),
        (
            "sql_derived_series",
            {"sources": "/events/all.series", "query": PRIORITY},
            "sources: Input should be a valid dictionary",
        ),
        (
            "csv_directory",
            {"pattern": "/in/*.csv", "cache_ttl": 5},
            "cache_ttl: Value error, '5': is not a duration",
        ),
        ("combine", {"pattern": ["/a", "/b"]}, "pattern: Input should be a valid string"),
        (
            "sql_derived_table",
            derived("/events/missing.series"),
            "source '/events/missing.series' does not exist",
        ),
        ("sql_derived_series", {"source": "/events/all.series"}, "query: required field missing"),
    ],
)
def test_bad_config_fails_at_create_and_writes_nothing(events_pond, factory, config, expected):
    log_length = len(events_pond.log())

    with pytest.raises(ConfigError) as caught:
        events_pond.create_dynamic("/derived/x.series", factory, config)

    assert expected in caught.value.message
    assert caught.value.exit_code == 2
    assert len(events_pond.log()) == log_length
    assert [n.path for n in events_pond.list_nodes("/derived*")] == []


def test_unknown_factory_lists_the_installed_ones(events_pond):
    with pytest.raises(ConfigError) as caught:
        events_pond.create_dynamic("/x.series", "sql_derived", derived("/events/all.series"))

    for name in ("combine", "csv_directory", "sql_derived_series", "synthetic", "template"):
        assert name in caught.value.hint


def test_derivation_cycle_is_refused_and_nothing_written(events_pond):
    with events_pond.transaction("chain") as tx:
        tx.create_dynamic("/b.series", "sql_derived_series", derived("/events/all.series"))
        tx.create_dynamic("/a.series", "sql_derived_series", derived("/b.series"))
    log_length = len(events_pond.log())

    with pytest.raises(ConfigError) as caught, events_pond.transaction("close the loop") as tx:
        tx.create_dynamic("/b.series", "sql_derived_series", derived("/a.series"), overwrite=True)

    assert "derivation cycle: /a.series -> /b.series -> /a.series" in caught.value.message
    assert len(events_pond.log()) == log_length
    assert events_pond.describe("/b.series")["config"]["source"] == "/events/all.series"
    assert events_pond.read_table("/a.series").num_rows == 400


def test_source_matching_the_node_itself_is_a_cycle(events_pond):
    with pytest.raises(ConfigError) as caught:
        events_pond.create_dynamic(
            "/events/more.series", "combine", {"pattern": "/events/*.series"}
        )

    assert "derivation cycle: /events/more.series -> /events/more.series" in caught.value.message


def test_unset_env_variable_fails_at_create(events_pond, monkeypatch):
    monkeypatch.delenv("POND_TEST_MIN_PRIORITY", raising=False)
    log_length = len(events_pond.log())
    config = derived(
        "/events/all.series", "SELECT * FROM source WHERE priority >= ${env:POND_TEST_MIN_PRIORITY}"
    )

    with pytest.raises(ConfigError) as caught:
        events_pond.create_dynamic("/high.series", "sql_derived_series", config)

    assert caught.value.subject == "/high.series"
    assert "environment variable POND_TEST_MIN_PRIORITY is not set" in caught.value.message
    assert "export POND_TEST_MIN_PRIORITY=" in caught.value.hint
    assert len(events_pond.log()) == log_length


def test_env_reference_is_stored_unexpanded_and_expanded_at_read(events_pond, monkeypatch):
    query = "SELECT * FROM source WHERE priority >= ${env:POND_TEST_MIN_PRIORITY}"
    monkeypatch.setenv("POND_TEST_MIN_PRIORITY", "3")
    events_pond.create_dynamic(
        "/high.series", "sql_derived_series", derived("/events/all.series", query)
    )

    assert events_pond.describe("/high.series")["config"]["query"] == query
    assert events_pond.read_table("/high.series").num_rows == 400

    monkeypatch.setenv("POND_TEST_MIN_PRIORITY", "4")
    assert events_pond.read_table("/high.series").num_rows == 200


def test_env_default_applies_when_unset(events_pond, monkeypatch):
    monkeypatch.delenv("POND_TEST_MIN_PRIORITY", raising=False)
    query = "SELECT * FROM source WHERE priority >= ${env:POND_TEST_MIN_PRIORITY:-4}"

    events_pond.create_dynamic(
        "/high.series", "sql_derived_series", derived("/events/all.series", query)
    )

    assert events_pond.read_table("/high.series").num_rows == 200
