"""Installed factories, found through the ``pond.factories`` entry-point group, and the
validation of a node's config against its factory's model."""

import json
import os
import re
from datetime import timedelta
from functools import cache
from importlib.metadata import entry_points
from types import UnionType
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import ValidationError

from pond_pipeline.durations import format_duration
from pond_pipeline.errors import ConfigError, FactoryError
from pond_pipeline.factory import Factory, FactoryConfig, FactoryInfo

ENTRY_POINT_GROUP = "pond.factories"
_ENV = re.compile(r"\$\{env:([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


@cache
def installed() -> dict[str, Factory[Any]]:
    """Every installed factory by name (loaded once, on first use)."""
    found: dict[str, Factory[Any]] = {}
    for point in entry_points(group=ENTRY_POINT_GROUP):
        try:
            factory_class = point.load()
        except Exception as exc:
            raise FactoryError(
                f"cannot load factory plug-in {point.value!r}: {exc}", subject=point.name
            ) from exc
        found[point.name] = factory_class()
    return found


def get(name: str) -> Factory[Any]:
    factories = installed()
    if name not in factories:
        raise ConfigError(
            f"unknown factory {name!r}",
            hint=f"installed factories: {', '.join(sorted(factories)) or 'none'}",
        )
    return factories[name]


def describe_all() -> list[FactoryInfo]:
    infos = []
    for name, factory in sorted(installed().items()):
        fields = {
            info.alias or field_name: _describe_field(
                info.annotation, info.is_required(), info.get_default(call_default_factory=True)
            )
            for field_name, info in factory.Config.model_fields.items()
        }
        infos.append(FactoryInfo(name, factory.produces.short, factory.description, fields))
    return infos


def _describe_field(annotation: Any, required: bool, default: Any) -> str:
    text = type_text(annotation)
    if isinstance(default, timedelta):
        default = format_duration(default)
    return f"{text} (required)" if required else f"{text} = {default!r}"


def type_text(annotation: Any) -> str:
    """A field's type as a user reads it: ``'table' | 'series'``, ``duration | None``."""
    origin, args = get_origin(annotation), get_args(annotation)
    if origin is Literal:
        return " | ".join(repr(a) for a in args)
    if origin in (Union, UnionType):
        return " | ".join(type_text(a) for a in args)
    if origin is Annotated:
        return type_text(args[0])
    if annotation is timedelta:
        return "duration"
    if annotation is type(None):
        return "None"
    if origin is not None:
        inner = ", ".join(type_text(a) for a in args)
        return f"{getattr(origin, '__name__', str(origin))}[{inner}]"
    return getattr(annotation, "__name__", str(annotation))


def expand_env(value: Any, *, subject: str) -> Any:
    """``${env:NAME}`` / ``${env:NAME:-default}`` in every string of a config, expanded."""
    if isinstance(value, str):

        def substitute(match: re.Match[str]) -> str:
            name, default = match.group(1), match.group(2)
            if name in os.environ:
                return os.environ[name]
            if default is not None:
                return default
            raise ConfigError(
                f"environment variable {name} is not set",
                subject=subject,
                hint=f"export {name}=... or write ${{env:{name}:-default}}",
            )

        return _ENV.sub(substitute, value)
    if isinstance(value, dict):
        return {key: expand_env(item, subject=subject) for key, item in value.items()}
    if isinstance(value, list):
        return [expand_env(item, subject=subject) for item in value]
    return value


def validate(factory: Factory[Any], raw: Any, *, subject: str) -> FactoryConfig:
    """The typed config, with env references expanded; errors name the field."""
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(
            f"the config of factory {factory.name!r} must be a mapping, not {type(raw).__name__}",
            subject=subject,
        )
    try:
        return factory.Config.model_validate(expand_env(raw, subject=subject))
    except ValidationError as exc:
        raise ConfigError(
            f"invalid config for factory {factory.name!r}: {describe_validation(exc)}",
            subject=subject,
            hint=f"see `pond factories` for the fields of {factory.name}",
        ) from exc


def describe_validation(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors():
        location = ".".join(str(p) for p in error["loc"]) or "config"
        message = error["msg"]
        if error["type"] == "extra_forbidden":
            message = "unknown field"
        elif error["type"] == "missing":
            message = "required field missing"
        parts.append(f"{location}: {message}")
    return "; ".join(parts)


def encode_config(raw: dict[str, Any]) -> bytes:
    """The stored form of a config (unexpanded, canonical JSON)."""
    return json.dumps(raw, sort_keys=True, separators=(",", ":"), default=str).encode()


def decode_config(content: bytes | None) -> dict[str, Any]:
    if not content:
        return {}
    value = json.loads(content)
    return value if isinstance(value, dict) else {}
