"""The factory contract: what a dynamic node's plug-in declares, and what it may ask of the pond.

A factory is found through the ``pond.factories`` entry-point group (the built-ins in
``factories/`` register the same way). It declares its ``name``, a typed ``Config``
model, the entry type it produces, the pond paths/globs it reads (``sources``), and
``produce``s its content as one of:

- ``pa.Table`` / ``pa.RecordBatchReader`` for a table or series,
- ``SqlRelation`` for a table or series defined by SQL over its sources (composed
  lazily, so filters reach the static files at the bottom of a chain),
- ``bytes`` for a data file,
- ``list[ChildSpec]`` for a directory of transient child nodes (persisted only when
  a materialization writes them),
- ``list[HostFile]`` for a non-lazy directory (``lazy = False``) that imports host
  files when materialized, and lists what it imported in between.
"""

import inspect
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any, ClassVar, Generic, Protocol, TypeAlias, TypeVar, get_args

import pyarrow as pa
import pyarrow.dataset as ds
from pydantic import BaseModel, ConfigDict

from pond_pipeline.durations import Duration, format_duration, parse_duration
from pond_pipeline.paths import glob_captures, wildcard_count
from pond_pipeline.paths import split as split_path

__all__ = [
    "ChildSpec",
    "Duration",
    "EntryType",
    "Factory",
    "FactoryConfig",
    "FactoryContext",
    "HostFile",
    "Output",
    "PondModel",
    "Previous",
    "SourceVersion",
    "SqlRelation",
    "format_duration",
    "glob_captures",
    "parse_duration",
    "split_path",
    "wildcard_count",
]


class EntryType(StrEnum):
    """The kinds of node a pond holds (DESIGN §3)."""

    DIRECTORY = "directory"
    SYMLINK = "symlink"
    DATA = "file:data"
    TABLE = "file:table"
    SERIES = "file:series"

    @property
    def is_file(self) -> bool:
        return self.value.startswith("file:")

    @property
    def is_tabular(self) -> bool:
        return self in (EntryType.TABLE, EntryType.SERIES)

    @property
    def short(self) -> str:
        """``file:series`` → ``series``, as users type it (``--type series``)."""
        return self.value.removeprefix("file:")

    @classmethod
    def from_short(cls, name: str) -> "EntryType":
        for member in cls:
            if name in (member.value, member.short):
                return member
        raise ValueError(name)


class PondModel(BaseModel):
    """The base of every typed config (factory configs and ``pond.yaml``): unknown keys
    are errors (reported with their path); values are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class FactoryConfig(PondModel):
    """Base of a factory's config model."""


@dataclass(frozen=True)
class SqlRelation:
    """Rows defined by DuckDB SQL; ``tables`` maps each name the query uses to a pond
    path or glob (a glob reads as the union of its matches, by column name)."""

    query: str
    tables: dict[str, str]
    field: str | None = None
    """The config field the query was written in (``query``), named when it is refused."""


@dataclass(frozen=True)
class ChildSpec:
    """A transient child of a dynamic directory: itself a dynamic node (factory + config)."""

    name: str
    factory: str
    config: dict[str, Any]


@dataclass(frozen=True)
class HostFile:
    """A host file a non-lazy factory (``ingest``) imports as a static child when its
    node is materialized; unchanged files (same sha256) are skipped."""

    name: str
    path: Path
    entry_type: EntryType
    time_column: str | None = None


Output: TypeAlias = (
    pa.Table | pa.RecordBatchReader | SqlRelation | bytes | list[ChildSpec] | list[HostFile]
)


class FactoryContext(Protocol):
    """What a factory may ask of the pond while producing a node."""

    @property
    def path(self) -> str:
        """The pond path of the node being produced."""
        ...

    def glob(self, pattern: str) -> list[str]:
        """Pond paths (static or dynamic) matching a path or glob, sorted."""
        ...

    def entry_type(self, path: str) -> EntryType: ...

    def schema(self, path: str) -> pa.Schema:
        """The Arrow schema of a table or series."""
        ...

    def time_column(self, path: str) -> str | None:
        """A series' timestamp column."""
        ...

    def dataset(
        self, path: str, start: datetime | None = None, end: datetime | None = None
    ) -> ds.Dataset:
        """A table or series as Arrow (filters and projections reach its Parquet).

        With ``start``/``end``, a series' rows in ``[start, end)``; versions whose
        temporal range misses the window are not opened at all.
        """
        ...

    def versions(self, path: str) -> list["SourceVersion"]:
        """A static series' versions with their temporal ranges (empty for others)."""
        ...

    def config_of(self, path: str) -> tuple[str, dict[str, Any]]:
        """A dynamic node's factory name and (env-expanded) config, e.g. to apply the rules
        of a ``column_rename`` node named in a ``transforms:`` list."""
        ...

    def record_metric(self, name: str, value: int | float | str) -> None:
        """Report a figure of this production (e.g. ``rows_read``) to the materialization."""
        ...

    def read_bytes(self, path: str) -> bytes:
        """A data file's bytes."""
        ...

    def read_csv(self, path: str, *, formats: dict[str, str] | None = None) -> pa.Table:
        """A CSV data file in the pond as a table (types inferred by DuckDB); ``formats``
        maps columns to DuckDB ``strptime`` formats their text is parsed with."""
        ...

    def query(self, sql: str, tables: dict[str, str]) -> pa.Table:
        """Sandboxed SQL where ``tables`` maps names to pond paths or globs."""
        ...

    def host_root(self) -> Path | None:
        """The folder relative host paths resolve against (``pond.yaml``'s), if any."""
        ...


@dataclass(frozen=True)
class SourceVersion:
    """One version of a source series: its number and temporal range (µs since epoch)."""

    version: int
    min_event_time: int | None
    max_event_time: int | None
    rows: int | None


@dataclass(frozen=True)
class Previous:
    """What this node's last materialization wrote, for ``produce_incremental``."""

    dataset: ds.Dataset
    source_versions: dict[str, int]
    """Source path → the latest version it had read (static series only)."""


C = TypeVar("C", bound=FactoryConfig)


class Factory(Generic[C]):
    """Subclass ``Factory[MyConfig]`` with a docstring (its first paragraph is the
    ``description``), ``name``, ``produces`` and ``produce``."""

    name: ClassVar[str]
    Config: ClassVar[type[FactoryConfig]]
    produces: ClassVar[EntryType]
    version: ClassVar[str] = "1"
    """Bump when the same config and sources would now give different content."""
    description: ClassVar[str] = ""
    lazy: ClassVar[bool] = True
    """False for factories that act only when materialized (e.g. ``ingest``)."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """``Config`` defaults to the class's type argument (``Factory[MyConfig]``) and
        ``description`` to the first paragraph of the class's docstring."""
        super().__init_subclass__(**kwargs)
        if "Config" not in cls.__dict__:
            for base in cls.__dict__.get("__orig_bases__", ()):
                args = get_args(base)
                if args and isinstance(args[0], type) and issubclass(args[0], FactoryConfig):
                    cls.Config = args[0]
        doc = cls.__dict__.get("__doc__")
        if "description" not in cls.__dict__ and doc:
            cls.description = " ".join(inspect.cleandoc(doc).split("\n\n")[0].split())

    def entry_type(self, config: C) -> EntryType:
        return self.produces

    def sources(self, config: C) -> Sequence[str]:
        """The pond paths and globs this node reads."""
        return []

    def time_column(self, config: C) -> str | None:
        """For a series: the timestamp column of what ``produce`` returns; by default the
        config's ``time_column`` field, if it has one."""
        value = getattr(config, "time_column", None)
        return value if isinstance(value, str) else None

    def is_runnable(self, config: C) -> bool:
        """False for a node that only serves others, which read its config (e.g. a
        ``column_rename`` without ``source`` named in a join's ``transforms:``): it is no
        Dagster asset and is never materialized on its own."""
        return True

    def ttl(self, config: C) -> timedelta | None:
        """How long a produced result may be reused when it is *not* a pure function of
        config and sources; ``None`` means deterministic (reused until a source changes)."""
        return None

    def produce(self, config: C, context: FactoryContext) -> Output:
        raise NotImplementedError

    def relation(self, config: C) -> SqlRelation | None:
        """The ``SqlRelation`` ``produce`` returns, when the config alone defines it (no
        reads): the pond binds it against its sources' schemas when the node is created
        or applied (syntax, one SELECT, columns, tables), and a query DuckDB refuses is
        refused then, with nothing written. ``None`` (the default): checked when read."""
        return None

    def relations(self, config: C) -> list[SqlRelation]:
        """Every query the config alone defines, each checked like ``relation``'s (a
        template's ``query("...")`` calls, say); the default: ``relation``'s, if any."""
        relation = self.relation(config)
        return [] if relation is None else [relation]

    def declared_children(self, config: C) -> list[ChildSpec] | None:
        """A directory whose children follow from its config alone (no reads) declares
        them here, so validation, cycle checks and Dagster see each child."""
        return None

    def produce_incremental(
        self, config: C, context: FactoryContext, previous: Previous
    ) -> Output | None:
        """The full new content, computed from ``previous`` plus what changed in the
        sources since; ``None`` (the default) means produce from scratch."""
        return None


@dataclass
class FactoryInfo:
    """What ``pond factories`` shows of an installed factory."""

    name: str
    produces: str
    description: str
    fields: dict[str, str] = field(default_factory=dict)
