"""A PostgreSQL subscriber's catalog queries, answered from the declared tables and publications.

The texts are those of PG14-16 subscribers (walsender-behavior.md section 6): the
publication check, the published-table list, and per table (tablesync) pg_class,
column list, attributes, row filter, then `COPY ... TO STDOUT` of the table's rows. They
are matched on whitespace-normalised text; anything else returns False (normal rules).
"""

from __future__ import annotations

import re

from ..answers.catalog import Table
from ..answers.result import Column, Result
from ..protocol import messages as m
from ..protocol.copyformat import CopyEncoder, CopyOptions
from ..protocol.types import REGISTRY

_T = REGISTRY.by_name
NAME, NAMES, OID, CHAR, INT2, BOOL, TEXT, INT2VECTOR = (_T("name"), _T("_name"), _T("oid"), _T('"char"'),
                                                         _T("int2"), _T("bool"), _T("text"), _T("int2vector"))
_WS = re.compile(r"\s+")
_PUBS = re.compile(r"IN \(\s*((?:'(?:[^']|'')*'\s*,?\s*)+)\)", re.I)

PUBNAMES = re.compile(r"^SELECT t\.pubname FROM pg_catalog\.pg_publication t WHERE t\.pubname IN", re.I)
TABLES_15 = re.compile(r"^SELECT DISTINCT t\.schemaname, t\.tablename(?: , t\.attnames)? FROM "
                       r"pg_catalog\.pg_publication_tables t WHERE t\.pubname IN", re.I)
TABLES_16 = re.compile(r"^SELECT DISTINCT n\.nspname, c\.relname, gpt\.attrs FROM", re.I)
RELINFO = re.compile(r"^SELECT c\.oid, c\.relreplident, c\.relkind FROM pg_catalog\.pg_class c INNER JOIN "
                     r"pg_catalog\.pg_namespace n ON \(c\.relnamespace = n\.oid\) WHERE n\.nspname = '((?:[^']|'')*)' "
                     r"AND c\.relname = '((?:[^']|'')*)'", re.I)
COLLIST = re.compile(r"^SELECT DISTINCT \(CASE WHEN \(array_length\(gpt\.attrs, 1\) = c\.relnatts\).*"
                     r"gpt\.relid = (\d+)", re.I)
ATTRS = re.compile(r"^SELECT a\.attnum, a\.attname, a\.atttypid, a\.attnum = ANY\(i\.indkey\) FROM "
                   r"pg_catalog\.pg_attribute a .* a\.attrelid = (\d+)", re.I)
ROWFILTER = re.compile(r"^SELECT DISTINCT pg_get_expr\(gpt\.qual, gpt\.relid\) FROM .* gpt\.relid = (\d+)", re.I)
COPY_TABLE = re.compile(r"^COPY ([\w.\"]+) \(([^)]*)\) TO STDOUT$", re.I)
COPY_SELECT = re.compile(r"^COPY \(SELECT (.*?) FROM ONLY ([\w.\"]+)(?: WHERE .*)?\) TO STDOUT$", re.I)


def _norm(sql: str) -> str:
    s = _WS.sub(" ", sql.strip().rstrip(";").strip())
    return s.replace("( ", "(").replace(" )", ")")


def _pub_names(sql: str) -> list[str]:
    mm = _PUBS.search(sql)
    if not mm:
        return []
    return [x.replace("''", "'") for x in re.findall(r"'((?:[^']|'')*)'", mm.group(1))]


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
    elif (mm := RELINFO.match(q)) is not None:
        t = catalog.get(mm.group(2).replace("''", "'"), mm.group(1).replace("''", "'"))
        rows = [(t.oid, t.replica_identity, "r")] if t is not None and t.schema == mm.group(1) else []
        result = Result(_cols(("oid", OID), ("relreplident", CHAR), ("relkind", CHAR)), rows)
    elif COLLIST.match(q):
        result = Result(_cols(("attrs", INT2VECTOR)), [(None,)])
    elif (mm := ATTRS.match(q)) is not None:
        t = catalog.by_oid(int(mm.group(1)))
        rows = []
        if t is not None:
            keys = set(t.key) if t.replica_identity in ("d", "i", "f") else set()
            for i, c in enumerate(t.columns, 1):
                rows.append((i, c.name, c.type.oid, (c.name in keys) if keys else None))
        result = Result(_cols(("attnum", INT2), ("attname", NAME), ("atttypid", OID), ("?column?", BOOL)), rows)
    elif ROWFILTER.match(q):
        result = Result(_cols(("pg_get_expr", TEXT)), [(None,)])
    elif COPY_TABLE.match(q):
        return False  # the COPY engine (answers/copyspec.py) serves declared tables' rows
    elif (mm := COPY_SELECT.match(q)) is not None:
        handled = yield from _copy_out(wal, session, sql, q, mm)
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


def _copy_out(wal, session, sql: str, q: str, mm):
    """tablesync's `COPY (SELECT cols FROM ONLY table WHERE filter) TO STDOUT` (column lists / row
    filters): the declared rows, projected, in COPY text format. The filter is not evaluated.
    """
    from ..answers.catalog import split_name

    catalog = wal.pg.catalog if wal.pg is not None else wal._catalog()
    cols_text, name = mm.group(1), mm.group(2)
    schema, tname = split_name(name)
    table = catalog.get(tname, schema)
    if table is None:
        return False
    wanted = [c.strip().strip('"') for c in cols_text.split(",") if c.strip()]
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
