"""The write lock: one holder at a time, a waiter names the holder, a dead holder frees it."""

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from pond_pipeline.errors import LockTimeoutError
from pond_pipeline.store.lock import describe_holder, write_lock

HOLD_SCRIPT = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from pond_pipeline.store.lock import write_lock
    with write_lock(Path(sys.argv[1]), 5, holder="sleeper"):
        print("locked", flush=True)
        time.sleep(60)
    """
)


def hold_in_subprocess(lock: Path) -> subprocess.Popen[str]:
    process = subprocess.Popen(
        [sys.executable, "-c", HOLD_SCRIPT, str(lock)], stdout=subprocess.PIPE, text=True
    )
    assert process.stdout is not None
    assert process.stdout.readline().strip() == "locked"
    return process


def test_a_second_writer_times_out_naming_the_holder(tmp_path: Path) -> None:
    lock = tmp_path / "write.lock"
    with write_lock(lock, 1, holder="first writer"):
        started = time.monotonic()
        with pytest.raises(LockTimeoutError) as caught, write_lock(lock, 0.3, holder="second"):
            pytest.fail("the second writer must not get the lock")
        waited = time.monotonic() - started
    assert 0.3 <= waited < 3
    message = caught.value.message
    assert f"pid {os.getpid()}" in message
    assert "running 'first writer'" in message
    assert " since 20" in message
    assert caught.value.subject == str(tmp_path)
    assert "waited 0.3s" in (caught.value.hint or "")


def test_the_lock_is_free_again_after_the_block(tmp_path: Path) -> None:
    lock = tmp_path / "write.lock"
    with write_lock(lock, 1, holder="a"):
        assert f'"pid": {os.getpid()}' in lock.read_text()
    assert describe_holder(lock) == "holder unknown"
    with write_lock(lock, 0.1, holder="b"):
        pass


def test_a_waiter_gets_the_lock_when_the_holder_releases(tmp_path: Path) -> None:
    lock = tmp_path / "write.lock"
    process = hold_in_subprocess(lock)
    try:
        with pytest.raises(LockTimeoutError) as caught, write_lock(lock, 0.2):
            pass
        assert f"pid {process.pid}" in caught.value.message
        assert "running 'sleeper'" in caught.value.message
    finally:
        process.terminate()
        process.wait()
    with write_lock(lock, 5):
        pass


def test_a_lock_held_by_a_killed_process_is_released(tmp_path: Path) -> None:
    lock = tmp_path / "write.lock"
    process = hold_in_subprocess(lock)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    started = time.monotonic()
    with write_lock(lock, 5, holder="after the crash"):
        assert time.monotonic() - started < 1
        assert "after the crash" in describe_holder(lock)
