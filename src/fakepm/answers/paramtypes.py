"""Parameter types from a statement's text: what a Describe answers for an untyped ``$n``.

When a client Parses ``SELECT name FROM users WHERE id = $1`` without types, PostgreSQL infers
int4 for ``$1`` from the column; fakepm does the same from the hints answers/shape.py records
while it shapes a statement (``param_hints``: explicit casts, LIMIT/OFFSET, the other side of
a comparison, INSERT column positions), and ``infer_param_types`` turns them into type names,
asking the declared tables for column types.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Callable

from .slots import Shape, Slot
from .typenames import dt_name

__all__ = ["infer_param_types", "param_hints"]


def _literal_type(slot: Slot) -> str | None:
    if slot.cast:
        return slot.cast
    if slot.kind != "literal":
        return None
    v = slot.value
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, int):
        return "int4" if -(2**31) <= v < 2**31 else ("int8" if -(2**63) <= v < 2**63 else "numeric")
    if isinstance(v, Decimal):
        return "numeric"
    return None


def _scope_tables(scope, exp) -> list[tuple[str | None, str | None, str]]:
    """(alias or None, schema or None, table) for the tables a statement reads directly."""
    out = []

    def add(t):
        if isinstance(t, exp.Schema):
            t = t.this
        if isinstance(t, exp.Table) and isinstance(t.this, exp.Identifier):
            alias = t.alias or None
            out.append((alias, t.db or None, t.name))

    if isinstance(scope, (exp.Update, exp.Delete, exp.Insert, exp.Merge)):
        add(scope.this)
    frm = scope.args.get("from_") or scope.args.get("from")
    if frm is not None:
        add(frm.this)
        for extra in frm.expressions or ():
            add(extra)
    for j in scope.args.get("joins") or ():
        add(j.this)
    for u in scope.args.get("using") or ():
        add(u)
    if isinstance(scope, exp.Merge):
        add(scope.args.get("using"))
    return out


def _column_hints(col, exp, array: bool) -> list:
    name = col.name
    qual = col.table or None
    db = col.db or None
    suffix = "[]" if array else ""
    scope = col.parent
    scopes = (exp.Select, exp.Update, exp.Delete, exp.Insert, exp.Merge)
    while scope is not None:
        if isinstance(scope, scopes):
            tables = _scope_tables(scope, exp)
            if qual:
                hit = [t for t in tables if t[0] == qual or (t[0] is None and t[2] == qual and (db is None or t[1] == db))]
            else:
                hit = tables
            if hit:
                return [("c", s, tb, name, suffix) for _, s, tb in hit]
        scope = scope.parent
    if qual:
        return [("c", db, qual, name, suffix)]
    return []


def _operand_hints(other, exp, marker_slots: dict, array: bool = False) -> list:
    while isinstance(other, exp.Paren):
        other = other.this
    if isinstance(other, exp.Column) and isinstance(other.this, exp.Identifier):
        return _column_hints(other, exp, array)
    if isinstance(other, exp.Var) and id(other) in marker_slots:
        t = _literal_type(marker_slots[id(other)])
        return [("t", t + ("[]" if array else ""))] if t else []
    if isinstance(other, exp.Cast):
        t = dt_name(other.args.get("to"))
        return [("t", t + ("[]" if array else ""))] if t else []
    return []


_CMP = None


def param_hints(markers: list, nparams: int, exp) -> tuple:
    global _CMP
    if _CMP is None:
        names = ("EQ", "NEQ", "GT", "GTE", "LT", "LTE", "Like", "ILike", "NullSafeEQ", "NullSafeNEQ", "Add",
                 "Sub", "Mul", "Div", "Mod", "DPipe", "SimilarTo", "RegexpLike", "RegexpILike")
        _CMP = tuple(c for c in (getattr(exp, n, None) for n in names) if c is not None)
    hints: list[list] = [[] for _ in range(nparams)]
    marker_slots = {id(m): s for m, s in markers}

    def context(node, array_elem: bool) -> list:
        out = []
        parent = node.parent
        while isinstance(parent, exp.Paren):
            node, parent = parent, parent.parent
        if isinstance(parent, (exp.Limit, exp.Offset, exp.Fetch)):
            return [("t", "int8")]
        if isinstance(parent, (exp.Any, exp.All)):
            cmp = parent.parent
            while isinstance(cmp, exp.Paren):
                cmp = cmp.parent
            if isinstance(cmp, _CMP):
                other = cmp.this if cmp.expression is parent or cmp.expression is parent.parent else cmp.expression
                return _operand_hints(other, exp, marker_slots, array=not array_elem)
            return out
        if isinstance(parent, _CMP):
            other = parent.expression if parent.this is node else parent.this
            return _operand_hints(other, exp, marker_slots)
        if isinstance(parent, exp.In) and node is not parent.this:
            return _operand_hints(parent.this, exp, marker_slots)
        if isinstance(parent, exp.Between) and node is not parent.this:
            return _operand_hints(parent.this, exp, marker_slots)
        if isinstance(parent, exp.Tuple) and isinstance(parent.parent, exp.Values):
            ins = parent.parent.parent
            if isinstance(ins, exp.Insert) and isinstance(ins.this, exp.Schema):
                cols = ins.this.expressions
                idx = next((k for k, x in enumerate(parent.expressions) if x is node), -1)
                if 0 <= idx < len(cols):
                    t = ins.this.this
                    return [("c", t.db or None, t.name, cols[idx].name, "")]
        return out

    for marker, slot in markers:
        if slot.kind == "param":
            h = hints[slot.index - 1]
            if slot.cast:
                h.append(("t", slot.cast))
            h.extend(context(marker, False))
        elif slot.kind == "array":
            elem_ctx = None
            for sub in slot.value:
                if sub.kind != "param":
                    continue
                h = hints[sub.index - 1]
                if sub.cast:
                    h.append(("t", sub.cast))
                elif slot.cast and slot.cast.endswith("[]"):
                    h.append(("t", slot.cast[:-2]))
                else:
                    if elem_ctx is None:
                        elem_ctx = context(marker, True)
                    h.extend(elem_ctx)
    return tuple(tuple(h) for h in hints)


def infer_param_types(
    shape: Shape, column_types: Callable[[str | None, str, str], str | None] | None = None
) -> list[str | None]:
    """Type names for the statement's $1..$n (None: unknown, the caller uses text).

    In priority order per parameter: an explicit cast on it; LIMIT/OFFSET/FETCH -> int8;
    the other side of a comparison / arithmetic / LIKE / IN / BETWEEN / = ANY(...) (a
    column via column_types(schema_or_None, table, column), suffixed "[]" for ``= ANY($n)``;
    a cast expression; a literal: int4/int8/numeric/bool); INSERT INTO t (cols) VALUES
    (...) positions and UPDATE SET col = $n via column_types. Fallback shapes only know casts
    and LIMIT/OFFSET.
    """
    out: list[str | None] = [None] * shape.nparams
    for i, cands in enumerate(shape.hints[: shape.nparams]):
        for c in cands:
            if c[0] == "t":
                out[i] = c[1]
                break
            if c[0] == "c" and column_types is not None:
                try:
                    t = column_types(c[1], c[2], c[3])
                except Exception:  # noqa: BLE001 - a user callback
                    t = None
                if t:
                    out[i] = t + c[4]
                    break
    return out
