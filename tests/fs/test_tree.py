"""The tree over oplog records: transactions, listings, walks, symlinks, history."""

from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pond_pipeline.errors import ConflictError, NotFoundError
from pond_pipeline.factory import EntryType
from pond_pipeline.fs.nodes import ROOT_ID, ListingEntry, decode_listing, encode_listing
from pond_pipeline.fs.payloads import Payload
from pond_pipeline.fs.transaction import Transaction
from pond_pipeline.fs.tree import Snapshot
from pond_pipeline.store.blobs import BlobStore, sha256_bytes
from pond_pipeline.store.oplog import OplogRecord

ROOT = OplogRecord(
    part_id=ROOT_ID,
    node_id=ROOT_ID,
    entry_type="directory",
    version=1,
    txn_seq=1,
    timestamp=datetime(2024, 1, 1, tzinfo=UTC),
    content=encode_listing({}),
    size=0,
)


class Tree:
    """An oplog in memory: each ``commit`` turns one transaction into records."""

    def __init__(self, tmp_path: Path, inline_threshold: int = 100):
        self.records = [ROOT]
        self.blobs = BlobStore(tmp_path / "blobs", tmp_path / "tmp")
        self.inline_threshold = inline_threshold

    def snapshot(self, at: int | None = None) -> Snapshot:
        return Snapshot(list(self.records), at=at)

    def begin(self) -> Transaction:
        return Transaction(
            self.snapshot(), self.blobs, command="t", inline_threshold=self.inline_threshold
        )

    def commit(self, tx: Transaction) -> list[OplogRecord]:
        written = tx.finish()
        self.records.extend(written)
        return written


def data(content: bytes) -> Payload:
    return Payload(content, len(content), sha256_bytes(content))


@pytest.fixture
def tree(tmp_path: Path) -> Tree:
    return Tree(tmp_path)


@given(
    st.dictionaries(
        st.text(min_size=1, max_size=20).filter(lambda n: "/" not in n),
        st.tuples(st.uuids().map(str), st.sampled_from(list(EntryType))),
        max_size=8,
    )
)
def test_listings_round_trip(entries: dict[str, tuple[str, EntryType]]) -> None:
    listing = {name: ListingEntry(node, kind) for name, (node, kind) in entries.items()}
    assert decode_listing(encode_listing(listing)) == listing


def test_one_listing_version_per_touched_directory(tree: Tree) -> None:
    tx = tree.begin()
    tx.mkdir("/a")
    tx.mkdir("/b")
    tx.mkdir("/a/c/d", parents=True)
    tx.write_file("/a/x.bin", EntryType.DATA, data(b"x"))
    written = tree.commit(tx)
    directories = [r for r in written if r.entry_type == "directory"]
    assert sorted(r.node_id for r in directories) == sorted({r.node_id for r in directories})
    root = [r for r in written if r.node_id == ROOT_ID]
    assert [(r.version, r.txn_seq) for r in root] == [(2, 2)]
    assert set(decode_listing(root[0].content)) == {"a", "b"}
    snapshot = tree.snapshot()
    a = snapshot.walk("/a")
    assert set(snapshot.listing(a.node_id)) == {"c", "x.bin"}
    assert snapshot.walk("/a/c/d").entry_type is EntryType.DIRECTORY
    assert {r.txn_seq for r in written} == {2}


def test_walk_errors_name_the_path(tree: Tree) -> None:
    tx = tree.begin()
    tx.write_file("/f.bin", EntryType.DATA, data(b"f"))
    tree.commit(tx)
    snapshot = tree.snapshot()
    with pytest.raises(NotFoundError) as missing:
        snapshot.walk("/nope/deeper")
    assert (missing.value.subject, missing.value.reason) == ("/nope", "no such file or directory")
    with pytest.raises(ConflictError) as not_dir:
        snapshot.walk("/f.bin/child")
    assert (not_dir.value.subject, not_dir.value.reason) == ("/f.bin", "not a directory")


def test_symlinks_are_followed_absolute_and_relative(tree: Tree) -> None:
    tx = tree.begin()
    tx.mkdir("/d/e", parents=True)
    tx.write_file("/d/e/f.bin", EntryType.DATA, data(b"f"))
    tx.symlink("/abs", "/d/e")
    tx.symlink("/d/rel", "e/f.bin")
    tx.symlink("/d/up", "../d/e/f.bin")
    tree.commit(tx)
    snapshot = tree.snapshot()
    target = snapshot.walk("/d/e/f.bin")
    assert snapshot.walk("/abs/f.bin").node_id == target.node_id
    assert snapshot.walk("/d/rel").node_id == target.node_id
    assert snapshot.walk("/d/up").node_id == target.node_id
    assert snapshot.walk("/d/rel", follow=False).entry_type is EntryType.SYMLINK
    assert snapshot.walk("/d/rel").path == "/d/e/f.bin"


def test_symlink_loops_are_an_error(tree: Tree) -> None:
    tx = tree.begin()
    tx.symlink("/one", "/two")
    tx.symlink("/two", "/one")
    tree.commit(tx)
    with pytest.raises(ConflictError) as caught:
        tree.snapshot().walk("/one")
    assert caught.value.reason == "too many levels of symbolic links"


def test_small_payloads_are_inline_large_ones_blobs(tree: Tree) -> None:
    small, large = b"s" * tree.inline_threshold, b"L" * (tree.inline_threshold + 1)
    tx = tree.begin()
    inline = tx.write_file("/small.bin", EntryType.DATA, data(small))
    blob = tx.write_file("/large.bin", EntryType.DATA, data(large))
    tree.commit(tx)
    assert (inline.content, inline.blob, inline.size) == (small, None, len(small))
    assert inline.sha256 == sha256_bytes(small)
    assert blob.content is None
    assert blob.blob == sha256_bytes(large)
    assert tree.blobs.path(blob.blob).read_bytes() == large
    assert list(tree.blobs.all_shas()) == [blob.blob]


def test_versions_and_type_clash(tree: Tree) -> None:
    tx = tree.begin()
    first = tx.write_file("/f.bin", EntryType.DATA, data(b"1"))
    second = tx.write_file("/f.bin", EntryType.DATA, data(b"2"))
    assert (first.version, second.version) == (1, 2)
    assert [r.version for r in tx.versions(first.node_id)] == [1, 2]
    with pytest.raises(ConflictError) as caught:
        tx.write_file("/f.bin", EntryType.TABLE, data(b"PAR1"))
    assert caught.value.subject == "/f.bin"
    assert caught.value.reason == "exists as a data, cannot write a table over it"
    tree.commit(tx)
    assert tree.snapshot().latest(first.node_id) == second


def test_creating_over_existing_and_missing_parents(tree: Tree) -> None:
    tx = tree.begin()
    tx.mkdir("/a")
    tree.commit(tx)
    tx = tree.begin()
    with pytest.raises(ConflictError) as exists:
        tx.mkdir("/a")
    assert (exists.value.subject, exists.value.reason) == ("/a", "already exists")
    assert tx.mkdir("/a", parents=True) == tree.snapshot().walk("/a").node_id
    with pytest.raises(ConflictError):
        tx.symlink("/a", "/elsewhere")
    with pytest.raises(NotFoundError) as parent:
        tx.write_file("/missing/f.bin", EntryType.DATA, data(b""))
    assert parent.value.subject == "/missing"
    assert parent.value.reason == "parent directory does not exist"
    assert tx.finish() == []  # nothing was changed


def test_remove_keeps_history(tree: Tree) -> None:
    tx = tree.begin()
    tx.mkdir("/a")
    tx.write_file("/a/f.bin", EntryType.DATA, data(b"f"))
    tree.commit(tx)
    tx = tree.begin()
    with pytest.raises(ConflictError) as not_empty:
        tx.remove("/a")
    assert not_empty.value.reason == "directory not empty"
    with pytest.raises(ConflictError):
        tx.remove("/")
    tx.remove("/a", recursive=True)
    tree.commit(tx)
    with pytest.raises(NotFoundError):
        tree.snapshot().walk("/a/f.bin")
    before = tree.snapshot(at=2)
    assert before.walk("/a/f.bin").entry_type is EntryType.DATA
    assert tree.snapshot(at=1).listing(ROOT_ID) == {}
    assert tree.snapshot().last_txn == 3
