"""The installed ``pond`` script, in a subprocess: it runs, and never loads Dagster."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

POND = shutil.which("pond", path=str(Path(sys.executable).parent))

NO_DAGSTER = """
import sys
from click.testing import CliRunner
from pond_pipeline.cli.main import cli
for args in (["init"], ["mkdir", "/a"], ["list", "--long"], ["log"], ["verify"]):
    result = CliRunner().invoke(cli, ["--pond", sys.argv[1], *args])
    assert result.exit_code == 0, (args, result.output)
print(sorted(m for m in sys.modules if m.split(".")[0] in ("dagster", "pandera")))
"""


@pytest.mark.skipif(POND is None, reason="the pond script is not installed next to python")
def test_the_installed_script(tmp_path: Path) -> None:
    assert POND is not None
    where = str(tmp_path / "p")
    source = tmp_path / "a.csv"
    source.write_text("ts,v\n2024-01-01T00:00:00,1\n2024-01-01T01:00:00,2\n")

    def pond(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [POND, "--pond", where, *args], capture_output=True, text=True, timeout=60
        )

    assert pond("init").returncode == 0
    assert pond("copy", str(source), "/a.series", "--type", "series").returncode == 0
    cat = pond("cat", "/a.series", "--format", "json")
    assert cat.returncode == 0, cat.stderr
    assert [r["v"] for r in json.loads(cat.stdout)] == [1, 2]
    again = pond("init")
    assert again.returncode == 1
    assert again.stderr == f"Error: {where}: a pond already exists here\n"


def test_plain_commands_never_load_dagster(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", NO_DAGSTER, str(tmp_path / "p")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
