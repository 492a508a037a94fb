"""``pond verify`` and ``pond gc``: checksums, live listings, and blobs left by crashes."""

import os
import random

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pond_pipeline.store.oplog import Oplog

BIG = 64 * 1024 + 1


def blob_files(pond) -> list[str]:
    return sorted(p.name for p in (pond.location.root / "blobs").rglob("*") if p.is_file())


def test_verify_a_clean_pond(run, sample_pond) -> None:
    result = run("verify")
    assert result.exit_code == 0
    checked = sum(1 for _ in sample_pond.snapshot().all_records())
    assert result.stdout == f"ok: {checked} versions checked\n"
    assert result.stderr == ""


def test_verify_names_a_damaged_blob(run, pond, host_file, error) -> None:
    data = os.urandom(BIG)
    assert run("copy", str(host_file("big.bin", data)), "/big.bin").exit_code == 0
    (blob,) = [p for p in (pond.location.root / "blobs").rglob("*") if p.is_file()]
    blob.chmod(0o644)
    blob.write_bytes(b"\x00" + data[1:])
    result = run("verify")
    assert result.exit_code == 1
    assert f"problem: /big.bin version 1: blob {blob.name} is damaged" in result.stderr
    assert error(result).startswith("1 problem(s) in ")
    cat = run("cat", "/big.bin")
    assert cat.exit_code == 1
    assert error(cat).startswith(f"/big.bin: version 1 is corrupt: its blob {blob.name} is damaged")


def test_verify_names_a_missing_blob(run, pond, host_file) -> None:
    assert run("copy", str(host_file("big.bin", os.urandom(BIG))), "/big.bin").exit_code == 0
    (blob,) = [p for p in (pond.location.root / "blobs").rglob("*") if p.is_file()]
    blob.unlink()
    result = run("verify")
    assert result.exit_code == 1
    assert f"problem: /big.bin version 1: blob {blob.name} is missing" in result.stderr


def test_a_crash_before_the_commit_leaves_a_readable_pond(
    run, sample_pond, sample, tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before_list = run("list", "--long").stdout
    before_blobs = blob_files(sample_pond)
    rows = sample.readings(4, rows=20_000)
    noise = pa.array([random.random() for _ in range(rows.num_rows)])
    source = tmp_path / "big.parquet"
    pq.write_table(rows.set_column(2, "value", noise), source)  # > 64 KiB: a blob

    def crash(*args: object, **kwargs: object) -> int:
        raise OSError("simulated crash between the blob and the commit")

    monkeypatch.setattr(Oplog, "append", crash)
    with pytest.raises(OSError, match="simulated crash"):
        run("copy", str(source), sample.series)
    monkeypatch.undo()
    left = sorted(set(blob_files(sample_pond)) - set(before_blobs))
    assert len(left) == 1  # the new version's Parquet, never committed
    assert run("list", "--long").stdout == before_list
    assert run("cat", sample.series, "--format", "csv").exit_code == 0
    verify = run("verify")
    assert verify.exit_code == 0
    assert verify.stderr == (
        "note: 1 unreferenced blob(s), left by interrupted writes; `pond gc` removes them\n"
    )
    gc = run("gc")
    assert gc.exit_code == 0
    assert gc.stdout == "removed 1 unreferenced blob(s)\n"
    assert blob_files(sample_pond) == before_blobs
    assert run("verify").stderr == ""
    assert run("gc").stdout == "removed 0 unreferenced blob(s)\n"
    # and the import works once the "crash" is over
    assert run("copy", str(source), sample.series).exit_code == 0
    assert len(sample_pond.node(sample.series).versions) == 4


def test_gc_keeps_referenced_blobs(run, pond, host_file) -> None:
    data = os.urandom(BIG)
    assert run("copy", str(host_file("big.bin", data)), "/big.bin").exit_code == 0
    assert run("rm", "/big.bin").exit_code == 0  # still referenced by history
    assert run("gc").stdout == "removed 0 unreferenced blob(s)\n"
    assert run("cat", "/big.bin", "--at", "2").stdout_bytes == data
