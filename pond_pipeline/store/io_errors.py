"""Write failures of the pond's storage, as one ``StorageError`` each.

Disk full, no permission, a read-only file system or a failing disk reach pond as a
Python ``OSError`` (with its errno), as a delta-rs error whose text ends in
``(os error N)``, or as a DuckDB ``IO Error`` naming the system's message. Whichever
it is, ``storage_error`` names the pond, what was being written, why and what to do.
"""

import errno
import os
import re
from pathlib import Path

from pond_pipeline.errors import PondError, StorageError

_REMEDIES = {
    errno.ENOSPC: ("no space left on its file system", "free space there and retry"),
    errno.EDQUOT: ("the disk quota is exceeded", "free space or raise the quota and retry"),
    errno.EROFS: (
        "its file system is read-only",
        "remount it writable to change the pond (reading it works)",
    ),
    errno.EACCES: ("permission denied", "fix the permissions of {file} and retry"),
    errno.EPERM: (
        "operation not permitted",
        "fix the permissions (or the immutable flag, `lsattr`) of {file} and retry",
    ),
    errno.EIO: ("an input/output error", "check the disk (`dmesg`) and retry"),
}
"""The failures of storage (not of the request): errno → why, what to do."""

_OS_ERROR = re.compile(r"\(os error (\d+)\)")
_DUCKDB_FILE = re.compile(r'(?:write|open|create) file \\?"([^"\\]+)\\?"')
"""The file a DuckDB ``IO Error`` names: ``Could not write file \\"/p/tmp/x.parquet\\"``."""
_STRERRORS = {os.strerror(code): code for code in _REMEDIES}
_PARTS = {
    "oplog": "write the oplog",
    "blobs": "write a blob",
    "tmp": "write a scratch file",
    "cache": "write the cache",
    "write.lock": "take the write lock",
    "pond.json": "write the settings",
}
_CACHE_READ_ONLY = (
    "a dynamic node read for the first time is computed into cache/: make the pond "
    "writable, or read its static files and materialized versions"
)
NOTHING_WRITTEN = "the pond is unchanged"


def storage_errno(exc: BaseException) -> int | None:
    """The errno of a storage failure behind ``exc`` or its causes, if it is one."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and current.errno in _REMEDIES:
            return current.errno
        if not isinstance(current, PondError):  # a pond message may quote user data
            text = str(current)
            for match in _OS_ERROR.finditer(text):
                if int(match[1]) in _REMEDIES:
                    return int(match[1])
            if text.startswith("IO Error") or type(current).__name__ == "IOException":
                for message, code in _STRERRORS.items():
                    if message in text:
                        return code
        current = current.__cause__ or current.__context__
    return None


def storage_error(
    exc: BaseException,
    *,
    pond: str | None,
    root: Path | None = None,
    writing: str | None = None,
    outcome: str = NOTHING_WRITTEN,
) -> StorageError | None:
    """``exc`` as one clear error if it is a storage failure (else ``None``).

    ``pond`` names the pond (its URI), ``root`` is its folder (to name the part being
    written from the failing file's path), ``writing`` says what was being written when
    the failure names no file (a Delta commit).
    """
    if isinstance(exc, StorageError):
        return exc
    code = storage_errno(exc)
    if code is None:
        return None
    why, todo = _REMEDIES[code]
    file = _failing_file(exc, root)
    if file is not None and root is not None and _is_inside(file, root):
        relative = file.relative_to(root)
        top = relative.parts[0] if relative.parts else ""
        reason = f"cannot {_PARTS.get(top, 'write to the pond')} ({relative}): {why}"
        if top == "cache" and code in (errno.EROFS, errno.EACCES, errno.EPERM):
            todo = _CACHE_READ_ONLY
        todo = todo.format(file=file)
    elif file is not None:
        reason = f"cannot access {file}: {why}"
        todo = todo.format(file=file)
    else:
        reason = f"cannot write {writing or 'to the pond'}: {why}"
        todo = todo.format(file=f"the pond's files ({root})" if root else "the pond's files")
    return StorageError(reason, subject=pond, hint=f"{todo}; {outcome}", errno=code)


def _failing_file(exc: BaseException, root: Path | None) -> Path | None:
    """The file an ``OSError`` in ``exc``'s chain names (a copy names two: the one in
    the pond, if either is)."""
    current: BaseException | None = exc
    seen: set[int] = set()
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError):
            names = [Path(os.fsdecode(n)) for n in (current.filename2, current.filename) if n]
            inside = [n for n in names if root is not None and _is_inside(n, root)]
            if inside or names:
                return (inside or names)[0]
        elif not isinstance(current, PondError) and (found := _DUCKDB_FILE.search(str(current))):
            return Path(found[1])
        current = current.__cause__ or current.__context__
    return None


def _is_inside(file: Path, root: Path) -> bool:
    return file.is_absolute() and file.is_relative_to(root)
