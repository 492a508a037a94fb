"""``csv_to_parquet``: one CSV data file of the pond read as a table or a series.

    factory: csv_to_parquet
    config:
      source: /inbox/north.csv
      type: series                     # or table (default)
      temporal_column: ts              # series: the timestamp column (default: timestamp)
      schema:                          # optional type overrides, column → type
        value: double
        date: {type: timestamp, format: "%Y%m%d"}   # text or numbers written that way
      cache_ttl: 6h                    # optional

Usually listed by a ``csv_directory`` as a transient child, one per CSV file. DuckDB
infers the column types; ``schema`` overrides them (a value that does not convert is
an error naming the column). A ``format`` is a DuckDB ``strptime`` format, applied to
the column's text as written in the CSV (so ``19580329`` with ``%Y%m%d`` is 1958-03-29,
``Jan 1 2000`` with ``%b %d %Y`` is 2000-01-01); numbers are never cast to a time
without one (they would be read as microseconds since 1970). For a series, a string
temporal column is parsed as a timestamp. Times without a zone are read as UTC (and
recorded so, which ``pond describe`` shows). The config model, ``CsvToParquetConfig``,
lives in ``factories.tabular``, where ``csv_directory`` builds it for each child too.
"""

import json
import re
from collections.abc import Sequence
from datetime import timedelta

import pyarrow as pa
import pyarrow.compute as pc

from factories.tabular import COLUMN_TYPES, ColumnTypes, CsvToParquetConfig, column_spec
from pond_pipeline.errors import FactoryError
from pond_pipeline.factory import EntryType, Factory, FactoryContext

__all__ = ["ZONELESS_METADATA", "CsvToParquetFactory", "cast_columns"]

ZONELESS_METADATA = b"pond.zoneless_utc"
"""The schema metadata key the CSV conversion records its zone-less (UTC) timestamp
columns under, as a JSON list (the same key as ``pond_pipeline.query.engine``'s)."""

_ZONED = r"\d:\d\d(:\d\d([.,]\d+)?)?\s*([Zz]|[+-]\d\d(:?\d\d)?|[A-Za-z][A-Za-z0-9_/+-]*)\s*$"
"""A time of day followed by a zone or offset (as the CSV conversion recognizes them)."""


class CsvToParquetFactory(Factory[CsvToParquetConfig]):
    """One CSV data file as a table or series (types inferred, or overridden)."""

    name = "csv_to_parquet"
    produces = EntryType.TABLE
    version = "2"  # numbers are no longer cast to times; formats; zone checks

    def entry_type(self, config: CsvToParquetConfig) -> EntryType:
        return EntryType.from_short(config.type)

    def sources(self, config: CsvToParquetConfig) -> Sequence[str]:
        return [config.source]

    def ttl(self, config: CsvToParquetConfig) -> timedelta | None:
        return config.cache_ttl

    def produce(self, config: CsvToParquetConfig, context: FactoryContext) -> pa.Table:
        formats = config.formats
        table = context.read_csv(config.source, formats=formats or None)
        table = cast_columns(table, config.schema_ or {}, subject=config.source)
        column = config.time_column
        if column is not None:
            table = _ensure_timestamp(table, column, subject=config.source)
        return table


def cast_columns(table: pa.Table, overrides: ColumnTypes, *, subject: str) -> pa.Table:
    """``table`` with each overridden column cast; errors name the column.

    A column given a ``format`` arrives parsed (the CSV conversion applied it); a number
    is never cast to a time without one.
    """
    for column, entry in overrides.items():
        spec = column_spec(entry)
        type_name = spec.type
        if column not in table.column_names:
            raise FactoryError(
                f"schema names column {column!r}, which the CSV does not have",
                subject=subject,
                hint=f"its columns are {', '.join(table.column_names)}",
            )
        target = COLUMN_TYPES[type_name]
        index = table.column_names.index(column)
        array = table.column(index)
        is_time = pa.types.is_timestamp(target) or pa.types.is_date(target)
        if is_time and spec.format is None and _is_number(array.type):
            raise _numbers_are_not_times(column, array, type_name, subject)
        try:
            if pa.types.is_timestamp(target):
                converted = _to_timestamp(array, utc=target.tz is not None)
            else:
                converted = array.cast(target)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
            if is_time and _is_text(array.type):
                raise _text_is_not_time(column, array, type_name, exc, subject) from exc
            raise FactoryError(
                f"column {column!r} ({array.type}) does not convert to {type_name}: {exc}",
                subject=subject,
                hint=f"fix the values, or change the type of {column!r} in schema",
            ) from exc
        table = table.set_column(index, pa.field(column, converted.type), converted)
        if pa.types.is_timestamp(target) and _is_text(array.type):
            table = _mark_zoneless(table, column, array)
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
    if _is_text(array.type):
        try:
            converted = _to_timestamp(array, utc=False)
        except pa.ArrowInvalid as exc:
            raise _text_is_not_time(
                column, array, "timestamp", exc, subject, label="the temporal column"
            ) from exc
        table = table.set_column(index, pa.field(column, converted.type), converted)
        return _mark_zoneless(table, column, array)
    raise FactoryError(
        f"the temporal column {column!r} is {array.type}, not a timestamp",
        subject=subject,
        hint=f"give the format its values are written in: schema: {{{column}: {{type: "
        f'timestamp, format: "%Y%m%d"}}}}, or choose another temporal_column',
    )


def _to_timestamp(array: pa.ChunkedArray, *, utc: bool) -> pa.ChunkedArray:
    """Text with or without a zone offset, or a timestamp/date, as ``timestamp[us]``
    (UTC-aware when the text has offsets or ``utc`` is asked; text without a zone is UTC)."""
    naive, aware = pa.timestamp("us"), pa.timestamp("us", tz="UTC")
    if not _is_text(array.type):
        return array.cast(aware if utc else naive)
    try:
        converted = array.cast(naive)
    except pa.ArrowInvalid:
        return array.cast(aware)
    return converted.cast(aware) if utc else converted


def _is_number(kind: pa.DataType) -> bool:
    return bool(
        pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_decimal(kind)
    )


def _is_text(kind: pa.DataType) -> bool:
    return bool(pa.types.is_string(kind) or pa.types.is_large_string(kind))


def _sample(array: pa.ChunkedArray) -> object:
    """The column's first non-null value."""
    values = pc.drop_null(array)
    return values[0].as_py() if len(values) else None


def _numbers_are_not_times(
    column: str, array: pa.ChunkedArray, type_name: str, subject: str
) -> FactoryError:
    return FactoryError(
        f"column {column!r} holds numbers ({array.type}, e.g. {_sample(array)!r}), not "
        f"times; cast to {type_name} they would be read as microseconds since 1970",
        subject=subject,
        hint=f"give the format they are written in: schema: {{{column}: {{type: {type_name}, "
        f'format: "%Y%m%d"}}}} (DuckDB strptime), or keep the column a number',
    )


def _text_is_not_time(
    column: str,
    array: pa.ChunkedArray,
    type_name: str,
    exc: Exception,
    subject: str,
    *,
    label: str = "column",
) -> FactoryError:
    """Why text does not read as times: it mixes zoned and zone-less times, or a value
    is not ISO 8601 (then the fix is a format, not the zone pyarrow's message speaks of)."""
    text = pc.drop_null(array)
    zoned = pc.match_substring_regex(text, _ZONED)
    with_zone, without = pc.filter(text, zoned), pc.filter(text, pc.invert(zoned))
    found = re.search(r"string: '(.*?)' as a scalar", str(exc))
    value = found.group(1) if found else _sample(array)
    if len(with_zone) and len(without) and _is_iso(without[0].as_py()):
        return FactoryError(
            f"{label} {column!r} holds times with a zone (e.g. {with_zone[0].as_py()!r}) "
            f"and times without one (e.g. {without[0].as_py()!r})",
            subject=subject,
            hint="write every time with its offset (e.g. +00:00), or every time without one "
            "(zone-less times are read as UTC)",
        )
    return FactoryError(
        f"{label} {column!r} holds text that is not a timestamp: {value!r} is not ISO 8601",
        subject=subject,
        hint=f"give the format it is written in: schema: {{{column}: {{type: {type_name}, "
        f'format: "%b %d %Y"}}}} (DuckDB strptime: %Y %m %d %H %M %S %b %z), or write '
        "ISO 8601 times such as 2024-01-01T00:00:00Z",
    )


def _is_iso(value: str) -> bool:
    try:
        pa.array([value]).cast(pa.timestamp("us"))
    except pa.ArrowInvalid:
        return False
    return True


def _mark_zoneless(table: pa.Table, column: str, text: pa.ChunkedArray) -> pa.Table:
    """Record ``column`` as read from zone-less text (so as UTC), if its text had no zone."""
    values = pc.drop_null(text)
    if len(values) == 0 or pc.any(pc.match_substring_regex(values, _ZONED)).as_py():
        return table
    metadata = dict(table.schema.metadata or {})
    columns = json.loads(metadata.get(ZONELESS_METADATA, b"[]"))
    if column not in columns:
        columns.append(column)
    metadata[ZONELESS_METADATA] = json.dumps(columns).encode()
    return table.replace_schema_metadata(metadata)
