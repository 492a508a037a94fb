"""``sql_derived_series`` / ``sql_derived_table``: DuckDB SQL over other pond files.

    factory: sql_derived_series
    config:
      query: SELECT * FROM events WHERE priority >= 3
      sources: {events: /logs/events.series}     # or, for one source: source: /logs/x.series
      time_column: ts                              # series only, optional

Each name of ``sources`` is a table of the query; a glob reads as the union of its
matches. The node produces an ``SqlRelation``, which the resolver composes as views,
so a derivation of a derivation (to any depth) still pushes filters down to the base
files. The relation follows from the config alone (``relation``), so the query is bound
against its sources' schemas when the node is created or applied.
"""

from collections.abc import Sequence
from typing import Self, TypeVar

from pydantic import field_validator, model_validator

from pond_pipeline.factory import EntryType, Factory, FactoryConfig, FactoryContext, SqlRelation

__all__ = [
    "SqlDerivedSeriesConfig",
    "SqlDerivedSeriesFactory",
    "SqlDerivedTableConfig",
    "SqlDerivedTableFactory",
]

ONE_SOURCE_NAME = "source"


class SqlDerivedTableConfig(FactoryConfig):
    query: str
    """DuckDB SQL; the names of ``sources`` are its tables."""
    sources: dict[str, str] | None = None
    """Table name → pond path or glob."""
    source: str | None = None
    """Shorthand for ``sources: {source: <path>}``."""

    @field_validator("query")
    @classmethod
    def _query_not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("the query is empty; write a SELECT over the sources")
        return value

    @model_validator(mode="after")
    def _one_way_to_name_sources(self) -> Self:
        if (self.sources is None) == (self.source is None):
            given = "both" if self.source is not None else "neither"
            raise ValueError(
                f"give exactly one of 'source' (one table named source) or 'sources' "
                f"(name → path), not {given}"
            )
        if self.sources is not None and not self.sources:
            raise ValueError("'sources' is empty; name at least one table: {name: /path}")
        return self

    @property
    def tables(self) -> dict[str, str]:
        """The query's tables: ``sources``, or ``{"source": source}``."""
        if self.sources is not None:
            return dict(self.sources)
        assert self.source is not None
        return {ONE_SOURCE_NAME: self.source}


class SqlDerivedSeriesConfig(SqlDerivedTableConfig):
    time_column: str | None = None
    """The result's timestamp column (default: its first timestamp column)."""


SqlConfig = TypeVar("SqlConfig", bound=SqlDerivedTableConfig)


class _SqlDerivedFactory(Factory[SqlConfig]):
    """What both factories do: read the query's tables and hand the query on."""

    def sources(self, config: SqlConfig) -> Sequence[str]:
        return list(config.tables.values())

    def relation(self, config: SqlConfig) -> SqlRelation:
        return SqlRelation(config.query, config.tables, field="query")

    def produce(self, config: SqlConfig, context: FactoryContext) -> SqlRelation:
        return self.relation(config)


class SqlDerivedTableFactory(_SqlDerivedFactory[SqlDerivedTableConfig]):
    """A table defined by DuckDB SQL over other pond files (paths or globs)."""

    name = "sql_derived_table"
    produces = EntryType.TABLE


class SqlDerivedSeriesFactory(_SqlDerivedFactory[SqlDerivedSeriesConfig]):
    """A series defined by DuckDB SQL over other pond files (paths or globs)."""

    name = "sql_derived_series"
    produces = EntryType.SERIES
