"""Write failures of the storage (issue 12): a full disk, a read-only pond, no permission.

Each is one ``Error:`` line naming the pond, what was being written and what to do,
exit 1, no traceback and no Rust panic text on stderr (delta-rs prints one from a worker
thread when a commit meets a full disk: ``capfd`` sees file descriptor 2, where Rust
writes), and the pond unchanged, readable and clean for ``pond verify``.

The full disk is a 4 MiB tmpfs and the read-only pond a read-only bind mount: both
need ``mount`` (root, or CAP_SYS_ADMIN); the tests skip, saying so, where it fails.
"""

import errno
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from pond_pipeline.api import Pond
from pond_pipeline.cli.main import cli
from pond_pipeline.errors import ConfigError, StorageError
from pond_pipeline.store import oplog as oplog_module
from pond_pipeline.store.io_errors import storage_error

PANIC_TEXT = ("panicked", "stack backtrace", "RUST_BACKTRACE", "tokio-rt-worker")
TMPFS_BYTES = 4 * 1024 * 1024


def _mount(*args: str) -> None:
    subprocess.run(["mount", *args], check=True, capture_output=True, text=True)


def _unmount(folder: Path) -> None:
    result = subprocess.run(["umount", str(folder)], capture_output=True, check=False)
    if result.returncode != 0:  # still busy: detach it now, the kernel frees it later
        subprocess.run(["umount", "-l", str(folder)], capture_output=True, check=False)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 4 MiB tmpfs, unmounted afterwards."""
    folder = tmp_path / "disk"
    folder.mkdir()
    try:
        _mount("-t", "tmpfs", "-o", f"size={TMPFS_BYTES}", "tmpfs", str(folder))
    except (OSError, subprocess.CalledProcessError) as exc:
        detail = getattr(exc, "stderr", "") or exc
        pytest.skip(f"cannot mount a tmpfs here (needs root or CAP_SYS_ADMIN): {detail}")
    try:
        yield folder
    finally:
        _unmount(folder)


@pytest.fixture
def read_only_view(tmp_path: Path) -> Iterator[Callable[[Path], Path]]:
    """``read_only_view(folder)``: the folder seen through a read-only bind mount."""
    mounted: list[Path] = []

    def view(folder: Path) -> Path:
        target = tmp_path / f"ro{len(mounted)}"
        target.mkdir()
        try:
            _mount("--bind", str(folder), str(target))
        except (OSError, subprocess.CalledProcessError) as exc:
            detail = getattr(exc, "stderr", "") or exc
            pytest.skip(f"cannot bind-mount here (needs root or CAP_SYS_ADMIN): {detail}")
        mounted.append(target)
        try:
            _mount("-o", "remount,bind,ro", str(target))
        except subprocess.CalledProcessError as exc:
            pytest.skip(f"cannot remount a bind mount read-only here: {exc.stderr}")
        return target

    try:
        yield view
    finally:
        for target in reversed(mounted):
            _unmount(target)


def pond_cli(root: Path, *args: str) -> Result:
    return CliRunner().invoke(cli, ["--pond", str(root), *args], catch_exceptions=False)


def one_error(result: Result, stderr_fd: str = "") -> str:
    """A failed command's single ``Error:`` line: exit 1, no traceback, no panic text
    (on the CLI's stderr nor on file descriptor 2)."""
    everything = result.stderr + stderr_fd
    assert result.exit_code == 1, (result.exit_code, result.stdout, everything)
    assert "Traceback" not in everything, everything
    for text in PANIC_TEXT:
        assert text not in everything, everything
    lines = [line for line in result.stderr.splitlines() if line.startswith("Error: ")]
    assert len(lines) == 1, everything
    return lines[0].removeprefix("Error: ")


def assert_clean(root: Path) -> None:
    """The pond reads and verifies cleanly (no problem, and nothing left to collect)."""
    assert pond_cli(root, "list").exit_code == 0
    result = pond_cli(root, "verify")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.startswith("ok: "), result.stdout
    assert "no commit references" not in result.stderr, result.stderr


def fill(disk: Path, leave: int) -> Path:
    """Fill ``disk`` up to ``leave`` bytes free; returns the filler file."""
    filler = disk / "filler"
    stat = os.statvfs(disk)
    free = stat.f_bavail * stat.f_frsize
    with filler.open("ab") as handle:
        handle.write(b"\0" * max(free - leave, 0))
    return filler


def payload(index: int, size: int) -> bytes:
    return os.urandom(16) * (size // 16) + bytes([index % 256]) * (size % 16)


# -- a full disk ---------------------------------------------------------------------------
def test_copies_filling_the_disk_end_with_one_clean_error(
    small_disk: Path, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """``pond copy`` until the disk is full: the copies that succeeded read back
    exactly, the one that did not is one Error line, the pond verifies clean."""
    root = small_disk / "pond"
    assert pond_cli(root, "init").exit_code == 0
    host = tmp_path / "host"
    host.mkdir()
    stored: dict[str, bytes] = {}
    failure = None
    for index in range(40):
        data = payload(index, 300_000)
        source = host / f"f{index}.bin"
        source.write_bytes(data)
        capfd.readouterr()
        result = pond_cli(root, "copy", str(source), f"/f{index}.bin", "--type", "data")
        if result.exit_code == 0:
            stored[f"/f{index}.bin"] = data
            assert f"f{index}.bin -> file:data version 1" in result.stderr
            continue
        failure = one_error(result, capfd.readouterr().err)
        assert "-> file:data" not in result.stderr  # no success line for a failed commit
        break
    assert failure is not None, "the disk never filled up"
    assert stored, "not even one copy fitted"
    assert failure.startswith(f"{root}: cannot "), failure
    assert "no space left" in failure, failure
    assert "free space there and retry" in failure, failure
    assert failure.endswith("the pond is unchanged"), failure
    assert_clean(root)
    pond = Pond.open(str(root))
    assert len(pond.log()) == 1 + len(stored)
    for path, data in stored.items():
        assert pond.read_bytes(path) == data
    assert list(pond.location.scratch.glob("*")) == []  # no scratch file left behind


@pytest.mark.parametrize("leave_kib", [0, 4, 8, 12, 16, 24])
def test_a_commit_on_a_full_disk(
    small_disk: Path, leave_kib: int, capfd: pytest.CaptureFixture[str]
) -> None:
    """Whatever step runs out of space (the lock, the data file, the commit, the
    checksums): success, or one Error line and the pond unchanged; never panic text."""
    root = small_disk / "pond"
    assert pond_cli(root, "init").exit_code == 0
    filler = fill(small_disk, leave_kib * 1024)
    capfd.readouterr()
    result = pond_cli(root, "mkdir", "/a")
    fd_err = capfd.readouterr().err
    for text in PANIC_TEXT:
        assert text not in fd_err + result.stderr
    filler.unlink()
    if result.exit_code == 0:
        assert [i.path for i in Pond.open(str(root)).list_nodes()] == ["/a"]
    else:
        line = one_error(result, fd_err)
        assert line.startswith(f"{root}: cannot write"), line
        assert "no space left on its file system; free space there and retry" in line
        assert Pond.open(str(root)).list_nodes() == []
        assert len(Pond.open(str(root)).log()) == 1
    result = pond_cli(root, "verify")
    assert result.exit_code == 0, result.stderr
    # with space again, the pond takes writes
    assert pond_cli(root, "mkdir", "-p", "/a").exit_code == 0


def test_the_commit_itself_fails_without_panic_text(
    small_disk: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """4 KiB free: the lock and the checks pass, the Delta commit fails (delta-rs then
    panics in a worker thread: its report must not reach stderr)."""
    root = small_disk / "pond"
    assert pond_cli(root, "init").exit_code == 0
    filler = fill(small_disk, 4096)
    capfd.readouterr()
    result = pond_cli(root, "mkdir", "/a")
    line = one_error(result, capfd.readouterr().err)
    assert line == (
        f"{root}: cannot write the oplog commit: no space left on its file system; "
        "free space there and retry; the pond is unchanged"
    )
    filler.unlink()
    assert_clean(root)


def test_the_real_cli_on_a_full_disk(small_disk: Path, tmp_path: Path) -> None:
    """The installed ``pond`` in a process of its own: stderr is exactly one line."""
    root = small_disk / "pond"
    assert pond_cli(root, "init").exit_code == 0
    filler = fill(small_disk, 4096)
    command = [str(Path(sys.executable).parent / "pond"), "--pond", str(root), "mkdir", "/a"]
    done = subprocess.run(command, capture_output=True, text=True, check=False, timeout=120)
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        f"Error: {root}: cannot write the oplog commit: no space left on its file system; "
        "free space there and retry; the pond is unchanged"
    ], done.stderr
    source = tmp_path / "big.bin"
    source.write_bytes(payload(1, 6_000_000))
    filler.unlink()
    command[-2:] = ["copy", str(source), "/big.bin", "--type", "data"]
    done = subprocess.run(command, capture_output=True, text=True, check=False, timeout=120)
    assert done.returncode == 1
    assert len(done.stderr.splitlines()) == 1, done.stderr
    assert done.stderr.startswith(f"Error: {root}: cannot write"), done.stderr
    assert "no space left" in done.stderr
    assert_clean(root)


@pytest.mark.parametrize("leave_kib", [0, 16, 128, 512])
def test_a_csv_import_on_a_full_disk(
    small_disk: Path, tmp_path: Path, leave_kib: int, capfd: pytest.CaptureFixture[str]
) -> None:
    """The CSV's copy or its conversion to Parquet runs out of space: a storage error,
    not "not a readable CSV" (bad input, exit 2)."""
    root = small_disk / "pond"
    assert pond_cli(root, "init").exit_code == 0
    source = tmp_path / "big.csv"
    rows = (f"2024-01-01 00:00:{i % 60:02d},{i * 7919 % 100003},{i}.5" for i in range(120_000))
    source.write_text("ts,a,b\n" + "\n".join(rows) + "\n")
    filler = fill(small_disk, leave_kib * 1024)
    capfd.readouterr()
    result = pond_cli(root, "copy", str(source), "/big.series", "--type", "series")
    fd_err = capfd.readouterr().err
    filler.unlink()
    if result.exit_code == 0 and leave_kib:  # it fitted
        assert Pond.open(str(root)).read_table("/big.series").num_rows == 120_000
    else:
        line = one_error(result, fd_err)
        assert line.startswith(f"{root}: cannot "), line
        assert "no space left on its file system; free space there and retry" in line, line
        assert len(Pond.open(str(root)).log()) == 1
    assert_clean(root)
    assert list((root / "tmp").glob("*")) == []


def test_gc_frees_space_on_a_full_disk(small_disk: Path) -> None:
    """The write lock works with no space left, so `pond gc` can remove what failed
    writes left (here: a blob no version references)."""
    root = small_disk / "pond"
    assert pond_cli(root, "init").exit_code == 0
    Pond.open(str(root)).blobs.put_bytes(payload(3, 500_000))
    fill(small_disk, 0)
    result = pond_cli(root, "gc")
    assert result.exit_code == 0, result.stderr
    assert "removed 1 unreferenced blob" in result.stdout
    assert os.statvfs(small_disk).f_bavail > 0


@pytest.mark.parametrize("leave_kib", [0, 4, 8, 16, 32, 64])
def test_init_on_a_full_disk(
    small_disk: Path, leave_kib: int, capfd: pytest.CaptureFixture[str]
) -> None:
    """``pond init`` that runs out of space: one Error line and no half-made pond, so
    that it can be run again once there is space."""
    root = small_disk / "pond"
    filler = fill(small_disk, leave_kib * 1024)
    capfd.readouterr()
    result = pond_cli(root, "init")
    fd_err = capfd.readouterr().err
    filler.unlink()
    if result.exit_code == 0:  # it fitted, maybe but for the checksums (gc records them)
        assert pond_cli(root, "gc").exit_code == 0
        assert_clean(root)
        return
    line = one_error(result, fd_err)
    assert line.startswith(f"{root}: cannot write"), line
    assert "no space left on its file system" in line
    assert line.endswith("no pond was created")
    assert not root.exists()
    assert pond_cli(root, "init").exit_code == 0
    assert_clean(root)


# -- a read-only pond ----------------------------------------------------------------------
WRITERS = {
    "copy": ["copy", "{host}/more.csv", "/more.csv"],
    "mkdir": ["mkdir", "/new"],
    "rm": ["rm", "/notes.txt"],
    "ln": ["ln", "/notes.txt", "/link"],
    "mknod": ["mknod", "sql_derived_series", "/hot.series", "--config", "{host}/hot.yaml"],
    "apply": ["apply", "{host}/pond.yaml"],
    "gc": ["gc"],
}


@pytest.fixture
def read_only_pond(
    tmp_path: Path, read_only_view: Callable[[Path], Path]
) -> tuple[Path, Path, Path]:
    """A pond with a data file, a series and a dynamic node, seen read-only: (the
    read-only pond, its writable original, the host folder of the inputs)."""
    host = tmp_path / "host"
    host.mkdir()
    (host / "more.csv").write_text("ts,v\n2024-01-01 00:00:00,1\n")
    (host / "notes.txt").write_text("notes\n")
    (host / "hot.yaml").write_text("source: /t.series\nquery: SELECT * FROM source\n")
    folder = tmp_path / "ponds"
    original = folder / "pond"
    assert pond_cli(original, "init").exit_code == 0
    assert pond_cli(original, "copy", str(host / "notes.txt"), "/notes.txt").exit_code == 0
    series = pond_cli(original, "copy", str(host / "more.csv"), "/t.series", "--type", "series")
    assert series.exit_code == 0, series.stderr
    config = str(host / "hot.yaml")
    node = pond_cli(original, "mknod", "sql_derived_series", "/d.series", "--config", config)
    assert node.exit_code == 0, node.stderr
    view = read_only_view(folder) / "pond"
    (host / "pond.yaml").write_text(
        f"pond: {view}\nnodes:\n  /z.series:\n    factory: sql_derived_series\n"
        "    config: {source: /t.series, query: SELECT * FROM source}\n"
    )
    return view, original, host


@pytest.mark.parametrize("command", sorted(WRITERS))
def test_every_writer_on_a_read_only_pond(
    command: str, read_only_pond: tuple[Path, Path, Path], capfd: pytest.CaptureFixture[str]
) -> None:
    view, original, host = read_only_pond
    before = Pond.open(str(original)).log()
    args = [arg.format(host=host) for arg in WRITERS[command]]
    result = pond_cli(view, *args)
    line = one_error(result, capfd.readouterr().err)
    assert line == (
        f"{view}: cannot take the write lock (write.lock): its file system is read-only; "
        "remount it writable to change the pond (reading it works); the pond is unchanged"
    )
    assert Pond.open(str(original)).log() == before


def test_readers_on_a_read_only_pond(read_only_pond: tuple[Path, Path, Path]) -> None:
    """Static files, SQL over them, the log and verify work; a dynamic node never read
    before would be computed into cache/: one Error line saying so."""
    view, _, _ = read_only_pond
    assert pond_cli(view, "list").stdout.split() == ["/d.series", "/notes.txt", "/t.series"]
    assert pond_cli(view, "cat", "/notes.txt").stdout == "notes\n"
    result = pond_cli(view, "cat", "/t.series", "--sql", "SELECT sum(v) AS s FROM source")
    assert result.exit_code == 0, result.stderr
    assert "1" in result.stdout
    result = pond_cli(view, "sql", "SELECT count(*) AS n FROM '/t.series'", "--format", "csv")
    assert result.stdout.splitlines() == ['"n"', "1"], result.stderr
    for args in (["log"], ["verify"], ["describe", "/t.series"], ["cache", "stats"]):
        assert pond_cli(view, *args).exit_code == 0, args
    line = one_error(pond_cli(view, "cat", "/d.series"))
    assert line.startswith(f"{view}: cannot write the cache (cache"), line
    assert "its file system is read-only; a dynamic node read for the first time" in line


# -- the error itself ----------------------------------------------------------------------
def test_the_storage_errors_named(tmp_path: Path) -> None:
    root = tmp_path / "pond"
    denied = PermissionError(errno.EACCES, "Permission denied", str(root / "blobs" / "ab"))
    error = storage_error(denied, pond="p", root=root)
    assert isinstance(error, StorageError)
    assert error.errno == errno.EACCES
    assert error.message == (
        "p: cannot write a blob (blobs/ab): permission denied; fix the permissions of "
        f"{root / 'blobs' / 'ab'} and retry; the pond is unchanged"
    )
    host = PermissionError(errno.EACCES, "Permission denied", "/elsewhere/a.csv")
    assert storage_error(host, pond="p", root=root).reason == (  # type: ignore[union-attr]
        "cannot access /elsewhere/a.csv: permission denied"
    )
    delta = OSError("Generic LocalFileSystem error\n ↳ No space left on device (os error 28)")
    error = storage_error(delta, pond="p", root=root, writing="the oplog commit")
    assert error is not None
    assert error.reason.startswith("cannot write the oplog commit: no space")
    duck = RuntimeError('IO Error: Could not write file "/x/tmp/a.parquet": Read-only file system')
    wrapped = ConfigError("not a readable CSV: ...")
    wrapped.__cause__ = duck
    error = storage_error(wrapped, pond="p", root=root)
    assert error is not None
    assert error.errno == errno.EROFS
    # a pond message that quotes user data is not taken for the storage failing
    assert storage_error(ConfigError("column 'Permission denied (os error 13)'"), pond="p") is None
    assert storage_error(FileNotFoundError(errno.ENOENT, "gone", "x"), pond="p") is None


def test_rust_panic_reports_do_not_reach_stderr(capfd: pytest.CaptureFixture[str]) -> None:
    capfd.readouterr()
    with oplog_module.rust_panics_silenced():
        os.write(2, b"a warning worth keeping\n")
        os.write(2, b"\nthread 'tokio-rt-worker' (7) panicked at src/buffered.rs:369:41:\n")
        os.write(2, b"Already shut down\nstack backtrace:\nnote: Some details are omitted\n")
    assert capfd.readouterr().err == "a warning worth keeping\n"
    with oplog_module.rust_panics_silenced():
        pass
    assert capfd.readouterr().err == ""


def test_a_success_line_only_after_the_commit(
    pond_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``copy`` prints what it imported once the transaction committed, not before."""
    Pond.create(str(pond_path))
    source = tmp_path / "a.txt"
    source.write_text("a\n")

    def refuse(*args: object, **kwargs: object) -> int:
        raise StorageError("cannot write the oplog commit: no space left", subject="p")

    monkeypatch.setattr(oplog_module.Oplog, "append", refuse)
    result = pond_cli(pond_path, "copy", str(source), "/a.txt")
    assert one_error(result) == "p: cannot write the oplog commit: no space left"
    assert "->" not in result.stderr
