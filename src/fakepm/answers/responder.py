"""The Responder: one place that turns a Query into an answer, for every session.

The answer chain (`chain`): user rules (Python and YAML share one RuleSet), then in pure
mode the session's own commands (BEGIN, SET, cursors, ...; the session passes them in) and
the builtins, in backend mode the engine (ENGINE: the session relays the statement), and
last the "no rule matched" error (FP000).
"""

from __future__ import annotations

from inspect import isgenerator

from ..protocol.errors import NO_RULE_MATCHED, PgError
from ..protocol.types import REGISTRY
from .builtin import Builtins
from .paramtypes import infer_param_types
from .pgcatalog import answer_catalog_query
from .result import Query, Result
from .rules import RuleSet


# Errors PostgreSQL raises while analysing a statement at Parse (names, types, grouping), not
# when running it; for utility statements (DDL, TRUNCATE ...) only a syntax error comes at Parse.
PARSE_TIME_ERRORS = frozenset({
    "42601",  # syntax_error
    "42P01", "42703", "42883", "42704", "42P02",  # undefined table / column / function / object / parameter
    "42702", "42725",  # ambiguous column / function
    "42804", "42P18", "42846", "42803", "42P10", "42611", "42P20", "42P19",  # typing, grouping, windows
})
_ANALYSED_KINDS = frozenset({"SELECT", "INSERT", "UPDATE", "DELETE", "WITH", "VALUES", "MERGE", "TABLE"})


ENGINE = "engine"  # the chain's answer in backend mode when no rule answers: the engine does


class Responder:
    def __init__(self, rules: RuleSet, builtins: Builtins, tables=None):
        self.rules = rules
        self.builtins = builtins
        self.tables = tables  # scenario-declared tables (name -> columns), used for type inference

    def answer(self, query: Query):
        """(Result | Deferred, label) from the user rules, or (None, None)."""
        match = self.rules.find(query)
        if match is None:
            return None, None
        return self.rules.answer(match, query), match.rule.label

    def chain(self, query: Query, session_commands=None, backend: bool = False):
        """Generator -> (answer, label): the whole answer chain for one statement (module doc).

        `session_commands(query)` gives (answer or a generator of it, label) for statements the
        session answers from its own state. In backend mode the answer after the rules is ENGINE.
        (None, None): nothing answers (the caller sends no_match_error)."""
        answer, label = self.answer(query)
        if answer is not None:
            return answer, label
        if backend:
            return ENGINE, ENGINE
        if session_commands is not None:
            answer, label = session_commands(query)
            if isgenerator(answer):
                answer = yield from answer
            if answer is not None:
                return answer, label
        return self.builtin(query)

    def could_answer(self, query: Query) -> bool:
        """Could a rule answer this SQL, whatever its parameters? (backend mode: keep it here)"""
        if not self.rules.rules:
            return False
        query.describe_only = True
        return self.rules.find(query, consume=False) is not None

    def builtin(self, query: Query):
        if query.kind == "COPY":
            from .copyspec import builtin_copy

            res = builtin_copy(query, self.tables)
            return (res, "builtin:copy") if res is not None else (None, None)
        if self.tables and "pg_catalog." in query.sql:  # psql's \d / \dt over declared tables
            res = answer_catalog_query(query, self.tables)
            if res is not None:
                return res, "builtin:pgcatalog"
        return self.builtins.answer(query)

    def parse_error(self, query: Query):
        """(PgError, label) when the rule for this SQL answers with an error that PostgreSQL would
        raise at Parse (an undefined table in a SELECT, a syntax error ...), else None. Only a
        rule whose answer cannot depend on the parameters (no `params:`, no handler); the rule's
        call is counted, as Execute would have."""
        query.describe_only = True  # parameters are not known at Parse
        rule = self.rules.describe(query)
        if rule is None or rule.handler is not None or rule.params is not None:
            return None
        answer = rule.next_answer()
        err = answer.error if answer is not None else None
        if err is None or err.code not in PARSE_TIME_ERRORS or answer.delay or answer.notices \
                or (err.code != "42601" and query.kind not in _ANALYSED_KINDS):
            return None
        self.rules.find(query)  # count the call (and follow a `state` transition) as Execute would
        return err, rule.label

    def describe(self, query: Query, session=None):
        """Result columns for Describe Statement (None = NoData)."""
        rule = self.rules.describe(query)
        if rule is not None:
            if rule.handler is not None:
                return rule.columns
            ans = rule.answers[0] if rule.answers else None
            return ans.columns if ans is not None else None
        if session is not None:
            from ..session import commands

            cols = commands.describe(session, query)
            if cols is not commands.UNKNOWN:
                return cols
        from .copyspec import describe_declared_select  # asyncpg's `SELECT a, b FROM t LIMIT 1` before COPY

        cols = describe_declared_select(query.sql, self.tables)
        if cols is not None:
            return cols
        if self.tables and "pg_catalog." in query.sql:
            res = answer_catalog_query(query, self.tables)
            if res is not None:
                return res.columns
        return self.builtins.describe(query)

    def infer_param_types(self, query: Query, n: int) -> list:
        """PgTypes (or None) for parameters sent with OID 0, as PostgreSQL would infer them."""
        names = infer_param_types(query.shape, self._column_type)
        out = [None] * n
        for i, name in enumerate(names[:n]):
            if name:
                try:
                    out[i] = REGISTRY.parse_type_spec(name)[0]
                except Exception:  # noqa: BLE001 - an unknown type name: leave it to text
                    out[i] = None
        # a rule with `param_types:` or typed `params:` values fills the gaps
        query.describe_only = True
        m = self.rules.find(query, consume=False)
        query.describe_only = False
        if m is not None:
            rule = m.rule
            for i in range(n):
                if out[i] is not None:
                    continue
                if rule.param_types and i < len(rule.param_types) and rule.param_types[i]:
                    out[i] = REGISTRY.parse_type_spec(rule.param_types[i])[0]
                elif rule.params is not None and i < len(rule.params) and rule.params[i] is not None:
                    out[i] = REGISTRY.infer(rule.params[i])
        return out

    def _column_type(self, schema, table, column):
        cols = self.tables.column_types(schema, table) if self.tables else None
        if not cols:
            return None
        return cols.get(column)

    def no_match_error(self, query: Query) -> PgError:
        near = self.rules.nearest(query)
        hint = None
        if near:
            hint = "nearest rules:\n  " + "\n  ".join(near)
        else:
            hint = "no rules are defined; add one with pg.on(...) or a scenario file"
        return PgError(
            NO_RULE_MATCHED,
            f"fakepm: no rule matches this query: {query.sql[:500]}",
            detail=f"params: {query.params!r}" if query.params else None,
            hint=hint,
        )


__all__ = ["ENGINE", "Responder", "Result"]
