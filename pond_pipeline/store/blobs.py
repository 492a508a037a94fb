"""Content-addressed payloads: ``blobs/<sha[:2]>/<sha256>``.

A blob is written completely (temporary file, fsync, rename) before the commit that
references it, so a crash leaves at most an unreferenced blob, never a torn one. Its
name is the sha256 of the bytes that were written (hashed while they are copied, never
in a separate read), and a blob already stored under that name is kept only if it
still verifies: a damaged one is rewritten, never inherited by a later write.
"""

import hashlib
import os
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from pond_pipeline.errors import ConflictError

CHUNK = 1 << 20


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def changed_while_reading(source: Path | str) -> ConflictError:
    """A host file changed while the pond read it: nothing of it is stored."""
    return ConflictError(
        "changed while reading",
        subject=str(source),
        hint="import it again once nothing is writing to it",
    )


def copy_hashing(source: Path, target: Path) -> tuple[str, int]:
    """Copy ``source`` into ``target`` in one read, hashing the bytes as they are
    written: (sha256, size) of ``target``'s bytes. A source that grows, shrinks or is
    rewritten during the copy is refused (``changed_while_reading``); one changed so
    that its size and mtime stay the same is copied as it was read, and the sha256
    still names exactly the bytes written."""
    digest = hashlib.sha256()
    size = 0
    buffer = bytearray(CHUNK)
    view = memoryview(buffer)
    with source.open("rb") as src, target.open("wb") as dst:
        before = os.fstat(src.fileno())
        while count := src.readinto(buffer):
            digest.update(view[:count])
            dst.write(view[:count])
            size += count
        after = os.fstat(src.fileno())
    if size != after.st_size or (before.st_size, before.st_mtime_ns) != (
        after.st_size,
        after.st_mtime_ns,
    ):
        raise changed_while_reading(source)
    return digest.hexdigest(), size


class BlobStore:
    def __init__(self, root: Path, scratch: Path):
        self.root = root
        self.scratch = scratch

    def path(self, sha: str) -> Path:
        return self.root / sha[:2] / sha

    def exists(self, sha: str) -> bool:
        return self.path(sha).is_file()

    def is_intact(self, sha: str) -> bool:
        """The blob is stored and its bytes hash to its name."""
        try:
            return sha256_file(self.path(sha)) == sha
        except FileNotFoundError:
            return False

    def put_file(self, source: Path, sha: str | None = None, *, move: bool = False) -> str:
        """Store a file's bytes; returns their sha256. ``move`` consumes ``source``.

        A scratch file of ours (``move``) is renamed in under ``sha`` (computed if not
        given); any other file is copied into a scratch file first, hashed while it is
        copied, and a ``sha`` the caller computed earlier must match what was copied
        (else the file changed in between: ``changed_while_reading``).
        """
        if move and source.parent == self.scratch:
            sha = sha or sha256_file(source)
            self._land(source, sha)
            return sha
        temp = self._temp_path()
        try:
            written, _ = copy_hashing(source, temp)
            if sha is not None and written != sha:
                raise changed_while_reading(source)
            self._land(temp, written)
        finally:
            temp.unlink(missing_ok=True)
        if move:
            source.unlink()
        return written

    def put_bytes(self, data: bytes) -> str:
        sha = sha256_bytes(data)
        if not self.is_intact(sha):
            temp = self._temp_path()
            try:
                temp.write_bytes(data)
                self._land(temp, sha)
            finally:
                temp.unlink(missing_ok=True)
        return sha

    def copy_to_scratch(self, source: Path, suffix: str = "") -> tuple[Path, str, int]:
        """A copy of ``source`` in a fresh scratch file, made in one hashing read (see
        ``copy_hashing``): (scratch file, sha256, size); the caller owns the file."""
        scratch = self.scratch_file(suffix)
        try:
            sha, size = copy_hashing(source, scratch)
        except BaseException:
            scratch.unlink(missing_ok=True)
            raise
        return scratch, sha, size

    def remove(self, sha: str) -> None:
        self.path(sha).unlink(missing_ok=True)

    def all_shas(self) -> Iterator[str]:
        if not self.root.is_dir():
            return
        for folder in sorted(self.root.iterdir()):
            if folder.is_dir():
                for blob in sorted(folder.iterdir()):
                    yield blob.name

    def remove_stale_scratch(self, max_age: float) -> list[Path]:
        """Delete temporary files untouched for ``max_age`` seconds: left by writers
        killed mid-way (a live reader or writer keeps touching its own)."""
        if not self.scratch.is_dir():
            return []
        cutoff = time.time() - max_age
        stale = [p for p in self.scratch.iterdir() if p.is_file() and p.stat().st_mtime < cutoff]
        for path in stale:
            path.unlink(missing_ok=True)
        return stale

    def scratch_file(self, suffix: str = "") -> Path:
        """A fresh temporary path on the blobs' file system, so moving it in is a rename."""
        self.scratch.mkdir(parents=True, exist_ok=True)
        handle, name = tempfile.mkstemp(dir=self.scratch, suffix=suffix)
        os.close(handle)
        return Path(name)

    def _land(self, temp: Path, sha: str) -> None:
        """Move the scratch file ``temp`` (holding ``sha``'s bytes) in as blob ``sha``,
        unless an intact blob of that name is already there (then ``temp`` goes)."""
        if self.is_intact(sha):
            temp.unlink()
            return
        target = self.path(sha)
        target.parent.mkdir(parents=True, exist_ok=True)
        _fsync(temp)
        os.replace(temp, target)

    def _temp_path(self) -> Path:
        return self.scratch_file(".part")


def _fsync(path: Path) -> None:
    with path.open("rb+") as handle:
        os.fsync(handle.fileno())
