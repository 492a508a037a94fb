"""Which dynamic node reads which: the upstream index over source patterns, an order in
which every node follows what it reads, and derivation cycles (one error, one message).

Used by ``pond apply`` and ``pond.yaml`` (the pipeline's order and Dagster's asset
dependencies), by every create of a dynamic node (no cycle in the pond), and by
fingerprints (the nodes a read actually reaches).
"""

import heapq
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from graphlib import CycleError, TopologicalSorter

from pond_pipeline import paths
from pond_pipeline.errors import ConfigError

CYCLE_HINT = "change a source so the nodes do not read each other"


class DerivationCycleError(ConfigError):
    """Dynamic nodes that read each other; ``cycle`` starts and ends at the same path,
    each path reading the next."""

    def __init__(self, cycle: Sequence[str]):
        self.cycle = list(cycle)
        super().__init__(
            f"derivation cycle: {' -> '.join(self.cycle)}", subject=self.cycle[0], hint=CYCLE_HINT
        )


@dataclass(frozen=True)
class Vertex:
    """A dynamic node as the graph sees it: its path and the patterns it reads."""

    path: str
    sources: Sequence[str]
    """Normalized pond paths and globs."""
    is_directory: bool = False
    declares_children: bool = False
    """A directory whose entries are nodes of their own (``dynamic_dir``)."""


def upstream_index(vertices: Iterable[Vertex]) -> dict[str, list[str]]:
    """For each vertex, the vertices it reads: matched by one of its source patterns, or
    a directory a pattern reaches into; never a directory that contains it. A directory
    declaring its children reads what they read from outside it, so it runs after their
    sources (and its children's own order stays theirs)."""
    items = list(vertices)
    index = _PathIndex(items)
    upstream = {v.path: _not_above(v.path, index.upstream(v.sources)) for v in items}
    for vertex in items:
        if vertex.declares_children:
            upstream[vertex.path] = _through_children(vertex.path, upstream)
    return upstream


def derivation_order(upstream: Mapping[str, Iterable[str]]) -> list[str]:
    """Every path after the paths it reads; where the graph leaves a choice, the order
    given (so a file already in derivation order keeps its order). A cycle is a
    ``DerivationCycleError`` naming it, starting at its earliest path."""
    position = {path: index for index, path in enumerate(upstream)}
    sorter: TopologicalSorter[str] = TopologicalSorter()
    for path, reads in upstream.items():
        sorter.add(path, *reads)
    try:
        sorter.prepare()
    except CycleError as exc:
        raise cycle_error(list(exc.args[1]), position) from None
    ordered: list[str] = []
    ready: list[tuple[int, str]] = []
    while sorter.is_active():
        for path in sorter.get_ready():
            heapq.heappush(ready, (position.get(path, len(position)), path))
        _, path = heapq.heappop(ready)
        sorter.done(path)
        if path in position:
            ordered.append(path)
    return ordered


def cycle_error(reported: list[str], position: Mapping[str, int]) -> DerivationCycleError:
    """graphlib's cycle (each path a dependency of the next) as a chain of reads that
    starts at the path given first."""
    loop = list(reversed(reported[:-1]))
    start = min(range(len(loop)), key=lambda i: position.get(loop[i], len(position)))
    loop = loop[start:] + loop[:start]
    return DerivationCycleError([*loop, loop[0]])


def _not_above(path: str, upstream: list[str]) -> list[str]:
    return [p for p in upstream if not path.startswith(p.rstrip("/") + "/")]


def _through_children(path: str, upstream: dict[str, list[str]]) -> list[str]:
    inside = path.rstrip("/") + "/"
    found = set(upstream[path])
    for child, sources in upstream.items():
        if child.startswith(inside):
            found.update(s for s in sources if s != path and not s.startswith(inside))
    return sorted(found)


class _PathIndex:
    """Which vertices each pattern reads. A literal pattern can only match the vertex at
    its own path or a directory above it, found by lookup (no scan over every pair,
    which made loading 500 nodes take seconds); a glob is matched by scan."""

    def __init__(self, vertices: Sequence[Vertex]):
        self.items = [(v.path, paths.split(v.path), v.is_directory) for v in vertices]
        self.position = {tuple(segments): i for i, (_, segments, _) in enumerate(self.items)}

    def upstream(self, patterns: Iterable[str]) -> list[str]:
        hits: set[int] = set()
        for pattern in patterns:
            wanted = paths.split(pattern)
            if paths.is_glob(pattern):
                hits.update(
                    i
                    for i, (_, segments, is_directory) in enumerate(self.items)
                    if paths.match_segments(wanted, segments)
                    or (is_directory and paths.could_descend(wanted, segments))
                )
                continue
            exact = self.position.get(tuple(wanted))
            if exact is not None:
                hits.add(exact)
            for end in range(len(wanted)):
                above = self.position.get(tuple(wanted[:end]))
                if above is not None and self.items[above][2]:
                    hits.add(above)
        return [self.items[i][0] for i in sorted(hits)]
