"""Rendering results: aligned tables for people, CSV/JSON/Parquet exactly for programs.

pyarrow and rich are imported by the functions that use them, so that commands which
print no rows (and ``pond --help``) start without them."""

import io
import json
import math
import sys
from collections.abc import Sequence
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pyarrow as pa
    from rich.console import Console

FORMATS = ("table", "csv", "json", "parquet")


def console() -> "Console":
    """Rich output; piped output is not cut at 80 columns."""
    from rich.console import Console

    return Console(soft_wrap=True, width=None if sys.stdout.isatty() else 240)


def write_rows(table: "pa.Table | pa.RecordBatchReader", fmt: str) -> None:
    """Rows in ``fmt``: table (aligned text), csv, json (one array of objects), parquet."""
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    out = sys.stdout.buffer
    if fmt == "csv":
        reader = table.to_reader() if isinstance(table, pa.Table) else table
        with pacsv.CSVWriter(out, reader.schema) as writer:
            for batch in reader:
                writer.write_batch(batch)
    elif fmt == "parquet":
        whole = table if isinstance(table, pa.Table) else table.read_all()
        buffer = io.BytesIO()
        pq.write_table(whole, buffer)
        out.write(buffer.getvalue())
    elif fmt == "json":
        reader = table.to_reader() if isinstance(table, pa.Table) else table
        out.write(b"[")
        first = True
        for batch in reader:
            for row in pylist(batch):
                text = json.dumps(finite(row), default=jsonable, allow_nan=False)
                out.write((b"" if first else b",\n") + text.encode())
                first = False
        out.write(b"]\n")
    else:
        whole = table if isinstance(table, pa.Table) else table.read_all()
        print_arrow(whole)
    out.flush()


def pylist(data: "pa.Table | pa.RecordBatch") -> list[dict[str, Any]]:
    """Rows as Python values; a time Python cannot hold (after year 9999) stays Arrow's text."""
    import pyarrow as pa

    try:
        rows: list[dict[str, Any]] = data.to_pylist()
    except (OverflowError, ValueError):
        columns = [c.cast(pa.string()) if pa.types.is_temporal(c.type) else c for c in data.columns]
        rows = type(data).from_arrays(columns, names=data.column_names).to_pylist()
    return rows


def print_arrow(table: "pa.Table") -> None:
    import pyarrow as pa
    from rich.table import Table
    from rich.text import Text

    view = Table(show_edge=False, header_style="bold", pad_edge=False)
    for field in table.schema:
        numeric = pa.types.is_integer(field.type) or pa.types.is_floating(field.type)
        view.add_column(Text(field.name), justify="right" if numeric else "left")
    for row in pylist(table):
        view.add_row(*(Text(render(value)) for value in row.values()))  # data, not markup
    console().print(view)
    console().print(f"[dim]{table.num_rows} row{'s' if table.num_rows != 1 else ''}[/dim]")


def print_records(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> None:
    from rich.table import Table
    from rich.text import Text

    view = Table(show_edge=False, header_style="bold", pad_edge=False)
    for column in columns:
        view.add_column(column)
    for row in rows:
        view.add_row(*(Text(render(row.get(column))) for column in columns))
    console().print(view)


def print_json(document: Any) -> None:
    text = json.dumps(finite(document), indent=2, default=jsonable, allow_nan=False)
    sys.stdout.write(text + "\n")


def finite(value: Any) -> Any:
    """``value`` with NaN and ±Infinity as ``None``: JSON has no such numbers (Python's
    ``NaN``/``Infinity`` tokens are refused by JSON parsers), so they are written null."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: finite(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [finite(item) for item in value]
    return value


def render(value: Any) -> str:
    if value is None:
        return "∅"
    if isinstance(value, datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def jsonable(value: Any) -> Any:
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def human_size(size: int | None) -> str:
    if size is None:
        return "-"
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"


def block_yaml(document: Any) -> str:
    """``document`` as YAML people read: a text of several lines (a query) as a ``|``
    block, as it is written in pond.yaml, not one escaped line."""
    import yaml

    class BlockDumper(yaml.SafeDumper):
        pass

    def text(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
        style = "|" if "\n" in value.strip("\n") else None
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)

    BlockDumper.add_representer(str, text)
    dumped: str = yaml.dump(document, Dumper=BlockDumper, sort_keys=False, allow_unicode=True)
    return dumped.rstrip()
