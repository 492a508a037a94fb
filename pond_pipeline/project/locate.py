"""Where the project is: the ``pond.yaml`` a command uses, and the pond it names.

Found as dbt and Dagster find their project files: ``--config``, else env
``POND_CONFIG``, else ``pond.yaml`` in the working folder or the nearest of its parents.
Kept light (no pydantic, no factories): every ``pond`` command may ask it where its pond
is before importing anything else.
"""

import os
from pathlib import Path

import yaml

from pond_pipeline.errors import ConfigError

DEFAULT_FILE = "pond.yaml"
DEFAULT_POND = "./.pond"


def project_file(path: str | Path | None = None, *, start: Path | None = None) -> Path:
    """``path``, else env ``POND_CONFIG``, else the nearest ``pond.yaml`` from ``start``
    (the working folder) up; if there is none, ``./pond.yaml`` (for the error naming it)."""
    given = path or os.environ.get("POND_CONFIG")
    if given:
        return Path(given)
    return find_file(start) or Path(DEFAULT_FILE)


def find_file(start: Path | None = None) -> Path | None:
    """The nearest ``pond.yaml`` in ``start`` (default: the working folder) or its parents."""
    folder = (start or Path.cwd()).resolve()
    for candidate in (folder, *folder.parents):
        if (candidate / DEFAULT_FILE).is_file():
            return candidate / DEFAULT_FILE
    return None


def resolve_pond_uri(uri: str, folder: Path) -> str:
    """A store URI as written in ``pond.yaml``: a relative path starts at its folder."""
    if "://" in uri or Path(uri).is_absolute():
        return uri
    return str((folder / uri).resolve())


def pond_of(path: Path) -> str:
    """The pond ``path`` (a ``pond.yaml``) names in ``pond:`` (default ``./.pond``),
    resolved against its folder. Only that key is read; the rest is checked by
    ``pond apply``."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ConfigError(
            f"cannot read it to find the pond: {str(exc).splitlines()[0]}",
            subject=str(path),
            hint="fix the file, or pass --pond PATH",
        ) from exc
    value = data.get("pond", DEFAULT_POND) if isinstance(data, dict) else DEFAULT_POND
    if not isinstance(value, str) or not value:
        raise ConfigError(
            "pond: must be a path or URI", subject=str(path), hint="write pond: ./.pond"
        )
    return resolve_pond_uri(value, path.parent)


def located_pond() -> tuple[str, Path] | None:
    """The pond of the project file (``POND_CONFIG`` or the nearest ``pond.yaml``) and
    that file, or ``None`` when there is no project file."""
    configured = os.environ.get("POND_CONFIG")
    path = Path(configured) if configured else find_file()
    if path is None or not path.is_file():
        return None
    return pond_of(path), path
