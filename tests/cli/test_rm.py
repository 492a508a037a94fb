"""``pond rm [-r]``: gone now, readable with ``--at``."""

import io

import pyarrow.parquet as pq


def test_rm_a_file_keeps_its_history(run, sample_pond, sample, error) -> None:
    result = run("rm", sample.table)
    assert result.exit_code == 0, result.stderr
    assert error(run("cat", sample.table)) == f"{sample.table}: no such file or directory"
    assert sample.table not in run("list").stdout
    old = run("cat", sample.table, "--at", "4", "--format", "parquet")
    assert pq.read_table(io.BytesIO(old.stdout_bytes)).equals(sample.stations())
    assert sample.table in run("list", "--at", "4").stdout
    assert sample_pond.log()[0].command == f"rm {sample.table}"


def test_rm_recursive(run, sample_pond, sample, pond_state, error) -> None:
    before = pond_state()
    result = run("rm", sample.directory)
    assert result.exit_code == 1
    assert error(result) == f"{sample.directory}: directory not empty; use rm -r"
    assert pond_state() == before
    assert run("rm", "-r", sample.directory).exit_code == 0
    assert run("list").stdout.splitlines() == ["/latest", "/notes.txt"]
    assert error(run("cat", sample.link)) == (
        f"{sample.link}: symbolic link to {sample.series}, which does not exist; "
        f"create {sample.series}, or point the link elsewhere: "
        f"`pond rm {sample.link} && pond ln TARGET {sample.link}`"
    )
    at = run("cat", sample.series, "--at", "4", "--format", "parquet")
    assert pq.read_table(io.BytesIO(at.stdout_bytes)).num_rows == 12


def test_rm_a_symlink_removes_the_link_only(run, sample_pond, sample) -> None:
    assert run("rm", sample.link).exit_code == 0
    assert sample_pond.read_table(sample.series).num_rows == 12
    assert sample.link not in run("list").stdout


def test_rm_errors(run, sample_pond, pond_state, error) -> None:
    before = pond_state()
    for path, code, message in [
        ("/missing", 1, "/missing: no such file or directory"),
        ("/", 1, "/: cannot remove the root"),
        ("/..", 2, "/..: path escapes the pond's root; remove the extra '..'"),
    ]:
        result = run("rm", path)
        assert result.exit_code == code
        assert error(result) == message
    assert pond_state() == before


def test_a_path_can_be_reused_after_rm(run, sample_pond, sample, host_file) -> None:
    assert run("rm", sample.data).exit_code == 0
    assert run("copy", str(host_file("n.txt", "again")), sample.data).exit_code == 0
    assert run("cat", sample.data).stdout == "again"
    assert run("cat", sample.data, "--at", "4").stdout_bytes == sample.notes
