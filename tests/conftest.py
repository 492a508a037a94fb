"""Shared fixtures: an empty pond, a pond with one node of each kind, and the CLI.

``sample_pond`` holds (transactions 1..4)::

    /sensors/                  directory
    /sensors/readings.series   3 versions (txn 2, 3, 4): day 1, 2, 3 of hourly readings
    /sensors/stations.table    1 version (txn 2)
    /notes.txt                 data (txn 2)
    /latest -> /sensors/readings.series   symlink (txn 2)
"""

import os
import re
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from click.testing import CliRunner, Result

from pond_pipeline.api import Pond
from pond_pipeline.cli.main import cli

BASE_TIME = datetime(2024, 1, 1, tzinfo=UTC)
READINGS_PER_VERSION = 4
NOTES = b"field notes\nsensor 7 replaced on day 2\n"


def _dead_spill_folders() -> set[str]:
    """``pond-duckdb-*`` folders in the system temp folder whose process is gone."""
    left = set()
    for entry in os.scandir(tempfile.gettempdir()):
        if not entry.name.startswith("pond-duckdb-"):
            continue
        match = re.match(r"^pond-duckdb-\d+-(\d+)-\d+$", entry.name)
        if match is not None:
            try:
                os.kill(int(match[1]), 0)
                continue  # its process still runs (another xdist worker, this one)
            except ProcessLookupError:
                pass
            except PermissionError:
                continue
        left.add(entry.name)
    return left


@pytest.fixture(scope="session", autouse=True)
def no_spill_folders_left() -> Iterator[None]:
    """DuckDB spill folders do not outlive their processes (issue 12): none left by
    this run's processes (other runs on the machine may have left some: compared)."""
    before = _dead_spill_folders()
    yield
    left = _dead_spill_folders() - before
    assert not left, f"spill folders left behind in {tempfile.gettempdir()}: {sorted(left)}"


def readings(version: int, rows: int = READINGS_PER_VERSION) -> pa.Table:
    """Version ``version`` (1-based) of the sample series: hourly rows on day ``version``."""
    start = BASE_TIME + timedelta(days=version - 1)
    return pa.table(
        {
            "ts": pa.array(
                [start + timedelta(hours=i) for i in range(rows)], pa.timestamp("us", tz="UTC")
            ),
            "sensor": [f"s{(version * 10 + i) % 3}" for i in range(rows)],
            "value": [float(version * 100 + i) for i in range(rows)],
        }
    )


def stations() -> pa.Table:
    return pa.table(
        {"station": ["north", "south", "east"], "height": pa.array([12, 340, 55], pa.int64())}
    )


@dataclass(frozen=True)
class Sample:
    """What ``sample_pond`` holds, so tests compare against generated values."""

    readings: Callable[..., pa.Table] = readings
    stations: Callable[[], pa.Table] = stations
    notes: bytes = NOTES
    base_time: datetime = BASE_TIME
    series: str = "/sensors/readings.series"
    table: str = "/sensors/stations.table"
    data: str = "/notes.txt"
    link: str = "/latest"
    directory: str = "/sensors"


@pytest.fixture
def sample() -> Sample:
    return Sample()


@pytest.fixture
def pond_path(tmp_path: Path) -> Path:
    return tmp_path / "pond"


@pytest.fixture
def pond(pond_path: Path) -> Pond:
    """An empty pond in ``tmp_path`` (one transaction: init)."""
    return Pond.create(str(pond_path))


@pytest.fixture
def sample_pond(pond: Pond, sample: Sample) -> Pond:
    """``pond`` with one node of each kind; see the module docstring."""
    with pond.transaction("sample") as tx:
        tx.mkdir(sample.directory)
        tx.write_table(sample.series, readings(1), "series")
        tx.write_table(sample.table, stations(), "table")
        tx.write_bytes(sample.data, NOTES)
        tx.symlink(sample.link, sample.series)
    for version in (2, 3):
        with pond.transaction(f"append day {version}") as tx:
            tx.write_table(sample.series, readings(version), "series")
    return pond


@pytest.fixture
def run(pond_path: Path) -> Callable[..., Result]:
    """``run("list", "--long")``: the CLI on ``pond_path`` (or ``pond=...``), in process.

    Unexpected exceptions propagate (so a crash is never mistaken for a clean error);
    ``result.stdout``/``result.stderr`` are separate, ``result.stdout_bytes`` is raw.
    """

    def invoke(
        *args: str, pond: Path | str | None = None, input: bytes | str | None = None, **kw: Any
    ) -> Result:
        uri = str(pond if pond is not None else pond_path)
        return CliRunner().invoke(
            cli, ["--pond", uri, *args], input=input, catch_exceptions=False, **kw
        )

    return invoke


@pytest.fixture
def host_file(tmp_path: Path) -> Callable[[str, str | bytes], Path]:
    """``host_file("a.csv", "ts,v\\n...")``: a file on the host, outside the pond."""
    folder = tmp_path / "host"

    def write(name: str, content: str | bytes) -> Path:
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, str):
            path.write_text(content)
        else:
            path.write_bytes(content)
        return path

    return write


@dataclass(frozen=True)
class PondState:
    """Everything a failed command must leave as it was."""

    oplog_version: int
    transactions: int
    nodes: tuple[tuple[str, str, int, int | None], ...]
    blobs: tuple[str, ...]
    scratch: tuple[str, ...]
    """Temporary files of writers (``tmp/``): a refused write leaves none behind."""


@pytest.fixture
def pond_state(pond_path: Path) -> Callable[[], PondState]:
    """``before = pond_state()`` ... ``assert pond_state() == before``."""

    def capture() -> PondState:
        opened = Pond.open(str(pond_path))
        return PondState(
            opened.oplog.version(),
            len(opened.log()),
            tuple((i.path, i.entry_type.value, i.versions, i.size) for i in opened.list_nodes()),
            tuple(opened.blobs.all_shas()),
            tuple(sorted(p.name for p in opened.location.scratch.glob("*"))),
        )

    return capture


def error_line(result: Result) -> str:
    """The single ``Error: ...`` line of a failed command (without the prefix)."""
    lines = [line for line in result.stderr.splitlines() if line.startswith("Error: ")]
    assert len(lines) == 1, result.stderr
    return lines[0].removeprefix("Error: ")


@pytest.fixture
def error() -> Callable[[Result], str]:
    return error_line
