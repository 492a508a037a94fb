"""``pond``: every command opens the pond, calls one API method, and prints the result.

Library errors (``PondError``) are turned into one ``Error: ...`` line and the error's
exit code in ``PondGroup.invoke``; ``--debug`` shows the traceback instead.
"""

import os
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any, NoReturn

import click
import yaml
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

from pond_pipeline.api import Pond, PondOptions
from pond_pipeline.cli import output
from pond_pipeline.errors import ConfigError, NotFoundError, PondError
from pond_pipeline.factory import EntryType
from pond_pipeline.project import pond_yaml
from pond_pipeline.store.io_errors import storage_error
from pond_pipeline.store.location import PondLocation

SMALL_IMPORT_BYTES = 8 * 1024 * 1024


class PondCommandError(click.ClickException):
    def __init__(self, error: PondError):
        super().__init__(one_line(error.message))
        self.exit_code = error.exit_code  # type: ignore[misc]  # click reads it per instance


_CONTROL = {code: f"\\x{code:02x}" for code in [*range(0x20), 0x7F, *range(0x80, 0xA0)]}
_CONTROL.update({ord("\n"): "\\n", ord("\r"): "\\r", ord("\t"): "\\t"})


def one_line(message: str) -> str:
    """An error message as one printable line: user text it quotes (a YAML key, a name,
    a query) cannot break the line or send terminal escape sequences."""
    return message.translate(_CONTROL)


class PondGroup(click.Group):
    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except PondError as error:
            if ctx.meta.get("pond.debug"):
                raise
            raise PondCommandError(error) from error
        except OSError as exc:  # a write the storage refused, wherever it happened
            chosen = ctx.obj if isinstance(ctx.obj, Settings) else None
            failure = storage_error(exc, pond=chosen.uri if chosen else None, root=_root(chosen))
            if failure is None or ctx.meta.get("pond.debug"):
                raise
            raise PondCommandError(failure) from exc


def _root(chosen: "Settings | None") -> Path | None:
    """The pond's folder, to name the part of it a failed write was for."""
    try:
        return PondLocation.parse(chosen.uri).root if chosen and chosen.uri else None
    except PondError:
        return None


@dataclass(frozen=True)
class Settings:
    """What the global options say: the pond's URI (``--pond``/``POND``) and how to use it."""

    uri: str
    options: PondOptions

    def open(self) -> Pond:
        return Pond.open(self.uri, self.options)


class Timestamp(click.ParamType[datetime, Any]):
    """ISO 8601 (``2024-05-01``, ``2024-05-01T12:00``, ``...Z``); naive means UTC."""

    name = "timestamp"

    def convert(self, value: Any, param: Any, ctx: Any) -> datetime:
        if isinstance(value, datetime):
            return value
        try:
            parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        except ValueError:
            self.fail(f"{value!r} is not an ISO 8601 time (e.g. 2024-05-01T12:00)", param, ctx)
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


TIMESTAMP = Timestamp()
FORMAT = click.Choice(output.FORMATS)
at_option = click.option("--at", type=int, help="Read the pond as of transaction TXN.")


def _seconds(ctx: click.Context, param: click.Parameter, value: float | None) -> float | None:
    """A timeout is a finite number of seconds, >= 0 (0: no query timeout)."""
    if value is not None and not 0 <= value < 1e9:  # also refuses nan and inf
        raise click.BadParameter(f"{value} is not a number of seconds from 0 to 1e9")
    return value


@click.group(cls=PondGroup)
@click.option("--pond", "uri", envvar="POND", default="", help="The pond's URI (env POND).")
@click.option(
    "--lock-timeout",
    type=float,
    callback=_seconds,
    default=30.0,
    show_default=True,
    help="Seconds a writer waits for the write lock.",
)
@click.option(
    "--query-timeout",
    type=float,
    callback=_seconds,
    default=None,
    help="Seconds before a query is interrupted (default 300; 0: never).",
)
@click.option("--debug", is_flag=True, help="Show tracebacks.")
@click.version_option(package_name="pond-pipeline")
@click.pass_context
def cli(
    ctx: click.Context, uri: str, lock_timeout: float, query_timeout: float | None, debug: bool
) -> None:
    """pond: a transactional data pond for time series and tables."""
    ctx.meta["pond.debug"] = debug
    ctx.obj = Settings(uri, PondOptions(lock_timeout=lock_timeout, query_timeout=query_timeout))


def settings(ctx: click.Context) -> Settings:
    value: Settings = ctx.find_root().obj
    return value


# -- the store ---------------------------------------------------------------------------
@cli.command()
@click.option(
    "--inline-threshold",
    type=int,
    default=64 * 1024,
    show_default=True,
    help="Payloads larger than this many bytes go to blobs/.",
)
@click.pass_context
def init(ctx: click.Context, inline_threshold: int) -> None:
    """Create an empty pond."""
    chosen = settings(ctx)
    pond = Pond.create(chosen.uri, inline_threshold=inline_threshold, options=chosen.options)
    click.echo(f"created pond at {pond.location.root}")


@cli.command()
@click.argument("path")
@click.option(
    "-p", "--parents", is_flag=True, help="Create missing parents; no error if it exists."
)
@click.pass_context
def mkdir(ctx: click.Context, path: str, parents: bool) -> None:
    """Create a directory."""
    settings(ctx).open().mkdir(path, parents=parents)


@cli.command()
@click.argument("target")
@click.argument("path")
@click.pass_context
def ln(ctx: click.Context, target: str, path: str) -> None:
    """Create a symlink PATH pointing at TARGET (followed on read)."""
    pond = settings(ctx).open()
    with pond.transaction(f"ln {target} {path}") as tx:
        tx.symlink(path, target)


@cli.command()
@click.argument("sources", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.argument("dest")
@click.option(
    "--type",
    "entry_type",
    type=click.Choice(["data", "table", "series"]),
    help="What the files become (default: table for .csv/.parquet, else data; "
    "or the existing file's type).",
)
@click.option("--time-column", help="A series' timestamp column (default: the first one).")
@click.option("-p", "--parents", is_flag=True, help="Create missing parent directories.")
@click.pass_context
def copy(
    ctx: click.Context,
    sources: tuple[str, ...],
    dest: str,
    entry_type: str | None,
    time_column: str | None,
    parents: bool,
) -> None:
    """Import host files into the pond (one transaction for all of them)."""
    pond = settings(ctx).open()
    total = sum(Path(s).stat().st_size for s in sources if Path(s).is_file())
    if len(sources) > 1:
        node = _maybe_node(pond, dest)
        if node is None or node.entry_type is not EntryType.DIRECTORY:
            raise ConfigError(
                "with several files, DEST must be an existing directory", subject=dest
            )
    show = (total > SMALL_IMPORT_BYTES and sys.stderr.isatty()) or os.environ.get("POND_PROGRESS")
    with (
        Progress(
            TextColumn("importing"),
            BarColumn(),
            TextColumn("{task.percentage:>3.0f}%"),
            TimeRemainingColumn(),
            console=Console(stderr=True),  # stdout stays for data
            transient=True,
            disable=not show,
        ) as bar,
        pond.transaction(f"copy {' '.join(sources)} {dest}") as tx,
    ):
        task = bar.add_task("import", total=total)

        def show_progress(done: int, size: int, percent: float) -> None:  # percent of one file
            bar.update(task, completed=done + size * min(percent, 100.0) / 100.0)

        done = 0
        imported: list[str] = []
        for source in sources:
            size = Path(source).stat().st_size if Path(source).is_file() else 0
            record = tx.copy(
                source,
                dest,
                entry_type,
                time_column=time_column,
                parents=parents,
                on_progress=partial(show_progress, done, size),
            )
            done += size
            bar.update(task, completed=done)
            imported.append(f"{Path(source).name} -> {record.entry_type} version {record.version}")
    for line in imported:  # only once the transaction committed
        click.echo(line, err=True)


@cli.command("list")
@click.argument("pattern", required=False)
@click.option("-l", "--long", "long_", is_flag=True, help="Type, versions, size, last change.")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table")
@at_option
@click.pass_context
def list_(ctx: click.Context, pattern: str | None, long_: bool, fmt: str, at: int | None) -> None:
    """List nodes. Globs: * ? **. /dir/ lists its children, /dir the entry itself."""
    infos = settings(ctx).open().list_nodes(pattern, at=at)
    if fmt == "json":
        output.print_json(
            [
                {
                    "path": i.path,
                    "type": i.entry_type.value,
                    "factory": i.factory,
                    "versions": i.versions,
                    "size": i.size,
                    "modified": i.modified.isoformat() if i.modified else None,
                }
                for i in infos
            ]
        )
    elif long_:
        output.print_records(
            [
                {
                    "type": i.kind,
                    "versions": i.versions,
                    "size": output.human_size(i.size),
                    "last change": i.modified.strftime("%Y-%m-%d %H:%M:%S") if i.modified else "-",
                    "path": i.path,
                }
                for i in infos
            ],
            ["type", "versions", "size", "last change", "path"],
        )
    else:
        for info in infos:
            click.echo(info.path + ("/" if info.entry_type is EntryType.DIRECTORY else ""))


@cli.command()
@click.argument("path")
@click.option("--sql", "query", help="SQL over the file as table `source`.")
@click.option("--format", "fmt", type=FORMAT, default="table", show_default=True)
@click.option("--version", type=int, help="One version (a series: that version's rows).")
@click.option("--time-start", type=TIMESTAMP, help="Series rows at or after this time.")
@click.option("--time-end", type=TIMESTAMP, help="Series rows before this time.")
@at_option
@click.pass_context
def cat(
    ctx: click.Context,
    path: str,
    query: str | None,
    fmt: str,
    version: int | None,
    time_start: datetime | None,
    time_end: datetime | None,
    at: int | None,
) -> None:
    """Print a file: bytes for data files, rows for tables and series."""
    pond = settings(ctx).open()
    node = pond.node(path, at=at)
    if node.entry_type is EntryType.DIRECTORY:
        raise ConfigError("is a directory", subject=node.path, hint=f"use `pond list {path}/`")
    if node.entry_type is EntryType.DATA and query is None:
        if time_start or time_end:
            raise ConfigError("--time-start/--time-end apply to series", subject=node.path)
        sys.stdout.buffer.write(pond.read_bytes(node, version=version, at=at))
        sys.stdout.buffer.flush()
        return
    if query is None:
        table = pond.read_table(
            node, version=version, at=at, time_start=time_start, time_end=time_end
        )
    else:
        table = pond.query(
            query, source=node, version=version, at=at, time_start=time_start, time_end=time_end
        )
    output.write_rows(table, fmt)


@cli.command()
@click.argument("query")
@click.option("--format", "fmt", type=FORMAT, default="table", show_default=True)
@at_option
@click.pass_context
def sql(ctx: click.Context, query: str, fmt: str, at: int | None) -> None:
    """SQL where quoted pond paths are tables: SELECT count(*) FROM '/data/a.series'."""
    output.write_rows(settings(ctx).open().query(query, at=at), fmt)


@cli.command()
@click.argument("path")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table")
@at_option
@click.pass_context
def describe(ctx: click.Context, path: str, fmt: str, at: int | None) -> None:
    """Type, schema, timestamp column, factory and config, and every version."""
    info = settings(ctx).open().describe(path, at=at)
    if fmt == "json":
        output.print_json(info)
        return
    con = output.console()
    con.print(f"[bold]{escape(info['path'])}[/bold]  {info['type']}")
    if info["factory"] != "tlogfs":
        con.print(f"factory: {info['factory']}", markup=False)
        con.print(
            "config:\n  "
            + yaml.safe_dump(info["config"], sort_keys=False).rstrip().replace("\n", "\n  "),
            markup=False,
        )
        if info.get("refresh"):
            con.print(f"refresh: {info['refresh']}", markup=False)
    if "target" in info:
        con.print(f"target: {info['target']}", markup=False)
    if "schema" in info:
        con.print("schema:")
        for column in info["schema"]:
            marker = "  (time column)" if column["name"] == info.get("time_column") else ""
            zone = "  (no zone: UTC)" if column.get("zone") else ""
            con.print(f"  {column['name']}: {column['type']}{zone}{marker}", markup=False)
        if info.get("zoneless_utc"):
            con.print(
                f"zone-less times were read as UTC: {', '.join(info['zoneless_utc'])}",
                markup=False,
            )
    if info["versions"]:
        con.print("versions:")
        output.print_records(
            [{**v, "size": output.human_size(v["size"])} for v in info["versions"]],
            ["version", "txn", "time", "size", "rows", "min_event_time", "max_event_time"],
        )


@cli.command()
@click.option("--limit", type=click.IntRange(min=0), help="Only the newest N transactions.")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table")
@click.pass_context
def log(ctx: click.Context, limit: int | None, fmt: str) -> None:
    """Transactions, newest first."""
    transactions = settings(ctx).open().log(limit)
    rows: list[dict[str, Any]] = [
        {
            "txn": t.txn_seq,
            "time": t.time.isoformat(),
            "command": t.command,
            "paths": t.paths,
            **({"run_id": t.run_id} if t.run_id else {}),
        }
        for t in transactions
    ]
    if fmt == "json":
        output.print_json(rows)
        return
    output.print_records(
        [
            {**r, "paths": ", ".join(r["paths"]), "time": r["time"][:19].replace("T", " ")}
            for r in rows
        ],
        [
            "txn",
            "time",
            "command",
            "paths",
            *(["run_id"] if any("run_id" in r for r in rows) else []),
        ],
    )


@cli.command()
@click.argument("path")
@click.option("-r", "--recursive", is_flag=True, help="Remove a directory and its content.")
@click.pass_context
def rm(ctx: click.Context, path: str, recursive: bool) -> None:
    """Remove a node (its history stays readable with --at)."""
    pond = settings(ctx).open()
    with pond.transaction(f"rm {path}") as tx:
        tx.remove(path, recursive=recursive)


@cli.command()
@click.pass_context
def verify(ctx: click.Context) -> None:
    """Recompute every checksum and check every listing; exit 1 if anything is wrong."""
    report = settings(ctx).open().verify()
    for note in report.notes:
        click.echo(f"note: {note}", err=True)
    if not report.ok:
        for problem in report.problems:
            click.echo(f"problem: {problem}", err=True)
        _exit(
            1,
            f"{len(report.problems)} problem(s) in {report.checked} versions: {report.problems[0]}",
        )
    click.echo(f"ok: {report.checked} versions checked")


@cli.command()
@click.pass_context
def gc(ctx: click.Context) -> None:
    """Remove blobs no version references (left by interrupted writes)."""
    removed = settings(ctx).open().gc()
    click.echo(f"removed {len(removed)} unreferenced blob(s)")


# -- dynamic nodes -------------------------------------------------------------------------
@cli.command()
@click.argument("factory")
@click.argument("path")
@click.option(
    "--config",
    "config_file",
    required=True,
    type=click.Path(dir_okay=False),
    help="A YAML file with the factory's config.",
)
@click.option("--overwrite", is_flag=True, help="Replace the config of an existing node.")
@click.option("--refresh", help="How often Dagster refreshes it: 30s, 5m, 1h, 1d.")
@click.pass_context
def mknod(
    ctx: click.Context,
    factory: str,
    path: str,
    config_file: str,
    overwrite: bool,
    refresh: str | None,
) -> None:
    """Create (or with --overwrite update) a dynamic node."""
    config = _load_yaml(Path(config_file))
    _create_dynamic(ctx, path, factory, config, overwrite=overwrite, refresh=refresh)


@cli.command("create-derived-series")
@click.argument("path")
@click.option("--source", required=True, help="Pond path or glob read as table `source`.")
@click.option("--query", required=True, help="DuckDB SQL over `source`.")
@click.option("--refresh", help="How often Dagster refreshes it: 30s, 5m, 1h, 1d.")
@click.option("--overwrite", is_flag=True)
@click.pass_context
def create_derived_series(
    ctx: click.Context, path: str, source: str, query: str, refresh: str | None, overwrite: bool
) -> None:
    """Shorthand for `mknod sql_derived_series`."""
    _create_dynamic(
        ctx,
        path,
        "sql_derived_series",
        {"source": source, "query": query},
        overwrite=overwrite,
        refresh=refresh,
    )


@cli.command("create-csv-directory")
@click.argument("path")
@click.option("--pattern", required=True, help="Glob over pond paths of CSV data files.")
@click.option("--type", "entry_type", required=True, type=click.Choice(["series", "table"]))
@click.option("--temporal-column", help="The series' timestamp column.")
@click.option("--cache-ttl", help="Reuse converted files at most this long (e.g. 6h).")
@click.option("--overwrite", is_flag=True)
@click.pass_context
def create_csv_directory(
    ctx: click.Context,
    path: str,
    pattern: str,
    entry_type: str,
    temporal_column: str | None,
    cache_ttl: str | None,
    overwrite: bool,
) -> None:
    """Shorthand for `mknod csv_directory`."""
    config: dict[str, Any] = {"pattern": pattern, "type": entry_type}
    if temporal_column:
        config["temporal_column"] = temporal_column
    if cache_ttl:
        config["cache_ttl"] = cache_ttl
    _create_dynamic(ctx, path, "csv_directory", config, overwrite=overwrite, refresh=None)


@cli.command()
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table")
@click.pass_context
def factories(ctx: click.Context, fmt: str) -> None:
    """Installed factories and their config fields."""
    infos = Pond.factories()
    if fmt == "json":
        output.print_json([vars(i) for i in infos])
        return
    con = output.console()
    for info in infos:
        con.print(f"[bold]{info.name}[/bold] → {info.produces}  {info.description}")
        for name, text in info.fields.items():
            con.print(f"    {name}: {text}")


@cli.group()
def cache() -> None:
    """The materialization cache."""


@cache.command("stats")
@click.pass_context
def cache_stats(ctx: click.Context) -> None:
    """Entries and bytes on disk, by factory."""
    stats = settings(ctx).open().cache.stats()
    click.echo(f"entries: {stats.entries}  size: {output.human_size(stats.bytes)}")
    for factory, (count, size) in sorted(stats.by_factory.items()):
        click.echo(f"  {factory}: {count} entries, {output.human_size(size)}")


@cache.command("clear")
@click.pass_context
def cache_clear(ctx: click.Context) -> None:
    """Delete every cache entry (derived data: safe)."""
    removed = settings(ctx).open().cache.clear()
    click.echo(f"removed {removed} cache entries")


# -- pipelines (pond.yaml) ----------------------------------------------------------------
@cli.command()
@click.argument("file", required=False)
@click.option("--dry-run", is_flag=True, help="Print the plan, change nothing.")
@click.option(
    "--prune",
    is_flag=True,
    help="Remove nodes an earlier apply of this file created that it no longer has.",
)
@click.pass_context
def apply(ctx: click.Context, file: str | None, dry_run: bool, prune: bool) -> None:
    """Reconcile pond.yaml with the pond in one transaction (plan printed first)."""
    from pond_pipeline.project import apply as applying
    from pond_pipeline.project import pipeline as pipelines

    chosen = settings(ctx)
    pipeline = pipelines.load(file)
    try:
        pond = pipelines.open_pond(
            pipeline, create=not dry_run, uri=chosen.uri or None, options=chosen.options
        )
    except NotFoundError:  # a dry run against a pond that does not exist yet
        pond = None
    if pond is None:
        items = applying.plan_new(pipeline)
    else:
        items = applying.apply(pond, pipeline, prune=prune, dry_run=dry_run)
    marks = {"create": "+", "update": "~", "unchanged": "=", "remove": "-"}
    for item in items:
        click.echo(f"{marks[item.action]} {item.action:<9} {item.path}  ({item.factory})")
    changes = [i for i in items if i.action != "unchanged"]
    if dry_run:
        click.echo(f"dry run: {len(changes)} change(s) planned, nothing written")
        return
    assert pond is not None
    click.echo(
        f"applied {len(changes)} change(s) to {pond.location.root}"
        if changes
        else "nothing to do: the pond matches the file"
    )


@cli.command("materialize")
@click.argument("paths", nargs=-1)
@click.option("--all", "everything", is_flag=True, help="Every node of pond.yaml (the default).")
@click.option(
    "--config", "config_path", help="The pipeline file (default: POND_CONFIG or ./pond.yaml)."
)
@click.pass_context
def materialize_(
    ctx: click.Context, paths: tuple[str, ...], everything: bool, config_path: str | None
) -> None:
    """Run dynamic nodes through Dagster in one in-process run, recorded in the project's
    Dagster instance (.dagster/ beside pond.yaml, or DAGSTER_HOME), and write their results
    to the pond."""
    from pond_pipeline.orchestration.instance import dagster_home, open_instance
    from pond_pipeline.orchestration.run import prepare_run, run_assets
    from pond_pipeline.project import pipeline as pipelines

    pipeline = pipelines.load(config_path)  # read once, handed to the definitions
    prepared = prepare_run(
        pipeline, paths, everything=everything, pond_uri=settings(ctx).uri or None
    )
    con = output.console()
    with (
        open_instance(pipeline.project.folder) as instance,
        Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.completed}/{task.total}"),
            console=con,
            transient=True,
        ) as bar,
    ):
        task = bar.add_task("materializing", total=len(prepared.paths))

        def started(path: str) -> None:
            bar.update(task, description=f"materializing {path}")

        def done(run: Any) -> None:
            bar.advance(task)
            con.print(_describe_run(run))

        runs = run_assets(prepared, instance, on_start=started, on_done=done)
    failed = [r for r in runs if not r.success and not r.is_skipped]
    if failed:
        for run in failed:
            click.echo(f"Error: {one_line(f'{run.path}: {run.error}')}", err=True)
        sys.exit(1)
    data_files = [
        r.path
        for r in runs
        if r.metadata.get("pond/type") == "file:data"
        or r.path.endswith((".md", ".html", ".csv", ".txt"))
    ]
    for path in data_files:
        con.print(f"report: [bold]pond cat {path}[/bold]")
    home = dagster_home(pipeline.project.folder)  # made by open_instance
    con.print(
        f"open the UI: [bold]pond ui[/bold] (or [bold]DAGSTER_HOME={escape(str(home))} "
        "dagster dev -w workspace.yaml[/bold])"
    )


def _describe_run(run: Any) -> str:
    if run.is_skipped:
        return f"[yellow]-[/yellow] {run.path}: skipped, {', '.join(run.skipped_for)} failed"
    if not run.success:
        return f"[red]✗[/red] {escape(run.path)}: failed (the error is below)"
    meta = run.metadata
    parts = []
    if "dagster/row_count" in meta:
        parts.append(f"{meta['dagster/row_count']} rows")
    written = meta.get("pond/versions_written", 0)
    parts.append(
        f"{written} version(s) written"
        + (f" in txn {meta['pond/txn']}" if "pond/txn" in meta else "")
    )
    if "pond/temporal_range" in meta:
        parts.append(str(meta["pond/temporal_range"]))
    checks = ", ".join(f"{name} {'passed' if ok else 'FAILED'}" for name, ok in run.checks.items())
    if checks:
        parts.append(f"checks: {checks}")
    return f"[green]✓[/green] {run.path}: " + "; ".join(parts)


@cli.command("ui")
@click.option("--port", type=click.IntRange(1, 65535), default=3000, show_default=True)
@click.option("--host", default="127.0.0.1", show_default=True, help="The address to serve on.")
@click.option(
    "--config", "config_path", help="The pipeline file (default: POND_CONFIG or ./pond.yaml)."
)
@click.pass_context
def ui(ctx: click.Context, port: int, host: str, config_path: str | None) -> None:
    """The Dagster UI and daemon (what `dagster dev` starts) on the project's workspace and
    Dagster instance, until Ctrl-C."""
    from pond_pipeline.orchestration.ui import serve_ui
    from pond_pipeline.project import pipeline as pipelines

    config = pipelines.project_file(config_path).resolve()
    if not config.is_file():
        raise NotFoundError(
            "no such file",
            subject=str(config),
            hint="run from the folder holding pond.yaml, or pass --config / set POND_CONFIG",
        )

    def ready(url: str, home: Path, workspace: Path) -> None:
        click.echo(
            f"Dagster UI on {url} (Dagster home {home}, workspace {workspace}); Ctrl-C stops it"
        )

    code = serve_ui(
        config, host=host, port=port, pond_uri=settings(ctx).uri or None, on_start=ready
    )
    if code:
        _exit(code, f"dagster dev exited with code {code}; see its output above")


# -- helpers --------------------------------------------------------------------------------
def _create_dynamic(
    ctx: click.Context,
    path: str,
    factory: str,
    config: dict[str, Any],
    *,
    overwrite: bool,
    refresh: str | None,
) -> None:
    pond = settings(ctx).open()
    verb = "update" if overwrite else "mknod"
    with pond.transaction(f"{verb} {factory} {path}") as tx:
        record = tx.create_dynamic(path, factory, config, overwrite=overwrite, refresh=refresh)
    click.echo(f"{path}: {factory} → {record.entry_type}, version {record.version}")


def _load_yaml(path: Path) -> dict[str, Any]:
    value = pond_yaml.parse_yaml(path, pond_yaml.read_text(path))
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ConfigError("a config file must hold a mapping of fields", subject=str(path))
    return value


def _maybe_node(pond: Pond, path: str) -> Any:
    try:
        return pond.node(path)
    except NotFoundError:
        return None


def _exit(code: int, message: str) -> NoReturn:
    click.echo(f"Error: {message}", err=True)
    sys.exit(code)


def main() -> None:
    cli(prog_name="pond")
