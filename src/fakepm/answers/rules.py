"""Ordered rules: which answer a query gets.

Order (documented in the README): among the rules that match a query,
  1. higher `priority` first (default 0);
  2. then rules with `params:` before rules without;
  3. then `query:` rules before `regex:` rules and handlers registered by regex;
  4. then the order in which rules were added (the first one wins).
A rule whose `times` is used up, whose `state.when` is not the current state, or whose
user/database/application_name filter does not fit the connection does not match.

Rules are read by the server's I/O thread and added by the test's thread: the rule list is
copy-on-write (a tuple swapped atomically), so matching takes no lock.
"""

from __future__ import annotations

import difflib
import itertools
import re
import threading
import traceback
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from ..protocol.errors import PgError
from .shape import could_have_template, shape_of, shape_without_sqlglot
from .slots import Shape
from .unify import unify
from .values import values_equal
from .result import Column, Deferred, Query, Result, coerce_rows, make_columns

_seq = itertools.count(1)

# Up to this many rules, a query sqlglot does not shape (BEGIN, SHOW ...) is matched without
# the shapes of the rules sqlglot would shape, as long as no query needed them yet (see _candidates).
_SCAN_LIMIT = 64
_NO_TEXT = object()  # RuleSet._only_text when there is no query rule at all

#: The scenario state before any rule `set` one (global, and per connection): `when: start`.
INITIAL_STATE = "start"


@dataclass
class RuleState:
    """Scenario state machine guard: match only `when` the state is NAME; `set` it after a match."""

    when: str | None = None
    set: str | None = None
    scope: str = "global"  # "global" | "connection"


@dataclass(eq=False)
class Rule:
    query: str | None = None
    regex: "re.Pattern | None" = None
    params: list | None = None
    answers: list = field(default_factory=list)  # Result objects; >1 = a sequence (the last repeats)
    handler: Callable[[Query], Any] | None = None
    columns: tuple[Column, ...] | None = None  # declared columns of a handler (for Describe)
    times: int | None = None
    expect: int | bool | None = None
    priority: int = 0
    user: str | None = None
    database: str | None = None
    application_name: str | None = None
    state: RuleState | None = None
    source: str = ""  # "file.yaml:12" or "test_x.py:34"
    name: str | None = None
    calls: int = 0
    seq: int = field(default_factory=lambda: next(_seq))
    param_types: tuple | None = None  # declared parameter types (names), optional
    _shape: Shape | None = field(default=None, init=False, repr=False)
    # no `$` or `@` in the text: no parameter markers for our lexer or sqlglot (see match_text)
    _no_markers: bool = field(default=False, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.query is None and self.regex is None:
            raise ValueError("a rule needs `query` or `regex`")
        if self.query is not None:
            # the shape is computed on first need: shape_of imports sqlglot (~100 ms once per process)
            self._no_markers = "$" not in self.query and "@" not in self.query
        if isinstance(self.regex, str):
            try:
                self.regex = re.compile(self.regex, re.IGNORECASE | re.DOTALL)
            except re.error as e:
                raise ValueError(f"bad regex {self.regex!r}: {e}") from None

    @property
    def shape(self) -> Shape | None:
        """The query's Shape (None for a regex rule), computed on first use."""
        if self._shape is None and self.query is not None:
            self._shape = shape_of(self.query)
        return self._shape

    # ordering key: smaller sorts first
    @property
    def order(self) -> tuple:
        return (-self.priority, 0 if self.params is not None else 1, 0 if self.query is not None else 1, self.seq)

    @property
    def label(self) -> str:
        what = f"query {self.query!r}" if self.query is not None else f"regex {self.regex.pattern!r}"
        if self.params is not None:
            what += f" params {self.params!r}"
        return f"{self.name + ': ' if self.name else ''}{what}{' (' + self.source + ')' if self.source else ''}"

    def exhausted(self) -> bool:
        return self.times is not None and self.calls >= self.times

    def fits_connection(self, query: Query) -> bool:
        c = query.connection
        if c is None:
            return True
        if self.user is not None and c.user != self.user:
            return False
        if self.database is not None and c.database != self.database:
            return False
        if self.application_name is not None and c.application_name != self.application_name:
            return False
        return True

    def match_text(self, query: Query) -> list | None:
        """The rule's view of the parameters if the SQL matches (ignoring params:), else None."""
        if self.query is not None:
            if self._no_markers and self.query == query.sql:
                # The same text has the same shape, and a text without `$`/`@` has no $n
                # (sqlglot makes parameters of `$n` and `@` only), so unify would give [].
                # Answering without the shapes lets a test whose queries are spelled like its
                # rules run without importing sqlglot.
                return []
            shape = self._shape
            return unify(self.shape if shape is None else shape, query.shape, query.params)
        m = self.regex.search(query.sql)
        if m is None:
            return None
        return list(query.params)

    def params_fit(self, bound: list) -> bool:
        if self.params is None:
            return True
        if len(self.params) != len(bound):
            return False
        return all(values_equal(e, a) for e, a in zip(self.params, bound))

    def next_answer(self) -> Result | None:
        if not self.answers:
            return None
        return self.answers[min(self.calls, len(self.answers) - 1)]


@dataclass
class Match:
    rule: Rule
    params: list


class RuleSet:
    """Rules plus the scenario state; matching runs on the server's I/O thread."""

    def __init__(self) -> None:
        self._rules: tuple[Rule, ...] = ()
        # (rules, query rules by shape text): built on first need for the rules tuple it names
        self._index: tuple[tuple[Rule, ...], dict[str, tuple[Rule, ...]]] | None = None
        self._loose: tuple[Rule, ...] = ()  # regex rules (checked against every query)
        self._only_text: Any = _NO_TEXT  # the query rules' one text as written; None if several
        self._scanned: tuple[tuple[Rule, ...], dict[str, tuple[Rule, ...]]] | None = None  # see _candidates
        self._write_lock = threading.Lock()  # serialises writers only
        self.global_state: str | None = None
        self.connection_state: dict[int, str | None] = {}
        self.handler_failures: list[str] = []

    # -- building ---------------------------------------------------------------------
    def add(self, rule: Rule) -> Rule:
        with self._write_lock:
            rules = tuple(sorted(self._rules + (rule,), key=lambda r: r.order))
            texts = {r.query for r in rules if r.query is not None}
            self._only_text = _NO_TEXT if not texts else (texts.pop() if len(texts) == 1 else None)
            self._loose = tuple(r for r in rules if r.query is None)
            self._rules = rules
        return rule

    def clear(self) -> None:
        with self._write_lock:
            self._rules = ()
            self._index = None
            self._scanned = None
            self._loose = ()
            self._only_text = _NO_TEXT
            self.global_state = None
            self.connection_state = {}
            self.handler_failures = []

    def remove(self, rule: Rule) -> bool:
        """Take one rule out (by identity); False when it is not there."""
        with self._write_lock:
            if not any(r is rule for r in self._rules):
                return False
            rules = tuple(r for r in self._rules if r is not rule)
            texts = {r.query for r in rules if r.query is not None}
            self._only_text = _NO_TEXT if not texts else (texts.pop() if len(texts) == 1 else None)
            self._loose = tuple(r for r in rules if r.query is None)
            self._rules = rules
        return True

    def current_state(self, connection: int | None = None) -> str:
        """The scenario state (of one connection, for `scope: connection` rules)."""
        current = self.global_state if connection is None else self.connection_state.get(connection)
        return INITIAL_STATE if current is None else current

    def set_state(self, state: str, connection: int | None = None) -> None:
        """Move the scenario state machine (as a matching rule's `set:` does)."""
        if connection is None:
            self.global_state = None if state == INITIAL_STATE else state
        else:
            self.connection_state[connection] = None if state == INITIAL_STATE else state

    @property
    def rules(self) -> tuple[Rule, ...]:
        return self._rules

    # -- matching ---------------------------------------------------------------------
    def _state_fits(self, rule: Rule, query: Query) -> bool:
        st = rule.state
        if st is None or st.when is None:
            return True
        if st.scope == "connection":
            cid = query.connection.id if query.connection else 0
            current = self.connection_state.get(cid)
        else:
            current = self.global_state
        return (INITIAL_STATE if current is None else current) == st.when

    def _by_text(self, rules: tuple[Rule, ...]) -> dict[str, tuple[Rule, ...]]:
        by_text: dict[str, list[Rule]] = {}
        for r in rules:
            if r.query is not None:
                by_text.setdefault(r.shape.text, []).append(r)
        built = {k: tuple(v) for k, v in by_text.items()}
        self._index = (rules, built)  # a racing add() swaps _rules: the identity check rebuilds
        return built

    def _scan(self, rules: tuple[Rule, ...], query: Query) -> tuple[Rule, ...] | None:
        """The candidates for a query sqlglot does not shape, found without the shapes of the
        rules sqlglot would shape (could_have_template rules them out); None for other queries."""
        scanned = self._scanned
        if scanned is None or scanned[0] is not rules or len(scanned[1]) > 4096:
            scanned = self._scanned = (rules, {})
        found = scanned[1].get(query.sql)  # keyed by the text as sent: repeats skip even shape_of
        if found is None:
            qshape = shape_without_sqlglot(query.sql)
            if qshape is None:
                return None
            text = qshape.text
            found = scanned[1][query.sql] = tuple(
                r for r in rules
                if r.query is None or (could_have_template(r.query, text) and r.shape.text == text)
            )
        return found

    def _candidates(self, query: Query) -> Sequence[Rule]:
        rules, only = self._rules, self._only_text
        if only is not None and (only is _NO_TEXT or only == query.sql):
            # no query rules, or all of them spelled exactly like this query (so their shapes
            # equal its shape): every rule is a candidate, in order -- no shape needed
            return rules
        index = self._index
        if index is not None and index[0] is rules:
            exact = index[1].get(query.shape.text, ())
        else:
            if len(rules) <= _SCAN_LIMIT:
                # No query needed the rules' shapes yet (sqlglot may not be imported at all)
                found = self._scan(rules, query)
                if found is not None:
                    return found
            exact = self._by_text(rules).get(query.shape.text, ())
        loose = self._loose
        if not loose:
            return exact
        if not exact:
            return loose
        return sorted(exact + loose, key=lambda r: r.order)

    def find(self, query: Query, *, consume: bool = True) -> Match | None:
        """The first matching rule and the parameters it sees; counts the call when consume.
        A rule written exactly as the query (whitespace aside) beats one that only unifies with
        it (`select '0001-01-01'::timestamp` has its own rule even after a `select $1` rule)."""
        if not self._rules:
            return None
        candidates = self._candidates(query)
        if len(candidates) > 1:
            text = " ".join(query.sql.split())
            exact = [r for r in candidates if r.query is not None and " ".join(r.query.split()) == text]
            if exact and len(exact) < len(candidates):
                found = self._first(exact, query, consume)
                if found is not None:
                    return found
        return self._first(candidates, query, consume)

    def _first(self, candidates, query: Query, consume: bool) -> Match | None:
        for rule in candidates:
            if rule.exhausted() or not rule.fits_connection(query) or not self._state_fits(rule, query):
                continue
            bound = rule.match_text(query)
            if bound is None:
                continue
            if not query.describe_only and not rule.params_fit(bound):
                continue
            if consume:
                self._consume(rule, query)
            return Match(rule, bound)
        return None

    def _consume(self, rule: Rule, query: Query) -> None:
        rule.calls += 1
        st = rule.state
        if st is not None and st.set is not None:
            if st.scope == "connection":
                self.connection_state[query.connection.id if query.connection else 0] = st.set
            else:
                self.global_state = st.set

    def nearest(self, query: Query, limit: int = 3) -> list[str]:
        """Human-readable descriptions of the rules closest to a query, with the difference.

        Ranked: rules whose SQL matches (and that something else kept from answering) first, then
        rules of the same statement kind (SELECT, DELETE ...) on the same table, then the same
        kind, then by similarity of the text; differences are shown cut at token boundaries."""
        from ..sql import classify

        scored = []
        text = query.shape.text
        qkind, qtables = classify(query.sql), _tables(query.sql)
        for rule in self._rules:
            rtext = rule.query if rule.query is not None else rule.regex.pattern
            same_kind = classify(rtext) == qkind if rule.query is not None else False
            same_table = bool(qtables & _tables(rtext)) if rule.query is not None else False
            if rule.query is not None:
                bound = rule.match_text(query)
                if bound is not None:
                    why = []
                    if not rule.params_fit(bound):
                        why.append(f"params differ: rule wants {rule.params!r}, query has {bound!r}")
                    if rule.exhausted():
                        why.append(f"used up (times: {rule.times})")
                    if not rule.fits_connection(query):
                        why.append("connection filter (user/database/application_name) does not fit")
                    if not self._state_fits(rule, query):
                        why.append(f"state is {self._current_state(rule, query)!r}, rule wants {rule.state.when!r}")
                    scored.append(((1, 1, 1, 2.0), rule, "; ".join(why) or "matches"))
                else:
                    ratio = difflib.SequenceMatcher(None, rule.shape.text, text).ratio()
                    scored.append(((0, int(same_kind), int(same_kind and same_table), ratio), rule,
                                   token_diff(rule.query, query.sql)))
            else:
                scored.append(((0, 0, 0, 0.1), rule, "regex does not match"))
        scored.sort(key=lambda x: (tuple(-v for v in x[0]), x[1].seq))
        return [f"{rule.label}: {why}" for score, rule, why in scored[:limit] if score[3] > 0.3 or score[2]]

    def _current_state(self, rule: Rule, query: Query):
        if rule.state and rule.state.scope == "connection":
            current = self.connection_state.get(query.connection.id if query.connection else 0)
        else:
            current = self.global_state
        return INITIAL_STATE if current is None else current

    # -- answering --------------------------------------------------------------------
    def answer(self, match: Match, query: Query) -> Result | Deferred:
        rule = match.rule
        if rule.query is not None and not query.params:
            # a simple query's literals, seen through the rule's $n (the journal shows them too);
            # values the client bound itself are kept as sent
            query.params = match.params
        if rule.handler is not None:
            handler = rule.handler

            def compute() -> Result:
                return self._run_handler(rule, handler, query)

            return Deferred(compute=compute, label=rule.label)
        # `calls` was already incremented by find(); the sequence index is calls-1
        answers = rule.answers
        return answers[min(rule.calls - 1, len(answers) - 1)] if answers else Result(columns=None)

    def _run_handler(self, rule: Rule, handler, query: Query) -> Result:
        try:
            out = handler(query)
        except PgError:
            raise
        except Exception as e:  # noqa: BLE001 - user code: report, answer XX000
            tb = traceback.format_exc()
            self.handler_failures.append(f"handler for {rule.label} raised:\n{tb}")
            raise PgError("XX000", f"fakepm handler raised {type(e).__name__}: {e}") from None
        return handler_result(out, rule.columns)

    def describe(self, query: Query) -> Rule | None:
        """The rule that would answer this SQL, ignoring params (Describe Statement)."""
        m = self.find(query, consume=False)
        return m.rule if m else None


def handler_result(out, columns) -> Result:
    """Normalise what a handler returned into a Result."""
    if isinstance(out, Result):
        return out
    if out is None:
        return Result(columns=None)
    if isinstance(out, str):
        return Result(columns=None, tag=out)
    if isinstance(out, PgError):
        return Result(error=out)
    if columns is None:
        raise PgError("XX000", "fakepm handler returned rows but the handler declares no columns=")
    rows = list(out)
    return Result(columns=columns, rows=coerce_rows(columns, rows, where="handler rows"))


def _tables(sql: str) -> frozenset:
    """The table names a statement names after FROM / JOIN / INTO / UPDATE / TABLE (last part,
    lower case): enough to rank near misses, not a parser."""
    from ..sql import tokens

    out = set()
    toks = tokens(sql)
    for i, t in enumerate(toks):
        if t.kind == "w" and t.value in ("from", "join", "into", "update", "table", "truncate", "copy"):
            j = i + 1
            while j < len(toks) and toks[j].is_word("only", "table", "if", "exists", "lateral"):
                j += 1
            name = None
            while j < len(toks) and toks[j].kind in ("w", "q"):
                name = toks[j].value
                if j + 1 < len(toks) and toks[j + 1].kind == "c" and toks[j + 1].value == ".":
                    j += 2
                    continue
                break
            if name is not None:
                out.add(name)  # words are lower case already; quoted names as written
    return frozenset(out)


def token_diff(a: str, b: str, context: int = 2) -> str:
    """Where two SQL texts first differ, each side cut at token boundaries (with `context`
    tokens around): `rule has 'SELECT id, name FROM' where the query has 'SELECT * FROM'`."""
    from ..sql import tokens

    ta, tb = tokens(a), tokens(b)
    sm = difflib.SequenceMatcher(None, [(t.kind, t.value) for t in ta], [(t.kind, t.value) for t in tb],
                                 autojunk=False)
    for op, i1, i2, j1, j2 in sm.get_opcodes():
        if op == "equal":
            continue

        def piece(text, toks, lo, hi):
            lo, hi = max(0, lo - context), min(len(toks), hi + context)
            if lo >= hi:
                return "(nothing)"
            out = text[toks[lo].start:toks[hi - 1].end]
            return ("... " if lo > 0 else "") + out + (" ..." if hi < len(toks) else "")

        return f"rule has {piece(a, ta, i1, i2)!r} where the query has {piece(b, tb, j1, j2)!r}"
    return "SQL differs"


def reply_result(columns=None, rows=None, tag=None, notices=(), notify=(), delay=0.0) -> Result:
    cols = make_columns(columns) if columns is not None else None
    if rows is not None and cols is None:
        raise ValueError("rows given without columns")
    if callable(rows):
        return Result(columns=cols, rows=rows, tag=tag, notices=tuple(notices), notify=tuple(notify), delay=delay)
    coerced = coerce_rows(cols, rows or []) if cols is not None else []
    return Result(
        columns=cols, rows=coerced, tag=tag, notices=tuple(notices), notify=tuple(notify), delay=delay, static=True
    )
