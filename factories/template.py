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
import ctypes
import html
import io
import re
import string
import threading
from collections.abc import Callable, Sequence
from datetime import date, datetime
from typing import Any

import jinja2
from jinja2 import nodes
from jinja2.exceptions import SecurityError
from jinja2.runtime import Context
from jinja2.sandbox import SandboxedEnvironment
from pydantic import Field, field_validator

from pond_pipeline.errors import FactoryError, QueryError
from pond_pipeline.factory import (
    EntryType,
    Factory,
    FactoryConfig,
    FactoryContext,
    SqlRelation,
)

__all__ = ["TemplateConfig", "TemplateFactory", "build_sandbox"]

Rows = Sequence[dict[str, Any]]
MAX_BUILT = 10_000_000
"""Characters or items one template expression may build (``'-' * 80`` is fine)."""
MAX_OUTPUT_BYTES = 256 * 1024 * 1024
"""The most a template may render."""
RENDER_SECONDS = 600.0
"""Wall-clock budget of one rendering, its queries included (each query also has the
pond's query timeout)."""


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
    """Text (Markdown, HTML, CSV) rendered by a Jinja2 template from SQL queries."""

    name = "template"
    produces = EntryType.DATA

    def sources(self, config: TemplateConfig) -> Sequence[str]:
        return list(config.sources.values())

    def relations(self, config: TemplateConfig) -> list[SqlRelation]:
        """Each ``query("...")`` whose SQL is written out in the template, over ``sources``
        (a query built from variables is checked when the template renders)."""
        parsed = build_sandbox().parse(config.template)
        return [
            SqlRelation(call.args[0].value, dict(config.sources), field="template")
            for call in parsed.find_all(nodes.Call)
            if isinstance(call.node, nodes.Name)
            and call.node.name == "query"
            and call.args
            and isinstance(call.args[0], nodes.Const)
            and isinstance(call.args[0].value, str)
        ]

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

        def render() -> str:
            template = env.from_string(config.template)
            chunks = template.generate(query=query, path=context.path, sources=dict(config.sources))
            return _bounded_join(chunks, context.path)

        try:
            text = _within(RENDER_SECONDS, render)
        except _RenderTimeout as exc:
            raise FactoryError(
                f"the template ran longer than {RENDER_SECONDS:g}s and was stopped",
                subject=context.path,
                hint="loop over fewer items; aggregate in query() instead",
            ) from exc
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


class TemplateSandbox(SandboxedEnvironment):
    """Jinja2's sandbox (no attribute starting with ``_``, no internals of functions,
    types or frames; no loader, so no include/import/extends), which also bounds what
    one expression may allocate: ``'x' * 10**10``, ``10 ** 10 ** 10``, and padding or
    format widths (``'x'|center(10**10)``, ``'%9999999999s' % x``) are errors."""

    intercepted_binops = frozenset({"*", "**", "%"})

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        if operator == "*":
            _check_repeat(left, right)
            _check_repeat(right, left)
        elif operator == "**" and isinstance(left, int) and isinstance(right, int):
            if right > 0 and abs(left) > 1 and right * max(abs(left).bit_length(), 1) > 100_000:
                raise SecurityError(f"{left} ** {right} is too large a number")
        elif operator == "%" and isinstance(left, str):
            _check_format(left, right if isinstance(right, tuple) else (right,))
        return super().call_binop(context, operator, left, right)

    def call(
        __self,  # noqa: N805 - Jinja's own spelling, so keyword arguments pass through
        __context: Context,
        __obj: Any,
        *args: Any,
        **kwargs: Any,
    ) -> Any:
        target = getattr(__obj, "__wrapped__", __obj)  # the sandbox wraps str.format
        if isinstance(getattr(target, "__self__", None), str):
            name = getattr(target, "__name__", "")
            if name in ("format", "format_map"):
                _check_format(target.__self__, (*args, *kwargs.values()))
            elif name in ("center", "ljust", "rjust", "zfill", "expandtabs"):
                _check_sizes(name, args)
        return super().call(__context, __obj, *args, **kwargs)


class _RenderTimeout(BaseException):
    """Raised in a rendering that ran out of time (a ``BaseException``, so no
    ``except Exception`` on the way swallows it)."""


def _within(seconds: float, render: Callable[[], str]) -> str:
    """``render()`` in a worker thread, given up after ``seconds``.

    A loop that calls nothing (``{% for i in range(99999) %}{% for j in range(99999)
    %}…``) cannot be interrupted from inside the sandbox, so a late worker is stopped
    with CPython's ``PyThreadState_SetAsyncExc`` (delivered between two bytecodes; sent
    again until it lands, as a finalizer may swallow one). The worker runs nothing else,
    so the exception cannot surface anywhere but in the rendering.
    """
    outcome: list[str] = []
    failure: list[BaseException] = []

    def work() -> None:
        try:
            outcome.append(render())
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
            failure.append(exc)

    worker = threading.Thread(target=work, name="pond-template", daemon=True)
    worker.start()
    worker.join(seconds)
    for _ in range(50):
        if not worker.is_alive():
            break
        ctypes.pythonapi.PyThreadState_SetAsyncExc(
            ctypes.c_ulong(worker.ident or 0), ctypes.py_object(_RenderTimeout)
        )
        worker.join(0.1)
    else:  # still busy, e.g. in a query (bounded by the query timeout): left as a daemon
        raise _RenderTimeout()
    if failure:
        raise failure[0]
    if not outcome:
        raise _RenderTimeout()
    return outcome[0]


def _check_repeat(sequence: Any, times: Any) -> None:
    if (
        isinstance(sequence, str | bytes | list | tuple)
        and isinstance(times, int)
        and len(sequence) * times > MAX_BUILT
    ):
        raise SecurityError(
            f"repeating {len(sequence)} items {times} times is more than {MAX_BUILT:,}"
        )


def _check_sizes(name: str, args: Sequence[Any]) -> None:
    for value in args:
        if isinstance(value, int) and abs(value) > MAX_BUILT:
            raise SecurityError(f"{name}({value}) would build more than {MAX_BUILT:,} items")


_PRINTF_WIDTH = re.compile(r"%[#0\- +]*(\*|\d*)(?:\.(\*|\d*))?")


def _check_format(text: str, args: Sequence[Any]) -> None:
    """Widths in a format string (``%9999999999s``, ``{:>9999999999}``), and arguments
    that a ``*`` or nested ``{}`` width takes, stay under ``MAX_BUILT``."""
    widths = [w for m in _PRINTF_WIDTH.finditer(text) for w in m.groups() if w]
    try:
        specs = [spec for _, _, spec, _ in string.Formatter().parse(text) if spec]
    except ValueError:  # not a str.format string
        specs = []
    widths += [w for spec in specs for w in re.findall(r"\d+|\{", spec)]
    for width in widths:
        if width in ("*", "{"):
            _check_sizes("a format width", list(args))
        elif int(width) > MAX_BUILT:
            raise SecurityError(f"a format width of {width} is more than {MAX_BUILT:,}")


def _bounded(name: str, function: Callable[..., Any]) -> Callable[..., Any]:
    """A built-in filter whose size arguments (after the value) are bounded."""

    def checked(value: Any, *args: Any, **kwargs: Any) -> Any:
        if name == "format" and isinstance(value, str):
            _check_format(value, (*args, *kwargs.values()))
        else:
            _check_sizes(name, (*args, *kwargs.values()))
        return function(value, *args, **kwargs)

    return checked


def _bounded_join(chunks: Any, path: str) -> str:
    parts: list[str] = []
    size = 0
    for chunk in chunks:
        size += len(chunk)
        if size > MAX_OUTPUT_BYTES:
            raise FactoryError(
                f"the template renders more than {MAX_OUTPUT_BYTES // 2**20} MiB",
                subject=path,
                hint="render less: aggregate in query() instead of looping over rows",
            )
        parts.append(chunk)
    return "".join(parts)


def _no_other_templates(name: str) -> str:
    raise jinja2.TemplateNotFound(
        name, f"{name!r}: a template cannot include, import or extend other templates"
    )


def build_sandbox() -> SandboxedEnvironment:
    """The sandbox every template renders in, with pond's filters."""
    env = TemplateSandbox(
        loader=jinja2.FunctionLoader(_no_other_templates),
        autoescape=False,
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    for name in ("center", "indent", "batch", "slice", "format"):
        env.filters[name] = _bounded(name, env.filters[name])
    del env.globals["lipsum"]  # lorem ipsum of any length: nothing a report needs
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
