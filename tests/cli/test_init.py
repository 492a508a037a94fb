"""``pond init`` and finding the pond (``--pond`` / ``POND``)."""

from pathlib import Path

import pytest
from click.testing import CliRunner

from pond_pipeline.api import Pond
from pond_pipeline.cli.main import cli


def test_init_creates_an_empty_pond(run, pond_path: Path) -> None:
    result = run("init")
    assert result.exit_code == 0, result.stderr
    assert result.stdout == f"created pond at {pond_path}\n"
    pond = Pond.open(str(pond_path))
    assert [(t.txn_seq, t.command) for t in pond.log()] == [(1, "init")]
    assert pond.list_nodes() == []
    assert pond.inline_threshold == 64 * 1024


def test_init_with_an_inline_threshold(run, pond_path: Path) -> None:
    assert run("init", "--inline-threshold", "10").exit_code == 0
    assert Pond.open(str(pond_path)).inline_threshold == 10


def test_init_over_an_existing_pond_fails_and_changes_nothing(
    run, pond, pond_path: Path, pond_state, error
) -> None:
    pond.mkdir("/kept")
    before = pond_state()
    result = run("init")
    assert result.exit_code == 1
    assert result.stdout == ""
    assert error(result) == f"{pond_path}: a pond already exists here"
    assert pond_state() == before


@pytest.mark.parametrize(
    "command",
    [
        ["list"],
        ["log"],
        ["mkdir", "/a"],
        ["cat", "/a"],
        ["describe", "/a"],
        ["sql", "SELECT 1"],
        ["rm", "/a"],
        ["verify"],
        ["gc"],
        ["ln", "/a", "/b"],
    ],
)
def test_a_missing_pond(run, tmp_path: Path, error, command: list[str]) -> None:
    missing = tmp_path / "no-pond-here"
    result = run(*command, pond=missing)
    assert result.exit_code == 1
    assert error(result) == f"{missing}: no pond here; create one with `pond init`"
    assert not missing.exists()


def test_copy_into_a_missing_pond(run, tmp_path: Path, host_file, error) -> None:
    missing = tmp_path / "no-pond-here"
    result = run("copy", str(host_file("a.bin", b"x")), "/a.bin", pond=missing)
    assert result.exit_code == 1
    assert error(result).startswith(f"{missing}: no pond here")
    assert not missing.exists()


def test_the_pond_comes_from_the_environment(pond, pond_path: Path) -> None:
    pond.mkdir("/from-env")
    result = CliRunner().invoke(cli, ["list"], env={"POND": str(pond_path)})
    assert result.exit_code == 0
    assert result.stdout == "/from-env/\n"


def test_no_pond_given(error, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # no pond.yaml here or above
    result = CliRunner().invoke(cli, ["list"], env={"POND": "", "POND_CONFIG": ""})
    assert result.exit_code == 2
    assert error(result) == (
        "no pond given; pass --pond PATH, set POND, or run where a pond.yaml says pond: PATH"
    )


def test_debug_shows_the_traceback(run, tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["--pond", str(tmp_path / "none"), "--debug", "list"])
    assert result.exit_code == 1
    assert type(result.exception).__name__ == "NotFoundError"
