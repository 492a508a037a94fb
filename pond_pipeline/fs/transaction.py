"""One pond transaction: every change inside it becomes one Delta commit, or nothing.

The transaction sees its own pending changes (an overlay over the snapshot taken under
the write lock); each touched directory gets exactly one new listing version.
"""

import uuid
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pond_pipeline import paths
from pond_pipeline.errors import ConflictError, NotFoundError
from pond_pipeline.factory import EntryType
from pond_pipeline.fs.nodes import Listing, ListingEntry, encode_listing, listing_attribute
from pond_pipeline.fs.payloads import Payload
from pond_pipeline.fs.tree import Located, Snapshot, TreeView
from pond_pipeline.store.blobs import BlobStore
from pond_pipeline.store.oplog import STATIC_FACTORY, OplogRecord
from pond_pipeline.store.settings import DEFAULT_INLINE_THRESHOLD


class Transaction(TreeView):
    def __init__(
        self,
        snapshot: Snapshot,
        blobs: BlobStore,
        *,
        command: str,
        inline_threshold: int = DEFAULT_INLINE_THRESHOLD,
    ):
        self.snapshot = snapshot
        self.blobs = blobs
        self.command = command
        self.inline_threshold = inline_threshold
        self.txn_seq = snapshot.last_txn + 1
        self.now = datetime.now(UTC)
        self.records: list[OplogRecord] = []
        self.touched: list[str] = []
        self._listings: dict[str, Listing] = {}
        self._latest: dict[str, OplogRecord] = {}

    # -- the overlay view -------------------------------------------------------------
    def latest(self, node_id: str) -> OplogRecord | None:
        return self._latest.get(node_id) or self.snapshot.latest(node_id)

    def listing(self, node_id: str) -> Listing:
        if node_id in self._listings:
            return self._listings[node_id]
        return self.snapshot.listing(node_id)

    def versions(self, node_id: str) -> list[OplogRecord]:
        pending = [r for r in self.records if r.node_id == node_id]
        return self.snapshot.versions(node_id) + pending

    def next_version(self, node_id: str) -> int:
        record = self.latest(node_id)
        return record.version + 1 if record else 1

    # -- changes ------------------------------------------------------------------------
    def mkdir(self, path: str, *, parents: bool = False, exist_ok: bool = False) -> str:
        path = paths.normalize(path)
        try:
            located = self.walk(path)
        except NotFoundError:
            located = None
        if located is not None:
            if located.entry_type is EntryType.DIRECTORY and (exist_ok or parents):
                return located.node_id
            raise ConflictError("already exists", subject=path, hint="choose another name")
        parent_path, name = paths.parent_and_name(path)
        parent_id = self._directory(parent_path, create=parents)
        node_id = str(uuid.uuid4())
        self._add(parent_id, name, node_id, EntryType.DIRECTORY, path)
        self._write(node_id, parent_id, EntryType.DIRECTORY, content=encode_listing({}), path=path)
        self._listings[node_id] = {}
        return node_id

    def symlink(self, path: str, target: str) -> None:
        path = paths.normalize(path)
        parent_id, name = self._new_entry(path)
        node_id = str(uuid.uuid4())
        self._add(parent_id, name, node_id, EntryType.SYMLINK, path)
        self._write(node_id, parent_id, EntryType.SYMLINK, content=target.encode(), path=path)

    def write_file(
        self,
        path: str,
        entry_type: EntryType,
        payload: Payload,
        *,
        parents: bool = False,
        attributes: dict[str, Any] | None = None,
    ) -> OplogRecord:
        """A new file, or a new version of an existing one of the same type."""
        path = paths.normalize(path)
        located = self._lookup(path)
        if located is None:
            node_id, parent_id = self._new_node(path, entry_type, parents=parents)
        else:
            if located.entry_type is not entry_type or located.is_dynamic:
                kind = (
                    f"dynamic {located.entry_type.short}"
                    if located.is_dynamic
                    else located.entry_type.short
                )
                raise ConflictError(
                    f"exists as a {kind}, cannot write a {entry_type.short} over it",
                    subject=path,
                    hint="remove it first or write to another path",
                )
            node_id, parent_id = located.node_id, located.record.part_id
        return self._write(
            node_id,
            parent_id,
            entry_type,
            payload=payload,
            path=path,
            attributes={**payload.attributes, **(attributes or {})},
        )

    def write_dynamic(
        self,
        path: str,
        entry_type: EntryType,
        factory: str,
        config: bytes,
        *,
        overwrite: bool = False,
        parents: bool = False,
        attributes: dict[str, Any] | None = None,
        payload: Payload | None = None,
    ) -> OplogRecord:
        """A dynamic node's config (``content``), optionally with a materialized payload."""
        path = paths.normalize(path)
        located = self._lookup(path)
        if located is None:
            node_id, parent_id = self._new_node(path, entry_type, parents=parents)
        else:
            if not overwrite:
                raise ConflictError(
                    "already exists", subject=path, hint="pass --overwrite to replace its config"
                )
            if (
                located.entry_type is EntryType.DIRECTORY
                and not located.is_dynamic
                and self.listing(located.node_id)
            ):
                raise ConflictError("is a non-empty directory", subject=path)
            node_id, parent_id = located.node_id, located.record.part_id
            kept = located.record.attributes.get("listing")
            if located.is_dynamic and kept is not None:
                attributes = {"listing": kept, **(attributes or {})}
            if located.entry_type is not entry_type:
                self._add(parent_id, paths.parent_and_name(path)[1], node_id, entry_type, path)
        return self._write(
            node_id,
            parent_id,
            entry_type,
            factory=factory,
            content=config,
            payload=payload,
            path=path,
            attributes=attributes,
        )

    def remove(self, path: str, *, recursive: bool = False) -> None:
        path = paths.normalize(path)
        if path == "/":
            raise ConflictError("cannot remove the root", subject="/")
        located = self.walk(path, follow=False)
        if located.rest:
            raise ConflictError(
                "is produced by a dynamic directory and cannot be removed on its own",
                subject=path,
                hint="change or remove the dynamic directory's config",
            )
        if (
            located.entry_type is EntryType.DIRECTORY
            and not located.is_dynamic
            and self.listing(located.node_id)
            and not recursive
        ):
            raise ConflictError("directory not empty", subject=path, hint="use rm -r")
        parent_path, name = paths.parent_and_name(path)
        self.unlink_child(self.walk(parent_path).node_id, name, path)

    def unlink_child(self, parent_id: str, name: str, path: str) -> None:
        """Drop a child from a directory's listing, by node id (its history stays)."""
        listing = dict(self.listing(parent_id))
        if listing.pop(name, None) is not None:
            self._listings[parent_id] = listing
            self.touched.append(path)

    def write_child(
        self,
        parent_id: str,
        name: str,
        entry_type: EntryType,
        *,
        path: str,
        payload: Payload | None = None,
        factory: str = STATIC_FACTORY,
        content: bytes | None = None,
        attributes: dict[str, Any] | None = None,
    ) -> OplogRecord:
        """A child version written straight into a directory, by node id: how a
        materialization persists the children of a dynamic directory."""
        entry = self.listing(parent_id).get(name)
        if entry is not None and entry.entry_type is entry_type:
            node_id = entry.node_id
        else:
            node_id = str(uuid.uuid4())
            self._add(parent_id, name, node_id, entry_type, path)
        return self._write(
            node_id,
            parent_id,
            entry_type,
            path=path,
            factory=factory,
            content=content,
            payload=payload,
            attributes={**(payload.attributes if payload else {}), **(attributes or {})},
        )

    # -- commit -------------------------------------------------------------------------
    def finish(self) -> list[OplogRecord]:
        """Every record of this transaction, with one final listing per touched directory
        (a static directory's in ``content``, a dynamic one's in its attributes)."""
        records = list(self.records)
        for node_id, listing in self._listings.items():
            # the node's last pending version carries the listing (a node created and
            # then materialized in one transaction has two)
            pending = next(
                (i for i in reversed(range(len(records))) if records[i].node_id == node_id), None
            )
            base = records[pending] if pending is not None else self.snapshot.latest(node_id)
            if base is None:
                continue
            if pending is None and self.snapshot.listing(node_id) == listing:
                continue
            if base.is_dynamic:
                attributes = {**base.attributes, "listing": listing_attribute(listing)}
                updated = replace(base, attributes=attributes)
            else:
                updated = replace(base, content=encode_listing(listing), size=len(listing))
            if pending is not None:
                records[pending] = updated
            else:
                records.append(
                    replace(
                        updated, version=base.version + 1, txn_seq=self.txn_seq, timestamp=self.now
                    )
                )
        return records

    # -- internals ----------------------------------------------------------------------
    def _lookup(self, path: str) -> Located | None:
        try:
            located = self.walk(path)
        except NotFoundError:
            return None
        if located.rest:
            raise ConflictError(
                "lies inside a dynamic directory; its content is produced by a factory",
                subject=path,
            )
        return located

    def _directory(self, path: str, *, create: bool) -> str:
        try:
            located = self.walk(path)
        except NotFoundError:
            if not create:
                raise NotFoundError(
                    "parent directory does not exist",
                    subject=path,
                    hint="create it first (mkdir -p) or pass -p",
                ) from None
            return self.mkdir(path, parents=True)
        if located.entry_type is not EntryType.DIRECTORY or located.is_dynamic or located.rest:
            raise ConflictError("not a directory", subject=path)
        return located.node_id

    def _new_node(self, path: str, entry_type: EntryType, *, parents: bool) -> tuple[str, str]:
        """A new node's id, listed in its parent directory (made with ``parents``)."""
        parent_path, name = paths.parent_and_name(path)
        parent_id = self._directory(parent_path, create=parents)
        node_id = str(uuid.uuid4())
        self._add(parent_id, name, node_id, entry_type, path)
        return node_id, parent_id

    def _new_entry(self, path: str) -> tuple[str, str]:
        if self._lookup(path) is not None:
            raise ConflictError("already exists", subject=path)
        parent_path, name = paths.parent_and_name(path)
        return self._directory(parent_path, create=False), name

    def _add(
        self, parent_id: str, name: str, node_id: str, entry_type: EntryType, path: str
    ) -> None:
        listing = dict(self.listing(parent_id))
        listing[name] = ListingEntry(node_id, entry_type)
        self._listings[parent_id] = listing
        self.touched.append(path)

    def _write(
        self,
        node_id: str,
        parent_id: str,
        entry_type: EntryType,
        *,
        path: str,
        factory: str = STATIC_FACTORY,
        content: bytes | None = None,
        payload: Payload | None = None,
        attributes: dict[str, Any] | None = None,
    ) -> OplogRecord:
        blob = sha = None
        size = len(content) if content is not None else None
        low = high = None
        if payload is not None:
            sha, size = payload.sha256, payload.size
            low, high = payload.min_event_time, payload.max_event_time
            if payload.size > self.inline_threshold or factory != STATIC_FACTORY:
                blob = self._store_blob(payload)
            else:
                content = payload.read_bytes()
                if payload.owned and isinstance(payload.source, Path):
                    payload.source.unlink(missing_ok=True)
        record = OplogRecord(
            part_id=parent_id,
            node_id=node_id,
            entry_type=entry_type.value,
            version=self.next_version(node_id),
            txn_seq=self.txn_seq,
            timestamp=self.now,
            factory=factory,
            content=content,
            blob=blob,
            sha256=sha,
            size=size,
            min_event_time=low,
            max_event_time=high,
            attributes=dict(attributes or {}),
        )
        self.records.append(record)
        self._latest[node_id] = record
        if path not in self.touched:
            self.touched.append(path)
        return record

    def _store_blob(self, payload: Payload) -> str:
        if isinstance(payload.source, bytes):
            return self.blobs.put_bytes(payload.source)
        return self.blobs.put_file(payload.source, payload.sha256, move=payload.owned)
