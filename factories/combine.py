"""``combine``: one series that is the union of every series a glob matches.

    factory: combine
    config:
      pattern: /sensors/*/temperature.series
      time_column: ts                  # optional (default: the first member's)

Members are unioned by column name (a column one member lacks reads as null there), so
they need not have the same columns, but a column they share must have the same type,
and every member must have the time column. A member that does not fit is an error
naming it and the columns. Members added later are included at the next read.
"""

from collections.abc import Sequence

import pyarrow as pa

from pond_pipeline.errors import FactoryError
from pond_pipeline.factory import EntryType, Factory, FactoryConfig, FactoryContext, SqlRelation

__all__ = ["CombineConfig", "CombineFactory"]


class CombineConfig(FactoryConfig):
    pattern: str
    """A pond path glob matching the series to combine."""
    time_column: str | None = None
    """The timestamp column every member must have (default: the first member's)."""


class CombineFactory(Factory[CombineConfig]):
    """The union, by column name, of the series a glob matches."""

    name = "combine"
    produces = EntryType.SERIES

    def sources(self, config: CombineConfig) -> Sequence[str]:
        return [config.pattern]

    def produce(self, config: CombineConfig, context: FactoryContext) -> SqlRelation:
        members = [
            path
            for path in context.glob(config.pattern)
            if context.entry_type(path) is EntryType.SERIES
        ]
        if not members:
            raise FactoryError(
                f"pattern {config.pattern!r} matches no series",
                subject=context.path,
                hint="check the pattern, or create the series first",
            )
        first = members[0]
        time_column = config.time_column or context.time_column(first)
        reference = context.schema(first)
        for member in members:
            _check_member(member, context.schema(member), first, reference, time_column)
        tables = {f"member_{index}": path for index, path in enumerate(members)}
        query = " UNION ALL BY NAME ".join(f'SELECT * FROM "{name}"' for name in tables)
        return SqlRelation(query, tables)


def _check_member(
    member: str, schema: pa.Schema, first: str, reference: pa.Schema, time_column: str | None
) -> None:
    if time_column is not None and time_column not in schema.names:
        raise FactoryError(
            f"has no time column {time_column!r} (its columns: {', '.join(schema.names)})",
            subject=member,
            hint="rename its time column, or narrow the pattern to exclude it",
        )
    clashes = [
        f"{field.name} is {field.type} here but {reference.field(field.name).type} in {first}"
        for field in schema
        if field.name in reference.names and not field.type.equals(reference.field(field.name).type)
    ]
    if clashes:
        raise FactoryError(
            f"does not fit the combined schema: {'; '.join(clashes)}",
            subject=member,
            hint="cast the columns to the same types, or narrow the pattern to exclude it",
        )
