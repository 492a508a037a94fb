"""How this process uses a pond (the pond's own settings are in ``pond.json``)."""

from dataclasses import dataclass
from pathlib import Path

from pond_pipeline.query.engine import Connector
from pond_pipeline.store.lock import DEFAULT_LOCK_TIMEOUT


@dataclass(frozen=True)
class PondOptions:
    """How this process uses a pond (the pond's own settings are in ``pond.json``)."""

    lock_timeout: float = DEFAULT_LOCK_TIMEOUT
    """Seconds a writer waits for the write lock."""
    query_timeout: float | None = None
    """Seconds before a query is interrupted (0: never); ``None``: the pond's setting."""
    host_root: Path | None = None
    """The folder relative host paths resolve against (``pond.yaml``'s)."""
    connector: Connector | None = None
    """Where SQL sessions get their DuckDB connection (default: the process's own)."""
