"""``pond status``: pond.yaml against the pond (the apply plan), each node's last
materialization and whether it is stale (and why), and whether the schedules run."""

from datetime import datetime
from typing import Any

import click

from pond_pipeline.cli import output
from pond_pipeline.cli.base import config_option, settings

MARKS = {"create": "+", "update": "~", "unchanged": "=", "remove": "-"}


@click.command()
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table")
@click.option("--no-schedules", is_flag=True, help="Skip the schedules (no Dagster instance read).")
@config_option
@click.pass_context
def status(ctx: click.Context, fmt: str, no_schedules: bool, config_path: str | None) -> None:
    """pond.yaml vs the pond, each node's last materialization and what is stale (and
    why), and whether the schedules are running."""
    from pond_pipeline.project import pipeline as pipelines
    from pond_pipeline.project.status import open_for_status
    from pond_pipeline.project.status import status as pond_status

    pipeline = pipelines.load(config_path)
    found = pond_status(pipeline, open_for_status(pipeline, settings(ctx).uri or None))
    schedules = None
    scheduled = _scheduled(pipeline)
    if not no_schedules and scheduled:  # else Dagster (~1 s) is not loaded
        from pond_pipeline.orchestration.status import schedules_status

        schedules = schedules_status(pipeline)
    if fmt == "json":
        output.print_json(_document(found, schedules, no_schedules))
        return
    _print(found, schedules, None if no_schedules else scheduled)


def _scheduled(pipeline: Any) -> bool:
    return any(node.refresh for node in pipeline.assets)


def _document(found: Any, schedules: Any, skipped: bool) -> dict[str, Any]:
    from dataclasses import asdict

    document: dict[str, Any] = {
        "pond": found.uri,
        "exists": found.exists,
        "last_txn": found.last_txn,
        "last_time": found.last_time,
        "plan": [asdict(item) for item in found.plan],
        "nodes": [asdict(node) for node in found.nodes],
    }
    if not skipped:
        document["schedules"] = asdict(schedules) if schedules is not None else None
    return document


def _print(found: Any, schedules: Any, scheduled: bool | None) -> None:
    """``scheduled``: whether pond.yaml has a refresh (``None``: schedules not asked)."""
    from rich.markup import escape

    con = output.console()
    if found.exists:
        con.print(
            f"[bold]pond[/bold] {escape(found.uri)}: txn {found.last_txn}, {_time(found.last_time)}"
        )
    else:
        con.print(f"[bold]pond[/bold] {escape(found.uri)}: does not exist yet")
    changes = found.changes
    if changes:
        con.print(f"pond.yaml differs from the pond: {len(changes)} change(s) to apply")
        for item in changes:
            con.print(
                f"  {MARKS[item.action]} {item.action:<9} {escape(item.path)}  ({item.factory})"
            )
        con.print("  run [bold]pond apply[/bold] (see [bold]pond apply --dry-run[/bold])")
    else:
        con.print("pond.yaml and the pond agree: nothing to apply")
    if found.exists and found.nodes:
        output.print_records(
            [
                {
                    "node": node.path,
                    "factory": node.factory,
                    "last materialized": _time(node.materialized_at),
                    "txn": node.materialized_txn,
                    "run": node.run_id[:8] if node.run_id else None,
                    "rows": node.rows,
                    "state": node.state,
                    "why": node.why,
                }
                for node in found.nodes
            ],
            ["node", "factory", "last materialized", "txn", "run", "rows", "state", "why"],
        )
        stale = [n for n in found.nodes if n.state in ("stale", "due", "never materialized")]
        if stale:
            con.print(
                f"{len(stale)} node(s) to materialize: [bold]pond materialize[/bold] "
                + " ".join(escape(n.path) for n in stale)
            )
    if scheduled is not None:
        _print_schedules(con, schedules, scheduled)


def _print_schedules(con: Any, schedules: Any, declared: bool) -> None:
    from rich.markup import escape

    if schedules is None:
        if declared:
            con.print(
                "schedules: no Dagster instance yet; [bold]pond ui[/bold] starts the UI and "
                "the daemon that runs them"
            )
        else:
            con.print("schedules: none (no node of pond.yaml has a refresh)")
        return
    if schedules.daemon_running:
        con.print(f"daemon: running (heartbeat {_time(schedules.daemon_seen)})")
    else:
        seen = f", last seen {_time(schedules.daemon_seen)}" if schedules.daemon_seen else ""
        con.print(
            f"daemon: [yellow]not running[/yellow]{seen}: schedules do not fire; "
            "start it with [bold]pond ui[/bold]"
        )
    if not schedules.schedules:
        con.print("schedules: none (no node of pond.yaml has a refresh)")
        return
    output.print_records(
        [
            {
                "schedule": s.name,
                "cron": s.cron,
                "state": s.state,
                "last tick": f"{_time(s.last_tick)} {s.last_tick_status}" if s.last_tick else None,
                "nodes": ", ".join(s.nodes),
            }
            for s in schedules.schedules
        ],
        ["schedule", "cron", "state", "last tick", "nodes"],
    )
    con.print(f"Dagster home: {escape(str(schedules.home))}", markup=True)


def _time(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S UTC") if value else "never"
