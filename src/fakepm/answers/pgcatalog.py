"""psql's and pgcli's catalog queries (`\\d`, `\\dt`, `\\di`, `\\d TABLE`, with or without +)
answered from the declared tables.

Each query family is recognised by its FROM/WHERE text and answers only the select items it
was written for: every item's expression (normalised by answers/selectlist.py) must be a key
of the family's table, which gives the column's type and its value. The columns are those
the query's select list asks for, in its order, named as PostgreSQL names them. An item
nobody wrote down here -- a newer psql asking for one more column, a WHERE condition this
module does not know -- makes the whole query unanswered (None: FP000), never a DataRow of
another shape (psql 15 crashed on one). Values are compared with PostgreSQL 15 in
tests/clients/test_catalog_shapes.py.

Texts: psql 15 (describe.c; the same for a server of version 15 or later) and pgcli 4.7
(pgspecial 2.2).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable

from ..protocol.types import REGISTRY, PgType, format_type
from .catalog import Catalog, Table
from .result import Column, Query, Result
from ..sql.lexer import Token, tokens
from .selectlist import conform, join_tokens, normalize, quote_ident, select_items


@dataclass(frozen=True)
class _Rel:
    """A relation fakepm can list: a declared table, or the primary-key index of one."""

    table: Table
    index: bool = False

    @property
    def name(self) -> str:
        return f"{self.table.name}_pkey" if self.index else self.table.name

    @property
    def size(self) -> str:
        """pg_size_pretty(pg_table_size()) of a small table: a heap page once it has rows, plus the
        8 kB metapage of a TOAST index when PostgreSQL gives the table a TOAST table; a btree index
        is its metapage, plus one leaf page once there are rows."""
        if self.index:
            pages = 1 + bool(self.table.rows)
        else:
            pages = bool(self.table.rows) + _has_toast(self.table)
        return "0 bytes" if not pages else "8192 bytes" if pages == 1 else f"{8 * pages} kB"


def _has_toast(t: Table) -> bool:
    """needs_toast_table() of PostgreSQL 15 (catalog/toasting.c) for the declared columns."""
    length = 0
    toastable = False
    for c in t.columns:
        typ = c.type
        if _storage(typ) != "p":
            toastable = True
        if typ.typlen > 0:
            length += typ.typlen
            continue
        if typ.name in ("varchar", "bpchar") and c.typmod >= 4:
            length += (c.typmod - 4) * 4 + 4  # 4 bytes per character at most in UTF8
        elif typ.name == "numeric" and c.typmod >= 4:
            length += 8 + 2 * ((((c.typmod - 4) >> 16 & 0xFFFF) + 6) // 4)  # numeric_maximum_size()
        else:  # a length without bound: a TOAST table if any column can be toasted
            return any(_storage(x.type) != "p" for x in t.columns)
    header = -(-(23 + (len(t.columns) + 7) // 8) // 8) * 8
    return toastable and header + -(-length // 8) * 8 > 2032  # TOAST_TUPLE_THRESHOLD


@dataclass(frozen=True)
class _Att:
    table: Table
    column: Column


_Items = dict  # normalised expression -> (PgType, value of one entity)


def _items(*entries: tuple[str, str, Callable]) -> _Items:
    out = {}
    for expr, type_name, fn in entries:
        out[normalize(expr)] = (REGISTRY.by_name(type_name), fn)
    return out


def _none(_):
    return None


_RELKIND_LABELS = {"r": "table", "i": "index"}
_PSQL_RELKIND_CASE = ("CASE c.relkind WHEN 'r' THEN 'table' WHEN 'v' THEN 'view' WHEN 'm' THEN 'materialized view' "
                      "WHEN 'i' THEN 'index' WHEN 'S' THEN 'sequence' WHEN 't' THEN 'TOAST table' WHEN 'f' THEN "
                      "'foreign table' WHEN 'p' THEN 'partitioned table' WHEN 'I' THEN 'partitioned index' END")
_PGCLI_RELKIND_CASE = ("CASE c.relkind WHEN 'r' THEN 'table' WHEN 'v' THEN 'view' WHEN 'p' THEN 'partitioned table' "
                       "WHEN 'm' THEN 'materialized view' WHEN 'i' THEN 'index' WHEN 'S' THEN 'sequence' "
                       "WHEN 's' THEN 'special' WHEN 'f' THEN 'foreign table' END")

_LIST_ITEMS = _items(
    ("n.nspname", "name", lambda r: r.table.schema),
    ("c.relname", "name", lambda r: r.name),
    (_PSQL_RELKIND_CASE, "text", lambda r: _RELKIND_LABELS["i" if r.index else "r"]),
    (_PGCLI_RELKIND_CASE, "text", lambda r: _RELKIND_LABELS["i" if r.index else "r"]),
    ("pg_catalog.pg_get_userbyid(c.relowner)", "name", lambda r: _OWNER),
    ("c2.relname", "name", lambda r: r.table.name if r.index else None),
    ("CASE c.relpersistence WHEN 'p' THEN 'permanent' WHEN 't' THEN 'temporary' WHEN 'u' THEN 'unlogged' END",
     "text", lambda r: "permanent"),
    ("am.amname", "name", lambda r: "btree" if r.index else "heap"),
    ("pg_catalog.pg_size_pretty(pg_catalog.pg_table_size(c.oid))", "text", lambda r: r.size),
    ("pg_catalog.obj_description(c.oid, 'pg_class')", "text", _none),
)
_OWNER = "postgres"  # declared tables belong to the bootstrap superuser

_LOOKUP_ITEMS = _items(
    ("c.oid", "oid", lambda r: r.table.oid),
    ("n.nspname", "name", lambda r: r.table.schema),
    ("c.relname", "name", lambda r: r.name),
)

_TABLEINFO_ITEMS = _items(
    ("c.relchecks", "int2", lambda t: 0),
    ("c.relkind", '"char"', lambda t: "r"),
    ("c.relhasindex", "bool", lambda t: bool(t.key)),
    ("c.relhasrules", "bool", lambda t: False),
    ("c.relhastriggers", "bool", lambda t: False),
    ("c.relrowsecurity", "bool", lambda t: False),
    ("c.relforcerowsecurity", "bool", lambda t: False),
    ("false", "bool", lambda t: False),
    ("c.relispartition", "bool", lambda t: False),
    ("''", "text", lambda t: ""),
    ("pg_catalog.array_to_string(c.reloptions || array(select 'toast.' || x from pg_catalog.unnest(tc.reloptions) x), "
     "', ')", "text", lambda t: ""),
    ("c.reltablespace", "oid", lambda t: 0),
    ("CASE WHEN c.reloftype = 0 THEN '' ELSE c.reloftype::pg_catalog.regtype::pg_catalog.text END", "text",
     lambda t: ""),
    ("c.relpersistence", '"char"', lambda t: "p"),
    ("c.relreplident", '"char"', lambda t: t.replica_identity),
    ("am.amname", "name", lambda t: "heap"),
)


def _storage(t: PgType) -> str:
    """pg_type.typstorage of PostgreSQL 15 for the registry's types (user types: the CREATE TYPE default)."""
    if t.typlen != -1 or t.name in ("int2vector", "oidvector"):
        return "p"
    return "m" if t.name in ("numeric", "inet", "cidr") else "x"


_ATTR_ITEMS = _items(
    ("a.attname", "name", lambda a: a.column.name),
    ("pg_catalog.format_type(a.atttypid, a.atttypmod)", "text", lambda a: format_type(a.column.type, a.column.typmod)),
    ("(SELECT pg_catalog.pg_get_expr(d.adbin, d.adrelid, true) FROM pg_catalog.pg_attrdef d WHERE d.adrelid = "
     "a.attrelid AND d.adnum = a.attnum AND a.atthasdef)", "text", _none),
    ("(SELECT substring(pg_catalog.pg_get_expr(d.adbin, d.adrelid, true) for 128) FROM pg_catalog.pg_attrdef d "
     "WHERE d.adrelid = a.attrelid AND d.adnum = a.attnum AND a.atthasdef)", "text", _none),
    ("a.attnotnull", "bool", lambda a: a.column.name in a.table.key),
    ("(SELECT c.collname FROM pg_catalog.pg_collation c, pg_catalog.pg_type t WHERE c.oid = a.attcollation AND "
     "t.oid = a.atttypid AND a.attcollation <> t.typcollation)", "name", _none),
    ("a.attidentity", '"char"', lambda a: ""),
    ("a.attgenerated", '"char"', lambda a: ""),
    ("a.attstorage", '"char"', lambda a: _storage(a.column.type)),
    ("a.attcompression", '"char"', lambda a: ""),
    ("CASE WHEN a.attstattarget=-1 THEN NULL ELSE a.attstattarget END", "int4", _none),
    ("pg_catalog.col_description(a.attrelid, a.attnum)", "text", _none),
    ("NULL", "text", _none),
)


@dataclass(frozen=True)
class _Pkey:
    table: Table
    visible: bool  # its table is on the search_path: pg_get_indexdef(..., pretty) leaves the schema out


def _indexdef(i: _Pkey) -> str:
    t = i.table
    rel = quote_ident(t.name) if i.visible else f"{quote_ident(t.schema)}.{quote_ident(t.name)}"
    return (f"CREATE UNIQUE INDEX {quote_ident(t.name + '_pkey')} ON {rel} "
            f"USING btree ({', '.join(quote_ident(k) for k in t.key)})")


_INDEX_ITEMS = _items(
    ("c2.relname", "name", lambda i: f"{i.table.name}_pkey"),
    ("i.indisprimary", "bool", lambda i: True),
    ("i.indisunique", "bool", lambda i: True),
    ("i.indisclustered", "bool", lambda i: False),
    ("i.indisvalid", "bool", lambda i: True),
    ("pg_catalog.pg_get_indexdef(i.indexrelid, 0, true)", "text", _indexdef),
    ("pg_catalog.pg_get_constraintdef(con.oid, true)", "text",
     lambda i: f"PRIMARY KEY ({', '.join(quote_ident(k) for k in i.table.key)})"),
    ("contype", '"char"', lambda i: "p"),
    ("condeferrable", "bool", lambda i: False),
    ("condeferred", "bool", lambda i: False),
    ("i.indisreplident", "bool", lambda i: i.table.replica_identity == "i"),  # the only index it can use
    ("c2.reltablespace", "oid", lambda i: 0),
    ("false", "bool", lambda i: False),  # psql 18 to a server before 18: `false AS conperiod`
    ("con.conperiod", "bool", lambda i: False),  # psql 18 to 18: a primary key WITHOUT OVERLAPS is not declarable
)

# per-table footers a declared table has none of (no policies, statistics objects,
# inheritance, partitions): answered with no rows, still only for the items written here
_POLICY_ITEMS = _items(
    ("pol.polname", "name", _none), ("pol.polpermissive", "bool", _none),
    ("CASE WHEN pol.polroles = '{0}' THEN NULL ELSE pg_catalog.array_to_string(array(select rolname from "
     "pg_catalog.pg_roles where oid = any (pol.polroles) order by 1),',') END", "text", _none),
    ("pg_catalog.pg_get_expr(pol.polqual, pol.polrelid)", "text", _none),
    ("pg_catalog.pg_get_expr(pol.polwithcheck, pol.polrelid)", "text", _none),
    ("CASE pol.polcmd WHEN 'r' THEN 'SELECT' WHEN 'a' THEN 'INSERT' WHEN 'w' THEN 'UPDATE' WHEN 'd' THEN 'DELETE' END",
     "text", _none),
)
_STATS_ITEMS = _items(
    ("oid", "oid", _none), ("stxrelid::pg_catalog.regclass", "regclass", _none),
    ("stxnamespace::pg_catalog.regnamespace::pg_catalog.text", "text", _none), ("stxname", "name", _none),
    ("pg_catalog.pg_get_statisticsobjdef_columns(oid)", "text", _none),
    ("'d' = any(stxkind)", "bool", _none), ("'f' = any(stxkind)", "bool", _none),
    ("'m' = any(stxkind)", "bool", _none), ("stxstattarget", "int4", _none),
)
_PUBLICATION_ITEMS = _items(("pubname", "name", _none), ("NULL", "text", _none))
_FOREIGN_KEY_ITEMS = _items(  # psql 18 asks whatever relhastriggers says
    ("true", "bool", _none), ("conname", "name", _none), ("pg_catalog.pg_get_constraintdef(r.oid, true)", "text", _none),
    ("conrelid::pg_catalog.regclass", "regclass", _none),
)
_REFERENCED_BY_ITEMS = _items(
    ("conname", "name", _none), ("conrelid::pg_catalog.regclass", "regclass", _none),
    ("pg_catalog.pg_get_constraintdef(oid, true)", "text", _none),
)
# psql 18 (verbose): the NOT NULL constraints PostgreSQL 18 makes for key columns (none before 18)
_NOT_NULL_ITEMS = _items(
    ("c.conname", "name", lambda a: _not_null_name(a)), ("a.attname", "name", lambda a: a.column.name),
    ("c.connoinherit", "bool", lambda a: False), ("c.conislocal", "bool", lambda a: True),
    ("c.coninhcount <> 0", "bool", lambda a: False), ("c.convalidated", "bool", lambda a: True),
)


def _not_null_name(a: _Att) -> str:
    name = f"{a.table.name}_{a.column.name}_not_null"
    if len(name.encode()) >= 64:
        raise _Unanswerable("PostgreSQL would shorten this constraint name")
    return name
_PARENTS_ITEMS = _items(("c.oid::pg_catalog.regclass", "regclass", _none))
_CHILDREN_ITEMS = _items(
    ("c.oid::pg_catalog.regclass", "regclass", _none), ("c.relkind", '"char"', _none),
    ("inhdetachpending", "bool", _none), ("pg_catalog.pg_get_expr(c.relpartbound, c.oid)", "text", _none),
)


class _Unanswerable(Exception):
    """The query is recognised but fakepm cannot answer it exactly (FP000)."""


def answer_catalog_query(query: Query, catalog: Catalog) -> Result | None:
    """A Result for a psql/pgcli catalog query about the declared tables, or None."""
    if "pg_catalog." not in query.sql:
        return None
    items = select_items(query.sql)
    if items is None:
        return None
    toks = tokens(query.sql)
    key = join_tokens(query.sql, toks)
    try:
        res = _answer(query, key, toks, items, catalog)
    except _Unanswerable:
        return None
    return conform(res, query.sql) if res is not None else None


_FROM_CLASS_NS = normalize("FROM pg_catalog.pg_class c LEFT JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace")


_JOINS = {  # what psql/pgcli join to pg_class and pg_namespace in a relation list: no filtering
    normalize(j) for j in (
        "",
        "LEFT JOIN pg_catalog.pg_am am ON am.oid = c.relam",
        "LEFT JOIN pg_catalog.pg_am am ON am.oid = c.relam LEFT JOIN pg_catalog.pg_index i ON i.indexrelid = c.oid "
        "LEFT JOIN pg_catalog.pg_class c2 ON i.indrelid = c2.oid",
        "LEFT JOIN pg_catalog.pg_index i ON i.indexrelid = c.oid LEFT JOIN pg_catalog.pg_class c2 ON "
        "i.indrelid = c2.oid",
    )
}


def _answer(query: Query, key: str, toks: list[Token], items, catalog: Catalog) -> Result | None:
    if _FROM_CLASS_NS in key:
        start = key.index(_FROM_CLASS_NS) + len(_FROM_CLASS_NS)
        where = key.find(" where ", start)
        if where < 0 or key[start:where].strip() not in _JOINS:
            return None
        if key.startswith("select c.oid , n.nspname , c.relname from"):
            return _build(items, _LOOKUP_ITEMS, _relations(query, toks, catalog, lookup=True))
        if key.startswith('select n.nspname as "Schema" ,') or key.startswith("select n.nspname as schema ,"):
            return _build(items, _LIST_ITEMS, _relations(query, toks, catalog, lookup=False))
        return None
    oid = _per_table_oid(toks)
    if oid is None:
        return None
    table = catalog.by_oid(oid)
    if table is None:
        return None  # psql got the OID from somewhere else: nothing known about it
    if key.startswith("select c.relchecks ,") and key.rstrip(" ;").endswith(
            tuple(f"{tail} where c.oid = '{oid}'" for tail in _TABLEINFO_FROM)):
        return _build(items, _TABLEINFO_ITEMS, [table])
    if key.startswith("select a.attname ,") and (
            f"from pg_catalog.pg_attribute a where a.attrelid = '{oid}' and a.attnum > 0 and not a.attisdropped "
            "order by a.attnum") in key:
        return _build(items, _ATTR_ITEMS, [_Att(table, c) for c in table.columns])
    if key.startswith("select c2.relname , i.indisprimary ,") and (
            "from pg_catalog.pg_class c , pg_catalog.pg_class c2 , pg_catalog.pg_index i left join "
            "pg_catalog.pg_constraint con on") in key and f"where c.oid = '{oid}' and c.oid = i.indrelid and " \
            "i.indexrelid = c2.oid order by" in key:
        pkey = _Pkey(table, table.schema in _search_path(query))
        return _build(items, _INDEX_ITEMS, [pkey] if table.key else [])
    if f"from pg_catalog.pg_policy pol where pol.polrelid = '{oid}' order by 1" in key:
        return _build(items, _POLICY_ITEMS, [])
    if f"from pg_catalog.pg_statistic_ext where stxrelid = '{oid}' order by" in key:
        return _build(items, _STATS_ITEMS, [])
    if key.startswith("select pubname , null , null from pg_catalog.pg_publication p join "
                      "pg_catalog.pg_publication_namespace pn"):
        return _build(items, _PUBLICATION_ITEMS, [])
    if f"from pg_catalog.pg_constraint r where r.conrelid = '{oid}' and r.contype = 'f' and conparentid = 0 " \
            "order by conname" in key:
        return _build(items, _FOREIGN_KEY_ITEMS, [])
    if f"from pg_catalog.pg_constraint c where confrelid in ( select pg_catalog.pg_partition_ancestors ( '{oid}' ) " \
            f"union all values ( '{oid}' :: pg_catalog.regclass ) ) and contype = 'f' and conparentid = 0 " \
            "order by conname" in key:
        return _build(items, _REFERENCED_BY_ITEMS, [])
    if f"where c.contype = 'n' and c.conrelid = '{oid}' :: pg_catalog.regclass order by a.attnum" in key and \
            "from pg_catalog.pg_constraint c join pg_catalog.pg_attribute a on ( a.attrelid = c.conrelid and " \
            "a.attnum = c.conkey [ 1 ] )" in key:
        made = _server_version_num(query) >= 180000  # before 18, NOT NULL was no constraint: no rows
        return _build(items, _NOT_NULL_ITEMS, [_Att(table, c) for c in table.columns if c.name in table.key and made])
    if "from pg_catalog.pg_class c , pg_catalog.pg_inherits i where c.oid = i.inhparent and i.inhrelid = " in key:
        return _build(items, _PARENTS_ITEMS, [])
    if "from pg_catalog.pg_class c , pg_catalog.pg_inherits i where c.oid = i.inhrelid and i.inhparent = " in key:
        return _build(items, _CHILDREN_ITEMS, [])
    return None


_TABLEINFO_FROM = (  # the end of psql's table-info query, before its WHERE
    normalize("FROM pg_catalog.pg_class c LEFT JOIN pg_catalog.pg_class tc ON (c.reltoastrelid = tc.oid)"),
    normalize("FROM pg_catalog.pg_class c LEFT JOIN pg_catalog.pg_class tc ON (c.reltoastrelid = tc.oid) "
              "LEFT JOIN pg_catalog.pg_am am ON (c.relam = am.oid)"),
)

# the columns psql's per-table queries compare with the table's OID ('16384'), and the function
# whose argument it is (pg_catalog.pg_partition_ancestors('16384'))
_OID_COLUMNS = frozenset({"c.oid", "a.attrelid", "pol.polrelid", "stxrelid", "pc.oid", "i.inhrelid", "i.inhparent",
                          "r.conrelid", "c.conrelid"})


def _per_table_oid(toks: list[Token]) -> int | None:
    """The one table OID a per-table query is about (None: none, or several)."""
    oids = set()
    for k, t in enumerate(toks):
        if t.kind != "s" or not t.value.isdigit() or k < 2:
            continue
        prev = toks[k - 1]
        if prev.kind == "o" and prev.value == "=":
            name = [toks[k - 2]]
            if k >= 4 and toks[k - 3].kind == "c" and toks[k - 3].value == ".":
                name[:0] = [toks[k - 4], toks[k - 3]]
            if all(x.kind in ("w", "c") for x in name) and "".join(x.value for x in name) in _OID_COLUMNS:
                oids.add(int(t.value))
        elif prev.kind == "c" and prev.value == "(" and k >= 4 and toks[k - 2].is_word("pg_partition_ancestors") \
                and toks[k - 3].kind == "c" and toks[k - 3].value == "." and toks[k - 4].is_word("pg_catalog"):
            oids.add(int(t.value))
    if len(oids) != 1:
        return None
    return oids.pop()


def _build(items, table: _Items, entities: list) -> Result:
    """Columns for exactly the query's items, values per entity; an unknown item raises."""
    columns = []
    fns = []
    for it in items:
        hit = table.get(it.expr)
        if hit is None:
            raise _Unanswerable(f"select item {it.expr!r}")
        t, fn = hit
        columns.append(Column(it.name, t))
        fns.append(fn)
    rows = [tuple(fn(e) for fn in fns) for e in entities]
    return Result(columns=tuple(columns), rows=rows)


# -- the WHERE of psql's relation list and lookup ------------------------------------------

def _conjuncts(toks: list[Token]) -> list[list[Token]] | None:
    """The AND-ed conditions of a query's top-level WHERE (a trailing ORDER BY of column
    numbers and ';' left out), each as its tokens; None without a WHERE."""
    depth = 0
    start = None
    for k, t in enumerate(toks):
        if t.kind == "c" and t.value in "([":
            depth += 1
        elif t.kind == "c" and t.value in ")]":
            depth -= 1
        elif depth == 0 and t.is_word("where"):
            start = k + 1
            break
    if start is None:
        return None
    end = len(toks)
    while end > start and toks[end - 1].kind == "c" and toks[end - 1].value == ";":
        end -= 1
    out: list[list[Token]] = [[]]
    depth = 0
    for k in range(start, end):
        t = toks[k]
        if t.kind == "c" and t.value in "([":
            depth += 1
        elif t.kind == "c" and t.value in ")]":
            depth -= 1
        elif depth == 0 and t.is_word("order") and k + 1 < end and toks[k + 1].is_word("by") and all(
                x.kind == "n" or x.kind == "c" and x.value == "," for x in toks[k + 2:end]):
            break
        if depth == 0 and t.is_word("and"):
            out.append([])
            continue
        out[-1].append(t)
    return out


_CONJUNCTS = {  # normalised condition -> what it means
    normalize("n.nspname <> 'pg_catalog'"): "no-catalog",
    normalize("n.nspname !~ '^pg_toast'"): "no-toast",
    normalize("n.nspname <> 'information_schema'"): "no-infoschema",
    normalize("pg_catalog.pg_table_is_visible(c.oid)"): "visible",
}
_PATTERN_HEADS = {normalize("c.relname OPERATOR(pg_catalog.~)"): "c.relname",
                  normalize("n.nspname OPERATOR(pg_catalog.~)"): "n.nspname"}
_PATTERN_TAILS = (normalize(""), normalize("COLLATE pg_catalog.default"))
_RELKIND_IN = normalize("c.relkind IN (")
_RELKIND_ANY = normalize("c.relkind = ANY (")


def _name_pattern(sql: str, cond: list[Token]):
    """`c.relname OPERATOR(pg_catalog.~) 'pattern' [COLLATE pg_catalog.default]` (or n.nspname,
    or $n for the pattern): (which name, pattern token), else None."""
    for k, t in enumerate(cond):
        if t.kind in ("s", "p"):
            which = _PATTERN_HEADS.get(join_tokens(sql, cond[:k]))
            if which is not None and join_tokens(sql, cond[k + 1:]) in _PATTERN_TAILS:
                return which, t
            return None
    return None


def _relkinds(sql: str, cond: list[Token]) -> set[str] | None:
    """The relkinds of `c.relkind IN ('r', 'p')` or `c.relkind = ANY ('{r,p}')`, else None."""
    if not cond or cond[-1].kind != "c" or cond[-1].value != ")":
        return None
    if join_tokens(sql, cond[:5]) == _RELKIND_IN:  # c . relkind in (
        inner = cond[5:-1]
        if not all((t.kind == "s") if k % 2 == 0 else (t.kind == "c" and t.value == ",")
                   for k, t in enumerate(inner)) or len(inner) % 2 == 0:
            return None
        return {t.value for t in inner if t.kind == "s" and t.value}
    inner = cond[6:-1]
    if join_tokens(sql, cond[:6]) == _RELKIND_ANY and len(inner) == 1 and inner[0].kind == "s":  # c . relkind = any (
        text = inner[0].value
        if not (text.startswith("{") and text.endswith("}")):
            return None
        return {x.strip('"') for x in text[1:-1].split(",") if x.strip('"')}
    return None


def _relations(query: Query, toks: list[Token], catalog: Catalog, lookup: bool) -> list[_Rel]:
    """The relations a psql/pgcli list or lookup query selects, every condition of its WHERE understood."""
    conds = _conjuncts(toks)
    if conds is None:
        raise _Unanswerable("no WHERE")
    facts: set[str] = set()
    kinds = None
    rel = nsp = None
    sql = query.sql
    for cond in conds:
        text = join_tokens(sql, cond)
        if text in _CONJUNCTS:
            facts.add(_CONJUNCTS[text])
            continue
        found = _name_pattern(sql, cond)
        if found is not None:
            which, tok = found
            pattern = _pattern(query, tok)
            if which == "c.relname":
                rel = pattern
            else:
                nsp = pattern
            continue
        ks = _relkinds(sql, cond)
        if ks is not None and kinds is None:
            kinds = ks
            continue
        raise _Unanswerable(f"condition {text!r}")
    if lookup == (kinds is not None):
        raise _Unanswerable("a list without relkinds or a lookup with them")
    if nsp is None and not {"no-catalog", "no-infoschema"} <= facts and _may_name_system(rel, query):
        raise _Unanswerable("system relations asked for (\\dS, \\d pg_class)")
    if nsp is not None and isinstance(nsp, re.Pattern) and any(
            nsp.search(s) for s in ("pg_catalog", "information_schema", "pg_toast")):
        raise _Unanswerable("a system schema asked for")
    search_path = _search_path(query)
    out = []
    for t in sorted(catalog.tables.values(), key=lambda t: (t.schema, t.name)):
        if "visible" in facts and t.schema not in search_path:
            continue
        if isinstance(nsp, re.Pattern) and not nsp.search(t.schema):
            continue
        for r in (_Rel(t), _Rel(t, index=True)) if t.key else (_Rel(t),):
            if isinstance(rel, re.Pattern) and not rel.search(r.name):
                continue
            if lookup and r.index:
                if rel is _UNKNOWN:
                    continue  # Describe of a lookup with its pattern a parameter: the columns suffice
                raise _Unanswerable("describing an index")  # \d products_pkey, \d inventory.*: not answered
            if kinds is not None and ("i" if r.index else "r") not in kinds:
                continue
            out.append(r)
    out.sort(key=lambda r: (r.table.schema, r.name))
    return out


def _may_name_system(rel, query: Query) -> bool:
    """Whether a relation-name pattern might match a relation of pg_catalog (whose relations
    are all named pg_...): fakepm knows none of them. Unsure means yes."""
    if rel is _UNKNOWN:
        return False  # Describe: no rows are sent
    if rel is None:
        return True  # no name given: every relation, pg_catalog's too
    m = re.match(r"^\^\(([^.*+?()\[\]{}|\\^$]*)", rel.pattern)  # the literal start of psql's ^(...)$
    prefix = m.group(1) if m else ""
    return prefix.startswith("pg_") or "pg_".startswith(prefix)


_UNKNOWN = object()  # a pattern that is a parameter not bound yet (Describe Statement)


def _pattern(query: Query, tok: Token):
    """A compiled name pattern (a string constant or $n), or _UNKNOWN for a parameter not known yet."""
    if tok.kind == "p":
        idx = tok.value - 1
        if query.describe_only or idx >= len(query.params):
            return _UNKNOWN
        value = query.params[idx]
        if not isinstance(value, str):
            raise _Unanswerable("pattern parameter")
        text = value
    else:
        text = tok.value
    try:
        return re.compile(text)
    except re.error:
        raise _Unanswerable(f"pattern {text!r}") from None


def _server_version_num(query: Query) -> int:
    try:
        return int((query.settings or {}).get("server_version_num", 0))
    except ValueError:
        return 0


def _search_path(query: Query) -> set[str]:
    raw = query.settings.get("search_path", '"$user", public') if query.settings else '"$user", public'
    user = query.connection.user if query.connection else "postgres"
    out = {"pg_catalog"}
    for part in str(raw).split(","):
        name = part.strip()
        if name.startswith('"') and name.endswith('"'):
            name = name[1:-1]
        out.add(user if name == "$user" else name)
    return out
