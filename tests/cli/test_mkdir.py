"""``pond mkdir [-p]`` and ``pond ln``."""

from pond_pipeline.factory import EntryType


def test_mkdir(run, pond) -> None:
    result = run("mkdir", "/a")
    assert result.exit_code == 0, result.stderr
    assert result.stdout == ""
    assert pond.node("/a").entry_type is EntryType.DIRECTORY
    assert pond.log()[0].command == "mkdir /a"
    assert pond.log()[0].paths == ["/a"]


def test_mkdir_parents(run, pond) -> None:
    assert run("mkdir", "-p", "/a/b/c").exit_code == 0
    assert [i.path for i in pond.list_nodes()] == ["/a", "/a/b", "/a/b/c"]
    assert len(pond.log()) == 2  # one transaction for all three
    assert run("mkdir", "-p", "/a/b").exit_code == 0  # exists: fine with -p
    assert run("mkdir", "--parents", "/a/b/c/d").exit_code == 0
    assert pond.node("/a/b/c/d").entry_type is EntryType.DIRECTORY


def test_mkdir_without_parent(run, pond, pond_state, error) -> None:
    before = pond_state()
    result = run("mkdir", "/a/b")
    assert result.exit_code == 1
    assert (
        error(result)
        == "/a: parent directory does not exist; create it first (mkdir -p) or pass -p"
    )
    assert pond_state() == before


def test_mkdir_over_an_existing_path(run, sample_pond, sample, pond_state, error) -> None:
    before = pond_state()
    for path in (sample.directory, sample.data, sample.series):
        result = run("mkdir", path)
        assert result.exit_code == 1
        assert error(result) == f"{path}: already exists; choose another name"
    result = run("mkdir", "-p", sample.data)
    assert result.exit_code == 1
    assert error(result) == f"{sample.data}: already exists; choose another name"
    assert pond_state() == before


def test_mkdir_below_a_file(run, sample_pond, sample, pond_state, error) -> None:
    before = pond_state()
    result = run("mkdir", f"{sample.data}/sub")
    assert result.exit_code == 1
    assert error(result) == f"{sample.data}: not a directory"
    result = run("mkdir", "-p", f"{sample.table}/sub/deeper")
    assert result.exit_code == 1
    assert error(result) == f"{sample.table}: not a directory"
    assert pond_state() == before


def test_ln_absolute_and_relative(run, sample_pond, sample) -> None:
    assert run("ln", sample.table, "/stations").exit_code == 0
    assert run("ln", "../notes.txt", "/sensors/notes").exit_code == 0
    assert sample_pond.read_table("/stations").equals(sample.stations())
    assert sample_pond.read_bytes("/sensors/notes") == sample.notes
    assert sample_pond.describe("/stations")["target"] == sample.table
    assert sample_pond.describe("/sensors/notes")["target"] == sample.data
    assert (
        sample_pond.node(
            "/stations",
        ).entry_type
        is EntryType.TABLE
    )


def test_ln_onto_an_existing_path(run, sample_pond, sample, pond_state, error) -> None:
    before = pond_state()
    result = run("ln", sample.table, sample.data)
    assert result.exit_code == 1
    assert error(result) == f"{sample.data}: already exists"
    result = run("ln", sample.table, "/missing/link")
    assert result.exit_code == 1
    assert error(result).startswith("/missing: parent directory does not exist")
    assert pond_state() == before


def test_a_dangling_link_reads_as_not_found(run, pond, error) -> None:
    made = run("ln", "/nowhere", "/dangling")
    assert made.exit_code == 0
    assert made.stderr == "warning: /dangling -> /nowhere: /nowhere does not exist (yet)\n"
    result = run("cat", "/dangling")
    assert result.exit_code == 1
    assert error(result) == (
        "/dangling: symbolic link to /nowhere, which does not exist; create /nowhere, "
        "or point the link elsewhere: `pond rm /dangling && pond ln TARGET /dangling`"
    )


def test_relative_paths_start_at_the_root(run, pond, pond_state, error) -> None:
    assert run("mkdir", "a").exit_code == 0
    assert run("mkdir", "a/./b/../c").exit_code == 0
    assert [i.path for i in pond.list_nodes()] == ["/a", "/a/c"]
    before = pond_state()
    for escaping in ("..", "../a", "a/../../b", "/a/c/../../../d"):
        result = run("mkdir", "-p", escaping)
        assert result.exit_code == 2
        assert error(result) == f"{escaping}: path escapes the pond's root; remove the extra '..'"
    assert pond_state() == before
