"""``ingest``: import host files into the pond when the node is materialized.

    /sensor_logs:
      factory: ingest
      config: {host_pattern: examples/data/*.csv, type: data}
      refresh: 1h

Not lazy: reading ``/sensor_logs`` lists what the last materialization imported.
Materializing imports every file matching ``host_pattern`` (a glob; relative paths
start at the folder holding ``pond.yaml``) as ``data`` (named as the file), or as
``<stem>.table`` / ``<stem>.series``.
An unchanged file (same sha256) is skipped; a changed one is re-imported — for a
series that appends a version holding the rows after the series' last time (a grown
log file; rows already imported are not imported twice).
"""

import glob
from collections.abc import Sequence
from pathlib import Path
from typing import Literal, Self

from pydantic import model_validator

from pond_pipeline.errors import ConfigError
from pond_pipeline.factory import EntryType, Factory, FactoryConfig, FactoryContext, HostFile

__all__ = ["IngestConfig", "IngestFactory"]


class IngestConfig(FactoryConfig):
    host_pattern: str
    """A glob over host files, e.g. ``examples/data/*.csv`` (``**`` recurses)."""
    type: Literal["data", "table", "series"] = "data"
    time_column: str | None = None
    """For ``type: series``: the timestamp column (default: the first one)."""

    @model_validator(mode="after")
    def _time_column_for_series(self) -> Self:
        if self.time_column is not None and self.type != "series":
            raise ValueError("'time_column' applies to type: series; remove it or set type")
        return self


class IngestFactory(Factory[IngestConfig]):
    """Imports host files matching a glob when materialized (skips unchanged ones)."""

    name = "ingest"
    produces = EntryType.DIRECTORY
    lazy = False

    def sources(self, config: IngestConfig) -> Sequence[str]:
        return []

    def produce(self, config: IngestConfig, context: FactoryContext) -> list[HostFile]:
        pattern = Path(config.host_pattern).expanduser()
        root = context.host_root()
        if not pattern.is_absolute():
            pattern = (root or Path.cwd()) / pattern
        matches = sorted(Path(p) for p in glob.glob(str(pattern), recursive=True))
        files = [p for p in matches if p.is_file()]
        kind = EntryType.from_short(config.type)
        names: dict[str, Path] = {}
        for path in files:
            name = child_name(path, kind)
            if name in names:
                raise ConfigError(
                    f"two host files would both become {name!r}: {names[name]} and {path}",
                    subject=context.path,
                    hint="narrow host_pattern so file names are unique",
                )
            names[name] = path
        return [HostFile(name, path, kind, config.time_column) for name, path in names.items()]


def child_name(path: Path, kind: EntryType) -> str:
    """A data file keeps its name; a table or series is ``<stem>.table``/``<stem>.series``,
    as ``csv_directory`` names its children."""
    return path.name if kind is EntryType.DATA else f"{path.stem}.{kind.short}"
