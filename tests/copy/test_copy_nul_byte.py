"""A NUL byte in text or CSV COPY data is refused as PostgreSQL refuses it (22021, naming the
line that holds it), whichever CopyData message it arrives in; psycopg 3 against fakepm and a
real PostgreSQL 15."""

from __future__ import annotations

import psycopg
import pytest

from fakepm import FakePostgres


def _diag(dsn: str, sql: str, chunks) -> tuple:
    with psycopg.connect(dsn, autocommit=True) as c:
        try:
            with c.cursor().copy(sql) as cp:
                for chunk in chunks:
                    cp.write(chunk)
        except psycopg.Error as e:
            return e.diag.sqlstate, e.diag.message_primary, e.diag.context
    return ("no error",)


CASES = [
    ("COPY nul_t FROM STDIN", [b"1\ta\n2\tb\x00c\n3\tc\n"]),
    ("COPY nul_t FROM STDIN", [b"1\ta\n2\tb\n", b"3\t", b"x\x00\n"]),
    ("COPY nul_t FROM STDIN (FORMAT csv)", [b'1,a\n2,"b\x00"\n']),
    ("COPY nul_t FROM STDIN (FORMAT csv, HEADER)", [b"id,name\n1,a\n", b"2,\x00\n"]),
]


@pytest.mark.parametrize("sql, chunks", CASES)
def test_nul_byte_is_refused_like_postgresql(real_pg, sql, chunks):
    with psycopg.connect(real_pg.dsn, autocommit=True) as c:
        c.execute("CREATE TABLE IF NOT EXISTS nul_t (id int8, name text)")
    expected = _diag(real_pg.dsn, sql, chunks)
    assert expected[0] == "22021"
    with FakePostgres() as pg:
        pg.table("nul_t", columns={"id": "int8", "name": "text"})
        assert _diag(pg.dsn, sql, chunks) == expected
        record = pg.copies[-1]
        assert record.rows == [] and record.error.startswith("22021 ")  # nothing kept from a failed COPY
