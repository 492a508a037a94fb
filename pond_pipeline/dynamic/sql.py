"""Nodes as tables of a sandboxed DuckDB session: a node by its fingerprint, a glob as the
union of its matches, a dynamic node's ``SqlRelation`` as a view over its own sources
(so its SQL runs in the one query, unmaterialized), a CSV data file as its rows."""

import hashlib
from dataclasses import KW_ONLY, dataclass

from pond_pipeline import paths
from pond_pipeline.dynamic.fingerprints import Fingerprints
from pond_pipeline.dynamic.namespace import Namespace
from pond_pipeline.dynamic.nodes import Node, TimeRange, factory_failure
from pond_pipeline.dynamic.production import Production
from pond_pipeline.dynamic.reads import NodeReader, is_table_like, require_tabular
from pond_pipeline.errors import DanglingLinkError, NotFoundError, PondError
from pond_pipeline.factory import SqlRelation
from pond_pipeline.query.engine import Connector, SqlSession, quote


@dataclass(frozen=True)
class SqlTables:
    namespace: Namespace
    fingerprints: Fingerprints
    production: Production
    reads: NodeReader
    _: KW_ONLY
    query_timeout: float | None = None
    connector: Connector | None = None

    def session(self) -> SqlSession:
        return SqlSession(timeout=self.query_timeout, connector=self.connector)

    def register(self, session: SqlSession, node: Node, window: TimeRange | None = None) -> str:
        """Make ``node`` a table of ``session``; returns its name there."""
        require_tabular(node)
        name = f"__pond_{self.fingerprints.fingerprint(node)[:20]}"
        if window is not None:
            name += f"_{abs(hash(window)):x}"
        if session.is_registered(name):
            return name
        relation = (
            self.production.lazy_relation(node)
            if node.is_dynamic and node.entry_type.is_tabular and window is None
            else None
        )
        if relation is not None:
            inner = self.register_relation(session, node, relation)
            session.create_view(name, f"SELECT * FROM {quote(inner)}", {})
            return name
        session.register(name, self.reads.dataset(node, window=window))
        return name

    def register_pattern(self, session: SqlSession, pattern: str, *, owner: str) -> str:
        """A path or glob as one table (a glob: the union of its matches by column name);
        ``owner``: who reads it, named when nothing does."""
        matched = self.namespace.glob(pattern)
        nodes = [n for n in matched if is_table_like(n)]
        if not nodes:
            raise self._no_table(pattern, matched, owner)
        names = [self.register(session, n) for n in nodes]
        if len(names) == 1:
            return names[0]
        union = "__pond_union_" + hashlib.sha256("|".join(names).encode()).hexdigest()[:20]
        if not session.is_registered(union):
            body = " UNION ALL BY NAME ".join(f"SELECT * FROM {quote(n)}" for n in names)
            session.create_view(union, body, {})
        return union

    def _no_table(self, pattern: str, matched: list[Node], owner: str) -> PondError:
        """Why ``pattern`` reads as no table: the one file it names is no table (a data
        file, a directory), its link dangles, or nothing it matches is a table."""
        if not paths.is_glob(pattern):
            if matched:
                require_tabular(matched[0], reader=owner)
            try:
                self.namespace.resolve(pattern)
            except DanglingLinkError:
                raise
            except NotFoundError:
                pass
        if matched:
            return NotFoundError(
                f"source {pattern!r} matches {len(matched)} file(s), none a table, "
                "series or *.csv data file",
                subject=owner,
                hint=f"`pond list '{pattern}'` shows what it matches",
            )
        return NotFoundError(
            f"source {pattern!r} matches no table or series",
            subject=owner,
            hint="check the path, or create the source first",
        )

    def register_relation(self, session: SqlSession, node: Node, relation: SqlRelation) -> str:
        """A dynamic node's SQL as a view of ``session``, its tables registered first."""
        bindings = {
            alias: self.register_pattern(session, pattern, owner=node.path)
            for alias, pattern in relation.tables.items()
        }
        name = f"__pond_sql_{self.fingerprints.fingerprint(node)[:20]}"
        if not session.is_registered(name):
            try:
                session.create_view(name, relation.query, bindings)
            except PondError as exc:
                raise factory_failure(node, exc.message) from exc
        return name
