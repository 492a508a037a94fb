"""Hostile input through the CLI: random and malformed CSV, random bytes as Parquet,
random YAML for pond.yaml and factory configs, random path strings.

Every input is either accepted with exactly its content (read back and compared), or
refused with one clear ``Error:`` line and a non-zero exit, the pond unchanged (its log,
its listing, its blobs and scratch files). No traceback ever reaches the user: the
runner's exception is a ``SystemExit`` or nothing.
"""

import csv
import io
import json
import os
import tempfile
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from click.testing import CliRunner, Result
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pond_pipeline import paths
from pond_pipeline.api import Pond
from pond_pipeline.cli.main import cli
from pond_pipeline.errors import PondError
from pond_pipeline.project import pipeline

EXAMPLES = settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
FEWER = settings(EXAMPLES, max_examples=20)


# -- the CLI, outcomes and state ---------------------------------------------------------
def pond_cli(root: Path, *args: str) -> Result:
    """``pond --pond ROOT ARGS`` in process; the runner catches what escapes, so a test
    can tell a clean exit from a traceback."""
    return CliRunner().invoke(cli, ["--pond", str(root), *args])


def refusal(result: Result) -> str | None:
    """``None`` if the command succeeded, else its one ``Error:`` line (checked clean)."""
    escaped = result.exception
    if escaped is not None and not isinstance(escaped, SystemExit):
        shown = "".join(traceback.format_exception(escaped))
        pytest.fail(f"a traceback reached the user:\n{shown}")
    assert "Traceback" not in result.output, result.output
    if result.exit_code == 0:
        return None
    assert result.exit_code in (1, 2), (result.exit_code, result.output)
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error: ")]
    assert len(errors) == 1, result.stderr
    message = errors[0].removeprefix("Error: ")
    assert message.strip(), result.stderr
    assert not any(ord(char) < 32 for char in message), repr(message)  # one line
    return message


def accepted(result: Result) -> bool:
    return refusal(result) is None


def state(root: Path) -> tuple[Any, ...]:
    """What a refused command must leave as it was: log, listing, blobs, scratch files."""
    log = pond_cli(root, "log", "--format", "json")
    listing = pond_cli(root, "list", "--format", "json")
    assert log.exit_code == 0, log.stderr
    assert listing.exit_code == 0, listing.stderr
    opened = Pond.open(str(root))
    scratch = sorted(p.name for p in opened.location.scratch.glob("*"))
    return log.stdout, listing.stdout, tuple(opened.blobs.all_shas()), tuple(scratch)


@contextmanager
def fresh_pond() -> Iterator[Path]:
    """An empty pond of its own (hypothesis examples do not share a ``tmp_path``)."""
    with tempfile.TemporaryDirectory(prefix="hostile-") as folder:
        root = Path(folder) / "pond"
        Pond.create(str(root))
        yield root


def host_file(root: Path, name: str, content: bytes) -> Path:
    path = root.parent / "host" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return path


def copy_checked(root: Path, source: Path, dest: str, *extra: str) -> str | None:
    """``pond copy``; a refusal must leave the pond as it was. The refusal, or None."""
    before = state(root)
    message = refusal(pond_cli(root, "copy", str(source), dest, *extra))
    if message is not None:
        assert state(root) == before, message
    return message


def rows_of(root: Path, path: str) -> list[dict[str, Any]]:
    result = pond_cli(root, "cat", path, "--format", "json")
    assert accepted(result)
    rows: list[dict[str, Any]] = json.loads(result.stdout)
    return rows


def described(root: Path, path: str) -> dict[str, Any]:
    result = pond_cli(root, "describe", path, "--format", "json")
    assert accepted(result)
    info: dict[str, Any] = json.loads(result.stdout)
    return info


# -- CSV -------------------------------------------------------------------------------------
no_surrogates = st.characters(blacklist_categories=("Cs",))
cells = st.text(no_surrogates, max_size=10)
column_names = st.lists(
    # DuckDB trims a header name (see CSV_CASES): generated names have no edge spaces
    st.text(no_surrogates, min_size=1, max_size=8).filter(lambda n: n.strip() == n != ""),
    min_size=1,
    max_size=6,
    unique=True,
)


@st.composite
def well_formed_tables(draw: st.DrawFn) -> tuple[list[str], list[list[str]]]:
    names = draw(column_names)
    width = len(names)
    rows = draw(st.lists(st.lists(cells, min_size=width, max_size=width), max_size=8))
    return names, rows


def rfc4180(names: list[str], rows: list[list[str]]) -> bytes:
    """Every field quoted (so a ``\\r`` in a value is data, not a line end)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n", quoting=csv.QUOTE_ALL)
    writer.writerow(names)
    writer.writerow(["x"] * len(names))  # every column text, so values come back verbatim
    writer.writerows(rows)
    return buffer.getvalue().encode("utf-8")


@EXAMPLES
@given(table=well_formed_tables())
def test_a_well_formed_csv_comes_back_value_for_value(
    table: tuple[list[str], list[list[str]]],
) -> None:
    names, rows = table
    with fresh_pond() as root:
        source = host_file(root, "t.csv", rfc4180(names, rows))
        message = copy_checked(root, source, "/t.table")
        if message is not None:  # DuckDB's sniffer gives up on some dialects: a clean refusal
            assert "not a readable CSV" in message
            return
        expected = [dict.fromkeys(names, "x")] + [
            dict(zip(names, row, strict=True)) for row in rows
        ]
        got = rows_of(root, "/t.table")
        assert [list(row) for row in got] == [names] * len(expected)  # names and order kept
        # an empty field (quoted or not) reads as NULL
        assert got == [{k: v if v != "" else None for k, v in row.items()} for row in expected]


messy_text = st.text(st.sampled_from(list('a,;"\n\r x1é\x00\t')), max_size=60)
messy_bytes = st.binary(max_size=60)


@EXAMPLES
@given(content=st.one_of(messy_text.map(lambda t: t.encode("utf-8")), messy_bytes))
def test_random_text_as_csv_is_read_consistently_or_refused(content: bytes) -> None:
    """No ground truth for garbage: accepted means every way of reading agrees."""
    with fresh_pond() as root:
        source = host_file(root, "r.csv", content)
        if copy_checked(root, source, "/r.table") is not None:
            return
        info = described(root, "/r.table")
        rows = rows_of(root, "/r.table")
        names = [column["name"] for column in info["schema"]]
        assert info["versions"][-1]["rows"] == len(rows)
        assert all(list(row) == names for row in rows)
        counted = pond_cli(root, "sql", "SELECT count(*) AS n FROM '/r.table'", "--format", "json")
        assert accepted(counted)
        assert json.loads(counted.stdout) == [{"n": len(rows)}]
        as_csv = pond_cli(root, "cat", "/r.table", "--format", "csv")
        assert accepted(as_csv)


WIDE = 10_000
CSV_CASES = [
    # name, content, refused with (None: accepted), then what the table holds
    ("ragged-short", b"a,b\n1,2\n3\n", "line 3: Expected Number of Columns: 2 Found: 1", None),
    ("ragged-long", b"a,b\n1,2,3\n4,5\n", "line 2: Expected Number of Columns: 2 Found: 3", None),
    ("bad-utf8", b"a,b\n\xff\xfe,2\n", "line 2", None),
    ("unterminated-quote", b'a,b\n1,2\n3,"open\n', "line 3: Value with unterminated quote", None),
    ("empty-file", b"", "not a readable CSV: the file is empty", None),
    ("blank-first-line", b"\na,b\n1,2\n", "line 1 is blank, not a header", None),
    ("cr-first-line", b"\ra,b\r1,2\r", "line 1 is blank, not a header", None),
    ("header-only", b"a,b\n", None, ([], ["a", "b"])),
    ("embedded-nul", b"a,b\nx\x00y,2\n\x00,3\n", None, ([("x\x00y", 2), ("\x00", 3)], ["a", "b"])),
    ("nul-in-header", b"a\x00,b\nx,1\n", None, ([("x", 1)], ["a\x00", "b"])),
    ("bom-and-crlf", b"\xef\xbb\xbfa,b\r\nx,1\r\n", None, ([("x", 1)], ["a", "b"])),
    ("quoted-newline", b'a,b\n"p\nq",1\n', None, ([("p\nq", 1)], ["a", "b"])),
    # DuckDB trims header names and names blank and repeated ones: visible in `describe`
    ("unnamed-columns", b",a,a\n1,2,3\n", None, ([(1, 2, 3)], ["column0", "a", "a_1"])),
    ("padded-names", b'" a ",b \n x ,1\n', None, ([(" x ", 1)], ["a", "b"])),
]


@pytest.mark.parametrize(
    ("content", "refused", "expected"),
    [pytest.param(*case[1:], id=case[0]) for case in CSV_CASES],
)
def test_malformed_csv(
    tmp_path: Path,
    content: bytes,
    refused: str | None,
    expected: tuple[list[tuple[Any, ...]], list[str]] | None,
) -> None:
    root = tmp_path / "pond"
    Pond.create(str(root))
    source = host_file(root, "case.csv", content)
    message = copy_checked(root, source, "/case.table")
    if refused is not None:
        assert message is not None
        assert refused in message
        assert message.startswith(f"{source}: not a readable CSV")
        return
    assert message is None
    assert expected is not None
    values, names = expected
    assert [c["name"] for c in described(root, "/case.table")["schema"]] == names
    assert [tuple(row.values()) for row in rows_of(root, "/case.table")] == values


def test_ten_thousand_columns(tmp_path: Path) -> None:
    root = tmp_path / "pond"
    Pond.create(str(root))
    header = ",".join(f"c{i}" for i in range(WIDE))
    body = ",".join(str(i) for i in range(WIDE))
    source = host_file(root, "wide.csv", f"{header}\n{body}\n{body}\n".encode())
    assert copy_checked(root, source, "/wide.table") is None
    assert len(described(root, "/wide.table")["schema"]) == WIDE
    result = pond_cli(
        root, "sql", "SELECT max(c0) AS a, max(c9999) AS z FROM '/wide.table'", "--format", "json"
    )
    assert accepted(result)
    assert json.loads(result.stdout) == [{"a": 0, "z": WIDE - 1}]


# -- Parquet ----------------------------------------------------------------------------------
def sample_parquet() -> bytes:
    table = pa.table(
        {
            "ts": pa.array(range(0, 3000, 3), pa.timestamp("s")),
            "v": [float(i) for i in range(1000)],
            "s": [f"s{i % 7}" for i in range(1000)],
        }
    )
    buffer = io.BytesIO()
    pq.write_table(table, buffer, row_group_size=250, compression="zstd")
    return buffer.getvalue()


SAMPLE_PARQUET = sample_parquet()


def same_rows(a: pa.Table, b: pa.Table) -> bool:
    order = [(name, "ascending") for name in a.column_names]
    return a.schema.equals(b.schema) and a.sort_by(order).equals(b.sort_by(order))


def parquet_round_trip(root: Path, content: bytes, kind: str) -> None:
    """Refused cleanly, or accepted and read back exactly as pyarrow reads the file."""
    source = host_file(root, f"in-{kind}.parquet", content)
    if copy_checked(root, source, f"/x.{kind}", "--type", kind) is not None:
        return
    expected = pq.read_table(source)  # accepted: the file must be readable
    result = pond_cli(root, "cat", f"/x.{kind}", "--format", "parquet")
    assert accepted(result)
    assert same_rows(pq.read_table(io.BytesIO(result.stdout_bytes)), expected)


@EXAMPLES
@given(
    content=st.binary(max_size=300),
    framed=st.booleans(),
    kind=st.sampled_from(["table", "series"]),
)
def test_random_bytes_as_parquet_are_refused(content: bytes, framed: bool, kind: str) -> None:
    payload = b"PAR1" + content + b"PAR1" if framed else content
    with fresh_pond() as root:
        source = host_file(root, "junk.parquet", payload)
        message = copy_checked(root, source, f"/junk.{kind}", "--type", kind)
        assert message is not None
        assert message.startswith(f"{source}: not a readable Parquet file")


@EXAMPLES
@given(
    offset=st.integers(0, len(SAMPLE_PARQUET) - 1),
    bit=st.integers(0, 7),
    truncate=st.booleans(),
    kind=st.sampled_from(["table", "series"]),
)
def test_damaged_parquet_is_refused_or_read_back_exactly(
    offset: int, bit: int, truncate: bool, kind: str
) -> None:
    damaged = bytearray(SAMPLE_PARQUET)
    if truncate:
        del damaged[offset:]
    else:
        damaged[offset] ^= 1 << bit
    with fresh_pond() as root:
        parquet_round_trip(root, bytes(damaged), kind)


def test_a_time_after_year_9999_is_kept_and_printed(tmp_path: Path) -> None:
    root = tmp_path / "pond"
    Pond.create(str(root))
    buffer = io.BytesIO()
    far = pa.table({"ts": pa.array([0, 10**13], pa.timestamp("s")), "v": [1, 2]})
    pq.write_table(far, buffer)
    parquet_round_trip(root, buffer.getvalue(), "series")
    for fmt in ("json", "table", "csv"):
        assert accepted(pond_cli(root, "cat", "/x.series", "--format", fmt))


# -- YAML: pond.yaml and factory configs -------------------------------------------------------
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True),
    st.text(no_surrogates, max_size=12),
    st.sampled_from(["1h", "0s", "99999999999999d", "cron: 5 4 * * *", "cron: x", "${env:NOPE}"]),
    st.sampled_from(["/src.series", "/src.*", "/nope", "..", "/a/../..", "SELECT 1", "{{ x }}"]),
)
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.text(no_surrogates, max_size=6), inner, max_size=3)
    ),
    max_leaves=8,
)
NODE_KEYS = ["factory", "config", "description", "refresh", "schema", "sources", "bogus"]
FACTORIES = ["template", "sql_derived_table", "sql_derived_series", "synthetic", "nope", ""]
node_specs = st.dictionaries(
    st.sampled_from(NODE_KEYS),
    st.one_of(st.sampled_from(FACTORIES), values),
    max_size=4,
)
pond_files = st.dictionaries(
    st.sampled_from(["pond", "nodes", "extra"]),
    st.one_of(
        st.dictionaries(
            st.sampled_from(["/a.md", "/b/c.table", "rel.md", "/x/../y", "//d.series"])
            | st.text(no_surrogates, max_size=6),
            node_specs | values,
            max_size=3,
        ),
        values,
    ),
    max_size=3,
)


def yaml_text(value: Any, garble: tuple[int, str] | None) -> bytes:
    text = yaml.safe_dump(value, allow_unicode=True, sort_keys=False)
    if garble is not None:  # cut the document and splice random text in
        cut, noise = garble
        cut = min(cut, len(text))
        text = text[:cut] + noise + text[cut:]
    return text.encode("utf-8", "surrogatepass")


garbles = st.none() | st.tuples(
    st.integers(0, 200), st.text(st.sampled_from(":-[]{}&*!|>'\"#\t\n x"), max_size=6)
)


@pytest.fixture
def hostile_pond(tmp_path: Path) -> Path:
    """A pond with one series and one table a config may name as sources."""
    root = tmp_path / "pond"
    pond = Pond.create(str(root))
    with pond.transaction("sources") as tx:
        tx.write_table(
            "/src.series",
            pa.table({"ts": pa.array([0, 60], pa.timestamp("s", tz="UTC")), "v": [1.0, 2.0]}),
            "series",
        )
        tx.write_table("/src.table", pa.table({"k": [1, 2]}))
    return root


@FEWER
@given(document=pond_files, garble=garbles)
def test_random_pond_yaml_plans_or_is_refused(
    hostile_pond: Path, monkeypatch: pytest.MonkeyPatch, document: Any, garble: Any
) -> None:
    monkeypatch.setenv("POND", str(hostile_pond))  # `apply` exports --pond; undone afterwards
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "pond.yaml"
        path.write_bytes(yaml_text(document, garble))
        try:
            loaded = pipeline.load(path)  # the library: a PondError or a pipeline
        except PondError:
            loaded = None
        before = state(hostile_pond)
        result = pond_cli(hostile_pond, "apply", "--dry-run", str(path))
        message = refusal(result)
        assert state(hostile_pond) == before  # a dry run never writes
        if message is not None:
            assert loaded is None, message
            assert message.startswith(str(path)), message  # names the file (and line)
            return
        assert loaded is not None
        plan = result.stdout.splitlines()
        planned = {line[12:].rsplit("  (", 1)[0] for line in plan[:-1]}  # "+ create    PATH  (F)"
        assert planned == {node.path for node in loaded.nodes}
        assert plan[-1].startswith("dry run: ")


CONFIG_FIELDS = {
    "template": ["template", "sources"],
    "sql_derived_table": ["query", "source", "sources"],
    "sql_derived_series": ["query", "source", "sources", "time_column"],
    "synthetic": ["start", "end", "interval", "points", "seed"],
    "csv_directory": ["pattern", "type", "temporal_column", "cache_ttl"],
}
FIELD_VALUES = st.one_of(
    values,
    st.sampled_from(
        [
            "SELECT * FROM source",
            "SELECT 1; SELECT 2",
            "COPY (SELECT 1) TO '/tmp/x'",
            "/src.series",
            "/src.table",
            "/*.series",
            "{{ query('SELECT 1') }}",
            "{% for %}",
            "{src: /src.series}",
            "series",
            "table",
            "ts",
            "2024-01-01",
            "1h",
        ]
    ),
    st.dictionaries(st.sampled_from(["source", "a", ""]), st.sampled_from(["/src.series", "/x"])),
)


@st.composite
def factory_configs(draw: st.DrawFn) -> tuple[str, Any]:
    factory = draw(st.sampled_from(sorted(CONFIG_FIELDS)))
    keys = st.sampled_from([*CONFIG_FIELDS[factory], "bogus"]) | st.text(max_size=4)
    config = draw(st.one_of(st.dictionaries(keys, FIELD_VALUES, max_size=4), values))
    return factory, config


@EXAMPLES
@given(case=factory_configs(), garble=garbles)
def test_random_factory_config_is_stored_as_written_or_refused(
    hostile_pond: Path, case: tuple[str, Any], garble: Any
) -> None:
    factory, config = case
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "config.yaml"
        path.write_bytes(yaml_text(config, garble))
        node = f"/n{len(json.loads(pond_cli(hostile_pond, 'log', '--format', 'json').stdout))}"
        before = state(hostile_pond)
        message = refusal(pond_cli(hostile_pond, "mknod", factory, node, "--config", str(path)))
        if message is not None:
            assert state(hostile_pond) == before, message
            return
        written = yaml.safe_load(path.read_text()) or {}
        info = described(hostile_pond, node)
        assert info["factory"] == factory
        stored = json.dumps(info["config"], sort_keys=True)  # NaN == NaN as text
        assert stored == json.dumps(json.loads(json.dumps(written, default=str)), sort_keys=True)


YAML_CASES = [
    # name, file content, what the one error line says (for `apply`, and for `mknod
    # --config` too when the file itself is unreadable YAML)
    ("not-utf8", b"nodes:\n  /a.md: \xff\xfe\n", ":2: not UTF-8 text (byte 0xff)"),
    (
        "impossible-date",
        b"nodes:\n  /a.md:\n    refresh: 2024-13-45\n",
        ":3: invalid YAML: cannot read '2024-13-45'",
    ),
    ("bad-int-tag", b"nodes: !!int twelve\n", ":1: invalid YAML: cannot read 'twelve'"),
    (
        "alias-cycle",
        b"nodes: &a [*a]\n",
        "nested more than 64 levels deep (or an alias that refers to itself)",
    ),
    (
        "alias-bomb",
        b"a: &a [x, x, x, x, x, x, x, x, x, x]\n"
        + b"".join(
            f"a{i}: &a{i} [{', '.join(['*a' if i == 1 else f'*a{i - 1}'] * 10)}]\n".encode()
            for i in range(1, 8)
        ),
        "more than 100,000 values once aliases are expanded",
    ),
    (
        "deep-nesting",
        b"nodes: " + b"[" * 1000 + b"]" * 1000 + b"\n",
        "nested more than 64 levels deep",
    ),
    (
        "python-tag",
        b"nodes: !!python/object/apply:os.system ['touch {marker}']\n",
        "could not determine a constructor",
    ),
    ("unhashable-key", b"nodes: {? [a]: 1}\n", ":1: invalid YAML: found unhashable key"),
    ("tab-indent", b"nodes:\n\t/a.md: {}\n", ":2: invalid YAML: found character '\\t'"),
    (
        "duplicate-key",
        b"nodes:\n  /a.md: {factory: template}\n  /a.md: {factory: template}\n",
        ":3: duplicate key 'nodes./a.md' (first on line 2)",
    ),
    (
        "huge-duration",
        b"nodes:\n  /a.md:\n    factory: template\n    config: {template: x}\n"
        b"    refresh: 99999999999999999999d\n",
        "is too long a duration",
    ),
]


@pytest.mark.parametrize(("content", "says"), [pytest.param(*c[1:], id=c[0]) for c in YAML_CASES])
def test_hostile_yaml_is_one_clear_error(
    hostile_pond: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, content: bytes, says: str
) -> None:
    monkeypatch.setenv("POND", str(hostile_pond))
    marker = tmp_path / "pwned"
    path = tmp_path / "pond.yaml"
    path.write_bytes(content.replace(b"{marker}", str(marker).encode()))
    before = state(hostile_pond)
    for args in (("apply", "--dry-run", str(path)), ("apply", str(path))):
        message = refusal(pond_cli(hostile_pond, *args))
        assert message is not None
        assert message.startswith(str(path)), message
        assert says in message, message
    mknod = refusal(pond_cli(hostile_pond, "mknod", "template", "/r.md", "--config", str(path)))
    assert mknod is not None  # if the YAML reads at all, its keys are no template config
    if "invalid YAML" in says or "UTF-8" in says or "aliases" in says:
        assert says in mknod, mknod
    with pytest.raises(PondError):
        pipeline.load(path)
    assert state(hostile_pond) == before
    assert not marker.exists()


# -- path strings -----------------------------------------------------------------------------
def model_normalize(text: str) -> str | None:
    """The path rules, restated: None if the pond must refuse ``text``."""
    if text == "" or any(ord(c) < 32 or ord(c) == 127 or 0xD800 <= ord(c) < 0xE000 for c in text):
        return None
    if len(text.encode("utf-8")) > 4096:
        return None
    parts: list[str] = []
    for segment in text.split("/"):
        if segment in ("", "."):
            continue
        if segment == "..":
            if not parts:
                return None
            parts.pop()
        elif len(segment.encode("utf-8")) > 255:
            return None
        else:
            parts.append(segment)
            if len(parts) > 256:
                return None
    return "/" + "/".join(parts)


SEGMENTS = st.one_of(
    st.sampled_from(["", ".", "..", "a", "é", "日本", " ", "*", "[x", "a?", "\u202e", "a\\b"]),
    st.sampled_from(["x" * 255, "é" * 128, "a\x00b", "a\nb", "\udcff", "tab\there", "\x7f"]),
    st.text(max_size=6),
)
pond_paths = st.one_of(
    st.builds(
        lambda lead, segments: lead + "/".join(segments),
        st.sampled_from(["/", "", "//"]),
        st.lists(SEGMENTS, max_size=5),
    ),
    st.builds(lambda n: "/" + "/".join(["y" * 200] * n), st.integers(19, 22)),
)


def listed(root: Path) -> dict[str, str]:
    result = pond_cli(root, "list", "--format", "json")
    assert accepted(result)
    return {entry["path"]: entry["type"] for entry in json.loads(result.stdout)}


@EXAMPLES
@given(text=pond_paths)
def test_a_path_string_is_used_as_normalized_or_refused(text: str) -> None:
    expected = model_normalize(text)
    data = b"hostile\x00bytes\n"
    with fresh_pond() as root:
        before = state(root)
        message = refusal(pond_cli(root, "mkdir", "-p", text))
        if expected is None:
            assert message is not None
            assert state(root) == before
        else:
            assert message is None
            assert expected == "/" or listed(root)[expected] == "directory"
            for command in (("cat", text), ("list", text), ("describe", text)):
                refusal(pond_cli(root, *command))  # no traceback; a directory is no file
    with fresh_pond() as root:
        source = host_file(root, "f.txt", data)
        message = copy_checked(root, source, text, "--parents")
        if expected is None:
            assert message is not None
            for command in (("cat", text), ("list", text), ("rm", text), ("mkdir", text)):
                assert refusal(pond_cli(root, *command)) is not None
            return
        assert message is None
        # DEST/ names a directory (made with --parents): the file lands in it
        into = expected == "/" or text.endswith("/")
        landed = paths.join(expected, "f.txt") if into else expected
        assert listed(root)[landed] == "file:data"
        result = pond_cli(root, "cat", landed if into else text)
        assert accepted(result)
        assert result.stdout_bytes == data


PATH_CASES = [
    ("..", "path escapes the pond's root"),
    ("/a/../..", "path escapes the pond's root"),
    ("a\x00b", "a pond path cannot contain NUL"),
    ("/a\nb", "a pond path cannot contain control characters"),
    ("/\udcffname", "a pond path must be valid UTF-8 text"),
    ("/" + "x" * 256, "a name is longer than 255 bytes"),
    ("/d" * 257, "a path is deeper than 256 levels"),
    ("/" + "/".join(["y" * 250] * 17), "a path is longer than 4096 bytes"),
    ("", "empty pond path"),
]


@pytest.mark.parametrize(
    ("text", "says"), PATH_CASES, ids=[c[1][:30] + f"-{i}" for i, c in enumerate(PATH_CASES)]
)
def test_hostile_paths_are_refused_naming_the_rule(tmp_path: Path, text: str, says: str) -> None:
    root = tmp_path / "pond"
    Pond.create(str(root))
    source = host_file(root, "f.txt", b"x")
    before = state(root)
    for command in (
        ("mkdir", "-p", text),
        ("copy", str(source), text),
        ("cat", text),
        ("list", text),
        ("ln", "/f.txt", text),
        ("rm", "-r", text),
        ("sql", f"SELECT * FROM '{text}'"),
    ):
        message = refusal(pond_cli(root, *command))
        assert message is not None
        if command[0] != "sql":
            assert says in message, (command, message)
    assert state(root) == before


@pytest.mark.parametrize("name", ["new\nline.txt", "bad\udcffbyte.txt", "tab\t.txt"])
def test_a_host_file_name_the_pond_cannot_hold_is_refused(tmp_path: Path, name: str) -> None:
    root = tmp_path / "pond"
    Pond.create(str(root))
    folder = tmp_path / "host"
    folder.mkdir()
    source = Path(os.fsdecode(os.path.join(os.fsencode(folder), os.fsencode(name))))
    source.write_bytes(b"x")
    message = copy_checked(root, source, "/")
    assert message is not None
    assert "a pond path" in message


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("//", "/"),
        ("///a//b/./c/..", "/a/b"),
        ("/é/日本", "/é/日本"),
        ("rel/x", "/rel/x"),
        ("/d" * 256, "/d" * 256),
        ("/ ", "/ "),
    ],
)
def test_noisy_but_valid_paths_normalize(tmp_path: Path, text: str, expected: str) -> None:
    root = tmp_path / "pond"
    Pond.create(str(root))
    assert accepted(pond_cli(root, "mkdir", "-p", text))
    assert expected == "/" or listed(root)[expected] == "directory"


# -- settings and options ---------------------------------------------------------------------
@pytest.mark.parametrize("value", ["nan", "-1", "inf", "1e400", "soon"])
@pytest.mark.parametrize("option", ["--query-timeout", "--lock-timeout"])
def test_a_timeout_must_be_a_number_of_seconds(tmp_path: Path, option: str, value: str) -> None:
    root = tmp_path / "pond"
    Pond.create(str(root))
    before = state(root)
    result = pond_cli(root, option, value, "mkdir", "/a")
    assert result.exit_code == 2
    message = refusal(result)  # click's usage error, one line
    assert message is not None
    assert message.startswith(f"Invalid value for '{option}'"), message
    assert state(root) == before


@pytest.mark.parametrize(
    ("content", "says"),
    [
        (b"{", "cannot read the pond's settings: Expecting property name"),
        (b"\xff\xfe", "cannot read the pond's settings"),
        (b"[]", "the pond's settings must be a JSON object"),
        (
            b'{"query_timeout": "soon"}',
            "query_timeout must be a number of seconds >= 0, not 'soon'",
        ),
        (b'{"query_timeout": null}', "query_timeout must be a number of seconds >= 0, not None"),
        (b'{"query_timeout": -5}', "query_timeout must be a number of seconds >= 0, not -5"),
        (b'{"inline_threshold": "big"}', "inline_threshold must be a number of bytes >= 0"),
    ],
)
def test_damaged_pond_settings_are_one_clear_error(
    tmp_path: Path, content: bytes, says: str
) -> None:
    root = tmp_path / "pond"
    Pond.create(str(root))
    (root / "pond.json").write_bytes(content)
    for command in (("list",), ("mkdir", "/a"), ("sql", "SELECT 1")):
        message = refusal(pond_cli(root, *command))
        assert message is not None
        assert message.startswith(f"{root / 'pond.json'}: {says}"), message
        assert message.endswith("fix it, or delete it to use the defaults")
