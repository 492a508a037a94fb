"""A dynamic node's SQL checked when the node is created or applied: bound, never run,
against its sources' schemas in a sandboxed session, so a syntax error, more than one
statement, a statement other than SELECT, or an unknown column, table or function is
refused then (``SqlCheckError``), naming the node, the config field and DuckDB's words.

Only the SQL a factory defines from its config alone (``Factory.relations``) is
checked, and it is bound only against what is known without producing anything or
reading a row: a static source by the schema its versions record, a dynamic one by the
schema its current materialization recorded or, when its factory too defines its SQL
from its config, as a view of that SQL over its own sources (each source an empty table
of its schema). When a source is known only by producing it (e.g. a ``csv_directory``
child not materialized yet) or a glob matches nothing yet, the query is checked for
syntax and the one-SELECT rule only; reading the node binds the rest.
"""

import hashlib
import re
from typing import Any

import pyarrow as pa

from pond_pipeline import paths
from pond_pipeline.dynamic import registry
from pond_pipeline.dynamic.resolve import Node, Resolver
from pond_pipeline.errors import ConfigError, PondError, QueryError
from pond_pipeline.factory import Factory, FactoryConfig, SqlRelation
from pond_pipeline.query.engine import SqlSession, check_select, quote

__all__ = ["SqlCheckError", "check_sql"]

CHECKED = "__pond_checked"
"""The name the checked query's view gets in its session (dropped with the session)."""
_INTERNAL = re.compile(r'"?(__pond_[A-Za-z0-9_]+)"?')


class SqlCheckError(ConfigError):
    """DuckDB refuses a node's SQL: ``path`` is the node, ``field`` the config field
    holding the query (``None``: SQL the factory wrote), ``words`` DuckDB's first line."""

    def __init__(self, path: str, field: str | None, words: str):
        self.path = path
        self.field = field
        self.words = words
        named = f"{field}: {words}" if field else f"its SQL: {words}"
        super().__init__(
            named, subject=path, hint=f"fix the {field}" if field else "fix the node's config"
        )


def check_sql(resolver: Resolver, path: str, factory: Factory[Any], config: FactoryConfig) -> None:
    """Check the SQL of the node at ``path`` (``factory`` with ``config``), and of the
    children its config declares; a refused query is a ``SqlCheckError``."""
    for relation in factory.relations(config):
        _check_relation(resolver, path, relation)
    for spec in factory.declared_children(config) or []:
        child = paths.join(path, spec.name)
        child_factory = registry.get(spec.factory)
        child_config = registry.validate(child_factory, spec.config, subject=child)
        check_sql(resolver, child, child_factory, child_config)


def _check_relation(resolver: Resolver, path: str, relation: SqlRelation) -> None:
    with resolver.session() as session:
        schemas = _Schemas(resolver, session)
        try:
            bindings: dict[str, str] | None = schemas.bindings(relation)
        except _SchemaUnknownError:
            bindings = None
        try:
            if bindings is None:
                check_select(relation.query)
            else:
                session.create_view(CHECKED, relation.query, bindings)
        except QueryError as exc:
            names = {**schemas.paths, **{t: a for a, t in (bindings or {}).items()}}
            raise SqlCheckError(path, relation.field, _shown(exc.reason, names)) from exc


class _SchemaUnknownError(Exception):
    """A source's schema is not known without producing it (or nothing matches yet)."""


class _Schemas:
    """Sources as tables of ``session`` that hold no rows: each node an empty table of
    its recorded schema, or a view of the SQL its config defines over its own sources."""

    def __init__(self, resolver: Resolver, session: SqlSession):
        self._resolver = resolver
        self._session = session
        self.paths: dict[str, str] = {}
        """Each name registered → the pond path or glob it stands for."""

    def bindings(self, relation: SqlRelation) -> dict[str, str]:
        """Each table name of ``relation`` → the session's name for what it reads."""
        try:
            return {alias: self._pattern(pattern) for alias, pattern in relation.tables.items()}
        except PondError as exc:  # a source's own trouble, told when it is read
            raise _SchemaUnknownError from exc

    def _pattern(self, pattern: str) -> str:
        nodes = [n for n in self._resolver.glob(pattern) if n.entry_type.is_tabular]
        if not nodes:
            raise _SchemaUnknownError
        names = [self._node(n) for n in nodes]
        if len(names) == 1:
            return names[0]
        union = "__pond_union_" + hashlib.sha256("|".join(names).encode()).hexdigest()[:20]
        if not self._session.is_registered(union):
            body = " UNION ALL BY NAME ".join(f"SELECT * FROM {quote(n)}" for n in names)
            self._session.create_view(union, body, {})
            self.paths[union] = pattern
        return union

    def _node(self, node: Node) -> str:
        name = f"__pond_{self._resolver.fingerprint(node)[:20]}"
        if self._session.is_registered(name):
            return name
        schema = self._recorded_schema(node)
        if schema is not None:
            self._session.register(name, schema.empty_table())
        else:
            factory, config = self._resolver.factory_of(node)
            relation = factory.relation(config)
            if relation is None:
                raise _SchemaUnknownError
            self._session.create_view(name, relation.query, self.bindings(relation))
        self.paths[name] = node.path
        return name

    def _recorded_schema(self, node: Node) -> pa.Schema | None:
        """A static node's schema, or the one a dynamic node's current materialization
        recorded; ``None`` when only producing the node would tell."""
        if not node.is_dynamic:
            return self._resolver.schema(node)
        record = self._resolver.materialized_record(node)
        if record is None:
            return None
        return self._resolver.reads.reader.schema(record, node.path)


def _shown(words: str, names: dict[str, str]) -> str:
    """DuckDB's words with the session's names shown as the user wrote them."""
    return _INTERNAL.sub(lambda m: quote(names[m[1]]) if m[1] in names else "a source", words)
