"""pond.yaml is the truth and ``apply`` is the only thing that changes declarations: a run
never writes back a declaration older than the pond's, every node the file creates can
be pruned, prune and retype refuse what would break a reader, and applies at once agree.

The concurrent cases run the installed ``pond`` in processes, as a user would."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner, Result

from pond_pipeline.api import Pond
from pond_pipeline.cli.main import cli
from pond_pipeline.errors import ConflictError
from pond_pipeline.project import pipeline as pipelines
from pond_pipeline.project.materialize import materialize

SYNTHETIC = {
    "start": "2024-01-01T00:00:00Z",
    "end": "2024-01-02T00:00:00Z",
    "interval": "1m",
    "points": [{"name": "level", "components": [{"type": "constant", "value": 1.0}]}],
}
SLOW = (  # a few seconds of DuckDB work, one row out
    "SELECT max(timestamp) AS timestamp, count(*) AS n FROM source, range({n})"
)


def derived(source: str, query: str = "SELECT * FROM source") -> dict[str, Any]:
    return {"factory": "sql_derived_series", "config": {"source": source, "query": query}}


def chain(slow_rows: int = 1) -> dict[str, Any]:
    """/src.series → /a.series (slow) → /b.series, and a leaf /extra.series off /src."""
    return {
        "pond": "./.pond",
        "nodes": {
            "/src.series": {"factory": "synthetic", "config": SYNTHETIC},
            "/a.series": derived("/src.series", SLOW.format(n=slow_rows)),
            "/b.series": derived("/a.series"),
            "/extra.series": derived("/src.series"),
        },
    }


def write(folder: Path, spec: dict[str, Any]) -> Path:
    path = folder / "pond.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def invoke(folder: Path, *args: str) -> Result:
    """``pond ARGS`` in process, in ``folder`` (the fixture's working directory)."""
    assert Path.cwd() == folder
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def error_line(result: Result) -> str:
    lines = [line for line in result.stderr.splitlines() if line.startswith("Error: ")]
    assert len(lines) == 1, result.stderr
    return lines[0].removeprefix("Error: ")


def pond_equals_file(folder: Path) -> None:
    """What a user checks: the plan against the file (pruning) has nothing to do."""
    result = invoke(folder, "apply", "--dry-run", "--prune")
    assert result.exit_code == 0, result.stderr
    assert "dry run: 0 change(s) planned" in result.stdout, result.stdout


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("POND", raising=False)
    monkeypatch.delenv("POND_CONFIG", raising=False)
    monkeypatch.delenv("DAGSTER_HOME", raising=False)  # the project's own: .dagster/
    return tmp_path


def test_a_node_first_made_by_materialize_is_pruned_later(folder):
    write(folder, chain())
    result = invoke(folder, "materialize", "--all")  # no apply before
    assert result.exit_code == 0, result.stderr
    pond = Pond.open(str(folder / ".pond"))
    assert pond.node("/extra.series").latest.attributes["declared_by"] == "pond.yaml"

    spec = chain()
    del spec["nodes"]["/extra.series"]
    write(folder, spec)
    result = invoke(folder, "apply", "--prune")

    assert result.exit_code == 0, result.stderr
    assert "- remove    /extra.series  (sql_derived_series)" in result.stdout
    assert not Pond.open(str(folder / ".pond")).list_nodes("/extra.series*")
    pond_equals_file(folder)


def test_prune_refuses_to_remove_a_node_another_reads(folder):
    write(folder, chain())
    assert invoke(folder, "apply").exit_code == 0
    before = Pond.open(str(folder / ".pond")).log()
    spec = chain()
    del spec["nodes"]["/a.series"]  # /b.series still reads it
    write(folder, spec)

    result = invoke(folder, "apply", "--prune")

    assert result.exit_code == 1
    assert error_line(result) == (
        "/a.series: cannot remove it: /b.series reads it; "
        "remove /b.series from the pond too, or change what it reads first"
    )
    pond = Pond.open(str(folder / ".pond"))
    assert pond.log() == before  # nothing written
    assert pond.node("/a.series").factory == "sql_derived_series"


def test_apply_refuses_to_change_the_type_of_a_node_another_reads(folder):
    write(folder, chain())
    assert invoke(folder, "apply").exit_code == 0
    before = len(Pond.open(str(folder / ".pond")).log())
    spec = chain()
    spec["nodes"]["/a.series"]["factory"] = "sql_derived_table"
    write(folder, spec)

    result = invoke(folder, "apply")

    assert result.exit_code == 1
    assert error_line(result).startswith(
        "/a.series: cannot change its type to a table: /b.series reads it;"
    )
    assert len(Pond.open(str(folder / ".pond")).log()) == before


def test_a_run_never_writes_back_a_declaration_older_than_the_ponds(folder):
    """In process: the pipeline is read, then an apply changes the pond, then the run
    materializes with what it read — refused with one clear message, nothing written."""
    config = write(folder, chain())
    assert invoke(folder, "apply").exit_code == 0
    pond = Pond.open(str(folder / ".pond"))
    read_then = pipelines.with_pond(pipelines.load(config), pond)  # the run starts
    spec = chain()
    spec["nodes"]["/b.series"] = derived("/a.series", "SELECT timestamp FROM source")
    write(folder, spec)
    assert invoke(folder, "apply").exit_code == 0  # someone applies meanwhile
    before = len(pond.log())

    node = read_then.node("/b.series")
    with pytest.raises(ConflictError) as caught:
        materialize(pond, node.path, declared=node.declaration)

    assert caught.value.message == (
        "/b.series: pond.yaml changed since this run started; rerun; "
        "the pond holds a newer declaration (applied while this run ran)"
    )
    assert len(pond.log()) == before
    assert pond.describe("/b.series")["config"]["query"] == "SELECT timestamp FROM source"


def pond_process(folder: Path, *args: str) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("POND", "POND_CONFIG", "DAGSTER_HOME")}
    script = Path(sys.executable).parent / "pond"
    return subprocess.Popen(
        [str(script), *args], cwd=folder, env=env, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip


@pytest.mark.slow
def test_apply_during_materialize_leaves_the_pond_equal_to_the_edited_file(folder):
    write(folder, chain(slow_rows=25_000_000))
    assert invoke(folder, "apply").exit_code == 0
    running = pond_process(folder, "materialize", "--all")
    pond = Pond.open(str(folder / ".pond"))
    deadline = time.monotonic() + 120
    while not any(t.command == "materialize /src.series" for t in pond.log()):
        assert running.poll() is None, running.communicate()
        assert time.monotonic() < deadline, "the run never wrote /src.series"
        time.sleep(0.05)
    edited = chain(slow_rows=25_000_000)
    edited["nodes"]["/b.series"] = derived("/a.series", "SELECT timestamp FROM source")
    del edited["nodes"]["/extra.series"]
    write(folder, edited)

    applying = pond_process(folder, "apply", "--prune")
    assert applying.wait(timeout=120) == 0, applying.communicate()
    assert running.poll() is None, "the apply must land while the run still runs"
    _, stderr = running.communicate(timeout=300)

    assert running.returncode == 1  # the nodes it read before the apply are refused
    assert "/b.series: pond.yaml changed since this run started; rerun" in stderr
    pond_equals_file(folder)
    pond = Pond.open(str(folder / ".pond"))
    assert pond.describe("/b.series")["config"]["query"] == "SELECT timestamp FROM source"
    assert not pond.list_nodes("/extra.series*")


@pytest.mark.slow
def test_two_applies_at_once_both_leave_the_pond_equal_to_the_file(folder):
    write(folder, chain())
    first, second = pond_process(folder, "apply"), pond_process(folder, "apply")

    outcomes = [p.wait(timeout=120) for p in (first, second)]

    assert outcomes == [0, 0], [p.communicate() for p in (first, second)]
    outputs = sorted(p.communicate()[0] for p in (first, second))
    assert "nothing to do: the pond matches the file" in outputs[1]
    assert "applied 4 change(s)" in outputs[0]
    pond_equals_file(folder)
    assert (
        json.loads(invoke(folder, "--pond", ".pond", "log", "--format", "json").stdout)[0][
            "command"
        ]
        == "apply pond.yaml"
    )


def transforms_project() -> dict[str, Any]:
    """A join whose second input is renamed by a ``column_rename`` without ``source``."""
    logger = {
        **SYNTHETIC,
        "time_column": "Time",
        "points": [{"name": "Temp", "components": [{"type": "constant", "value": 2.0}]}],
    }
    return {
        "pond": "./.pond",
        "nodes": {
            "/north.series": {"factory": "synthetic", "config": SYNTHETIC},
            "/logger.series": {"factory": "synthetic", "config": logger},
            "/rules": {
                "factory": "column_rename",
                "config": {"rules": [{"type": "direct", "from": "Time", "to": "timestamp"}]},
            },
            "/joined.series": {
                "factory": "timeseries_join",
                "config": {
                    "inputs": [
                        {"pattern": "/north.series", "scope": "north"},
                        {"pattern": "/logger.series", "scope": "south", "transforms": ["/rules"]},
                    ]
                },
            },
        },
    }


def test_a_node_only_serving_others_is_no_asset_and_the_rest_runs(folder):
    write(folder, transforms_project())

    result = invoke(folder, "materialize", "--all")

    assert result.exit_code == 0, result.stderr
    done = [line.split(":")[0] for line in result.stdout.splitlines() if line.startswith("✓ ")]
    assert sorted(done) == ["✓ /joined.series", "✓ /logger.series", "✓ /north.series"]
    pond = Pond.open(str(folder / ".pond"))
    assert pond.read_table("/joined.series").column_names == [
        "timestamp",
        "north.level",
        "south.Temp",
    ]
    assert pond.node("/rules").factory == "column_rename"  # applied, never run


def test_a_node_made_on_the_command_line_is_materialized_by_path(folder):
    write(folder, chain())
    assert invoke(folder, "apply").exit_code == 0
    made = invoke(
        folder,
        "--pond",
        ".pond",
        "create-derived-series",
        "/hot.series",
        "--source",
        "/src.series",
        "--query",
        "SELECT * FROM source WHERE level > 0",
        "--refresh",
        "1h",
    )
    assert made.exit_code == 0, made.stderr

    result = invoke(folder, "materialize", "/hot.series")

    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines()[0].startswith("✓ /hot.series: 1441 rows; 1 version(s)")
    pond = Pond.open(str(folder / ".pond"))
    assert pond.describe("/hot.series")["versions"][-1]["rows"] == 1441


def test_materialize_observes_the_static_files_it_reads_first(folder):
    import dagster as dg

    csv = folder / "north.csv"
    csv.write_text("timestamp,level\n2024-01-01T00:00:00Z,1.0\n2024-01-01T01:00:00Z,2.0\n")
    made = invoke(folder, "--pond", ".pond", "init")
    assert made.exit_code == 0, made.stderr
    copied = invoke(
        folder, "--pond", ".pond", "copy", str(csv), "/north.series", "--type", "series"
    )
    assert copied.exit_code == 0, copied.stderr
    write(folder, {"pond": "./.pond", "nodes": {"/mean.series": derived("/north.series")}})

    result = invoke(folder, "materialize", "--all")

    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert [line[:15] for line in lines if line.startswith(("✓", "✗"))] == [
        "✓ /mean.series:"
    ]  # the observation is no node of its own
    instance = dg.DagsterInstance.from_config(str(folder / ".dagster"))
    observed = instance.fetch_observations(dg.AssetKey(["north_series"]), limit=1).records
    assert observed, "the static file was not observed by the run"
    assert observed[0].asset_observation.data_version == "v1@txn2"


def test_nodes_named_like_keywords_or_numbers_apply_and_materialize(folder):
    names = ["/in", "/class", "/input", "/2024", "/a-b"]
    write(
        folder,
        {
            "pond": "./.pond",
            "nodes": {n: {"factory": "synthetic", "config": SYNTHETIC} for n in names},
        },
    )

    assert invoke(folder, "apply").exit_code == 0
    result = invoke(folder, "materialize", "--all")

    assert result.exit_code == 0, result.stderr
    done = sorted(line.split(":")[0][2:] for line in result.stdout.splitlines() if line[:1] == "✓")
    assert done == sorted(names)
    pond = Pond.open(str(folder / ".pond"))
    assert all(pond.describe(n)["versions"][-1]["rows"] == 1441 for n in names)
