"""The example pipeline (``pond.yaml`` + ``examples/`` + ``workspace.yaml``) copied into
``tmp_path``, with the working directory and ``POND_CONFIG`` pointing there, so nothing
is ever written into the repository; and helpers to build and run its definitions."""

import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import pytest

from pond_pipeline.api import Pond
from pond_pipeline.orchestration.assets import asset_key
from pond_pipeline.orchestration.build import build_definitions

REPO = Path(__file__).resolve().parents[2]
SENSORS = ("east", "north", "south")
PATHS = (  # the nodes pond.yaml declares, in its order
    "/sensor_logs",
    "/processed/sensor_series",
    "/clean",
    "/reduced",
    "/analytics/north_south.series",
    "/analytics/daily_summary.series",
    "/analytics/warm_days.series",
    "/reports/sensors.md",
)
ENTRIES = ("/clean/north.series", "/clean/south.series", "/clean/east.series")
"""The entries ``/clean`` (a ``dynamic_dir``) declares: an asset each."""


@dataclass(frozen=True)
class Project:
    """A folder holding a ``pond.yaml`` (its pond in ``.pond`` next to it)."""

    folder: Path

    @property
    def config(self) -> Path:
        return self.folder / "pond.yaml"

    @property
    def pond_path(self) -> Path:
        return self.folder / ".pond"

    @property
    def data(self) -> Path:
        return self.folder / "examples" / "data"

    def open(self) -> Pond:
        return Pond.open(str(self.pond_path))

    def edit(self, old: str, new: str) -> None:
        """Replace ``old`` (which must occur once) in ``pond.yaml``."""
        text = self.config.read_text()
        assert text.count(old) == 1, old
        self.config.write_text(text.replace(old, new))

    def definitions(self) -> dg.Definitions:
        return build_definitions(str(self.config))

    def materialize(self, *paths: str, raise_on_error: bool = True) -> dg.ExecuteInProcessResult:
        """One in-process Dagster run of ``paths`` (default: every node of the pipeline)."""
        return run_definitions(self.definitions(), paths, raise_on_error=raise_on_error)


def run_definitions(
    defs: dg.Definitions, paths: Sequence[str] = (), *, raise_on_error: bool = True
) -> dg.ExecuteInProcessResult:
    assets = [a for a in defs.assets or [] if isinstance(a, (dg.AssetsDefinition, dg.AssetSpec))]
    return dg.materialize(
        assets,
        resources=dict(defs.resources or {}),
        selection=[asset_key(p) for p in paths] or None,
        instance=dg.DagsterInstance.ephemeral(),
        raise_on_error=raise_on_error,
    )


def copy_example(folder: Path) -> Project:
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(REPO / "pond.yaml", folder / "pond.yaml")
    shutil.copy(REPO / "workspace.yaml", folder / "workspace.yaml")
    shutil.copytree(REPO / "examples", folder / "examples")
    return Project(folder)


@pytest.fixture
def example(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Project:
    """The example pipeline in ``tmp_path/project``; no pond yet."""
    project = copy_example(tmp_path / "project")
    monkeypatch.chdir(project.folder)
    monkeypatch.setenv("POND_CONFIG", str(project.config))
    monkeypatch.delenv("POND", raising=False)
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    return project


@dataclass(frozen=True)
class Run:
    project: Project
    result: dg.ExecuteInProcessResult


@pytest.fixture(scope="session")
def materialized_once(tmp_path_factory: pytest.TempPathFactory) -> Run:
    """The example after one Dagster run of every node, shared: only read it."""
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("POND", raising=False)
        project = copy_example(tmp_path_factory.mktemp("materialized") / "project")
        return Run(project, project.materialize())


@pytest.fixture
def materialized(
    materialized_once: Run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Project:
    """A private copy of ``materialized_once``'s folder and pond (cwd and env set)."""
    folder = tmp_path / "project"
    shutil.copytree(materialized_once.project.folder, folder)
    monkeypatch.chdir(folder)
    monkeypatch.setenv("POND_CONFIG", str(folder / "pond.yaml"))
    monkeypatch.delenv("POND", raising=False)
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    return Project(folder)


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Project:
    """An empty folder for a hand-written ``pond.yaml`` (cwd and ``POND_CONFIG`` set)."""
    folder = tmp_path / "own"
    folder.mkdir()
    monkeypatch.chdir(folder)
    monkeypatch.setenv("POND_CONFIG", str(folder / "pond.yaml"))
    monkeypatch.delenv("POND", raising=False)
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    return Project(folder)
