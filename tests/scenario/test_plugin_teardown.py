"""The pytest plugin verifies at teardown (unmet `expect:`, unmatched queries) unless verify=False."""

import os
import subprocess
import sys
import textwrap

from serve import REPO

INNER = textwrap.dedent('''
    import psycopg
    import pytest

    SCENARIO = {scenario!r}

    @pytest.mark.fakepm(scenario=SCENARIO)
    def test_unmet_expectation(fakepm):
        pass

    @pytest.mark.fakepm(scenario=SCENARIO)
    def test_unmatched_query(fakepm):
        with psycopg.connect(fakepm.dsn) as c:
            with pytest.raises(psycopg.Error):
                c.execute("SELECT nothing FROM nowhere")
        c = psycopg.connect(fakepm.dsn)
        c.execute("SELECT id FROM orders WHERE id = 1")
        c.close()

    @pytest.mark.fakepm(scenario=SCENARIO, verify=False)
    def test_opted_out(fakepm):
        pass

    @pytest.mark.fakepm(scenario=SCENARIO)
    def test_met(fakepm):
        with psycopg.connect(fakepm.dsn) as c:
            c.execute("SELECT id FROM orders WHERE id = %s", [3])
''')


def test_teardown_verification_and_opt_out(tmp_path):
    scenario = tmp_path / "expect.yaml"
    scenario.write_text(textwrap.dedent("""
        rules:
          - query: SELECT id FROM orders WHERE id = $1
            columns: {id: int8}
            rows: [[1]]
            expect: true
    """))
    (tmp_path / "test_inner.py").write_text(INNER.format(scenario=str(scenario)))
    out = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_inner.py"],
                         capture_output=True, text=True, timeout=120, cwd=tmp_path,
                         env={**os.environ, "PYTHONPATH": os.path.join(REPO, "src")})
    text = out.stdout
    assert out.returncode == 1, text
    assert "4 passed, 2 errors" in text  # the 2 erroring tests passed their call, failed at teardown
    assert "ERROR at teardown of test_unmet_expectation" in text
    assert "expected at least one call, got none: query 'SELECT id FROM orders WHERE id = $1' (expect.yaml:3)" in text
    assert "ERROR at teardown of test_unmatched_query" in text
    assert "no rule matched 'SELECT nothing FROM nowhere'" in text
