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
time column reaches the Parquet of every source.
"""

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Self

import pyarrow as pa
from pydantic import Field, model_validator

from factories.column_rename import (
    DirectRule,
    PatternRule,
    quote_identifier,
    rename_columns,
    rules_of,
    source_schema,
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
    "Member",
    "TimeseriesJoinConfig",
    "TimeseriesJoinFactory",
    "join_on_time",
    "read_member",
]

DEFAULT_TIME_COLUMN = "timestamp"
RANK = "__pond_rank"
Rules = Sequence[DirectRule | PatternRule]


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
    time_column: str = Field(default=DEFAULT_TIME_COLUMN, min_length=1)


@dataclass
class Member:
    """One series read into a join: how to read it, and the columns it brings."""

    path: str
    alias: str
    """Its table name in the relation's SQL."""
    label: str
    """Who it is in messages: ``input 1 ('/south/*.series')``."""
    group: str
    """Members of one group (a scope) are unioned; different groups may not share a column."""
    source: str
    """The SQL FROM item reading the member (its transforms applied)."""
    time_type: pa.DataType
    columns: dict[str, str | None] = field(default_factory=dict)
    """Output column → the member's column holding it (None: no such column, all null)."""
    null_types: dict[str, pa.DataType] = field(default_factory=dict)
    """The type of each all-null output column (None in ``columns``)."""
    types: dict[str, pa.DataType] = field(default_factory=dict)
    """The member's columns (after its transforms) and their types."""
    condition: str | None = None
    """An extra WHERE on the member (its ``range``)."""


def read_member(
    context: FactoryContext,
    path: str,
    alias: str,
    transforms: Sequence[Rules],
    time_column: str,
    *,
    label: str,
    group: str,
) -> Member:
    """``path`` read as ``alias`` with ``transforms`` applied; its columns not yet chosen."""
    schema = source_schema(context, path)
    types = {f.name: f.type for f in schema}
    source = quote_identifier(alias)
    for rules in transforms:
        renamed = rename_columns(rules, list(types))
        source = f"(SELECT {', '.join(c.sql for c in renamed)} FROM {source})"
        types = {c.name: c.arrow_type(types[c.source]) for c in renamed}
    if time_column not in types:
        raise ConfigError(
            f"{path} ({label}) has no time column {time_column!r} "
            f"(its columns: {', '.join(types)})",
            hint="set time_column, or rename its time column with a transform",
        )
    return Member(path, alias, label, group, source, types[time_column], types=types)


def join_on_time(members: Sequence[Member], time_column: str) -> SqlRelation:
    """One row per time any member has, in order; each member's ``columns`` beside it."""
    if not members:
        return SqlRelation(
            f"SELECT CAST(NULL AS TIMESTAMPTZ) AS {quote_identifier(time_column)} LIMIT 0", {}
        )
    _check_time_types(members, time_column)
    owners = _check_clashes(members)
    time = quote_identifier(time_column)
    parts = []
    for rank, member in enumerate(members):
        items = [f"{rank} AS {RANK}", time]
        for name, column in member.columns.items():
            if column is None:
                value = _typed_null(member.null_types.get(name, pa.null()))
            else:
                value = quote_identifier(column)
            items.append(f"{value} AS {quote_identifier(name)}")
        where = f"{time} IS NOT NULL" + (f" AND {member.condition}" if member.condition else "")
        parts.append(f"SELECT {', '.join(items)} FROM {member.source} WHERE {where}")
    shared = {n for n in owners if sum(n in m.columns for m in members) > 1}
    aggregates = [_value(quote_identifier(name), name in shared) for name in owners]
    union = " UNION ALL BY NAME ".join(f"({part})" for part in parts)
    query = (
        f"SELECT {', '.join([time, *aggregates])} FROM ({union}) GROUP BY {time} ORDER BY {time}"
    )
    return SqlRelation(query, {member.alias: member.path for member in members})


def _value(column: str, shared: bool) -> str:
    """The column's value at one time: of the highest-ranked member that has one there
    when several members have the column, else its one member's (``any_value`` skips
    nulls, and is cheaper)."""
    if shared:
        return f"arg_max({column}, {RANK}) FILTER (WHERE {column} IS NOT NULL) AS {column}"
    return f"any_value({column}) AS {column}"


def _check_time_types(members: Sequence[Member], time_column: str) -> None:
    first = members[0]
    for member in members[1:]:
        if not member.time_type.equals(first.time_type):
            raise ConfigError(
                f"inputs have different time-column types: {time_column!r} is "
                f"{first.time_type} in {first.path} ({first.label}) but {member.time_type} in "
                f"{member.path} ({member.label})",
                hint="cast them to one type with a column_rename transform (cast: timestamptz)",
            )


def _check_clashes(members: Sequence[Member]) -> dict[str, Member]:
    """Each output column → the first member with it; a column two groups would both
    give is an error naming both inputs."""
    owners: dict[str, Member] = {}
    for member in members:
        for name in member.columns:
            owner = owners.setdefault(name, member)
            if owner.group != member.group:
                raise ConfigError(
                    f"column {name!r} would come from both {owner.label} ({owner.path}) "
                    f"and {member.label} ({member.path})",
                    hint="give the inputs a scope, or rename the column with a transform",
                )
    return owners


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


def _typed_null(kind: pa.DataType) -> str:
    """``NULL`` as a DuckDB value of ``kind`` (plain NULL for types without a spelling here)."""
    names = {
        pa.float64(): "DOUBLE",
        pa.float32(): "FLOAT",
        pa.int64(): "BIGINT",
        pa.int32(): "INTEGER",
        pa.int16(): "SMALLINT",
        pa.int8(): "TINYINT",
        pa.uint64(): "UBIGINT",
        pa.uint32(): "UINTEGER",
        pa.uint16(): "USMALLINT",
        pa.uint8(): "UTINYINT",
        pa.bool_(): "BOOLEAN",
        pa.string(): "VARCHAR",
        pa.large_string(): "VARCHAR",
        pa.date32(): "DATE",
    }
    name = names.get(kind)
    if name is None and pa.types.is_timestamp(kind):
        name = "TIMESTAMPTZ" if kind.tz is not None else "TIMESTAMP"
    return f"CAST(NULL AS {name})" if name else "NULL"


def _utc(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


class TimeseriesJoinFactory(Factory[TimeseriesJoinConfig]):
    name = "timeseries_join"
    Config = TimeseriesJoinConfig
    produces = EntryType.SERIES
    description = (
        "Series lined up on time (full outer join); columns prefixed by each input's scope."
    )

    def sources(self, config: TimeseriesJoinConfig) -> Sequence[str]:
        found: list[str] = []
        for item in config.inputs:
            found.extend([item.pattern, *item.transforms])
        return list(dict.fromkeys(found))

    def time_column(self, config: TimeseriesJoinConfig) -> str | None:
        return config.time_column

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
