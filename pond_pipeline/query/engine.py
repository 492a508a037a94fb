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
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, suppress
from importlib import import_module
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, TypeAlias

import pyarrow as pa
import pyarrow.dataset as ds

from pond_pipeline.errors import ConfigError, QueryError


class _Deferred(ModuleType):
    """``duckdb``, imported on first use (~40 ms): commands that query nothing
    (``pond list``, ``pond log``) never load it."""

    def __getattr__(self, name: str) -> Any:
        return getattr(import_module(self.__name__), name)


if TYPE_CHECKING:
    import duckdb
else:
    duckdb = _Deferred("duckdb")

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


SPILL_PREFIX = "pond-duckdb-"
_SPILL_NAME = re.compile(r"^pond-duckdb-(\d+)-(\d+)-\d+$")
"""``pond-duckdb-<pid namespace>-<pid>-<n>``: the owner, so leftovers can be told apart."""
_OLD_SPILL_NAME = re.compile(r"^pond-duckdb-[a-z0-9_]{8}$")
"""What earlier versions named their spill folders (``mkdtemp``: no owner in the name)."""
_OLD_SPILL_AGE = 24 * 3600.0
_SPILLS: dict[str, int] = {}
"""This process's pid once it swept leftovers and arranged its own cleanup, and how many
spill folders it has named."""


def _spill_folder() -> str:
    """A fresh folder for one database to spill to: ``pond-duckdb-<pid namespace>-<pid>-<n>``
    in the system temp folder (not the working folder, nor a pond: a process's database
    serves every pond it opens). DuckDB creates it only when it spills and deletes it when
    the database closes; this process removes its own at exit, and the first database of
    each process removes those of processes that no longer run (killed ones)."""
    import atexit
    import os
    import tempfile

    pid = os.getpid()
    if _SPILLS.get("pid") != pid:  # first in this process (or in a forked child)
        _SPILLS.update(pid=pid, count=0)
        sweep_spill_folders()
        atexit.register(_remove_spill_folders, pid)
    _SPILLS["count"] += 1
    name = f"{SPILL_PREFIX}{_pid_namespace()}-{pid}-{_SPILLS['count']}"
    return os.path.join(tempfile.gettempdir(), name)


def sweep_spill_folders(folder: str | None = None) -> list[str]:
    """Delete the spill folders (in ``folder``, default the system temp folder) of
    processes of this pid namespace that no longer run, and folders of earlier pond
    versions untouched for a day; returns their names."""
    import os
    import tempfile
    import time

    root = folder or tempfile.gettempdir()
    namespace = _pid_namespace()
    removed = []
    try:
        entries = [e for e in os.scandir(root) if e.name.startswith(SPILL_PREFIX)]
    except OSError:
        return []
    for entry in entries:
        match = _SPILL_NAME.match(entry.name)
        try:
            if match is not None:
                stale = match[1] == namespace and not _is_running(int(match[2]))
            else:
                old = _OLD_SPILL_NAME.match(entry.name) is not None
                stale = old and time.time() - entry.stat().st_mtime > _OLD_SPILL_AGE
            if stale and entry.is_dir(follow_symlinks=False):
                _remove_tree(entry.path)
                removed.append(entry.name)
        except OSError:
            continue  # another user's, or gone meanwhile
    return removed


def _remove_spill_folders(pid: int) -> None:
    """At exit: this process's spill folders (DuckDB may not have closed its database)."""
    import os
    import tempfile

    if os.getpid() != pid:  # a forked child runs its parent's exit handlers
        return
    prefix = f"{SPILL_PREFIX}{_pid_namespace()}-{pid}-"
    root = tempfile.gettempdir()
    with suppress(OSError):
        for entry in os.scandir(root):
            if entry.name.startswith(prefix):
                _remove_tree(entry.path)


def _remove_tree(path: str) -> None:
    import shutil

    shutil.rmtree(path, ignore_errors=True)


def _is_running(pid: int) -> bool:
    import os

    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def _pid_namespace() -> str:
    """This process's pid namespace (containers sharing /tmp have their own pids)."""
    import os

    try:
        return re.sub(r"\D", "", os.readlink("/proc/self/ns/pid")) or "0"
    except OSError:
        return "0"


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
    formats: Mapping[str, str] | None = None,
) -> None:
    """Convert one CSV file to Parquet, streaming, with DuckDB's type inference.

    Runs on a private connection that may read exactly ``source``; ``on_progress``
    is called with DuckDB's progress (0 to 100) from a watcher thread. ``formats``
    maps a column to a DuckDB ``strptime`` format: its text is parsed with it (a value
    that does not match is an error naming the column, value and line).

    Times: a time without a zone is read as UTC and stays a ``timestamp`` without zone
    (the Parquet key-value metadata ``pond.zoneless_utc`` lists those columns); times
    with an offset or zone name become ``timestamp with time zone`` (UTC). A column
    holding both kinds, or a named-zone time that a daylight-saving change makes
    ambiguous or non-existent, is refused naming the column and the lines.
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
        plan = _CsvPlan(
            source, con.execute(f"DESCRIBE SELECT * FROM {_read_csv(source)}").fetchall()
        )
        plan.parse_with(con, formats or {}, subject)
        _check_times(con, source, plan, subject)
        zoneless = plan.zoneless
        metadata = (
            f", KV_METADATA {{{_literal(ZONELESS_METADATA)}: {_literal(json.dumps(zoneless))}}}"
            if zoneless
            else ""
        )
        con.execute(
            f"COPY (SELECT {plan.select} FROM {_read_csv(source, plan.as_text)}) "
            f"TO {_literal(str(target))} (FORMAT parquet, COMPRESSION zstd, "
            f"ROW_GROUP_SIZE 122880{metadata})"
        )
    except duckdb.Error as exc:
        located = _locate_csv_error(source, exc)
        hint = "a CSV line may hold at most 2 MB" if "Maximum line size" in str(located) else None
        raise ConfigError(
            f"not a readable CSV: {_csv_reason(located)}", subject=subject, hint=hint
        ) from exc
    finally:
        done.set()
        if watcher is not None:
            watcher.join()
        con.close()
        if spill.exists():
            import shutil

            shutil.rmtree(spill, ignore_errors=True)


ZONELESS_METADATA = "pond.zoneless_utc"
"""The Parquet key-value metadata (and Arrow schema metadata) of a converted CSV: a JSON
list of its timestamp columns whose text had no zone, so were read as UTC."""


def zoneless_columns(schema: pa.Schema) -> list[str]:
    """The columns a CSV conversion recorded as read from zone-less text (so as UTC)."""
    recorded = (schema.metadata or {}).get(ZONELESS_METADATA.encode())
    try:
        names = json.loads(recorded) if recorded else []
    except ValueError:
        return []
    times = {f.name for f in schema if pa.types.is_timestamp(f.type)}
    return [n for n in names if isinstance(n, str) and n in times]


_CSV_SAMPLE = 20480
"""Rows DuckDB's sniffer reads to infer the column types."""

_ZONED = r"\d:\d\d(:\d\d([.,]\d+)?)?\s*([Zz]|[+-]\d\d(:?\d\d)?|[A-Za-z][A-Za-z0-9_/+-]*)\s*$"
"""A time of day followed by a zone: ``Z``, an offset (``+02``, ``-0530``, ``+05:30``)
or a zone name (``UTC``, ``Europe/Berlin``). The same in RE2 (DuckDB) and Python."""
_AM_PM = r"\d\s*[AaPp]\.?[Mm]\.?\s*$"
"""``10:00 PM``: a 12-hour clock, not a zone."""
_NAMED_ZONE = r"^(.*\d)\s*([A-Za-z][A-Za-z0-9_/+-]*)\s*$"
"""A local time and the zone name after it (``2024-10-27 02:30 Europe/Berlin``)."""


def _read_csv(source: Path, as_text: Sequence[str] = ()) -> str:
    """The ``read_csv`` call of a conversion (``as_text``: columns read as VARCHAR)."""
    types = ""
    if as_text:
        types = ", types={" + ", ".join(f"{_literal(c)}: 'VARCHAR'" for c in as_text) + "}"
    return f"read_csv({_literal(str(source))}, {_CSV_DIALECT}, sample_size={_CSV_SAMPLE}{types})"


class _CsvPlan:
    """What a conversion reads and selects: the sniffed columns, the columns parsed
    with a ``strptime`` format, and those whose times must be checked for zones."""

    def __init__(self, source: Path, described: Sequence[Sequence[Any]]):
        self.source = source
        self.columns: dict[str, str] = {str(row[0]): str(row[1]) for row in described}
        self.formats: dict[str, str] = {}

    def parse_with(self, con: Any, formats: Mapping[str, str], subject: str) -> None:
        """Take the formats of the columns the CSV has (the caller names the others);
        a format DuckDB's ``strptime`` cannot use is refused here."""
        for column, fmt in formats.items():
            if column not in self.columns:
                continue
            try:
                con.execute("SELECT try_strptime('', ?)", [fmt])
            except duckdb.Error as exc:
                raise ConfigError(
                    f"column {column!r}: {fmt!r} is not a strptime format ({_first_line(exc)})",
                    subject=subject,
                    hint="write it with %Y %m %d %H %M %S %b %z …, as DuckDB's strptime reads",
                ) from exc
            self.formats[column] = fmt

    @property
    def as_text(self) -> list[str]:
        return list(self.formats)

    @property
    def times(self) -> list[str]:
        """Columns DuckDB reads as timestamps (their text is checked for zones)."""
        return [
            c
            for c, t in self.columns.items()
            if t.startswith("TIMESTAMP") and c not in self.formats
        ]

    @property
    def zoneless(self) -> list[str]:
        """The timestamp columns without zone (read as UTC), in the CSV's order."""
        names = [c for c in self.times if "TIME ZONE" not in self.columns[c]]
        names += [c for c, fmt in self.formats.items() if not re.search("%[zZ]", fmt)]
        return [c for c in self.columns if c in names]

    @property
    def select(self) -> str:
        if not self.formats:
            return "*"
        replaced = ", ".join(
            f"strptime({quote(c)}, {_literal(fmt)}) AS {quote(c)}"
            for c, fmt in self.formats.items()
        )
        return f"* REPLACE ({replaced})"


def _check_times(con: Any, source: Path, plan: _CsvPlan, subject: str) -> None:
    """One pass over the time columns' text (the whole file, not the sniffer's sample):
    no column mixes times with and without a zone, no named-zone time falls in a
    daylight-saving gap or overlap, and every formatted column's text matches."""
    items: list[str] = []
    checks: list[tuple[str, str]] = []
    for column in plan.times:
        text = quote(column)
        zoned = (
            f"(regexp_matches({text}, {_literal(_ZONED)}) "
            f"AND NOT regexp_matches({text}, {_literal(_AM_PM)}))"
        )
        items += [f"bool_or({zoned})", f"bool_or({text} IS NOT NULL AND NOT {zoned})"]
        checks += [("zoned", column), ("zoneless", column)]
        if "TIME ZONE" in plan.columns[column]:
            items.append(f"bool_or({_named_zone(text)})")
            checks.append(("named", column))
    for column, fmt in plan.formats.items():
        text = quote(column)
        items.append(
            f"any_value({text}) FILTER (WHERE {text} IS NOT NULL "
            f"AND try_strptime({text}, {_literal(fmt)}) IS NULL)"
        )
        checks.append(("format", column))
    if not items:
        return
    read = _read_csv(source, [*plan.times, *plan.formats])
    row = con.execute(f"SELECT {', '.join(items)} FROM {read}").fetchone()
    found = dict(zip(checks, row or (), strict=True))
    for column in plan.times:
        if found[("zoned", column)] and found[("zoneless", column)]:
            raise _mixed_zones(source, column, subject)
        if found.get(("named", column)):
            _check_named_zones(con, source, column, subject)
    for column, fmt in plan.formats.items():
        bad = found[("format", column)]
        if bad is not None:
            text = str(bad)
            line = _lines_where(source, column, text.__eq__, 1)
            where = f"line {line[0][0]}: " if line else ""
            raise ConfigError(
                f"{where}column {column!r} holds {bad!r}, which does not match the format {fmt!r}",
                subject=subject,
                hint=f"fix the value, or change the format of {column!r} in schema",
            )


def _named_zone(text: str) -> str:
    """SQL: ``text`` ends in a zone name other than Z, UTC or GMT."""
    named = _literal(r"\d\s*[A-Za-z][A-Za-z0-9_/+-]*\s*$")  # no groups: RE2's fast path
    utc = _literal(r"\d\s*([Zz]|[Uu][Tt][Cc]|[Gg][Mm][Tt])\s*$")
    return f"(regexp_matches({text}, {named}) AND NOT regexp_matches({text}, {utc}))"


def _check_named_zones(con: Any, source: Path, column: str, subject: str) -> None:
    """A second pass, only over the column's named-zone times (rare; the check is dear)."""
    text = quote(column)
    named = f"SELECT {text} FROM {_read_csv(source, [column])} WHERE {_named_zone(text)}"
    row = con.execute(
        f"SELECT any_value({text}) FILTER (WHERE {_dst_change(text)}) FROM ({named})"
    ).fetchone()
    if row is not None and row[0] is not None:
        raise _dst_error(con, source, column, str(row[0]), subject)


def _dst_change(text: str) -> str:
    """SQL: the named-zone time ``text`` is ambiguous or does not exist, because the
    zone's UTC offset changes near it (compared a day before and after) and either both
    or neither of the two offsets give back its local time."""
    local = f"TRY_CAST(regexp_extract({text}, {_literal(_NAMED_ZONE)}, 1) AS TIMESTAMP)"
    zone = f"regexp_extract({text}, {_literal(_NAMED_ZONE)}, 2)"
    before, after = (_zone_offset(text, zone, sign) for sign in "-+")
    named = (
        f"upper({zone}) NOT IN ('', 'Z', 'UTC', 'GMT') "
        f"AND {zone} IN (SELECT name FROM pg_timezone_names())"
    )
    changes = (
        f"{before} <> {after} "
        f"AND {_gives_local(zone, local, before)} = {_gives_local(zone, local, after)}"
    )
    return f"(CASE WHEN {named} THEN {changes} ELSE false END)"


def _zone_offset(text: str, zone: str, sign: str) -> str:
    moment = f"(TRY_CAST({text} AS TIMESTAMPTZ) {sign} INTERVAL 1 DAY)"
    return f"TRY(timezone({zone}, {moment}) - CAST({moment} AS TIMESTAMP))"


def _gives_local(zone: str, local: str, offset: str) -> str:
    return (
        f"coalesce(TRY(timezone({zone}, CAST({local} - {offset} AS TIMESTAMPTZ)) = {local}), false)"
    )


def _mixed_zones(source: Path, column: str, subject: str) -> ConfigError:
    zoned = re.compile(_ZONED)
    am_pm = re.compile(_AM_PM)

    def kind(value: str) -> str:
        return "zoned" if zoned.search(value) and not am_pm.search(value) else "zoneless"

    seen: set[str] = set()

    def unseen_kind(value: str) -> bool:
        new = kind(value) not in seen
        seen.add(kind(value))
        return new

    first = {
        kind(value): (line, value) for line, value in _lines_where(source, column, unseen_kind, 2)
    }
    shown = {
        k: f" (line {first[k][0]}: {first[k][1]!r})" if k in first else ""
        for k in ("zoned", "zoneless")
    }
    return ConfigError(
        f"column {column!r} holds times with a zone{shown['zoned']} and times without "
        f"one{shown['zoneless']}",
        subject=subject,
        hint="write every time with its offset (e.g. +00:00), or every time without one "
        "(zone-less times are read as UTC)",
    )


def _dst_error(con: Any, source: Path, column: str, value: str, subject: str) -> ConfigError:
    text = _literal(value)
    zone = f"regexp_extract({text}, {_literal(_NAMED_ZONE)}, 2)"
    local = f"TRY_CAST(regexp_extract({text}, {_literal(_NAMED_ZONE)}, 1) AS TIMESTAMP)"
    before = _zone_offset(text, zone, "-")
    (exists,) = con.execute(f"SELECT {_gives_local(zone, local, before)}").fetchone() or (True,)
    why = "is ambiguous (it happens twice" if exists else "does not exist (it is skipped"
    lines = _lines_where(source, column, lambda v: v == value, 1)
    where = f"line {lines[0][0]}: " if lines else ""
    return ConfigError(
        f"{where}column {column!r} holds {value!r}, which {why} when the clocks change)",
        subject=subject,
        hint="write it with its UTC offset (e.g. +01:00) instead of the zone's name",
    )


def _lines_where(
    source: Path, column: str, wanted: Callable[[str], bool], limit: int
) -> list[tuple[int, str]]:
    """The first ``limit`` (line, value) of ``column`` whose value is ``wanted``: the line
    a record starts on, counted as DuckDB counts them (the header is line 1). Only read
    after a check failed, and only up to the lines it names."""
    found: list[tuple[int, str]] = []
    csv.field_size_limit(max(csv.field_size_limit(), 1 << 26))
    try:
        with source.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.reader(handle, strict=True)
            header = next(reader, None)
            if not header or column not in header:
                return found
            index = header.index(column)
            start = reader.line_num + 1
            for record in reader:
                if index < len(record) and record[index] and wanted(record[index]):
                    found.append((start, record[index]))
                    if len(found) >= limit:
                        break
                start = reader.line_num + 1
    except (OSError, UnicodeDecodeError, csv.Error):
        pass
    return found


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


def _locate_csv_error(source: Path, exc: "duckdb.Error") -> "duckdb.Error":
    """The sniffer fails without a line number, or with the line within its sample buffer
    (a line over the 2 MB limit is "Line: 1" there); a plain pass over the rows finds the
    line."""
    if "sniffing" not in str(exc) and "Maximum line size" not in str(exc):
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
    r"^(Expected Number of Columns.*|Error when converting.*|.*unterminated quote.*"
    r"|Maximum line size.*)$",
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
