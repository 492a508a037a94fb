"""``template``: a text file (Markdown, HTML, CSV, …) rendered by Jinja2 from pond data.

    factory: template
    config:
      sources: {alerts: /derived/alerts.series}
      template: |
        # Alerts
        {% for row in query("SELECT host, count(*) AS n FROM alerts GROUP BY host") %}
        - {{ row.host }}: {{ row.n }}
        {% endfor %}

The template runs in Jinja2's sandbox with ``StrictUndefined`` (a misspelt name is an
error, not an empty string) and no autoescaping. It may call ``query(sql)``, which runs
DuckDB SQL over ``sources`` (by name) and returns a list of row dicts, and use the
filters ``markdown_table``, ``html_table``, ``csv`` (rows → text), ``number`` (fixed
decimals, thousands separators) and ``datetime`` (strftime).
"""

import csv
import html
import io
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

import jinja2
from jinja2.sandbox import SandboxedEnvironment
from pydantic import Field, field_validator

from pond_pipeline.errors import FactoryError, QueryError
from pond_pipeline.factory import Factory, FactoryConfig, FactoryContext
from pond_pipeline.kinds import EntryType

__all__ = ["TemplateConfig", "TemplateFactory", "build_sandbox"]

Rows = Sequence[dict[str, Any]]


class TemplateConfig(FactoryConfig):
    template: str
    """Jinja2 text."""
    sources: dict[str, str] = Field(default={})
    """Table name → pond path or glob, for ``query(sql)``."""

    @field_validator("template")
    @classmethod
    def _parses(cls, value: str) -> str:
        try:
            build_sandbox().parse(value)
        except jinja2.TemplateSyntaxError as exc:
            raise ValueError(f"line {exc.lineno}: {exc.message}") from exc
        return value


class TemplateFactory(Factory[TemplateConfig]):
    name = "template"
    Config = TemplateConfig
    produces = EntryType.DATA
    description = "Text (Markdown, HTML, CSV) rendered by a Jinja2 template from SQL queries."

    def sources(self, config: TemplateConfig) -> Sequence[str]:
        return list(config.sources.values())

    def produce(self, config: TemplateConfig, context: FactoryContext) -> bytes:
        def query(sql: str) -> list[dict[str, Any]]:
            try:
                result = context.query(sql, dict(config.sources))
            except QueryError as exc:
                names = ", ".join(sorted(config.sources)) or "none (add sources to the config)"
                raise FactoryError(
                    f"query() failed: {exc.message}",
                    subject=context.path,
                    hint=f"the tables are the names in sources: {names}",
                ) from exc
            rows: list[dict[str, Any]] = result.to_pylist()
            return rows

        env = build_sandbox()
        try:
            template = env.from_string(config.template)
            text = template.render(query=query, path=context.path, sources=dict(config.sources))
        except jinja2.UndefinedError as exc:
            raise FactoryError(
                f"the template uses an undefined value: {exc.message}",
                subject=context.path,
                hint="check the spelling; the template sees query(), path, sources",
            ) from exc
        except jinja2.TemplateError as exc:
            raise FactoryError(
                f"the template failed: {exc.message or type(exc).__name__}",
                subject=context.path,
            ) from exc
        return text.encode("utf-8")


def build_sandbox() -> SandboxedEnvironment:
    """The sandbox every template renders in, with pond's filters."""
    env = SandboxedEnvironment(
        autoescape=False,
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        markdown_table=markdown_table,
        html_table=html_table,
        csv=csv_text,
        number=number,
        datetime=format_datetime,
    )
    return env


def markdown_table(rows: Rows, columns: Sequence[str] | None = None) -> str:
    """Rows as a Markdown (GitHub) table; ``columns`` picks and orders them."""
    names = list(columns) if columns else _columns(rows)
    if not names:
        return ""

    def cell(value: Any) -> str:
        return "" if value is None else str(value).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(names) + " |", "|" + "|".join("---" for _ in names) + "|"]
    lines += ["| " + " | ".join(cell(row.get(n)) for n in names) + " |" for row in rows]
    return "\n".join(lines)


def html_table(rows: Rows, columns: Sequence[str] | None = None) -> str:
    """Rows as an HTML ``<table>`` (cells escaped)."""
    names = list(columns) if columns else _columns(rows)

    def cell(value: Any) -> str:
        return "" if value is None else html.escape(str(value))

    head = "".join(f"<th>{cell(n)}</th>" for n in names)
    body = "".join(
        "<tr>" + "".join(f"<td>{cell(row.get(n))}</td>" for n in names) + "</tr>" for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def csv_text(rows: Rows, columns: Sequence[str] | None = None) -> str:
    """Rows as CSV text with a header line."""
    names = list(columns) if columns else _columns(rows)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=names, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def number(value: Any, decimals: int = 2) -> str:
    """``1234.5`` → ``1,234.50``; ``None`` → empty."""
    if value is None:
        return ""
    return f"{float(value):,.{decimals}f}"


def format_datetime(value: Any, fmt: str = "%Y-%m-%d %H:%M:%S") -> str:
    """A date/datetime (or ISO text) with ``strftime``'s format."""
    if value is None:
        return ""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if not isinstance(value, date):
        raise TypeError(f"not a date or datetime: {value!r}")
    return value.strftime(fmt)


def _columns(rows: Rows) -> list[str]:
    names: dict[str, None] = {}
    for row in rows:
        names.update(dict.fromkeys(row))
    return list(names)
