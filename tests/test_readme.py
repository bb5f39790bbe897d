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
    import pytest

    from fakepm.engine import EngineError, resolve_engine

    try:
        resolve_engine("postgres").start()
    except EngineError as e:
        pytest.skip(f"no PostgreSQL for backend mode: {e}")
    code = _python_block_after("## Backend mode: a real PostgreSQL behind the script")
    namespace: dict = {}
    exec(compile(code, "README.md (backend mode)", "exec"), namespace)  # noqa: S102 - our own README
    assert not namespace["pg"].running
