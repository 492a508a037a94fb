"""The project's Dagster home: one instance for ``pond materialize``, ``pond ui``,
``dagster dev``, ``dagster-webserver`` and ``dagster-daemon``.

The home is env ``DAGSTER_HOME`` when the user set it, else ``.dagster/`` beside
``pond.yaml``, created with a ``dagster.yaml`` on first use. Storage is Dagster's default:
SQLite files under the home. Runs launched from the UI, a schedule or a sensor are queued
and started by the daemon (``pond ui`` and ``dagster dev`` run one); ``pond materialize``
runs in its own process and records its run there too.
"""

import json
import os
from pathlib import Path

from dagster import DagsterInstance

from pond_pipeline.errors import ConfigError

HOME_FOLDER = ".dagster"
WORKSPACE_FILE = "workspace.yaml"
CODE_LOCATION = "pond_pipeline.orchestration.definitions"

DAGSTER_YAML = """\
# pond: this project's Dagster instance (DAGSTER_HOME), written by the first `pond
# materialize` or `pond ui`. Storage is Dagster's default: SQLite files in this folder.
# Runs launched by the UI, schedules and sensors are queued; the daemon (`pond ui`,
# `dagster dev`, or `dagster-daemon run`) starts them.
telemetry:
  enabled: false
"""


def dagster_home(folder: Path) -> Path:
    """``DAGSTER_HOME`` if set (it must be a folder), else ``<folder>/.dagster``, made with
    its ``dagster.yaml`` the first time; ``folder`` is the one holding ``pond.yaml``."""
    chosen = os.environ.get("DAGSTER_HOME")
    if chosen:
        home = Path(chosen).expanduser().resolve()
        if not home.is_dir():
            raise ConfigError(
                "is not a folder",
                subject=f"DAGSTER_HOME {chosen}",
                hint="create it, or unset DAGSTER_HOME to use the project's .dagster/",
            )
        return home
    home = folder.resolve() / HOME_FOLDER
    settings = home / "dagster.yaml"
    if not settings.exists():
        home.mkdir(parents=True, exist_ok=True)
        temporary = home / f"dagster.yaml.{os.getpid()}.tmp"
        temporary.write_text(DAGSTER_YAML)
        temporary.replace(settings)  # never a half-written file for a concurrent reader
    return home


def open_instance(folder: Path) -> DagsterInstance:
    """The project's instance (close it with ``dispose()`` or use it in ``with``)."""
    return DagsterInstance.from_config(str(dagster_home(folder)))


def workspace_file(folder: Path, home: Path) -> Path:
    """``workspace.yaml`` beside ``pond.yaml`` if there is one, else one written into the
    home that loads the code location from ``folder``."""
    beside = folder / WORKSPACE_FILE
    if beside.exists():
        return beside.resolve()
    written = home / WORKSPACE_FILE
    written.write_text(
        "# pond: the project's code location (written by `pond ui`)\n"
        "load_from:\n"
        "  - python_module:\n"
        f"      module_name: {CODE_LOCATION}\n"
        f"      working_directory: {_yaml_string(str(folder.resolve()))}\n"
    )
    return written


def _yaml_string(text: str) -> str:
    """A double-quoted YAML scalar (JSON's escaping is valid YAML)."""
    return json.dumps(text)
