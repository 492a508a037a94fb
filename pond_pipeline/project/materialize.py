"""Materializing a dynamic node: its content written back into the oplog as a new version.

A file node gets one new version holding its produced rows/bytes; a dynamic directory
gets every child persisted (and a version listing them); a non-lazy directory
(``ingest``) imports its host files, skipping those whose sha256 it already holds.
Each version records the node's fingerprint, so a later read serves it at static speed
while the sources are unchanged, and a repeat materialization writes nothing.
Everything happens in one transaction: a validation failure leaves no trace.
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pond_pipeline import paths
from pond_pipeline.api import Pond, PondTransaction
from pond_pipeline.config import normalize_refresh
from pond_pipeline.dynamic import registry
from pond_pipeline.dynamic.resolve import Node, Resolver
from pond_pipeline.errors import ConfigError
from pond_pipeline.factory import EntryType, HostFile
from pond_pipeline.fs.nodes import listing_attribute
from pond_pipeline.fs.payloads import Payload, describe_parquet
from pond_pipeline.store.blobs import sha256_bytes, sha256_file
from pond_pipeline.store.oplog import OplogRecord

PREVIEW_ROWS = 5

Validator = Callable[[str, pa.Table], None]
"""Called with (path, rows) before anything is written; raises to refuse the data."""


@dataclass
class Materialized:
    """What one materialization did to one node (and, for a directory, its children)."""

    path: str
    fingerprint: str
    changed: bool
    version: int | None = None
    rows: int | None = None
    min_event_time: int | None = None
    max_event_time: int | None = None
    schema: pa.Schema | None = None
    preview: pa.Table | None = None
    txn: int | None = None
    children: list["Materialized"] = field(default_factory=list)
    metrics: dict[str, Any] = field(default_factory=dict)
    """Figures the factory reported (e.g. ``rows_read`` of an incremental run)."""

    @property
    def written(self) -> int:
        """How many versions this wrote (node and children)."""
        return int(self.changed and self.version is not None) + sum(
            c.written for c in self.children
        )


@dataclass(frozen=True)
class Declaration:
    """A node as ``pond.yaml`` declares it (applied in the same transaction if it differs)."""

    factory: str
    config: dict[str, Any]
    refresh: str | None = None


def materialize(
    pond: Pond,
    path: str,
    *,
    run_id: str | None = None,
    validate: Validator | None = None,
    declared: Declaration | None = None,
    enclosing: tuple[str, Declaration] | None = None,
) -> Materialized:
    """``enclosing``: the (path, declaration) of the directory that declares ``path`` as
    an entry, applied first (the entry exists, with its ``pond.yaml`` config)."""
    path = paths.normalize(path)
    with pond.transaction(f"materialize {path}", run_id=run_id) as tx:
        if enclosing is not None:
            apply_declaration(tx, *enclosing)
        if declared is not None:
            apply_declaration(tx, path, declared)
        resolver = tx.resolver()
        node = resolver.resolve(path)
        if not node.is_dynamic:
            raise ConfigError("is a static node; only dynamic nodes are materialized", subject=path)
        result = _materialize(tx, resolver, node, validate)
    result.txn = tx.txn_seq if result.written else None
    return result


def apply_declaration(tx: PondTransaction, path: str, declared: Declaration) -> bool:
    """Create or update the node when its stored factory/config/refresh differ."""
    try:
        current = tx.resolver().resolve(path)
    except Exception:  # noqa: BLE001 - absent (or unreadable): create it
        current = None
    if current is not None and is_current(current, declared):
        return False
    tx.create_dynamic(
        path,
        declared.factory,
        declared.config,
        overwrite=current is not None,
        refresh=declared.refresh,
    )
    return True


def is_current(node: Node, declared: Declaration) -> bool:
    stored_refresh = node.latest.attributes.get("refresh") if node.latest else None
    return (
        node.factory == declared.factory
        and registry.encode_config(node.raw_config) == registry.encode_config(declared.config)
        and stored_refresh == _refresh_text(declared.refresh)
    )


def _refresh_text(refresh: str | None) -> str | None:
    return None if refresh is None else normalize_refresh(refresh)


def _materialize(
    tx: PondTransaction, resolver: Resolver, node: Node, validate: Validator | None
) -> Materialized:
    factory, _ = resolver.factory_of(node)
    fingerprint = resolver.fingerprint(node)
    if node.entry_type is EntryType.DIRECTORY:
        if not factory.lazy:
            return _import_host_files(tx, resolver, node, fingerprint)
        return _materialize_directory(tx, resolver, node, fingerprint, validate)
    record = resolver.materialized_record(node)
    if record is not None:
        if validate is not None and node.entry_type.is_tabular:
            # nothing to write, but the schema may have changed since: check what is there
            validate(node.path, resolver.reader.dataset([record], node.path).to_table())
        return Materialized(
            node.path,
            fingerprint,
            changed=False,
            version=node.latest.version if node.latest else None,
        )
    payload, table = _produce_payload(resolver, node, validate)
    attributes = _kept_attributes(node) | payload.attributes | {"fingerprint": fingerprint}
    parent_path, name = paths.parent_and_name(node.path)
    parent = resolver.resolve(parent_path)
    if parent.is_dynamic:  # an entry of a dynamic directory: written into its listing
        assert parent.node_id is not None
        record = tx.tx.write_child(
            parent.node_id,
            name,
            node.entry_type,
            path=node.path,
            payload=payload,
            factory=node.factory,
            content=registry.encode_config(node.raw_config),
            attributes=attributes,
        )
    else:
        record = tx.tx.write_dynamic(
            node.path,
            node.entry_type,
            node.factory,
            registry.encode_config(node.raw_config),
            overwrite=True,
            attributes=attributes,
            payload=payload,
        )
    return _result(node.path, fingerprint, record, table, resolver.metrics.get(node.path))


def _materialize_directory(
    tx: PondTransaction,
    resolver: Resolver,
    node: Node,
    fingerprint: str,
    validate: Validator | None,
    parent_id: str | None = None,
) -> Materialized:
    if resolver.materialized_record(node) is not None:
        if validate is not None:  # nothing to write, but the schema may have changed since
            _validate_stored(resolver, node, validate)
        return Materialized(node.path, fingerprint, changed=False)
    children = resolver.children(node)
    attributes = _kept_attributes(node) | {"fingerprint": fingerprint}
    if parent_id is None:
        record = tx.tx.write_dynamic(
            node.path,
            EntryType.DIRECTORY,
            node.factory,
            registry.encode_config(node.raw_config),
            overwrite=True,
            attributes=attributes,
        )
    else:  # listed by a dynamic directory: written into its listing, keeping its own
        name = paths.parent_and_name(node.path)[1]
        entry = tx.tx.listing(parent_id).get(name)
        if entry is not None:
            attributes["listing"] = listing_attribute(tx.tx.listing(entry.node_id))
        record = tx.tx.write_child(
            parent_id,
            name,
            EntryType.DIRECTORY,
            path=node.path,
            factory=node.factory,
            content=registry.encode_config(node.raw_config),
            attributes=attributes,
        )
    result = Materialized(node.path, fingerprint, changed=True, version=record.version)
    for name in set(tx.tx.listing(record.node_id)) - set(children):
        tx.tx.unlink_child(record.node_id, name, paths.join(node.path, name))
    for name, child in children.items():
        child_fingerprint = resolver.fingerprint(child)
        previous = tx.tx.listing(record.node_id).get(name)
        if previous is not None:
            latest = tx.tx.latest(previous.node_id)
            if latest is not None and latest.attributes.get("fingerprint") == child_fingerprint:
                result.children.append(Materialized(child.path, child_fingerprint, False))
                continue
        if child.entry_type is EntryType.DIRECTORY:  # a nested dynamic directory
            result.children.append(
                _materialize_directory(
                    tx, resolver, child, child_fingerprint, validate, record.node_id
                )
            )
            continue
        payload, table = _produce_payload(resolver, child, validate)
        child_record = tx.tx.write_child(
            record.node_id,
            name,
            child.entry_type,
            path=child.path,
            payload=payload,
            factory=child.factory,
            content=registry.encode_config(child.raw_config),
            attributes=payload.attributes | {"fingerprint": child_fingerprint},
        )
        result.children.append(
            _result(
                child.path, child_fingerprint, child_record, table, resolver.metrics.get(child.path)
            )
        )
    return result


def _validate_stored(resolver: Resolver, node: Node, validate: Validator) -> None:
    """Every table or series a materialized directory holds, checked as it is stored."""
    for child in resolver.children(node).values():
        if child.entry_type is EntryType.DIRECTORY:
            _validate_stored(resolver, child, validate)
        elif child.entry_type.is_tabular and child.latest is not None and child.latest.blob:
            validate(child.path, resolver.reader.dataset([child.latest], child.path).to_table())


def _import_host_files(
    tx: PondTransaction, resolver: Resolver, node: Node, fingerprint: str
) -> Materialized:
    files = resolver.produce(node)
    if not isinstance(files, list) or not all(isinstance(f, HostFile) for f in files):
        raise ConfigError("a non-lazy directory factory must list host files", subject=node.path)
    assert node.node_id is not None
    result = Materialized(node.path, fingerprint, changed=False)
    for host in files:
        child_path = paths.join(node.path, host.name)
        sha = sha256_file(host.path)
        entry = tx.tx.listing(node.node_id).get(host.name)
        existing = resolver.resolve(child_path) if entry is not None else None
        if existing is not None and existing.latest is not None:
            if existing.latest.attributes.get("source_sha256") == sha:
                result.children.append(Materialized(child_path, sha, changed=False))
                continue
            if existing.entry_type is not host.entry_type:
                raise ConfigError(
                    f"exists as a {existing.entry_type.short}, cannot import a "
                    f"{host.entry_type.short} over it",
                    subject=child_path,
                    hint="change the node's type back or remove the file first",
                )
        series_base = existing if host.entry_type is EntryType.SERIES else None
        payload = tx.host_payload(
            host.path, host.entry_type, series_base, time_column=host.time_column
        )
        if series_base is not None:
            tail = _rows_after_series(tx, payload, series_base, child_path)
            if tail is None:  # nothing after what the series holds: nothing to append
                result.children.append(Materialized(child_path, sha, changed=False))
                continue
            payload = tail
        record = tx.tx.write_child(
            node.node_id,
            host.name,
            host.entry_type,
            path=child_path,
            payload=payload,
            attributes={"source_sha256": sha, "source_path": str(host.path)},
        )
        result.children.append(_result(child_path, sha, record, None))
    result.changed = any(c.changed for c in result.children)
    return result


def _rows_after_series(
    tx: PondTransaction, payload: Payload, series: Node, subject: str
) -> Payload | None:
    """A re-imported series file as only its rows after the series' last event time: a
    series appends, so the rows imported before must not be read twice (a grown log
    file). ``None`` when no row is newer."""
    times_held = [r.max_event_time for r in series.versions if r.max_event_time is not None]
    last = max(times_held, default=None)
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
    scratch = tx.pond.blobs.scratch_file(".parquet")
    pq.write_table(tail, scratch)
    return describe_parquet(
        scratch,
        scratch.stat().st_size,
        sha256_file(scratch),
        EntryType.SERIES,
        time_column=time_column,
        subject=subject,
        owned=True,
    )


def _produce_payload(
    resolver: Resolver, node: Node, validate: Validator | None
) -> tuple[Payload, pa.Table | None]:
    entry = resolver.materialize(node, resolver.previous(node))
    if node.entry_type is EntryType.DATA:
        data = entry.read_bytes()
        return Payload(data, len(data), sha256_bytes(data)), None
    table = pq.read_table(entry.path)
    if validate is not None:
        validate(node.path, table)
    time_column = resolver.time_column(node)
    payload = describe_parquet(
        entry.path,
        entry.path.stat().st_size,
        sha256_file(entry.path),
        node.entry_type,
        time_column=time_column,
        subject=node.path,
    )
    payload.attributes["source_versions"] = resolver.source_versions(node)
    return payload, table


def _kept_attributes(node: Node) -> dict[str, Any]:
    latest = node.latest
    if latest is None:
        return {}
    return {k: v for k, v in latest.attributes.items() if k in ("refresh", "declared_by")}


def _result(
    path: str,
    fingerprint: str,
    record: OplogRecord,
    table: pa.Table | None,
    metrics: dict[str, Any] | None = None,
) -> Materialized:
    schema = table.schema if table is not None else None
    return Materialized(
        path,
        fingerprint,
        changed=True,
        version=record.version,
        rows=record.attributes.get("rows"),
        min_event_time=record.min_event_time,
        max_event_time=record.max_event_time,
        schema=schema,
        preview=table.slice(0, PREVIEW_ROWS) if table is not None else None,
        metrics=dict(metrics or {}),
    )
