"""The README's "Testing CDC consumers" examples run as written."""

import os
import re

import pytest

from fakepm import FakePostgres

README = os.path.join(os.path.dirname(__file__), "..", "..", "README.md")


def _section() -> str:
    text = open(README).read()
    start = text.index("## Testing CDC consumers")
    end = text.index("\n## ", start + 10)
    return text[start:end]


def test_python_example_runs():
    pytest.importorskip("psycopg2")
    code = re.findall(r"```python\n(.*?)```", _section(), re.S)[0]
    exec(compile(code, "README.md (Testing CDC consumers)", "exec"), {})


def test_yaml_example_loads(tmp_path):
    text = re.findall(r"```yaml\n(.*?)```", _section(), re.S)[0]
    path = tmp_path / "cdc.yaml"
    path.write_text(text)
    pg = FakePostgres(str(path))
    assert list(pg.wal.slots) == ["sub1"] and pg.catalog.get("public.orders").rows == [(1, pg.catalog.get(
        "public.orders").rows[0][1], None)]
    kinds = [type(r).__name__ for r in pg.wal.log.records]
    assert kinds == ["Txn", "Marker", "Txn", "NonTxMessage", "Marker"]
