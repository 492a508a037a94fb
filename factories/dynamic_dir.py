"""``dynamic_dir``: a directory whose children are dynamic nodes declared inline.

    factory: dynamic_dir
    config:
      entries:
        - name: north.series
          factory: synthetic
          config: {start: 2024-01-01, end: 2024-01-02, interval: 1m, points: [...]}
        - name: north-warm.series            # a later entry may read an earlier one
          factory: sql_derived_series
          config: {source: /stations/north.series, query: "SELECT * FROM source WHERE ..."}

Each entry is the node ``<dir>/<name>``, exactly as if it had been made with ``mknod``
there: the core validates its config when the directory is created (errors name
``<dir>/<name>`` and the field), checks its sources and cycles across the entries and
the rest of the pond, caches it under the same key, and maps it to an asset of its own.
The children follow from the config alone (``declared_children``), so one ``mknod``
creates the whole set in one transaction.
"""

from typing import Any

from pydantic import Field, field_validator

from pond_pipeline.factory import (
    ChildSpec,
    EntryType,
    Factory,
    FactoryConfig,
    FactoryContext,
    PondModel,
)

__all__ = ["DynamicDirConfig", "DynamicDirFactory", "Entry", "check_name"]

MAX_NAME_BYTES = 255
GLOB_CHARS = frozenset("*?[")


def check_name(name: str) -> str:
    """``name`` if it is one path segment a glob-free path can name, else ``ValueError``."""
    if name in ("", ".", ".."):
        raise ValueError(f"{name!r} is not a name; write a file name such as north.series")
    if "/" in name or "\x00" in name:
        raise ValueError(f"{name!r} must be a single path segment (no '/' or NUL)")
    if GLOB_CHARS & set(name):
        raise ValueError(f"{name!r} contains a glob character (*, ? or [)")
    if name != name.strip():
        raise ValueError(f"{name!r} starts or ends with white space")
    if len(name.encode("utf-8", "surrogatepass")) > MAX_NAME_BYTES:
        raise ValueError(f"{name[:40]!r}… is longer than {MAX_NAME_BYTES} bytes")
    return name


class Entry(PondModel):
    name: str
    """The child's name in the directory, e.g. ``north.series``."""
    factory: str = Field(min_length=1)
    config: dict[str, Any] = Field(default={})
    """The entry's factory config (validated by the core as ``<dir>/<name>``)."""

    @field_validator("name")
    @classmethod
    def _single_segment(cls, value: str) -> str:
        return check_name(value)


class DynamicDirConfig(FactoryConfig):
    entries: list[Entry]

    @field_validator("entries")
    @classmethod
    def _unique_names(cls, value: list[Entry]) -> list[Entry]:
        names = [entry.name for entry in value]
        repeated = sorted({name for name in names if names.count(name) > 1})
        if repeated:
            raise ValueError(
                f"entry name {', '.join(repr(n) for n in repeated)} is used more than once; "
                "give each entry its own name"
            )
        return value


class DynamicDirFactory(Factory[DynamicDirConfig]):
    """A directory of dynamic nodes declared inline: entries [{name, factory, config}]."""

    name = "dynamic_dir"
    produces = EntryType.DIRECTORY

    def declared_children(self, config: DynamicDirConfig) -> list[ChildSpec]:
        return [
            ChildSpec(entry.name, entry.factory, dict(entry.config)) for entry in config.entries
        ]

    def produce(self, config: DynamicDirConfig, context: FactoryContext) -> list[ChildSpec]:
        return self.declared_children(config)
