"""``synthetic``: a generated test series, each point the sum of simple signals.

    factory: synthetic
    config:
      start: 2024-01-01T00:00:00Z
      end: 2024-01-02T00:00:00Z          # inclusive: 24 h at 1m is 1,441 rows
      interval: 1m
      time_column: timestamp             # default
      points:
        - name: temperature
          components:
            - {type: sine, amplitude: 5, period: 1d, offset: 20}
            - {type: noise, stddev: 0.3, seed: 7}
        - name: level
          components: [{type: line, slope: 0.001, offset: 3}]

Components: ``sine``, ``triangle``, ``square`` (``amplitude``, ``period``, ``offset``,
``phase`` in radians), ``line`` (``slope`` per second, ``offset``), ``noise`` (Gaussian,
``stddev``, ``seed``), ``constant`` (``value``). Time ``t`` is seconds since ``start``,
so every wave starts at its phase. Rows are generated in batches of
``BATCH_ROWS``, never all in memory, and the same config always gives the same rows.
Timestamps are ``timestamp[us, tz=UTC]`` (a start/end without a zone is UTC).
"""

import math
import random
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Annotated, Literal, Self

import pyarrow as pa
import pyarrow.compute as pc
from pydantic import Field, model_validator

from factories.tabular import DEFAULT_TIME_COLUMN, TimeColumn
from pond_pipeline.factory import (
    Duration,
    EntryType,
    Factory,
    FactoryConfig,
    FactoryContext,
    PondModel,
)

__all__ = [
    "BATCH_ROWS",
    "Component",
    "ConstantComponent",
    "LineComponent",
    "NoiseComponent",
    "Point",
    "SineComponent",
    "SquareComponent",
    "SyntheticConfig",
    "SyntheticFactory",
    "TriangleComponent",
]

BATCH_ROWS = 100_000
TIMESTAMP = pa.timestamp("us", tz="UTC")


class _Wave(PondModel):
    amplitude: float = 1.0
    period: Duration
    offset: float = 0.0
    phase: float = 0.0
    """Radians."""

    def cycles(self, seconds: pa.Array) -> pa.Array:
        """Where each instant is in the wave, in periods (``phase`` included)."""
        turns = pc.divide(seconds, self.period.total_seconds())
        return pc.add(turns, self.phase / (2 * math.pi))

    def scale(self, unit_wave: pa.Array) -> pa.Array:
        return pc.add(pc.multiply(unit_wave, self.amplitude), self.offset)


class SineComponent(_Wave):
    type: Literal["sine"]

    def values(self, seconds: pa.Array, state: random.Random | None) -> pa.Array:
        return self.scale(pc.sin(pc.multiply(self.cycles(seconds), 2 * math.pi)))


class TriangleComponent(_Wave):
    """0 at phase 0, rising to +amplitude at a quarter period, -amplitude at three quarters."""

    type: Literal["triangle"]

    def values(self, seconds: pa.Array, state: random.Random | None) -> pa.Array:
        shifted = _fraction(pc.add(self.cycles(seconds), 0.75))
        unit = pc.subtract(pc.multiply(pc.abs(pc.subtract(shifted, 0.5)), 4.0), 1.0)
        return self.scale(unit)


class SquareComponent(_Wave):
    """+amplitude for the first half of each period, -amplitude for the second."""

    type: Literal["square"]

    def values(self, seconds: pa.Array, state: random.Random | None) -> pa.Array:
        first_half = pc.less(_fraction(self.cycles(seconds)), 0.5)
        return self.scale(pc.if_else(first_half, 1.0, -1.0))


class LineComponent(PondModel):
    type: Literal["line"]
    slope: float = 0.0
    """Change per second."""
    offset: float = 0.0

    def values(self, seconds: pa.Array, state: random.Random | None) -> pa.Array:
        return pc.add(pc.multiply(seconds, self.slope), self.offset)


class NoiseComponent(PondModel):
    """Gaussian noise with mean 0; the same ``seed`` gives the same values."""

    type: Literal["noise"]
    stddev: float = Field(default=1.0, ge=0)
    seed: int = 0

    def values(self, seconds: pa.Array, state: random.Random | None) -> pa.Array:
        assert state is not None
        return pa.array([state.gauss(0.0, self.stddev) for _ in range(len(seconds))], pa.float64())


class ConstantComponent(PondModel):
    type: Literal["constant"]
    value: float

    def values(self, seconds: pa.Array, state: random.Random | None) -> pa.Array:
        return pc.add(pc.multiply(seconds, 0.0), self.value)


Component = Annotated[
    SineComponent
    | TriangleComponent
    | SquareComponent
    | LineComponent
    | NoiseComponent
    | ConstantComponent,
    Field(discriminator="type"),
]


class Point(PondModel):
    name: str = Field(min_length=1)
    components: list[Component] = Field(min_length=1)


class SyntheticConfig(FactoryConfig):
    start: datetime
    end: datetime
    """Inclusive."""
    interval: Duration
    time_column: TimeColumn = DEFAULT_TIME_COLUMN
    points: list[Point] = Field(min_length=1)

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if _utc(self.end) < _utc(self.start):
            raise ValueError("'end' is before 'start'; swap them")
        names = [point.name for point in self.points]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(f"point names must be unique: {', '.join(duplicates)} repeated")
        if self.time_column in names:
            raise ValueError(f"a point is named like the time column {self.time_column!r}")
        return self

    @property
    def rows(self) -> int:
        step = _micros(self.interval.total_seconds())
        return (_epoch_micros(self.end) - _epoch_micros(self.start)) // step + 1


class SyntheticFactory(Factory[SyntheticConfig]):
    """A generated series: sums of sine, triangle, square, line, noise, constant."""

    name = "synthetic"
    produces = EntryType.SERIES

    def produce(self, config: SyntheticConfig, context: FactoryContext) -> pa.RecordBatchReader:
        schema = pa.schema(
            [pa.field(config.time_column, TIMESTAMP, nullable=False)]
            + [pa.field(point.name, pa.float64()) for point in config.points]
        )
        return pa.RecordBatchReader.from_batches(schema, generate(config, schema))


def generate(
    config: SyntheticConfig, schema: pa.Schema, batch_rows: int = BATCH_ROWS
) -> Iterator[pa.RecordBatch]:
    """The series' rows, ``batch_rows`` at a time."""
    start = _epoch_micros(config.start)
    step = _micros(config.interval.total_seconds())
    states = [
        [random.Random(c.seed) if isinstance(c, NoiseComponent) else None for c in point.components]
        for point in config.points
    ]
    for first in range(0, config.rows, batch_rows):
        index = pa.array(range(first, min(first + batch_rows, config.rows)), pa.int64())
        offsets = pc.multiply(index, step)
        timestamps = pc.add(offsets, start).cast(TIMESTAMP)
        seconds = pc.divide(offsets.cast(pa.float64()), 1e6)
        columns = [timestamps]
        for point, point_states in zip(config.points, states, strict=True):
            total = pc.multiply(seconds, 0.0)
            for component, state in zip(point.components, point_states, strict=True):
                total = pc.add(total, component.values(seconds, state))
            columns.append(total)
        yield pa.RecordBatch.from_arrays(columns, schema=schema)


def _fraction(values: pa.Array) -> pa.Array:
    return pc.subtract(values, pc.floor(values))


def _utc(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _micros(seconds: float) -> int:
    return round(seconds * 1_000_000)


def _epoch_micros(value: datetime) -> int:
    delta = _utc(value) - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
