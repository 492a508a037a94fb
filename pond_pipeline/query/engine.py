"""The one adapter to DuckDB.

User SQL runs in a ``SqlSession``: a cursor of one in-memory database per process whose
external access is disabled and configuration locked when it is created, *before* any
user text is bound, so no query can read or write host files, ATTACH, INSTALL/LOAD, or
turn the sandbox off. Each session's registrations and (temporary) views are its own. Pond data
reaches it only as registered Arrow objects (pyarrow datasets keep filter and
projection pushdown into Parquet row groups). A timer interrupts a runaway query.
"""

import csv
import json
import re
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, suppress
from pathlib import Path
from typing import Any, TypeAlias

import duckdb
import pyarrow as pa
import pyarrow.dataset as ds

from pond_pipeline.errors import ConfigError, QueryError

DEFAULT_QUERY_TIMEOUT = 300.0
Connector: TypeAlias = Callable[[], AbstractContextManager[Any]]
"""Lends a fresh in-memory DuckDB connection (e.g. dagster-duckdb's ``get_connection``);
the session sandboxes it before use."""
ArrowSource: TypeAlias = ds.Dataset | pa.Table | pa.RecordBatchReader


class SqlSession:
    """A sandboxed DuckDB connection that pond data is registered into by name."""

    def __init__(
        self,
        *,
        timeout: float | None = DEFAULT_QUERY_TIMEOUT,
        connector: Connector | None = None,
    ):
        self.timeout = timeout
        self._lease = connector() if connector is not None else None
        if self._lease is not None:
            self._con = self._lease.__enter__()
            _sandbox(self._con)
        else:
            self._con = _sandboxed_database().cursor()
        self._registered: set[str] = set()
        self._definitions: dict[str, str] = {}
        """The user SQL of each view, so an error while streaming it shows that SQL."""
        self._timers: set[threading.Timer] = set()

    def close(self) -> None:
        for timer in list(self._timers):
            timer.cancel()
        if self._lease is not None:
            self._lease.__exit__(None, None, None)
        else:
            self._con.close()

    def __enter__(self) -> "SqlSession":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def is_registered(self, name: str) -> bool:
        return name in self._registered

    def register(self, name: str, source: ArrowSource) -> None:
        self._con.register(name, source)
        self._registered.add(name)

    def create_view(self, name: str, sql: str, bindings: dict[str, str]) -> None:
        """``CREATE VIEW name`` over ``sql`` whose table names ``bindings`` maps to views.

        The bindings become leading ``NOT MATERIALIZED`` CTEs, so DuckDB inlines them
        and pushes filters of the outer query down to the registered datasets.
        """
        check_select(sql)
        statement = f"CREATE TEMP VIEW {quote(name)} AS {with_bindings(sql, bindings)}"
        self._run(sql, lambda: self._con.execute(statement))
        self._registered.add(name)
        self._definitions[name] = sql

    def query(self, sql: str, bindings: dict[str, str] | None = None) -> pa.Table:
        check_select(sql)  # the database is shared: no DDL may outlive this session
        text = with_bindings(sql, bindings or {})
        table: pa.Table = self._run(sql, lambda: self._con.sql(text).to_arrow_table())
        return table

    def stream(
        self, sql: str, bindings: dict[str, str] | None = None, batch_rows: int = 65536
    ) -> pa.RecordBatchReader:
        """The result as a record batch stream (bounded memory for large results).

        The timeout runs until the stream is read to its end: DuckDB computes batches
        as they are pulled, so a runaway query is interrupted while it is being read.
        """
        check_select(sql)
        text = with_bindings(sql, bindings or {})
        shown = self._shown(sql)
        timer = self._start_timer()
        try:
            reader: pa.RecordBatchReader = self._run(
                shown, lambda: self._con.sql(text).to_arrow_reader(batch_rows), timer
            )
        except BaseException:
            self._stop_timer(timer)
            raise

        def batches() -> Iterator[pa.RecordBatch]:
            try:
                yield from reader
            except (OSError, pa.ArrowException, duckdb.Error) as exc:  # raised while pulling
                if "INTERRUPT" in str(exc):
                    raise self._timeout_error(shown) from exc
                raise QueryError(_first_line(exc), subject=_short(shown)) from exc
            finally:
                self._stop_timer(timer)

        return pa.RecordBatchReader.from_batches(reader.schema, batches())

    def explain(self, sql: str) -> str:
        rows = self._run(sql, lambda: self._con.sql(f"EXPLAIN ANALYZE {sql}").fetchall())
        return "\n".join(str(row[1]) for row in rows)

    def _run(
        self, shown: str, action: Callable[[], Any], timer: threading.Timer | None = None
    ) -> Any:
        """``action`` under the timeout (its own timer, or the caller's ``timer``)."""
        own = timer is None
        if own:
            timer = self._start_timer()
        try:
            return action()
        except duckdb.InterruptException as exc:
            raise self._timeout_error(shown) from exc
        except duckdb.Error as exc:
            raise QueryError(_first_line(exc), subject=_short(shown)) from exc
        finally:
            if own:
                self._stop_timer(timer)

    def _start_timer(self) -> threading.Timer | None:
        if not self.timeout or not 0 < self.timeout < 1e9:  # 0, nan, inf: no timeout
            return None
        timer = threading.Timer(self.timeout, self._interrupt)
        timer.daemon = True
        self._timers.add(timer)
        timer.start()
        return timer

    def _stop_timer(self, timer: threading.Timer | None) -> None:
        if timer is not None:
            timer.cancel()
            self._timers.discard(timer)

    def _interrupt(self) -> None:
        with suppress(duckdb.Error):  # the connection closed meanwhile: nothing to stop
            self._con.interrupt()

    def _timeout_error(self, shown: str) -> QueryError:
        return QueryError(
            f"interrupted after the {self.timeout:g}s query timeout",
            subject=_short(shown),
            hint="narrow the query or raise --query-timeout",
        )

    def _shown(self, sql: str) -> str:
        """``sql`` with each view it names replaced by the user SQL that defined it."""
        for name, definition in reversed(self._definitions.items()):
            sql = sql.replace(quote(name), f"({definition})")
        return sql


_DATABASE: dict[int, Any] = {}
_DATABASE_LOCK = threading.Lock()


def _sandboxed_database() -> Any:
    """This process's sandboxed in-memory database (made anew after a fork)."""
    import os

    with _DATABASE_LOCK:
        database = _DATABASE.get(os.getpid())
        if database is None:
            _DATABASE.clear()
            database = _DATABASE[os.getpid()] = duckdb.connect(":memory:")
            _sandbox(database)
        return database


SESSION_MEMORY_LIMIT = "1GB"
"""DuckDB's share of a process's memory for queries (beyond it, DuckDB spills to disk)."""
CSV_MEMORY_LIMIT = "1GB"
"""The same for one CSV conversion (it would otherwise buffer row groups of a big file)."""


def _sandbox(con: Any) -> None:
    """UTC, bounded memory (spilling to a private temporary folder), no access outside
    the process, and no way to change that back."""
    con.execute("SET GLOBAL TimeZone='UTC'")
    con.execute(f"SET memory_limit={_literal(SESSION_MEMORY_LIMIT)}")
    con.execute(f"SET temp_directory={_literal(_spill_folder())}")
    con.execute("SET enable_external_access=false")
    con.execute("SET lock_configuration=true")


def _spill_folder() -> str:
    """A temporary folder of this process for DuckDB to spill to (not the working folder)."""
    import atexit
    import shutil
    import tempfile

    folder = tempfile.mkdtemp(prefix="pond-duckdb-")
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return folder


def quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


_WITH = re.compile(r"^\s*WITH(\s+RECURSIVE)?\s", re.IGNORECASE)


def with_bindings(sql: str, bindings: dict[str, str]) -> str:
    """Prefix ``sql`` with CTEs naming each binding (``source`` → a registered view).

    Only a single SELECT can take them, so anything else is refused here, clearly,
    rather than as a syntax error in text the user never wrote."""
    if not bindings:
        return sql
    check_select(sql)
    ctes = ", ".join(
        f"{quote(alias)} AS NOT MATERIALIZED (SELECT * FROM {quote(target)})"
        for alias, target in bindings.items()
    )
    body = sql.strip().rstrip(";")
    match = _WITH.match(body)
    if match:
        return f"{body[: match.end()]}{ctes}, {body[match.end() :]}"
    return f"WITH {ctes} {body}"


def check_select(sql: str) -> None:
    """User SQL is one read-only query: a single SELECT (``WITH``, ``FROM``-first, and
    ``VALUES`` are SELECTs too). Anything else is refused before it reaches DuckDB."""
    require_text(sql)
    try:
        statements = duckdb.extract_statements(sql)
    except duckdb.Error as exc:
        raise QueryError(_first_line(exc), subject=_short(sql)) from exc
    if len(statements) != 1:
        kinds = " + ".join(_keyword(statement) for statement in statements) or "nothing"
        raise QueryError(
            f"only SELECT queries may run, not {len(statements)} statements: {kinds}",
            subject=_short(sql),
            hint="write one read-only query (no ';' between statements)",
        )
    kind = statements[0].type
    if kind != duckdb.StatementType.SELECT:
        raise QueryError(
            f"only SELECT queries may run, not {_keyword(statements[0])}",
            subject=_short(sql),
            hint="pond SQL reads pond data; it cannot write, attach, load or change settings",
        )


def _keyword(statement: Any) -> str:
    """What a statement is, as its text says (DuckDB files INSTALL under LOAD)."""
    words = str(getattr(statement, "query", "")).split()
    first = words[0].upper() if words else ""
    return first if first.isalpha() and first != "WITH" else str(statement.type.name)


def require_text(sql: str) -> None:
    """SQL is UTF-8 text (a command-line argument may carry undecodable bytes)."""
    try:
        sql.encode("utf-8")
    except UnicodeEncodeError:
        shown = sql.encode("utf-8", "backslashreplace").decode()
        raise QueryError("the query is not valid UTF-8 text", subject=_short(shown)) from None


def referenced_tables(sql: str) -> set[str]:
    """Names used as tables in ``sql`` (``FROM '/a/b.series'`` gives ``/a/b.series``).

    Parsed by DuckDB's own parser, without binding, so nothing is read.
    """
    check_select(sql)
    con = _sandboxed_database().cursor()
    try:
        (serialized,) = con.execute("SELECT json_serialize_sql(?)", [sql]).fetchone() or ("{}",)
    finally:
        con.close()
    tree = json.loads(serialized)
    if tree.get("error") and tree.get("error_type") == "not implemented":
        return set()  # not a plain SELECT: nothing to bind; the sandboxed session judges it
    if tree.get("error"):
        raise QueryError(str(tree.get("error_message", "cannot parse")), subject=_short(sql))
    found: set[str] = set()
    _collect_tables(tree, found)
    return found


def _collect_tables(node: Any, found: set[str]) -> None:
    if isinstance(node, dict):
        if node.get("type") == "BASE_TABLE" and node.get("table_name"):
            found.add(node["table_name"])
        for value in node.values():
            _collect_tables(value, found)
    elif isinstance(node, list):
        for value in node:
            _collect_tables(value, found)


def csv_to_parquet(
    source: Path,
    target: Path,
    *,
    subject: str,
    on_progress: Callable[[float], None] | None = None,
) -> None:
    """Convert one CSV file to Parquet, streaming, with DuckDB's type inference.

    Runs on a private connection that may read exactly ``source``; ``on_progress``
    is called with DuckDB's progress (0 to 100) from a watcher thread.
    """
    _check_header(source, subject)
    con = duckdb.connect(":memory:")
    done = threading.Event()
    watcher = None
    if on_progress is not None:
        con.execute("SET enable_progress_bar=true")
        con.execute("SET enable_progress_bar_print=false")
        watcher = threading.Thread(target=_watch, args=(con, done, on_progress), daemon=True)
        watcher.start()
    spill = target.with_name(target.name + ".spill")
    try:
        con.execute("SET TimeZone='UTC'")
        con.execute(f"SET memory_limit={_literal(CSV_MEMORY_LIMIT)}")
        con.execute(f"SET temp_directory={_literal(str(spill))}")
        con.execute(
            f"COPY (SELECT * FROM read_csv({_literal(str(source))}, {_CSV_DIALECT}, "
            "sample_size=20480)) "
            f"TO {_literal(str(target))} (FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE 122880)"
        )
    except duckdb.Error as exc:
        reason = _csv_reason(_locate_csv_error(source, exc))
        raise ConfigError(f"not a readable CSV: {reason}", subject=subject) from exc
    finally:
        done.set()
        if watcher is not None:
            watcher.join()
        con.close()
        if spill.exists():
            import shutil

            shutil.rmtree(spill, ignore_errors=True)


# RFC 4180 CSV: fixed so DuckDB's sniffer cannot "explain" a ragged row by picking another
# delimiter, dropping the quote character or skipping leading rows as a preamble.
_CSV_DIALECT = "header=true, delim=',', quote='\"', escape='\"', skip=0, strict_mode=true"


def _check_header(source: Path, subject: str) -> None:
    """An empty file or a blank first line has no column names (DuckDB would invent
    ``column0`` and read the data as rows of it)."""
    with source.open("rb") as handle:
        first = handle.readline(1 << 20)
    if not first:
        raise ConfigError(
            "not a readable CSV: the file is empty",
            subject=subject,
            hint="a CSV needs a header line naming its columns",
        )
    if first.removeprefix(b"\xef\xbb\xbf")[:1] in (b"\r", b"\n"):
        raise ConfigError(
            "not a readable CSV: line 1 is blank, not a header",
            subject=subject,
            hint="the first line must name the columns",
        )


def _locate_csv_error(source: Path, exc: duckdb.Error) -> duckdb.Error:
    """The sniffer fails without a line number; a plain pass over the rows finds the line."""
    if "sniffing" not in str(exc):
        return exc
    try:
        with source.open(newline="", encoding="utf-8") as handle:
            header = next(csv.reader(handle), None)
    except (OSError, UnicodeDecodeError, csv.Error):
        return exc
    if not header:
        return exc
    columns = "{" + ", ".join(f"{_literal(name)}: 'VARCHAR'" for name in header) + "}"
    con = duckdb.connect(":memory:")
    try:
        con.execute(
            f"SELECT count(*) FROM read_csv({_literal(str(source))}, {_CSV_DIALECT}, "
            f"auto_detect=false, columns={columns})"
        )
    except duckdb.Error as found:
        return found if "Line" in str(found) else exc
    finally:
        con.close()
    return exc


def _watch(con: Any, done: threading.Event, on_progress: Callable[[float], None]) -> None:
    while not done.wait(0.2):
        progress = con.query_progress()
        if progress >= 0:
            on_progress(float(progress))


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


_CSV_DETAIL = re.compile(
    r"^(Expected Number of Columns.*|Error when converting.*|.*unterminated quote.*)$",
    re.MULTILINE,
)


def _csv_reason(exc: BaseException) -> str:
    text = str(exc)
    line = re.search(r"[Ll]ine:?\s*(\d+)", text)
    first = _first_line(exc)
    known = _CSV_DETAIL.search(text)
    detail = (
        known.group(0).strip()
        if known
        else next(
            (ln.strip() for ln in text.splitlines()[1:] if ln.strip() and "Line" not in ln), ""
        )
    )
    if line and known:
        return f"line {line.group(1)}: {detail}"
    reason = f"line {line.group(1)}: {first}" if line else first
    return f"{reason} ({detail})" if detail and len(detail) < 200 else reason


def _short(sql: str) -> str:
    flat = " ".join(sql.split())
    return flat if len(flat) <= 200 else flat[:197] + "..."
