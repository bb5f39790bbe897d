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
