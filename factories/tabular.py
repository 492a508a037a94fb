"""What several factories share about tables and series, so no factory imports another.

- the time column: its default name and its config field (``TimeColumn``);
- column types: the type names a config may write (``COLUMN_TYPES``) and their check,
  and a ``schema`` entry's long form with a time format (``ColumnSpec``);
- the CSV conversion settings (``CsvConversion``) and the ``csv_to_parquet`` config a
  ``csv_directory`` lists its children with;
- the renaming rules of ``column_rename`` (its config, ``rename_columns``,
  ``select_list``), which a join, pivot or reduce applies as ``transforms`` (``rules_of``);
- the join on time of ``timeseries_join`` and ``timeseries_pivot`` (``Member``,
  ``read_member``, ``join_on_time``);
- the aggregations of ``temporal_bucket`` and its config, which a ``temporal_reduce``
  lists its children with.
"""

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Annotated, Literal, Self

import pyarrow as pa
from pydantic import Field, ValidationError, field_validator, model_validator

from pond_pipeline.errors import ConfigError, FactoryError
from pond_pipeline.factory import (
    Duration,
    EntryType,
    FactoryConfig,
    FactoryContext,
    PondModel,
    SqlRelation,
)

__all__ = [
    "AGGREGATION_TYPES",
    "COLUMN_TYPES",
    "DEFAULT_TIME_COLUMN",
    "Aggregation",
    "AggregationType",
    "ColumnRenameConfig",
    "ColumnSpec",
    "ColumnTypes",
    "CsvConversion",
    "CsvToParquetConfig",
    "DirectRule",
    "Member",
    "PatternRule",
    "RenamedColumn",
    "Rule",
    "Rules",
    "TemporalBucketConfig",
    "TimeColumn",
    "check_column_types",
    "column_spec",
    "column_type",
    "file_stem",
    "join_on_time",
    "quote_identifier",
    "read_member",
    "rename_columns",
    "rules_of",
    "select_list",
    "source_schema",
]


# -- the time column ---------------------------------------------------------------------

DEFAULT_TIME_COLUMN = "timestamp"

TimeColumn = Annotated[str, Field(min_length=1)]
"""A series' time column, by name (``time_column: TimeColumn = DEFAULT_TIME_COLUMN``)."""


def file_stem(path: str) -> str:
    """``/inbox/north.csv`` → ``north`` (a name without a dot stays whole)."""
    name = path.rstrip("/").rsplit("/", 1)[-1]
    stem, dot, _ = name.rpartition(".")
    return stem if dot and stem else name


# -- column types ------------------------------------------------------------------------

COLUMN_TYPES: dict[str, pa.DataType] = {
    "boolean": pa.bool_(),
    "bool": pa.bool_(),
    "tinyint": pa.int8(),
    "smallint": pa.int16(),
    "integer": pa.int32(),
    "int": pa.int32(),
    "bigint": pa.int64(),
    "long": pa.int64(),
    "float": pa.float32(),
    "real": pa.float32(),
    "double": pa.float64(),
    "varchar": pa.string(),
    "string": pa.string(),
    "text": pa.string(),
    "date": pa.date32(),
    "timestamp": pa.timestamp("us"),
    "timestamptz": pa.timestamp("us", tz="UTC"),
}
"""The type names a ``schema`` override or a rule's ``cast`` accepts (DuckDB's
spellings), as Arrow types."""

TIME_TYPES = ("timestamp", "timestamptz", "date")
"""The types a ``format`` applies to."""


class ColumnSpec(PondModel):
    """The long form of a ``schema`` entry: a type and the format its text is written in,
    e.g. ``{type: timestamp, format: "%Y%m%d"}``."""

    type: str
    format: str | None = Field(default=None, min_length=1)
    """A DuckDB ``strptime`` format (``%Y%m%d``, ``%b %d %Y``, ``%d.%m.%Y %H:%M``) for a
    timestamp, timestamptz or date column; with ``%z`` the text carries its offset."""

    @field_validator("type")
    @classmethod
    def _known_type(cls, value: str) -> str:
        return column_type(value)

    @model_validator(mode="after")
    def _format_for_times(self) -> Self:
        if self.format is not None and self.type not in TIME_TYPES:
            raise ValueError(
                f"'format' applies to {', '.join(TIME_TYPES)}, not {self.type}; remove it"
            )
        return self


ColumnTypes = dict[str, str | ColumnSpec]
"""``schema:``: column → a type name, or a ``ColumnSpec`` (type and format)."""


def column_spec(entry: str | ColumnSpec) -> ColumnSpec:
    """A ``schema`` entry in its long form."""
    return entry if isinstance(entry, ColumnSpec) else ColumnSpec(type=entry)


def column_type(type_name: str) -> str:
    """``type_name`` as ``COLUMN_TYPES`` spells it (lower case, ``timestamp with time zone``
    → ``timestamptz``); an unknown one is a ``ValueError`` listing the known ones."""
    key = " ".join(type_name.lower().split())
    key = "timestamptz" if key == "timestamp with time zone" else key
    if key not in COLUMN_TYPES:
        raise ValueError(
            f"unknown type {type_name!r}; use one of {', '.join(sorted(COLUMN_TYPES))}"
        )
    return key


def check_column_types(value: ColumnTypes | None) -> ColumnTypes | None:
    """Lower-cases the type names; an unknown one is an error naming its column."""
    if value is None:
        return None
    normalized: ColumnTypes = {}
    for column, type_name in value.items():
        if isinstance(type_name, ColumnSpec):
            normalized[column] = type_name  # validated as it was made
            continue
        try:
            normalized[column] = column_type(type_name)
        except ValueError as exc:
            raise ValueError(f"column {column!r}: {exc}") from exc
    return normalized


# -- CSV conversion ----------------------------------------------------------------------


class CsvConversion(FactoryConfig):
    """How a CSV becomes a table or series: shared by ``csv_to_parquet`` and
    ``csv_directory`` (which passes these settings on to each child)."""

    type: Literal["table", "series"] = "table"
    temporal_column: str | None = None
    """For a series: its timestamp column (default ``timestamp``)."""
    schema_: ColumnTypes | None = Field(default=None, alias="schema")
    """Column → type overrides, e.g. ``{value: double, ts: timestamp}``; a time column
    written another way takes its format: ``{date: {type: timestamp, format: "%Y%m%d"}}``."""
    cache_ttl: Duration | None = None
    """How long a converted file may be reused (it is redone anyway when the CSV changes)."""

    @field_validator("schema_")
    @classmethod
    def _known_types(cls, value: ColumnTypes | None) -> ColumnTypes | None:
        return check_column_types(value)

    @property
    def formats(self) -> dict[str, str]:
        """Column → the ``strptime`` format its text is parsed with."""
        specs = {c: column_spec(entry) for c, entry in (self.schema_ or {}).items()}
        return {c: spec.format for c, spec in specs.items() if spec.format is not None}

    @model_validator(mode="after")
    def _temporal_column_for_series(self) -> Self:
        if self.type == "table" and self.temporal_column is not None:
            raise ValueError("'temporal_column' applies to type: series; remove it or set type")
        return self


class CsvToParquetConfig(CsvConversion):
    source: str
    """The CSV data file (a pond path)."""

    @property
    def time_column(self) -> str | None:
        if self.type != "series":
            return None
        return self.temporal_column or DEFAULT_TIME_COLUMN


# -- renaming rules ----------------------------------------------------------------------

_REFERENCE = re.compile(r"\$(?:\{(\d+)\}|(\d+)|(\$))")


class DirectRule(PondModel):
    type: Literal["direct"]
    from_: str = Field(alias="from", min_length=1)
    """The column's exact name."""
    to: str = Field(min_length=1)
    cast: str | None = None
    """A type to cast the column to (DuckDB's name: double, bigint, timestamptz, …)."""

    @field_validator("cast")
    @classmethod
    def _known_type(cls, value: str | None) -> str | None:
        return None if value is None else column_type(value)

    def rename(self, column: str) -> str | None:
        return self.to if column == self.from_ else None


class PatternRule(PondModel):
    type: Literal["pattern"]
    pattern: str
    """A regular expression (Python syntax) searched for in each column name."""
    replacement: str
    """What replaces the matched part: ``$1`` or ``${1}`` is group 1, ``$0`` the match."""

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, value: str) -> str:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"invalid regular expression {value!r}: {exc}") from exc
        return value

    @model_validator(mode="after")
    def _groups_exist(self) -> Self:
        groups = re.compile(self.pattern).groups
        for match in _REFERENCE.finditer(self.replacement):
            number = match.group(1) or match.group(2)
            if number is not None and int(number) > groups:
                raise ValueError(
                    f"replacement {self.replacement!r} refers to group {number}, but the "
                    f"pattern has {groups} group{'s' if groups != 1 else ''}"
                )
        return self

    def rename(self, column: str) -> str | None:
        match = re.search(self.pattern, column)
        if match is None:
            return None

        def group(reference: re.Match[str]) -> str:
            if reference.group(3):
                return "$"
            return match.group(int(reference.group(1) or reference.group(2))) or ""

        expanded = _REFERENCE.sub(group, self.replacement)
        return column[: match.start()] + expanded + column[match.end() :]


Rule = Annotated[DirectRule | PatternRule, Field(discriminator="type")]
Rules = Sequence[DirectRule | PatternRule]


class ColumnRenameConfig(FactoryConfig):
    source: str | None = None
    """The table or series to rename (a pond path); not needed by a transform."""
    rules: list[Rule] = Field(min_length=1)
    type: Literal["table", "series"] | None = None
    """What the node is (default: a table when ``source`` ends in ``.table``, else a series)."""
    time_column: str | None = None
    """A series' time column, by its new name (default: its first timestamp column)."""

    @property
    def entry_type(self) -> EntryType:
        if self.type is not None:
            return EntryType.from_short(self.type)
        if self.source is not None and self.source.endswith(".table"):
            return EntryType.TABLE
        return EntryType.SERIES


@dataclass(frozen=True)
class RenamedColumn:
    """One column of the result: the source column, its new name, and the cast if any."""

    source: str
    name: str
    cast: str | None = None
    rule: int | None = None
    """The index of the rule that matched (None: kept as it was)."""

    @property
    def expression(self) -> str:
        """The SQL value of the column (before ``AS name``)."""
        column = quote_identifier(self.source)
        return f"CAST({column} AS {self.cast.upper()})" if self.cast else column

    @property
    def sql(self) -> str:
        """The SELECT-list item: ``"Temperature (C)" AS "Temperature.C"``."""
        if self.cast is None and self.source == self.name:
            return quote_identifier(self.name)
        return f"{self.expression} AS {quote_identifier(self.name)}"

    def arrow_type(self, source_type: pa.DataType) -> pa.DataType:
        """The column's type in the result, given its type in the source."""
        return COLUMN_TYPES[self.cast] if self.cast else source_type


def rename_columns(rules: Rules, columns: Sequence[str]) -> list[RenamedColumn]:
    """Each column under its new name: the first rule that matches it renames it.

    Two columns given the same name, or a pattern that leaves an empty name, is a
    ``FactoryError`` naming the columns and rules.
    """
    renamed: list[RenamedColumn] = []
    taken: dict[str, RenamedColumn] = {}
    for column in columns:
        result = RenamedColumn(column, column)
        for index, rule in enumerate(rules):
            name = rule.rename(column)
            if name is not None:
                cast = rule.cast if isinstance(rule, DirectRule) else None
                result = RenamedColumn(column, name, cast, index)
                break
        if not result.name:
            raise FactoryError(
                f"rule {result.rule} renames column {column!r} to an empty name",
                hint="change the rule's replacement",
            )
        clash = taken.get(result.name)
        if clash is not None:
            raise FactoryError(
                f"columns {clash.source!r} ({_by(clash)}) and {column!r} ({_by(result)}) would "
                f"both be named {result.name!r}",
                hint="change a rule so every column gets its own name",
            )
        taken[result.name] = result
        renamed.append(result)
    return renamed


def select_list(rules: Rules, columns: Sequence[str]) -> str:
    """The SELECT list renaming ``columns`` by ``rules``.

    ``"Temperature (C)" AS "Temperature.C", CAST("Station ID" AS INTEGER) AS "station"``
    """
    return ", ".join(column.sql for column in rename_columns(rules, columns))


def rules_of(context: FactoryContext, path: str) -> list[DirectRule | PatternRule]:
    """The rules of the ``column_rename`` node at ``path`` (e.g. one named in ``transforms:``)."""
    factory, raw = context.config_of(path)
    if factory != "column_rename":
        raise ConfigError(
            f"transform {path} is a {factory!r} node, not a column_rename node",
            hint="list only column_rename nodes in transforms",
        )
    try:
        config = ColumnRenameConfig.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise ConfigError(
            f"transform {path} has an invalid config: {where}: {first['msg']}",
            hint="fix that column_rename node",
        ) from exc
    return list(config.rules)


def source_schema(context: FactoryContext, path: str) -> pa.Schema:
    """A table's or series' columns, read without producing a dynamic source's rows."""
    empty: pa.Table = context.query('SELECT * FROM "source" LIMIT 0', {"source": path})
    return empty.schema


def quote_identifier(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _by(column: RenamedColumn) -> str:
    return "kept" if column.rule is None else f"rule {column.rule}"


# -- the join on time --------------------------------------------------------------------

_RANK = "__pond_rank"


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
        items = [f"{rank} AS {_RANK}", time]
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
        return f"arg_max({column}, {_RANK}) FILTER (WHERE {column} IS NOT NULL) AS {column}"
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


# -- time-bucket aggregations ------------------------------------------------------------

AGGREGATION_TYPES = ("avg", "min", "max", "sum", "count", "first", "last")
AggregationType = Literal["avg", "min", "max", "sum", "count", "first", "last"]


class Aggregation(PondModel):
    type: AggregationType
    columns: list[str] = Field(min_length=1)
    """Column names or globs (``temp*``, ``*``)."""

    @field_validator("type", mode="before")
    @classmethod
    def _known_type(cls, value: object) -> object:
        if value not in AGGREGATION_TYPES:
            raise ValueError(
                f"unknown aggregation type {value!r}; use one of {', '.join(AGGREGATION_TYPES)}"
            )
        return value


class TemporalBucketConfig(FactoryConfig):
    source: str
    """The series to reduce (a pond path)."""
    resolution: Duration
    """The bucket width: ``1h``, ``6h``, ``1d``..."""
    time_column: TimeColumn = DEFAULT_TIME_COLUMN
    aggregations: list[Aggregation] = Field(min_length=1)
