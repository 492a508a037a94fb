"""The oplog's sidecar files are named for what they are (issue 12): every ``*.parquet``
under ``oplog/`` is Parquet, so other tools can read the oplog; ponds made before,
whose checksum sidecars were named ``<data file>.parquet``, keep working."""

from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest

from pond_pipeline.api import Pond
from pond_pipeline.errors import CorruptionError
from pond_pipeline.store.integrity import CHECKSUM_FOLDER, SIDECAR_SUFFIX


def sidecars(pond: Pond) -> list[Path]:
    return sorted((pond.location.oplog / CHECKSUM_FOLDER / "files").iterdir())


def data_files(pond: Pond) -> list[Path]:
    return sorted(pond.location.oplog.glob("part_id=*/*.parquet"))


def test_every_parquet_file_under_the_oplog_is_parquet(sample_pond: Pond) -> None:
    files = sorted(sample_pond.location.oplog.rglob("*.parquet"))
    assert files
    for file in files:
        pq.ParquetFile(file)  # raises for a file that is not Parquet
    names = [p.name for p in sidecars(sample_pond)]
    assert names == sorted(f"{p.name}{SIDECAR_SUFFIX}" for p in data_files(sample_pond))
    sha, footer, footer_sha = sidecars(sample_pond)[0].read_text().split()
    assert len(sha) == len(footer_sha) == 64
    assert int(footer) > 8


def test_duckdb_reads_the_oplog_as_parquet(sample_pond: Pond) -> None:
    rows = sum(1 for _ in sample_pond.oplog.read()[1])
    glob = str(sample_pond.location.oplog / "**" / "*.parquet")
    assert duckdb.sql(f"SELECT count(*) FROM read_parquet('{glob}')").fetchall() == [(rows,)]
    data = str(sample_pond.location.oplog / "part_id=*" / "*.parquet")
    query = f"SELECT count(DISTINCT node_id) FROM read_parquet('{data}', hive_partitioning=true)"
    nodes = {r.node_id for r in sample_pond.oplog.read()[1]}
    assert duckdb.sql(query).fetchall() == [(len(nodes),)]


@pytest.fixture
def old_pond(sample_pond: Pond) -> Pond:
    """``sample_pond`` as an earlier version left it: sidecars named like their file."""
    for sidecar in sidecars(sample_pond):
        sidecar.rename(sidecar.with_name(sidecar.name.removesuffix(SIDECAR_SUFFIX)))
    return Pond.open(sample_pond.location.uri)


def test_a_pond_with_the_old_names_reads_and_verifies(old_pond: Pond, sample) -> None:
    assert old_pond.read_bytes(sample.data) == sample.notes
    assert old_pond.read_table(sample.series).num_rows == 12
    report = old_pond.verify()
    assert report.ok, report.problems
    assert report.notes == []


def test_the_old_names_still_catch_a_damaged_data_file(old_pond: Pond, sample) -> None:
    """A footer byte flipped: the old-named sidecar's footer digest refuses the file."""
    target = data_files(old_pond)[-1]
    raw = bytearray(target.read_bytes())
    raw[-12] ^= 0xFF
    target.write_bytes(bytes(raw))
    fresh = Pond.open(old_pond.location.uri)
    with pytest.raises(CorruptionError, match="differs from the one recorded"):
        fresh.list_nodes()


def test_gc_renames_the_old_sidecars(old_pond: Pond, sample) -> None:
    assert all(p.suffix == ".parquet" for p in sidecars(old_pond))
    old_pond.gc()
    assert [p.name for p in sidecars(old_pond)] == sorted(
        f"{p.name}{SIDECAR_SUFFIX}" for p in data_files(old_pond)
    )
    assert Pond.open(old_pond.location.uri).verify().ok
    with old_pond.transaction("more") as tx:  # new commits add new-named sidecars
        tx.mkdir("/more")
    assert all(p.name.endswith(SIDECAR_SUFFIX) for p in sidecars(old_pond))
