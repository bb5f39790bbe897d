"""SQL text on the hot path: lexing, splitting, classifying, shaping, matching, and the session's
CPU per query for statements that lean on them. In-process, no sockets (the CPU a query costs
fakepm, without the noise of a shared machine's scheduler).

    .venv/bin/python bench/sqltext.py                       # this checkout's fakepm
    .venv/bin/python bench/sqltext.py --against OTHER/src   # and another tree's, alternating, with ratios

`--against` runs both trees N times in fresh processes, alternating (PYTHONPATH decides which
fakepm is imported), and prints medians and new/old ratios (>1: slower than the other tree).
Used for issue 17 (one lexer): the other tree was HEAD with the lexer commits reverted.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
import timeit

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.join(os.path.dirname(HERE), "src")

RULE = "SELECT name FROM users WHERE id = $1"
QUERY = "select  name from users where id = 5;"
LONG = ("SELECT a.attname, pg_catalog.format_type(a.atttypid, a.atttypmod), (SELECT pg_catalog.pg_get_expr(d.adbin, "
        "d.adrelid, true) FROM pg_catalog.pg_attrdef d WHERE d.adrelid = a.attrelid AND d.adnum = a.attnum AND "
        "a.atthasdef), a.attnotnull, (SELECT c.collname FROM pg_catalog.pg_collation c, pg_catalog.pg_type t WHERE "
        "c.oid = a.attcollation AND t.oid = a.atttypid AND a.attcollation <> t.typcollation) AS attcollation, "
        "a.attidentity, a.attgenerated FROM pg_catalog.pg_attribute a WHERE a.attrelid = '16384' AND a.attnum > 0 "
        "AND NOT a.attisdropped ORDER BY a.attnum;")
MULTI = "BEGIN; SELECT 'a;b', $$x;y$$ FROM t -- c;\n; COMMIT"
INSERT200 = "INSERT INTO t (a, b) VALUES " + ", ".join(f"({i}, 'v{i}')" for i in range(200))


def _best(fn, n: int, repeat: int = 7) -> float:
    """Best of `repeat` timeit runs, µs per call."""
    return min(timeit.repeat(fn, number=n, repeat=repeat)) / n * 1e6


def functions() -> dict[str, float]:
    """µs per call of the SQL-text functions, cached and cold (works on trees before and after issue 17)."""
    from fakepm.answers import match as M
    from fakepm.answers.rules import Rule, RuleSet
    from fakepm.answers.result import Query

    try:  # after issue 17: fakepm.sql
        from fakepm.answers import shape as shape_mod
        from fakepm.sql import count_params
        from fakepm.sql import statements as ST
        from fakepm.sql import tags as TG
        scan_split, classify_cold, values_rows = ST._scan_split, TG._classify.__wrapped__, TG._values_rows
    except ImportError:  # before: everything in answers/match.py, count_params in the session
        from fakepm.session.connection import count_params
        shape_mod = M
        scan_split, classify_cold, values_rows = M._scan_split, M._classify.__wrapped__, \
            M.insert_values_rows.__wrapped__
    rules = RuleSet()
    for i in range(50):
        rules.add(Rule(query=f"SELECT c{i} FROM t{i} WHERE id = $1"))
    rules.add(Rule(query=RULE))

    def cold_fallback():
        shape_mod._shape_cached.cache_clear()
        M.shape_of("SHOW transaction_isolation")

    def cold_sqlglot():
        shape_mod._shape_cached.cache_clear()
        M.shape_of(RULE)

    M.shape_of(QUERY), M.shape_of(RULE), rules.find(Query(QUERY, params=[]), consume=False)
    return {
        "shape_of, cached": _best(lambda: M.shape_of(QUERY), 20000),
        "shape_of x2 + unify, cached": _best(lambda: M.unify(M.shape_of(RULE), M.shape_of(QUERY), ()), 20000),
        "rules.find among 51 rules": _best(lambda: rules.find(Query(QUERY, params=[]), consume=False), 5000),
        "split_statements, no ';'": _best(lambda: M.split_statements("SELECT 1"), 20000),
        "split_statements, 3 statements, cached": _best(lambda: M.split_statements(MULTI), 20000),
        "split, 3 statements, cold": _best(lambda: scan_split(MULTI), 5000),
        "classify, cached": _best(lambda: M.classify(QUERY), 20000),
        "classify, cold (psql's 600-char query)": _best(lambda: classify_cold(LONG), 5000),
        "default_tag, cached": _best(lambda: M.default_tag(QUERY, 1), 20000),
        "count_params, short": _best(lambda: count_params(RULE), 20000),
        "count_params, 600 chars": _best(lambda: count_params(LONG), 2000),
        "insert_values_rows, cold, 200 rows": _best(lambda: values_rows(INSERT200), 200),
        "shape_of, cold, fallback (SHOW)": _best(cold_fallback, 2000),
        "shape_of, cold, sqlglot": _best(cold_sqlglot, 100),
    }


def session(n: int = 2000) -> dict[str, float]:
    """CPU µs per query of a sans-I/O Session (rules + builtins), after a warm-up."""
    from fakepm.answers.builtin import Builtins
    from fakepm.answers.catalog import Catalog
    from fakepm.answers.responder import Responder
    from fakepm.answers.rules import Rule, RuleSet, reply_result
    from fakepm.protocol import messages as m
    from fakepm.session.config import ServerConfig
    from fakepm.session.connection import Session
    from fakepm.session.hub import Hub, Journal

    config, rules = ServerConfig(users=None), RuleSet()
    for i in range(30):
        rules.add(Rule(query=f"SELECT c{i} FROM t{i} WHERE id = $1", answers=[reply_result({"c": "text"}, [["x"]], None)]))
    rules.add(Rule(query=RULE, answers=[reply_result({"name": "text"}, [["ada"]], None)]))
    rules.add(Rule(query="INSERT INTO items (a, b) VALUES ($1, $2)", answers=[reply_result(None, None, None)]))
    s = Session(Hub(Journal(), lambda: 0.0), config, Responder(rules, Builtins(config), Catalog()),
                peer=("127.0.0.1", 50000))
    s.receive(m.StartupMessage(m.PROTOCOL_3_0, {"user": "postgres"}).encode())
    s.data_to_send()

    def drain(request: bytes) -> None:
        s.receive(request)
        while True:
            out = s.data_to_send()
            if out[-6:] in (b"Z\x00\x00\x00\x05I", b"Z\x00\x00\x00\x05T"):
                return
            s.resume_output()

    def ext(sql: str, params: list[str]) -> bytes:
        return (m.Parse("", sql, ()).encode() + m.Bind("", "", (0,) * len(params), tuple(p.encode() for p in params),
                                                         (0,)).encode()
                + m.Describe("P", "").encode() + m.Execute("", 0).encode() + m.Sync().encode())

    cases = {
        "Query `SELECT 1`": lambda i: m.Query("SELECT 1").encode(),
        "Query, a rule, the same text": lambda i: m.Query("SELECT name FROM users WHERE id = 5").encode(),
        "Query, a rule, a new literal each time": lambda i: m.Query(f"SELECT name FROM users WHERE id = {i}").encode(),
        "Query `BEGIN; SET ...; SHOW ...; COMMIT`": lambda i: m.Query(
            "BEGIN; SET application_name = 'a b'; SHOW application_name; COMMIT").encode(),
        "Query, INSERT of 3 rows, new literals": lambda i: m.Query(
            f"INSERT INTO items (a, b) VALUES ({i}, 'x'), ({i}, 'y;z'), ({i}, $$w$$)").encode(),
        "Parse/Bind/Describe/Execute, a rule's $1": lambda i: ext(RULE, ["5"]),
        "Parse/Bind/Describe/Execute, a new text each time": lambda i: ext(f"{RULE} /* {i} */", ["5"]),
    }
    out = {}
    for label, make in cases.items():
        requests = [make(i) for i in range(n)]
        for r in requests[:50]:
            drain(r)
        t0 = time.process_time()
        for r in requests:
            drain(r)
        out[label] = (time.process_time() - t0) / n * 1e6
    return out


def measure() -> dict[str, float]:
    return {**{f"fn: {k}": v for k, v in functions().items()}, **{f"session: {k}": v for k, v in session().items()}}


def main() -> int:
    args = sys.argv[1:]
    if args[:1] == ["--child"]:
        print(json.dumps(measure()))
        return 0
    if args[:1] != ["--against"]:
        for k, v in measure().items():
            print(f"{v:10.3f} µs  {k}")
        return 0
    other, runs = args[1], int(args[2]) if len(args) > 2 else 3
    results: dict[str, list[dict]] = {"this": [], "other": []}
    for _ in range(runs):
        for label, src in (("other", other), ("this", SRC)):
            env = dict(os.environ, PYTHONPATH=src)
            out = subprocess.run([sys.executable, __file__, "--child"], env=env, capture_output=True, text=True,
                                 check=True, cwd="/")
            results[label].append(json.loads(out.stdout))
    print(f"| what (µs, median of {runs} fresh processes) | other tree | this tree | this/other |")
    print("|---|---|---|---|")
    for k in results["this"][0]:
        a = statistics.median(r[k] for r in results["other"])
        b = statistics.median(r[k] for r in results["this"])
        print(f"| {k} | {a:,.2f} | {b:,.2f} | {b / a:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
