"""``temporal_bucket``: one source series reduced to fixed time buckets (one resolution).

    factory: temporal_bucket
    config:
      source: /sites/north/data.series
      resolution: 1h
      time_column: timestamp             # default
      aggregations:
        - {type: avg, columns: ["temp*"]}
        - {type: count, columns: ["*"]}   # the rows in each bucket: one column ``count``

Each output row is one bucket: its start (UTC, the time floored to a multiple of
``resolution`` since the epoch) in the time column, then one column
``<column>.<type>`` per aggregated column (``count`` over ``["*"]`` gives ``count``).
``columns`` entries are names or globs; a glob picks the numeric columns for
``avg``/``sum``/``min``/``max`` and any column for ``count``/``first``/``last``, never the
time column. ``first``/``last`` are the earliest/latest non-null values of the bucket.
Rows whose time is null are left out. ``temporal_reduce`` lists these nodes.

Buckets are computed by one ordered pass of Arrow's hash aggregation over the source's
rows in their stored order, so the same rows always give bit-identical figures. That is
what lets ``produce_incremental`` (run by a materialization after the source gained
versions) read only the new versions' buckets, recompute those, and keep every other
bucket of the previous output, with exactly the result of a full recompute; a version
whose rows arrive late (inside an earlier bucket) just widens what is recomputed.
Both paths report ``rows_read`` (rows read from the source). The config model,
``TemporalBucketConfig``, and its ``Aggregation`` live in ``factories.tabular``, where
``temporal_reduce`` builds them for its children too.
"""

import fnmatch
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pyarrow as pa
import pyarrow.acero as ac
import pyarrow.compute as pc
import pyarrow.dataset as ds

from factories.tabular import Aggregation, TemporalBucketConfig
from pond_pipeline.errors import FactoryError
from pond_pipeline.factory import EntryType, Factory, FactoryContext, Previous, SourceVersion

__all__ = ["TemporalBucketFactory", "bucket_span"]

ROW_COUNT = "count"
"""The output column of ``count`` over ``["*"]``."""
_FUNCTIONS = {
    "avg": "hash_mean",
    "min": "hash_min",
    "max": "hash_max",
    "sum": "hash_sum",
    "count": "hash_count",
    "first": "hash_first",
    "last": "hash_last",
}
_NUMERIC_ONLY = ("avg", "sum")
_GLOB_NUMERIC = ("avg", "sum", "min", "max")
_BUCKET = "__pond_bucket"
_MICROS = 1_000_000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class _Measure:
    """One output column: ``function`` of ``column`` (None: count the rows)."""

    name: str
    column: str | None
    function: str


@dataclass(frozen=True)
class _Plan:
    time_column: str
    time_type: pa.DataType
    width: timedelta
    measures: tuple[_Measure, ...]

    @property
    def is_ordered(self) -> bool:
        """Whether the rows must reach the aggregation sorted by time (first/last)."""
        return any(m.function in ("hash_first", "hash_last") for m in self.measures)

    @property
    def inputs(self) -> list[str]:
        names = [self.time_column]
        for measure in self.measures:
            if measure.column is not None and measure.column not in names:
                names.append(measure.column)
        return names


class TemporalBucketFactory(Factory[TemporalBucketConfig]):
    """A series reduced to time buckets of one resolution (incremental)."""

    name = "temporal_bucket"
    produces = EntryType.SERIES

    def sources(self, config: TemporalBucketConfig) -> Sequence[str]:
        return [config.source]

    def produce(self, config: TemporalBucketConfig, context: FactoryContext) -> pa.Table:
        plan = _plan(config, context)
        table, rows = _reduce(context.dataset(config.source), plan, stream=True)
        context.record_metric("rows_read", rows)
        return table

    def produce_incremental(
        self, config: TemporalBucketConfig, context: FactoryContext, previous: Previous
    ) -> pa.Table | None:
        """The previous buckets, with those the source's new versions touch recomputed;
        ``None`` (a full recompute) unless the source only gained versions."""
        known = previous.source_versions.get(config.source)
        versions = context.versions(config.source)
        if known is None or known not in {v.version for v in versions}:
            return None  # not a static series we read before, or a version went away
        if context.time_column(config.source) != config.time_column:
            return None  # versions know the range of another column: no window to read
        added = [v for v in versions if v.version > known]
        if not added:
            return None  # something else changed: start over
        plan = _plan(config, context)
        spans = _new_spans(added, config.resolution, slack=int(plan.time_type.unit == "ns"))
        if spans is None:
            return None
        parts, rows = [], 0
        for start, end in spans:
            window = context.dataset(config.source, _as_datetime(start), _as_datetime(end))
            part, read = _reduce(window, plan, stream=False)
            parts.append(part)
            rows += read
        schema = parts[0].schema if parts else None
        if schema is None or not _same_columns(previous.dataset.schema, schema):
            return None  # the output's columns changed (e.g. a new column a glob matches)
        kept = previous.dataset.to_table(filter=_outside(spans, plan)).cast(schema)
        context.record_metric("rows_read", rows)
        return pa.concat_tables([kept, *parts]).sort_by(plan.time_column)


def bucket_span(low: int, high: int, width: timedelta) -> tuple[int, int]:
    """The whole buckets ``[start, end)`` (µs since the epoch) covering ``low..high``."""
    step = round(width.total_seconds() * _MICROS)
    return low // step * step, (high // step + 1) * step


def _new_spans(
    added: list[SourceVersion], width: timedelta, slack: int = 0
) -> list[tuple[int, int]] | None:
    """The merged bucket ranges the added versions touch (None: a range is unknown);
    ``slack`` µs widen each range first (nanosecond times are kept in µs, rounded)."""
    spans = []
    for version in added:
        if version.rows == 0:
            continue
        low, high = version.min_event_time, version.max_event_time
        if low is None or high is None:
            return None
        spans.append(bucket_span(low - slack, high + slack, width))
    merged: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


def _plan(config: TemporalBucketConfig, context: FactoryContext) -> _Plan:
    """The output columns, checked against the source's schema (errors name the column)."""
    schema = context.schema(config.source)
    time_column = config.time_column
    known = ", ".join(schema.names)
    if time_column not in schema.names:
        raise FactoryError(
            f"the time column {time_column!r} is not a column of {config.source}",
            hint=f"set time_column to one of {known}",
        )
    time_type = schema.field(time_column).type
    if not pa.types.is_timestamp(time_type):
        raise FactoryError(
            f"the time column {time_column!r} of {config.source} is {time_type}, not a timestamp",
            hint="choose a timestamp column as time_column",
        )
    measures: dict[str, _Measure] = {}
    for aggregation in config.aggregations:
        for column in _columns(aggregation, schema, time_column, config.source):
            if column is None:
                measure = _Measure(ROW_COUNT, None, "hash_count_all")
            else:
                measure = _Measure(
                    f"{column}.{aggregation.type}", column, _FUNCTIONS[aggregation.type]
                )
            if measure.name in measures or measure.name == time_column:
                raise FactoryError(
                    f"the output column {measure.name!r} is produced twice",
                    hint="list each column once per aggregation type",
                )
            measures[measure.name] = measure
    return _Plan(time_column, time_type, config.resolution, tuple(measures.values()))


def _columns(
    aggregation: Aggregation, schema: pa.Schema, time_column: str, source: str
) -> Iterator[str | None]:
    """The source columns one aggregation reads, in schema order per entry (None: rows)."""
    kind = aggregation.type
    known = ", ".join(schema.names)
    seen: set[str | None] = set()
    for entry in aggregation.columns:
        if kind == "count" and entry == "*":
            matched: list[str | None] = [None]
        elif _is_glob(entry):
            wanted = _GLOB_NUMERIC if kind in _GLOB_NUMERIC else ()
            matched = [
                field.name
                for field in schema
                if field.name != time_column
                and fnmatch.fnmatchcase(field.name, entry)
                and (kind not in wanted or _is_numeric(field.type))
            ]
            if not matched:
                which = "numeric column" if kind in wanted else "column"
                raise FactoryError(
                    f"{kind}: the columns glob {entry!r} matches no {which} of {source}",
                    hint=f"its columns are {known}",
                )
        else:
            if entry not in schema.names:
                raise FactoryError(
                    f"{kind}: unknown column {entry!r}; {source} has no such column",
                    hint=f"its columns are {known}",
                )
            column_type = schema.field(entry).type
            if kind in _NUMERIC_ONLY and not _is_numeric(column_type):
                raise FactoryError(
                    f"{kind}: column {entry!r} of {source} is {column_type}, not a number",
                    hint="use min, max, count, first or last for it",
                )
            matched = [entry]
        for column in matched:
            if column not in seen:
                seen.add(column)
                yield column


def _reduce(dataset: ds.Dataset, plan: _Plan, *, stream: bool) -> tuple[pa.Table, int]:
    """The buckets of ``dataset``'s rows, and how many rows were read.

    One ordered pass (``use_threads=False``): each bucket's figures accumulate in the
    rows' stored order (sorted by time first, stably, when first/last are asked), so a
    bucket always gets the same bits from the same rows, whatever else is read.
    ``stream``: read in parallel batches with bounded memory (a whole series); otherwise
    read into one table on this thread first (a few versions: no thread hand-offs).
    """
    counted = _Counter()
    if stream:
        reader = counted.wrap(dataset.scanner(columns=plan.inputs, use_threads=True).to_reader())
        source = ac.Declaration(
            "record_batch_reader_source", ac.RecordBatchReaderSourceNodeOptions(reader)
        )
    else:
        table = dataset.to_table(columns=plan.inputs, use_threads=False)
        counted.rows = table.num_rows
        source = ac.Declaration("table_source", ac.TableSourceNodeOptions(table))
    time = pc.field(plan.time_column)
    naive = pa.timestamp(plan.time_type.unit)  # floor in UTC, whatever the zone
    bucket = pc.floor_temporal(
        time.cast(naive), multiple=round(plan.width.total_seconds()), unit="second"
    ).cast(plan.time_type)
    values = [name for name in plan.inputs if name != plan.time_column]
    steps = [source, ac.Declaration("filter", ac.FilterNodeOptions(time.is_valid()))]
    if plan.is_ordered:
        steps.append(
            ac.Declaration("order_by", ac.OrderByNodeOptions([(plan.time_column, "ascending")]))
        )
    steps += [
        ac.Declaration(
            "project",
            ac.ProjectNodeOptions([bucket, *(pc.field(v) for v in values)], [_BUCKET, *values]),
        ),
        ac.Declaration(
            "aggregate",
            ac.AggregateNodeOptions([_aggregate(m) for m in plan.measures], keys=[_BUCKET]),
        ),
    ]
    result = ac.Declaration.from_sequence(steps).to_table(use_threads=False)
    names = [_BUCKET, *(m.name for m in plan.measures)]
    result = result.select(names).rename_columns([plan.time_column, *names[1:]])
    return result.sort_by(plan.time_column), counted.rows


def _aggregate(measure: _Measure) -> tuple[str | list[str], str, pc.FunctionOptions | None, str]:
    if measure.column is None:
        return [], measure.function, None, measure.name
    options = pc.CountOptions("only_valid") if measure.function == "hash_count" else None
    return measure.column, measure.function, options, measure.name


class _Counter:
    """Counts the rows read (``wrap``: those passing through a record batch reader)."""

    def __init__(self) -> None:
        self.rows = 0

    def wrap(self, source: pa.RecordBatchReader) -> pa.RecordBatchReader:
        return pa.RecordBatchReader.from_batches(source.schema, self._batches(source))

    def _batches(self, source: pa.RecordBatchReader) -> Iterator[pa.RecordBatch]:
        for batch in source:
            self.rows += batch.num_rows
            yield batch


def _outside(spans: list[tuple[int, int]], plan: _Plan) -> pc.Expression:
    """Rows of the previous output whose bucket is not recomputed."""
    time = pc.field(plan.time_column)
    keep = pc.scalar(True)
    for start, end in spans:
        keep = keep & (
            (time < _time_scalar(start, plan.time_type))
            | (time >= _time_scalar(end, plan.time_type))
        )
    return keep


def _time_scalar(micros: int, time_type: pa.DataType) -> pa.Scalar:
    return pa.scalar(micros, pa.timestamp("us", tz=time_type.tz)).cast(time_type)


def _same_columns(a: pa.Schema, b: pa.Schema) -> bool:
    return [(f.name, f.type) for f in a] == [(f.name, f.type) for f in b]


def _as_datetime(micros: int) -> datetime:
    return _EPOCH + timedelta(microseconds=micros)


def _is_glob(entry: str) -> bool:
    return any(char in entry for char in "*?[")


def _is_numeric(data_type: pa.DataType) -> bool:
    return bool(
        pa.types.is_integer(data_type)
        or pa.types.is_floating(data_type)
        or pa.types.is_decimal(data_type)
    )
