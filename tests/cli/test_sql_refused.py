"""SQL DuckDB refuses is refused when a node is created (`pond create-derived-series`,
`pond mknod`) or applied (`pond apply`), before anything is written (issue 13): one
``Error:`` line naming the node (or pond.yaml's line and key), the field and DuckDB's
words, exit 2, and the pond's log exactly as it was."""

import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pytest
from click.testing import CliRunner, Result

from pond_pipeline.api import Pond
from pond_pipeline.cli.main import cli

RAW = "/raw/x.series"
UNKNOWN_COLUMN = 'Binder Error: Referenced column "temprature" not found in FROM clause!'


def invoke(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def error_line(result: Result) -> str:
    lines = [line for line in result.stderr.splitlines() if line.startswith("Error: ")]
    assert len(lines) == 1, result.stderr
    assert result.stderr.strip() == lines[0], result.stderr  # nothing else: no traceback
    return lines[0]


class Project:
    """A folder with a pond (``.pond``, holding ``/raw/x.series``) and its pond.yaml."""

    def __init__(self, path: Path):
        self.path = path
        self.config = path / "pond.yaml"
        self.pond = path / ".pond"

    def cli(self, *args: str) -> Result:
        return invoke("--pond", str(self.pond), *args)

    def log(self) -> str:
        result = self.cli("log", "--format", "json")
        assert result.exit_code == 0, result.stderr
        return result.stdout

    def exists(self, path: str) -> bool:
        return Pond.open(str(self.pond)).resolver().exists(path)

    def write(self, text: str) -> None:
        self.config.write_text(textwrap.dedent(text).lstrip())

    def line_of(self, text: str) -> int:
        """The line of pond.yaml holding ``text`` (once)."""
        lines = [
            i for i, line in enumerate(self.config.read_text().splitlines(), 1) if text in line
        ]
        assert len(lines) == 1, text
        return lines[0]


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Project:
    folder = tmp_path / "project"
    folder.mkdir()
    monkeypatch.chdir(folder)
    monkeypatch.delenv("POND", raising=False)
    monkeypatch.delenv("POND_CONFIG", raising=False)
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    pond = Pond.create(str(folder / ".pond"))
    start = datetime(2024, 1, 1, tzinfo=UTC)
    readings = pa.table(
        {
            "timestamp": pa.array(
                [start + timedelta(hours=i) for i in range(3)], pa.timestamp("us", tz="UTC")
            ),
            "temperature": [20.5, 26.0, 27.5],
        }
    )
    with pond.transaction("load") as tx:
        tx.write_table(RAW, readings, "series", time_column="timestamp", parents=True)
    return Project(folder)


# -- at create -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("query", "words"),
    [
        pytest.param(
            "SELEC * FROM source", 'Parser Error: syntax error at or near "SELEC"', id="syntax"
        ),
        pytest.param(
            "SELECT * FROM source; DROP TABLE source",
            "only SELECT queries may run, not 2 statements: SELECT + DROP",
            id="two-statements",
        ),
        pytest.param("DROP TABLE source", "only SELECT queries may run, not DROP", id="drop"),
        pytest.param(
            "SELECT timestamp, temprature FROM source WHERE temperature > 25",
            UNKNOWN_COLUMN,
            id="unknown-column",
        ),
        pytest.param(
            "SELECT * FROM raw", "Catalog Error: Table with name raw does not exist!", id="table"
        ),
    ],
)
def test_create_derived_series_refuses_bad_sql(project, query, words):
    before = project.log()

    result = project.cli(
        "create-derived-series", "/a/hot.series", "--source", RAW, "--query", query
    )

    assert result.exit_code == 2
    assert error_line(result) == f"Error: /a/hot.series: query: {words}; fix the query"
    assert result.stdout == ""
    assert project.log() == before
    assert not project.exists("/a/hot.series")


def test_mknod_refuses_bad_sql_from_its_config_file(project, tmp_path):
    config = tmp_path / "hot.yaml"
    config.write_text(f"source: {RAW}\nquery: SELECT temprature FROM source\n")
    before = project.log()

    result = project.cli("mknod", "sql_derived_series", "/a/hot.series", "--config", str(config))

    assert result.exit_code == 2
    assert error_line(result) == f"Error: /a/hot.series: query: {UNKNOWN_COLUMN}; fix the query"
    assert project.log() == before


def test_a_good_query_is_created(project):
    result = project.cli(
        "create-derived-series",
        "/a/hot.series",
        "--source",
        RAW,
        "--query",
        "SELECT * FROM source WHERE temperature > 25",
    )

    assert result.exit_code == 0, result.stderr
    assert project.cli("cat", "/a/hot.series", "--format", "json").exit_code == 0


# -- at apply --------------------------------------------------------------------------------
def test_apply_refuses_a_misspelled_column_naming_the_line_and_key(project):
    project.write(
        f"""
        pond: ./.pond
        nodes:
          /a/hot.series:
            factory: sql_derived_series
            config:
              source: {RAW}
              query: SELECT timestamp, temprature FROM source
        """
    )
    before = project.log()

    result = invoke("apply", str(project.config))

    line = project.line_of("query:")
    assert result.exit_code == 2
    assert error_line(result) == (
        f"Error: {project.config}:{line}: nodes./a/hot.series.config.query: {UNKNOWN_COLUMN}; "
        "fix the query in pond.yaml"
    )
    assert result.stdout == ""  # no plan printed: nothing was applied
    assert project.log() == before
    assert not project.exists("/a/hot.series")


def test_apply_checks_a_node_against_one_the_same_file_creates(project):
    project.write(
        f"""
        pond: ./.pond
        nodes:
          /a/hot.series:
            factory: sql_derived_series
            config: {{source: {RAW}, query: "SELECT timestamp, temperature AS t FROM source"}}
          /a/hotter.series:
            factory: sql_derived_series
            config: {{source: /a/hot.series, query: "SELECT * FROM source WHERE temperature > 27"}}
        """
    )
    before = project.log()

    result = invoke("apply", str(project.config))

    line = project.line_of("/a/hot.series, query")
    assert result.exit_code == 2
    assert error_line(result) == (
        f"Error: {project.config}:{line}: nodes./a/hotter.series.config.query: "
        'Binder Error: Referenced column "temperature" not found in FROM clause!; '
        "fix the query in pond.yaml"
    )
    assert project.log() == before
    assert not project.exists("/a/hot.series")  # one transaction: the good node neither

    project.config.write_text(project.config.read_text().replace("temperature > 27", "t > 27"))
    applied = invoke("apply", str(project.config))
    assert applied.exit_code == 0, applied.stderr
    assert project.exists("/a/hotter.series")


def test_apply_names_the_entry_of_a_declared_directory(project):
    project.write(
        f"""
        pond: ./.pond
        nodes:
          /clean:
            factory: dynamic_dir
            config:
              entries:
                - name: all.series
                  factory: sql_derived_series
                  config: {{source: {RAW}, query: SELECT * FROM source}}
                - name: hot.series
                  factory: sql_derived_series
                  config: {{source: /clean/all.series, query: SELEC * FROM source}}
        """
    )
    before = project.log()

    result = invoke("apply", str(project.config))

    line = project.line_of("SELEC *")
    assert result.exit_code == 2
    assert error_line(result) == (
        f"Error: {project.config}:{line}: nodes./clean.config.entries.1.config.query: "
        'Parser Error: syntax error at or near "SELEC"; fix the query in pond.yaml'
    )
    assert project.log() == before
    assert not project.exists("/clean")


def test_apply_refuses_an_update_to_bad_sql_and_keeps_the_old_config(project):
    project.write(
        f"""
        pond: ./.pond
        nodes:
          /a/hot.series:
            factory: sql_derived_series
            config:
              source: {RAW}
              query: SELECT * FROM source WHERE temperature > 25
        """
    )
    assert invoke("apply", str(project.config)).exit_code == 0
    before = project.log()
    project.config.write_text(
        project.config.read_text().replace("temperature > 25", "temprature > 25")
    )

    result = invoke("apply", str(project.config))

    assert result.exit_code == 2
    assert error_line(result).endswith(
        ': nodes./a/hot.series.config.query: Binder Error: Referenced column "temprature" '
        "not found in FROM clause!; fix the query in pond.yaml"
    )
    assert project.log() == before
    config = Pond.open(str(project.pond)).node("/a/hot.series").raw_config
    assert config["query"] == "SELECT * FROM source WHERE temperature > 25"


def test_apply_refuses_a_template_query_with_a_misspelled_column(project):
    project.write(
        f"""
        pond: ./.pond
        nodes:
          /reports/hot.md:
            factory: template
            config:
              sources: {{readings: {RAW}}}
              template: |
                # Hot hours
                {{% for row in query("SELECT timestamp, temprature FROM readings") %}}
                - {{{{ row.timestamp }}}}
                {{% endfor %}}
        """
    )
    before = project.log()

    result = invoke("apply", str(project.config))

    line = project.line_of("template: |")
    assert result.exit_code == 2
    assert error_line(result) == (
        f"Error: {project.config}:{line}: nodes./reports/hot.md.config.template: "
        f"{UNKNOWN_COLUMN}; fix the template in pond.yaml"
    )
    assert project.log() == before
    assert not project.exists("/reports/hot.md")


def test_a_template_query_built_from_variables_is_left_to_the_rendering(project):
    project.write(
        f"""
        pond: ./.pond
        nodes:
          /reports/all.md:
            factory: template
            config:
              sources: {{readings: {RAW}}}
              template: |
                {{% set table = "readings" %}}
                {{% for r in query("SELECT count(*) AS n FROM " ~ table) %}}
                {{{{ r.n }}}}{{% endfor %}}
                {{% for r in query("SELECT max(temperature) AS t FROM readings") %}}
                 {{{{ r.t }}}}{{% endfor %}}
        """
    )

    assert invoke("apply", str(project.config)).exit_code == 0
    assert Pond.open(str(project.pond)).read_bytes("/reports/all.md") == b"3 27.5"
