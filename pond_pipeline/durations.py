"""Durations as users write them (``30s``, ``5m``, ``1h``, ``6h``, ``1d``, ``2w``)."""

import re
from datetime import timedelta
from typing import Annotated

from pydantic import BeforeValidator, PlainSerializer

from pond_pipeline.errors import ConfigError

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_PATTERN = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$")


def parse_duration(text: str) -> timedelta:
    """``"90s"`` → ``timedelta(seconds=90)``; anything else is a ``ConfigError``."""
    match = _PATTERN.match(str(text))
    if not match or int(match.group(1)) == 0:
        raise ConfigError(
            "is not a duration",
            subject=repr(text),
            hint="write a positive whole number and a unit: 30s, 5m, 1h, 6h, 1d, 2w",
        )
    try:
        return timedelta(seconds=int(match.group(1)) * _UNITS[match.group(2)])
    except OverflowError:
        raise ConfigError(
            "is too long a duration", subject=repr(text)[:40], hint="write at most 100000w"
        ) from None


def format_duration(value: timedelta) -> str:
    """The shortest ``<n><unit>`` spelling of a duration (``timedelta(hours=6)`` → ``6h``)."""
    seconds = int(value.total_seconds())
    for unit, size in sorted(_UNITS.items(), key=lambda item: -item[1]):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _coerce(value: object) -> timedelta:
    if isinstance(value, timedelta):
        return value
    try:
        return parse_duration(str(value))
    except ConfigError as exc:
        raise ValueError(exc.message) from exc


Duration = Annotated[
    timedelta,
    BeforeValidator(_coerce),
    PlainSerializer(format_duration, return_type=str),
]
"""A pydantic field type that accepts ``"1h"`` and serializes back to ``"1h"``."""
