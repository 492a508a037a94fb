"""File payloads: what gets stored for a version (bytes or Parquet) and how to read it back."""

import base64
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pond_pipeline.errors import ConfigError, ConflictError
from pond_pipeline.factory import EntryType
from pond_pipeline.store.blobs import sha256_file


@dataclass
class Payload:
    """The bytes of one new file version, as a host file or in memory, plus what we know of it."""

    source: Path | bytes
    size: int
    sha256: str
    attributes: dict[str, Any] = field(default_factory=dict)
    min_event_time: int | None = None
    max_event_time: int | None = None
    owned: bool = False
    """``source`` is a scratch file the pond may move into ``blobs/``."""

    def read_bytes(self) -> bytes:
        return self.source if isinstance(self.source, bytes) else self.source.read_bytes()


def encode_schema(schema: pa.Schema) -> str:
    """The schema without its metadata, but for pond's own keys (``pond.zoneless_utc``:
    the columns a CSV conversion read from zone-less text, as UTC)."""
    kept = {k: v for k, v in (schema.metadata or {}).items() if k.startswith(b"pond.")}
    schema = schema.with_metadata(kept) if kept else schema.remove_metadata()
    return base64.b64encode(schema.serialize().to_pybytes()).decode()


def decode_schema(text: str) -> pa.Schema:
    return pa.ipc.read_schema(pa.BufferReader(base64.b64decode(text)))


def first_timestamp_column(schema: pa.Schema) -> str | None:
    for item in schema:
        if pa.types.is_timestamp(item.type) or pa.types.is_date(item.type):
            return str(item.name)
    return None


_MICROS_PER_UNIT = {"s": 1_000_000, "ms": 1_000, "us": 1}
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


def to_micros(value: Any) -> int:
    """A timestamp/date scalar or ``datetime`` as µs since the epoch (naive = UTC).

    Arrow scalars are converted from their integer value, so a time beyond Python's
    year 9999 still works; it is clamped to the int64 range the oplog stores."""
    if isinstance(value, pa.TimestampScalar | pa.Date32Scalar | pa.Date64Scalar):
        raw = int(value.value)
        if isinstance(value, pa.Date32Scalar):
            micros = raw * 86_400_000_000
        elif isinstance(value, pa.Date64Scalar):
            micros = raw * 1_000
        else:
            unit = value.type.unit
            micros = raw // 1_000 if unit == "ns" else raw * _MICROS_PER_UNIT[unit]
        return max(_INT64_MIN, min(_INT64_MAX, micros))
    if isinstance(value, pa.Scalar):
        value = value.as_py()
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        delta = value - datetime(1970, 1, 1, tzinfo=UTC)
        return int((delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds)
    if hasattr(value, "toordinal"):  # a date
        return to_micros(datetime(value.year, value.month, value.day, tzinfo=UTC))
    raise TypeError(value)


def check_time_column(schema: pa.Schema, time_column: str | None, subject: str) -> str:
    """The series' timestamp column: the one named, else the first timestamp column."""
    if time_column is None:
        found = first_timestamp_column(schema)
        if found is None:
            raise ConfigError(
                "a series needs a timestamp column and this data has none",
                subject=subject,
                hint=f"columns are {', '.join(schema.names)}; import it as --type table",
            )
        return found
    if time_column not in schema.names:
        raise ConfigError(
            f"no column {time_column!r}",
            subject=subject,
            hint=f"--time-column must be one of {', '.join(schema.names)}",
        )
    column_type = schema.field(time_column).type
    if not (pa.types.is_timestamp(column_type) or pa.types.is_date(column_type)):
        raise ConfigError(
            f"column {time_column!r} is {column_type}, not a timestamp",
            subject=subject,
            hint="name a timestamp column or cast this one",
        )
    return time_column


def event_range(parquet: pq.ParquetFile, time_column: str) -> tuple[int | None, int | None]:
    """Min and max of the time column, streaming one column of one row group at a time."""
    low: int | None = None
    high: int | None = None
    for index in range(parquet.num_row_groups):
        column = parquet.read_row_group(index, columns=[time_column]).column(0)
        if column.null_count == len(column):
            continue
        bounds = pc.min_max(column)
        lo, hi = to_micros(bounds["min"]), to_micros(bounds["max"])
        low = lo if low is None else min(low, lo)
        high = hi if high is None else max(high, hi)
    return low, high


def describe_parquet(
    source: Path,
    entry_type: EntryType,
    *,
    time_column: str | None,
    subject: str,
    owned: bool = False,
    sha256: str | None = None,
    check_pages: bool | None = None,
) -> Payload:
    """A table/series payload: size, sha256, schema, rows and (series) temporal range of
    a Parquet file. ``sha256``: the file's, when its writer hashed it while writing.

    A Parquet file that is not the pond's own (``check_pages``, by default when not
    ``owned``: a user's file) is read through once, so a damaged page is refused here
    rather than failing every read.
    """
    size, sha256 = source.stat().st_size, sha256 or sha256_file(source)
    try:
        parquet = pq.ParquetFile(source)
        schema = parquet.schema_arrow
        if check_pages if check_pages is not None else not owned:
            check_readable(parquet)
    except (pa.ArrowException, OSError) as exc:
        raise ConfigError(
            f"not a readable Parquet file ({_first_line(exc)})", subject=subject
        ) from exc
    attributes: dict[str, Any] = {
        "rows": parquet.metadata.num_rows,
        "schema": encode_schema(schema),
    }
    payload = Payload(source, size, sha256, attributes, owned=owned)
    if entry_type is EntryType.SERIES:
        column = check_time_column(schema, time_column, subject)
        attributes["time_column"] = column
        try:
            payload.min_event_time, payload.max_event_time = event_range(parquet, column)
        except (pa.ArrowException, OSError) as exc:
            raise ConfigError(
                f"not a readable Parquet file ({_first_line(exc)})", subject=subject
            ) from exc
    return payload


def check_readable(parquet: pq.ParquetFile) -> None:
    """Decode every page, one batch at a time; the row count must match the footer."""
    rows = sum(batch.num_rows for batch in parquet.iter_batches(batch_size=65536))
    if rows != parquet.metadata.num_rows:
        raise pa.ArrowInvalid(f"{rows} rows decoded, the footer says {parquet.metadata.num_rows}")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def unify_series_schema(existing: pa.Schema, incoming: pa.Schema, subject: str) -> None:
    """Versions union by column name; a name whose type changed is an error naming it."""
    clashes = [
        f"{name!r} is {incoming.field(name).type}, expected {existing.field(name).type}"
        for name in incoming.names
        if name in existing.names
        and not incoming.field(name).type.equals(existing.field(name).type)
    ]
    if clashes:
        raise ConflictError(
            f"cannot append: {'; '.join(clashes)}",
            subject=subject,
            hint="cast the columns to the series' types before appending",
        )
