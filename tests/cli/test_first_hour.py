"""The first hour of a new user (issue 13): what they typed, and the one line that helps."""

import os
import pty
import subprocess
import sys
from pathlib import Path

import pyarrow as pa

from pond_pipeline.api import Pond

POND_BIN = Path(sys.executable).with_name("pond")


def test_copy_to_a_new_directory_needs_p_and_then_makes_it(
    pond, run, error, host_file, pond_state
) -> None:
    logger = host_file("logger.bin", b"\x00\x01binary")
    before = pond_state()
    refused = run("copy", str(logger), "/raw/", "--type", "data")
    assert refused.exit_code == 2
    assert error(refused) == (
        "/raw/: no such directory (a trailing / names a directory); "
        "create it with `pond mkdir -p /raw/`, or pass -p"
    )
    assert pond_state() == before
    made = run("copy", str(logger), "/raw/", "--type", "data", "-p")
    assert made.exit_code == 0, made.stderr
    assert run("list", "/raw/").stdout == "/raw/logger.bin\n"
    assert run("cat", "/raw/logger.bin").stdout_bytes == b"\x00\x01binary"
    assert [t.command for t in pond.log(1)] == [f"copy {logger} /raw/"]  # one transaction


def test_parquet_is_refused_on_a_terminal(pond, pond_path: Path) -> None:
    pond.mkdir("/a")
    leader, follower = pty.openpty()
    try:
        done = subprocess.run(
            [
                str(POND_BIN),
                "--pond",
                str(pond_path),
                "sql",
                "SELECT 1 AS x",
                "--format",
                "parquet",
            ],
            stdout=follower,
            stderr=subprocess.PIPE,
            env={**os.environ, "POND": ""},
            timeout=60,
        )
        os.set_blocking(leader, False)
        try:
            written = os.read(leader, 4096)
        except BlockingIOError:
            written = b""
    finally:
        os.close(leader)
        os.close(follower)
    assert done.returncode == 2
    assert b"PAR1" not in written
    assert done.stderr.decode().splitlines()[-1] == (
        "Error: Invalid value for '--format': parquet is binary and stdout is a terminal; "
        "redirect it: > file.parquet"
    )


def test_parquet_to_a_file_still_works(pond, run) -> None:
    result = run("sql", "SELECT 1 AS x", "--format", "parquet")
    assert result.exit_code == 0
    assert result.stdout_bytes[:4] == b"PAR1"


def test_describe_prints_a_multi_line_query_as_a_block(pond: Pond, run) -> None:
    with pond.transaction("table") as tx:
        tx.write_table("/raw/a.table", pa.table({"v": [1]}), "table", parents=True)
    query = "SELECT v AS x,\n       2 AS y FROM source"
    pond.create_dynamic("/two.table", "sql_derived_table", {"source": "/raw/*", "query": query})
    lines = run("describe", "/two.table").stdout.splitlines()
    start = lines.index("config:")
    assert lines[start + 1 : start + 5] == [
        "  query: |-",
        "    SELECT v AS x,",
        "           2 AS y FROM source",
        "  source: /raw/*",
    ]


def test_describe_a_derived_node_whose_sources_do_not_exist_yet(pond: Pond, run) -> None:
    pond.create_dynamic(
        "/d/x.series", "sql_derived_series", {"source": "/nothing/*.series", "query": "SELECT 1"}
    )
    result = run("describe", "/d/x.series")
    assert result.exit_code == 0, result.stderr
    assert (
        "schema: not known yet (/d/x.series: source '/nothing/*.series' matches no table or "
        "series; check the path, or create the source first)"
    ) in result.stdout.splitlines()
    assert "query: SELECT 1" in result.stdout
    assert "versions:" in result.stdout.splitlines()  # and its one version below
