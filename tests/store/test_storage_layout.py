"""README "Storage layout": a pond read with deltalake + pyarrow alone, by its recipe.

The README's example is executed as written (taken out of README.md), so the document
cannot drift from the format: every path must read as the API reads it.
"""

import json
import re
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.ipc as ipc
import pytest
from deltalake import DeltaTable

from pond_pipeline.api import Pond
from pond_pipeline.errors import NotFoundError
from pond_pipeline.project.materialize import materialize
from pond_pipeline.store.blobs import sha256_bytes
from pond_pipeline.store.oplog import OPLOG_SCHEMA

README = Path(__file__).resolve().parents[2] / "README.md"
INLINE_THRESHOLD = 4096
START = datetime(2024, 3, 1, tzinfo=UTC)
SERIES = "/site/north/temps.series"
TABLE = "/site/stations.table"
NOTES = "/site/notes.txt"
REMOVED = "/site/old.txt"
DYNAMIC = "/derived/warm.series"
DYNAMIC_CONFIG = {"source": SERIES, "query": "SELECT * FROM source WHERE value > 10"}
MATERIALIZED = "/derived/kept.series"
CSV_DIR = "/derived/loggers"
CSV_CONFIG = {"pattern": "/site/*.csv", "type": "series", "temporal_column": "timestamp"}
LOGGER_CSV = b"timestamp,v\n2024-03-01T00:00:00Z,1.5\n2024-03-01T01:00:00Z,2.5\n"
NOTES_BYTES = b"logger 7 moved on day 2\n"
OLD_BYTES = b"to be removed"


def section() -> str:
    text = README.read_text()
    assert "\n## Storage layout\n" in text, "README.md has no '## Storage layout' section"
    return text.split("\n## Storage layout\n", 1)[1].split("\n## ", 1)[0]


def example_code() -> str:
    blocks = re.findall(r"```python\n(.*?)```", section(), re.DOTALL)
    assert len(blocks) == 1, "the section should hold exactly one python example"
    return str(blocks[0])


def readings(day: int, rows: int, *, humidity: bool = False) -> pa.Table:
    start = START + timedelta(days=day)
    columns: dict[str, Any] = {
        "ts": pa.array(
            [start + timedelta(minutes=i) for i in range(rows)], pa.timestamp("us", tz="UTC")
        ),
        "value": [float(day * 10 + i % 7) for i in range(rows)],
    }
    if humidity:
        columns["humidity"] = pa.array([i % 100 for i in range(rows)], pa.int32())
    return pa.table(columns)


def stations(*names: str) -> pa.Table:
    return pa.table({"station": list(names), "height": pa.array(range(len(names)), pa.int64())})


@dataclass(frozen=True)
class Built:
    root: Path
    pond: Pond
    txn_first: int
    """The transaction after which the table had one version and old.txt existed."""
    txn_removed: int


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    """A pond with a nested directory, a 3-version series (inline, blob with an extra
    column, inline), a replaced table, data files, symlinks, a removed file, a dynamic
    node never materialized, and a materialized dynamic series and directory."""
    root = tmp_path_factory.mktemp("layout") / "pond"
    pond = Pond.create(str(root), inline_threshold=INLINE_THRESHOLD)
    with pond.transaction("build") as tx:
        tx.mkdir("/site/north", parents=True)
        tx.write_table(SERIES, readings(0, 3), "series")
        tx.write_table(TABLE, stations("north", "south"), "table")
        tx.write_bytes(NOTES, NOTES_BYTES)
        tx.write_bytes(REMOVED, OLD_BYTES)
        tx.symlink("/latest", "site/north/temps.series")  # relative to the root
        tx.symlink("/site/north/notes", "../notes.txt")
        first = tx.txn_seq
    with pond.transaction("grow") as tx:
        tx.write_table(SERIES, readings(1, 3000, humidity=True), "series")
        tx.write_table(TABLE, stations("north", "south", "east"), "table")
    with pond.transaction("remove") as tx:
        tx.write_table(SERIES, readings(3, 2), "series")
        tx.remove(REMOVED)
        removed = tx.txn_seq
    pond.create_dynamic(DYNAMIC, "sql_derived_series", DYNAMIC_CONFIG)
    pond.create_dynamic(MATERIALIZED, "sql_derived_series", DYNAMIC_CONFIG)
    with pond.transaction("loggers") as tx:
        tx.write_bytes("/site/logger.csv", LOGGER_CSV)
    pond.create_dynamic(CSV_DIR, "csv_directory", CSV_CONFIG)
    assert materialize(pond, MATERIALIZED).written == 1
    assert materialize(pond, CSV_DIR).written == 2  # the directory and its one child
    return Built(root, Pond.open(str(root)), first, removed)


@pytest.fixture(scope="module")
def recipe() -> dict[str, Any]:
    """The README example's functions (executed as a module, not as ``__main__``)."""
    code = example_code()
    assert "pond_pipeline" not in code
    namespace: dict[str, Any] = {"__name__": "readme_storage_layout"}
    exec(compile(code, f"{README}:storage-layout", "exec"), namespace)
    return namespace


@pytest.fixture(scope="module")
def read(recipe: dict[str, Any], built: Built) -> Callable[..., Any]:
    def call(path: str, at: int | None = None) -> Any:
        return recipe["read"](str(built.root), path, at)

    return call


def oplog_rows(root: Path) -> list[dict[str, Any]]:
    scan = DeltaTable(str(root / "oplog")).scan()  # scan(): no abort at exit
    rows: list[dict[str, Any]] = pa.RecordBatchReader.from_stream(scan).read_all().to_pylist()
    return rows


def series_rows(built: Built) -> list[dict[str, Any]]:
    node_id = built.pond.node(SERIES).node_id
    rows = [r for r in oplog_rows(built.root) if r["node_id"] == node_id]
    return sorted(rows, key=lambda r: r["version"])


# -- the recipe reads what the API reads ------------------------------------------------------
def test_a_series_is_the_union_of_its_inline_and_blob_versions(
    built: Built, read: Callable[..., Any]
) -> None:
    rows = series_rows(built)
    assert [(r["blob"] is None, r["content"] is None) for r in rows] == [
        (True, False),
        (False, True),
        (True, False),
    ]
    table = read(SERIES)
    assert table.num_rows == 3 + 3000 + 2
    assert table.column_names == ["ts", "value", "humidity"]
    assert table.equals(built.pond.read_table(SERIES))
    assert table.column("humidity").null_count == 3 + 2  # the versions without it


def test_a_replaced_table_reads_as_its_newest_version(
    built: Built, read: Callable[..., Any]
) -> None:
    table = read(TABLE)
    assert table.equals(built.pond.read_table(TABLE))
    assert table.equals(stations("north", "south", "east"))


def test_data_files_and_symlinks(built: Built, read: Callable[..., Any]) -> None:
    assert read(NOTES) == built.pond.read_bytes(NOTES) == NOTES_BYTES
    assert read("/site/north/notes") == NOTES_BYTES  # a link with `..`
    assert read("/site/./north/../notes.txt") == NOTES_BYTES
    assert read("/latest").equals(built.pond.read_table("/latest"))
    assert read("/latest/").equals(read(SERIES))


def test_a_removed_file_is_not_found_but_its_rows_stay(
    built: Built, read: Callable[..., Any], recipe: dict[str, Any]
) -> None:
    with pytest.raises(NotFoundError):
        built.pond.read_bytes(REMOVED)
    with pytest.raises(FileNotFoundError, match=re.escape(REMOVED)):
        read(REMOVED)
    with pytest.raises(FileNotFoundError, match="/nowhere"):
        read("/nowhere/file")
    kept = [r for r in oplog_rows(built.root) if r["sha256"] == sha256_bytes(OLD_BYTES)]
    assert len(kept) == 1
    assert read(REMOVED, built.txn_removed - 1) == OLD_BYTES
    nodes = recipe["node_versions"](str(built.root))
    assert kept[0]["node_id"] in nodes  # still in the oplog, just not listed


def test_time_travel_by_txn_seq(built: Built, read: Callable[..., Any]) -> None:
    at = built.txn_first
    assert read(TABLE, at).equals(built.pond.read_table(TABLE, at=at))
    assert read(TABLE, at).equals(stations("north", "south"))
    assert read(SERIES, at).equals(built.pond.read_table(SERIES, at=at))
    assert read(SERIES, at).equals(readings(0, 3))
    assert read(SERIES, built.txn_removed - 1).num_rows == 3 + 3000
    with pytest.raises(FileNotFoundError):
        read(NOTES, 1)  # transaction 1 is `init`: an empty root


def test_a_dynamic_node_holds_its_factory_and_config(
    built: Built, read: Callable[..., Any], recipe: dict[str, Any]
) -> None:
    nodes = recipe["node_versions"](str(built.root))
    row = recipe["walk"](nodes, DYNAMIC)
    assert row["factory"] == "sql_derived_series"
    assert row["entry_type"] == "file:series"
    assert json.loads(row["content"]) == DYNAMIC_CONFIG
    assert row["blob"] is None  # not materialized: produced on read
    with pytest.raises(LookupError, match="never materialized"):
        read(DYNAMIC)


def test_materialized_dynamic_nodes_read_from_their_blob(
    built: Built, read: Callable[..., Any], recipe: dict[str, Any]
) -> None:
    child = f"{CSV_DIR}/logger.series"
    for path in (MATERIALIZED, child):
        assert read(path).equals(built.pond.read_table(path)), path
    assert read(child).column("v").to_pylist() == [1.5, 2.5]
    nodes = recipe["node_versions"](str(built.root))
    series = recipe["walk"](nodes, MATERIALIZED)
    assert series["blob"] is not None
    assert "fingerprint" in json.loads(series["extended_attributes"])
    assert [v["blob"] is None for v in nodes[series["node_id"]]] == [True, False]
    directory = recipe["walk"](nodes, CSV_DIR)
    assert (directory["factory"], json.loads(directory["content"])) == (
        "csv_directory",
        CSV_CONFIG,
    )
    stored = recipe["walk"](nodes, child)
    assert json.loads(directory["extended_attributes"])["listing"] == {
        "logger.series": [stored["node_id"], "file:series"]
    }
    assert stored["part_id"] == directory["node_id"]


def test_the_example_runs_as_a_script_without_pond(built: Built, tmp_path: Path) -> None:
    """As a user runs it: a fresh interpreter where pond_pipeline cannot be imported,
    which must also exit cleanly (deltalake may abort at exit when read carelessly)."""
    script = tmp_path / "read_pond.py"
    script.write_text(example_code())
    boot = (
        "import runpy, sys; sys.modules['pond_pipeline'] = None; sys.argv = sys.argv[1:]; "
        "runpy.run_path(sys.argv[0], run_name='__main__')"
    )

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-c", boot, str(script), str(built.root), *args],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    series = run(SERIES)
    assert series.returncode == 0, series.stderr
    assert "humidity: int32" in series.stdout
    notes = run(NOTES)
    assert (notes.returncode, notes.stdout.strip()) == (0, repr(NOTES_BYTES)), notes.stderr
    gone = run(REMOVED)
    assert gone.returncode == 1
    assert "FileNotFoundError: /site/old.txt" in gone.stderr
    assert "terminate called" not in series.stderr + notes.stderr + gone.stderr
    old = run(REMOVED, str(built.txn_removed - 1))
    assert (old.returncode, old.stdout.strip()) == (0, repr(OLD_BYTES)), old.stderr


# -- the section describes what is stored ----------------------------------------------------
_TYPES = {
    "string": pa.string(),
    "int64": pa.int64(),
    "binary": pa.binary(),
    "timestamp[us, UTC]": pa.timestamp("us", tz="UTC"),
}


def test_the_column_table_matches_the_oplog_schema() -> None:
    documented: dict[str, pa.DataType] = {}
    for names, kind in re.findall(r"^\| ((?:`\w+`(?:, )?)+) \| ([^|]+?) \|", section(), re.M):
        base = kind.removesuffix(", null")
        if base in _TYPES:
            for name in re.findall(r"`(\w+)`", names):
                documented[name] = _TYPES[base]
    assert documented == {f.name: f.type for f in OPLOG_SCHEMA}


def test_the_section_names_every_folder_attribute_and_setting(built: Built) -> None:
    text = section()
    for entry in built.root.iterdir():
        assert f"`{entry.name}{'/' if entry.is_dir() else ''}`" in text, entry.name
    assert "`oplog/_pond_checksums/`" in text
    assert (built.root / "oplog" / "_pond_checksums").is_dir()
    for key in json.loads((built.root / "pond.json").read_text()):
        assert f'"{key}"' in text, key
    for row in oplog_rows(built.root):
        for key in json.loads(row["extended_attributes"] or "{}"):
            assert f"`{key}`" in text, key


def test_listings_and_blobs_are_stored_as_documented(built: Built) -> None:
    rows = oplog_rows(built.root)
    root_id = "00000000-0000-0000-0000-000000000000"
    assert f"`{root_id}`" in section()
    root = max((r for r in rows if r["node_id"] == root_id), key=lambda r: r["version"])
    assert (root["part_id"], root["entry_type"], root["factory"]) == (
        root_id,
        "directory",
        "tlogfs",
    )
    listing = ipc.open_stream(root["content"]).read_all()
    assert listing.schema.names == ["name", "node_id", "entry_type"]
    assert listing.column("name").to_pylist() == ["derived", "latest", "site"]  # sorted
    assert root["size"] == listing.num_rows
    blob = series_rows(built)[1]
    path = built.root / "blobs" / blob["blob"][:2] / blob["blob"]
    assert sha256_bytes(path.read_bytes()) == blob["blob"] == blob["sha256"]
    assert blob["size"] == path.stat().st_size > INLINE_THRESHOLD
    assert blob["min_event_time"] == int((START + timedelta(days=1)).timestamp() * 1_000_000)
