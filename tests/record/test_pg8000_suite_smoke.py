"""A fast smoke run of bench/pg8000_suite.py (the three numbers of issue 13: direct, through
`fakepm record`, replayed by `fakepm serve`), on a few tests written in pg8000's own style; the
real suite (pg8000's tests at the installed version's tag) runs with `python bench/pg8000_suite.py`."""

from __future__ import annotations

import importlib.util
import os
import textwrap

import pytest

pytest.importorskip("pg8000")
pytestmark = pytest.mark.realpg

BENCH = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "bench")

MINI = '''
from io import BytesIO
from os import environ

import pytest
from pg8000.native import Connection, DatabaseError


@pytest.fixture
def con():
    c = Connection(user="postgres", host=environ["PGHOST"], port=int(environ["PGPORT"]))
    yield c
    c.close()


def test_params_and_types(con):
    assert con.run("select :a::int2 + 1, :b::text, '{1,2,3}'::int[]", a=3, b="x") == [[4, "x", [1, 2, 3]]]


def test_table_copy_and_counts(con):
    con.run("begin")
    con.run("create temporary table t1 (f1 int primary key, f2 text) on commit drop")
    for n in (0, 0, 1):
        assert con.run("select count(*) from t1 where f1 > :n", n=n) == [[0]]
    con.run("copy t1 from stdin", stream=BytesIO(b"1\\ta\\n2\\tb\\n"))
    assert con.row_count == 2
    assert con.run("select f1, f2 from t1 order by f1") == [[1, "a"], [2, "b"]]
    con.run("commit")


def test_error_then_recovery(con):
    with pytest.raises(DatabaseError, match="42P01"):
        con.run("select * from missing_table")
    assert con.run("select 1") == [[1]]


def test_settings_change_text(con):
    con.run("set datestyle = 'German'")
    assert con.run("select '2000-01-02'::date::text") == [["02.01.2000"]]


def test_missing_database_is_refused():
    with pytest.raises(DatabaseError, match="3D000"):
        Connection(user="postgres", host=environ["PGHOST"], port=int(environ["PGPORT"]), database="missing-db")
'''


def test_the_three_numbers_on_a_small_suite(tmp_path):
    from realpg import skip_unless_postgres

    skip_unless_postgres("15")
    spec = importlib.util.spec_from_file_location("pg8000_suite", os.path.join(BENCH, "pg8000_suite.py"))
    suite = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(suite)
    src = tmp_path / "src"
    (src / "test").mkdir(parents=True)
    (src / "test" / "__init__.py").write_text("")
    (src / "test" / "test_mini.py").write_text(textwrap.dedent(MINI))
    res = suite.measure(str(src), str(tmp_path / "work"), [], timeout=300)
    direct, recorded, replayed = res["passed"]
    assert len(direct) == 5, res["a"]
    assert res["lost_b"] == [] and recorded == direct, res["b"]
    assert replayed == recorded, res["c"]
    assert len(res["lines"]) == 4 and "100.0%" in res["lines"][3]
