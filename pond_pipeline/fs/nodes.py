"""Node kinds (DESIGN §3) and directory listings."""

import json
import re
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.ipc as ipc

from pond_pipeline.errors import CorruptionError
from pond_pipeline.factory import EntryType
from pond_pipeline.store.oplog import OplogRecord

ROOT_ID = "00000000-0000-0000-0000-000000000000"


@dataclass(frozen=True)
class ListingEntry:
    node_id: str
    entry_type: EntryType


Listing = dict[str, ListingEntry]

_LISTING_SCHEMA = pa.schema(
    [("name", pa.string()), ("node_id", pa.string()), ("entry_type", pa.string())]
)


def encode_listing(listing: Listing) -> bytes:
    names = sorted(listing)
    table = pa.table(
        {
            "name": names,
            "node_id": [listing[n].node_id for n in names],
            "entry_type": [listing[n].entry_type.value for n in names],
        },
        schema=_LISTING_SCHEMA,
    )
    sink = pa.BufferOutputStream()
    with ipc.new_stream(sink, _LISTING_SCHEMA) as writer:
        writer.write_table(table)
    return bytes(sink.getvalue().to_pybytes())


def decode_listing(content: bytes | None) -> Listing:
    if not content:
        return {}
    try:
        table = ipc.open_stream(pa.BufferReader(content)).read_all()
        table.validate(full=True)  # damaged offsets would crash to_pylist
        if table.schema != _LISTING_SCHEMA:
            raise ValueError(f"unexpected columns {table.schema.names}")
        return {
            row["name"]: ListingEntry(row["node_id"], EntryType(row["entry_type"]))
            for row in table.to_pylist()
        }
    except (OSError, ValueError, KeyError, TypeError, pa.ArrowException) as exc:
        raise CorruptionError(
            f"a directory listing cannot be decoded ({exc})", hint="run `pond verify`"
        ) from exc


def check_record(record: OplogRecord) -> None:
    """A version the tree can use: a static file has its checksums, a symlink a UTF-8
    target, a dynamic node a JSON config (a static directory's listing is checked when
    read). A row damaged in the oplog's data files may still decode: refuse it by name."""
    try:
        static_file = record.entry_type.startswith("file:") and not record.is_dynamic
        if static_file and (
            not _is_sha256(record.sha256) or (record.blob and not _is_sha256(record.blob))
        ):
            raise ValueError("its checksum is not a sha256")
        if record.entry_type == EntryType.SYMLINK.value:
            (record.content or b"").decode()
        if (
            record.is_dynamic
            and record.content
            and not isinstance(json.loads(record.content), dict)
        ):
            raise ValueError("its config is not a JSON object")
    except ValueError as exc:
        raise CorruptionError(
            f"version {record.version} is damaged in the oplog ({exc})",
            subject=f"node {record.node_id}",
            hint="run `pond verify`, which names the damaged file",
        ) from exc


_SHA256 = re.compile(r"[0-9a-f]{64}")


def _is_sha256(value: str | None) -> bool:
    return value is not None and _SHA256.fullmatch(value) is not None


def listing_of(content: bytes | None, attributes: dict[str, object], is_dynamic: bool) -> Listing:
    """A directory version's listing: in ``content`` for a static directory; for a
    dynamic one (whose content is its config), the children its last materialization
    persisted, kept in the ``listing`` extended attribute."""
    if not is_dynamic:
        return decode_listing(content)
    stored = attributes.get("listing")
    if not isinstance(stored, dict):
        return {}
    return {
        name: ListingEntry(str(node_id), EntryType(kind))
        for name, (node_id, kind) in stored.items()
    }


def listing_attribute(listing: Listing) -> dict[str, list[str]]:
    return {
        name: [entry.node_id, entry.entry_type.value] for name, entry in sorted(listing.items())
    }
