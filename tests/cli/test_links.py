"""A symlink followed to nothing is a ``DanglingLinkError`` naming the link and its
target (issue 13, item 8); ``PondTransaction.symlink`` and ``Pond.exists`` tell whether
a new link's target exists (a link to nothing is allowed, as in POSIX)."""

import json

import pytest

from pond_pipeline.errors import DanglingLinkError, NotFoundError


def dangling(link: str, target: str) -> str:
    return (
        f"{link}: symbolic link to {target}, which does not exist; create {target}, "
        f"or point the link elsewhere: `pond rm {link} && pond ln TARGET {link}`"
    )


@pytest.fixture
def north(pond, sample):
    """``/sites/north/`` holding a table, and ``/latest -> /sites/north``."""
    with pond.transaction("north") as tx:
        tx.mkdir("/sites/north", parents=True)
        tx.write_table("/sites/north/stations.table", sample.stations())
        tx.symlink("/latest", "/sites/north")
    return pond


def test_reading_through_a_link_whose_target_was_removed(run, north, error) -> None:
    assert run("rm", "-r", "/sites/north").exit_code == 0
    for args in (
        ("cat", "/latest"),
        ("cat", "/latest/stations.table"),
        ("list", "/latest/"),
        ("sql", "SELECT * FROM '/latest/stations.table'"),
    ):
        result = run(*args)
        assert result.exit_code == 1, args
        assert error(result) == dangling("/latest", "/sites/north"), args
    with pytest.raises(DanglingLinkError) as caught:
        north.node("/latest")
    assert isinstance(caught.value, NotFoundError)
    assert (caught.value.link, caught.value.target) == ("/latest", "/sites/north")
    assert north.describe("/latest")["target"] == "/sites/north"  # the link itself stays
    assert not north.exists("/latest")
    assert north.exists("/latest", at=2)  # before the rm


def test_a_missing_file_below_a_live_link_is_not_the_links_fault(run, north, error) -> None:
    result = run("cat", "/latest/nope.table")
    assert result.exit_code == 1
    assert error(result) == "/sites/north/nope.table: no such file or directory"


def test_the_dangling_link_of_a_chain_is_named(run, pond, error) -> None:
    with pond.transaction("links") as tx:
        tx.symlink("/a", "/b")
        tx.symlink("/b", "/missing")
    result = run("cat", "/a")
    assert result.exit_code == 1
    assert error(result) == dangling("/b", "/missing")


def test_a_relative_target_is_shown_absolute(run, north, error) -> None:
    with north.transaction("rel") as tx:
        assert tx.symlink("/sites/south", "../gone/south") is False
    result = run("cat", "/sites/south")
    assert error(result) == dangling("/sites/south", "/gone/south")


def test_symlink_tells_whether_its_target_exists(run, pond, sample) -> None:
    with pond.transaction("ln") as tx:
        assert tx.symlink("/l2", "/nope") is False
        assert tx.symlink("/loop", "/loop") is False  # too many levels: nothing there
        tx.write_table("/nope", sample.stations())
        assert tx.symlink("/l3", "/nope") is True  # the transaction's own changes count
        assert tx.symlink("/sub/../l4", "l3") is True  # relative to the link's directory
    assert pond.exists("/l2")
    assert pond.read_table("/l4").equals(sample.stations())
    assert not pond.exists("/nowhere")


def test_ln_to_a_missing_target_succeeds(run, pond, error) -> None:
    assert run("ln", "/nope", "/l2").exit_code == 0
    assert pond.node("/l2", follow=False).entry_type.short == "symlink"
    assert not pond.exists("/l2")
    assert error(run("cat", "/l2")) == dangling("/l2", "/nope")


def test_a_link_to_a_missing_child_of_a_dynamic_directory(run, pond, error) -> None:
    with pond.transaction("inbox") as tx:
        tx.write_bytes("/inbox/north.csv", b"station,height\nnorth,12\n", parents=True)
    pond.create_dynamic("/tables", "csv_directory", {"pattern": "/inbox/*.csv"})
    with pond.transaction("links") as tx:
        assert tx.symlink("/north", "/tables/north.table") is True
        assert tx.symlink("/south", "/tables/south.table") is False
    north = run("cat", "/north", "--format", "json")
    assert north.exit_code == 0, north.stderr
    assert json.loads(north.stdout) == [{"station": "north", "height": 12}]
    result = run("cat", "/south")
    assert result.exit_code == 1
    assert error(result) == dangling("/south", "/tables/south.table")
    below = run("cat", "/tables/north.table/x")
    assert error(below) == "/tables/north.table: not a directory"
