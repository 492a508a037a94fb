"""``pond.json``: the settings a pond keeps beside its oplog (written by ``pond init``)."""

import json
from pathlib import Path
from typing import Any

from pydantic import ValidationError, field_validator

from pond_pipeline.errors import ConfigError
from pond_pipeline.factory import PondModel

SETTINGS_FILE = "pond.json"
DEFAULT_INLINE_THRESHOLD = 64 * 1024
DEFAULT_QUERY_TIMEOUT = 300.0
_HINT = "fix it, or delete it to use the defaults"
_UNITS = {"inline_threshold": "bytes", "query_timeout": "seconds"}


class PondSettings(PondModel):
    inline_threshold: int = DEFAULT_INLINE_THRESHOLD
    """Payloads larger than this many bytes are blobs; smaller ones live in the oplog."""
    query_timeout: float = DEFAULT_QUERY_TIMEOUT
    """Seconds before a query is interrupted (0: never), unless a command says otherwise."""

    @field_validator("inline_threshold", "query_timeout", mode="before")
    @classmethod
    def _number(cls, value: Any) -> Any:
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < 1e12:
            raise ValueError(f"not {value!r}")
        return int(value) if isinstance(value, float) and value.is_integer() else value

    @classmethod
    def read(cls, path: Path) -> "PondSettings":
        """The settings in ``path`` (the defaults if there is none); damaged JSON or a bad
        value is a ``ConfigError`` naming the file and the key."""
        if not path.exists():
            return cls()
        try:
            value = json.loads(path.read_bytes())
        except (OSError, ValueError) as exc:  # JSONDecodeError and UnicodeDecodeError too
            raise ConfigError(
                f"cannot read the pond's settings: {exc}", subject=str(path), hint=_HINT
            ) from exc
        if not isinstance(value, dict):
            raise ConfigError(
                "the pond's settings must be a JSON object", subject=str(path), hint=_HINT
            )
        try:
            return cls.model_validate(value)
        except ValidationError as exc:
            first = exc.errors()[0]
            key = ".".join(str(p) for p in first["loc"])
            if first["type"] == "extra_forbidden":
                reason = f"unknown setting {key!r} (settings are {', '.join(_UNITS)})"
            else:
                reason = f"{key} must be a number of {_UNITS[key]} >= 0, not {first['input']!r}"
            raise ConfigError(reason, subject=str(path), hint=_HINT) from exc

    def write(self, path: Path) -> None:
        path.write_text(json.dumps(self.model_dump(), indent=2))
