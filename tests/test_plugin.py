"""The pytest plugin (entry point `pytest11: fakepm`), exercised with pytester (in-process runs: a
subprocess pytest per case costs seconds): the `fakepm` fixture, the `fakepm` marker, teardown
verification, `verify=False`, and the "fakepm transcript" report section."""

import pytest

pytest_plugins = ["pytester"]


@pytest.fixture(scope="module", autouse=True)
def warm_imports():
    """In-process pytester runs restore sys.modules afterwards, dropping modules imported lazily inside
    (sqlglot's dialects, auth helpers), which breaks the next run. Import them all once up front."""
    import psycopg

    from fakepm import FakePostgres

    with FakePostgres(users={"u": {"password": "pw", "auth": "md5"}}) as pg:
        pg.on("SELECT name FROM products WHERE id = $1").reply(columns={"name": "text"}, rows=[["x"]])
        with psycopg.connect(pg.url(user="u", password="pw"), autocommit=True) as conn:
            conn.execute("SELECT name FROM products WHERE id = %s", [1])
            conn.execute("SELECT name FROM products WHERE id = 1")


def run(pytester, source, *args):
    pytester.makepyfile(test_it=source)
    # hypothesis and Faker plugins are not needed inside and cost seconds to re-import per run
    return pytester.runpytest_inprocess("-p", "no:cacheprovider", "-p", "no:hypothesispytest", "-p", "no:faker", *args)


def test_fixture_gives_a_started_server(pytester):
    result = run(pytester, """
        import psycopg

        def test_it(fakepm):
            assert fakepm.running
            fakepm.on("SELECT name FROM users WHERE id = $1").reply(columns={"name": "text"}, rows=[["ada"]])
            with psycopg.connect(fakepm.dsn, autocommit=True) as conn:
                assert conn.execute("SELECT name FROM users WHERE id = %s", [1]).fetchone() == ("ada",)
            assert fakepm.queries[0].params == [1]

        def test_each_test_gets_its_own(fakepm):
            assert fakepm.rules.rules == ()
            assert fakepm.queries == []
    """)
    result.assert_outcomes(passed=2)


def test_stopped_after_the_test(pytester):
    result = run(pytester, """
        seen = []

        def test_a(fakepm):
            seen.append(fakepm)

        def test_b():
            assert not seen[0].running
    """)
    result.assert_outcomes(passed=2)


def test_marker_passes_fakepm_kwargs(pytester):
    result = run(pytester, """
        import psycopg, pytest

        @pytest.mark.fakepm(version="16.2", users={"alice": {"password": "pw", "auth": "md5"}})
        def test_it(fakepm):
            with psycopg.connect(fakepm.url(user="alice", password="pw"), autocommit=True) as conn:
                assert conn.info.parameter_status("server_version") == "16.2"
            with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
                psycopg.connect(fakepm.url(user="alice", password="nope"))
    """)
    result.assert_outcomes(passed=1)


def test_teardown_verify_fails_on_an_unmatched_query(pytester):
    result = run(pytester, """
        import psycopg

        def test_it(fakepm):
            with psycopg.connect(fakepm.dsn, autocommit=True) as conn:
                try:
                    conn.execute("SELECT secret FROM vault")
                except psycopg.Error:
                    pass  # the application swallowed the error: verification still catches it
    """)
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines([
        "*fakepm verification failed*",
        "*no rule matched 'SELECT secret FROM vault'*",
    ])


def test_teardown_verify_fails_on_an_unmet_expectation(pytester):
    result = run(pytester, """
        def test_it(fakepm):
            fakepm.on("UPDATE stock SET n = n - 1", expect=1).reply(tag="UPDATE 1")
    """)
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*expected 1 call(s), got 0*UPDATE stock*"])


def test_verify_false_opts_out(pytester):
    result = run(pytester, """
        import psycopg, pytest

        @pytest.mark.fakepm(verify=False)
        def test_it(fakepm):
            with psycopg.connect(fakepm.dsn, autocommit=True) as conn:
                with pytest.raises(psycopg.Error):
                    conn.execute("SELECT secret FROM vault")
            assert [q.sql for q in fakepm.unmatched] == ["SELECT secret FROM vault"]
    """)
    result.assert_outcomes(passed=1)


def test_transcript_section_on_failure(pytester):
    result = run(pytester, """
        import psycopg

        def test_it(fakepm):
            fakepm.on("SELECT total FROM invoices WHERE id = $1").reply(columns={"total": "int4"}, rows=[[10]])
            with psycopg.connect(fakepm.dsn, autocommit=True) as conn:
                total = conn.execute("SELECT total FROM invoices WHERE id = %s", [5]).fetchone()[0]
            assert total == 11
    """, "-rA")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        "*- fakepm transcript -*",
        "journal (most recent last):",
        "*SELECT total FROM invoices WHERE id = $1* params=[[]5] <- query*",
        "connection #1:",
        "*StartupMessage 3.0*",
    ])


def test_no_transcript_section_when_passing(pytester):
    result = run(pytester, """
        def test_it(fakepm):
            pass
    """, "-rA")
    result.assert_outcomes(passed=1)
    assert "fakepm transcript" not in result.stdout.str()


def test_marker_scenario(pytester):
    pytester.makefile(".yaml", shop="""
        rules:
          - query: SELECT name FROM products WHERE id = $1
            params: [1]
            columns: {name: text}
            rows: [[Widget]]
    """)
    result = run(pytester, """
        import psycopg, pytest

        @pytest.mark.fakepm(scenario="shop.yaml")
        def test_it(fakepm):
            with psycopg.connect(fakepm.dsn, autocommit=True) as conn:
                assert conn.execute("SELECT name FROM products WHERE id = 1").fetchone() == ("Widget",)
    """)
    result.assert_outcomes(passed=1)


def test_plugin_is_registered_by_entry_point(pytester):
    result = pytester.runpytest_inprocess("--markers")
    result.stdout.fnmatch_lines(["*@pytest.mark.fakepm(scenario=None, verify=True, **kwargs)*"])
