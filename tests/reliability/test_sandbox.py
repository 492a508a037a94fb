"""The SQL sandbox: user SQL cannot reach the host or escape, whichever way it enters.

Each attempt below runs through every place user SQL enters the pond: ``pond sql``,
``pond cat --sql``, an ``sql_derived_table`` / ``sql_derived_series`` node (refused when
it is created, or when it is read), and ``query()`` inside a template. Every attempt ends
in one clear ``Error:`` line that names why (DuckDB's sandbox refusal, or pond's own
one-SELECT rule) and the query, with a non-zero exit, and writes nothing on the host.
A runaway query is interrupted by the configurable ``--query-timeout`` wherever it runs.
"""

import json
import time
import traceback
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from click.testing import CliRunner, Result

from pond_pipeline.api import Pond
from pond_pipeline.cli.main import cli

SERIES = "/data/readings.series"

# Why a refusal happens, as the error line says it: DuckDB's sandbox settings, or pond's
# rule that user SQL is exactly one SELECT.
NO_FILES = "file system operations are disabled by configuration"
LOCKED = "configuration has been locked"
ONE_SELECT = "only SELECT queries may run"

ATTEMPTS: list[tuple[str, str, tuple[str, ...]]] = [
    # id, SQL ({h} is a host folder holding secret.csv/.parquet/.json), accepted reasons
    ("read_csv", "SELECT * FROM read_csv('{h}/secret.csv')", (NO_FILES,)),
    ("read_csv_auto", "SELECT * FROM read_csv_auto('{h}/secret.csv')", (NO_FILES,)),
    ("read_parquet", "SELECT * FROM read_parquet('{h}/secret.parquet')", (NO_FILES,)),
    ("read_json", "SELECT * FROM read_json('{h}/secret.json')", (NO_FILES,)),
    ("read_text", "SELECT * FROM read_text('/etc/passwd')", (NO_FILES,)),
    ("read_blob", "SELECT * FROM read_blob('{h}/secret.csv')", (NO_FILES,)),
    ("glob", "SELECT * FROM glob('{h}/*')", (NO_FILES,)),
    ("sniff_csv", "SELECT * FROM sniff_csv('{h}/secret.csv')", (NO_FILES,)),
    ("parquet_metadata", "SELECT * FROM parquet_metadata('{h}/secret.parquet')", (NO_FILES,)),
    ("list-of-files", "SELECT * FROM read_csv(['{h}/secret.csv', '/etc/passwd'])", (NO_FILES,)),
    ("http", "SELECT * FROM read_csv('https://example.com/x.csv')", (NO_FILES,)),
    # a quoted host path: pond reads quoted /paths as pond paths, DuckDB as files
    ("from-etc-passwd", "SELECT * FROM '/etc/passwd'", ("matches no table", NO_FILES, "not exist")),
    (
        "from-host-csv",
        "SELECT * FROM '{h}/secret.csv'",
        ("matches no table", NO_FILES, "not exist"),
    ),
    ("copy-to", "COPY (SELECT 42 AS x) TO '{h}/out.csv'", (ONE_SELECT, NO_FILES)),
    ("copy-parquet", "COPY (SELECT 1 AS x) TO '{h}/out.parquet' (FORMAT parquet)", (ONE_SELECT,)),
    ("export-database", "EXPORT DATABASE '{h}/export'", (ONE_SELECT, NO_FILES)),
    ("attach-file", "ATTACH '{h}/other.duckdb' AS other", (ONE_SELECT, NO_FILES)),
    ("install", "INSTALL httpfs", (ONE_SELECT, "Permission Error")),
    ("load", "LOAD httpfs", (ONE_SELECT, "Permission Error")),
    ("set-external-access", "SET enable_external_access = true", (ONE_SELECT, LOCKED)),
    ("reset-external-access", "RESET enable_external_access", (ONE_SELECT, LOCKED)),
    ("unlock", "SET lock_configuration = false", (ONE_SELECT, LOCKED)),
    ("allow-host-folder", "SET allowed_directories = ['{h}']", (ONE_SELECT, LOCKED)),
    ("profiling-file", "PRAGMA profiling_output = '{h}/profile.json'", (ONE_SELECT, LOCKED)),
    ("spill-to-host", "SET temp_directory = '{h}/spill'", (ONE_SELECT, LOCKED)),
    ("pragma", "PRAGMA enable_profiling", (ONE_SELECT, LOCKED)),
    # sessions of a process share one database: nothing may outlive a query
    ("create-macro", "CREATE OR REPLACE MACRO upper(x) AS 'pwned'", (ONE_SELECT,)),
    ("create-table", "CREATE TABLE main.left_behind AS SELECT 'left' AS s", (ONE_SELECT,)),
    (
        "select-then-copy",
        "SELECT 1 AS x; COPY (SELECT 1) TO '{h}/second.csv'",
        ("only SELECT queries may run, not 2 statements: SELECT + COPY", NO_FILES),
    ),
    (
        "cte-then-copy",
        "WITH t AS (SELECT 1 AS x) SELECT * FROM t; COPY t TO '{h}/cte.csv'",
        ("only SELECT queries may run, not 2 statements: SELECT + COPY", NO_FILES),
    ),
]
SECRETS = ["secret.csv", "secret.parquet", "secret.json"]


def pond_cli(root: Path, *args: str) -> Result:
    return CliRunner().invoke(cli, ["--pond", str(root), *args])


def refusal(result: Result) -> str:
    """The one ``Error:`` line of a failed command; fails on a traceback or on success."""
    escaped = result.exception
    if escaped is not None and not isinstance(escaped, SystemExit):
        shown = "".join(traceback.format_exception(escaped))
        pytest.fail(f"a traceback reached the user:\n{shown}")
    assert "Traceback" not in result.output
    assert result.exit_code != 0, result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error: ")]
    assert len(errors) == 1, result.stderr
    return errors[0].removeprefix("Error: ")


def host_listing(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


RUNAWAY = "SELECT count(*) AS n FROM range(200000) a, range(200000) b WHERE a.range + b.range = -1"
"""A query that would run for hours: 4e10 row pairs, nothing DuckDB can shortcut."""
ENDLESS = "SELECT a.range AS x FROM range(100000) a, range(100000) b"
"""Rows without end, streamed (no aggregate to wait for)."""
DYNAMIC = ("sql_derived_table", "sql_derived_series", "template")


def node_path(name: str, factory: str) -> str:
    suffix = {"sql_derived_table": "table", "sql_derived_series": "series", "template": "md"}
    return f"/evil/{name}.{suffix[factory]}"


def node_config(factory: str, sql: str) -> dict[str, Any]:
    if factory == "template":
        return {"template": "{{ query(" + json.dumps(sql) + ") }}", "sources": {"source": SERIES}}
    if factory == "sql_derived_series" and sql == RUNAWAY:
        sql = f"SELECT ts, v, ({RUNAWAY}) AS n FROM source"  # a series keeps a time column
    return {"query": sql, "source": SERIES}


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A pond with one series and, for every attempt, a derived table, a derived series
    and a template running it (all made in one transaction); a host folder of secrets."""
    base = tmp_path_factory.mktemp("sandbox")
    host = base / "host"
    host.mkdir()
    (host / "secret.csv").write_text("secret\nhunter2\n")
    (host / "secret.json").write_text('{"secret": "hunter2"}\n')
    pq.write_table(pa.table({"secret": ["hunter2"]}), host / "secret.parquet")
    root = base / "pond"
    pond = Pond.create(str(root))
    readings = pa.table(
        {
            "ts": pa.array(range(0, 600, 60), pa.timestamp("s", tz="UTC")),
            "v": [float(i) for i in range(10)],
        }
    )
    named = [(name, sql.format(h=host)) for name, sql, _ in ATTEMPTS]
    named += [("runaway", RUNAWAY), ("endless", ENDLESS)]
    with pond.transaction("attempts") as tx:
        tx.write_table(SERIES, readings, "series", parents=True)
        for name, sql in named:
            for factory in DYNAMIC:
                tx.create_dynamic(
                    node_path(name, factory), factory, node_config(factory, sql), check_sql=False
                )
    return root, host


def entry_points(name: str, sql: str) -> dict[str, tuple[str, ...]]:
    """Every way ``sql`` enters the pond, as one CLI call each."""
    calls: dict[str, tuple[str, ...]] = {
        "pond sql": ("sql", sql),
        "cat --sql": ("cat", SERIES, "--sql", sql),
    }
    calls.update({factory: ("cat", node_path(name, factory)) for factory in DYNAMIC})
    return calls


@pytest.mark.parametrize(("sql", "reasons"), [pytest.param(a[1], a[2], id=a[0]) for a in ATTEMPTS])
def test_user_sql_cannot_reach_the_host(
    sandbox: tuple[Path, Path], request: pytest.FixtureRequest, sql: str, reasons: tuple[str, ...]
) -> None:
    root, host = sandbox
    query = sql.format(h=host)
    before = host_listing(host)
    name = request.node.callspec.id
    for channel, call in entry_points(name, query).items():
        result = pond_cli(root, *call)
        line = refusal(result)
        assert any(reason in line for reason in reasons), (channel, line)
        assert "hunter2" not in result.output, channel
        # it names the query, the node, or the path it took for a pond path
        named = (" ".join(query.split()), f"/evil/{name}", "source '/")
        assert any(part in line for part in named), (channel, line)
        assert host_listing(host) == before, channel  # nothing written on the host


def test_a_node_reading_a_host_file_is_refused_when_created_through_the_cli(
    sandbox: tuple[Path, Path], tmp_path: Path
) -> None:
    """The SQL check at create binds the query in the same sandbox a read uses (nodes
    made without the check are refused when read: ``test_every_channel_refuses``)."""
    root, host = sandbox
    config = tmp_path / "evil.yaml"
    config.write_text(
        yaml.safe_dump(node_config("template", f"SELECT * FROM read_text('{host}/secret.csv')"))
    )
    created = pond_cli(root, "mknod", "template", "/evil/via-cli.md", "--config", str(config))
    line = refusal(created)
    assert line.startswith("/evil/via-cli.md: template: ")
    assert NO_FILES in line
    assert "hunter2" not in created.output
    assert "no such" in refusal(pond_cli(root, "cat", "/evil/via-cli.md"))


def test_the_sandbox_settings_hold_after_every_attempt(sandbox: tuple[Path, Path]) -> None:
    root, _ = sandbox
    for name, sql, _ in ATTEMPTS:  # in this process, after every attempt of every kind
        for factory in DYNAMIC:
            pond_cli(root, "cat", node_path(name, factory))
        pond_cli(root, "sql", sql)
    same = pond_cli(root, "sql", "SELECT upper('x') AS u", "--format", "json")
    assert json.loads(same.stdout) == [{"u": "X"}]  # no macro replaced a function
    assert "does not exist" in refusal(pond_cli(root, "sql", "SELECT * FROM left_behind"))
    settings = (
        "SELECT current_setting('enable_external_access') AS external, "
        "current_setting('lock_configuration') AS locked"
    )
    for args in (("sql", settings), ("cat", SERIES, "--sql", settings)):
        result = pond_cli(root, *args, "--format", "json")
        assert result.exit_code == 0, result.output
        assert json.loads(result.stdout) == [{"external": False, "locked": True}]


@pytest.mark.parametrize(
    "how",
    ["pond sql", "cat --sql", "sql_derived_table", "sql_derived_series", "template"],
)
def test_a_runaway_query_is_interrupted_by_the_timeout(
    sandbox: tuple[Path, Path], request: pytest.FixtureRequest, how: str
) -> None:
    root, _ = sandbox
    started = time.monotonic()
    result = pond_cli(root, "--query-timeout", "1", *entry_points("runaway", RUNAWAY)[how])
    elapsed = time.monotonic() - started
    line = refusal(result)
    assert "interrupted after the 1s query timeout" in line, line
    assert "raise --query-timeout" in line
    assert "range(200000) a, range(200000) b" in line  # the query, even inside a node
    assert elapsed < 15, elapsed


def test_a_streamed_runaway_is_interrupted_while_it_is_read(sandbox: tuple[Path, Path]) -> None:
    """A derived node that yields rows forever (no aggregate to wait for): the timeout
    covers reading the stream, not just starting it; its partial output is not kept."""
    root, _ = sandbox
    for _ in range(2):  # nothing half-read was cached: the second read runs again
        started = time.monotonic()
        line = refusal(pond_cli(root, "--query-timeout", "1", "cat", "/evil/endless.table"))
        assert "interrupted after the 1s query timeout" in line, line
        assert "range(100000) a, range(100000) b" in line
        assert time.monotonic() - started < 15
        assert [p.name for p in Pond.open(str(root)).location.cache.rglob("*.tmp")] == []


def test_the_timeout_is_a_setting_of_the_pond(tmp_path: Path) -> None:
    """Without --query-timeout, the pond's own setting (pond.json) applies."""
    root = tmp_path / "pond"
    Pond.create(str(root))
    settings_file = root / "pond.json"
    settings = json.loads(settings_file.read_text())
    settings_file.write_text(json.dumps({**settings, "query_timeout": 1}))
    started = time.monotonic()
    line = refusal(pond_cli(root, "sql", RUNAWAY))
    assert "interrupted after the 1s query timeout" in line
    assert time.monotonic() - started < 15
