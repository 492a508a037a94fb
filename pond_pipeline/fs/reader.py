"""Reading stored versions back: bytes, Parquet sources, and datasets over many versions.

Every payload is checked against its sha256 the first time this process reads it, so
a damaged blob is reported (naming node and version), never served.
"""

import functools
from collections.abc import Sequence
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from pond_pipeline.errors import CorruptionError
from pond_pipeline.fs.payloads import decode_schema
from pond_pipeline.store.blobs import BlobStore, sha256_bytes, sha256_file
from pond_pipeline.store.oplog import Oplog, OplogRecord


class PayloadReader:
    def __init__(self, oplog: Oplog, blobs: BlobStore):
        self.oplog = oplog
        self.blobs = blobs
        self._verified: set[tuple[str, int, int]] = set()
        self._schemas: dict[str, pa.Schema] = {}
        self._blob_paths: dict[str, Path] = {}

    def source(self, record: OplogRecord, path: str) -> Path | bytes:
        """A blob's file path (checked once per process) or the inline bytes (checked)."""
        if record.blob:
            blob_path = self._blob_paths.get(record.blob)
            if blob_path is None:
                blob_path = self._blob_paths[record.blob] = self.blobs.path(record.blob)
            self._verify_file(blob_path, record, path)
            return blob_path
        content = record.content
        if content is None and not record.is_dynamic:
            content = self.oplog.read_content(record.part_id, record.node_id, record.version)
        data = content or b""
        if record.sha256 and sha256_bytes(data) != record.sha256:
            raise _corrupt(path, record, "its inline bytes do not match their sha256")
        return data

    def read_bytes(self, record: OplogRecord, path: str) -> bytes:
        source = self.source(record, path)
        return source if isinstance(source, bytes) else source.read_bytes()

    def schema(self, record: OplogRecord, path: str) -> pa.Schema:
        if "schema" in record.attributes:
            text = record.attributes["schema"]
            if text not in self._schemas:
                self._schemas[text] = decode_schema(text)
            return self._schemas[text]
        source = self.source(record, path)
        try:
            return pq.read_schema(_parquet_input(source))
        except (OSError, ValueError, pa.ArrowException) as exc:
            raise _corrupt(path, record, f"its Parquet payload cannot be read ({exc})") from exc

    def dataset(
        self, records: Sequence[OplogRecord], path: str, schema: pa.Schema | None = None
    ) -> ds.Dataset:
        """One dataset over the versions' Parquet payloads, unioned by column name.

        Blobs stay files (so DuckDB's filters and projections reach their row groups);
        small inline versions join as one in-memory part; absent columns read as nulls.
        A series version's file carries its oplog time range, so a filter on the time
        column skips the versions outside it without opening them.
        """
        if schema is None:
            schema = pa.unify_schemas([self.schema(r, path) for r in records])
        sources = [self.source(r, path) for r in records]
        on_disk = [(r, s) for r, s in zip(records, sources, strict=True) if isinstance(s, Path)]
        inline = [
            conform_table(_read_inline(r, s, path), schema)
            for r, s in zip(records, sources, strict=True)
            if isinstance(s, bytes)
        ]
        parts: list[ds.Dataset] = []
        if on_disk:
            parts.append(_files_dataset(on_disk, schema))
        if inline or not parts:
            parts.append(ds.dataset(pa.concat_tables(inline) if inline else schema.empty_table()))
        return parts[0] if len(parts) == 1 else ds.dataset(parts)

    def _verify_file(self, blob_path: Path, record: OplogRecord, path: str) -> None:
        try:
            stat = blob_path.stat()
        except FileNotFoundError:
            raise _corrupt(path, record, f"its blob {record.blob} is missing") from None
        key = (str(blob_path), stat.st_size, stat.st_mtime_ns)
        if key in self._verified:
            return
        if sha256_file(blob_path) != record.blob:
            raise _corrupt(path, record, f"its blob {record.blob} is damaged (sha256 differs)")
        self._verified.add(key)


def _read_inline(record: OplogRecord, data: bytes, path: str) -> pa.Table:
    try:
        return pq.read_table(pa.BufferReader(data))
    except (OSError, ValueError, pa.ArrowException) as exc:
        raise _corrupt(path, record, f"its Parquet payload cannot be read ({exc})") from exc


def _files_dataset(files: Sequence[tuple[OplogRecord, Path]], schema: pa.Schema) -> ds.Dataset:
    file_format = ds.ParquetFileFormat()
    filesystem = pafs.LocalFileSystem()
    # A µs timestamp column's time zone, per column name (other types get no guarantee:
    # the oplog keeps µs, so other units would round).
    zones = {
        f.name: f.type.tz for f in schema if pa.types.is_timestamp(f.type) and f.type.unit == "us"
    }
    fragments = [
        file_format.make_fragment(
            str(blob), filesystem=filesystem, partition_expression=_time_range(record, zones)
        )
        for record, blob in files
    ]
    return ds.FileSystemDataset(fragments, schema, file_format, filesystem)


def _time_range(record: OplogRecord, zones: dict[str, str | None]) -> ds.Expression:
    """What a series version's oplog min/max event times guarantee about its rows."""
    column = record.attributes.get("time_column")
    low, high = record.min_event_time, record.max_event_time
    if not isinstance(column, str) or column not in zones or low is None or high is None:
        return _ANY
    return _range_expression(column, zones[column], low, high)


_ANY = pc.scalar(True)


@functools.lru_cache(maxsize=65536)
def _range_expression(column: str, zone: str | None, low: int, high: int) -> ds.Expression:
    """``low <= column <= high``, nulls allowed (so ``IS NULL`` still reads the file)."""
    column_type = pa.timestamp("us", tz=zone)
    field = pc.field(column)
    return ((field >= pa.scalar(low, column_type)) | field.is_null()) & (
        (field <= pa.scalar(high, column_type)) | field.is_null()
    )


def _parquet_input(source: Path | bytes) -> pa.NativeFile | str:
    return pa.BufferReader(source) if isinstance(source, bytes) else str(source)


def conform_table(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """``table`` with exactly ``schema``'s columns: absent ones as nulls, others cast."""
    columns = [
        table.column(f.name).cast(f.type)
        if f.name in table.column_names
        else pa.nulls(table.num_rows, f.type)
        for f in schema
    ]
    return pa.Table.from_arrays(columns, schema=schema)


def _corrupt(path: str, record: OplogRecord, why: str) -> CorruptionError:
    return CorruptionError(
        f"version {record.version} is corrupt: {why}",
        subject=path,
        hint="run `pond verify`; restore the blob from a backup or remove the node",
    )
