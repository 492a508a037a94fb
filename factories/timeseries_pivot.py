"""``timeseries_pivot``: the same columns of many series, side by side on one time axis.

    factory: timeseries_pivot
    config:
      pattern: /sites/*/weather.series     # every series it matches is one input
      columns: [temperature, humidity]
      time_column: timestamp               # default
      transforms: [/rules/units]           # optional column_rename nodes, applied first

For each series the pattern matches, the named columns are renamed
``<name>.<column>``, where ``<name>`` is what the pattern's wildcards matched
(``north`` for ``/sites/north/weather.series``; several wildcards' matches are joined
with ``.``), or the file's base name without its extension when the pattern has no
wildcard. The series are then joined on time exactly as ``timeseries_join`` does:
every timestamp once, in order, nulls where a series has no row. A column one series
lacks is nulls for it; a column no series has is an error (a misspelt name). Series
the pattern matches later appear at the next read.
"""

from collections.abc import Sequence

import pyarrow as pa
from pydantic import Field, field_validator

from factories.tabular import (
    DEFAULT_TIME_COLUMN,
    Member,
    TimeColumn,
    file_stem,
    join_on_time,
    read_member,
    rules_of,
)
from pond_pipeline.errors import ConfigError
from pond_pipeline.factory import (
    EntryType,
    Factory,
    FactoryConfig,
    FactoryContext,
    SqlRelation,
    glob_captures,
)

__all__ = ["TimeseriesPivotConfig", "TimeseriesPivotFactory", "series_name"]


class TimeseriesPivotConfig(FactoryConfig):
    pattern: str
    """A pond glob (or path) matching the series to pivot."""
    columns: list[str] = Field(min_length=1)
    time_column: TimeColumn = DEFAULT_TIME_COLUMN
    transforms: list[str] = Field(default=[])
    """Paths of ``column_rename`` nodes applied, in order, to every series first."""

    @field_validator("columns")
    @classmethod
    def _unique(cls, value: list[str]) -> list[str]:
        repeated = sorted({name for name in value if value.count(name) > 1})
        if repeated:
            raise ValueError(f"column {', '.join(map(repr, repeated))} is listed more than once")
        return value


class TimeseriesPivotFactory(Factory[TimeseriesPivotConfig]):
    """Named columns of every series a glob matches, as <name>.<column>, joined on time."""

    name = "timeseries_pivot"
    produces = EntryType.SERIES

    def sources(self, config: TimeseriesPivotConfig) -> Sequence[str]:
        return [config.pattern, *config.transforms]

    def produce(self, config: TimeseriesPivotConfig, context: FactoryContext) -> SqlRelation:
        transforms = [rules_of(context, path) for path in config.transforms]
        members: list[Member] = []
        named: dict[str, str] = {}
        for index, path in enumerate(context.glob(config.pattern)):
            if context.entry_type(path) is not EntryType.SERIES:
                continue
            name = series_name(config.pattern, path)
            if name in named:
                raise ConfigError(
                    f"{named[name]} and {path} would both be named {name!r}",
                    hint="let the pattern's * match what tells the series apart",
                )
            named[name] = path
            label = f"series {name!r}"
            member = read_member(
                context,
                path,
                f"series_{index}",
                transforms,
                config.time_column,
                label=label,
                group=path,
            )
            member.columns = {
                f"{name}.{column}": column if column in member.types else None
                for column in config.columns
            }
            members.append(member)
        _fill_missing(members, config)
        return join_on_time(members, config.time_column)


def _fill_missing(members: list[Member], config: TimeseriesPivotConfig) -> None:
    """Type each missing column's nulls like the column elsewhere; a column no series has
    is an error."""
    found: dict[str, pa.DataType] = {}
    for member in members:
        for column in config.columns:
            if column in member.types:
                found.setdefault(column, member.types[column])
    missing = [column for column in config.columns if column not in found]
    if members and missing:
        raise ConfigError(
            f"unknown column {missing[0]!r}: none of the {len(members)} series "
            f"{config.pattern!r} matches has it (columns of {members[0].path}: "
            f"{', '.join(members[0].types)})",
            hint="fix the name in 'columns'",
        )
    for member in members:
        member.null_types = {
            output: found[column]
            for output, column in zip(member.columns, config.columns, strict=True)
            if member.columns[output] is None
        }


def series_name(pattern: str, path: str) -> str:
    """What the pattern's wildcards matched in ``path`` (joined with ``.``), or, without
    wildcards, the path's base name without its extension."""
    captures = [c.replace("/", ".") for c in glob_captures(pattern, path) or [] if c]
    if captures:
        return ".".join(captures)
    return file_stem(path)
