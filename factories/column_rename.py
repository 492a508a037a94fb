"""``column_rename``: a table or series with its columns renamed (and cast) by rules.

    factory: column_rename
    config:
      source: /raw/north.series        # optional when the node only serves as a transform
      rules:                            # tried in order on each column; the first match wins
        - {type: direct, from: Station ID, to: station, cast: integer}
        - {type: pattern, pattern: '^(.+) \\((.+)\\)$', replacement: '$1.$2'}
      type: series                      # optional: default from the source's name (.table → table)
      time_column: timestamp            # optional: the result's time column

A ``direct`` rule matches a column whose name is ``from``; a ``pattern`` rule matches a
column whose name the regular expression finds (Python syntax) and replaces the part it
matched, ``$N`` (or ``${N}``) standing for group N and ``$$`` for a dollar sign:
``Temperature (C)`` becomes ``Temperature.C`` above. A column no rule matches keeps its
name. The node produces an ``SqlRelation`` selecting every column under its new name,
so a filter or projection on a renamed column still reaches the source's Parquet.

By path in the ``transforms:`` of a join, pivot or reduce input, the node's ``rules``
apply to each series that input reads (``source`` is then not needed); those factories
call ``select_list`` / ``rename_columns`` with the rules of ``rules_of``.
"""

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Literal, Self

import pyarrow as pa
from pydantic import Field, ValidationError, field_validator, model_validator

from factories.csv_to_parquet import COLUMN_TYPES
from pond_pipeline.errors import ConfigError, FactoryError
from pond_pipeline.factory import (
    EntryType,
    Factory,
    FactoryConfig,
    FactoryContext,
    PondModel,
    SqlRelation,
)

__all__ = [
    "ColumnRenameConfig",
    "ColumnRenameFactory",
    "DirectRule",
    "PatternRule",
    "RenamedColumn",
    "Rule",
    "quote_identifier",
    "rename_columns",
    "rules_of",
    "select_list",
    "source_schema",
]

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
        if value is None:
            return None
        key = " ".join(value.lower().split())
        key = "timestamptz" if key == "timestamp with time zone" else key
        if key not in COLUMN_TYPES:
            raise ValueError(
                f"unknown type {value!r}; use one of {', '.join(sorted(COLUMN_TYPES))}"
            )
        return key

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


def rename_columns(
    rules: Sequence[DirectRule | PatternRule], columns: Sequence[str]
) -> list[RenamedColumn]:
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


def select_list(rules: Sequence[DirectRule | PatternRule], columns: Sequence[str]) -> str:
    """The SELECT list renaming ``columns`` by ``rules``.

    ``"Temperature (C)" AS "Temperature.C", CAST("Station ID" AS INTEGER) AS "station"``
    """
    return ", ".join(column.sql for column in rename_columns(rules, columns))


def rules_of(context: FactoryContext, path: str) -> list[DirectRule | PatternRule]:
    """The rules of the ``column_rename`` node at ``path`` (e.g. one named in ``transforms:``)."""
    factory, raw = context.config_of(path)
    if factory != ColumnRenameFactory.name:
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


class ColumnRenameFactory(Factory[ColumnRenameConfig]):
    name = "column_rename"
    Config = ColumnRenameConfig
    produces = EntryType.SERIES
    description = "A table or series with its columns renamed (and cast) by direct or regex rules."

    def entry_type(self, config: ColumnRenameConfig) -> EntryType:
        return config.entry_type

    def sources(self, config: ColumnRenameConfig) -> Sequence[str]:
        return [config.source] if config.source is not None else []

    def time_column(self, config: ColumnRenameConfig) -> str | None:
        return config.time_column

    def produce(self, config: ColumnRenameConfig, context: FactoryContext) -> SqlRelation:
        if config.source is None:
            raise ConfigError(
                "has no source: it only serves as a transform of a join, pivot or reduce",
                hint="add 'source: /path' to read it as a node of its own",
            )
        kind = context.entry_type(config.source)
        if kind is not config.entry_type:
            raise ConfigError(
                f"source {config.source} is a {kind.short}, but this node is a "
                f"{config.entry_type.short}",
                hint=f"recreate it with 'type: {kind.short}'",
            )
        columns = source_schema(context, config.source).names
        for index, rule in enumerate(config.rules):
            if isinstance(rule, DirectRule) and rule.from_ not in columns:
                raise ConfigError(
                    f"rule {index}: unknown column {rule.from_!r} in {config.source} "
                    f"(its columns: {', '.join(columns)})",
                    hint="fix 'from', or remove the rule",
                )
        return SqlRelation(
            f'SELECT {select_list(config.rules, columns)} FROM "source"', {"source": config.source}
        )
