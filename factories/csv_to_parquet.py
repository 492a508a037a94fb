"""``csv_to_parquet``: one CSV data file of the pond read as a table or a series.

    factory: csv_to_parquet
    config:
      source: /inbox/north.csv
      type: series                     # or table (default)
      temporal_column: ts              # series: the timestamp column (default: timestamp)
      schema: {value: double}          # optional type overrides, column → type
      cache_ttl: 6h                    # optional

Usually listed by a ``csv_directory`` as a transient child, one per CSV file. DuckDB
infers the column types; ``schema`` overrides them (a value that does not convert is
an error naming the column). For a series, a string temporal column is parsed as a
timestamp. The config model, ``CsvToParquetConfig``, lives in ``factories.tabular``,
where ``csv_directory`` builds it for each child too.
"""

from collections.abc import Sequence
from datetime import timedelta

import pyarrow as pa

from factories.tabular import COLUMN_TYPES, ColumnTypes, CsvToParquetConfig
from pond_pipeline.errors import FactoryError
from pond_pipeline.factory import EntryType, Factory, FactoryContext

__all__ = ["CsvToParquetFactory", "cast_columns"]


class CsvToParquetFactory(Factory[CsvToParquetConfig]):
    """One CSV data file as a table or series (types inferred, or overridden)."""

    name = "csv_to_parquet"
    produces = EntryType.TABLE

    def entry_type(self, config: CsvToParquetConfig) -> EntryType:
        return EntryType.from_short(config.type)

    def sources(self, config: CsvToParquetConfig) -> Sequence[str]:
        return [config.source]

    def ttl(self, config: CsvToParquetConfig) -> timedelta | None:
        return config.cache_ttl

    def produce(self, config: CsvToParquetConfig, context: FactoryContext) -> pa.Table:
        table = context.read_csv(config.source)
        table = cast_columns(table, config.schema_ or {}, subject=config.source)
        column = config.time_column
        if column is not None:
            table = _ensure_timestamp(table, column, subject=config.source)
        return table


def cast_columns(table: pa.Table, overrides: ColumnTypes, *, subject: str) -> pa.Table:
    """``table`` with each overridden column cast; errors name the column."""
    for column, type_name in overrides.items():
        if column not in table.column_names:
            raise FactoryError(
                f"schema names column {column!r}, which the CSV does not have",
                subject=subject,
                hint=f"its columns are {', '.join(table.column_names)}",
            )
        target = COLUMN_TYPES[type_name]
        index = table.column_names.index(column)
        array = table.column(index)
        try:
            if pa.types.is_timestamp(target):
                converted = _to_timestamp(array, utc=target.tz is not None)
            else:
                converted = array.cast(target)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
            raise FactoryError(
                f"column {column!r} ({array.type}) does not convert to {type_name}: {exc}",
                subject=subject,
                hint=f"fix the values, or change the type of {column!r} in schema",
            ) from exc
        table = table.set_column(index, pa.field(column, converted.type), converted)
    return table


def _ensure_timestamp(table: pa.Table, column: str, *, subject: str) -> pa.Table:
    if column not in table.column_names:
        raise FactoryError(
            f"the temporal column {column!r} is missing",
            subject=subject,
            hint=f"set temporal_column to one of {', '.join(table.column_names)}",
        )
    index = table.column_names.index(column)
    array = table.column(index)
    if pa.types.is_timestamp(array.type):
        return table
    if pa.types.is_string(array.type) or pa.types.is_large_string(array.type):
        try:
            converted = _to_timestamp(array, utc=False)
        except pa.ArrowInvalid as exc:
            raise FactoryError(
                f"the temporal column {column!r} holds text that is not a timestamp: {exc}",
                subject=subject,
                hint="write ISO 8601 timestamps such as 2024-01-01T00:00:00Z",
            ) from exc
        return table.set_column(index, pa.field(column, converted.type), converted)
    raise FactoryError(
        f"the temporal column {column!r} is {array.type}, not a timestamp",
        subject=subject,
        hint=f"set schema: {{{column}: timestamp}}, or choose another temporal_column",
    )


def _to_timestamp(array: pa.ChunkedArray, *, utc: bool) -> pa.ChunkedArray:
    """Text with or without a zone offset, or a timestamp/date, as ``timestamp[us]``
    (UTC-aware when the text has offsets or ``utc`` is asked)."""
    naive, aware = pa.timestamp("us"), pa.timestamp("us", tz="UTC")
    if not (pa.types.is_string(array.type) or pa.types.is_large_string(array.type)):
        return array.cast(aware if utc else naive)
    try:
        converted = array.cast(naive)
    except pa.ArrowInvalid:
        return array.cast(aware)
    return converted.cast(aware) if utc else converted
