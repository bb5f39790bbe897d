"""A PostgreSQL subscriber's catalog queries, answered from the declared tables and publications.

The texts are those of PG14-18 subscribers (walsender-behavior.md section 6; 18's from a real 18.6): the
publication check, the published-table list, and per table (tablesync) pg_class,
column list, attributes, row filter, then `COPY ... TO STDOUT` of the table's rows. They
are matched on whitespace-normalised text, their names and values read from fakepm.sql's
tokens; anything else returns False (normal rules).
"""

from __future__ import annotations

import re

from ..answers.catalog import Table
from ..answers.result import Column, Result
from ..protocol.errors import PgError
from ..protocol import messages as m
from ..protocol.copyformat import CopyEncoder, CopyOptions
from ..protocol.types import REGISTRY
from ..sql.lexer import tokens

_T = REGISTRY.by_name
NAME, NAMES, OID, CHAR, INT2, BOOL, TEXT, INT2VECTOR = (_T("name"), _T("_name"), _T("oid"), _T('"char"'),
                                                         _T("int2"), _T("bool"), _T("text"), _T("int2vector"))
_WS = re.compile(r"\s+")

PUBNAMES = re.compile(r"^SELECT t\.pubname FROM pg_catalog\.pg_publication t WHERE t\.pubname IN", re.I)
TABLES_15 = re.compile(r"^SELECT DISTINCT t\.schemaname, t\.tablename(?: , t\.attnames)? FROM "
                       r"pg_catalog\.pg_publication_tables t WHERE t\.pubname IN", re.I)
TABLES_16 = re.compile(r"^SELECT DISTINCT n\.nspname, c\.relname, gpt\.attrs FROM", re.I)
RELINFO = re.compile(r"^SELECT c\.oid, c\.relreplident, c\.relkind FROM pg_catalog\.pg_class c INNER JOIN "
                     r"pg_catalog\.pg_namespace n ON \(c\.relnamespace = n\.oid\) WHERE n\.nspname = ", re.I)
COLLIST = re.compile(r"^SELECT DISTINCT \(CASE WHEN \(array_length\(gpt\.attrs, 1\) = c\.relnatts\).*"
                     r"gpt\.relid = (\d+)", re.I)
# PostgreSQL 18's subscriber (server >= 18) also asks whether each column is generated (it can publish them)
ATTRS = re.compile(r"^SELECT a\.attnum, a\.attname, a\.atttypid, a\.attnum = ANY\(i\.indkey\)"
                   r"(?P<gen>, a\.attgenerated .*?)? FROM pg_catalog\.pg_attribute a .* a\.attrelid = (\d+)", re.I)
ROWFILTER = re.compile(r"^SELECT DISTINCT pg_get_expr\(gpt\.qual, gpt\.relid\) FROM .* gpt\.relid = (\d+)", re.I)


def _norm(sql: str) -> str:
    s = _WS.sub(" ", sql.strip().rstrip(";").strip())
    return s.replace("( ", "(").replace(" )", ")")


def _pub_names(sql: str) -> list[str]:
    """The publication names of the first `IN ('a', 'b')` (fakepm.sql's string constants)."""
    toks = tokens(sql)
    for k in range(len(toks) - 1):
        if toks[k].is_word("in") and toks[k + 1].kind == "c" and toks[k + 1].value == "(":
            names = []
            for j, t in enumerate(toks[k + 2:]):
                if j % 2 == 0 and t.kind == "s":
                    names.append(t.value)
                elif j % 2 == 1 and t.kind == "c" and t.value in ",)":
                    if t.value == ")":
                        return names
                else:
                    break
    return []


def _attgenerated_item(sql: str) -> bool:
    """PostgreSQL 18's attribute query asks `a.attgenerated != ''` (read from fakepm.sql's tokens)."""
    toks = tokens(sql)
    for k in range(len(toks) - 4):
        a, dot, col, op, lit = toks[k:k + 5]
        if (a.is_word("a") and dot.kind == "c" and dot.value == "." and col.is_word("attgenerated")
                and op.kind == "o" and op.value in ("!=", "<>") and lit.kind == "s" and lit.value == ""):
            return True
    return False


def _relinfo_names(sql: str) -> tuple[str | None, str | None]:
    """(schema, table) of tablesync's `... WHERE n.nspname = 'x' AND c.relname = 'y'`."""
    toks = tokens(sql)
    found: dict[str, str] = {}
    for k in range(len(toks) - 4):
        a, dot, b, eq, lit = toks[k:k + 5]
        if (a.kind == "w" and dot.kind == "c" and dot.value == "." and b.kind == "w" and eq.kind == "o"
                and eq.value == "=" and lit.kind == "s"):
            found.setdefault(f"{a.value}.{b.value}", lit.value)
    return found.get("n.nspname"), found.get("c.relname")


def _copy_select(sql: str):
    """tablesync's `COPY (SELECT a, b FROM ONLY s.t [WHERE ...]) TO STDOUT`: (column names, schema
    or None, table), read by the COPY grammar and fakepm.sql's tokens; else None."""
    from ..answers.copyspec import parse_copy

    try:
        st = parse_copy(sql)
    except PgError:
        return None
    if st.query is None or st.direction != "out" or st.endpoint != "stdout":
        return None
    toks = tokens(st.query)
    if not toks or not toks[0].is_word("select"):
        return None
    cols, i = [], 1
    while i < len(toks) and toks[i].kind in ("w", "q") and not toks[i].is_word("from"):
        cols.append(toks[i].value)
        i += 1
        if i < len(toks) and toks[i].kind == "c" and toks[i].value == ",":
            i += 1
    if not cols or i + 2 >= len(toks) or not (toks[i].is_word("from") and toks[i + 1].is_word("only")):
        return None
    name = [toks[i + 2]]
    i += 3
    if i + 1 < len(toks) and toks[i].kind == "c" and toks[i].value == "." and toks[i + 1].kind in ("w", "q"):
        name.append(toks[i + 1])
        i += 2
    if any(t.kind not in ("w", "q") for t in name) or not (i == len(toks) or toks[i].is_word("where")):
        return None
    return cols, (name[0].value if len(name) == 2 else None), name[-1].value


def _published_tables(wal, names: list[str]) -> list[Table]:
    catalog = wal.pg.catalog if wal.pg is not None else wal._catalog()
    tables = list(catalog.tables.values())
    if wal.publications is None:
        return tables
    out = []
    for t in tables:
        for n in names:
            spec = wal.publications.get(n)
            if spec is not None and (spec["tables"] is None or t.qualname in spec["tables"]):
                out.append(t)
                break
    return out


def _cols(*pairs) -> tuple:
    return tuple(Column(n, t) for n, t in pairs)


def answer_catalog_query(wal, session, sql: str):
    """Generator: True when this was a subscriber catalog query (answered), else False."""
    q = _norm(sql)
    catalog = wal.pg.catalog if wal.pg is not None else wal._catalog()
    result = None
    if PUBNAMES.match(q):
        names = _pub_names(q)
        known = names if wal.publications is None else [n for n in names if n in wal.publications]
        result = Result(_cols(("pubname", NAME)), [(n,) for n in known])
    elif TABLES_15.match(q):
        tables = _published_tables(wal, _pub_names(q))
        if ", t.attnames" in q:
            result = Result(_cols(("schemaname", NAME), ("tablename", NAME), ("attnames", NAMES)),
                            [(t.schema, t.name, t.column_names) for t in tables])
        else:
            result = Result(_cols(("schemaname", NAME), ("tablename", NAME)), [(t.schema, t.name) for t in tables])
    elif TABLES_16.match(q):
        tables = _published_tables(wal, _pub_names(q))
        result = Result(_cols(("nspname", NAME), ("relname", NAME), ("attrs", INT2VECTOR)),
                        [(t.schema, t.name, list(range(1, len(t.columns) + 1))) for t in tables])
    elif RELINFO.match(q) and None not in (names := _relinfo_names(sql)):
        schema, name = names
        t = catalog.get(name, schema)
        rows = [(t.oid, t.replica_identity, "r")] if t is not None and t.schema == schema else []
        result = Result(_cols(("oid", OID), ("relreplident", CHAR), ("relkind", CHAR)), rows)
    elif COLLIST.match(q):
        result = Result(_cols(("attrs", INT2VECTOR)), [(None,)])
    elif (mm := ATTRS.match(q)) is not None:
        t = catalog.by_oid(int(mm.group(2)))
        gen = mm.group("gen") is not None  # declared columns are never generated ones
        if gen and not _attgenerated_item(sql):
            return False
        rows = []
        if t is not None:
            keys = set(t.key) if t.replica_identity in ("d", "i", "f") else set()
            for i, c in enumerate(t.columns, 1):
                rows.append((i, c.name, c.type.oid, (c.name in keys) if keys else None) + ((False,) if gen else ()))
        result = Result(_cols(("attnum", INT2), ("attname", NAME), ("atttypid", OID), ("?column?", BOOL),
                              *((("?column?", BOOL),) if gen else ())), rows)
    elif ROWFILTER.match(q):
        result = Result(_cols(("pg_get_expr", TEXT)), [(None,)])
    elif q[:5].upper() == "COPY " and (found := _copy_select(sql)) is not None:
        # (COPY of a whole table is the COPY engine's: answers/copyspec.py serves declared tables' rows)
        handled = yield from _copy_out(wal, session, sql, found)
        return handled
    if result is None:
        return False
    from ..answers.selectlist import conform

    result = conform(result, sql, rename=True)  # another subscriber version's select list: not this answer
    if result is None:
        return False
    wal._journal(session, sql, None, "walsender:catalog")
    yield from session.emit_result(result, sql, (), None)
    session.ready_for_query()
    return True


def _copy_out(wal, session, sql: str, found):
    """tablesync's `COPY (SELECT cols FROM ONLY table WHERE filter) TO STDOUT` (column lists / row
    filters): the declared rows, projected, in COPY text format. The filter is not evaluated.
    """
    catalog = wal.pg.catalog if wal.pg is not None else wal._catalog()
    wanted, schema, tname = found
    table = catalog.get(tname, schema or "public")
    if table is None:
        return False
    idx = []
    for w in wanted:
        if w not in table.column_names:
            return False
        idx.append(table.column_names.index(w))
    cols = [table.columns[i] for i in idx]
    out = [m.CopyOutResponse(0, (0,) * len(cols)).encode()]
    encoder = CopyEncoder(CopyOptions(), [c.type for c in cols], [c.name for c in cols])  # text format
    for row in table.rows:
        out.append(m.copy_data(encoder.row([row[i] for i in idx])))
    out.append(m.COPY_DONE)
    out.append(m.command_complete(f"COPY {len(table.rows)}"))
    wal._journal(session, sql, None, "walsender:tablesync-copy")
    session.send(b"".join(out))
    session.ready_for_query()
    return True
    yield
