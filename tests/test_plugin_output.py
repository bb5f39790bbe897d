"""What a failing test or teardown prints: fakepm's report and transcript, never fakepm's source.

Run with pytester in a subprocess (a real pytest run, its whole output): a teardown failing on an
`expect:` shows the report, the transcript section, and no line of the fixture or of verify()."""

import inspect

import pytest

import fakepm.pytest_plugin
import fakepm.server

pytest_plugins = ["pytester"]


def _source_lines(*objects) -> set[str]:
    out = set()
    for obj in objects:
        for line in inspect.getsource(obj).splitlines():
            line = line.strip()
            if len(line) > 12 and not line.startswith(("#", '"""', "def ", "@")):
                out.add(line)
    return out


@pytest.mark.parametrize("subprocess", [False, True], ids=["in-process", "subprocess"])
def test_a_failing_teardown_shows_the_report_and_the_transcript_not_fakepms_source(pytester, subprocess):
    pytester.makepyfile(test_it=f"""
        import psycopg
        import pytest

        @pytest.mark.fakepm(subprocess={subprocess})
        def test_it(fakepm):
            fakepm.on("UPDATE accounts SET balance = 0", expect=2).reply(tag="UPDATE 1")
            with psycopg.connect(fakepm.dsn, autocommit=True) as conn:
                conn.execute("UPDATE accounts SET balance = 0")
    """)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-p", "no:hypothesispytest")
    result.assert_outcomes(passed=1, errors=1)
    out = result.stdout.str()
    assert "fakepm verification failed" in out and "expected 2 call(s), got 1" in out
    assert "fakepm transcript" in out and "UPDATE accounts SET balance = 0" in out
    leaked = [line for line in _source_lines(fakepm.pytest_plugin.fakepm, fakepm.server.FakePostgres.verify,
                                             fakepm.server.FakePostgres.problems)
              if line in out]
    assert leaked == []
    assert len(out.splitlines()) < 60  # the 87 lines were mostly fakepm's own source


def test_a_failing_verify_in_the_test_shows_the_callers_line_not_verify(pytester):
    pytester.makepyfile(test_it="""
        def test_it(fakepm):
            fakepm.on("SELECT 1", expect=True).reply(columns={"x": "int4"}, rows=[[1]])
            fakepm.verify()
    """)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-p", "no:hypothesispytest")
    result.assert_outcomes(failed=1)
    out = result.stdout.str()
    assert "fakepm.verify()" in out and "expected at least one call, got none" in out
    assert "problems = self.problems()" not in out
