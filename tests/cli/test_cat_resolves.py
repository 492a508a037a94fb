"""``pond cat`` resolves its path once: the node it picks bytes or rows by is the one it
reads (not resolved again for the dataset, the time column or the ``--sql`` source)."""

from collections import Counter

import pytest

from pond_pipeline.dynamic.namespace import Namespace

DERIVED = "/sensors/warm.series"


@pytest.fixture
def resolved(monkeypatch) -> Counter[str]:
    """How many times each path was resolved (every resolution goes through here)."""
    counts: Counter[str] = Counter()
    original = Namespace.resolve

    def counting(self, path, **kw):
        counts[path] += 1
        return original(self, path, **kw)

    monkeypatch.setattr(Namespace, "resolve", counting)
    return counts


@pytest.fixture
def derived_pond(sample_pond, sample):
    sample_pond.create_dynamic(
        DERIVED,
        "sql_derived_series",
        {"source": sample.series, "query": "SELECT * FROM source WHERE value >= 200"},
    )
    return sample_pond


@pytest.mark.parametrize("extra", [(), ("--sql", "SELECT * FROM source")])
def test_cat_of_a_static_series_resolves_it_once(run, sample_pond, sample, resolved, extra):
    result = run("cat", sample.series, "--format", "csv", *extra)

    assert result.exit_code == 0, result.stderr
    assert resolved == {sample.series: 1}


def test_cat_of_a_data_file_resolves_it_once(run, sample_pond, sample, resolved):
    result = run("cat", sample.data)

    assert result.stdout_bytes == sample.notes
    assert resolved == {sample.data: 1}


def test_cat_of_a_derived_series_resolves_it_once(run, derived_pond, sample, resolved):
    result = run("cat", DERIVED, "--format", "csv")

    assert result.exit_code == 0, result.stderr
    assert len(result.stdout.splitlines()) == 1 + 8  # days 2 and 3
    # the source is resolved by the fingerprint's glob and by the factory's query
    assert resolved == {DERIVED: 1, sample.series: 2}
