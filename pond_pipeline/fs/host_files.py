"""Host files brought into the pond: what kind of file each becomes (data, table,
series), and each as a payload — bytes kept exactly, or Parquet (CSV converted by
DuckDB) — with an append to a series checked against the series it extends."""

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pond_pipeline.errors import ConfigError
from pond_pipeline.factory import EntryType
from pond_pipeline.fs.payloads import Payload, describe_parquet, unify_series_schema
from pond_pipeline.query.engine import csv_to_parquet
from pond_pipeline.store.blobs import BlobStore, changed_while_reading

TABULAR_SUFFIXES = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}


@dataclass(frozen=True)
class SeriesBase:
    """The static series an import appends to: what the new rows must agree with."""

    path: str
    schema: Callable[[], pa.Schema]
    """Read only when an append is checked (after the new file itself)."""
    time_column: str | None
    last_event_time: int | None
    """The latest event time (µs) any of its versions holds."""


def import_kind(source: Path, requested: str | None, existing: EntryType | None) -> EntryType:
    """``--type`` if given, else the existing file's kind, else table for .csv/.parquet
    and data for anything else."""
    if requested is not None:
        try:
            kind = EntryType.from_short(requested)
        except ValueError:
            raise ConfigError(
                f"unknown type {requested!r}", hint="use data, table or series"
            ) from None
    elif existing is not None:
        kind = existing
    else:
        kind = EntryType.TABLE if format_of(source) else EntryType.DATA
    if kind.is_tabular and format_of(source) is None:
        raise ConfigError(
            f"cannot import as a {kind.short}: not a .csv or .parquet file",
            subject=str(source),
            hint="import it as --type data",
        )
    if not kind.is_file:
        raise ConfigError(f"cannot import a file as a {kind.short}", subject=str(source))
    return kind


def format_of(source: Path) -> str | None:
    suffix = TABULAR_SUFFIXES.get(source.suffix.lower())
    if suffix:
        return suffix
    with source.open("rb") as handle:
        return "parquet" if handle.read(4) == b"PAR1" else None


def host_payload(
    blobs: BlobStore,
    source: Path,
    kind: EntryType,
    base: SeriesBase | None,
    *,
    time_column: str | None = None,
    on_progress: Callable[[float], None] | None = None,
) -> Payload:
    """A host file as a payload of ``kind``: bytes kept exactly, or Parquet (CSV is
    converted by DuckDB); with ``base``, an append checked against that series.

    The payload is always a scratch file read once from ``source`` (a byte copy hashed
    while copied, or DuckDB's Parquet), so its sha256 names exactly the bytes stored; a
    source seen to change meanwhile is refused (``changed_while_reading``)."""
    if kind is EntryType.DATA:
        scratch, sha, size = blobs.copy_to_scratch(source)
        return Payload(scratch, size, sha, owned=True)
    if format_of(source) != "csv":  # a user's Parquet file: checked page by page
        scratch, sha, _ = blobs.copy_to_scratch(source, ".parquet")
        return parquet_payload(
            scratch,
            kind,
            base,
            time_column,
            owned=True,
            subject=str(source),
            sha256=sha,
            check_pages=True,
        )
    scratch = blobs.scratch_file(".parquet")
    try:
        before = file_state(source)
        csv_to_parquet(source, scratch, subject=str(source), on_progress=on_progress)
        if file_state(source) != before:
            raise changed_while_reading(source)
    except BaseException:
        scratch.unlink(missing_ok=True)
        raise
    return parquet_payload(scratch, kind, base, time_column, owned=True, subject=str(source))


def file_state(source: Path) -> tuple[int, int, int]:
    """What changes when a file is written or replaced: (inode, size, mtime in ns)."""
    stat = source.stat()
    return stat.st_ino, stat.st_size, stat.st_mtime_ns


def parquet_payload(
    source: Path,
    kind: EntryType,
    base: SeriesBase | None,
    time_column: str | None,
    *,
    owned: bool,
    subject: str,
    sha256: str | None = None,
    check_pages: bool | None = None,
) -> Payload:
    """A Parquet file as a payload (its event range read for a series); an ``owned``
    file is removed when it is refused. ``sha256`` and ``check_pages``: as for
    ``describe_parquet``."""
    try:
        if base is not None:
            current = base.time_column
            if time_column and current and time_column != current:
                raise ConfigError(
                    f"the series' time column is {current!r}, not {time_column!r}",
                    subject=base.path,
                    hint="omit --time-column when appending",
                )
            time_column = time_column or current
        payload = describe_parquet(
            source,
            kind,
            time_column=time_column,
            subject=subject,
            owned=owned,
            sha256=sha256,
            check_pages=check_pages,
        )
        if base is not None:
            unify_series_schema(base.schema(), pq.read_schema(source), base.path)
        return payload
    except BaseException:
        if owned:
            source.unlink(missing_ok=True)
        raise


def rows_after(blobs: BlobStore, payload: Payload, base: SeriesBase) -> Payload | None:
    """A re-imported series file as only its rows after the series' last event time: a
    series appends, so the rows imported before must not be read twice (a grown log
    file). ``None`` when no row is newer."""
    last = base.last_event_time
    if last is None or payload.min_event_time is None or payload.min_event_time > last:
        return payload
    time_column = str(payload.attributes["time_column"])
    source = payload.source
    table = pq.read_table(pa.BufferReader(source) if isinstance(source, bytes) else source)
    if payload.owned and isinstance(source, Path):
        source.unlink(missing_ok=True)
    times = table.column(time_column)
    unit = pa.timestamp("us", getattr(times.type, "tz", None))
    micros = times.cast(unit, safe=False).cast(pa.int64())
    tail = table.filter(pc.greater(micros, last))
    if tail.num_rows == 0:
        return None
    scratch = blobs.scratch_file(".parquet")
    pq.write_table(tail, scratch)
    return describe_parquet(
        scratch,
        EntryType.SERIES,
        time_column=time_column,
        subject=base.path,
        owned=True,
    )
