"""Content-addressed payloads: ``blobs/<sha[:2]>/<sha256>``.

A blob is written completely (temporary file, fsync, rename) before the commit that
references it, so a crash leaves at most an unreferenced blob, never a torn one.
"""

import hashlib
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

CHUNK = 1 << 20


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class BlobStore:
    def __init__(self, root: Path, scratch: Path):
        self.root = root
        self.scratch = scratch

    def path(self, sha: str) -> Path:
        return self.root / sha[:2] / sha

    def exists(self, sha: str) -> bool:
        return self.path(sha).is_file()

    def put_file(self, source: Path, sha: str | None = None, *, move: bool = False) -> str:
        """Store a host file's bytes; returns their sha256. ``move`` consumes ``source``."""
        sha = sha or sha256_file(source)
        target = self.path(sha)
        if target.is_file():
            if move:
                source.unlink()
            return sha
        target.parent.mkdir(parents=True, exist_ok=True)
        if move and source.parent == self.scratch:
            _fsync(source)
            os.replace(source, target)
        else:
            temp = self._temp_path()
            try:
                shutil.copyfile(source, temp)
                _fsync(temp)
                os.replace(temp, target)
            finally:
                temp.unlink(missing_ok=True)
            if move:
                source.unlink()
        return sha

    def put_bytes(self, data: bytes) -> str:
        sha = sha256_bytes(data)
        if not self.exists(sha):
            temp = self._temp_path()
            try:
                temp.write_bytes(data)
                _fsync(temp)
                self.path(sha).parent.mkdir(parents=True, exist_ok=True)
                os.replace(temp, self.path(sha))
            finally:
                temp.unlink(missing_ok=True)
        return sha

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

    def _temp_path(self) -> Path:
        return self.scratch_file(".part")


def _fsync(path: Path) -> None:
    with path.open("rb+") as handle:
        os.fsync(handle.fileno())
