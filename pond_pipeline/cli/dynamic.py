"""Commands on dynamic nodes: mknod, create-derived-series, create-csv-directory,
factories, and the materialization cache."""

from pathlib import Path
from typing import Any

import click

from pond_pipeline.cli import output
from pond_pipeline.cli.base import settings
from pond_pipeline.errors import ConfigError


@click.command()
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


@click.command("create-derived-series")
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


@click.command("create-csv-directory")
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


@click.command()
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table")
@click.pass_context
def factories(ctx: click.Context, fmt: str) -> None:
    """Installed factories and their config fields."""
    from pond_pipeline.api import Pond

    infos = Pond.factories()
    if fmt == "json":
        output.print_json([vars(i) for i in infos])
        return
    con = output.console()
    for info in infos:
        con.print(f"[bold]{info.name}[/bold] → {info.produces}  {info.description}")
        for name, text in info.fields.items():
            con.print(f"    {name}: {text}")


@click.group()
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
    from pond_pipeline.project import pond_yaml

    value = pond_yaml.parse_yaml(path, pond_yaml.read_text(path))
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ConfigError("a config file must hold a mapping of fields", subject=str(path))
    return value
