"""``dynamic_dir``: a directory of dynamic nodes declared inline, one entry = one node."""

from datetime import UTC, datetime

import pytest
import yaml

from pond_pipeline.errors import ConfigError
from pond_pipeline.project import pipeline
from pond_pipeline.project.materialize import materialize

SYNTHETIC = {
    "start": "2024-01-01T00:00:00Z",
    "end": "2024-01-01T01:00:00Z",  # 61 rows
    "interval": "1m",
    "points": [{"name": "temp", "components": [{"type": "line", "slope": 0.01, "offset": 10}]}],
}
WARM = "SELECT * FROM source WHERE temp >= 20"  # 10 + 0.6 per minute: minutes 17..60


def entry(name, factory, config):
    return {"name": name, "factory": factory, "config": config}


def stations(prefix="/stations"):
    """A synthetic series and, reading it, a derived one (the later entry reads the earlier)."""
    return {
        "entries": [
            entry("north.series", "synthetic", SYNTHETIC),
            entry(
                "warm.series",
                "sql_derived_series",
                {"source": f"{prefix}/north.series", "query": WARM},
            ),
        ]
    }


def test_one_create_is_one_transaction_and_lists_every_entry(pond):
    before = len(pond.log())

    pond.create_dynamic("/stations", "dynamic_dir", stations())

    assert len(pond.log()) == before + 1
    assert [(i.path, i.kind) for i in pond.list_nodes("/stations/")] == [
        ("/stations/north.series", "series (synthetic)"),
        ("/stations/warm.series", "series (sql_derived_series)"),
    ]


def test_entries_read_like_nodes_made_with_mknod(pond):
    with pond.transaction("both ways") as tx:
        tx.create_dynamic("/stations", "dynamic_dir", stations())
        tx.create_dynamic("/twin/north.series", "synthetic", SYNTHETIC, parents=True)
        tx.create_dynamic(
            "/twin/warm.series",
            "sql_derived_series",
            {"source": "/twin/north.series", "query": WARM},
        )

    for name in ("north.series", "warm.series"):
        entry_rows = pond.read_table(f"/stations/{name}")
        assert entry_rows.equals(pond.read_table(f"/twin/{name}"))
        counted = "SELECT count(*) AS n, min(temp) AS low FROM source"
        assert (
            pond.query(counted, source=f"/stations/{name}").to_pylist()
            == pond.query(counted, source=f"/twin/{name}").to_pylist()
        )
    warm = pond.read_table("/stations/warm.series")
    assert warm.num_rows == 44  # minutes 17..60
    assert warm.column("timestamp")[0].as_py() == datetime(2024, 1, 1, 0, 17, tzinfo=UTC)
    by_path = pond.query("SELECT count(*) AS n FROM '/stations/*.series'")
    assert by_path.column("n")[0].as_py() == 61 + 44

    described = pond.describe("/stations/north.series")
    twin = pond.describe("/twin/north.series")
    assert described["path"] == "/stations/north.series"
    assert described["factory"] == "synthetic"
    for key in ("type", "factory", "config", "schema", "time_column"):
        assert described[key] == twin[key]
    # an entry has no oplog row of its own until a materialization writes one
    assert described["versions"] == []


def test_entry_shares_the_cache_of_its_mknod_twin(pond):
    with pond.transaction("both ways") as tx:
        tx.create_dynamic("/stations", "dynamic_dir", stations())
        tx.create_dynamic("/twin.series", "synthetic", SYNTHETIC)
    pond.read_table("/twin.series")
    hits, misses = pond.cache.hits, pond.cache.misses

    pond.read_table("/stations/north.series")  # same factory, config and sources: same key

    assert pond.cache.hits > hits
    assert pond.cache.misses == misses
    assert pond.cache.stats().by_factory["synthetic"][0] == 1


def test_an_entry_materializes_into_the_directory(pond):
    pond.create_dynamic("/stations", "dynamic_dir", stations())

    result = materialize(pond, "/stations/north.series")

    assert (result.written, result.rows) == (1, 61)
    assert len(pond.describe("/stations/north.series")["versions"]) == 1
    assert pond.read_table("/stations/warm.series").num_rows == 44


def test_entries_are_pipeline_nodes_of_their_own(tmp_path):
    project = tmp_path / "pond.yaml"
    node = {"factory": "dynamic_dir", "config": stations()}
    project.write_text(yaml.safe_dump({"pond": "./.pond", "nodes": {"/stations": node}}))

    loaded = pipeline.load(project)

    assert [n.path for n in loaded.nodes] == [
        "/stations",
        "/stations/north.series",
        "/stations/warm.series",
    ]
    assert loaded.node("/stations/warm.series").factory.name == "sql_derived_series"
    assert "/stations/north.series" in loaded.upstream["/stations/warm.series"]


def test_bad_entry_config_names_the_entry_and_field(pond):
    before = len(pond.log())
    broken = {
        "entries": [
            entry("north.series", "synthetic", SYNTHETIC),
            entry("south.series", "synthetic", {**SYNTHETIC, "interval": "soon"}),
        ]
    }

    with pytest.raises(ConfigError) as caught:
        pond.create_dynamic("/stations", "dynamic_dir", broken)

    assert caught.value.subject == "/stations/south.series"
    assert "invalid config for factory 'synthetic': interval:" in caught.value.reason
    assert "'soon': is not a duration" in caught.value.reason
    assert len(pond.log()) == before
    assert not pond.list_nodes("/*")


def test_unknown_factory_or_missing_source_names_the_entry(pond):
    unknown = {"entries": [entry("a.series", "no_such_factory", {})]}
    missing = {
        "entries": [
            entry("a.series", "sql_derived_series", {"source": "/nowhere.series", "query": WARM})
        ]
    }

    with pytest.raises(ConfigError) as caught:
        pond.create_dynamic("/d", "dynamic_dir", unknown)
    assert caught.value.subject == "/d/a.series"
    assert "unknown factory 'no_such_factory'" in caught.value.reason

    with pytest.raises(ConfigError) as caught:
        pond.create_dynamic("/d", "dynamic_dir", missing)
    assert caught.value.subject == "/d/a.series"
    assert "source '/nowhere.series' does not exist" in caught.value.reason
    assert len(pond.log()) == 1


def test_an_entry_name_used_twice_is_refused(pond):
    twice = {"entries": [entry("north.series", "synthetic", SYNTHETIC)] * 2}

    with pytest.raises(ConfigError) as caught:
        pond.create_dynamic("/stations", "dynamic_dir", twice)

    assert caught.value.subject == "/stations"
    assert "entry name 'north.series' is used more than once" in caught.value.reason
    assert len(pond.log()) == 1


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("a/b.series", "entries.0.name: Value error, 'a/b.series' must be a single path segment"),
        ("..", "entries.0.name: Value error, '..' is not a name"),
        ("", "entries.0.name: Value error, '' is not a name"),
        ("*.series", "'*.series' contains a glob character"),
    ],
)
def test_entry_name_must_be_one_path_segment(pond, name, expected):
    with pytest.raises(ConfigError) as caught:
        pond.create_dynamic("/d", "dynamic_dir", {"entries": [entry(name, "synthetic", SYNTHETIC)]})

    assert expected in caught.value.reason
    assert len(pond.log()) == 1


def test_cycle_across_entries_is_refused(pond):
    def reads(other):
        return {"source": f"/d/{other}", "query": "SELECT * FROM source"}

    cycle = {
        "entries": [
            entry("a.series", "sql_derived_series", reads("b.series")),
            entry("b.series", "sql_derived_series", reads("a.series")),
        ]
    }

    with pytest.raises(ConfigError) as caught:
        pond.create_dynamic("/d", "dynamic_dir", cycle)

    assert "derivation cycle: /d/a.series -> /d/b.series -> /d/a.series" in caught.value.reason
    assert len(pond.log()) == 1


def test_cycle_through_the_rest_of_the_pond_is_refused(pond):
    pond.create_dynamic("/d", "dynamic_dir", stations(prefix="/d"))
    pond.create_dynamic(
        "/outside.series",
        "sql_derived_series",
        {"source": "/d/warm.series", "query": "SELECT * FROM source"},
    )
    before = len(pond.log())
    looped = {
        "entries": [
            entry(
                "warm.series",
                "sql_derived_series",
                {"source": "/outside.series", "query": "SELECT * FROM source"},
            )
        ]
    }

    with pytest.raises(ConfigError) as caught:
        pond.create_dynamic("/d", "dynamic_dir", looped, overwrite=True)

    assert "derivation cycle:" in caught.value.reason
    assert "/d/warm.series -> /outside.series -> /d/warm.series" in caught.value.reason
    assert len(pond.log()) == before
    assert pond.read_table("/outside.series").num_rows == 44  # the old entries still read
