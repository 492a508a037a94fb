"""``pond``: the root command, its global options, and where each command lives.

Library errors (``PondError``) are turned into one ``Error: ...`` line and the error's
exit code in ``PondGroup.invoke``; ``--debug`` shows the traceback instead. A command's
module is imported only when the command runs (or ``--help`` lists it).
"""

import click

from pond_pipeline.cli.base import PondGroup, Settings, seconds

COMMANDS = {
    **{
        name: f"pond_pipeline.cli.files:{name}"
        for name in ("init", "mkdir", "ln", "copy", "cat", "sql", "describe", "log", "rm")
    },
    "list": "pond_pipeline.cli.files:list_",
    "verify": "pond_pipeline.cli.files:verify",
    "gc": "pond_pipeline.cli.files:gc",
    "mknod": "pond_pipeline.cli.dynamic:mknod",
    "create-derived-series": "pond_pipeline.cli.dynamic:create_derived_series",
    "create-csv-directory": "pond_pipeline.cli.dynamic:create_csv_directory",
    "factories": "pond_pipeline.cli.dynamic:factories",
    "cache": "pond_pipeline.cli.dynamic:cache",
    "apply": "pond_pipeline.cli.pipeline:apply",
    "materialize": "pond_pipeline.cli.pipeline:materialize_",
    "ui": "pond_pipeline.cli.pipeline:ui",
    "status": "pond_pipeline.cli.status:status",
}


@click.group(cls=PondGroup, commands_from=COMMANDS)
@click.option("--pond", "uri", envvar="POND", default="", help="The pond's URI (env POND).")
@click.option(
    "--lock-timeout",
    type=float,
    callback=seconds,
    default=30.0,
    show_default=True,
    help="Seconds a writer waits for the write lock.",
)
@click.option(
    "--query-timeout",
    type=float,
    callback=seconds,
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
    ctx.obj = Settings(uri, lock_timeout, query_timeout)


def main() -> None:
    cli(prog_name="pond")
