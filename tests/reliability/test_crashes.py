"""Crashes: a writer killed with SIGKILL at random points never damages the pond.

A *zygote* process imports pond once and forks one writer per trial (so a trial costs
no interpreter start). A writer loops over transactions, each writing a file (inline
or blob), a directory and a series version, and journals ``begin``/``done`` around
each one. The test kills it:

- ``random``: after a random delay, wherever it is;
- ``after_blob``: paused right after a blob was written (``BlobStore.put_*``);
- ``before_commit``: paused at ``Oplog.append`` (blobs written, no commit yet);
- ``in_commit``: the writer kills itself a random few ms into ``write_deltalake``
  (the data file, the log commit, or the checkpoint after it);
- ``in_checkpoint``: the same, on a commit that writes a Delta checkpoint;
- ``in_compaction``: a random few ms after the commit, with compaction forced.

Two lanes (one pond each, run in parallel by xdist) of 26 trials: 52 kills. After
each kill: ``pond verify`` exits 0 (leftovers are notes: unreferenced blobs, oplog
files no commit references, a commit whose checksums were not written yet), every
earlier transaction is intact, the interrupted one is wholly there or wholly absent,
``pond gc`` removes exactly the leftovers (never a referenced blob) after which verify
notes nothing, and the dead writer's lock does not block the next writer. At the end
every committed byte reads back, and gc removes the killed writers' temporary files
once they are an hour old. Set ``POND_CRASH_SEED`` to replay a run.

In process: a step failing after the commit landed (checkpoint, compaction) does not
fail the transaction; a commit that fails writes nothing.
"""

import hashlib
import json
import os
import random
import re
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from deltalake.exceptions import DeltaError
from deltalake.table import TableOptimizer

import pond_pipeline.store.oplog as oplog_module
from pond_pipeline.api import Pond
from pond_pipeline.errors import NotFoundError, PondError
from pond_pipeline.store.lock import write_lock

pytestmark = pytest.mark.slow

LANES = 2
TRIALS_PER_LANE = 26  # 52 kills in all
INLINE_THRESHOLD = 1024
SIZES = (200, 3000, 70_000)  # inline, small blob, bigger blob
MODES = (
    "random",
    "after_blob",
    "in_commit",
    "before_commit",
    "random",
    "in_commit",
    "in_compaction",
)
CHECKPOINT_TRIALS = (7, 21)  # these trials kill during a checkpoint-writing commit
SEED = os.environ.get("POND_CRASH_SEED") or str(random.randrange(1 << 30))

ZYGOTE_SCRIPT = textwrap.dedent(
    """
    import json, os, random, signal, sys, threading, time, traceback
    from datetime import UTC, datetime, timedelta
    import pyarrow as pa
    import pond_pipeline.store.oplog as oplog_module
    from pond_pipeline.api import Pond, PondOptions
    from pond_pipeline.store.blobs import BlobStore
    from pond_pipeline.store.oplog import Oplog

    BASE = datetime(2024, 1, 1, tzinfo=UTC)
    CHECKPOINT_EVERY = int(oplog_module.TABLE_CONFIGURATION["delta.checkpointInterval"])

    def run_trial(spec):
        rng = random.Random(spec["seed"])
        trial, mode = spec["trial"], spec["mode"]
        journal = os.open(spec["journal"], os.O_WRONLY | os.O_CREAT | os.O_APPEND)
        state = {"k": -1}

        def note(**event):
            os.write(journal, (json.dumps(event) + "\\n").encode())

        def die_after(delay):
            timer = threading.Timer(delay, os.kill, (os.getpid(), signal.SIGKILL))
            timer.daemon = True
            timer.start()

        pause_at = rng.randrange(spec["pause_max"])

        def pause(where):
            note(event="paused", k=state["k"], where=where)
            time.sleep(120)

        if mode == "after_blob":
            for name in ("put_bytes", "put_file"):
                real = getattr(BlobStore, name)

                def after_put(self, *args, _real=real, **kwargs):
                    sha = _real(self, *args, **kwargs)
                    if state["k"] == pause_at:
                        pause("blob")
                    return sha

                setattr(BlobStore, name, after_put)
        elif mode == "before_commit":
            real_append = Oplog.append

            def append(self, *args, **kwargs):
                if state["k"] == pause_at:
                    pause("append")
                return real_append(self, *args, **kwargs)

            Oplog.append = append
        elif mode in ("in_commit", "in_checkpoint", "in_compaction"):
            real_write = oplog_module.write_deltalake

            def write(table, *args, **kwargs):
                if mode == "in_commit" and state["k"] == pause_at:
                    note(event="armed", k=state["k"])
                    die_after(rng.uniform(0, 0.04))
                if mode == "in_checkpoint" and (table.version() + 2) % CHECKPOINT_EVERY == 0:
                    note(event="armed", k=state["k"], version=table.version() + 1)
                    die_after(rng.uniform(0, 0.08))
                result = real_write(table, *args, **kwargs)
                if mode == "in_compaction" and state["k"] == pause_at:
                    oplog_module.COMPACT_AFTER_FILES = 0
                    note(event="armed", k=state["k"])
                    die_after(rng.uniform(0, 0.08))
                return result

            oplog_module.write_deltalake = write

        # the previous, killed writer must not hold the lock
        pond = Pond.open(spec["root"], PondOptions(lock_timeout=5))
        note(event="ready")
        for k in range(spec["txns"]):
            state["k"] = k
            size = rng.choice(spec["sizes"])
            command = f"t{trial} k{k}"
            note(event="begin", k=k, command=command, size=size)
            row = pa.table(
                {
                    "ts": pa.array(
                        [BASE + timedelta(seconds=trial * 10_000 + k)],
                        pa.timestamp("us", tz="UTC"),
                    ),
                    "trial": pa.array([trial], pa.int64()),
                    "k": pa.array([k], pa.int64()),
                }
            )
            with pond.transaction(command) as tx:
                tx.write_bytes(f"/files/t{trial}-{k}.bin", payload(f"t{trial}-{k}", size))
                tx.mkdir(f"/dirs/t{trial}-{k}")
                tx.write_table("/log.series", row, "series")
                txn = tx.txn_seq
            note(event="done", k=k, txn=txn)
        note(event="finished")

    for line in sys.stdin:
        spec = json.loads(line)
        if spec["cmd"] == "fork":
            pid = os.fork()
            if pid == 0:
                code = 0
                try:
                    run_trial(spec)
                except BaseException:
                    traceback.print_exc()
                    code = 1
                finally:
                    os._exit(code)
            print(json.dumps({"pid": pid}), flush=True)
        elif spec["cmd"] == "wait":
            _, status = os.waitpid(spec["pid"], 0)
            signaled = os.WIFSIGNALED(status)
            print(
                json.dumps(
                    {
                        "signal": os.WTERMSIG(status) if signaled else None,
                        "code": None if signaled else os.WEXITSTATUS(status),
                    }
                ),
                flush=True,
            )
    """
)


class Zygote:
    """A process that imported pond once and forks a writer per trial."""

    def __init__(self, payload_source: str):
        self.process = subprocess.Popen(
            [sys.executable, "-c", payload_source + ZYGOTE_SCRIPT],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    def _ask(self, message: dict[str, Any]) -> dict[str, Any]:
        assert self.process.stdin is not None
        assert self.process.stdout is not None
        self.process.stdin.write(json.dumps(message) + "\n")
        self.process.stdin.flush()
        answer: dict[str, Any] = json.loads(self.process.stdout.readline())
        return answer

    def fork(self, **spec: Any) -> int:
        pid: int = self._ask({"cmd": "fork", **spec})["pid"]
        return pid

    def wait(self, pid: int) -> dict[str, Any]:
        return self._ask({"cmd": "wait", "pid": pid})

    def close(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        self.process.wait(timeout=30)


@pytest.fixture
def zygote(payload_source: str) -> Iterator[Zygote]:
    process = Zygote(payload_source)
    yield process
    process.close()


def read_journal(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    lines = path.read_text().splitlines()
    return [json.loads(line) for line in lines if line.endswith("}")]


def wait_for(path: Path, event: str, timeout: float = 60) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        events = read_journal(path)
        if any(e["event"] in (event, "finished") for e in events):
            return events
        time.sleep(0.005)
    raise AssertionError(f"the writer never reached {event!r}: {read_journal(path)[-3:]}")


@dataclass
class Model:
    """What the pond must hold: every committed transaction of every trial so far."""

    commands: dict[str, int] = field(default_factory=lambda: {"init": 1, "setup": 2})
    files: dict[str, tuple[str, int, int]] = field(default_factory=dict)  # path → tag, size, txn
    rows: set[tuple[int, int]] = field(default_factory=set)


def exists(pond: Pond, path: str) -> bool:
    try:
        pond.node(path)
    except NotFoundError:
        return False
    return True


def check_after_kill(
    root: Path,
    trial: int,
    events: list[dict[str, Any]],
    model: Model,
    make_payload: Callable[[str, int], bytes],
    cli_on: Callable[..., Any],
    read_log: Callable[[Path], list[dict[str, Any]]],
) -> str:
    """Check the pond after trial ``trial``'s writer died; update ``model``; a summary."""
    begun = {e["k"]: e for e in events if e["event"] == "begin"}
    done = {e["k"]: e["txn"] for e in events if e["event"] == "done"}
    interrupted = [k for k in begun if k not in done]
    assert len(interrupted) <= 1

    # the dead writer's lock does not block the next one; gc runs under it
    verify = cli_on(root, "verify")
    assert verify.exit_code == 0, verify.stderr
    assert all(line.startswith("note: ") for line in verify.stderr.splitlines()), verify.stderr

    logged = {entry["command"]: entry["txn"] for entry in read_log(root)}
    for k, txn in done.items():
        assert logged.get(f"t{trial} k{k}") == txn, (k, txn)
    interrupted_landed = False
    if interrupted:
        interrupted_landed = f"t{trial} k{interrupted[0]}" in logged
    expected = dict(model.commands)
    for k in sorted(begun):
        command = f"t{trial} k{k}"
        if k in done or interrupted_landed:
            expected[command] = logged[command]
    assert logged == expected, "a transaction appeared or vanished"
    assert sorted(logged.values()) == list(range(1, len(logged) + 1))

    pond = Pond.open(str(root))
    series_txns = {v.txn_seq for v in pond.node("/log.series").versions}
    for k, event in sorted(begun.items()):
        command, path = f"t{trial} k{k}", f"/files/t{trial}-{k}.bin"
        if command in logged:  # wholly there: file, directory and series version
            txn = logged[command]
            data = make_payload(f"t{trial}-{k}", event["size"])
            assert pond.read_bytes(path) == data, path
            assert [v.txn_seq for v in pond.node(path).versions] == [txn]
            assert pond.node(f"/dirs/t{trial}-{k}").latest.txn_seq == txn
            assert txn in series_txns
            model.commands[command] = txn
            model.files[path] = (f"t{trial}-{k}", event["size"], txn)
            model.rows.add((trial, k))
        else:  # wholly absent
            assert not exists(pond, path)
            assert not exists(pond, f"/dirs/t{trial}-{k}")
    assert series_txns == {2} | {txn for _, _, txn in model.files.values()}

    # every earlier file still has its recorded checksum (verify recomputed them all)
    snapshot = pond.snapshot()
    files_dir = snapshot.listing(pond.node("/files").node_id)
    assert len(files_dir) == len(model.files)
    for path, (tag, size, _) in model.files.items():
        record = snapshot.latest(files_dir[path.rsplit("/", 1)[1]].node_id)
        assert record is not None, path
        assert record.sha256 == _sha(make_payload(tag, size)), path

    # the dead writer's lock is free at once
    with write_lock(root / "write.lock", timeout=0.5, holder="probe"):
        pass

    # leftovers: unreferenced blobs and unreferenced oplog files are noted; gc removes
    # exactly them (never a referenced blob), after which verify notes neither
    referenced = {r.blob for r in snapshot.all_records() if r.blob}
    unreferenced = sorted(set(pond.blobs.all_shas()) - referenced)
    blob_note = re.search(r"note: (\d+) unreferenced blob", verify.stderr)
    assert (int(blob_note.group(1)) if blob_note else 0) == len(unreferenced)
    files_note = re.search(r"note: (\d+) oplog file\(s\) no commit references", verify.stderr)
    orphans = int(files_note.group(1)) if files_note else 0
    unchecksummed = "have no recorded checksums" in verify.stderr
    if unreferenced or orphans or unchecksummed:
        gc = cli_on(root, "gc")
        assert gc.exit_code == 0, gc.stderr
        assert gc.stdout == f"removed {len(unreferenced)} unreferenced blob(s)\n"
        assert set(pond.blobs.all_shas()) == referenced
        after = cli_on(root, "verify")
        assert after.exit_code == 0, after.stderr
        assert after.stderr == ""  # no note left: blobs, oplog files and checksums done
    landed = ("landed" if interrupted_landed else "absent") if interrupted else "none"
    return (
        f"{len(done)} done, interrupted {landed}, {len(unreferenced)} blob(s) and "
        f"{orphans} oplog file(s) left{', unchecksummed commit' if unchecksummed else ''}"
    )


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def setup_pond(root: Path) -> None:
    pond = Pond.create(str(root), inline_threshold=INLINE_THRESHOLD)
    first = pa.table(
        {
            "ts": pa.array([0], pa.timestamp("us", tz="UTC")),
            "trial": pa.array([-1], pa.int64()),
            "k": pa.array([-1], pa.int64()),
        }
    )
    with pond.transaction("setup") as tx:
        tx.mkdir("/files")
        tx.mkdir("/dirs")
        tx.write_table("/log.series", first, "series", time_column="ts")


def run_trial(
    zygote: Zygote, root: Path, journal: Path, trial: int, mode: str, rng: random.Random
) -> list[dict[str, Any]]:
    spec = {
        "root": str(root),
        "journal": str(journal),
        "trial": trial,
        "mode": mode,
        "seed": rng.randrange(1 << 30),
        "sizes": list(SIZES),
        "txns": 1000 if mode in ("random", "in_checkpoint") else 12,
        "pause_max": 6,
    }
    pid = zygote.fork(**spec)
    if mode == "random":
        wait_for(journal, "ready")
        time.sleep(rng.uniform(0.0, 0.6))
        os.kill(pid, signal.SIGKILL)
    elif mode in ("after_blob", "before_commit"):
        wait_for(journal, "paused")
        os.kill(pid, signal.SIGKILL)
    status = zygote.wait(pid)  # in_* modes kill themselves
    events = read_journal(journal)
    assert status["signal"] == signal.SIGKILL, (status, events[-3:])
    return events


@pytest.mark.parametrize("lane", range(LANES))
def test_writers_killed_at_random_points(
    lane: int, tmp_path: Path, zygote: Zygote, make_payload, cli_on, read_log
) -> None:
    rng = random.Random(f"{SEED}-{lane}")
    root = tmp_path / "pond"
    setup_pond(root)
    model = Model()
    summaries: list[str] = []
    for trial in range(TRIALS_PER_LANE):
        mode = "in_checkpoint" if trial in CHECKPOINT_TRIALS else MODES[trial % len(MODES)]
        journal = tmp_path / f"journal-{trial}.jsonl"
        context = f"seed {SEED} lane {lane} trial {trial} mode {mode}"
        started = time.monotonic()
        events = run_trial(zygote, root, journal, trial, mode, rng)
        killed = time.monotonic()
        try:
            summary = check_after_kill(root, trial, events, model, make_payload, cli_on, read_log)
        except AssertionError as exc:
            raise AssertionError(f"{context}: {exc}") from exc
        timing = f"{killed - started:.1f}s + {time.monotonic() - killed:.1f}s"
        summaries.append(f"{trial}:{mode}: {summary} ({timing})")
    # at the end, every committed byte reads back
    pond = Pond.open(str(root))
    for path, (tag, size, _) in model.files.items():
        assert pond.read_bytes(path) == make_payload(tag, size), path
    rows = pond.read_table("/log.series").to_pylist()
    assert sorted((r["trial"], r["k"]) for r in rows) == sorted({(-1, -1)} | model.rows)
    # temporary files of killed writers: gc removes them once they are an hour old
    scratch = [p for p in (root / "tmp").iterdir() if p.is_file()]
    assert cli_on(root, "gc").exit_code == 0
    assert all(p.exists() for p in scratch)  # too fresh: a live writer may own them
    for path in scratch:
        os.utime(path, (time.time() - 7200, time.time() - 7200))
    assert cli_on(root, "gc").exit_code == 0
    assert not any(p.exists() for p in scratch)
    summaries.append(f"{len(scratch)} temporary file(s) left by killed writers, removed by gc")
    sys.stdout.write("\n".join(summaries) + "\n")  # shown with -s


# -- in process: a step after the commit fails --------------------------------------------
def test_a_failure_after_the_commit_is_not_a_failed_transaction(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cli_on, read_log
) -> None:
    """The checkpoint (inside ``write_deltalake``, after the commit) or the compaction
    may fail once the commit landed: the transaction then succeeded, and says so."""
    pond = Pond.create(str(tmp_path / "pond"))
    real_write = oplog_module.write_deltalake

    def commit_then_fail(*args: Any, **kwargs: Any) -> None:
        real_write(*args, **kwargs)
        raise DeltaError("simulated: the checkpoint could not be written")

    def fail_to_compact(*args: Any, **kwargs: Any) -> None:
        raise OSError("simulated: compaction failed")

    monkeypatch.setattr(oplog_module, "write_deltalake", commit_then_fail)
    with pond.transaction("checkpoint fails") as tx:
        tx.write_bytes("/a.txt", b"a")
    monkeypatch.setattr(oplog_module, "write_deltalake", real_write)
    monkeypatch.setattr(oplog_module, "COMPACT_AFTER_FILES", 0)
    monkeypatch.setattr(TableOptimizer, "compact", fail_to_compact)
    with pond.transaction("compaction fails") as tx:
        tx.write_bytes("/b.txt", b"b")
    monkeypatch.undo()
    assert [e["command"] for e in read_log(pond.location.root)] == [
        "compaction fails",
        "checkpoint fails",
        "init",
    ]
    reopened = Pond.open(str(pond.location.root))
    assert reopened.read_bytes("/a.txt") == b"a"
    assert reopened.read_bytes("/b.txt") == b"b"
    assert cli_on(pond.location.root, "verify").exit_code == 0


def test_a_commit_that_fails_writes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cli_on, read_log
) -> None:
    pond = Pond.create(str(tmp_path / "pond"))

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise OSError("simulated: disk full")

    monkeypatch.setattr(oplog_module, "write_deltalake", refuse)
    with (
        pytest.raises(PondError, match="the commit failed: simulated: disk full") as caught,
        pond.transaction("doomed") as tx,
    ):
        tx.write_bytes("/a.txt", b"a")
    monkeypatch.undo()
    assert caught.value.hint == "nothing was written; retry"
    assert [e["command"] for e in read_log(pond.location.root)] == ["init"]
    assert not Pond.open(str(pond.location.root)).resolver().exists("/a.txt")
    assert cli_on(pond.location.root, "verify").exit_code == 0


def test_leftovers_of_interrupted_commits_are_noted_and_removed(tmp_path: Path, cli_on) -> None:
    """What a commit killed half-way leaves in oplog/ (a data file no commit added, a
    temporary commit or checksum file) is noted by verify and removed by gc; a file
    pond does not know is left alone."""
    pond = Pond.create(str(tmp_path / "pond"))
    with pond.transaction("one") as tx:
        tx.write_bytes("/a.txt", b"a")
    oplog = pond.location.oplog
    data_file = next(p for p in oplog.rglob("*.parquet") if "_delta_log" not in p.parts)
    planted = [
        data_file.with_name("part-00000-0rphan-c000.snappy.parquet"),
        oplog / "_delta_log" / "_commit_0f1e2d3c.json.tmp",
        oplog / "_pond_checksums" / ".00000000000000000003.json.tmp",
    ]
    for path in planted:
        path.write_bytes(data_file.read_bytes())
    unknown = oplog / "_delta_log" / "00000000000000000001.crc"
    unknown.write_text("{}")
    verify = cli_on(pond.location.root, "verify")
    assert verify.exit_code == 0
    assert verify.stderr == (
        "note: 3 oplog file(s) no commit references, left by interrupted commits; "
        "`pond gc` removes them\n"
    )
    assert cli_on(pond.location.root, "gc").exit_code == 0
    assert not any(path.exists() for path in planted)
    assert unknown.exists()
    assert cli_on(pond.location.root, "verify").stderr == ""
    assert Pond.open(str(pond.location.root)).read_bytes("/a.txt") == b"a"


def test_a_commit_whose_checksums_were_not_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cli_on
) -> None:
    """A writer killed between its commit and its checksum record: verify notes it,
    gc records the checksums (the commit's data files read cleanly)."""
    pond = Pond.create(str(tmp_path / "pond"))
    monkeypatch.setattr(oplog_module.Oplog, "_record_checksums", lambda self, version: None)
    with pond.transaction("unrecorded") as tx:
        tx.write_bytes("/a.txt", b"a")
    monkeypatch.undo()
    record = pond.location.oplog / "_pond_checksums" / f"{pond.oplog.version():020}.json"
    assert not record.exists()
    verify = cli_on(pond.location.root, "verify")
    assert verify.exit_code == 0
    assert verify.stderr.startswith("note: 1 commit(s) have no recorded checksums")
    assert cli_on(pond.location.root, "gc").exit_code == 0
    assert record.exists()
    assert cli_on(pond.location.root, "verify").stderr == ""
