"""Node kinds (DESIGN §3) and directory listings."""

from dataclasses import dataclass

import pyarrow as pa
import pyarrow.ipc as ipc

from pond_pipeline.kinds import EntryType

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
    table = ipc.open_stream(pa.BufferReader(content)).read_all()
    return {
        row["name"]: ListingEntry(row["node_id"], EntryType(row["entry_type"]))
        for row in table.to_pylist()
    }


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
