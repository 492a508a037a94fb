"""``synthetic``: generated test series."""

import math
import statistics
from datetime import UTC, datetime, timedelta

import pyarrow as pa
import pytest

from factories.synthetic import SyntheticConfig, SyntheticFactory, generate
from pond_pipeline.errors import ConfigError

START = datetime(2024, 1, 1, tzinfo=UTC)


def config(*points, interval="1m", end="2024-01-02T00:00:00Z", **extra):
    return {
        "start": "2024-01-01T00:00:00Z",
        "end": end,
        "interval": interval,
        "points": [{"name": name, "components": components} for name, components in points],
        **extra,
    }


def test_one_day_at_one_minute_is_1441_rows_with_a_constant(pond):
    pond.create_dynamic(
        "/syn.series", "synthetic", config(("level", [{"type": "constant", "value": 3.5}]))
    )

    table = pond.read_table("/syn.series")

    assert table.num_rows == 1441
    assert table.schema.field("timestamp").type == pa.timestamp("us", tz="UTC")
    assert table.column("timestamp")[0].as_py() == START
    assert table.column("timestamp")[-1].as_py() == START + timedelta(days=1)
    assert set(table.column("level").to_pylist()) == {3.5}
    assert pond.describe("/syn.series")["time_column"] == "timestamp"


def test_sine_stays_within_its_amplitude(pond):
    sine = {"type": "sine", "amplitude": 5, "period": "1h", "offset": 20}
    pond.create_dynamic("/syn.series", "synthetic", config(("temp", [sine])))

    values = pond.read_table("/syn.series").column("temp").to_pylist()

    assert all(15 - 1e-9 <= v <= 25 + 1e-9 for v in values)
    assert values[0] == pytest.approx(20)  # t = 0
    assert values[15] == pytest.approx(25)  # a quarter period
    assert values[45] == pytest.approx(15)
    assert max(values) == pytest.approx(25)
    assert min(values) == pytest.approx(15)


def test_waves_line_and_sum(pond):
    points = [
        ("tri", [{"type": "triangle", "amplitude": 2, "period": "1h"}]),
        ("sq", [{"type": "square", "amplitude": 3, "period": "1h", "offset": 1}]),
        ("line", [{"type": "line", "slope": 0.5, "offset": -1}]),
        (
            "sum",
            [
                {"type": "constant", "value": 10},
                {"type": "sine", "period": "1h", "phase": math.pi / 2},
            ],
        ),
    ]
    pond.create_dynamic("/syn.series", "synthetic", config(*points, end="2024-01-01T01:00:00Z"))

    table = pond.read_table("/syn.series")
    rows = {minute: table.slice(minute, 1).to_pylist()[0] for minute in (0, 15, 30, 45)}

    assert table.num_rows == 61
    assert [rows[m]["tri"] for m in (0, 15, 30, 45)] == pytest.approx([0, 2, 0, -2])
    assert [rows[m]["sq"] for m in (0, 15, 30, 45)] == [4, 4, -2, -2]
    assert [rows[m]["line"] for m in (0, 15)] == [-1, 449]  # 900 s at 0.5 per second
    assert [rows[m]["sum"] for m in (0, 15, 30)] == pytest.approx([11, 10, 9])


def test_time_column_and_the_phase_of_every_wave(pond):
    points = [
        ("tri", [{"type": "triangle", "amplitude": 2, "period": "1h", "phase": math.pi / 2}]),
        ("sq", [{"type": "square", "amplitude": 3, "period": "1h", "phase": math.pi}]),
    ]
    settings = config(*points, end="2024-01-01T01:00:00Z", time_column="ts")
    pond.create_dynamic("/syn.series", "synthetic", settings)

    table = pond.read_table("/syn.series")
    rows = [table.slice(minute, 1).to_pylist()[0] for minute in (0, 15, 30, 45)]

    assert table.column_names == ["ts", "tri", "sq"]
    assert pond.describe("/syn.series")["time_column"] == "ts"
    assert [row["tri"] for row in rows] == pytest.approx([2, 0, -2, 0])  # a quarter period ahead
    assert [row["sq"] for row in rows] == [-3, -3, 3, 3]  # half a period ahead


def test_noise_is_deterministic_given_its_seed(pond):
    def noise(seed):
        return [{"type": "noise", "stddev": 2, "seed": seed}]

    with pond.transaction("noise") as tx:
        tx.create_dynamic("/a.series", "synthetic", config(("n", noise(7)), ("m", noise(8))))
        tx.create_dynamic("/b.series", "synthetic", config(("n", noise(7))))

    a = pond.read_table("/a.series")
    b = pond.read_table("/b.series")

    assert a.column("n").to_pylist() == b.column("n").to_pylist()
    assert a.column("n").to_pylist() != a.column("m").to_pylist()
    assert abs(statistics.fmean(a.column("n").to_pylist())) < 0.3
    assert statistics.stdev(a.column("n").to_pylist()) == pytest.approx(2, rel=0.1)
    pond.cache.clear()
    assert pond.read_table("/a.series").equals(a)


def test_rows_come_in_bounded_batches():
    settings = SyntheticConfig.model_validate(
        config(("n", [{"type": "noise", "seed": 1}, {"type": "line", "slope": 1}]))
    )
    reader = SyntheticFactory().produce(settings, context=None)
    schema = reader.schema

    batches = list(generate(settings, schema, batch_rows=100))

    assert isinstance(reader, pa.RecordBatchReader)
    assert [b.num_rows for b in batches] == [100] * 14 + [41]
    assert pa.Table.from_batches(batches).equals(reader.read_all())


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"end": "2023-12-31T00:00:00Z"}, "'end' is before 'start'"),
        ({"interval": "soon"}, "interval: Value error, 'soon': is not a duration"),
        ({"points": []}, "points: List should have at least 1 item"),
        (
            {"points": [{"name": "x", "components": [{"type": "cosine"}]}]},
            "points.0.components.0: Input tag 'cosine' found using 'type' does not match",
        ),
        (
            {
                "points": [
                    {"name": "x", "components": [{"type": "sine", "period": "1h", "freq": 2}]}
                ]
            },
            "points.0.components.0.sine.freq: unknown field",
        ),
        (
            {"points": [{"name": "x", "components": [{"type": "constant", "value": 1}]}] * 2},
            "point names must be unique: x repeated",
        ),
    ],
)
def test_bad_configs_name_the_field(pond, change, expected):
    settings = {**config(("x", [{"type": "constant", "value": 1}])), **change}

    with pytest.raises(ConfigError) as caught:
        pond.create_dynamic("/syn.series", "synthetic", settings)

    assert expected in caught.value.message
    assert caught.value.subject == "/syn.series"
