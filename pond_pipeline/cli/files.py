"""Commands on the pond's files: init, mkdir, ln, copy, list, cat, sql, describe, log,
rm, verify, gc. Each opens the pond, calls one API method, and prints the result."""

import os
import sys
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any

import click

from pond_pipeline.cli import output
from pond_pipeline.cli.base import (
    TIMESTAMP,
    at_option,
    exit_with,
    format_option,
    maybe_node,
    settings,
)
from pond_pipeline.errors import ConfigError

SMALL_IMPORT_BYTES = 8 * 1024 * 1024


@click.command()
@click.option(
    "--inline-threshold",
    type=int,
    default=64 * 1024,
    show_default=True,
    help="Payloads larger than this many bytes go to blobs/.",
)
@click.pass_context
def init(ctx: click.Context, inline_threshold: int) -> None:
    """Create an empty pond: the one --pond or POND gives, else the one pond.yaml names."""
    from pond_pipeline.api import Pond

    chosen = settings(ctx)
    pond = Pond.create(chosen.pond_uri, inline_threshold=inline_threshold, options=chosen.options())
    click.echo(f"created pond at {pond.location.root}")


@click.command()
@click.argument("path")
@click.option(
    "-p", "--parents", is_flag=True, help="Create missing parents; no error if it exists."
)
@click.pass_context
def mkdir(ctx: click.Context, path: str, parents: bool) -> None:
    """Create a directory."""
    settings(ctx).open().mkdir(path, parents=parents)


@click.command()
@click.argument("target")
@click.argument("path")
@click.pass_context
def ln(ctx: click.Context, target: str, path: str) -> None:
    """Create a symlink PATH pointing at TARGET (followed on read)."""
    pond = settings(ctx).open()
    with pond.transaction(f"ln {target} {path}") as tx:
        exists = tx.symlink(path, target)
    if not exists:  # allowed, as POSIX allows it: the target may come later
        click.echo(f"warning: {path} -> {target}: {target} does not exist (yet)", err=True)


@click.command()
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
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    from pond_pipeline.factory import EntryType

    pond = settings(ctx).open()
    total = sum(Path(s).stat().st_size for s in sources if Path(s).is_file())
    new_directory = dest.endswith("/") and maybe_node(pond, dest) is None
    if new_directory and not parents:
        raise ConfigError(
            "no such directory (a trailing / names a directory)",
            subject=dest,
            hint=f"create it with `pond mkdir -p {dest}`, or pass -p",
        )
    if len(sources) > 1:
        node = maybe_node(pond, dest)
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
        if new_directory:  # made in the copy's own transaction
            tx.mkdir(dest, parents=True)

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


@click.command("list")
@click.argument("pattern", required=False)
@click.option("-l", "--long", "long_", is_flag=True, help="Type, versions, size, last change.")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table")
@at_option
@click.pass_context
def list_(ctx: click.Context, pattern: str | None, long_: bool, fmt: str, at: int | None) -> None:
    """List nodes. Globs: * ? **. /dir/ lists its children, /dir the entry itself."""
    from pond_pipeline.factory import EntryType

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


@click.command()
@click.argument("path")
@click.option("--sql", "query", help="SQL over the file as table `source`.")
@format_option
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
    from pond_pipeline.factory import EntryType

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


@click.command()
@click.argument("query")
@format_option
@at_option
@click.pass_context
def sql(ctx: click.Context, query: str, fmt: str, at: int | None) -> None:
    """SQL where quoted pond paths are tables: SELECT count(*) FROM '/data/a.series'."""
    output.write_rows(settings(ctx).open().query(query, at=at), fmt)


@click.command()
@click.argument("path")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table")
@at_option
@click.pass_context
def describe(ctx: click.Context, path: str, fmt: str, at: int | None) -> None:
    """Type, schema, timestamp column, factory and config, and every version."""
    from rich.markup import escape

    info = settings(ctx).open().describe(path, at=at)
    if fmt == "json":
        output.print_json(info)
        return
    con = output.console()
    con.print(f"[bold]{escape(info['path'])}[/bold]  {info['type']}")
    if info["factory"] != "tlogfs":
        con.print(f"factory: {info['factory']}", markup=False)
        con.print(
            "config:\n  " + output.block_yaml(info["config"]).replace("\n", "\n  "), markup=False
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
    if "schema_error" in info:
        con.print(f"schema: not known yet ({info['schema_error']})", markup=False)
    if info["versions"]:
        con.print("versions:")
        output.print_records(
            [{**v, "size": output.human_size(v["size"])} for v in info["versions"]],
            ["version", "txn", "time", "size", "rows", "min_event_time", "max_event_time"],
        )


@click.command()
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


@click.command()
@click.argument("path")
@click.option("-r", "--recursive", is_flag=True, help="Remove a directory and its content.")
@click.pass_context
def rm(ctx: click.Context, path: str, recursive: bool) -> None:
    """Remove a node (its history stays readable with --at)."""
    pond = settings(ctx).open()
    with pond.transaction(f"rm {path}") as tx:
        tx.remove(path, recursive=recursive)


@click.command()
@click.pass_context
def verify(ctx: click.Context) -> None:
    """Recompute every checksum and check every listing; exit 1 if anything is wrong."""
    report = settings(ctx).open().verify()
    for note in report.notes:
        click.echo(f"note: {note}", err=True)
    if not report.ok:
        for problem in report.problems:
            click.echo(f"problem: {problem}", err=True)
        exit_with(
            1,
            f"{len(report.problems)} problem(s) in {report.checked} versions: {report.problems[0]}",
        )
    click.echo(f"ok: {report.checked} versions checked")


@click.command()
@click.pass_context
def gc(ctx: click.Context) -> None:
    """Remove blobs no version references (left by interrupted writes)."""
    removed = settings(ctx).open().gc()
    click.echo(f"removed {len(removed)} unreferenced blob(s)")
