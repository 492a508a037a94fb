"""``temporal_reduce``: downsample every series a glob matches to several resolutions.

    factory: temporal_reduce
    config:
      in_pattern: /sites/*/data.series
      out_pattern: $1                    # /sites/north/data.series → north
      time_column: timestamp             # default
      resolutions: [1h, 6h, 1d]
      aggregations:
        - {type: avg, columns: ["*"]}
        - {type: min, columns: ["temp*"]}
        - {type: count, columns: ["*"]}

The node is a directory listing, for every matched series and resolution,
``<out>/res=<resolution>.series``: ``<out>`` (``out_pattern`` with ``$1``, ``$2``... the
text each wildcard of ``in_pattern`` matched, ``$0`` the whole matched path without its
leading ``/``) is a ``temporal_resolutions`` directory, and each ``res=…`` series a
``temporal_bucket`` node (see there for the columns). The listing is made when the
directory is read, so a series added later that matches ``in_pattern`` appears without
touching the node. Materializing the directory writes every child; a later
materialization updates each bucket series incrementally.
"""

import re
from collections.abc import Sequence
from typing import Self

from pydantic import Field, ValidationInfo, field_validator, model_validator

from factories.tabular import (
    DEFAULT_TIME_COLUMN,
    Aggregation,
    TemporalBucketConfig,
    TimeColumn,
)
from pond_pipeline.errors import FactoryError
from pond_pipeline.factory import (
    ChildSpec,
    Duration,
    EntryType,
    Factory,
    FactoryConfig,
    FactoryContext,
    format_duration,
    glob_captures,
    split_path,
    wildcard_count,
)

__all__ = [
    "TemporalReduceConfig",
    "TemporalReduceFactory",
    "TemporalResolutionsConfig",
    "TemporalResolutionsFactory",
    "expand_out_pattern",
]

_REFERENCE = re.compile(r"\$(\d+)")


class _Reduction(FactoryConfig):
    time_column: TimeColumn = DEFAULT_TIME_COLUMN
    resolutions: list[Duration] = Field(min_length=1)
    aggregations: list[Aggregation] = Field(min_length=1)

    @model_validator(mode="after")
    def _distinct_resolutions(self) -> Self:
        names = [format_duration(r) for r in self.resolutions]
        repeated = sorted({name for name in names if names.count(name) > 1})
        if repeated:
            raise ValueError(f"resolutions must differ: {', '.join(repeated)} listed twice")
        return self

    def bucket_children(self, source: str) -> list[ChildSpec]:
        """``res=<resolution>.series`` for each resolution, reading ``source``."""
        children = []
        for resolution in self.resolutions:
            config = TemporalBucketConfig(
                source=source,
                resolution=resolution,
                time_column=self.time_column,
                aggregations=self.aggregations,
            )
            children.append(
                ChildSpec(
                    name=f"res={format_duration(resolution)}.series",
                    factory="temporal_bucket",
                    config=config.model_dump(mode="json"),
                )
            )
        return children


class TemporalReduceConfig(_Reduction):
    in_pattern: str
    """A glob over series, e.g. ``/sites/*/data.series``."""
    out_pattern: str = Field(min_length=1)
    """The child name per matched series: ``$1``... what each wildcard matched."""

    @field_validator("out_pattern")
    @classmethod
    def _references_exist(cls, value: str, info: ValidationInfo) -> str:
        if "/" in value:
            raise ValueError(f"{value!r} names one child, so it cannot hold '/'")
        in_pattern = info.data.get("in_pattern")
        if not isinstance(in_pattern, str):
            return value
        available = wildcard_count(in_pattern)
        for reference in _REFERENCE.findall(value):
            if int(reference) > available:
                raise ValueError(
                    f"{value!r} refers to ${int(reference)}, but in_pattern {in_pattern!r} "
                    f"has {available} wildcard(s); use $0..${available}"
                )
        return value


class TemporalReduceFactory(Factory[TemporalReduceConfig]):
    """Every series a glob matches, downsampled: <out>/res=<resolution>.series (incremental)."""

    name = "temporal_reduce"
    produces = EntryType.DIRECTORY

    def sources(self, config: TemporalReduceConfig) -> Sequence[str]:
        return [config.in_pattern]

    def produce(self, config: TemporalReduceConfig, context: FactoryContext) -> list[ChildSpec]:
        children: dict[str, ChildSpec] = {}
        origins: dict[str, str] = {}
        for path in context.glob(config.in_pattern):
            if context.entry_type(path) is not EntryType.SERIES:
                continue
            captures = glob_captures(config.in_pattern, path)
            if captures is None:  # matched through a symlink: no text to capture
                continue
            name = expand_out_pattern(config.out_pattern, path, captures)
            if not name or "/" in name or name in (".", ".."):
                raise FactoryError(
                    f"out_pattern {config.out_pattern!r} gives {name!r} for {path}, "
                    "which is not a child name",
                    hint="build it from captures that hold one path segment, e.g. $1",
                )
            if name in children:
                raise FactoryError(
                    f"out_pattern {config.out_pattern!r} maps both {origins[name]} and "
                    f"{path} to the child {name!r}",
                    hint="use more of the captures in out_pattern so each input is unique",
                )
            child = TemporalResolutionsConfig(
                source=path,
                time_column=config.time_column,
                resolutions=config.resolutions,
                aggregations=config.aggregations,
            )
            children[name] = ChildSpec(
                name=name,
                factory=TemporalResolutionsFactory.name,
                config=child.model_dump(mode="json"),
            )
            origins[name] = path
        return list(children.values())


class TemporalResolutionsConfig(_Reduction):
    source: str
    """The one series to reduce."""


class TemporalResolutionsFactory(Factory[TemporalResolutionsConfig]):
    """One series reduced to each resolution: res=<resolution>.series.

    The ``<out>`` directory of a ``temporal_reduce``: one series per resolution.
    """

    name = "temporal_resolutions"
    produces = EntryType.DIRECTORY

    def sources(self, config: TemporalResolutionsConfig) -> Sequence[str]:
        return [config.source]

    def produce(
        self, config: TemporalResolutionsConfig, context: FactoryContext
    ) -> list[ChildSpec]:
        return config.bucket_children(config.source)


def expand_out_pattern(out_pattern: str, path: str, captures: list[str]) -> str:
    """``out_pattern`` with ``$0`` (the path without its leading ``/``) and ``$n``."""
    values = ["/".join(split_path(path)), *captures]

    def substitute(match: re.Match[str]) -> str:
        return values[int(match.group(1))]

    return _REFERENCE.sub(substitute, out_pattern)
