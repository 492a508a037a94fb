"""A node's ``schema:`` block as a pandera schema on the pyarrow backend, and its outcome
as two asset checks: ``schema`` (types, nullability, value checks) and
``temporal_column`` (present, timestamp-typed, not null)."""

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from pond_pipeline.errors import CheckFailedError
from pond_pipeline.project.pond_yaml import ColumnChecks, ColumnSpec, SchemaSpec

if TYPE_CHECKING:
    import pandera.pyarrow as pap

SAMPLE_FAILURES = 5

_TYPES: dict[str, pa.DataType] = {
    "string": pa.string(),
    "double": pa.float64(),
    "float": pa.float32(),
    "int64": pa.int64(),
    "int32": pa.int32(),
    "int16": pa.int16(),
    "int8": pa.int8(),
    "bool": pa.bool_(),
    "timestamp": pa.timestamp("us"),
    "date": pa.date32(),
}


@dataclass
class CheckOutcome:
    """One check (``schema`` or ``temporal_column``) over every table a run validated."""

    name: str
    passed: bool = True
    failures: list[dict[str, Any]] = field(default_factory=list)
    tables: int = 0

    @property
    def description(self) -> str:
        if self.passed:
            return f"passed on {self.tables} table(s)"
        seen: dict[tuple[str, str], list[Any]] = {}
        for failure in self.failures:
            values = seen.setdefault((str(failure.get("column")), str(failure.get("check"))), [])
            values.extend(v for v in failure.get("values") or [] if len(values) < SAMPLE_FAILURES)
        return "failed: " + "; ".join(
            f"column {column}: {check}" + (f" (e.g. {values})" if values else "")
            for (column, check), values in sorted(seen.items())
        )


@dataclass
class SchemaValidator:
    """Validates each table a materialization is about to write; raises to stop it."""

    spec: SchemaSpec
    outcomes: dict[str, CheckOutcome] = field(
        default_factory=lambda: {
            "schema": CheckOutcome("schema"),
            "temporal_column": CheckOutcome("temporal_column"),
        }
    )

    def __call__(self, path: str, table: pa.Table) -> None:
        schema_failures = _schema_failures(self.spec, table)
        temporal_failures = _temporal_failures(self.spec, table)
        for name, failures in (("schema", schema_failures), ("temporal_column", temporal_failures)):
            outcome = self.outcomes[name]
            outcome.tables += 1
            if failures:
                outcome.passed = False
                outcome.failures.extend({"path": path, **f} for f in failures)
        failures = schema_failures + temporal_failures
        if failures:
            raise CheckFailedError(
                "schema checks failed, nothing was written: "
                + "; ".join(
                    f"{f['column']}: {f['check']}"
                    + (f" (e.g. {f['values']})" if f.get("values") else "")
                    for f in failures
                ),
                subject=path,
                hint="fix the data or the node's query, or relax the schema in pond.yaml",
            )


def _schema_failures(spec: SchemaSpec, table: pa.Table) -> list[dict[str, Any]]:
    # pandera is imported when a run validates, not when the code location loads
    import pandera.pyarrow as pap
    from pandera.errors import SchemaError, SchemaErrors

    columns = {}
    failures: list[dict[str, Any]] = []
    for name, column in spec.columns.items():
        if name not in table.column_names:
            failures.append({"column": name, "check": "column_in_dataframe", "values": []})
            continue
        columns[name] = pap.Column(
            _dtype(column, table.schema.field(name).type),
            nullable=column.nullable,
            unique=column.checks.unique,
            checks=_checks(column.checks),
        )
    if not columns:
        return failures
    try:
        pap.DataFrameSchema(columns, strict=False).validate(table, lazy=True)
    except SchemaErrors as exc:
        failures.extend(_cases(exc.failure_cases))
    except SchemaError as exc:
        failures.append(
            {"column": getattr(exc, "column_name", "?"), "check": str(exc), "values": []}
        )
    return failures


def _temporal_failures(spec: SchemaSpec, table: pa.Table) -> list[dict[str, Any]]:
    name = spec.temporal_column
    if name is None:
        return []
    if name not in table.column_names:
        return [{"column": name, "check": "temporal column present", "values": []}]
    column_type = table.schema.field(name).type
    if not (pa.types.is_timestamp(column_type) or pa.types.is_date(column_type)):
        return [{"column": name, "check": f"timestamp-typed (is {column_type})", "values": []}]
    nulls = table.column(name).null_count
    if nulls:
        return [{"column": name, "check": f"not null ({nulls} null)", "values": []}]
    return []


def _dtype(column: ColumnSpec, actual: pa.DataType) -> pa.DataType:
    """The declared type; a timestamp/string of another unit, zone or width is accepted."""
    if column.type == "timestamp" and pa.types.is_timestamp(actual):
        return actual
    if column.type == "string" and (pa.types.is_string(actual) or pa.types.is_large_string(actual)):
        return actual
    return _TYPES[column.type]


def _checks(checks: ColumnChecks) -> "list[pap.Check]":
    import pandera.pyarrow as pap

    found = []
    for name in ("ge", "le", "gt", "lt"):
        bound = getattr(checks, name)
        if bound is not None:
            found.append(getattr(pap.Check, name)(bound))
    if checks.isin is not None:
        found.append(pap.Check.isin(checks.isin))
    if checks.str_matches is not None:
        found.append(pap.Check.str_matches(checks.str_matches))
    return found


def _cases(cases: pa.Table) -> list[dict[str, Any]]:
    grouped: dict[tuple[str, str], list[Any]] = {}
    for row in cases.to_pylist():
        key = (str(row.get("column")), str(row.get("check")))
        grouped.setdefault(key, []).append(row.get("failure_case"))
    return [
        {"column": column, "check": check, "values": values[:SAMPLE_FAILURES]}
        for (column, check), values in grouped.items()
    ]
