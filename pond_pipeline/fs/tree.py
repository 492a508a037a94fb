"""Reading the tree out of oplog records: snapshots, path walks, symlink following."""

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from functools import cached_property

from pond_pipeline import paths
from pond_pipeline.errors import ConflictError, DanglingLinkError, NotFoundError
from pond_pipeline.factory import EntryType
from pond_pipeline.fs.nodes import ROOT_ID, Listing, listing_of
from pond_pipeline.store.oplog import OplogRecord

MAX_SYMLINK_HOPS = 40


@dataclass(frozen=True)
class LinkIntoDynamic:
    """A symlink followed to a target below a dynamic directory, whose listing only the
    ``dynamic`` layer knows: the first ``depth`` segments of ``Located.rest`` name the
    target, so a child missing among them makes the link dangling."""

    path: str
    target: str
    depth: int


@dataclass(frozen=True)
class Located:
    """Where a path led: the node, its latest record, and any segments left to walk.

    ``rest`` is non-empty when the walk reached a *dynamic* directory: what lies
    below it is produced by its factory, which the ``dynamic`` layer resolves
    (``link``: the symlink whose target lies there, if the walk followed one).
    """

    path: str
    node_id: str
    entry_type: EntryType
    record: OplogRecord
    rest: tuple[str, ...] = ()
    link: LinkIntoDynamic | None = None

    @property
    def is_dynamic(self) -> bool:
        return self.record.is_dynamic


class TreeView:
    """What a walk needs: the latest record of a node and a static directory's listing."""

    def latest(self, node_id: str) -> OplogRecord | None:
        raise NotImplementedError

    def listing(self, node_id: str) -> Listing:
        raise NotImplementedError

    def versions(self, node_id: str) -> list[OplogRecord]:
        raise NotImplementedError

    def walk(self, path: str, *, follow: bool = True) -> Located:
        """Resolve ``path``; symlinks on the way are followed, the last one if ``follow``.
        A link whose target does not exist is a ``DanglingLinkError`` naming both."""
        return self._walk(paths.split(paths.normalize(path)), follow, 0)

    def _walk(self, segments: list[str], follow: bool, hops: int) -> Located:
        node_id, entry_type, walked = ROOT_ID, EntryType.DIRECTORY, "/"
        for index, name in enumerate(segments):
            record = self._require(node_id, walked)
            if record.is_dynamic:
                return Located(walked, node_id, entry_type, record, tuple(segments[index:]))
            if entry_type is not EntryType.DIRECTORY:
                raise ConflictError("not a directory", subject=walked)
            entry = self.listing(node_id).get(name)
            child_path = paths.join(walked, name)
            if entry is None:
                raise NotFoundError("no such file or directory", subject=child_path)
            node_id, entry_type, walked = entry.node_id, entry.entry_type, child_path
            is_last = index == len(segments) - 1
            if entry_type is EntryType.SYMLINK and (follow or not is_last):
                return self._through_link(child_path, node_id, segments[index + 1 :], follow, hops)
        return Located(walked, node_id, entry_type, self._require(node_id, walked))

    def _through_link(
        self, link: str, node_id: str, rest: list[str], follow: bool, hops: int
    ) -> Located:
        """Follow the symlink at ``link`` to its target, then walk ``rest`` from there."""
        if hops >= MAX_SYMLINK_HOPS:
            raise ConflictError("too many levels of symbolic links", subject=link)
        target = self.symlink_target(node_id, link)
        try:
            reached = self._walk(paths.split(target), True, hops + 1)
        except DanglingLinkError:
            raise  # a link further on is the one that dangles
        except NotFoundError as exc:
            raise DanglingLinkError(link, target) from exc
        if reached.rest:  # the target lies below a dynamic directory
            into = reached.link or LinkIntoDynamic(link, target, len(reached.rest))
            return replace(reached, rest=(*reached.rest, *rest), link=into)
        if not rest:
            return reached
        return self._walk(paths.split(reached.path) + rest, follow, hops + 1)

    def symlink_target(self, node_id: str, path: str) -> str:
        record = self._require(node_id, path)
        target = (record.content or b"").decode()
        parent, _ = paths.parent_and_name(path)
        return paths.normalize(target if target.startswith("/") else paths.join(parent, target))

    def _require(self, node_id: str, path: str) -> OplogRecord:
        record = self.latest(node_id)
        if record is None:
            raise NotFoundError("no such file or directory", subject=path)
        return record

    def iter_children(self, node_id: str) -> Iterator[tuple[str, str, EntryType]]:
        for name, entry in sorted(self.listing(node_id).items()):
            yield name, entry.node_id, entry.entry_type


@dataclass
class Snapshot(TreeView):
    """The pond as of one transaction (``at``), built from oplog records."""

    records: Iterable[OplogRecord]
    delta_version: int = -1
    at: int | None = None
    _versions: dict[str, list[OplogRecord]] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        versions: dict[str, list[OplogRecord]] = {}
        for record in self.records:
            if self.at is None or record.txn_seq <= self.at:
                versions.setdefault(record.node_id, []).append(record)
        for history in versions.values():
            history.sort(key=lambda r: r.version)
        self._versions = versions
        self._listings: dict[tuple[str, int], Listing] = {}

    @cached_property
    def last_txn(self) -> int:
        return max((r.txn_seq for history in self._versions.values() for r in history), default=0)

    def versions(self, node_id: str) -> list[OplogRecord]:
        return self._versions.get(node_id, [])

    def latest(self, node_id: str) -> OplogRecord | None:
        history = self._versions.get(node_id)
        return history[-1] if history else None

    def listing(self, node_id: str) -> Listing:
        record = self.latest(node_id)
        if record is None:
            return {}
        key = (node_id, record.version)
        if key not in self._listings:
            self._listings[key] = listing_of(record.content, record.attributes, record.is_dynamic)
        return self._listings[key]

    def all_records(self) -> Iterator[OplogRecord]:
        for history in self._versions.values():
            yield from history
