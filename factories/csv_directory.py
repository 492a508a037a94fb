"""``csv_directory``: a directory with one table or series per CSV file a glob matches.

    factory: csv_directory
    config:
      pattern: /inbox/*.csv
      type: series                     # or table (default)
      temporal_column: ts              # series: the timestamp column (default: timestamp)
      schema:                          # optional type overrides for every file
        value: double
        date: {type: timestamp, format: "%Y%m%d"}   # DuckDB strptime
      cache_ttl: 6h                    # optional

The listing is made when the directory is read: ``/inbox/north.csv`` appears as the
transient child ``north.series`` (a ``csv_to_parquet`` node), so a CSV added to the
inbox later shows up without touching the directory. Only data files are listed.
"""

from collections.abc import Sequence

from factories.tabular import CsvConversion, CsvToParquetConfig, file_stem
from pond_pipeline.errors import FactoryError
from pond_pipeline.factory import ChildSpec, EntryType, Factory, FactoryContext

__all__ = ["CsvDirectoryConfig", "CsvDirectoryFactory"]


class CsvDirectoryConfig(CsvConversion):
    pattern: str
    """A pond path glob, e.g. ``/inbox/*.csv``."""


class CsvDirectoryFactory(Factory[CsvDirectoryConfig]):
    """One table or series per CSV data file a glob matches, listed when read."""

    name = "csv_directory"
    produces = EntryType.DIRECTORY

    def sources(self, config: CsvDirectoryConfig) -> Sequence[str]:
        return [config.pattern]

    def produce(self, config: CsvDirectoryConfig, context: FactoryContext) -> list[ChildSpec]:
        children: dict[str, ChildSpec] = {}
        origins: dict[str, str] = {}
        for path in context.glob(config.pattern):
            if context.entry_type(path) is not EntryType.DATA:
                continue
            name = f"{file_stem(path)}.{config.type}"
            if name in children:
                raise FactoryError(
                    f"{origins[name]} and {path} would both be listed as {name!r}",
                    subject=context.path,
                    hint="narrow the pattern so file names are unique",
                )
            child = CsvToParquetConfig.model_validate(
                {
                    "source": path,
                    "type": config.type,
                    "temporal_column": config.temporal_column,
                    "schema": config.schema_,
                    "cache_ttl": config.cache_ttl,
                }
            )
            children[name] = ChildSpec(
                name=name,
                factory="csv_to_parquet",
                config=child.model_dump(mode="json", by_alias=True, exclude_none=True),
            )
            origins[name] = path
        return list(children.values())
