"""Writers take the pond's write lock in turn; readers take none."""

import os
import signal
import subprocess
import sys
import textwrap
import time

from pond_pipeline.store.lock import write_lock

HOLDER = textwrap.dedent(
    """
    import sys, time
    from pond_pipeline.api import Pond
    pond = Pond.open(sys.argv[1])
    with pond.transaction("slow import") as tx:
        tx.mkdir("/never")
        print("locked", flush=True)
        time.sleep(60)
    """
)


def test_a_second_writer_gives_up_naming_the_holder(run, sample_pond, pond_state, error):
    before = pond_state()
    with write_lock(sample_pond.location.lock_file, 1, holder="held by the test"):
        started = time.monotonic()
        result = run("--lock-timeout", "0.3", "mkdir", "/blocked")
        waited = time.monotonic() - started
        readers = [run("list"), run("cat", "/notes.txt"), run("log", "--limit", "1")]
    assert result.exit_code == 1
    assert 0.3 <= waited < 5
    line = error(result)
    assert line.startswith(
        f"{sample_pond.location.root}: another writer holds the write lock (pid {os.getpid()} on "
    )
    assert "since 20" in line
    assert "running 'held by the test'" in line
    assert line.endswith("; waited 0.3s; retry later or raise --lock-timeout")
    assert [r.exit_code for r in readers] == [0, 0, 0]  # readers take no lock
    assert pond_state() == before
    assert run("mkdir", "/blocked").exit_code == 0  # free again


def test_a_lock_held_by_a_killed_writer_is_released(run, sample_pond, pond_state, error):
    before = pond_state()
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(sample_pond.location.root)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None
    assert holder.stdout.readline().strip() == "locked"
    blocked = run("--lock-timeout", "0.2", "mkdir", "/next")
    assert blocked.exit_code == 1
    assert f"pid {holder.pid} " in error(blocked)
    assert "running 'slow import'" in error(blocked)
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait()
    assert pond_state() == before  # the killed transaction left nothing
    result = run("--lock-timeout", "2", "mkdir", "/next")
    assert result.exit_code == 0, result.stderr
    assert [i.path for i in sample_pond.list_nodes("/n*")] == ["/next", "/notes.txt"]
