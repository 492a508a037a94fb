"""``dynamic.graph``: who reads whom, the derivation order, and the one cycle error."""

import pytest

from pond_pipeline.dynamic.graph import (
    DerivationCycleError,
    Vertex,
    derivation_order,
    upstream_index,
)
from pond_pipeline.errors import ConfigError


def test_order_keeps_the_given_order_where_the_graph_allows() -> None:
    upstream = {"/a": [], "/b": ["/a"], "/c": [], "/d": ["/b", "/c"]}

    assert derivation_order(upstream) == ["/a", "/b", "/c", "/d"]


def test_a_reader_listed_before_its_source_comes_after_it() -> None:
    assert derivation_order({"/report": ["/daily"], "/daily": ["/raw"], "/raw": []}) == [
        "/raw",
        "/daily",
        "/report",
    ]


def test_a_cycle_is_named_from_its_earliest_path_in_reading_order() -> None:
    upstream = {"/x": [], "/a": ["/b"], "/b": ["/c"], "/c": ["/a"]}

    with pytest.raises(DerivationCycleError) as caught:
        derivation_order(upstream)

    assert isinstance(caught.value, ConfigError)  # exit code 2 in the CLI
    assert caught.value.cycle == ["/a", "/b", "/c", "/a"]
    assert caught.value.message == (
        "/a: derivation cycle: /a -> /b -> /c -> /a; "
        "change a source so the nodes do not read each other"
    )


def test_a_node_reading_itself_is_a_cycle() -> None:
    with pytest.raises(DerivationCycleError) as caught:
        derivation_order({"/a.series": ["/a.series"]})

    assert caught.value.reason == "derivation cycle: /a.series -> /a.series"


def test_upstream_from_patterns_directories_and_declared_children() -> None:
    vertices = [
        Vertex("/raw", [], is_directory=True),
        Vertex("/clean", [], is_directory=True, declares_children=True),
        Vertex("/clean/north.series", ["/raw/north.series"]),
        Vertex("/clean/warm.series", ["/clean/north.series"]),
        Vertex("/report.md", ["/clean/*.series"]),
    ]

    upstream = upstream_index(vertices)

    # a literal path reaches into the directory above it; never into one containing it
    assert upstream["/clean/north.series"] == ["/raw"]
    assert upstream["/clean/warm.series"] == ["/clean/north.series"]
    # a directory of declared children reads what they read from outside it
    assert upstream["/clean"] == ["/raw"]
    # a glob matches every entry and the directory it descends into
    assert upstream["/report.md"] == ["/clean", "/clean/north.series", "/clean/warm.series"]
    assert derivation_order(upstream)[-1] == "/report.md"
