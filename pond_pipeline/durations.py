"""Durations as users write them (``30s``, ``5m``, ``1h``, ``6h``, ``1d``, ``2w``), and
refresh intervals: a duration or ``cron: <five fields>``."""

import re
from datetime import timedelta
from typing import Annotated

from pydantic import BeforeValidator, PlainSerializer

from pond_pipeline.errors import ConfigError

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_PATTERN = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$")
_CRON_PREFIX = "cron:"
_CRON_FIELD = re.compile(r"^[\d*/,\-]+$")


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


def normalize_refresh(text: str) -> str:
    """``"60m"`` → ``"1h"``; ``"cron: 15 3 * * *"`` kept (five fields checked)."""
    text = text.strip()
    if text.startswith(_CRON_PREFIX):
        expression = text[len(_CRON_PREFIX) :].strip()
        fields = expression.split()
        if len(fields) != 5 or not all(_CRON_FIELD.match(f) for f in fields):
            raise ConfigError(
                f"{expression!r} is not a five-field cron expression",
                hint="write e.g. 'cron: 15 3 * * *' (minute hour day month weekday)",
            )
        return f"{_CRON_PREFIX} {' '.join(fields)}"
    refresh_cron(text)
    return format_duration(parse_duration(text))


def refresh_cron(text: str) -> str:
    """The cron schedule of a refresh: ``5m`` → ``*/5 * * * *``, ``1h`` → ``0 * * * *``,
    ``6h`` → ``0 */6 * * *``, ``1d`` → ``0 0 * * *``, ``1w`` → ``0 0 * * 0``."""
    if text.startswith(_CRON_PREFIX):
        return text[len(_CRON_PREFIX) :].strip()
    seconds = int(parse_duration(text).total_seconds())
    minutes, hours, days = seconds / 60, seconds / 3600, seconds / 86400
    if seconds % 60 == 0 and minutes < 60 and 60 % minutes == 0:
        return "* * * * *" if minutes == 1 else f"*/{int(minutes)} * * * *"
    if seconds % 3600 == 0 and hours < 24 and 24 % hours == 0:
        return "0 * * * *" if hours == 1 else f"0 */{int(hours)} * * *"
    if days == 1:
        return "0 0 * * *"
    if days == 7:
        return "0 0 * * 0"
    raise ConfigError(
        f"refresh {text!r} has no cron schedule",
        hint="use minutes dividing an hour (1m..30m), hours dividing a day (1h..12h), 1d, 1w, "
        "or 'cron: ...'",
    )
