"""``timeseries_join``: several series lined up on one time axis (a full outer join).

    factory: timeseries_join
    config:
      time_column: timestamp                 # default
      inputs:
        - {pattern: /stations/north.series, scope: north}
        - pattern: /stations/south/*.series  # a glob: the union of its matches
          scope: south
          range: {begin: 2024-01-01T00:00:00Z, end: 2024-02-01T00:00:00Z}
          transforms: [/rules/units]          # column_rename nodes, applied in order
        - {pattern: /weather/wind.series}    # no scope: its columns keep their names

Every timestamp any input has appears once, in order, with each input's columns
beside it (null where that input has no row at that time). An input's columns are
renamed ``<scope>.<column>``; without a scope they keep their names, and a name two
inputs would both give is an error naming the column and both inputs. Inputs sharing
a scope, and the several series one pattern matches, are unioned first (by column
name; where two of them have a value at the same time, the later one's wins). An
input whose pattern matches nothing contributes no rows. ``range`` keeps an input's
rows in ``[begin, end)``; ``transforms`` rename its columns (a transform may rename
the time column too, to line up inputs whose time columns are named differently).
All inputs' time columns must have the same type (a transform's ``cast`` converts).
Rows without a time are left out.

The node produces an ``SqlRelation`` (a union, grouped by time), so a filter on the
time column reaches the Parquet of every source. The join itself (``join_on_time``),
which ``timeseries_pivot`` uses too, lives in ``factories.tabular``.
"""

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Self

import pyarrow as pa
from pydantic import Field, model_validator

from factories.tabular import (
    DEFAULT_TIME_COLUMN,
    Member,
    TimeColumn,
    join_on_time,
    quote_identifier,
    read_member,
    rules_of,
)
from pond_pipeline.errors import ConfigError
from pond_pipeline.factory import (
    EntryType,
    Factory,
    FactoryConfig,
    FactoryContext,
    PondModel,
    SqlRelation,
)

__all__ = [
    "InputRange",
    "JoinInput",
    "TimeseriesJoinConfig",
    "TimeseriesJoinFactory",
]


class InputRange(PondModel):
    begin: datetime | None = None
    """Inclusive (a time without a zone is UTC)."""
    end: datetime | None = None
    """Exclusive."""

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.begin is not None and self.end is not None and _utc(self.end) <= _utc(self.begin):
            raise ValueError("'end' must be after 'begin' (the range is [begin, end))")
        return self


class JoinInput(PondModel):
    pattern: str
    """A series' pond path, or a glob (the union of its matches)."""
    scope: str | None = Field(default=None, min_length=1)
    """Prefix of the input's columns: ``<scope>.<column>``."""
    range: InputRange | None = None
    transforms: list[str] = Field(default=[])
    """Paths of ``column_rename`` nodes whose rules apply, in order, to this input."""


class TimeseriesJoinConfig(FactoryConfig):
    inputs: list[JoinInput] = Field(min_length=1)
    time_column: TimeColumn = DEFAULT_TIME_COLUMN


def range_condition(member: Member, time_column: str, bounds: InputRange) -> str | None:
    """``bounds`` as SQL on the member's time column, with literals of its type."""
    conditions = []
    for value, operator in ((bounds.begin, ">="), (bounds.end, "<")):
        if value is not None:
            literal = _time_literal(_utc(value), member.time_type, member.label)
            conditions.append(f"{quote_identifier(time_column)} {operator} {literal}")
    return " AND ".join(conditions) or None


def _time_literal(value: datetime, kind: pa.DataType, label: str) -> str:
    if pa.types.is_timestamp(kind):
        if kind.tz is not None:
            return f"TIMESTAMPTZ '{value.isoformat(sep=' ')}'"
        return f"TIMESTAMP '{value.replace(tzinfo=None).isoformat(sep=' ')}'"
    if pa.types.is_date(kind):
        return f"DATE '{value.date().isoformat()}'"
    raise ConfigError(
        f"a range needs a timestamp or date time column, but {label}'s is {kind}",
        hint="cast it with a column_rename transform, or remove the range",
    )


def _utc(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


class TimeseriesJoinFactory(Factory[TimeseriesJoinConfig]):
    """Series lined up on time (full outer join); columns prefixed by each input's scope."""

    name = "timeseries_join"
    produces = EntryType.SERIES

    def sources(self, config: TimeseriesJoinConfig) -> Sequence[str]:
        found: list[str] = []
        for item in config.inputs:
            found.extend([item.pattern, *item.transforms])
        return list(dict.fromkeys(found))

    def produce(self, config: TimeseriesJoinConfig, context: FactoryContext) -> SqlRelation:
        members: list[Member] = []
        for index, item in enumerate(config.inputs):
            transforms = [rules_of(context, path) for path in item.transforms]
            label = f"input {index} ({item.pattern!r})"
            group = f"scope {item.scope!r}" if item.scope is not None else label
            matched = [
                p for p in context.glob(item.pattern) if context.entry_type(p) is EntryType.SERIES
            ]
            for number, path in enumerate(matched):
                alias = f"input_{index}_{number}"
                member = read_member(
                    context, path, alias, transforms, config.time_column, label=label, group=group
                )
                member.columns = {
                    (f"{item.scope}.{name}" if item.scope is not None else name): name
                    for name in member.types
                    if name != config.time_column
                }
                if item.range is not None:
                    member.condition = range_condition(member, config.time_column, item.range)
                members.append(member)
        return join_on_time(members, config.time_column)
