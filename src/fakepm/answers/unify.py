"""Unification: does a query's Shape match a rule's, and with which values for the rule's ``$n``.

The templates must be equal; then the slots pair up in order. A rule literal must be
values_equal to the query's value (a query ``$j`` stands for ``params[j-1]``, MISSING before
Bind); a rule ``$k`` takes the query's value in its position, and the same ``$k`` meeting two
different values fails. Fallback shapes (no sqlglot template) pair the rule's ``$k`` with the
query's ``$k``. See unify's docstring; answers/rules.py calls it for every candidate rule.
"""

from __future__ import annotations

from typing import Sequence

from .slots import MISSING, Shape, Slot
from .values import parse_pg_array, values_equal

__all__ = ["unify"]


def _resolve(slot: Slot, params: Sequence):
    """The value a query slot stands for."""
    k = slot.kind
    if k == "literal":
        v = slot.value
        return list(v) if isinstance(v, tuple) else v
    if k == "param":
        i = slot.index - 1
        return params[i] if 0 <= i < len(params) else MISSING
    return [_resolve(s, params) for s in slot.value]


def _bind(out: list, index: int, value) -> bool:
    cur = out[index - 1]
    if cur is _UNSET:
        out[index - 1] = value
        return True
    if cur is MISSING:
        out[index - 1] = value
        return True
    return value is MISSING or values_equal(cur, value)


_UNSET = object()


def _pair(rs: Slot, value, out: list) -> bool:
    k = rs.kind
    if k == "param":
        return _bind(out, rs.index, value)
    if value is MISSING:
        return True
    if k == "literal":
        return values_equal(rs.value if not isinstance(rs.value, tuple) else list(rs.value), value)
    # rule ARRAY[...] with parameters
    if isinstance(value, str):
        value = parse_pg_array(value)
    if not isinstance(value, (list, tuple)) or len(value) != len(rs.value):
        return False
    return all(_pair(sub, v, out) for sub, v in zip(rs.value, value))


def unify(rule: Shape, query: Shape, params: Sequence = ()) -> list | None:
    """The rule's parameter values if `query` matches `rule`, else None.

    The templates must be equal. Item i of the result is the value for the rule's $i+1:
    the query's literal in that position, or params[j-1] for a query $j (MISSING when
    params has no item j-1, e.g. at Describe time). A rule literal must be values_equal to
    the query's value (unchecked against MISSING); the same rule $k meeting two different
    values fails. A $k the rule never uses is None. Fallback shapes (parsed=False) pair the
    rule's $k with the query's $k.
    """
    if rule.text != query.text:
        return None
    n = rule.nparams
    if rule is query or not rule.parsed:
        # the same cached shape (the exact-text fast path) or a fallback template: the
        # rule's $k is the query's $k, and every literal is equal
        lp = len(params)
        return [params[i] if i < lp else MISSING for i in range(n)]
    if len(rule.slots) != len(query.slots):
        return None
    out: list = [_UNSET] * n
    lp = len(params)
    for rs, qs in zip(rule.slots, query.slots):
        if rs.cast is not None and qs.cast is not None and rs.cast != qs.cast:
            return None  # both say which type: `$1::int2` is not `$1::int4` (the answer's type differs)
        qk = qs.kind
        if qk == "literal":
            v = qs.value
            if type(v) is tuple:
                v = list(v)
        elif qk == "param":
            i = qs.index - 1
            v = params[i] if i < lp else MISSING
        else:
            v = _resolve(qs, params)
        rk = rs.kind
        if rk == "param":
            j = rs.index - 1
            cur = out[j]
            if cur is _UNSET or cur is MISSING:
                out[j] = v
            elif v is not MISSING and not values_equal(cur, v):
                return None
        elif rk == "literal":
            if v is MISSING:
                continue
            rv = rs.value
            if type(rv) is tuple:
                rv = list(rv)
            if not values_equal(rv, v):
                return None
        elif not _pair(rs, v, out):
            return None
    return [None if v is _UNSET else v for v in out]
