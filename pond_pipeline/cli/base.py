"""What every command shares: the root group (commands loaded on first use, library
errors as one ``Error: ...`` line), the global settings, and the option types.

Kept light on purpose: ``pond --help`` imports this and the command modules, and none
of them imports pyarrow, DuckDB, deltalake or pydantic at module level — a command
imports what it needs when it runs.
"""

import importlib
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import click

from pond_pipeline.cli import output
from pond_pipeline.errors import NotFoundError, PondError
from pond_pipeline.store.io_errors import storage_error

if TYPE_CHECKING:
    from pond_pipeline.api import Pond


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
    """The root group: its commands live in modules imported only when one is used
    (``commands``: name → ``module:function``), and a ``PondError`` raised anywhere
    below becomes one ``Error:`` line with the error's exit code."""

    def __init__(self, *args: Any, commands_from: dict[str, str], **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.commands_from = commands_from

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.commands_from})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in self.commands_from:
            module, name = self.commands_from[cmd_name].split(":")
            command = getattr(importlib.import_module(module), name)
            assert isinstance(command, click.Command), self.commands_from[cmd_name]
            self.add_command(command, cmd_name)
        return super().get_command(ctx, cmd_name)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except PondError as error:
            if ctx.meta.get("pond.debug"):
                raise
            raise PondCommandError(error) from error
        except OSError as exc:  # a write the storage refused, wherever it happened
            chosen = ctx.obj if isinstance(ctx.obj, Settings) else None
            uri = _uri(chosen)
            failure = storage_error(exc, pond=uri or None, root=_root(uri))
            if failure is None or ctx.meta.get("pond.debug"):
                raise
            raise PondCommandError(failure) from exc


def _uri(chosen: "Settings | None") -> str:
    """The pond a failed command used, if it can be told."""
    try:
        return chosen.pond_uri if chosen else ""
    except PondError:  # a pond.yaml that cannot be read
        return chosen.uri if chosen else ""


def _root(uri: str) -> Path | None:
    """The pond's folder, to name the part of it a failed write was for."""
    from pond_pipeline.store.location import PondLocation

    try:
        return PondLocation.parse(uri).root if uri else None
    except PondError:
        return None


@dataclass(frozen=True)
class Settings:
    """What the global options say: the pond's URI as given (``--pond``/``POND``; empty:
    not given) and how to use it."""

    uri: str
    lock_timeout: float
    query_timeout: float | None

    @cached_property
    def pond_uri(self) -> str:
        """The pond every command uses: ``--pond``, else ``POND``, else the one the project
        file names (``POND_CONFIG``, or ``pond.yaml`` here or in a parent folder); empty
        when none of them says (``Pond.open`` then says how to give one)."""
        from pond_pipeline.project.locate import located_pond

        if self.uri:
            return self.uri
        found = located_pond()
        return found[0] if found else ""

    def open(self) -> "Pond":
        from pond_pipeline.api import Pond

        return Pond.open(self.pond_uri, self.options())

    def options(self) -> Any:
        """The ``PondOptions`` these settings say (typed ``Any``: the API loads lazily)."""
        from pond_pipeline.api import PondOptions

        return PondOptions(lock_timeout=self.lock_timeout, query_timeout=self.query_timeout)


def settings(ctx: click.Context) -> Settings:
    value: Settings = ctx.find_root().obj
    return value


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


def _binary_needs_a_file(ctx: click.Context, param: click.Parameter, value: str) -> str:
    """Parquet is binary: refused on a terminal, where it would garble the screen."""
    if value == "parquet" and sys.stdout.isatty():
        raise click.BadParameter(
            "parquet is binary and stdout is a terminal; redirect it: > file.parquet",
            ctx,
            param,
        )
    return value


TIMESTAMP = Timestamp()
format_option = click.option(
    "--format",
    "fmt",
    type=click.Choice(output.FORMATS),
    default="table",
    show_default=True,
    callback=_binary_needs_a_file,
    help="table for people; csv, json, parquet (> file.parquet) for programs.",
)
at_option = click.option("--at", type=int, help="Read the pond as of transaction TXN.")
config_option = click.option(
    "--config", "config_path", help="The pipeline file (default: POND_CONFIG or ./pond.yaml)."
)


def seconds(ctx: click.Context, param: click.Parameter, value: float | None) -> float | None:
    """A timeout is a finite number of seconds, >= 0 (0: no query timeout)."""
    if value is not None and not 0 <= value < 1e9:  # also refuses nan and inf
        raise click.BadParameter(f"{value} is not a number of seconds from 0 to 1e9")
    return value


def maybe_node(pond: "Pond", path: str) -> Any:
    try:
        return pond.node(path)
    except NotFoundError:
        return None


def exit_with(code: int, message: str) -> NoReturn:
    click.echo(f"Error: {message}", err=True)
    sys.exit(code)
