"""DuckDB's spill folders do not accumulate (issue 12): each is named for its process,
made only when DuckDB spills, removed with its database and at exit, and those of
processes that are gone (killed) are removed by the next process's first query."""

import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from pond_pipeline.query import engine
from pond_pipeline.query.engine import SqlSession, sweep_spill_folders

QUERY = (
    "from pond_pipeline.query.engine import SqlSession\n"
    "with SqlSession() as session:\n"
    "    session.query('SELECT 42 AS x')\n"
)


def namespace() -> str:
    return re.sub(r"\D", "", os.readlink("/proc/self/ns/pid")) or "0"


def dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def spill_folders(pid: int) -> list[str]:
    prefix = f"pond-duckdb-{namespace()}-{pid}-"
    return [n for n in os.listdir(tempfile.gettempdir()) if n.startswith(prefix)]


def test_the_spill_folder_is_named_for_its_process_and_made_only_to_spill() -> None:
    with SqlSession() as session:
        session.query("SELECT 1 AS x")
        row = session._con.execute("SELECT current_setting('temp_directory')").fetchone()
    folder = row[0]
    name = Path(folder).name
    assert re.fullmatch(rf"pond-duckdb-{namespace()}-{os.getpid()}-\d+", name), name
    assert Path(folder).parent == Path(tempfile.gettempdir())
    assert not Path(folder).exists()  # nothing spilled: nothing made


def test_a_killed_process_leaves_nothing_and_a_dead_ones_folder_is_swept(
    tmp_path: Path,
) -> None:
    # a process killed after its first query: it had made no folder
    script = QUERY + "import time\nprint('ready', flush=True)\ntime.sleep(60)\n"
    process = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE)
    assert process.stdout is not None
    assert process.stdout.readline() == b"ready\n"
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert spill_folders(process.pid) == []
    # one that had spilled when it was killed: its folder goes at the next process's start
    dead = dead_pid()
    left = Path(tempfile.gettempdir()) / f"pond-duckdb-{namespace()}-{dead}-1"
    left.mkdir()
    (left / "duckdb_temp_block-1.block").write_bytes(b"x" * 1000)
    mine = Path(tempfile.gettempdir()) / f"pond-duckdb-{namespace()}-{os.getpid()}-999"
    mine.mkdir()  # a live process's: kept
    other = Path(tempfile.gettempdir()) / "pond-duckdb-1-1-1"  # another pid namespace's
    other.mkdir(exist_ok=True)
    try:
        subprocess.run([sys.executable, "-c", QUERY], check=True, timeout=120)
        assert not left.exists()
        assert mine.is_dir()
        assert other.is_dir()
    finally:
        for folder in (left, mine, other):
            if folder.exists():
                os.rmdir(folder)


def test_old_style_folders_are_swept_after_a_day(tmp_path: Path) -> None:
    young = tmp_path / "pond-duckdb-abc12_xy"
    old = tmp_path / "pond-duckdb-zz9_qq01"
    unrelated = tmp_path / "pond-duckdb-notes"
    for folder in (young, old, unrelated):
        folder.mkdir()
    day_ago = time.time() - 2 * 24 * 3600
    os.utime(old, (day_ago, day_ago))
    os.utime(unrelated, (day_ago, day_ago))
    assert sweep_spill_folders(str(tmp_path)) == [old.name]
    assert young.is_dir()
    assert unrelated.is_dir()
    assert not old.exists()


def test_a_forked_child_names_its_own_folders() -> None:
    engine._spill_folder()
    read, write = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - the child
        os.close(read)
        os.write(write, engine._spill_folder().encode())
        os._exit(0)
    os.close(write)
    with os.fdopen(read) as handle:
        name = Path(handle.read()).name
    os.waitpid(child, 0)
    assert name.startswith(f"pond-duckdb-{namespace()}-{child}-"), name
