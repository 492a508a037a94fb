"""Content-addressed blobs: the sha256 names the bytes, writes are whole or absent."""

import hashlib
import tempfile
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from pond_pipeline.store.blobs import BlobStore, sha256_bytes, sha256_file


def store(root: Path) -> BlobStore:
    return BlobStore(root / "blobs", root / "tmp")


@settings(max_examples=30, deadline=None)
@given(data=st.binary(max_size=4096))
def test_put_bytes_round_trip(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as folder:
        blobs = store(Path(folder))
        sha = blobs.put_bytes(data)
        assert sha == hashlib.sha256(data).hexdigest() == sha256_bytes(data)
        assert blobs.path(sha) == Path(folder) / "blobs" / sha[:2] / sha
        assert blobs.path(sha).read_bytes() == data
        assert blobs.put_bytes(data) == sha  # idempotent
        assert list(blobs.all_shas()) == [sha]
        assert list((Path(folder) / "tmp").iterdir()) == []  # no torn temporary left


def test_put_file_copies_or_moves(tmp_path: Path) -> None:
    blobs = store(tmp_path)
    source = tmp_path / "host.bin"
    source.write_bytes(b"x" * 100_000)
    sha = blobs.put_file(source)
    assert sha == sha256_file(source) == hashlib.sha256(b"x" * 100_000).hexdigest()
    assert source.exists()  # copied
    assert blobs.path(sha).read_bytes() == source.read_bytes()

    scratch = blobs.scratch_file(".bin")
    scratch.write_bytes(b"moved")
    moved = blobs.put_file(scratch, move=True)
    assert not scratch.exists()
    assert blobs.path(moved).read_bytes() == b"moved"
    assert sorted(blobs.all_shas()) == sorted([sha, moved])


def test_putting_a_known_blob_again_consumes_the_scratch_file(tmp_path: Path) -> None:
    blobs = store(tmp_path)
    sha = blobs.put_bytes(b"same")
    scratch = blobs.scratch_file()
    scratch.write_bytes(b"same")
    assert blobs.put_file(scratch, move=True) == sha
    assert not scratch.exists()
    assert list(blobs.all_shas()) == [sha]


def test_remove_and_exists(tmp_path: Path) -> None:
    blobs = store(tmp_path)
    assert list(blobs.all_shas()) == []  # no folder yet
    sha = blobs.put_bytes(b"gone soon")
    assert blobs.exists(sha)
    blobs.remove(sha)
    assert not blobs.exists(sha)
    blobs.remove(sha)  # removing twice is fine
    assert list(blobs.all_shas()) == []
