"""psql's catalog queries (`\\d`, `\\dt`, `\\d TABLE`) answered from the declared tables.

psql 15+ asks pg_class / pg_attribute / pg_index ... with fixed query shapes (the texts are
in the reference captures, psql_d_list / psql_d_table). Each shape is recognised by its
distinctive FROM/WHERE fragments and answered from answers/catalog.py -- the one place that
knows tables -- with the column names and types PostgreSQL reports. Anything else returns
None (the query goes on to the other builtins, then "no rule matches").
"""

from __future__ import annotations

import re

from ..protocol.types import REGISTRY, format_type
from .catalog import Catalog, Table
from .result import Column, Query, Result

_WS = re.compile(r"\s+")
_OID_LITERAL = re.compile(r"where c\.oid = '(\d+)'|a\.attrelid = '(\d+)'|polrelid = '(\d+)'|stxrelid = '(\d+)'"
                          r"|pc\.oid ?= ?'(\d+)'|inhrelid = '(\d+)'|inhparent = '(\d+)'")
_RELKINDS = re.compile(r"c\.relkind in \(([^)]*)\)")
_ALIASES = re.compile(r' as "([^"]+)"')


def _cols(*pairs) -> tuple[Column, ...]:
    return tuple(Column(n, REGISTRY.by_name(t)) for n, t in pairs)


_LOOKUP_COLS = _cols(("oid", "oid"), ("nspname", "name"), ("relname", "name"))
_TABLEINFO_COLS = _cols(("relchecks", "int2"), ("relkind", "char"), ("relhasindex", "bool"), ("relhasrules", "bool"),
                        ("relhastriggers", "bool"), ("relrowsecurity", "bool"), ("relforcerowsecurity", "bool"),
                        ("relhasoids", "bool"), ("relispartition", "bool"), ("?column?", "text"),
                        ("reltablespace", "oid"), ("reloftype", "text"), ("relpersistence", "char"),
                        ("relreplident", "char"), ("amname", "name"))
_ATTR_COLS = _cols(("attname", "name"), ("format_type", "text"), ("pg_get_expr", "text"), ("attnotnull", "bool"),
                   ("attcollation", "name"), ("attidentity", "char"), ("attgenerated", "char"))
_INDEX_COLS = _cols(("relname", "name"), ("indisprimary", "bool"), ("indisunique", "bool"), ("indisclustered", "bool"),
                    ("indisvalid", "bool"), ("pg_get_indexdef", "text"), ("pg_get_constraintdef", "text"),
                    ("contype", "char"), ("condeferrable", "bool"), ("condeferred", "bool"),
                    ("indisreplident", "bool"), ("reltablespace", "oid"))
# the per-table queries psql sends after the columns; a declared table has none of these things
_EMPTY_SHAPES: list[tuple[str, tuple[Column, ...]]] = [
    ("from pg_catalog.pg_policy pol", _cols(("polname", "name"), ("polpermissive", "bool"),
                                            ("array_to_string", "text"), ("pg_get_expr", "text"),
                                            ("pg_get_expr", "text"), ("cmd", "text"))),
    ("from pg_catalog.pg_statistic_ext", _cols(("oid", "oid"), ("stxrelid", "regclass"), ("nsp", "text"),
                                               ("stxname", "name"), ("columns", "text"), ("ndist_enabled", "bool"),
                                               ("deps_enabled", "bool"), ("mcv_enabled", "bool"),
                                               ("stxstattarget", "int4"))),
    ("from pg_catalog.pg_publication p", _cols(("pubname", "name"), ("?column?", "text"), ("?column?", "text"))),
    ("i.inhrelid = '", _cols(("oid", "regclass"),)),
    ("i.inhparent = '", _cols(("oid", "regclass"), ("relkind", "char"), ("inhdetachpending", "bool"),
                              ("pg_get_expr", "text"))),
    ("from pg_catalog.pg_trigger t", _cols(("tgname", "name"), ("pg_get_triggerdef", "text"), ("tgenabled", "char"),
                                           ("tgisinternal", "bool"), ("parent", "text"))),
    ("from pg_catalog.pg_constraint r where r.conrelid = '", _cols(("conname", "name"), ("condef", "text"))),
    ("from pg_catalog.pg_constraint r where r.confrelid", _cols(("conname", "name"), ("conrelid", "regclass"),
                                                                ("condef", "text"))),
]


def _key(sql: str) -> str:
    return _WS.sub(" ", sql.strip().rstrip(";").strip()).lower()


def answer_catalog_query(query: Query, catalog: Catalog, owner: str = "postgres") -> Result | None:
    """A Result for a psql catalog query about the declared tables, or None."""
    if "pg_catalog." not in query.sql:
        return None
    key = _key(query.sql)
    if key.startswith('select n.nspname as "schema"') and "c.relkind in (" in key:
        return _list_relations(query.sql, key, catalog, owner)
    if key.startswith("select c.oid, n.nspname, c.relname from pg_catalog.pg_class c"):
        return _lookup(query.sql, catalog)
    table_oid = _oid(key)
    if table_oid is None:
        return None
    table = catalog.by_oid(table_oid)
    if key.startswith("select c.relchecks, c.relkind"):
        rows = [] if table is None else [_table_info(table)]
        return Result(columns=_TABLEINFO_COLS, rows=rows)
    if key.startswith("select a.attname,") and "from pg_catalog.pg_attribute a" in key:
        rows = [] if table is None else _attributes(table)
        return Result(columns=_ATTR_COLS, rows=rows)
    if key.startswith("select c2.relname, i.indisprimary"):
        rows = [] if table is None or not table.key else [_primary_key(table)]
        return Result(columns=_INDEX_COLS, rows=rows)
    for fragment, cols in _EMPTY_SHAPES:
        if fragment in key:
            return Result(columns=cols, rows=[])
    return None


def _oid(key: str) -> int | None:
    m = _OID_LITERAL.search(key)
    if m is None:
        return None
    return int(next(g for g in m.groups() if g))


def _filters(sql: str):
    """psql's name patterns, already turned into regexes (`prod*` -> '^(prod.*)$'); case kept."""
    flat = _WS.sub(" ", sql)
    rel = re.search(r"c\.relname OPERATOR\(pg_catalog\.~\) '((?:[^']|'')*)'", flat, re.I)
    nsp = re.search(r"n\.nspname OPERATOR\(pg_catalog\.~\) '((?:[^']|'')*)'", flat, re.I)

    def compile_(m):
        if m is None:
            return None
        try:
            return re.compile(m.group(1).replace("''", "'"))
        except re.error:
            return None

    return compile_(rel), compile_(nsp)


def _visible(table: Table, rel, nsp) -> bool:
    if rel is not None and not rel.search(table.name):
        return False
    if nsp is not None:
        return bool(nsp.search(table.schema))
    return table.schema in ("public", "pg_catalog")  # pg_table_is_visible with the default search_path


def _tables(catalog: Catalog) -> list[Table]:
    return sorted(catalog.tables.values(), key=lambda t: (t.schema, t.name))


def _lookup(sql: str, catalog: Catalog) -> Result:
    rel, nsp = _filters(sql)
    rows = [(t.oid, t.schema, t.name) for t in _tables(catalog) if _visible(t, rel, nsp)]
    return Result(columns=_LOOKUP_COLS, rows=rows)


def _list_relations(sql: str, key: str, catalog: Catalog, owner: str) -> Result:
    kinds = _RELKINDS.search(key)
    wants_tables = kinds is not None and "'r'" in kinds.group(1)
    rel, nsp = _filters(sql)
    values = {
        "schema": lambda t: t.schema,
        "name": lambda t: t.name,
        "type": lambda t: "table",
        "owner": lambda t: owner,
        "persistence": lambda t: "permanent",
        "access method": lambda t: "heap",
        "size": lambda t: "8192 bytes",
        "description": lambda t: None,
    }
    types = {"schema": "name", "name": "name", "owner": "name", "access method": "name"}
    names = _ALIASES.findall(sql)
    columns = tuple(Column(n, REGISTRY.by_name(types.get(n.lower(), "text"))) for n in names)
    rows = []
    if wants_tables:
        for t in _tables(catalog):
            if _visible(t, rel, nsp):
                rows.append(tuple(values.get(n.lower(), lambda t: None)(t) for n in names))
    return Result(columns=columns, rows=rows)


def _table_info(t: Table) -> tuple:
    return (0, "r", bool(t.key), False, False, False, False, False, False, "", 0, "", "p", t.replica_identity, "heap")


def _attributes(t: Table) -> list[tuple]:
    return [(c.name, format_type(c.type, c.typmod), None, c.name in t.key, None, "", "") for c in t.columns]


def _primary_key(t: Table) -> tuple:
    name = f"{t.name}_pkey"
    cols = ", ".join(t.key)
    indexdef = f"CREATE UNIQUE INDEX {name} ON {t.schema}.{t.name} USING btree ({cols})"
    return (name, True, True, False, True, indexdef, f"PRIMARY KEY ({cols})", "p", False, False, False, 0)
