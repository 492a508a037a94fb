"""``--format json`` is JSON: NaN and ±Infinity become null (issue 12); CSV keeps them."""

import json
import math
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
from click.testing import Result

from pond_pipeline.api import Pond

NAN_CSV = "a,b\n1.5,nan\ninf,-inf\n"


def test_nan_and_infinity_are_null_in_json(
    pond: Pond, run: Callable[..., Result], host_file: Callable[[str, str], Path]
) -> None:
    assert run("copy", str(host_file("n.csv", NAN_CSV)), "/n.csv").exit_code == 0
    result = run("cat", "/n.csv", "--format", "json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout) == [{"a": 1.5, "b": None}, {"a": None, "b": None}]
    assert "NaN" not in result.stdout
    assert "Infinity" not in result.stdout


def test_nested_values_and_sql_results_too(pond: Pond, run: Callable[..., Result]) -> None:
    query = (
        "SELECT 'nan'::DOUBLE AS x, ['inf'::DOUBLE, 2.0] AS l, "
        "{'s': '-inf'::DOUBLE, 't': 1.0::DOUBLE} AS st, 'NaN' AS text"
    )
    result = run("sql", query, "--format", "json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout) == [
        {"x": None, "l": [None, 2.0], "st": {"s": None, "t": 1.0}, "text": "NaN"}
    ]


def test_csv_keeps_nan_and_infinity(
    pond: Pond, run: Callable[..., Result], host_file: Callable[[str, str], Path]
) -> None:
    assert run("copy", str(host_file("n.csv", NAN_CSV)), "/n.csv").exit_code == 0
    result = run("cat", "/n.csv", "--format", "csv")
    assert result.stdout.splitlines() == ['"a","b"', "1.5,nan", "inf,-inf"]


def test_json_documents_too(pond: Pond, run: Callable[..., Result]) -> None:
    """``describe``/``list``/``log`` documents go through the same mapping."""
    with pond.transaction("t") as tx:
        tx.write_table("/t.table", pa.table({"v": [math.nan, 1.0]}), "table")
    result = run("describe", "/t.table", "--format", "json")
    assert json.loads(result.stdout)["path"] == "/t.table"
    rows = json.loads(run("cat", "/t.table", "--format", "json").stdout)
    assert rows == [{"v": None}, {"v": 1.0}]
