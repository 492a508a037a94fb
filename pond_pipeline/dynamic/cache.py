"""The materialization cache: produced content on disk (``cache/``), one file an entry.

An entry is keyed by a fingerprint of what produced it (factory, config, factory
version, and the versions of every source read), so a source gaining a version means
a new key: a deterministic node is never served stale. Entries of non-deterministic
factories also expire after their TTL. The folder is derived data: safe to delete.
"""

import json
import os
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

ROW_GROUP_ROWS = 122_880
"""Rows per Parquet row group of an entry: small enough that filters skip row groups."""


@dataclass(frozen=True)
class CacheEntry:
    key: str
    path: Path

    def dataset(self) -> ds.Dataset:
        return ds.dataset(str(self.path), format="parquet")

    def read_bytes(self) -> bytes:
        return self.path.read_bytes()


@dataclass(frozen=True)
class CacheStats:
    entries: int
    bytes: int
    hits: int
    misses: int
    by_factory: dict[str, tuple[int, int]]


class MaterializationCache:
    def __init__(self, root: Path):
        self.root = root
        self.hits = 0
        self.misses = 0

    def lookup(self, key: str, ttl: timedelta | None = None) -> CacheEntry | None:
        for suffix in (".parquet", ".bin"):
            path = self._path(key, suffix)
            try:
                age = time.time() - path.stat().st_mtime
            except FileNotFoundError:
                continue
            if ttl is not None and age > ttl.total_seconds():
                self._forget(key)
                continue
            self.hits += 1
            return CacheEntry(key, path)
        self.misses += 1
        return None

    def store_table(
        self, key: str, data: pa.Table | pa.RecordBatchReader, meta: dict[str, Any]
    ) -> CacheEntry:
        """Stream ``data`` into ``<key>.parquet`` (temporary file, then rename)."""
        target = self._path(key, ".parquet")
        temp = self._temp(target)
        reader = data.to_reader() if isinstance(data, pa.Table) else data
        schema = reader.schema
        rows = 0
        # Batches are gathered into whole row groups (one per batch made groups as small
        # as a producer's batches), and only text columns are dictionary-encoded: in a
        # row group this small every timestamp or float fits the dictionary, which then
        # made the file 40-75% larger and full reads up to ~30% slower than a static series.
        pending: list[pa.RecordBatch] = []
        pending_rows = 0
        try:
            with pq.ParquetWriter(
                temp, schema, compression="zstd", use_dictionary=_dictionary_columns(schema)
            ) as writer:
                for batch in reader:
                    pending.append(batch)
                    pending_rows += batch.num_rows
                    rows += batch.num_rows
                    if pending_rows >= ROW_GROUP_ROWS:
                        table = pa.Table.from_batches(pending, schema)
                        whole = pending_rows - pending_rows % ROW_GROUP_ROWS
                        writer.write_table(table.slice(0, whole), row_group_size=ROW_GROUP_ROWS)
                        rest = table.slice(whole)
                        pending, pending_rows = rest.to_batches(), rest.num_rows
                if pending_rows:
                    table = pa.Table.from_batches(pending, schema)
                    writer.write_table(table, row_group_size=ROW_GROUP_ROWS)
        except BaseException:  # e.g. the query timeout: no half-written file stays
            temp.unlink(missing_ok=True)
            raise
        return self._commit(key, temp, target, {**meta, "rows": rows})

    def store_bytes(self, key: str, data: bytes, meta: dict[str, Any]) -> CacheEntry:
        target = self._path(key, ".bin")
        temp = self._temp(target)
        temp.write_bytes(data)
        return self._commit(key, temp, target, meta)

    def stats(self) -> CacheStats:
        entries = size = 0
        by_factory: dict[str, tuple[int, int]] = {}
        for meta_path in self.root.glob("*/*.json") if self.root.is_dir() else []:
            try:
                meta = json.loads(meta_path.read_text())
            except (OSError, ValueError):
                continue
            data_path = meta_path.with_suffix(".parquet")
            if not data_path.exists():
                data_path = meta_path.with_suffix(".bin")
            if not data_path.exists():
                continue
            entry_bytes = data_path.stat().st_size
            entries += 1
            size += entry_bytes
            count, total = by_factory.get(meta.get("factory", "?"), (0, 0))
            by_factory[meta.get("factory", "?")] = (count + 1, total + entry_bytes)
        return CacheStats(entries, size, self.hits, self.misses, by_factory)

    def clear(self) -> int:
        """Remove every entry; returns how many there were."""
        removed = 0
        if self.root.is_dir():
            for path in self.root.glob("*/*"):
                if path.suffix in (".parquet", ".bin"):
                    removed += 1
                path.unlink(missing_ok=True)
        return removed

    def _commit(self, key: str, temp: Path, target: Path, meta: dict[str, Any]) -> CacheEntry:
        meta_path = target.with_suffix(".json")
        meta_path.write_text(json.dumps({**meta, "created": time.time()}, default=str))
        os.replace(temp, target)
        return CacheEntry(key, target)

    def _forget(self, key: str) -> None:
        for suffix in (".parquet", ".bin", ".json"):
            self._path(key, suffix).unlink(missing_ok=True)

    def _path(self, key: str, suffix: str) -> Path:
        return self.root / key[:2] / f"{key}{suffix}"

    def _temp(self, target: Path) -> Path:
        target.parent.mkdir(parents=True, exist_ok=True)
        return target.with_name(f".{target.name}.{os.getpid()}.tmp")


def _dictionary_columns(schema: pa.Schema) -> list[str]:
    """The top-level text, binary and dictionary columns (worth a dictionary)."""
    return [
        f.name
        for f in schema
        if pa.types.is_string(f.type)
        or pa.types.is_large_string(f.type)
        or pa.types.is_binary(f.type)
        or pa.types.is_large_binary(f.type)
        or pa.types.is_dictionary(f.type)
        or f.type == pa.string_view()
        or f.type == pa.binary_view()
    ]
