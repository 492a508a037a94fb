"""The integrity of the oplog's files: checksums recorded at commit, and checks of every part.

Delta and Parquet keep no checksum of their own: a flipped byte in a data file can
decode to a plausible, wrong value, or even abort a filtered scan. So right after each
commit the oplog records the sha256 of its files here (``record_checksums``), checks a
data file against it before Parquet reads it (``verify_data_files``), and asks
``check`` to name the damaged file when Delta fails. ``check``, ``remove_orphans`` and
``record_missing_checksums`` serve ``pond verify`` and ``pond gc``.

This module reads the files as files; what a row means is the oplog's (``RowCheck``).
"""

import json
import os
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pyarrow as pa
import pyarrow.parquet as pq

from pond_pipeline.errors import CorruptionError
from pond_pipeline.store.blobs import sha256_bytes, sha256_file
from pond_pipeline.store.location import PondLocation

LOG_FOLDER = "_delta_log"
CHECKSUM_FOLDER = "_pond_checksums"
"""``<version>.json`` per commit: the sha256 of the commit file (and its checkpoint) and
of each data file it added, written right after the commit; ``files/<name>.sha256``: one
data file's sha256 and its footer's, for reads (text, so not named ``.parquet`` like the
data file: ponds made before this name it ``files/<name>``, still read, renamed by gc)."""
SIDECAR_SUFFIX = ".sha256"
_COMMIT_NAME = re.compile(r"^(\d{20})\.json$")
_CHECKPOINT_NAME = re.compile(r"^(\d{20})\.checkpoint(?:\.\d+\.\d+)?\.parquet$")
_TEMP_NAME = re.compile(r"^\.|^_commit_|\.tmp$|#\d+$")
"""Temporary files of a write interrupted before its rename (delta-rs: ``_commit_*``)."""
_RESTORE_HINT = "restore it from a backup"
_CHECKPOINT_HINT = (
    "a checkpoint only summarizes the JSON commits before it: delete it and "
    "_delta_log/_last_checkpoint, and the oplog is read from the commits"
)
_RECORDED_DIFFERS = "is damaged (its sha256 differs from the one recorded at commit)"
PARQUET_READ_ERRORS = (OSError, ValueError, TypeError, ArithmeticError, pa.ArrowException)
"""What reading a damaged Parquet file raises (besides aborting, which the footer
digest checked by ``verify_data_files`` prevents)."""

RowCheck = Callable[[dict[str, Any]], str | None]
"""The oplog's check of one row of a data file: raises (``ValueError``, ``TypeError``,
...) when no record can come from it, returns what is wrong with a record that does
(an inline payload that does not match its sha256), or ``None``."""

LiveFiles = Callable[[], dict[str, int | None]]
"""The live data files as Delta sees them (path → size): for a log whose replay is
incomplete. Raises ``CorruptionError`` when Delta cannot tell."""


@dataclass(frozen=True)
class OplogProblem:
    """A damaged part of the oplog: the file (relative to ``oplog/``) and what is wrong;
    for one row of a data file, also its node and version."""

    file: str
    reason: str
    hint: str = _RESTORE_HINT
    node_id: str | None = None
    version: int | None = None

    def __str__(self) -> str:
        return f"oplog/{self.file} {self.reason}"

    def as_error(self, subject: str) -> CorruptionError:
        """The error of a read that met this problem."""
        return CorruptionError(
            f"the oplog cannot be read: {self}",
            subject=subject,
            hint=f"{self.hint}; `pond verify` lists every damaged part",
        )


@dataclass
class OplogCheck:
    """What ``OplogIntegrity.check`` found. ``orphans`` are data files no commit ever
    added (a commit interrupted after writing them); ``leftovers`` are temporary files of
    interrupted commits (in ``_delta_log`` or ``_pond_checksums``). Neither is part of
    the table; ``remove_orphans`` deletes both."""

    problems: list[OplogProblem] = field(default_factory=list)
    orphans: list[str] = field(default_factory=list)
    leftovers: list[str] = field(default_factory=list)
    unchecksummed: list[int] = field(default_factory=list)
    """Commits without recorded checksums (their writer died right after committing)."""
    rows: int = 0


@dataclass
class _Replay:
    """The log replayed commit by commit: the live data files (path → size and rows as
    the log records them), every file ever added, the live files at each checkpoint."""

    live: dict[str, tuple[int | None, int | None]] = field(default_factory=dict)
    added: set[str] = field(default_factory=set)
    live_at: dict[int, frozenset[str]] = field(default_factory=dict)
    intact: bool = True
    """Whether every commit is there and readable (else ``live`` is incomplete)."""


class OplogIntegrity:
    """The checksums and checks of one pond's oplog files (``location.oplog``)."""

    def __init__(self, location: PondLocation, *, check_row: RowCheck, live_files: LiveFiles):
        self.location = location
        self.root = location.oplog
        self._check_row = check_row
        self._live_files = live_files
        self._verified_files: set[str] = set()  # data files checked against their sha256
        self._verified_footers: set[str] = set()  # ... their footer only

    # -- on the oplog's reads and commits -------------------------------------------------
    def record_checksums(self, version: int) -> None:
        """Write ``_pond_checksums/<version>.json`` for a commit that just landed (under
        the write lock). Best effort: the commit stands either way, and verify notes a
        commit without checksums."""
        folder = self.root / CHECKSUM_FOLDER
        commit = self.root / _commit_name(version)
        try:
            files = {path: sha256_file(self.root / path) for path in self._added_by(version)}
            record: dict[str, Any] = {"commit": sha256_file(commit), "files": files}
            checkpoint = commit.with_name(f"{version:020}.checkpoint.parquet")
            if checkpoint.is_file():  # written by the commit's post-commit hook
                record["checkpoint"] = sha256_file(checkpoint)
            (folder / "files").mkdir(parents=True, exist_ok=True)
            for path, sha in files.items():
                tail, tail_sha = _footer_digest(self.root / path)
                _write_atomically(self.sidecar(path), f"{sha} {tail} {tail_sha}")
            _write_atomically(folder / f"{version:020}.json", json.dumps(record, sort_keys=True))
        except (OSError, ValueError, KeyError):
            pass

    def verify_data_files(self, paths: Iterable[str], *, whole: bool) -> None:
        """Check data files against the checksums recorded at commit before Parquet
        reads them, once per process: the whole file, or (``whole=False``, cheap enough
        for every open) its footer, where a flipped byte can make pyarrow abort the
        process instead of raising (its statistics are read by filtered scans)."""
        for path in paths:
            if path in self._verified_files or (not whole and path in self._verified_footers):
                continue
            file = self.root / path
            try:
                sha, tail, tail_sha = self._read_sidecar(path).split()
                if whole:
                    intact = sha256_file(file) == sha
                else:
                    intact = (
                        file.stat().st_size >= int(tail) and _tail_sha(file, int(tail)) == tail_sha
                    )
            except FileNotFoundError:
                continue  # not recorded (or the data file is gone: the read reports it)
            except ValueError:
                intact = False  # a damaged checksum record: verify tells which
            if not intact:
                raise OplogProblem(path, _RECORDED_DIFFERS).as_error(self.location.uri)
            (self._verified_files if whole else self._verified_footers).add(path)

    def sidecar(self, path: str) -> Path:
        """The file holding data file ``path``'s sha256 and its footer's."""
        return self.root / CHECKSUM_FOLDER / "files" / (Path(path).name + SIDECAR_SUFFIX)

    def _read_sidecar(self, path: str) -> str:
        """``path``'s sidecar text, under its name or the one older ponds gave it."""
        try:
            return self.sidecar(path).read_text()
        except FileNotFoundError:
            return (self.root / CHECKSUM_FOLDER / "files" / Path(path).name).read_text()

    def rename_old_sidecars(self) -> list[str]:
        """Give the sidecars of older ponds (``files/<data file name>``, which ends in
        ``.parquet`` but is text) their name, ``<data file name>.sha256``; under the
        write lock (``pond gc``). Returns the old names."""
        index = self.root / CHECKSUM_FOLDER / "files"
        renamed = []
        for old in sorted(index.glob("*.parquet")) if index.is_dir() else []:
            new = old.with_name(old.name + SIDECAR_SUFFIX)
            if new.exists():
                old.unlink(missing_ok=True)
            else:
                os.replace(old, new)
            renamed.append(f"{CHECKSUM_FOLDER}/files/{old.name}")
        return renamed

    def first_damaged_file(self, paths: Iterable[str]) -> OplogProblem | None:
        """The first problem of the first damaged data file in ``paths`` (for a read
        that failed, to name the file)."""
        sums = _file_sums(self._recorded_checksums(OplogCheck()))
        for path in paths:
            found = self._check_data_file(path, None, None, sha=sums.get(path))
            if found:
                return found[0]
        return None

    # -- verify and gc --------------------------------------------------------------------
    def check(self, *, data_files: bool = True) -> OplogCheck:
        """Read every part of the oplog and report what is damaged, by file.

        The log: commits contiguous from 0, each one parseable JSON with as many
        add/remove actions as its metrics say; each checkpoint readable and equal to
        the commits it summarizes; ``_last_checkpoint`` naming one. With
        ``data_files``, every live data file: present, of the size the log records,
        readable to the end, with the recorded row count, and every inline payload
        matching its sha256 (a row's problem names its node and version).
        """
        result = OplogCheck()
        commits, checkpoints = self._list_log(result)
        if not commits:
            result.problems.append(OplogProblem(LOG_FOLDER, "holds no commit"))
            return result
        replay = _Replay()
        for version in range(max(commits) + 1):
            if version not in commits:
                reason = "is missing (a gap in the commits)"
                result.problems.append(OplogProblem(_commit_name(version), reason))
                replay.intact = False
        recorded = self._recorded_checksums(result)
        for version in sorted(v for v in recorded if v > max(commits)):
            name = _commit_name(version)
            if (self.root / name).exists():  # committed while this check ran
                continue
            reason = "is missing (its checksums were recorded when it was committed)"
            result.problems.append(OplogProblem(name, reason))
            replay.intact = False
        self._replay(commits, checkpoints, recorded, replay, result)
        for version, names in sorted(checkpoints.items()):
            found = self._check_checkpoint(version, names, replay.live_at.get(version))
            recorded_sum = recorded.get(version, {}).get("checkpoint")
            first = self.root / LOG_FOLDER / names[0]
            if not found and recorded_sum and sha256_file(first) != recorded_sum:
                reason = "is damaged (its sha256 differs from the one recorded when written)"
                found = [OplogProblem(f"{LOG_FOLDER}/{names[0]}", reason, _CHECKPOINT_HINT)]
            result.problems += found
        self._check_last_checkpoint(checkpoints, result)
        if replay.intact:
            on_disk = {
                str(path.relative_to(self.root))
                for path in self.root.rglob("*.parquet")
                if path.is_file()
                and not path.relative_to(self.root).parts[0].startswith(("_", "."))
            }
            result.orphans = sorted(on_disk - replay.added)
        if data_files:
            live = replay.live
            if not replay.intact:  # the log's replay is incomplete: take the files Delta sees
                try:
                    live = {path: (size, None) for path, size in self._live_files().items()}
                except CorruptionError:
                    return result
            file_sums = _file_sums(recorded)
            for path, (size, rows) in sorted(live.items()):
                result.problems += self._check_data_file(
                    path, size, rows, result, file_sums.get(path)
                )
        return result

    def remove_orphans(self, found: OplogCheck | None = None) -> list[str]:
        """Delete data files no commit references and leftovers of interrupted commits.

        Only under the pond's write lock (no commit is then in flight), and only when
        the whole log is readable (otherwise a damaged commit may reference them).
        ``found``: a ``check(data_files=False)`` made under the same lock.
        """
        found = found or self.check(data_files=False)
        if found.problems:
            return []
        removed = found.orphans + found.leftovers
        for name in removed:
            (self.root / name).unlink(missing_ok=True)
        self.rename_old_sidecars()
        return removed

    def record_missing_checksums(self, found: OplogCheck) -> list[int]:
        """Write the checksums a writer killed right after its commit did not get to
        write, for commits whose data files read cleanly. Under the write lock; ``found``:
        a ``check(data_files=False)`` made under it."""
        if found.problems:
            return []
        written = []
        for version in found.unchecksummed:
            if not any(self._check_data_file(path, None, None) for path in self._added_by(version)):
                self.record_checksums(version)
                written.append(version)
        return written

    # -- the parts ------------------------------------------------------------------------
    def _added_by(self, version: int) -> list[str]:
        """The data files commit ``version`` added."""
        actions = read_commit(self.root, version)
        return [unquote(a["add"]["path"]) for a in actions if "add" in a]

    def _list_log(self, into: OplogCheck) -> tuple[dict[int, str], dict[int, list[str]]]:
        """``_delta_log``'s commits (version → name) and checkpoints (version → part
        names); its leftovers go ``into`` a check."""
        log = self.root / LOG_FOLDER
        commits: dict[int, str] = {}
        checkpoints: dict[int, list[str]] = {}
        for entry in sorted(log.iterdir()) if log.is_dir() else []:
            if match := _COMMIT_NAME.match(entry.name):
                commits[int(match[1])] = entry.name
            elif match := _CHECKPOINT_NAME.match(entry.name):
                checkpoints.setdefault(int(match[1]), []).append(entry.name)
            elif _TEMP_NAME.search(entry.name) and entry.is_file():
                into.leftovers.append(f"{LOG_FOLDER}/{entry.name}")
        return commits, checkpoints

    def _replay(
        self,
        commits: dict[int, str],
        checkpoints: dict[int, list[str]],
        recorded: dict[int, dict[str, Any]],
        into: _Replay,
        result: OplogCheck,
    ) -> None:
        """Replay the commits ``into`` the live files, checking each commit file against
        its recorded sha256 and its metrics; a damaged one breaks the replay."""
        for version in sorted(commits):
            name = f"{LOG_FOLDER}/{commits[version]}"
            if version not in recorded:
                result.unchecksummed.append(version)
            elif sha256_file(self.root / name) != recorded[version]["commit"]:
                result.problems.append(OplogProblem(name, _RECORDED_DIFFERS))
            try:
                actions = _read_actions(self.root / name)
                _check_metrics(actions)
            except (OSError, ValueError) as exc:
                result.problems.append(OplogProblem(name, f"is damaged ({first_line(exc)})"))
                into.intact = False
                continue
            for action in actions:
                if "add" in action:
                    add = action["add"]
                    stats = json.loads(add.get("stats") or "{}")
                    into.live[unquote(add["path"])] = (add.get("size"), stats.get("numRecords"))
                    into.added.add(unquote(add["path"]))
                elif "remove" in action:
                    into.live.pop(unquote(action["remove"]["path"]), None)
            if into.intact and version in checkpoints:
                into.live_at[version] = frozenset(into.live)

    def _recorded_checksums(self, into: OplogCheck) -> dict[int, dict[str, Any]]:
        """``_pond_checksums``: version → {"commit": sha, "files": {path: sha}}."""
        folder = self.root / CHECKSUM_FOLDER
        recorded: dict[int, dict[str, Any]] = {}
        entries = sorted(folder.iterdir()) if folder.is_dir() else []
        index = folder / "files"
        for entry in sorted(index.iterdir()) if index.is_dir() else []:
            if entry.name.startswith("."):  # a write interrupted before its rename
                into.leftovers.append(f"{CHECKSUM_FOLDER}/files/{entry.name}")
        for entry in entries:
            name = f"{CHECKSUM_FOLDER}/{entry.name}"
            match = _COMMIT_NAME.match(entry.name)
            if entry == index:
                continue
            if match is None:
                if _TEMP_NAME.search(entry.name):
                    into.leftovers.append(name)
                continue
            try:
                value = json.loads(entry.read_text())
                if not isinstance(value.get("commit"), str) or not isinstance(
                    value.get("files"), dict
                ):
                    raise ValueError("not a checksum record")
            except (OSError, ValueError, AttributeError) as exc:
                into.problems.append(OplogProblem(name, f"is damaged ({first_line(exc)})"))
                continue
            recorded[int(match[1])] = value
        return recorded

    def _check_checkpoint(
        self, version: int, names: list[str], expected: frozenset[str] | None
    ) -> list[OplogProblem]:
        found: set[str] = set()
        for name in names:
            relative = f"{LOG_FOLDER}/{name}"
            try:
                table = pq.read_table(self.root / relative, columns=["add"])
                found |= {unquote(a["path"]) for a in table.column("add").to_pylist() if a}
            except (OSError, ValueError, KeyError, TypeError, pa.ArrowException) as exc:
                reason = f"is damaged ({first_line(exc)})"
                return [OplogProblem(relative, reason, _CHECKPOINT_HINT)]
        if expected is not None and found != expected:
            relative = f"{LOG_FOLDER}/{names[0]}"
            reason = "does not match the commits it summarizes"
            return [OplogProblem(relative, reason, _CHECKPOINT_HINT)]
        return []

    def _check_last_checkpoint(self, checkpoints: dict[int, list[str]], into: OplogCheck) -> None:
        """``_last_checkpoint``, if any, is readable and names a checkpoint."""
        last = self.root / LOG_FOLDER / "_last_checkpoint"
        if not last.exists():
            return
        name = f"{LOG_FOLDER}/_last_checkpoint"
        try:
            hinted = json.loads(last.read_text())["version"]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            reason = f"is damaged ({first_line(exc)})"
            into.problems.append(OplogProblem(name, reason, _CHECKPOINT_HINT))
            return
        written = last.with_name(f"{hinted:020}.checkpoint.parquet")
        if hinted not in checkpoints and not written.exists():  # (or written since)
            reason = f"names checkpoint {hinted}, which does not exist"
            into.problems.append(OplogProblem(name, reason, _CHECKPOINT_HINT))

    def _check_data_file(
        self,
        path: str,
        size: int | None,
        rows: int | None,
        into: OplogCheck | None = None,
        sha: str | None = None,
    ) -> list[OplogProblem]:
        """Problems of one data file; counts its rows ``into`` a check."""
        file = self.root / path
        try:
            actual = file.stat().st_size
        except FileNotFoundError:
            return [OplogProblem(path, "is missing")]
        if size is not None and actual != size:
            return [OplogProblem(path, f"is damaged ({actual} bytes, the log says {size})")]
        problems: list[OplogProblem] = []
        if sha is not None and sha256_file(file) != sha:
            problems.append(OplogProblem(path, _RECORDED_DIFFERS))
        count = 0
        try:
            parquet = pq.ParquetFile(file)
            for batch in parquet.iter_batches():
                count += batch.num_rows
                batch.validate(full=True)
                for row in batch.to_pylist():
                    if reason := self._check_row(row):
                        problems.append(
                            OplogProblem(
                                path, reason, node_id=row.get("node_id"), version=row.get("version")
                            )
                        )
        except PARQUET_READ_ERRORS as exc:
            return problems or [OplogProblem(path, f"is damaged ({first_line(exc)})")]
        if rows is not None and count != rows:
            problems.append(OplogProblem(path, f"is damaged ({count} rows, the log says {rows})"))
        if into is not None:
            into.rows += count
        return problems


def read_commit(root: Path, version: int) -> list[dict[str, Any]]:
    """The actions of Delta commit ``version`` of the table at ``root``."""
    return _read_actions(root / _commit_name(version))


def first_line(exc: BaseException) -> str:
    """An engine's message without its backtrace or debug dump."""
    text = str(exc).strip().splitlines()
    line = text[0] if text else type(exc).__name__
    return line if len(line) <= 200 else line[:197] + "..."


def _commit_name(version: int) -> str:
    return f"{LOG_FOLDER}/{version:020}.json"


def _read_actions(path: Path) -> list[dict[str, Any]]:
    """The actions of one Delta commit file (JSON lines)."""
    actions = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        action = json.loads(line)
        if not isinstance(action, dict) or len(action) != 1:
            raise ValueError(f"line {number} is not a Delta action")
        actions.append(action)
    if not actions:
        raise ValueError("no actions")
    return actions


def _check_metrics(actions: list[dict[str, Any]]) -> None:
    """A commit cut at a line boundary still parses: compare its action counts with
    the metrics in its ``commitInfo``."""
    info = next((a["commitInfo"] for a in actions if "commitInfo" in a), None)
    if info is None:
        raise ValueError("no commitInfo")
    metrics = info.get("operationMetrics") or {}
    for kind, keys in (
        ("add", ("num_added_files", "numFilesAdded")),
        ("remove", ("num_removed_files", "numFilesRemoved")),
    ):
        count = sum(1 for a in actions if kind in a)
        for key in keys:
            if key in metrics and int(metrics[key]) != count:
                raise ValueError(f"{count} {kind} actions, its metrics say {metrics[key]}")


def _file_sums(recorded: dict[int, dict[str, Any]]) -> dict[str, str]:
    """Data file path → sha256, over every recorded commit."""
    return {path: sha for r in recorded.values() for path, sha in r["files"].items()}


def _footer_digest(path: Path) -> tuple[int, str]:
    """How many bytes a Parquet file's footer takes at its end, and their sha256."""
    with path.open("rb") as handle:
        handle.seek(-8, os.SEEK_END)
        tail = 8 + int.from_bytes(handle.read(4), "little")
    return tail, _tail_sha(path, tail)


def _tail_sha(path: Path, length: int) -> str:
    with path.open("rb") as handle:
        handle.seek(-length, os.SEEK_END)
        return sha256_bytes(handle.read(length))


def _write_atomically(path: Path, text: str) -> None:
    temp = path.with_name(f".{path.name}.tmp")
    try:
        temp.write_text(text)
        os.replace(temp, path)
    except OSError:
        temp.unlink(missing_ok=True)  # a full disk: leave no half-written file
        raise
