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
call ``select_list`` / ``rename_columns`` with the rules of ``rules_of``. All of these,
and the config model ``ColumnRenameConfig``, live in ``factories.tabular``.
"""

from collections.abc import Sequence

from factories.tabular import ColumnRenameConfig, DirectRule, select_list, source_schema
from pond_pipeline.errors import ConfigError
from pond_pipeline.factory import EntryType, Factory, FactoryContext, SqlRelation

__all__ = ["ColumnRenameFactory"]


class ColumnRenameFactory(Factory[ColumnRenameConfig]):
    """A table or series with its columns renamed (and cast) by direct or regex rules."""

    name = "column_rename"
    produces = EntryType.SERIES

    def entry_type(self, config: ColumnRenameConfig) -> EntryType:
        return config.entry_type

    def sources(self, config: ColumnRenameConfig) -> Sequence[str]:
        return [config.source] if config.source is not None else []

    def is_runnable(self, config: ColumnRenameConfig) -> bool:
        return config.source is not None  # without one, it only serves as a transform

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
