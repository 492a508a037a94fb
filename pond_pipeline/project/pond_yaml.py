"""``pond.yaml``: the pipeline file users edit and review in git.

    pond: ./.pond                  # store URI (env POND overrides)
    nodes:
      /analytics/daily.series:     # key = absolute pond path
        factory: sql_derived_series
        description: Daily mean temperature per sensor
        config: {source: /processed/*.series, query: "SELECT ..."}
        refresh: 1h                # or "cron: 15 3 * * *"
        automation: eager          # or on_cron (at refresh's cron, once its inputs updated)
        schema:
          temporal_column: day
          columns:
            avg_temp: {type: double, checks: {ge: -60, le: 60}}

Parsing keeps the line of every key so any error can name file, line and key.
"""

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field, ValidationError, field_validator

from pond_pipeline.durations import normalize_refresh
from pond_pipeline.errors import ConfigError
from pond_pipeline.factory import PondModel
from pond_pipeline.project.locate import DEFAULT_POND, resolve_pond_uri


class ColumnChecks(PondModel):
    ge: float | None = None
    le: float | None = None
    gt: float | None = None
    lt: float | None = None
    isin: list[Any] | None = None
    str_matches: str | None = None
    unique: bool = False

    @field_validator("str_matches")
    @classmethod
    def _regex(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"not a valid regular expression: {exc}") from exc
        return value


class ColumnSpec(PondModel):
    type: Literal[
        "string", "double", "float", "int64", "int32", "int16", "int8", "bool", "timestamp", "date"
    ]
    nullable: bool = True
    checks: ColumnChecks = ColumnChecks()


class SchemaSpec(PondModel):
    temporal_column: str | None = None
    columns: dict[str, ColumnSpec] = Field(default_factory=dict)


class NodeSpec(PondModel):
    factory: str
    config: dict[str, Any] = Field(default_factory=dict)
    description: str | None = None
    refresh: str | None = None
    automation: Literal["eager", "on_cron"] | None = None
    """Dagster's declarative automation: ``eager`` runs the node whenever something it
    reads was updated; ``on_cron`` at each tick of ``refresh`` once its inputs updated."""
    schema_: SchemaSpec | None = Field(default=None, alias="schema")

    @field_validator("refresh", mode="before")
    @classmethod
    def _refresh(cls, value: Any) -> str | None:
        if value is None:
            return None
        try:
            return normalize_refresh(str(value))
        except ConfigError as exc:
            raise ValueError(exc.reason + (f"; {exc.hint}" if exc.hint else "")) from exc


class PondFile(PondModel):
    pond: str = DEFAULT_POND
    schedules: Literal["running", "stopped"] = "running"
    """Whether the schedules, ingest sensors and automation start running in Dagster."""
    nodes: dict[str, NodeSpec] = Field(default_factory=dict)


@dataclass
class Project:
    """A loaded ``pond.yaml``: the model, where it lives, and the line of every key."""

    path: Path
    spec: PondFile
    lines: dict[tuple[str, ...], int] = field(default_factory=dict)

    @property
    def folder(self) -> Path:
        return self.path.parent

    def pond_uri(self, override: str | None = None) -> str:
        """The store URI: ``override`` (``--pond``), else env ``POND``, else the file's
        ``pond:``; a relative path starts at ``pond.yaml``'s folder."""
        return resolve_pond_uri(override or os.environ.get("POND") or self.spec.pond, self.folder)

    def line_of(self, *keys: str) -> int | None:
        """The line of the deepest known key along ``keys``."""
        for end in range(len(keys), 0, -1):
            if keys[:end] in self.lines:
                return self.lines[keys[:end]]
        return None

    def error(self, reason: str, *keys: str, hint: str | None = None) -> ConfigError:
        line = self.line_of(*keys)
        where = f"{self.path}:{line}" if line else str(self.path)
        key = ".".join(keys)
        return ConfigError(reason, subject=f"{where}: {key}" if key else where, hint=hint)


def load(path: Path) -> Project:
    """Parse and validate the file's shape (factories are checked by ``pipeline``)."""
    text = read_text(path, hint="run from the folder holding pond.yaml or set POND_CONFIG")
    lines = _key_lines(path, text)
    data = parse_yaml(path, text) or {}
    if not isinstance(data, dict):
        raise ConfigError("must be a mapping with keys 'pond' and 'nodes'", subject=f"{path}:1")
    project = Project(path, PondFile(), lines)
    try:
        spec = PondFile.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        keys = tuple(str(p) for p in first["loc"])
        message = str(first["msg"]).removeprefix("Value error, ")
        if first["type"] == "missing":
            message = "required key missing"
        if first["type"] != "extra_forbidden":
            raise project.error(message, *keys) from exc
        raise project.error("unknown key", *keys, hint=_hint(keys)) from exc
    for key, node in spec.nodes.items():
        if node.automation == "on_cron" and node.refresh is None:
            raise project.error(
                "automation: on_cron needs a refresh (its cron)",
                "nodes",
                key,
                "automation",
                hint="add refresh: 1h (or a cron), or use automation: eager",
            )
        if not key.startswith("/"):
            raise project.error(
                "a node key must be an absolute pond path",
                "nodes",
                key,
                hint=f"write /{key.lstrip('./')}",
            )
    project.spec = spec
    return project


def _hint(keys: tuple[str, ...]) -> str | None:
    if len(keys) >= 3 and keys[0] == "nodes":
        return "node keys are factory, config, description, refresh, automation, schema"
    if len(keys) == 1:
        return "top-level keys are pond, schedules and nodes"
    return None


MAX_YAML_DEPTH = 64
MAX_YAML_VALUES = 100_000


def read_text(path: Path, *, hint: str | None = None) -> str:
    """A config file's text; unreadable or not UTF-8 is a ``ConfigError`` naming the line."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read: {exc.strerror}", subject=str(path), hint=hint) from exc
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise ConfigError(
            f"not UTF-8 text (byte {raw[exc.start]:#04x})",
            subject=f"{path}:{line}",
            hint="save the file as UTF-8",
        ) from exc


def parse_yaml(path: Path, text: str) -> Any:
    """The value of a YAML document; every way it can be unreadable (syntax, a value
    Python cannot build such as ``2024-13-45``, a self-referring alias, nesting or alias
    expansion beyond bounds) is a ``ConfigError`` naming the file and, if known, the line."""
    try:
        value = yaml.load(text, Loader=_SafeLoader)  # a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"invalid YAML: {problem}", subject=where) from exc
    except RecursionError as exc:
        raise ConfigError(
            f"invalid YAML: nested more than {MAX_YAML_DEPTH} levels deep", subject=str(path)
        ) from exc
    _check_bounds(path, value)
    return value


def _check_bounds(path: Path, value: Any) -> None:
    """Aliases may share a value but not contain themselves, and expanded they stay small
    (``&a [*a]`` and alias bombs would hang or exhaust memory downstream)."""
    stack: list[tuple[Any, int]] = [(value, 0)]
    count = 0
    while stack:
        item, depth = stack.pop()
        count += 1
        if depth > MAX_YAML_DEPTH:
            raise ConfigError(
                f"invalid YAML: nested more than {MAX_YAML_DEPTH} levels deep "
                "(or an alias that refers to itself)",
                subject=str(path),
            )
        if count > MAX_YAML_VALUES:
            raise ConfigError(
                f"invalid YAML: more than {MAX_YAML_VALUES:,} values once aliases are expanded",
                subject=str(path),
            )
        if isinstance(item, dict):
            stack.extend((child, depth + 1) for pair in item.items() for child in pair)
        elif isinstance(item, list | tuple | set):
            stack.extend((child, depth + 1) for child in item)


class _SafeLoader(yaml.SafeLoader):
    """PyYAML's safe loader; a scalar it cannot build (``2024-13-45``, ``!!int x``) is a
    YAML error at that scalar's line instead of a bare ``ValueError``."""

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep=deep)
        except (ValueError, TypeError, OverflowError) as exc:
            raise yaml.constructor.ConstructorError(
                None, None, f"cannot read {node.value!r}: {exc}", node.start_mark
            ) from exc


class _LineLoader(yaml.SafeLoader):
    pass


def _key_lines(path: Path, text: str) -> dict[tuple[str, ...], int]:
    """Line (1-based) of every mapping key; duplicate keys are errors naming both lines."""
    try:
        root = yaml.compose(text, Loader=_LineLoader)
    except RecursionError as exc:
        raise ConfigError(
            f"invalid YAML: nested more than {MAX_YAML_DEPTH} levels deep", subject=str(path)
        ) from exc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"invalid YAML: {problem}", subject=where) from exc
    lines: dict[tuple[str, ...], int] = {}
    visited: set[int] = set()

    def visit(node: yaml.Node, prefix: tuple[str, ...]) -> None:
        if id(node) in visited:  # an alias: its keys have their lines already (no cycles)
            return
        visited.add(id(node))
        if isinstance(node, yaml.MappingNode):
            seen: dict[str, int] = {}
            for key_node, value_node in node.value:
                key = str(key_node.value) if isinstance(key_node, yaml.ScalarNode) else "?"
                line = key_node.start_mark.line + 1
                if key in seen:
                    label = ".".join((*prefix, key))
                    raise ConfigError(
                        f"duplicate key {label!r} (first on line {seen[key]})",
                        subject=f"{path}:{line}",
                        hint="each node path may appear once",
                    )
                seen[key] = line
                lines[(*prefix, key)] = line
                visit(value_node, (*prefix, key))
        elif isinstance(node, yaml.SequenceNode):
            for index, item in enumerate(node.value):
                lines[(*prefix, str(index))] = item.start_mark.line + 1
                visit(item, (*prefix, str(index)))

    if root is not None:
        visit(root, ())
    return lines
