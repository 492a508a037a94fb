"""Every command finds the pond as ``pond apply`` does (issue 13): ``--pond``, then
``POND``, then the ``pond.yaml`` of the working folder or its nearest parent (or
``POND_CONFIG``); ``pond init`` creates the pond that file names."""

from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from pond_pipeline.cli.main import cli
from tests.conftest import error_line

NO_ENV = {"POND": "", "POND_CONFIG": ""}


def invoke(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(cli, list(args), env={**NO_ENV, **(env or {})})


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project folder whose pond.yaml names ./.pond, with a subfolder; cwd is it."""
    (tmp_path / "pond.yaml").write_text("pond: ./.pond\nnodes: {}\n")
    (tmp_path / "notebooks" / "deep").mkdir(parents=True)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_init_creates_the_pond_pond_yaml_names(project: Path) -> None:
    result = invoke("init")
    assert result.exit_code == 0, result.output
    assert result.stdout == f"created pond at {project / '.pond'}\n"
    assert (project / ".pond" / "oplog" / "_delta_log").is_dir()


def test_every_command_finds_the_pond_from_a_subfolder(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert invoke("init").exit_code == 0
    assert invoke("mkdir", "/raw").exit_code == 0
    monkeypatch.chdir(project / "notebooks" / "deep")
    listing = invoke("list")
    assert listing.exit_code == 0, listing.output
    assert listing.stdout == "/raw/\n"
    log = invoke("log", "--format", "json")
    assert log.exit_code == 0
    assert '"mkdir /raw"' in log.stdout
    sql = invoke("sql", "SELECT 41 + 1 AS answer", "--format", "csv")
    assert sql.exit_code == 0
    assert sql.stdout == '"answer"\n42\n'


def test_pond_and_pond_config_come_first(project: Path, tmp_path_factory) -> None:
    assert invoke("init").exit_code == 0
    other = tmp_path_factory.mktemp("other")
    assert invoke("--pond", str(other / "p"), "init").exit_code == 0
    assert invoke("--pond", str(other / "p"), "mkdir", "/given").exit_code == 0
    assert invoke("list", env={"POND": str(other / "p")}).stdout == "/given/\n"
    assert invoke("list").stdout == ""  # the project's own pond is still empty
    (other / "pond.yaml").write_text("pond: ./p\n")
    by_config = invoke("list", env={"POND_CONFIG": str(other / "pond.yaml")})
    assert by_config.stdout == "/given/\n"


def test_a_pond_yaml_naming_a_missing_pond_says_to_init(project: Path) -> None:
    result = invoke("list")
    assert result.exit_code == 1
    assert error_line(result) == f"{project / '.pond'}: no pond here; create one with `pond init`"


def test_an_unreadable_pond_yaml_is_named(project: Path) -> None:
    (project / "pond.yaml").write_text("pond: [unclosed\n")
    result = invoke("list")
    assert result.exit_code == 2
    assert error_line(result).startswith(f"{project / 'pond.yaml'}: cannot read it to find the")
    assert error_line(result).endswith("fix the file, or pass --pond PATH")
