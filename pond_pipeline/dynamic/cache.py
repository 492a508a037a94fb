"""The materialization cache: produced content on disk (``cache/``), one file an entry.

An entry is keyed by a fingerprint of what produced it (factory, config, factory
version, and the versions of every source read), so a source gaining a version means
a new key: a deterministic node is never served stale. Entries of non-deterministic
factories also expire after their TTL. The folder is derived data: safe to delete.

Each entry's ``.json`` note records the sha256 of its file, checked before the entry
is served (once per process while the file is unchanged): a damaged entry (its file,
or its note) is dropped and recomputed, never served.
"""

import json
import os
import re
import time
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from pond_pipeline.store.blobs import sha256_bytes, sha256_file

ROW_GROUP_ROWS = 122_880
"""Rows per Parquet row group of an entry: small enough that filters skip row groups."""

SUFFIXES = (".parquet", ".bin")
"""An entry's file: Parquet rows, or a data file's bytes."""

_SHA256 = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class CacheEntry:
    key: str
    path: Path
    sha256: str
    data: bytes | None = field(default=None, repr=False)
    """A ``.bin`` entry's bytes, as checked."""

    def dataset(self) -> ds.Dataset:
        return ds.dataset(str(self.path), format="parquet")

    def read_bytes(self) -> bytes:
        return self.data if self.data is not None else self.path.read_bytes()


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
        self.dropped = 0
        """Damaged entries found (and removed) by this process."""
        self._checked: dict[Path, tuple[tuple[int, int, int], str]] = {}
        """Entry file → (its ``_identity``, sha256) when it last hashed right."""

    def lookup(self, key: str, ttl: timedelta | None = None) -> CacheEntry | None:
        """The entry of ``key``, checked against its recorded sha256; an expired or
        damaged one is removed (and is a miss)."""
        for suffix in SUFFIXES:
            path = self._path(key, suffix)
            try:
                stat = path.stat()
            except FileNotFoundError:
                continue
            if ttl is not None and time.time() - stat.st_mtime > ttl.total_seconds():
                self._forget(key)
                continue
            entry = self._checked_entry(key, path, stat)
            if entry is None:
                self.dropped += 1
                self._forget(key)
                continue
            self.hits += 1
            return entry
        self.misses += 1
        return None

    def recorded_sha256(self, path: Path) -> str | None:
        """The sha256 the note of the entry file ``path`` records (``None``: not an
        entry of this cache, or no readable note)."""
        if path.parent.parent != self.root or path.suffix not in SUFFIXES:
            return None
        return _recorded_sha256(path.with_suffix(".json"))

    def drop(self, path: Path) -> None:
        """Remove the entry whose file is ``path`` (found damaged)."""
        self._forget(path.stem)

    def damaged_entries(self) -> list[str]:
        """Every entry whose file does not match its note's sha256, or whose note is
        missing or unreadable, as a path relative to the cache folder (for ``verify``;
        nothing is changed)."""
        damaged = []
        for path in sorted(self.root.glob("*/*")) if self.root.is_dir() else []:
            if path.suffix in SUFFIXES:
                recorded = _recorded_sha256(path.with_suffix(".json"))
                intact = recorded is not None and _sha256_of(path) == recorded
            elif path.suffix == ".json":
                intact = any(path.with_suffix(s).exists() for s in SUFFIXES)
            else:
                continue  # a writer's temporary file
            if not intact:
                damaged.append(str(path.relative_to(self.root)))
        return damaged

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
        return self._commit(key, temp, target, {**meta, "rows": rows}, sha256_file(temp))

    def store_bytes(self, key: str, data: bytes, meta: dict[str, Any]) -> CacheEntry:
        target = self._path(key, ".bin")
        temp = self._temp(target)
        try:
            temp.write_bytes(data)
        except BaseException:
            temp.unlink(missing_ok=True)
            raise
        return self._commit(key, temp, target, meta, sha256_bytes(data), data)

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

    def _commit(
        self,
        key: str,
        temp: Path,
        target: Path,
        meta: dict[str, Any],
        sha256: str,
        data: bytes | None = None,
    ) -> CacheEntry:
        """Move the entry's note (with the file's sha256), then its file in, each by
        rename: a reader sees whole files; in between, a note without its file is a
        miss, and a pair that does not match is dropped (never served)."""
        meta_path = target.with_suffix(".json")
        meta_temp = self._temp(meta_path)
        note = {**meta, "sha256": sha256, "size": temp.stat().st_size, "created": time.time()}
        try:
            meta_temp.write_text(json.dumps(note, default=str))
            os.replace(meta_temp, meta_path)
            os.replace(temp, target)
        except BaseException:  # e.g. no space left: no temporary file stays
            meta_temp.unlink(missing_ok=True)
            temp.unlink(missing_ok=True)
            raise
        self._remember(target, target.stat(), sha256)
        return CacheEntry(key, target, sha256, data)

    def _checked_entry(self, key: str, path: Path, stat: os.stat_result) -> CacheEntry | None:
        """The entry at ``path`` if its bytes hash to its note's sha256, else ``None``."""
        known = self._checked.get(path)
        if known is not None and known[0] == _identity(stat):
            return CacheEntry(key, path, known[1])
        recorded = _recorded_sha256(path.with_suffix(".json"))
        if recorded is None:
            return None
        data = None
        try:
            if path.suffix == ".bin":
                data = path.read_bytes()
                actual = sha256_bytes(data)
            else:
                actual = sha256_file(path)
        except FileNotFoundError:  # removed meanwhile (cache clear, another reader)
            return None
        if actual != recorded:
            return None
        if data is None:
            self._remember(path, stat, actual)
        return CacheEntry(key, path, actual, data)

    def _remember(self, path: Path, stat: os.stat_result, sha256: str) -> None:
        self._checked[path] = (_identity(stat), sha256)

    def _forget(self, key: str) -> None:
        for suffix in (*SUFFIXES, ".json"):
            path = self._path(key, suffix)
            self._checked.pop(path, None)
            path.unlink(missing_ok=True)

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


def _recorded_sha256(note: Path) -> str | None:
    """The sha256 an entry's note records, if the note reads as one."""
    try:
        meta = json.loads(note.read_bytes())
    except (OSError, ValueError):  # missing, unreadable, not JSON (or not UTF-8)
        return None
    sha = meta.get("sha256") if isinstance(meta, dict) else None
    return sha if isinstance(sha, str) and _SHA256.fullmatch(sha) else None


def _sha256_of(path: Path) -> str | None:
    try:
        return sha256_file(path)
    except FileNotFoundError:
        return None


def _identity(stat: os.stat_result) -> tuple[int, int, int]:
    """What any write to (or replacement of) a file changes: inode, size and the status
    change time (which, unlike the mtime, cannot be set back)."""
    return stat.st_ino, stat.st_size, stat.st_ctime_ns
