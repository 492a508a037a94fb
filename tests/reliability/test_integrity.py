"""What the pond stores is what it serves (issue 12, items 1-3).

- A blob damaged on disk is never inherited: a later write of the same bytes, by any
  writer, rewrites it, and the new version reads back exactly.
- A host file that changes while it is imported (simulated deterministically: the
  file is rewritten on disk right after the pond's first read of it) is refused with
  "changed while reading", or, when the change leaves no trace a stat can see, stored
  exactly as it was read (its sha256 names the bytes stored); never a version that
  cannot be read.
- A flipped byte anywhere in a cache entry (its .parquet, .bin or .json) never yields
  wrong rows or bytes, nor a traceback: the entry is dropped and recomputed; `pond
  verify` notes it and names `pond cache clear`.
- `--version N` on a materialized dynamic node reads version N's stored rows or bytes.
"""

import io
import json
import os
import random
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import Result

import pond_pipeline.fs.host_files as host_files_module
from pond_pipeline.api import Pond
from pond_pipeline.errors import ConflictError, CorruptionError, NotFoundError
from pond_pipeline.project.materialize import materialize
from pond_pipeline.store.blobs import CHUNK, sha256_bytes

from .conftest import assert_clean_error, payload, pond_cli

BIG = 3 * CHUNK + 12_345  # read in several chunks, far above the inline threshold


def readings(start: int, rows: int) -> pa.Table:
    return pa.table(
        {
            "ts": pa.array(
                [(start + i) * 60_000_000 for i in range(rows)], pa.timestamp("us", tz="UTC")
            ),
            "value": pa.array([float(start + i) / 7 for i in range(rows)]),
        }
    )


def csv_text(rows: int) -> str:
    """A logger CSV, one reading a second (values that compress poorly)."""
    lines = ["ts,value"]
    start = datetime(2024, 1, 1)
    lines += [f"{start + timedelta(seconds=i)},{(i * 7919) % 10007 / 13}" for i in range(rows)]
    return "\n".join(lines) + "\n"


def blob_of(pond: Pond, path: str) -> Path:
    latest = pond.node(path).latest
    assert latest is not None
    assert latest.blob, f"{path} is not a blob"
    return pond.blobs.path(latest.blob)


def flip(path: Path, offset: int, mask: int = 0xFF) -> None:
    with path.open("r+b") as handle:
        handle.seek(offset)
        byte = handle.read(1)
        handle.seek(offset)
        handle.write(bytes([byte[0] ^ mask]))


def last_txn(root: Path) -> int:
    return Pond.open(str(root)).log(limit=1)[0].txn_seq


# -- 1. a damaged blob is not inherited -------------------------------------------------------
def _write_data(pond: Pond, host: Path, dest: str) -> None:
    with pond.transaction("copy") as tx:
        tx.copy(host, dest, "data")


def _write_parquet(pond: Pond, host: Path, dest: str) -> None:
    with pond.transaction("copy") as tx:
        tx.copy(host, dest, "table")


def _write_csv(pond: Pond, host: Path, dest: str) -> None:
    with pond.transaction("copy") as tx:
        tx.copy(host, dest, "series")


def _write_table(pond: Pond, host: Path, dest: str) -> None:
    pond.write_table(dest, pq.read_table(host), "table")


def _write_bytes(pond: Pond, host: Path, dest: str) -> None:
    with pond.transaction("bytes") as tx:
        tx.write_bytes(dest, host.read_bytes())


WRITERS: dict[str, tuple[str, Callable[[Pond, Path, str], None]]] = {
    "copy data": ("data", _write_data),
    "copy parquet": ("parquet", _write_parquet),
    "copy csv": ("csv", _write_csv),
    "write_table": ("parquet", _write_table),
    "write_bytes": ("data", _write_bytes),
}


def host_input(folder: Path, kind: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    if kind == "data":
        path = folder / "logger.bin"
        path.write_bytes(payload("logger", BIG))
    elif kind == "parquet":
        path = folder / "logger.parquet"
        pq.write_table(readings(0, 20_000), path)
    else:
        path = folder / "logger.csv"
        path.write_text(csv_text(30_000))
    return path


def content(pond: Pond, path: str) -> Any:
    node = pond.node(path)
    if node.entry_type.short == "data":
        return pond.read_bytes(path)
    return pond.read_table(path).to_pylist()


@pytest.mark.parametrize("writer", sorted(WRITERS))
def test_a_damaged_blob_is_rewritten_by_the_next_write_of_its_bytes(
    pond: Pond, tmp_path: Path, writer: str
) -> None:
    kind, write = WRITERS[writer]
    host = host_input(tmp_path / "host", kind)
    write(pond, host, "/first")
    expected = content(pond, "/first")
    blob = blob_of(pond, "/first")
    flip(blob, blob.stat().st_size // 2)
    with pytest.raises(CorruptionError, match="damaged"):
        content(Pond.open(str(pond.location.uri)), "/first")

    write(pond, host, "/second")

    reopened = Pond.open(str(pond.location.uri))
    assert blob_of(reopened, "/second") == blob  # the same name, the bytes rewritten
    assert content(reopened, "/second") == expected
    assert content(reopened, "/first") == expected  # healed too: same bytes, same name
    assert reopened.verify().ok


def test_a_materialization_rewrites_a_damaged_blob_of_its_bytes(pond: Pond) -> None:
    pond.write_table("/s.series", readings(0, 500), "series")
    query = {"source": "/s.series", "query": "SELECT * FROM source WHERE value > 10"}
    pond.create_dynamic("/a.series", "sql_derived_series", query)
    materialize(pond, "/a.series")
    expected = pond.read_table("/a.series", version=2).to_pylist()
    blob = blob_of(pond, "/a.series")
    flip(blob, 100)
    pond.cache.clear()

    pond.create_dynamic("/b.series", "sql_derived_series", query)
    materialize(pond, "/b.series")

    reopened = Pond.open(str(pond.location.uri))
    assert blob_of(reopened, "/b.series") == blob
    assert reopened.read_table("/b.series", version=2).to_pylist() == expected
    assert reopened.verify().ok


# -- 1. a file that changes while it is imported ------------------------------------------------
class _Handle(io.RawIOBase):
    """A read handle on the host file that runs ``mutate`` once, right after the first
    read returned (so the rest of the read sees the changed file)."""

    def __init__(self, inner: Any, mutate: Callable[[], None], fired: list[bool]):
        self._inner = inner
        self._mutate = mutate
        self._fired = fired

    def _after_read(self) -> None:
        if not self._fired:
            self._fired.append(True)
            self._mutate()

    def read(self, size: int = -1) -> bytes:
        data: bytes = self._inner.read(size)
        self._after_read()
        return data

    def readinto(self, buffer: Any) -> int:
        count: int = self._inner.readinto(buffer)
        self._after_read()
        return count

    def fileno(self) -> int:
        return int(self._inner.fileno())

    def close(self) -> None:
        self._inner.close()
        super().close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


@pytest.fixture
def changes_while_read(
    monkeypatch: pytest.MonkeyPatch,
) -> Callable[[Path, Callable[[], None]], list[bool]]:
    """``changes_while_read(file, mutate)``: the first Python read of ``file`` (through
    ``Path.open``) is followed by ``mutate()``; returns a list that is non-empty once it ran."""

    def install(target: Path, mutate: Callable[[], None]) -> list[bool]:
        fired: list[bool] = []
        real_open = Path.open

        def patched(self: Path, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
            handle = real_open(self, mode, *args, **kwargs)
            if "r" in mode and "+" not in mode and self.resolve() == target.resolve():
                return _Handle(handle, mutate, fired)
            return handle

        monkeypatch.setattr(Path, "open", patched)
        return fired

    return install


def append_to(path: Path, data: bytes) -> Callable[[], None]:
    def mutate() -> None:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND)
        try:
            os.write(fd, data)
        finally:
            os.close(fd)

    return mutate


def toggle_unseen(path: Path, offset: int) -> Callable[[], None]:
    """Toggle one byte in place, then set the mtime back: size and mtime unchanged, a
    change no stat can see."""

    def mutate() -> None:
        stat = path.stat()
        fd = os.open(path, os.O_RDWR)
        try:
            byte = os.pread(fd, 1, offset)
            os.pwrite(fd, bytes([byte[0] ^ 0xFF]), offset)
        finally:
            os.close(fd)
        os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))

    return mutate


def aged(path: Path) -> Path:
    """Set the file's mtime an hour back, so a write now surely changes it."""
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns - 3600 * 10**9))
    return path


def assert_refused_unchanged(result: Result, root: Path, txn_before: int, host: Path) -> None:
    line = assert_clean_error(result)
    assert line == f"{host}: changed while reading; import it again once nothing is writing to it"
    assert last_txn(root) == txn_before
    assert Pond.open(str(root)).verify().ok
    assert [p for p in (root / "tmp").iterdir() if p.is_file()] == []  # no scratch file left


def test_a_data_file_growing_during_copy_is_refused(
    pond: Pond, tmp_path: Path, changes_while_read: Any
) -> None:
    host = aged(host_input(tmp_path / "host", "data"))
    fired = changes_while_read(host, append_to(host, b"more lines\n"))
    before = last_txn(pond.location.root)

    result = pond_cli(pond.location.root, "copy", str(host), "/logger.bin", "--type", "data")

    assert fired
    assert_refused_unchanged(result, pond.location.root, before, host)


def test_a_data_file_changed_unseen_during_copy_is_stored_as_read(
    pond: Pond, tmp_path: Path, changes_while_read: Any
) -> None:
    host = host_input(tmp_path / "host", "data")
    original = host.read_bytes()
    offset = len(original) - 10  # read after the change: the stored copy has it
    changes_while_read(host, toggle_unseen(host, offset))

    result = pond_cli(pond.location.root, "copy", str(host), "/logger.bin", "--type", "data")

    assert result.exit_code == 0, result.stderr
    stored = pond_cli(pond.location.root, "cat", "/logger.bin").stdout_bytes
    assert stored == host.read_bytes() != original  # exactly the bytes that were read
    record = Pond.open(str(pond.location.root)).node("/logger.bin").latest
    assert record is not None
    assert record.sha256 == sha256_bytes(stored) == record.blob
    assert Pond.open(str(pond.location.root)).verify().ok


def test_a_parquet_file_changing_during_copy_is_refused(
    pond: Pond, tmp_path: Path, changes_while_read: Any
) -> None:
    host = tmp_path / "logger.parquet"
    pq.write_table(readings(0, 300_000), host)
    aged(host)
    assert host.stat().st_size > CHUNK
    changes_while_read(host, append_to(host, b"junk"))
    before = last_txn(pond.location.root)

    result = pond_cli(pond.location.root, "copy", str(host), "/logger.series", "--type", "series")

    assert_refused_unchanged(result, pond.location.root, before, host)


def test_a_csv_file_changing_during_conversion_is_refused(
    pond: Pond, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    host = aged(host_input(tmp_path / "host", "csv"))
    real = host_files_module.csv_to_parquet

    def converting_while_appended(source: Path, target: Path, **kwargs: Any) -> Any:
        done = real(source, target, **kwargs)
        append_to(host, b"2025-01-01 00:00:00,1\n")()
        return done

    monkeypatch.setattr(host_files_module, "csv_to_parquet", converting_while_appended)
    before = last_txn(pond.location.root)

    result = pond_cli(pond.location.root, "copy", str(host), "/logger.series", "--type", "series")

    assert_refused_unchanged(result, pond.location.root, before, host)


def test_ingest_of_a_csv_changing_while_read_is_refused(
    pond: Pond, tmp_path: Path, changes_while_read: Any
) -> None:
    folder = tmp_path / "incoming"
    host = aged(host_input(folder, "csv"))
    pond.create_dynamic("/in", "ingest", {"host_pattern": str(folder / "*"), "type": "series"})
    fired = changes_while_read(host, append_to(host, b"2025-01-01 00:00:00,1\n"))
    before = last_txn(pond.location.root)

    with pytest.raises(ConflictError, match="changed while reading"):
        materialize(pond, "/in")

    assert fired
    assert last_txn(pond.location.root) == before
    assert Pond.open(str(pond.location.root)).verify().ok
    # once the file is quiet (the mutation ran once), it imports, recording its sha256
    materialize(Pond.open(str(pond.location.root)), "/in")
    reopened = Pond.open(str(pond.location.root))
    record = reopened.node("/in/logger.series").latest
    assert record is not None
    assert record.attributes["source_sha256"] == sha256_bytes(host.read_bytes())
    assert reopened.read_table("/in/logger.series").num_rows == 30_001


def test_ingest_of_a_data_file_changing_between_reads_stores_what_it_copied(
    pond: Pond, tmp_path: Path, changes_while_read: Any
) -> None:
    """The first read (the check for an unchanged file) is followed by an append: the
    copy, made in one later read, is stored, and the recorded sha256 is the copy's."""
    folder = tmp_path / "incoming"
    host = aged(host_input(folder, "data"))
    pond.create_dynamic("/in", "ingest", {"host_pattern": str(folder / "*"), "type": "data"})
    fired = changes_while_read(host, append_to(host, b"more"))

    materialize(pond, "/in")

    assert fired
    reopened = Pond.open(str(pond.location.root))
    record = reopened.node("/in/logger.bin").latest
    assert record is not None
    assert reopened.read_bytes("/in/logger.bin") == host.read_bytes()
    assert record.sha256 == record.attributes["source_sha256"] == sha256_bytes(host.read_bytes())
    assert reopened.verify().ok


def test_ingest_of_a_data_file_changed_unseen_stores_what_was_read(
    pond: Pond, tmp_path: Path, changes_while_read: Any
) -> None:
    folder = tmp_path / "incoming"
    host = host_input(folder, "data")
    pond.create_dynamic("/in", "ingest", {"host_pattern": str(folder / "*"), "type": "data"})
    changes_while_read(host, toggle_unseen(host, BIG // 100))

    materialize(pond, "/in")

    reopened = Pond.open(str(pond.location.root))
    record = reopened.node("/in/logger.bin").latest
    stored = reopened.read_bytes("/in/logger.bin")
    assert record is not None
    assert record.sha256 == record.attributes["source_sha256"] == sha256_bytes(stored)
    assert reopened.verify().ok


# -- 2. a damaged cache entry is dropped and recomputed, never served -------------------------
DERIVED = "/derived.series"
REPORT = "/report.txt"


@pytest.fixture
def cached_pond(pond: Pond) -> tuple[Pond, pa.Table, bytes]:
    pond.write_table("/s.series", readings(0, 3_000), "series")
    pond.write_table("/s.series", readings(3_000, 2_000), "series")
    pond.create_dynamic(
        DERIVED,
        "sql_derived_series",
        {"source": "/s.series", "query": "SELECT ts, value * 2 AS double FROM source"},
    )
    pond.create_dynamic(
        REPORT,
        "template",
        {
            "template": "{% for r in query('SELECT count(*) AS n, sum(value) AS s FROM s') %}"
            "{{ r.n }} rows, sum {{ r.s }}{% endfor %}\n",
            "sources": {"s": "/s.series"},
        },
    )
    rows = pond.read_table(DERIVED)
    text = pond.read_bytes(REPORT)
    return pond, rows, text


def entry_files(pond: Pond) -> dict[str, Path]:
    """The cache's files: ``parquet``/``bin`` (the derived series' and the report's
    entry) and their notes, ``parquet.json``/``bin.json``."""
    found: dict[str, Path] = {}
    for suffix in ("parquet", "bin"):
        (data,) = pond.location.cache.glob(f"*/*.{suffix}")
        found[suffix] = data
        found[f"{suffix}.json"] = data.with_suffix(".json")
    return found


def test_a_flipped_byte_in_any_cache_file_is_never_served(
    cached_pond: tuple[Pond, pa.Table, bytes],
) -> None:
    pond, rows, text = cached_pond
    files = entry_files(pond)
    expected_sum = pa.compute.sum(rows["double"]).as_py()
    rng = random.Random(12)
    served = 0
    for name, count in [("parquet", 60), ("parquet.json", 30), ("bin", 15), ("bin.json", 30)]:
        for round_ in range(count):
            path = entry_files(pond)[name]  # recomputed entries keep their key
            size = path.stat().st_size
            offset = (0, size - 1)[round_] if round_ < 2 else rng.randrange(size)
            flip(path, offset, 0xFF if round_ % 2 else 0x01)
            fresh = Pond.open(str(pond.location.uri))  # a new process' view: nothing memoized
            if name.startswith("parquet"):
                assert fresh.read_table(DERIVED).equals(rows), (name, offset)
                total = fresh.query(
                    "SELECT count(*) AS n, sum(double) AS s FROM source", source=DERIVED
                ).to_pylist()
                assert total == [{"n": rows.num_rows, "s": pytest.approx(expected_sum)}]
            else:
                assert fresh.read_bytes(REPORT) == text, (name, offset)
            served += 1
            assert entry_files(pond) == files  # recomputed into the cache again
    assert served == 135


def test_cli_reads_of_a_damaged_entry_print_the_right_rows(
    cached_pond: tuple[Pond, pa.Table, bytes],
) -> None:
    pond, _, _ = cached_pond
    expected = pond_cli(pond.location.root, "cat", DERIVED, "--format", "csv").stdout
    parquet = entry_files(pond)["parquet"]
    for offset in range(4, parquet.stat().st_size - 8, max(1, parquet.stat().st_size // 12)):
        flip(entry_files(pond)["parquet"], offset)
        result = pond_cli(pond.location.root, "cat", DERIVED, "--format", "csv")
        assert result.exit_code == 0, result.stderr
        assert result.stdout == expected


def test_verify_notes_a_damaged_cache_and_names_cache_clear(
    cached_pond: tuple[Pond, pa.Table, bytes],
) -> None:
    pond, rows, text = cached_pond
    assert pond_cli(pond.location.root, "verify").stderr == ""
    parquet = entry_files(pond)["parquet"]
    flip(parquet, parquet.stat().st_size // 2)
    note = entry_files(pond)["bin.json"]
    note.write_text(note.read_text().replace('"sha256": "', '"sha256": "0', 1))  # 65 digits

    result = pond_cli(pond.location.root, "verify")

    assert result.exit_code == 0, result.stderr  # a note: nothing stored is lost
    damaged = sorted(
        str(entry_files(pond)[kind].relative_to(pond.location.cache)) for kind in ("parquet", "bin")
    )
    assert result.stderr.splitlines() == [
        f"note: 2 damaged cache entries (cache/{damaged[0]}), never served: a read drops "
        "and recomputes it; `pond cache clear` removes them (damage there may mean a "
        "failing disk)"
    ]
    assert sorted(Pond.open(str(pond.location.uri)).verify().damaged_cache) == damaged
    assert pond_cli(pond.location.root, "cache", "clear").exit_code == 0
    assert pond_cli(pond.location.root, "verify").stderr == ""
    fresh = Pond.open(str(pond.location.uri))
    assert fresh.read_table(DERIVED).equals(rows)
    assert fresh.read_bytes(REPORT) == text


def test_a_materialization_never_stores_a_damaged_entry(
    cached_pond: tuple[Pond, pa.Table, bytes],
) -> None:
    pond, rows, _ = cached_pond
    parquet = entry_files(pond)["parquet"]
    flip(parquet, parquet.stat().st_size // 3)

    materialize(Pond.open(str(pond.location.uri)), DERIVED)

    fresh = Pond.open(str(pond.location.uri))
    assert fresh.read_table(DERIVED, version=2).equals(rows)
    assert fresh.verify().ok


def test_an_entry_from_before_checksums_is_recomputed(
    cached_pond: tuple[Pond, pa.Table, bytes],
) -> None:
    pond, rows, _ = cached_pond
    note = entry_files(pond)["parquet.json"]
    meta = json.loads(note.read_text())
    del meta["sha256"]
    note.write_text(json.dumps(meta))
    fresh = Pond.open(str(pond.location.uri))

    assert fresh.read_table(DERIVED).equals(rows)
    assert fresh.cache.dropped == 1
    assert "sha256" in json.loads(entry_files(pond)["parquet.json"].read_text())


# -- 3. --version on a dynamic node -----------------------------------------------------------
@pytest.fixture
def materialized(pond: Pond) -> tuple[Pond, list[pa.Table], list[bytes]]:
    """/d.series and /r.txt: version 1 the config, 2 and 3 materialized (the source
    gaining a version between)."""
    pond.write_table("/s.series", readings(0, 10), "series")
    pond.create_dynamic(
        "/d.series", "sql_derived_series", {"source": "/s.series", "query": "SELECT * FROM source"}
    )
    pond.create_dynamic(
        "/r.txt",
        "template",
        {
            "template": "{{ query('SELECT count(*) AS n FROM s')[0].n }}",
            "sources": {"s": "/s.series"},
        },
    )
    tables, texts = [], []
    for start in (10, 20):
        materialize(pond, "/d.series")
        materialize(pond, "/r.txt")
        tables.append(pond.read_table("/d.series"))
        texts.append(pond.read_bytes("/r.txt"))
        pond.write_table("/s.series", readings(start, 5), "series")
    return pond, tables, texts


def test_version_reads_a_materialized_version(
    materialized: tuple[Pond, list[pa.Table], list[bytes]],
) -> None:
    pond, tables, texts = materialized
    assert [t.num_rows for t in tables] == [10, 15]
    assert pond.read_table("/d.series").num_rows == 20  # the current content: produced
    for version, (table, text) in enumerate(zip(tables, texts, strict=True), start=2):
        assert pond.read_table("/d.series", version=version).equals(table)
        assert pond.read_bytes("/r.txt", version=version) == text
        assert pond.query(
            "SELECT count(*) AS n FROM source", source="/d.series", version=version
        ).to_pylist() == [{"n": table.num_rows}]
    assert texts == [b"10", b"15"]


def test_cat_version_on_a_dynamic_node(
    materialized: tuple[Pond, list[pa.Table], list[bytes]],
) -> None:
    pond, tables, texts = materialized
    root = pond.location.root
    result = pond_cli(root, "cat", "/d.series", "--version", "2", "--format", "parquet")
    assert result.exit_code == 0, result.stderr
    assert pq.read_table(pa.BufferReader(result.stdout_bytes)).equals(tables[0])
    assert pond_cli(root, "cat", "/r.txt", "--version", "3").stdout_bytes == texts[1]
    result = pond_cli(
        root,
        "cat",
        "/d.series",
        "--version",
        "3",
        "--sql",
        "SELECT count(*) AS n FROM source",
        "--format",
        "json",
    )
    assert json.loads(result.stdout) == [{"n": 15}]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["/d.series", "--version", "9"],
            "/d.series: no version 9; versions are 1..3 (materialized: 2..3)",
        ),
        (
            ["/r.txt", "--version", "0"],
            "/r.txt: no version 0; versions are 1..3 (materialized: 2..3)",
        ),
        (
            ["/d.series", "--version", "1"],
            "/d.series: version 1 holds only a config, no materialized content; "
            "materialized versions are 2..3",
        ),
        (
            ["/never.series", "--version", "1"],
            "/never.series: has no materialized versions to read with --version; "
            "`pond materialize /never.series` writes one; without --version its current "
            "content is read",
        ),
    ],
)
def test_cat_version_errors_on_a_dynamic_node(
    materialized: tuple[Pond, list[pa.Table], list[bytes]], args: list[str], message: str
) -> None:
    pond, _, _ = materialized
    pond.create_dynamic(
        "/never.series",
        "sql_derived_series",
        {"source": "/s.series", "query": "SELECT * FROM source"},
    )
    assert assert_clean_error(pond_cli(pond.location.root, "cat", *args)) == message
    path, version = args[0], int(args[2])
    read: Callable[..., Any] = pond.read_bytes if path == "/r.txt" else pond.read_table
    with pytest.raises(NotFoundError) as raised:
        read(path, version=version)
    assert raised.value.message == message
