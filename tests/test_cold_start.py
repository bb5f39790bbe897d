"""Cold start: what `import fakepm` loads, and which first queries can be answered before
sqlglot is imported -- with the same matching results as the shape index.

Behaviour tests (which modules a fresh process has loaded, which rule answers), not timing
tests: bench/bench_startup.py measures the milliseconds.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

from fakepm.answers import match as M
from fakepm.answers import shape as S
from fakepm.answers import rules as R
from fakepm.answers.result import Query

# modules a test that serves plain queries never needs: imported on first use only
_LAZY_MODULES = ("sqlglot", "yaml", "scramp", "fakepm.walsender", "fakepm.protocol.pgoutput", "fakepm.scenario",
                 "fakepm.faults.scenario", "fakepm.proxy", "fakepm.answers.copyspec")


def _run(code: str) -> dict:
    """Run `code` in a fresh interpreter; it prints one JSON object as its last line."""
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _loaded(names) -> str:
    return f"sorted(m for m in sys.modules if m.split('.')[0] == 'sqlglot' or m in {tuple(names)!r} " \
           f"or any(m.startswith(n + '.') for n in {tuple(names)!r}))"


def test_import_fakepm_loads_none_of_the_optional_modules():
    out = _run(f"""
        import json, sys
        import fakepm
        print(json.dumps({{"loaded": {_loaded(_LAZY_MODULES)}}}))
    """)
    assert out["loaded"] == []


def test_every_public_name_imports_and_lazy_names_resolve():
    out = _run("""
        import json, sys
        import fakepm
        before = "fakepm.protocol.pgoutput" in sys.modules
        names = {}
        for name in fakepm.__all__:
            ns = {}
            exec(f"from fakepm import {name}", ns)
            names[name] = type(ns[name]).__name__
        from fakepm.protocol.pgoutput import UNCHANGED_TOAST
        star = {}
        exec("from fakepm import *", star)
        try:
            fakepm.no_such_name
            missing = "no error"
        except AttributeError as e:
            missing = str(e)
        print(json.dumps({"before": before, "names": names, "same": fakepm.UNCHANGED_TOAST is UNCHANGED_TOAST,
                          "in_dir": "UNCHANGED_TOAST" in dir(fakepm), "all": sorted(fakepm.__all__),
                          "star": sorted(n for n in star if n != "__builtins__"), "missing": missing}))
    """)
    assert out["before"] is False  # pgoutput waits for the first UNCHANGED_TOAST
    assert out["same"] and out["in_dir"]
    assert out["star"] == sorted(n for n in out["all"])
    assert out["names"]["FakePostgres"] == "type" and out["names"]["__version__"] == "str"
    assert out["missing"] == "module 'fakepm' has no attribute 'no_such_name'"


def test_a_query_spelled_like_its_rule_is_answered_before_sqlglot_is_imported():
    """psycopg 3 (BEGIN ... COMMIT around the query) over a real socket; then a query spelled
    differently needs the shapes: sqlglot is imported and the same rule answers it."""
    out = _run(f"""
        import json, sys
        import psycopg
        from fakepm import FakePostgres

        def loaded():
            return {_loaded(_LAZY_MODULES)}

        with FakePostgres() as pg:
            pg.on("SELECT name FROM users WHERE id = 1").reply(columns={{"name": "text"}}, rows=[["ada"]])
            pg.on(regex=r"^SHOW fakepm").reply(columns={{"x": "text"}}, rows=[["regex"]])
            after_start = loaded()
            with psycopg.connect(pg.dsn) as conn:
                first = conn.execute("SELECT name FROM users WHERE id = 1").fetchall()
                show = conn.execute("SHOW fakepm_setting").fetchall()
                conn.commit()
                before = loaded()
                other = conn.execute("select name from users where id = 1  -- spelled differently").fetchall()
                conn.commit()
            after = loaded()
            wal_before = "fakepm.walsender" in sys.modules
            pg.wal  # made on first use
            wal_after = "fakepm.walsender" in sys.modules
            pg.verify()
            queries = [q.sql for q in pg.queries]
        print(json.dumps(dict(after_start=after_start, first=first, show=show, before=before, other=other,
                              after=after, wal=[wal_before, wal_after], queries=queries)))
    """)
    assert out["after_start"] == []
    assert out["first"] == [["ada"]] and out["show"] == [["regex"]]
    assert out["before"] == []  # BEGIN, the exact text, SHOW (regex), COMMIT: no sqlglot
    assert out["other"] == [["ada"]]
    assert "sqlglot" in out["after"]
    assert out["wal"] == [False, True]
    assert "SELECT name FROM users WHERE id = 1" in out["queries"]


# -------------------------------------------------------------------------------- same answers
_RULES = [
    dict(query="SELECT name FROM users WHERE id = 1"),
    dict(query="select name from users where id = $1"),
    dict(query="SELECT $1", params=[5]),
    dict(query="SELECT $1"),
    dict(query="SELECT @1"),
    dict(query="BEGIN"),
    dict(query="begin"),
    dict(query="/* note */ COMMIT;"),
    dict(query="SHOW transaction_isolation"),
    dict(query="SET search_path TO public"),
    dict(query="SELECT 1; SELECT 2"),
    dict(query="DECLARE c CURSOR FOR SELECT 1"),
    dict(query="EXPLAIN SELECT 1"),
    dict(query="CREATE TABLE t (id int)", priority=1),
    dict(regex=r"^show"),
    dict(query="commit", user="alice"),
]
_QUERIES = [
    ("BEGIN", []), ("begin", []), (" BEGIN ; ", []), ("COMMIT", []), ("commit", []), ("ROLLBACK", []),
    ("SHOW transaction_isolation", []), ("show TRANSACTION_ISOLATION", []), ("SELECT 1", []), ("select 1", []),
    ("SELECT @1", []), ("SELECT @ 1", []), ("SELECT $1", [5]), ("SELECT $1", [6]), ("SELECT 5", []),
    ("SELECT name FROM users WHERE id = 1", []), ("select name from users where id = 1", []),
    ("SELECT name FROM users WHERE id = $1", [1]), ("SET search_path TO public", []),
    ("SELECT 1; SELECT 2", []), ("DECLARE c CURSOR FOR SELECT 1", []), ("EXPLAIN SELECT 1", []),
    ("create table t (id int)", []), ("", []), ("SELECT 'BEGIN'", []),
]


def _result(rs: R.RuleSet, rules: list, sql: str, params: list):
    m = rs.find(Query(sql, params=list(params)), consume=False)
    return None if m is None else (rules.index(m.rule), m.params)


def _indexed(specs):
    """The shape-index path only: every shortcut switched off (the behaviour before lazy shapes)."""
    rs = R.RuleSet()
    rules = [rs.add(R.Rule(**spec)) for spec in specs]
    for r in rules:
        r._no_markers = False
    rs._only_text = None
    rs._by_text(rs._rules)
    return rs, rules


def _lazy(specs):
    rs = R.RuleSet()
    return rs, [rs.add(R.Rule(**spec)) for spec in specs]


@pytest.mark.parametrize("specs", [_RULES] + [[r] for r in _RULES] + [[_RULES[0], _RULES[0]], [_RULES[5], _RULES[14]]],
                         ids=lambda s: f"{len(s)}-rules:{s[0].get('query') or s[0].get('regex')}")
def test_shortcuts_pick_the_same_rule_and_params_as_the_shape_index(specs):
    for sql, params in _QUERIES:
        ref_rs, ref_rules = _indexed(specs)
        lazy_rs, lazy_rules = _lazy(specs)  # fresh each time: nothing built by an earlier query
        assert _result(lazy_rs, lazy_rules, sql, params) == _result(ref_rs, ref_rules, sql, params), sql
    lazy_rs, lazy_rules = _lazy(specs)  # and one set for the whole sequence (index built midway)
    ref_rs, ref_rules = _indexed(specs)
    for sql, params in _QUERIES * 2:
        assert _result(lazy_rs, lazy_rules, sql, params) == _result(ref_rs, ref_rules, sql, params), sql


def test_could_have_template_never_rules_out_the_real_template():
    texts = {s.text for s in (M.shape_without_sqlglot(sql) for sql, _ in _QUERIES) if s is not None}
    statements = [r["query"] for r in _RULES if "query" in r] + [sql for sql, _ in _QUERIES]
    assert texts
    for sql in statements:
        shape = M.shape_of(sql)
        assert bool(S._PARSED_START.match(shape.text)) == shape.parsed or sql.split()[0] in ("DECLARE", "EXPLAIN")
        for text in texts:
            if not M.could_have_template(sql, text):
                assert shape.text != text, (sql, text)
