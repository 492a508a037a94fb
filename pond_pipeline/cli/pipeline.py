"""Commands on the pipeline of pond.yaml: apply, materialize (through Dagster, in
process), and ui (the Dagster UI and daemon)."""

import sys
from pathlib import Path
from typing import Any

import click

from pond_pipeline.cli import output
from pond_pipeline.cli.base import config_option, exit_with, one_line, settings
from pond_pipeline.errors import NotFoundError


@click.command()
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
            pipeline, create=not dry_run, uri=chosen.uri or None, options=chosen.options()
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


@click.command("materialize")
@click.argument("paths", nargs=-1)
@click.option("--all", "everything", is_flag=True, help="Every node of pond.yaml (the default).")
@config_option
@click.pass_context
def materialize_(
    ctx: click.Context, paths: tuple[str, ...], everything: bool, config_path: str | None
) -> None:
    """Run dynamic nodes through Dagster in one in-process run, recorded in the project's
    Dagster instance (.dagster/ beside pond.yaml, or DAGSTER_HOME), and write their results
    to the pond."""
    from rich.markup import escape
    from rich.progress import BarColumn, Progress, TextColumn

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
    if failed:  # the ✗ lines point here: each error once, one line, on stderr
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
    from rich.markup import escape

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


@click.command("ui")
@click.option("--port", type=click.IntRange(1, 65535), default=3000, show_default=True)
@click.option("--host", default="127.0.0.1", show_default=True, help="The address to serve on.")
@config_option
@click.pass_context
def ui(ctx: click.Context, port: int, host: str, config_path: str | None) -> None:
    """The Dagster UI and daemon (what `dagster dev` starts) on the project's workspace and
    Dagster instance, until Ctrl-C."""
    from pond_pipeline.orchestration.ui import serve_ui
    from pond_pipeline.project.locate import project_file

    config = project_file(config_path).resolve()
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
        exit_with(code, f"dagster dev exited with code {code}; see its output above")
