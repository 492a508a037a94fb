"""Concurrent writers: 4 processes x 100 mixed transactions against one pond.

Each writer records which of its transactions reported success (and the ``txn_seq``
it got) or failure. Afterwards every success is in the pond and in ``pond log`` with
its command, no failure left a trace, ``pond verify`` is clean, and the log lists
exactly the successes (plus the setup). A second run with a tiny lock timeout makes
some transactions fail with ``LockTimeoutError``; they leave nothing at all behind.
Meanwhile a reader (no lock) reads the pond over and over: every view it gets is
whole (each file's bytes right, the series one row per version), and ``verify`` run
while commits land finds no problem.

Transactions the writer abandons by raising (``abort``) after storing a blob leave
that blob, as documented: ``pond verify`` notes exactly those, and ``pond gc``
removes exactly those.
"""

import hashlib
import json
import subprocess
import sys
import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from pond_pipeline.api import Pond
from pond_pipeline.errors import NotFoundError

pytestmark = pytest.mark.slow

WRITERS = 4
INLINE_THRESHOLD = 1024
BASE_TIME = datetime(2024, 1, 1, tzinfo=UTC)

WRITER_SCRIPT = textwrap.dedent(
    """
    import json, random, sys
    from datetime import UTC, datetime, timedelta
    import pyarrow as pa
    from pond_pipeline.api import Pond, PondOptions
    from pond_pipeline.errors import LockTimeoutError

    root, writer, count, timeout, seed = sys.argv[1:6]
    writer, count, timeout = int(writer), int(count), float(timeout)
    rng = random.Random(seed)
    OPS = ["file", "file", "append", "append", "mkdir", "dynamic", "abort"]
    BASE = datetime(2024, 1, 1, tzinfo=UTC)

    class Abort(Exception):
        pass

    pond = Pond.open(root, PondOptions(lock_timeout=timeout))
    print("ready", flush=True)
    sys.stdin.readline()  # every writer starts at once
    results = []
    for k in range(count):
        op = rng.choice(OPS)
        size = rng.choice([100, 5000])
        command = f"w{writer} k{k} {op}"
        result = {"k": k, "op": op, "size": size, "command": command}
        try:
            with pond.transaction(command) as tx:
                result["txn"] = tx.txn_seq
                if op == "file":
                    tx.write_bytes(f"/w{writer}/f{k}.bin", payload(f"w{writer}-{k}", size))
                elif op == "append":
                    ts = BASE + timedelta(seconds=writer * 10_000 + k)
                    row = pa.table(
                        {
                            "ts": pa.array([ts], pa.timestamp("us", tz="UTC")),
                            "writer": pa.array([writer], pa.int64()),
                            "k": pa.array([k], pa.int64()),
                        }
                    )
                    tx.write_table("/shared.series", row, "series")
                elif op == "mkdir":
                    tx.mkdir(f"/w{writer}/d{k}")
                elif op == "dynamic":
                    config = {
                        "source": "/shared.series",
                        "query": f"SELECT * FROM source WHERE writer = {writer} AND k <= {k}",
                    }
                    tx.create_dynamic(
                        f"/derived/w{writer}.series", "sql_derived_series", config, overwrite=True
                    )
                else:  # written, then abandoned: a failure that must leave nothing
                    tx.write_bytes(f"/w{writer}/f{k}.bin", payload(f"w{writer}-{k}", size))
                    tx.mkdir(f"/w{writer}/d{k}")
                    raise Abort()
            result["ok"] = True
        except LockTimeoutError as exc:
            result.update(ok=False, error="lock", message=str(exc))
        except Abort:
            result.update(ok=False, error="abort")
        results.append(result)
    print(json.dumps(results), flush=True)
    """
)


READER_SCRIPT = textwrap.dedent(
    """
    import json, os, sys, time
    from pond_pipeline.api import Pond, PondOptions
    from pond_pipeline.errors import PondError

    root, stop = sys.argv[1:3]
    passes, verified, errors = 0, 0, []
    print("ready", flush=True)
    pond = None
    while not os.path.exists(stop):
        if passes % 4 == 0:  # sometimes a fresh open, else the kept, incremental one
            pond = Pond.open(root)
        try:
            at = pond.snapshot().last_txn  # one transaction's view for the whole pass
            for writer in range(4):
                for info in pond.list_nodes(f"/w{writer}/", at=at):
                    if info.path.endswith(".bin"):
                        k = info.path.rsplit("/f", 1)[1].removesuffix(".bin")
                        data = pond.read_bytes(info.path, at=at)
                        if data != payload(f"w{writer}-{k}", len(data)):
                            errors.append(f"{info.path} at {at}: wrong bytes")
            rows = pond.read_table("/shared.series", at=at).num_rows
            versions = len(pond.node("/shared.series", at=at).versions)
            if rows != versions:  # one row per append: a half-seen one would differ
                errors.append(f"/shared.series at {at}: {rows} rows, {versions} versions")
            if passes % 5 == 2:  # verify while commits land: notes at most, no problem
                errors += [f"verify: {p}" for p in pond.verify().problems]
                verified += 1
        except PondError as exc:
            errors.append(str(exc))
        passes += 1
        time.sleep(0.05)
    print(json.dumps({"passes": passes, "verified": verified, "errors": errors[:5]}), flush=True)
    """
)
"""Reads while the writers write: each pass is one transaction's view, and must be whole."""


@dataclass(frozen=True)
class Outcome:
    writer: int
    k: int
    op: str
    size: int
    command: str
    ok: bool
    txn: int | None
    error: str | None


def setup_pond(root: Path) -> dict[int, str]:
    """The pond the writers share; returns the setup transactions (txn → command)."""
    pond = Pond.create(str(root), inline_threshold=INLINE_THRESHOLD)
    first = pa.table(
        {
            "ts": pa.array([BASE_TIME - timedelta(days=1)], pa.timestamp("us", tz="UTC")),
            "writer": pa.array([-1], pa.int64()),
            "k": pa.array([-1], pa.int64()),
        }
    )
    with pond.transaction("setup") as tx:
        for writer in range(WRITERS):
            tx.mkdir(f"/w{writer}")
        tx.mkdir("/derived")
        tx.write_table("/shared.series", first, "series", time_column="ts")
    return {1: "init", 2: "setup"}


def run_writers(
    root: Path,
    count: int,
    lock_timeout: float,
    payload_source: str,
    seed: str,
    reader: bool = False,
) -> list[Outcome]:
    script = payload_source + WRITER_SCRIPT
    stop = root.parent / "stop-reading"
    reading = (
        subprocess.Popen(
            [sys.executable, "-c", payload_source + READER_SCRIPT, str(root), str(stop)],
            stdout=subprocess.PIPE,
            text=True,
        )
        if reader
        else None
    )
    processes = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                script,
                str(root),
                str(writer),
                str(count),
                str(lock_timeout),
                f"{seed}-{writer}",
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for writer in range(WRITERS)
    ]
    for process in [*processes, *([reading] if reading else [])]:
        assert process.stdout is not None
        assert process.stdout.readline().strip() == "ready"
    for process in processes:
        assert process.stdin is not None
        process.stdin.write("go\n")
        process.stdin.close()
    outcomes: list[Outcome] = []
    for writer, process in enumerate(processes):
        assert process.stdout is not None
        stdout = process.stdout.read()
        assert process.wait(timeout=240) == 0, stdout
        for item in json.loads(stdout.strip().splitlines()[-1]):
            outcomes.append(
                Outcome(
                    writer,
                    item["k"],
                    item["op"],
                    item["size"],
                    item["command"],
                    item["ok"],
                    item.get("txn"),
                    item.get("error"),
                )
            )
    if reading is not None:
        stop.touch()
        assert reading.stdout is not None
        report = json.loads(reading.stdout.read().strip().splitlines()[-1])
        assert reading.wait(timeout=60) == 0
        assert report["errors"] == []
        assert report["passes"] > 0
        assert report["verified"] > 0
        passes, verified = report["passes"], report["verified"]
        sys.stdout.write(f"the reader: {passes} whole passes, {verified} clean verifies\n")
    return outcomes


def exists(pond: Pond, path: str) -> bool:
    try:
        pond.node(path)
    except NotFoundError:
        return False
    return True


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def check_outcomes(
    root: Path,
    setup: dict[int, str],
    outcomes: list[Outcome],
    make_payload: Callable[[str, int], bytes],
    cli_on: Callable[..., Any],
    read_log: Callable[[Path], list[dict[str, Any]]],
) -> None:
    successes = [o for o in outcomes if o.ok]
    failures = [o for o in outcomes if not o.ok]

    # the log lists exactly the successful transactions, each with the txn it reported
    logged = {entry["txn"]: entry["command"] for entry in read_log(root)}
    expected = dict(setup)
    for outcome in successes:
        assert outcome.txn is not None
        assert outcome.txn not in expected, f"two transactions reported txn {outcome.txn}"
        expected[outcome.txn] = outcome.command
    assert logged == expected
    assert sorted(logged) == list(range(1, len(logged) + 1))

    pond = Pond.open(str(root))
    records = list(pond.snapshot().all_records())
    txns_written = {r.txn_seq for r in records}
    assert txns_written == set(expected)

    for outcome in successes:
        w, k = outcome.writer, outcome.k
        if outcome.op == "file":
            data = make_payload(f"w{w}-{k}", outcome.size)
            assert pond.read_bytes(f"/w{w}/f{k}.bin") == data
            (version,) = pond.node(f"/w{w}/f{k}.bin").versions
            assert version.txn_seq == outcome.txn
        elif outcome.op == "mkdir":
            assert pond.node(f"/w{w}/d{k}").latest.txn_seq == outcome.txn
        elif outcome.op == "dynamic":
            versions = pond.node(f"/derived/w{w}.series").versions
            assert outcome.txn in {v.txn_seq for v in versions}
    for outcome in failures:
        w, k = outcome.writer, outcome.k
        assert not exists(pond, f"/w{w}/f{k}.bin"), outcome
        assert not exists(pond, f"/w{w}/d{k}"), outcome

    # series: exactly the successful appends, one version each, with their txn
    appends = sorted((o.writer, o.k) for o in successes if o.op == "append")
    rows = pond.read_table("/shared.series").to_pylist()
    assert sorted((r["writer"], r["k"]) for r in rows) == sorted([(-1, -1), *appends])
    versions = pond.node("/shared.series").versions
    assert [v.txn_seq for v in versions] == sorted(
        [2, *(o.txn for o in successes if o.op == "append")]  # type: ignore[misc]
    )

    # each derived node: its latest config is its writer's last successful update
    for w in range(WRITERS):
        updates = [o for o in successes if o.writer == w and o.op == "dynamic"]
        if not updates:
            assert not exists(pond, f"/derived/w{w}.series")
            continue
        last = max(updates, key=lambda o: o.txn or 0)
        node = pond.node(f"/derived/w{w}.series")
        assert len(node.versions) == len(updates)
        assert f"k <= {last.k}" in node.raw_config["query"]
        count = pond.query("SELECT count(*) AS n FROM source", source=node.path)
        assert count.column("n")[0].as_py() == sum(
            1 for a in appends if a[0] == w and a[1] <= last.k
        )

    # the only leftovers: blobs of the abandoned transactions (never of a lock timeout)
    abandoned = {
        sha256(make_payload(f"w{o.writer}-{o.k}", o.size))
        for o in failures
        if o.error == "abort" and o.size > INLINE_THRESHOLD
    }
    verify = cli_on(root, "verify")
    assert verify.exit_code == 0, verify.stderr
    assert verify.stdout == f"ok: {len(records)} versions checked\n"
    if abandoned:
        assert verify.stderr == (
            f"note: {len(abandoned)} unreferenced blob(s), left by interrupted writes; "
            "`pond gc` removes them\n"
        )
    else:
        assert verify.stderr == ""
    gc = cli_on(root, "gc")
    assert gc.stdout == f"removed {len(abandoned)} unreferenced blob(s)\n"
    assert set(pond.blobs.all_shas()) == {r.blob for r in records if r.blob}
    after = cli_on(root, "verify")
    assert after.exit_code == 0
    assert after.stderr == ""


def test_four_writers_all_succeed(
    tmp_path: Path, make_payload, payload_source, cli_on, read_log
) -> None:
    root = tmp_path / "pond"
    setup = setup_pond(root)
    outcomes = run_writers(root, 100, 120.0, payload_source, "generous", reader=True)
    assert len(outcomes) == WRITERS * 100
    assert all(o.ok or o.error == "abort" for o in outcomes), [o for o in outcomes if not o.ok][:3]
    assert {o.op for o in outcomes} == {"file", "append", "mkdir", "dynamic", "abort"}
    check_outcomes(root, setup, outcomes, make_payload, cli_on, read_log)


def test_a_tiny_lock_timeout_fails_cleanly(
    tmp_path: Path, make_payload, payload_source, cli_on, read_log
) -> None:
    root = tmp_path / "pond"
    setup = setup_pond(root)
    outcomes = run_writers(root, 30, 0.001, payload_source, "tiny")
    timed_out = [o for o in outcomes if o.error == "lock"]
    assert timed_out, "expected some transactions to time out on the lock"
    assert any(o.ok for o in outcomes)
    check_outcomes(root, setup, outcomes, make_payload, cli_on, read_log)
