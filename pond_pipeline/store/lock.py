"""The pond's write lock: one writer at a time, released by the kernel if its holder dies."""

import errno
import fcntl
import json
import os
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from pond_pipeline.errors import LockTimeoutError
from pond_pipeline.store.io_errors import storage_error

DEFAULT_LOCK_TIMEOUT = 30.0
_POLL_SECONDS = 0.02


@contextmanager
def write_lock(
    path: Path, timeout: float = DEFAULT_LOCK_TIMEOUT, holder: str = ""
) -> Iterator[None]:
    """Hold ``path``'s exclusive ``flock`` for the block; wait up to ``timeout`` seconds.

    The lock file's content names the holder (pid, host, since, command) so a waiter
    that gives up can say who is writing.
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:  # a read-only pond, or one this user may not write to
        failure = storage_error(exc, pond=str(path.parent), root=path.parent)
        if failure is None:
            raise
        raise failure from exc
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise LockTimeoutError(
                        f"another writer holds the write lock ({describe_holder(path)})",
                        subject=str(path.parent),
                        hint=f"waited {timeout:g}s; retry later or raise --lock-timeout",
                    ) from None
                time.sleep(_POLL_SECONDS)
        info = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "since": datetime.now(UTC).isoformat(timespec="seconds"),
            "command": holder,
        }
        os.ftruncate(handle, 0)
        # naming the holder is a courtesy: on a full disk the lock still works (and
        # `pond gc`, which frees space, can run)
        try:
            os.pwrite(handle, json.dumps(info).encode(), 0)
        except OSError as exc:
            if exc.errno not in (errno.ENOSPC, errno.EDQUOT):
                raise
        try:
            yield
        finally:
            os.ftruncate(handle, 0)
            fcntl.flock(handle, fcntl.LOCK_UN)
    finally:
        os.close(handle)


def describe_holder(path: Path) -> str:
    try:
        info = json.loads(path.read_text() or "{}")
    except (OSError, ValueError):
        info = {}
    if not info:
        return "holder unknown"
    command = f", running {info['command']!r}" if info.get("command") else ""
    return f"pid {info.get('pid')} on {info.get('host')} since {info.get('since')}{command}"
