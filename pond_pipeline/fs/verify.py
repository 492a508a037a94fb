"""``pond verify`` and ``pond gc`` over a whole pond: what is damaged, and what is left over.

``verify_pond`` checks every stored part: the oplog's files (``store.integrity``),
every blob against its sha256, that every listing decodes and names live nodes, and
(given the check) the cache's entries against their recorded sha256.
What interrupted writers leave behind (unreferenced blobs, oplog files no commit
references, commits without checksums) is a note, which ``collect_garbage`` clears.
"""

from collections.abc import Callable
from dataclasses import dataclass, field

from pond_pipeline import paths
from pond_pipeline.errors import CorruptionError, PondError
from pond_pipeline.factory import EntryType
from pond_pipeline.fs.nodes import ROOT_ID, decode_listing
from pond_pipeline.fs.tree import Snapshot
from pond_pipeline.store.blobs import BlobStore, sha256_file
from pond_pipeline.store.integrity import OplogCheck
from pond_pipeline.store.location import PondLocation
from pond_pipeline.store.lock import write_lock
from pond_pipeline.store.oplog import Oplog

SCRATCH_MAX_AGE = 3600.0
"""Seconds after which ``gc`` takes a temporary file for the leftover of a dead writer."""

LoadSnapshot = Callable[[], Snapshot]
"""The pond's latest snapshot, read afresh from the oplog (not a cached one)."""


@dataclass
class VerifyReport:
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    unreferenced_blobs: list[str] = field(default_factory=list)
    damaged_cache: list[str] = field(default_factory=list)
    """Cache entries (relative to ``cache/``) failing their checksum."""
    checked: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems


def verify_pond(
    oplog: Oplog,
    blobs: BlobStore,
    load_snapshot: LoadSnapshot,
    damaged_cache: Callable[[], list[str]] | None = None,
) -> VerifyReport:
    """Check every stored part: the oplog's files (commits, checkpoints, data files,
    inline payloads), every blob's checksum, and that every listing entry is live;
    ``damaged_cache`` lists the cache entries that fail their checksum.

    Problems name the node and version, or the damaged file. Unreferenced blobs and
    files left by interrupted commits are notes: `gc` removes them. A damaged cache
    entry is a note too: the cache is derived, and a damaged entry is never served (a
    read drops and recomputes it), so nothing stored is lost; `pond cache clear`
    removes it.
    """
    report = VerifyReport()
    if damaged_cache is not None:
        report.damaged_cache = damaged_cache()
        if report.damaged_cache:
            report.notes.append(
                f"{len(report.damaged_cache)} damaged cache entr"
                f"{'y' if len(report.damaged_cache) == 1 else 'ies'} "
                f"(cache/{report.damaged_cache[0]}), never served: a read drops and "
                "recomputes it; `pond cache clear` removes them (damage there may mean "
                "a failing disk)"
            )
    found = oplog.integrity.check()
    try:
        snapshot: Snapshot | None = load_snapshot()
    except PondError as exc:
        snapshot = None
        if not found.problems:
            report.problems.append(exc.message)
    _report_oplog(found, snapshot, report)
    if snapshot is None:
        report.checked = found.rows
        return report
    _check_records(snapshot, blobs, report)
    _check_listings(snapshot, report)
    report.unreferenced_blobs = _unreferenced_blobs(snapshot, blobs)
    if report.unreferenced_blobs:
        report.notes.append(
            f"{len(report.unreferenced_blobs)} unreferenced blob(s), left by interrupted "
            "writes; `pond gc` removes them"
        )
    return report


def collect_garbage(
    oplog: Oplog,
    blobs: BlobStore,
    location: PondLocation,
    load_snapshot: LoadSnapshot,
    lock_timeout: float,
) -> list[str]:
    """Remove unreferenced blobs (under the write lock, so no writer is mid-flight),
    oplog files no commit references, and writers' temporary files over an hour old;
    record the checksums a writer killed right after its commit did not write.
    Returns the removed blobs. Nothing is removed while the oplog is damaged."""
    with write_lock(location.lock_file, lock_timeout, holder="gc"):
        found = oplog.integrity.check(data_files=False)
        if found.problems:  # a blob may be referenced by the part that cannot be read
            raise CorruptionError(
                f"gc removes nothing while the oplog is damaged: {found.problems[0]}",
                subject=location.uri,
                hint="run `pond verify`; repair the oplog first",
            )
        removed = _unreferenced_blobs(load_snapshot(), blobs)
        for sha in removed:
            blobs.remove(sha)
        oplog.integrity.remove_orphans(found)
        oplog.integrity.record_missing_checksums(found)
        blobs.remove_stale_scratch(SCRATCH_MAX_AGE)
        return removed


def _report_oplog(found: OplogCheck, snapshot: Snapshot | None, report: VerifyReport) -> None:
    """The oplog's problems (a damaged row by its node's path, when the tree is
    readable) and notes."""
    for problem in found.problems:
        if problem.node_id is not None and snapshot is not None:
            label = _version_label(snapshot, problem.node_id, problem.version)
            where = f"oplog/{problem.file}"
            report.problems.append(f"{label}: {problem.reason.removeprefix('holds ')} in {where}")
        else:
            report.problems.append(f"{problem}; {problem.hint}")
    if found.orphans or found.leftovers:
        count = len(found.orphans) + len(found.leftovers)
        report.notes.append(
            f"{count} oplog file(s) no commit references, left by interrupted commits; "
            "`pond gc` removes them"
        )
    if found.unchecksummed:
        report.notes.append(
            f"{len(found.unchecksummed)} commit(s) have no recorded checksums (their "
            "writer stopped right after committing); `pond gc` records them"
        )


def _check_records(snapshot: Snapshot, blobs: BlobStore, report: VerifyReport) -> None:
    """Every version: its blob present and matching its sha256, its listing decodable."""
    for record in snapshot.all_records():
        report.checked += 1
        if record.blob:
            label = _version_label(snapshot, record.node_id, record.version)
            blob_path = blobs.path(record.blob)
            if not blob_path.is_file():
                report.problems.append(f"{label}: blob {record.blob} is missing")
            elif sha256_file(blob_path) != record.blob:
                report.problems.append(f"{label}: blob {record.blob} is damaged")
        if record.entry_type == EntryType.DIRECTORY.value and not record.is_dynamic:
            try:
                decode_listing(record.content)
            except PondError as exc:
                label = _version_label(snapshot, record.node_id, record.version)
                report.problems.append(f"{label}: {exc.reason}")


def _check_listings(snapshot: Snapshot, report: VerifyReport) -> None:
    """Every entry of a static directory's latest listing names a node with versions."""
    for record in snapshot.all_records():
        if record.entry_type != EntryType.DIRECTORY.value or record.is_dynamic:
            continue
        if snapshot.latest(record.node_id) is not record:
            continue
        try:
            listing = snapshot.listing(record.node_id)
        except PondError:
            continue  # reported by _check_records
        for name, entry in listing.items():
            if snapshot.latest(entry.node_id) is None:
                where = _path_hint(snapshot, record.node_id)
                report.problems.append(f"{paths.join(where, name)}: listed but has no versions")


def _unreferenced_blobs(snapshot: Snapshot, blobs: BlobStore) -> list[str]:
    referenced = {record.blob for record in snapshot.all_records() if record.blob}
    return [sha for sha in blobs.all_shas() if sha not in referenced]


def _version_label(snapshot: Snapshot, node_id: str, version: int | None) -> str:
    return f"{_path_hint(snapshot, node_id)} version {version}"


def _path_hint(snapshot: Snapshot, node_id: str) -> str:
    """Best-effort path of a node id (for messages), else the id."""
    if node_id == ROOT_ID:
        return "/"
    stack: list[tuple[str, str]] = [(ROOT_ID, "")]
    while stack:
        directory, prefix = stack.pop()
        record = snapshot.latest(directory)
        if record is None or record.is_dynamic or record.entry_type != EntryType.DIRECTORY.value:
            continue
        try:
            listing = snapshot.listing(directory)
        except PondError:  # a damaged listing: verify reports it
            continue
        for name, entry in listing.items():
            if entry.node_id == node_id:
                return f"{prefix}/{name}"
            stack.append((entry.node_id, f"{prefix}/{name}"))
    return f"node {node_id}"
