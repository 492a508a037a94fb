"""Corruption is detected, not served.

Each test damages one part of a copy of a small pond: a blob (a flipped byte,
truncated, deleted), a Delta commit file (truncated, garbage, a line cut, deleted), a
checkpoint, ``_last_checkpoint``, a data file of the oplog (truncated, deleted, bytes
flipped anywhere, or an inline payload's bytes changed), a checksum record. Then
``pond cat`` either prints exactly the right bytes or fails with one ``Error:`` line
naming the node and version (or the damaged file); ``pond verify`` exits 1 naming it;
and other files stay readable where the damage allows.
"""

import json
import os
import random
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import Result

import pond_pipeline.store.oplog as oplog_module
from pond_pipeline.api import Pond
from pond_pipeline.errors import PondError
from pond_pipeline.store.blobs import sha256_bytes
from pond_pipeline.store.integrity import CHECKSUM_FOLDER, LOG_FOLDER

INLINE_THRESHOLD = 1024
FILLER_COMMITS = 52  # enough for a Delta checkpoint (one every 50 commits)
COMPACT_AFTER = 16  # compact the template's oplog often: fewer files, faster opens
SEED = int(os.environ.get("POND_CORRUPTION_SEED") or random.randrange(1 << 30))


def series_version(day: int, rows: int) -> pa.Table:
    return pa.table(
        {
            "ts": pa.array(
                [(day * 86_400 + i) * 1_000_000 for i in range(rows)],
                pa.timestamp("us", tz="UTC"),
            ),
            "value": pa.array([float(day * 1000 + i) for i in range(rows)]),
        }
    )


FILES = {
    "/big.bin": b"B" * 16 + bytes(range(256)) * 20,  # a blob
    "/other.bin": b"O" * 16 + bytes(range(255, -1, -1)) * 24,  # another blob
    "/notes/small.txt": b"SMALL-INLINE-PAYLOAD:" + b"the quick brown fox " * 4,  # inline
    "/top.txt": b"top level inline\n",
}
SERIES = "/sensors/s.series"
LINK = "/link"  # -> /top.txt
DERIVED = "/derived.table"  # SQL over the series
TABLES = (SERIES, DERIVED)


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A pond with blobs, inline files, a symlink, a two-version series, a dynamic
    table and a checkpoint (its oplog compacted as it grew)."""
    root = tmp_path_factory.mktemp("template") / "pond"
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(oplog_module, "COMPACT_AFTER_FILES", COMPACT_AFTER)
        pond = Pond.create(str(root), inline_threshold=INLINE_THRESHOLD)
        with pond.transaction("files") as tx:
            for path, data in FILES.items():
                tx.write_bytes(path, data, parents=True)
            tx.write_table(SERIES, series_version(1, 400), "series", parents=True)  # a blob
            tx.symlink(LINK, "/top.txt")
        with pond.transaction("append") as tx:
            tx.write_table(SERIES, series_version(2, 3), "series")  # inline
            query = "SELECT count(*) AS n, sum(value) AS total FROM source"
            tx.create_dynamic(DERIVED, "sql_derived_table", {"source": SERIES, "query": query})
        for i in range(FILLER_COMMITS):
            pond.mkdir(f"/filler/d{i}", parents=True)
    assert list((root / "oplog" / LOG_FOLDER).glob("*.checkpoint.parquet"))
    return root


@pytest.fixture(scope="module")
def expected(template: Path) -> dict[str, Any]:
    """What every read of the intact pond returns."""
    return reads(template)


@pytest.fixture
def damaged(template: Path, tmp_path: Path) -> Path:
    """A fresh copy of the template pond, to damage."""
    root = tmp_path / "pond"
    # without the materialization cache, so derived reads go back to their sources
    shutil.copytree(
        template, root, ignore=lambda folder, _: ["cache"] if folder == str(template) else []
    )
    return root


def reads(root: Path) -> dict[str, Any]:
    """Every file's bytes (tables: rows), or the ``PondError`` its read raised (the CLI
    prints that as one ``Error:`` line). Any other exception fails the test."""
    try:
        pond = Pond.open(str(root))
        pond.snapshot()
    except PondError as exc:
        return dict.fromkeys([*FILES, LINK, *TABLES], exc)
    found: dict[str, Any] = {}
    for path in [*FILES, LINK, *TABLES]:
        try:
            if path in TABLES:
                found[path] = pond.read_table(path).to_pylist()
            else:
                found[path] = pond.read_bytes(path)
        except PondError as exc:
            found[path] = exc
    return found


def assert_served_or_refused(
    found: dict[str, Any], expected: dict[str, Any], *, naming: str | None = None
) -> list[str]:
    """Each read gave exactly the intact value or an error (naming ``naming``); the
    paths that were refused."""
    refused = []
    for path, value in found.items():
        if isinstance(value, PondError):
            assert "\n" not in value.message
            if naming is not None:
                assert naming in value.message, (path, value.message)
            refused.append(path)
        else:
            assert value == expected[path], path
    return refused


def blob_of(root: Path, path: str, version: int = 1) -> Path:
    record = Pond.open(str(root)).node(path).versions[version - 1]
    assert record.blob
    blob = root / "blobs" / record.blob[:2] / record.blob
    blob.chmod(0o644)
    return blob


def commit_files(root: Path) -> list[Path]:
    return sorted((root / "oplog" / LOG_FOLDER).glob("*.json"))


def data_file_of(root: Path, path: str) -> Path:
    """The oplog data file holding ``path``'s latest version."""
    pond = Pond.open(str(root))
    record = pond.node(path).latest
    assert record is not None
    files = pond.oplog._files(pond.oplog._table())  # the live data files
    for relative in files.column("path").to_pylist():
        table = pq.read_table(root / "oplog" / unquote(relative), columns=["node_id"])
        if record.node_id in table.column("node_id").to_pylist():
            return root / "oplog" / unquote(relative)
    raise AssertionError(f"no data file holds {path}")


def flip(path: Path, position: int) -> None:
    data = bytearray(path.read_bytes())
    data[position % len(data)] ^= 0x5A
    path.write_bytes(bytes(data))


def truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def verify_problems(
    cli_on: Callable[..., Result], root: Path, clean_error: Callable[[Result], str]
) -> tuple[str, list[str]]:
    """``pond verify`` on a damaged pond: its ``Error:`` line and ``problem:`` lines."""
    result = cli_on(root, "verify")
    line = clean_error(result)
    assert " problem(s) in " in line
    problems = [p.removeprefix("problem: ") for p in result.stderr.splitlines() if p]
    problems = [p for p in problems if not p.startswith(("note: ", "Error: "))]
    assert problems
    assert problems[0] in line
    return line, problems


# -- blobs -------------------------------------------------------------------------------
BLOB_DAMAGE: dict[str, Callable[[Path], None]] = {
    "first byte flipped": lambda p: flip(p, 0),
    "middle byte flipped": lambda p: flip(p, p.stat().st_size // 2),
    "last byte flipped": lambda p: flip(p, -1),
    "truncated": truncate,
    "deleted": lambda p: p.unlink(),
}


@pytest.mark.parametrize("damage", list(BLOB_DAMAGE))
def test_a_damaged_blob_of_a_file(
    damage: str, damaged: Path, expected, cli_on, clean_error: Callable[[Result], str]
) -> None:
    blob = blob_of(damaged, "/big.bin")
    BLOB_DAMAGE[damage](blob)
    what = "missing" if damage == "deleted" else "damaged"
    line = clean_error(cli_on(damaged, "cat", "/big.bin"))
    assert line.startswith(f"/big.bin: version 1 is corrupt: its blob {blob.name} is {what}")
    # only that file is refused
    assert assert_served_or_refused(reads(damaged), expected) == ["/big.bin"]
    error, problems = verify_problems(cli_on, damaged, clean_error)
    assert problems == [f"/big.bin version 1: blob {blob.name} is {what}"]
    assert error.startswith("1 problem(s) in ")


@pytest.mark.parametrize("damage", ["middle byte flipped", "truncated", "deleted"])
def test_a_damaged_blob_of_a_series_version(
    damage: str, damaged: Path, expected, cli_on, clean_error: Callable[[Result], str]
) -> None:
    blob = blob_of(damaged, SERIES, version=1)
    BLOB_DAMAGE[damage](blob)
    for args in ((), ("--sql", "SELECT count(*) FROM source"), ("--version", "1")):
        line = clean_error(cli_on(damaged, "cat", SERIES, *args))
        assert line.startswith(f"{SERIES}: version 1 is corrupt: its blob {blob.name} is ")
    # the series and what derives from it are refused; every other file reads
    refused = assert_served_or_refused(reads(damaged), expected, naming=f"{SERIES}: version 1")
    assert refused == [SERIES, DERIVED]
    # the series' other version still reads
    version_2 = Pond.open(str(damaged)).read_table(SERIES, version=2)
    assert version_2.to_pylist() == series_version(2, 3).to_pylist()
    _, problems = verify_problems(cli_on, damaged, clean_error)
    assert problems[0].startswith(f"{SERIES} version 1: blob {blob.name} is ")


# -- the Delta log -----------------------------------------------------------------------
def cut_adds(path: Path) -> None:
    """Drop the commit's data files: every line left is still valid JSON."""
    lines = path.read_text().splitlines()
    path.write_text("\n".join(line for line in lines if not line.startswith('{"add"')))


LOG_DAMAGE: dict[str, Callable[[Path], None]] = {
    "truncated": truncate,
    "garbage": lambda p: p.write_bytes(b"\x00garbage\xff" * 10),
    "adds cut": cut_adds,
    "deleted": lambda p: p.unlink(),
}


@pytest.mark.parametrize("damage", list(LOG_DAMAGE))
def test_a_damaged_latest_commit(
    damage: str, damaged: Path, expected, cli_on, clean_error: Callable[[Result], str]
) -> None:
    latest = commit_files(damaged)[-1]
    name = f"oplog/{LOG_FOLDER}/{latest.name}"
    LOG_DAMAGE[damage](latest)
    if damage in ("truncated", "garbage"):
        assert name in clean_error(cli_on(damaged, "cat", "/top.txt"))
    # reads fail naming the file, or (its data files cut, or the whole file gone:
    # Delta sees the pond as it was before that commit) serve the earlier state
    assert_served_or_refused(reads(damaged), expected, naming=name)
    error, problems = verify_problems(cli_on, damaged, clean_error)
    assert problems[0].startswith(f"{name} is "), problems
    assert name in error
    gc = clean_error(cli_on(damaged, "gc"))
    assert gc.startswith(f"{damaged}: gc removes nothing while the oplog is damaged: {name}")


@pytest.mark.parametrize("damage", ["truncated", "garbage", "adds cut"])
def test_a_damaged_commit_under_a_checkpoint(
    damage: str, damaged: Path, expected, cli_on, clean_error: Callable[[Result], str]
) -> None:
    """The latest state comes from the checkpoint: every file still reads."""
    commit = commit_files(damaged)[3]  # the "files" transaction
    name = f"oplog/{LOG_FOLDER}/{commit.name}"
    LOG_DAMAGE[damage](commit)
    assert assert_served_or_refused(reads(damaged), expected) == []
    _, problems = verify_problems(cli_on, damaged, clean_error)
    assert problems[0].startswith(f"{name} is damaged")
    log = cli_on(damaged, "log")  # Delta's history may read just the commitInfo line
    assert log.exit_code == 0 or name in clean_error(log)


def test_a_missing_commit_in_the_middle(
    damaged: Path, expected, cli_on, clean_error: Callable[[Result], str]
) -> None:
    commit = commit_files(damaged)[-5]
    commit.unlink()
    name = f"oplog/{LOG_FOLDER}/{commit.name}"
    assert name in clean_error(cli_on(damaged, "cat", "/top.txt"))
    assert len(assert_served_or_refused(reads(damaged), expected, naming=name)) == 7
    _, problems = verify_problems(cli_on, damaged, clean_error)
    assert problems == [f"{name} is missing (a gap in the commits); restore it from a backup"]


CHECKPOINT_DAMAGE: dict[str, Callable[[Path], None]] = {
    "truncated": truncate,
    "garbage": lambda p: p.write_bytes(b"PAR1" + b"\x00" * 100 + b"PAR1"),
    "middle byte flipped": lambda p: flip(p, p.stat().st_size // 2),
}


@pytest.mark.parametrize("damage", list(CHECKPOINT_DAMAGE))
def test_a_damaged_checkpoint(
    damage: str, damaged: Path, expected, cli_on, clean_error: Callable[[Result], str]
) -> None:
    (checkpoint,) = (damaged / "oplog" / LOG_FOLDER).glob("*.checkpoint.parquet")
    name = f"oplog/{LOG_FOLDER}/{checkpoint.name}"
    CHECKPOINT_DAMAGE[damage](checkpoint)
    assert_served_or_refused(reads(damaged), expected, naming=name)
    _, problems = verify_problems(cli_on, damaged, clean_error)
    assert problems[0].startswith(f"{name} is damaged")
    assert "delete it and _delta_log/_last_checkpoint" in problems[0]
    # the hint works: the commits rebuild the state
    checkpoint.unlink()
    (damaged / "oplog" / LOG_FOLDER / "_last_checkpoint").unlink()
    assert cli_on(damaged, "verify").exit_code == 0
    assert assert_served_or_refused(reads(damaged), expected) == []


def test_a_damaged_last_checkpoint_hint(
    damaged: Path, expected, cli_on, clean_error: Callable[[Result], str]
) -> None:
    (damaged / "oplog" / LOG_FOLDER / "_last_checkpoint").write_text("{not json")
    assert assert_served_or_refused(reads(damaged), expected) == []
    _, problems = verify_problems(cli_on, damaged, clean_error)
    assert problems[0].startswith(f"oplog/{LOG_FOLDER}/_last_checkpoint is damaged")


# -- the oplog's data files (inline payloads, listings, every version's row) ------------
def test_a_truncated_or_deleted_data_file(
    damaged: Path, expected, cli_on, clean_error: Callable[[Result], str]
) -> None:
    data_file = data_file_of(damaged, "/notes/small.txt")
    name = f"oplog/{data_file.relative_to(damaged / 'oplog')}"
    truncate(data_file)
    assert name in clean_error(cli_on(damaged, "cat", "/notes/small.txt"))
    assert_served_or_refused(reads(damaged), expected, naming=name)
    _, problems = verify_problems(cli_on, damaged, clean_error)
    assert problems[0].startswith(f"{name} is damaged")
    data_file.unlink()
    assert_served_or_refused(reads(damaged), expected, naming=name)
    _, problems = verify_problems(cli_on, damaged, clean_error)
    assert problems[0] == f"{name} is missing; restore it from a backup"


def test_an_inline_payload_changed_in_its_data_file(
    damaged: Path, expected, cli_on, clean_error: Callable[[Result], str]
) -> None:
    """The bytes still decode (Snappy keeps short literals as is): the data file's
    recorded sha256 catches it before it is read, and the payload's own sha256 too."""
    data_file = data_file_of(damaged, "/notes/small.txt")
    name = f"oplog/{data_file.relative_to(damaged / 'oplog')}"
    raw = data_file.read_bytes()
    at = raw.index(b"SMALL-INLINE-PAYLOAD")
    data_file.write_bytes(raw[:at] + b"X" + raw[at + 1 :])
    line = clean_error(cli_on(damaged, "cat", "/notes/small.txt"))
    assert line.startswith(f"{damaged}: the oplog cannot be read: {name} is damaged (its sha256")
    assert assert_served_or_refused(reads(damaged), expected) == ["/notes/small.txt"]
    # without the data file's checksum, the payload's own sha256 refuses it
    (damaged / "oplog" / CHECKSUM_FOLDER / "files" / f"{data_file.name}.sha256").unlink()
    line = clean_error(cli_on(damaged, "cat", "/notes/small.txt"))
    assert line.startswith("/notes/small.txt: version 1 is corrupt: its inline bytes do not match")
    _, problems = verify_problems(cli_on, damaged, clean_error)
    assert problems[0].startswith(f"{name} is damaged (its sha256 differs from the one recorded")
    assert (
        f"/notes/small.txt version 1: inline bytes that do not match their sha256 in {name}"
        in problems
    )


@pytest.mark.parametrize("trial", range(16))
def test_a_byte_flipped_anywhere_in_a_data_file(
    trial: int, damaged: Path, expected, cli_on, clean_error: Callable[[Result], str]
) -> None:
    """Parquet has no checksum: a flip may decode to a plausible wrong value. Reads
    never serve a wrong file or row (they may serve stale structure, see the README),
    and verify always names the damaged data file."""
    rng = random.Random(f"{SEED}-{trial}")
    data_file = data_file_of(damaged, rng.choice(["/notes/small.txt", "/top.txt"]))
    position = rng.randrange(data_file.stat().st_size)
    flip(data_file, position)
    context = f"POND_CORRUPTION_SEED={SEED} trial {trial}: byte {position} of {data_file.name}"
    try:
        assert_served_or_refused(reads(damaged), expected)
        name = f"oplog/{data_file.relative_to(damaged / 'oplog')}"
        _, problems = verify_problems(cli_on, damaged, clean_error)
        assert any(p.startswith(f"{name} is damaged") for p in problems), problems
    except AssertionError as exc:
        raise AssertionError(f"{context}: {exc}") from exc


def test_a_damaged_checksum_record(
    damaged: Path, expected, cli_on, clean_error: Callable[[Result], str]
) -> None:
    record = sorted((damaged / "oplog" / CHECKSUM_FOLDER).glob("*.json"))[2]
    record.write_text("{")
    assert assert_served_or_refused(reads(damaged), expected) == []
    _, problems = verify_problems(cli_on, damaged, clean_error)
    assert problems[0].startswith(f"oplog/{CHECKSUM_FOLDER}/{record.name} is damaged")


def test_the_intact_template_verifies_clean(template: Path, expected, cli_on) -> None:
    result = cli_on(template, "verify")
    assert result.exit_code == 0
    assert result.stderr == ""
    assert expected["/link"] == FILES["/top.txt"]
    assert expected[DERIVED] == [{"n": 403, "total": pytest.approx(1000 * 400 + 79800 + 6003)}]
    checksums: dict[str, Any] = json.loads(
        sorted((template / "oplog" / CHECKSUM_FOLDER).glob("*.json"))[-1].read_text()
    )
    latest = commit_files(template)[-1]
    assert checksums["commit"] == sha256_bytes(latest.read_bytes())
