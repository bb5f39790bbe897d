""""Client writes, CDC sees it": INSERT/UPDATE/DELETE from ordinary connections become WAL changes.

`pg.wal.capture_writes()` adds rules that answer simple writes on declared tables
(`INSERT INTO t (cols) VALUES (...), ...`, `UPDATE t SET c = v, ... WHERE k = v [AND ...]`,
`DELETE FROM t WHERE k = v [AND ...]`, literals or $n parameters) with the right command
tag, keep the table's current rows (starting from its declared `rows`), and emit the
matching change on the stream. Inside BEGIN ... COMMIT the changes of a connection are
emitted as one transaction at COMMIT (dropped at ROLLBACK), as logical decoding would.
"""

from __future__ import annotations

import threading
from decimal import Decimal

from ..protocol.errors import PgError

_WRITE = r"^\s*(?:INSERT\s+INTO|UPDATE|DELETE\s+FROM)\s"
_COMMIT = r"^\s*(?:COMMIT|END)(?:\s+(?:WORK|TRANSACTION))?\s*;?\s*$"
_ROLLBACK = r"^\s*(?:ROLLBACK|ABORT)(?:\s+(?:WORK|TRANSACTION))?\s*;?\s*$"


class WriteCapture:
    def __init__(self, wal, tables=None):
        self.wal = wal
        self.only = None if tables is None else {wal.table(t, "capture_writes").qualname for t in tables}
        self.rows: dict[str, list] = {}  # qualname -> current rows (tuples in column order)
        self.pending: dict[int, list] = {}  # connection id -> [(kind, table, row, old)]
        self.lock = threading.RLock()  # statements of concurrent connections apply one at a time

    def install(self, pg, priority: int = 0) -> None:
        pg.on(regex=_WRITE, priority=priority, name="capture_writes").handle(self.write)
        pg.on(regex=_COMMIT, priority=priority, name="capture_writes:commit").handle(self.commit)
        pg.on(regex=_ROLLBACK, priority=priority, name="capture_writes:rollback").handle(self.rollback)

    # ------------------------------------------------------------------ rule handlers (worker threads)
    def write(self, query):
        import sqlglot
        from sqlglot import exp

        try:
            tree = sqlglot.parse_one(query.sql, read="postgres")
        except sqlglot.errors.ParseError as e:
            raise PgError("42601", f"fakepm capture_writes could not parse the statement: {e}") from None
        if isinstance(tree, exp.Insert):
            return self._insert(tree, query)
        if isinstance(tree, (exp.Update, exp.Delete)):
            return self._update_delete(tree, query)
        raise PgError("0A000", f"fakepm capture_writes handles INSERT/UPDATE/DELETE only, got {query.sql[:100]!r}")

    def commit(self, query):
        from ..answers.result import Result

        conn = query.connection.id if query.connection else 0
        with self.lock:
            changes = self.pending.pop(conn, [])
        if query.transaction_status == "E":
            return Result(tag="ROLLBACK")
        if changes:
            self._emit(changes)
        return Result(tag="COMMIT")

    def rollback(self, query):
        from ..answers.result import Result

        with self.lock:
            self.pending.pop(query.connection.id if query.connection else 0, None)
        return Result(tag="ROLLBACK")

    # ------------------------------------------------------------------ statements
    def _table(self, node):
        name = node.name
        schema = node.db or "public"
        t = self.wal.table(f"{schema}.{name}", "capture_writes")
        if self.only is not None and t.qualname not in self.only:
            raise PgError("0A000", f"fakepm capture_writes: {t.qualname} is not captured")
        with self.lock:
            if t.qualname not in self.rows:
                self.rows[t.qualname] = list(t.rows)
        return t

    def _value(self, node, query, where: str):
        from sqlglot import exp

        if isinstance(node, exp.Null):
            return None
        if isinstance(node, exp.Boolean):
            return bool(node.this)
        if isinstance(node, exp.Literal):
            if node.is_string:
                return node.this
            text = str(node.this)
            return int(text) if text.lstrip("-").isdigit() else Decimal(text)
        if isinstance(node, exp.Neg):
            return -self._value(node.this, query, where)
        if isinstance(node, exp.Parameter):
            i = int(str(node.this.this if hasattr(node.this, "this") else node.this))
            return query.params[i - 1]
        if isinstance(node, exp.Cast):
            return self._value(node.this, query, where)
        raise PgError("0A000", f"fakepm capture_writes: {where}: only literals and $n parameters are supported, "
                               f"got {node.sql(dialect='postgres')!r}")

    def _insert(self, tree, query):
        from sqlglot import exp

        target = tree.this
        if isinstance(target, exp.Schema):
            table = self._table(target.this)
            names = [c.name for c in target.expressions]
        else:
            table = self._table(target)
            names = table.column_names
        values = tree.expression
        if not isinstance(values, exp.Values):
            raise PgError("0A000", "fakepm capture_writes: INSERT ... VALUES only")
        rows = []
        for tup in values.expressions:
            vals = [self._value(v, query, f"INSERT INTO {table.qualname}") for v in tup.expressions]
            if len(vals) != len(names):
                raise PgError("42601", f"INSERT has {len(vals)} expressions but {len(names)} target columns")
            rows.append(dict(zip(names, vals)))
        changes = [("insert", table, row, None) for row in rows]
        self._record(query, changes)
        return f"INSERT 0 {len(rows)}"

    def _conditions(self, where, query, table) -> dict:
        from sqlglot import exp

        out = {}
        todo = [where.this] if where is not None else []
        while todo:
            node = todo.pop()
            if isinstance(node, exp.And):
                todo += [node.this, node.expression]
            elif isinstance(node, exp.EQ) and isinstance(node.this, exp.Column):
                out[node.this.name] = self._value(node.expression, query, f"WHERE of {table.qualname}")
            elif isinstance(node, exp.Paren):
                todo.append(node.this)
            else:
                raise PgError("0A000", "fakepm capture_writes: WHERE must be column = value [AND ...], got "
                                       f"{node.sql(dialect='postgres')!r}")
        return out

    def _update_delete(self, tree, query):
        from sqlglot import exp

        from .wal import natural_row

        table = self._table(tree.this)
        cond = self._conditions(tree.args.get("where"), query, table)
        names = table.column_names
        for c in cond:
            if c not in names:
                raise PgError("42703", f'column "{c}" does not exist')
        want = natural_row(table, cond, f"WHERE of {table.qualname}")
        idx = [names.index(c) for c in cond]
        sets = {}
        if isinstance(tree, exp.Update):
            for eq in tree.expressions:
                sets[eq.this.name] = self._value(eq.expression, query, f"SET of {table.qualname}")
        with self.lock:  # match and change the current rows atomically
            matches = [r for r in self.rows[table.qualname] if all(r[i] == want[i] for i in idx)]
            if isinstance(tree, exp.Update):
                changes = [("update", table, {**dict(zip(names, old)), **sets}, dict(zip(names, old)))
                           for old in matches]
                tag = f"UPDATE {len(matches)}"
            else:
                changes = [("delete", table, dict(zip(names, old)), None) for old in matches]
                tag = f"DELETE {len(matches)}"
            self._record(query, changes)
        return tag

    # ------------------------------------------------------------------ state and emission
    def _record(self, query, changes: list) -> None:
        from .wal import make_change, natural_row

        for kind, table, row, old in changes:  # validate now: a bad value fails the statement
            make_change(kind, table, row, old=old, where=f"{kind} on {table.qualname}")
        with self.lock:
            for kind, table, row, old in changes:
                rows = self.rows[table.qualname]
                if kind == "insert":
                    rows.append(natural_row(table, row, "insert"))
                elif kind == "update":
                    rows[rows.index(natural_row(table, old, "update"))] = natural_row(table, row, "update")
                else:
                    rows.remove(natural_row(table, row, "delete"))
            if query.transaction_status == "T" and query.connection is not None:
                self.pending.setdefault(query.connection.id, []).extend(changes)
                return
        self._emit(changes)

    def _emit(self, changes: list) -> None:
        if not changes:
            return
        with self.wal.transaction(where="capture_writes") as tx:
            for kind, table, row, old in changes:
                if kind == "insert":
                    tx.insert(table, row)
                elif kind == "update":
                    tx.update(table, row, old=old)
                else:
                    tx.delete(table, row)
