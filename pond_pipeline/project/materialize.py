"""Materializing a dynamic node: its content written back into the oplog as a new version.

A file node gets one new version holding its produced rows/bytes; a dynamic directory
gets every child persisted (and a version listing them); a non-lazy directory
(``ingest``) imports its host files, skipping those whose sha256 it already holds.
Each version records the node's fingerprint, so a later read serves it at static speed
while the sources are unchanged, and a repeat materialization writes nothing.
Everything happens in one transaction: a validation failure leaves no trace.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from pond_pipeline import paths
from pond_pipeline.api import Node, OplogRecord, Pond, PondTransaction
from pond_pipeline.dynamic.resolve import Resolver
from pond_pipeline.errors import ConfigError
from pond_pipeline.factory import EntryType, HostFile
from pond_pipeline.project.apply import apply_declaration
from pond_pipeline.project.pipeline import Declaration

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


def materialize(
    pond: Pond,
    path: str,
    *,
    run_id: str | None = None,
    validate: Validator | None = None,
    declared: Declaration | None = None,
    prerequisites: Sequence[tuple[str, Declaration]] = (),
) -> Materialized:
    """``prerequisites``: (path, declaration) pairs applied first — the directory that
    declares ``path`` as an entry, and the nodes that only serve it (so each exists, with
    its ``pond.yaml`` config)."""
    path = paths.normalize(path)
    with pond.transaction(f"materialize {path}", run_id=run_id) as transaction:
        for prerequisite, declaration in prerequisites:
            apply_declaration(transaction, prerequisite, declaration)
        if declared is not None:
            apply_declaration(transaction, path, declared)
        resolver = transaction.resolver()
        node = resolver.resolve(path)
        if not node.is_dynamic:
            raise ConfigError("is a static node; only dynamic nodes are materialized", subject=path)
        result = _materialize(transaction, resolver, node, validate)
    result.txn = transaction.txn_seq if result.written else None
    return result


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
            validate(node.path, resolver.version_table(node, record))
        return Materialized(
            node.path,
            fingerprint,
            changed=False,
            version=node.latest.version if node.latest else None,
        )
    parent = resolver.resolve(paths.parent_and_name(node.path)[0])
    # an entry of a dynamic directory is written into that directory's listing
    listed_in = parent.node_id if parent.is_dynamic else None
    record, table = _write_produced(
        tx,
        resolver,
        node,
        validate,
        _kept_attributes(node) | {"fingerprint": fingerprint},
        listed_in,
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
    record = tx.write_directory(node, attributes, listed_in=parent_id)
    result = Materialized(node.path, fingerprint, changed=True, version=record.version)
    listed = tx.listed_versions(record.node_id)
    for name in set(listed) - set(children):
        tx.unlist(record.node_id, name, paths.join(node.path, name))
    for name, child in children.items():
        child_fingerprint = resolver.fingerprint(child)
        latest = listed.get(name)
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
        child_record, table = _write_produced(
            tx, resolver, child, validate, {"fingerprint": child_fingerprint}, record.node_id
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
            validate(child.path, resolver.version_table(child, child.latest))


def _import_host_files(
    tx: PondTransaction, resolver: Resolver, node: Node, fingerprint: str
) -> Materialized:
    files = resolver.produce(node)
    if not isinstance(files, list) or not all(isinstance(f, HostFile) for f in files):
        raise ConfigError("a non-lazy directory factory must list host files", subject=node.path)
    result = Materialized(node.path, fingerprint, changed=False)
    for host in files:
        sha, record = tx.import_host_file(node, host)
        child_path = paths.join(node.path, host.name)
        if record is None:
            result.children.append(Materialized(child_path, sha, changed=False))
        else:
            result.children.append(_result(child_path, sha, record, None))
    result.changed = any(c.changed for c in result.children)
    return result


def _write_produced(
    tx: PondTransaction,
    resolver: Resolver,
    node: Node,
    validate: Validator | None,
    attributes: dict[str, Any],
    listed_in: str | None,
) -> tuple[OplogRecord, pa.Table | None]:
    """The node's produced content (from the cache, or produced into it), validated, then
    written as its new version."""
    entry = resolver.cached_output(node, resolver.previous(node))
    if node.entry_type is EntryType.DATA:
        return tx.write_produced(node, entry.read_bytes(), attributes, listed_in=listed_in), None
    table = pq.read_table(entry.path)
    if validate is not None:
        validate(node.path, table)
    record = tx.write_produced(
        node,
        entry.path,
        {"source_versions": resolver.source_versions(node), **attributes},
        time_column=resolver.time_column(node),
        listed_in=listed_in,
    )
    return record, table


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
