"""The values the dynamic layer passes around: what a path names (``Node``), a window on
a series' timestamps (``TimeRange``), and the error a node's factory failing raises."""

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from pond_pipeline.errors import FactoryError
from pond_pipeline.factory import EntryType
from pond_pipeline.fs.payloads import to_micros
from pond_pipeline.store.oplog import STATIC_FACTORY, OplogRecord


@dataclass(frozen=True)
class Node:
    """What a path names. ``versions`` is empty for a transient child."""

    path: str
    entry_type: EntryType
    factory: str = STATIC_FACTORY
    node_id: str | None = None
    versions: tuple[OplogRecord, ...] = ()
    raw_config: dict[str, Any] = field(default_factory=dict)

    @property
    def is_dynamic(self) -> bool:
        return self.factory != STATIC_FACTORY

    @property
    def latest(self) -> OplogRecord | None:
        return self.versions[-1] if self.versions else None


@dataclass(frozen=True)
class TimeRange:
    """A half-open ``[start, end)`` window on a series' timestamp column."""

    start: datetime | None = None
    end: datetime | None = None

    def overlaps(self, record: OplogRecord) -> bool:
        if record.min_event_time is None or record.max_event_time is None:
            return True
        if self.start is not None and record.max_event_time < to_micros(self.start):
            return False
        return not (self.end is not None and record.min_event_time >= to_micros(self.end))

    def expression(self, column: str, column_type: pa.DataType) -> pc.Expression:
        condition = pc.scalar(True)
        for bound, compare in ((self.start, "ge"), (self.end, "lt")):
            if bound is None:
                continue
            value = _bound_scalar(bound, column_type)
            term = pc.field(column) >= value if compare == "ge" else pc.field(column) < value
            condition = condition & term
        return condition


def factory_failure(node: Node, cause: str) -> FactoryError:
    """The node's factory failed (or produced the wrong kind of content) because ``cause``."""
    return FactoryError(f"factory {node.factory!r} failed: {cause}", subject=node.path)


def _bound_scalar(bound: datetime, column_type: pa.DataType) -> pa.Scalar:
    aware = bound if bound.tzinfo else bound.replace(tzinfo=UTC)
    if pa.types.is_timestamp(column_type):
        value = aware if column_type.tz else aware.astimezone(UTC).replace(tzinfo=None)
        return pa.scalar(value, type=column_type)
    return pa.scalar(aware.date(), type=column_type)
