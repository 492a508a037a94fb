"""Small generated data for the built-in factories' tests (``pond`` is tests/conftest.py's)."""

from datetime import UTC, datetime, timedelta

import pyarrow as pa
import pytest

BASE_TIME = datetime(2024, 1, 1, tzinfo=UTC)
EVENTS = 1000
"""``/events/all.series``: one event a minute; host h0..h3, priority 0..4, score 0..49."""


def events_table(count: int = EVENTS, start: int = 0) -> pa.Table:
    rows = range(start, start + count)
    return pa.table(
        {
            "ts": pa.array(
                [BASE_TIME + timedelta(minutes=i) for i in rows], pa.timestamp("us", tz="UTC")
            ),
            "host": [f"h{i % 4}" for i in rows],
            "priority": pa.array([i % 5 for i in rows], pa.int64()),
            "score": [float(i % 50) for i in rows],
        }
    )


@pytest.fixture
def make_events():
    """``make_events(count, start)``: events ``start`` .. ``start + count - 1``."""
    return events_table


@pytest.fixture
def events_pond(pond):
    """A pond whose ``/events/all.series`` holds ``EVENTS`` generated events."""
    with pond.transaction("load events") as tx:
        tx.write_table(
            "/events/all.series", events_table(), "series", time_column="ts", parents=True
        )
    return pond
