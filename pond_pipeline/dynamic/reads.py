"""Reading a node's content: a table or series as a dataset (a time window on it, one
version of it), its schema and timestamp column, a data file's bytes, a CSV as a table.
A data file named ``*.csv`` reads as a table too (``is_table_like``), its types inferred
as ``pond copy --type table`` infers them. Static nodes read their stored versions;
dynamic ones what they materialized while current, else their produced output."""

import os
import tempfile
from dataclasses import KW_ONLY, dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from pond_pipeline.dynamic.configs import FactoryConfigs
from pond_pipeline.dynamic.nodes import Node, TimeRange
from pond_pipeline.dynamic.production import Production
from pond_pipeline.errors import ConfigError, ConflictError, NotFoundError
from pond_pipeline.factory import EntryType
from pond_pipeline.fs.payloads import first_timestamp_column
from pond_pipeline.fs.reader import PayloadReader
from pond_pipeline.query.engine import csv_to_parquet
from pond_pipeline.store.oplog import OplogRecord


@dataclass(frozen=True)
class NodeReader:
    configs: FactoryConfigs
    production: Production
    reader: PayloadReader
    _: KW_ONLY
    scratch: Path
    """Where a CSV read writes its temporary files."""

    def time_column(self, node: Node) -> str | None:
        if node.entry_type is not EntryType.SERIES:
            return None
        if not node.is_dynamic:
            latest = node.latest
            return latest.attributes.get("time_column") if latest else None
        factory, config = self.configs.factory_of(node)
        return factory.time_column(config) or first_timestamp_column(self.schema(node))

    def schema(self, node: Node) -> pa.Schema:
        require_tabular(node)
        if not node.is_dynamic and node.entry_type.is_tabular:
            return pa.unify_schemas([self.reader.schema(r, node.path) for r in node.versions])
        return self.dataset(node).schema

    def dataset(
        self, node: Node, *, version: int | None = None, window: TimeRange | None = None
    ) -> ds.Dataset:
        """A table or series as a pyarrow dataset (a series: the union of its versions;
        a CSV data file: its rows, converted)."""
        require_tabular(node)
        if node.entry_type is EntryType.DATA:
            if window is not None:
                raise ConfigError("--time-start/--time-end apply to series", subject=node.path)
            return ds.dataset(self.read_csv(node, version=version))
        column: str | None = None
        if node.is_dynamic:
            if version is not None:
                record = materialized_version(node, version)
                column = record.attributes.get("time_column")
                dataset = self.reader.dataset([record], node.path)
            else:
                dataset = self._dynamic_dataset(node)
        else:
            records = _select_versions(node, version)
            schema = None
            if window is not None and node.entry_type is EntryType.SERIES:
                # skip versions outside the window, keeping every column of the series
                schema = self.schema(node)
                records = [r for r in records if window.overlaps(r)]
                if not records:
                    return ds.dataset(schema.empty_table())
            dataset = self.reader.dataset(records, node.path, schema)
        if window is not None:
            column = column or self.time_column(node)
            if column is None:
                raise ConfigError("--time-start/--time-end apply to series", subject=node.path)
            dataset = dataset.filter(window.expression(column, dataset.schema.field(column).type))
        return dataset

    def version_table(self, node: Node, record: OplogRecord) -> pa.Table:
        """The rows one stored version of a table or series holds."""
        return self.reader.dataset([record], node.path).to_table()

    def read_bytes(self, node: Node, *, version: int | None = None) -> bytes:
        if node.entry_type is not EntryType.DATA:
            raise ConflictError(f"is a {node.entry_type.short}, not a data file", subject=node.path)
        if node.is_dynamic:
            if version is not None:
                return self.reader.read_bytes(materialized_version(node, version), node.path)
            record = self.production.materialized_record(node)
            if record is not None:  # materialized and its sources unchanged: static speed
                return self.reader.read_bytes(record, node.path)
            return self.production.cached_output(node).read_bytes()
        return self.reader.read_bytes(_select_versions(node, version)[-1], node.path)

    def read_csv(
        self, node: Node, *, version: int | None = None, formats: dict[str, str] | None = None
    ) -> pa.Table:
        """A CSV data file as a table, types inferred by DuckDB (``formats``: columns
        parsed with a ``strptime`` format); a static file's blob is read in place."""
        if node.entry_type is not EntryType.DATA:
            raise ConflictError(
                f"is a {node.entry_type.short}, not a CSV data file", subject=node.path
            )
        source: Path | bytes
        source = (
            self.reader.source(_select_versions(node, version)[-1], node.path)
            if node.versions and not node.is_dynamic
            else self.read_bytes(node, version=version)
        )
        self.scratch.mkdir(parents=True, exist_ok=True)
        temp_files = []
        try:
            if isinstance(source, bytes):
                csv_path = _scratch_path(self.scratch, ".csv")
                csv_path.write_bytes(source)
                temp_files.append(csv_path)
                source = csv_path
            parquet_path = _scratch_path(self.scratch, ".parquet")
            temp_files.append(parquet_path)
            csv_to_parquet(source, parquet_path, subject=node.path, formats=formats)
            return pq.read_table(parquet_path)
        finally:
            for temp in temp_files:
                temp.unlink(missing_ok=True)

    def _dynamic_dataset(self, node: Node) -> ds.Dataset:
        record = self.production.materialized_record(node)
        if record is not None:
            return self.reader.dataset([record], node.path)
        return self.production.cached_output(node).dataset()


CSV_SUFFIX = ".csv"
"""A data file whose name ends so (in any case) reads as a table."""


def is_table_like(node: Node) -> bool:
    """A table or series, or a CSV data file (``*.csv``), which reads as a table."""
    return node.entry_type.is_tabular or (
        node.entry_type is EntryType.DATA and node.path.lower().endswith(CSV_SUFFIX)
    )


def require_tabular(node: Node, *, reader: str | None = None) -> None:
    """Refuse a node that does not read as a table (``is_table_like``); ``reader``: the
    node reading it as a source, named in the error when it is not ``node`` itself."""
    if is_table_like(node):
        return
    if node.entry_type is EntryType.DATA:
        what = "a data file, not a table"
        hint = (
            f"`pond cat {node.path}` prints its bytes; only data files named *{CSV_SUFFIX} "
            "read as tables (or import CSV as one: `pond copy FILE DEST --type table`, "
            "or a csv_directory node)"
        )
    else:
        what, hint = f"a {node.entry_type.short}, not a table or series", None
    if reader is None or reader == node.path:
        raise ConflictError(f"is {what}", subject=node.path, hint=hint)
    raise ConflictError(f"reads {node.path}, which is {what}", subject=reader, hint=hint)


def _select_versions(node: Node, version: int | None) -> list[OplogRecord]:
    records = list(node.versions)
    if version is not None:
        chosen = [r for r in records if r.version == version]
        if not chosen:
            raise NotFoundError(
                f"no version {version}",
                subject=node.path,
                hint=f"versions are 1..{records[-1].version}" if records else None,
            )
        return chosen
    if node.entry_type is EntryType.SERIES:
        return records
    return records[-1:]


def materialized_version(node: Node, version: int) -> OplogRecord:
    """Version ``version`` of a dynamic node, which a materialization wrote: its stored
    rows or bytes, addressed as on a static file. A version that does not exist, or
    holds only a config, is an error naming the versions there are."""
    stored = [r.version for r in node.versions if r.blob]
    if not stored:
        raise NotFoundError(
            "has no materialized versions to read with --version",
            subject=node.path,
            hint=f"`pond materialize {node.path}` writes one; without --version "
            "its current content is read",
        )
    chosen = next((r for r in node.versions if r.version == version), None)
    with_content = _spans(stored)
    if chosen is None:
        every = f"versions are 1..{node.versions[-1].version}"
        if len(stored) < len(node.versions):
            every += f" (materialized: {with_content})"
        raise NotFoundError(f"no version {version}", subject=node.path, hint=every)
    if not chosen.blob:
        raise NotFoundError(
            f"version {version} holds only a config, no materialized content",
            subject=node.path,
            hint=f"materialized versions are {with_content}",
        )
    return chosen


def _spans(versions: list[int]) -> str:
    """``[2, 3, 4, 7]`` as ``2..4, 7``."""
    spans: list[list[int]] = []
    for number in versions:
        if spans and number == spans[-1][1] + 1:
            spans[-1][1] = number
        else:
            spans.append([number, number])
    return ", ".join(f"{a}..{b}" if a != b else str(a) for a, b in spans)


def _scratch_path(folder: Path, suffix: str) -> Path:
    handle, name = tempfile.mkstemp(dir=folder, suffix=suffix)
    os.close(handle)
    return Path(name)
