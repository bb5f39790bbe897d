"""The README's tour is real code: run it as written, so the README stays true."""

import os
import re

README = os.path.join(os.path.dirname(__file__), "..", "README.md")


def _python_block_after(heading: str) -> str:
    with open(README, encoding="utf-8") as fh:
        text = fh.read()
    section = text.split(heading, 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_the_30_second_tour_runs_as_written():
    code = _python_block_after("## A 30-second tour")
    namespace: dict = {}
    exec(compile(code, "README.md (tour)", "exec"), namespace)  # noqa: S102 - our own README
    assert "pg" in namespace and not namespace["pg"].running  # the with-block stopped the server


def test_the_backend_mode_example_runs_as_written():
    from fakepm.engine import EngineError, resolve_engine
    from realpg import missing

    try:
        resolve_engine("postgres").start()
    except EngineError as e:
        missing(f"no PostgreSQL for backend mode: {e}")
    code = _python_block_after("## Backend mode: a real PostgreSQL behind the script")
    namespace: dict = {}
    exec(compile(code, "README.md (backend mode)", "exec"), namespace)  # noqa: S102 - our own README
    assert not namespace["pg"].running


def test_the_copy_both_libpq_example_runs_as_written_in_a_child_process():
    with open(README, encoding="utf-8") as fh:
        text = fh.read()
    section = text.split("### COPY both: a custom two-way channel", 1)[1]
    code = next(block for block in re.findall(r"```python\n(.*?)```", section, re.S) if "subprocess=True" in block)
    namespace: dict = {}
    exec(compile(code, "README.md (COPY both with libpq)", "exec"), namespace)  # noqa: S102 - our own README
    assert not namespace["pg"].running


def test_the_pytest_examples_run_as_written(pytester):
    """The first example as a test file; the module-scoped fixture example with the shop scenario."""
    import shutil

    section = open(README, encoding="utf-8").read().split("## Testing with pytest", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, re.S)
    shutil.copytree(os.path.join(os.path.dirname(README), "scenarios"), pytester.path / "scenarios")
    scoped = next(b for b in blocks if 'scope="module"' in b)
    pytester.makepyfile(test_first=blocks[0], test_scoped="import psycopg\nimport pytest\nfrom fakepm import FakePostgres\n"
                        + scoped + "\n\ndef test_stock(db):\n    with psycopg.connect(db.dsn) as c:\n"
                        "        assert c.execute('SELECT stock FROM products WHERE id = %s', [2]).fetchone() == (8,)\n"
                        "\n\ndef test_again(db):\n    test_stock(db)\n")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-p", "no:hypothesispytest")
    result.assert_outcomes(passed=3)


pytest_plugins = ["pytester"]
