"""Reading stored versions back: bytes, Parquet sources, and datasets over many versions.

Every payload is checked against its sha256 the first time this process reads it, so
a damaged blob is reported (naming node and version), never served.
"""

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

    def source(self, record: OplogRecord, path: str) -> Path | bytes:
        """A blob's file path (checked once per process) or the inline bytes (checked)."""
        if record.blob:
            blob_path = self.blobs.path(record.blob)
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
            return decode_schema(record.attributes["schema"])
        return pq.read_schema(_parquet_input(self.source(record, path)))

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
            conform_table(pq.read_table(pa.BufferReader(s)), schema)
            for s in sources
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


def _files_dataset(files: Sequence[tuple[OplogRecord, Path]], schema: pa.Schema) -> ds.Dataset:
    file_format = ds.ParquetFileFormat()
    filesystem = pafs.LocalFileSystem()
    fragments = [
        file_format.make_fragment(
            str(blob), filesystem=filesystem, partition_expression=_time_range(record, schema)
        )
        for record, blob in files
    ]
    return ds.FileSystemDataset(fragments, schema, file_format, filesystem)


def _time_range(record: OplogRecord, schema: pa.Schema) -> ds.Expression:
    """What a series version's oplog min/max event times guarantee about its rows.

    Stated for microsecond timestamps only (the oplog keeps µs, so other units would
    round); nulls are allowed, so an ``IS NULL`` filter still reads every version.
    """
    column = record.attributes.get("time_column")
    low, high = record.min_event_time, record.max_event_time
    if not isinstance(column, str) or low is None or high is None or column not in schema.names:
        return pc.scalar(True)
    column_type = schema.field(column).type
    if not (pa.types.is_timestamp(column_type) and column_type.unit == "us"):
        return pc.scalar(True)
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
