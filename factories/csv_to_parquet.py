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
timestamp.
"""

from collections.abc import Sequence
from datetime import timedelta
from typing import Literal, Self

import pyarrow as pa
from pydantic import Field, field_validator, model_validator

from pond_pipeline.durations import Duration
from pond_pipeline.errors import FactoryError
from pond_pipeline.factory import EntryType, Factory, FactoryConfig, FactoryContext

__all__ = ["COLUMN_TYPES", "CsvToParquetConfig", "CsvToParquetFactory", "cast_columns"]

DEFAULT_TEMPORAL_COLUMN = "timestamp"

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
"""The type names a ``schema`` override accepts (DuckDB's spellings), as Arrow types."""

ColumnTypes = dict[str, str]


def check_column_types(value: ColumnTypes | None) -> ColumnTypes | None:
    """Lower-cases the type names; an unknown one is an error listing the known ones."""
    if value is None:
        return None
    normalized = {}
    for column, type_name in value.items():
        key = " ".join(type_name.lower().split())
        key = "timestamptz" if key == "timestamp with time zone" else key
        if key not in COLUMN_TYPES:
            raise ValueError(
                f"column {column!r}: unknown type {type_name!r}; "
                f"use one of {', '.join(sorted(COLUMN_TYPES))}"
            )
        normalized[column] = key
    return normalized


class CsvConversion(FactoryConfig):
    """How a CSV becomes a table or series: shared by ``csv_to_parquet`` and
    ``csv_directory`` (which passes these settings on to each child)."""

    type: Literal["table", "series"] = "table"
    temporal_column: str | None = None
    """For a series: its timestamp column (default ``timestamp``)."""
    schema_: ColumnTypes | None = Field(default=None, alias="schema")
    """Column → type overrides, e.g. ``{value: double, ts: timestamp}``."""
    cache_ttl: Duration | None = None
    """How long a converted file may be reused (it is redone anyway when the CSV changes)."""

    @field_validator("schema_")
    @classmethod
    def _known_types(cls, value: ColumnTypes | None) -> ColumnTypes | None:
        return check_column_types(value)

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
        return self.temporal_column or DEFAULT_TEMPORAL_COLUMN


class CsvToParquetFactory(Factory[CsvToParquetConfig]):
    name = "csv_to_parquet"
    Config = CsvToParquetConfig
    produces = EntryType.TABLE
    description = "One CSV data file as a table or series (types inferred, or overridden)."

    def entry_type(self, config: CsvToParquetConfig) -> EntryType:
        return EntryType.from_short(config.type)

    def sources(self, config: CsvToParquetConfig) -> Sequence[str]:
        return [config.source]

    def time_column(self, config: CsvToParquetConfig) -> str | None:
        return config.time_column

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
