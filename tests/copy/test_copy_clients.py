"""Real clients move real data through COPY and the test compares it with what was sent.

psql \\copy (text, csv; 8 KiB chunks cut rows), psycopg 3 cursor.copy() (text and binary,
write_row and reading rows back), psycopg2 copy_from/copy_to/copy_expert, asyncpg
copy_records_to_table (binary) / copy_from_query / copy_from_table, pg8000 COPY with a
stream (extended protocol: Sync/Flush arrive during COPY IN).
"""

import asyncio
import csv
import datetime as dt
import io
import os
import shutil
import subprocess
import uuid
from decimal import Decimal

import pytest

from fakepm import FakePostgres
from realpg import needs_install

UTC = dt.timezone.utc


@pytest.fixture
def pg():
    with FakePostgres() as server:
        yield server


def tricky_rows(n: int):
    """Rows with quotes, delimiters, backslashes, embedded newlines/tabs/CRs, NULLs and unicode."""
    words = ["plain", 'say "hi"', "a,b;c", "tab\there", "new\nline", "cr\rlf\r\n", "back\\slash", "\\.", "",
             "ünïcødé ✓ 日本語", "emoji 🐘", "'single'"]
    rows = []
    for i in range(n):
        text = None if i % 13 == 5 else f"{words[i % len(words)]} #{i} " + "x" * (i % 50)
        rows.append((i if i % 17 != 3 else None, text))
    return rows


def text_field(v) -> str:
    """COPY text format, written here independently of fakepm's encoder."""
    if v is None:
        return "\\N"
    s = str(v)
    for ch, esc in (("\\", "\\\\"), ("\n", "\\n"), ("\r", "\\r"), ("\t", "\\t")):
        s = s.replace(ch, esc)
    return s


def text_copy(rows) -> str:
    return "".join("\t".join(text_field(v) for v in r) + "\n" for r in rows)


def psql(dsn, *args, timeout=30):
    env = {**os.environ, "PGCONNECT_TIMEOUT": "5"}
    return subprocess.run(["psql", "-X", "-v", "ON_ERROR_STOP=1", dsn, *args], capture_output=True,
                          timeout=timeout, env=env)


# ---------------------------------------------------------------------------------- psql
needs_psql = needs_install(shutil.which("psql") is None, reason="psql is not installed")


@needs_psql
def test_psql_copy_csv_in_crosses_8k_chunks_then_out_again(pg, tmp_path):
    rows = tricky_rows(3000)  # ~150 kB: psql sends 8 KiB CopyData chunks that cut rows and quoted newlines
    src = tmp_path / "in.csv"
    with open(src, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        for a, b in rows:
            w.writerow(["" if a is None else a, "" if b is None else b])
    # csv can't tell NULL from '' unless quoted: csv.writer leaves '' unquoted, so '' rows load as NULL
    expected = [(a, None if b in (None, "") else b) for a, b in rows]
    pg.table("t", {"a": "int4", "b": "text"})
    r = psql(pg.dsn, "-c", f"\\copy t from '{src}' with (format csv)")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == b"COPY 3000"
    rec = pg.copies[-1]
    assert (rec.table, rec.columns, rec.format, rec.direction) == ("t", ["a", "b"], "csv", "in")
    assert rec.rows == expected

    pg.table("t2", {"a": "int4", "b": "text"}, rows=rows)
    out = tmp_path / "out.csv"
    r = psql(pg.dsn, "-c", f"\\copy t2 to '{out}' csv header")
    assert r.returncode == 0, r.stderr
    with open(out, newline="", encoding="utf-8") as f:
        got = list(csv.reader(f))
    assert got[0] == ["a", "b"]
    assert got[1:] == [["" if a is None else str(a), "" if b is None else b] for a, b in rows]


@needs_psql
def test_psql_copy_text_out_then_in_round_trips(pg, tmp_path):
    rows = tricky_rows(2500)
    pg.table("src", {"a": "int4", "b": "text"}, rows=rows)
    pg.table("dst", {"a": "int4", "b": "text"})
    path = tmp_path / "data.txt"
    r = psql(pg.dsn, "-c", f"\\copy src to '{path}'")
    assert r.returncode == 0, r.stderr
    assert path.stat().st_size > 3 * 8192
    r = psql(pg.dsn, "-c", f"\\copy dst from '{path}'")
    assert r.returncode == 0, r.stderr
    assert pg.copies[-1].rows == rows
    assert [c.direction for c in pg.copies] == ["out", "in"]


@needs_psql
def test_psql_copy_from_stdin_in_a_script_sends_the_end_marker_as_data(pg, tmp_path):
    pg.table("copytest", {"a": "int4", "b": "text"})
    script = tmp_path / "s.sql"
    script.write_text("COPY copytest (a, b) FROM STDIN;\n71\tfromscript\n72\t\\N\n\\.\nSELECT 1;\n")
    r = psql(pg.dsn, "-f", str(script))
    assert r.returncode == 0, r.stderr
    assert pg.copies[-1].rows == [(71, "fromscript"), (72, None)]


@needs_psql
def test_psql_reports_the_bad_line(pg, tmp_path):
    pg.table("t", {"a": "int4", "b": "text"})
    src = tmp_path / "bad.txt"
    src.write_text("".join(f"{i}\tok\n" for i in range(2000)) + "oops\tbad\n" + "1\tafter\n" * 10)
    r = psql(pg.dsn, "-c", f"\\copy t from '{src}'")
    assert r.returncode != 0
    err = r.stderr.decode()
    assert 'invalid input syntax for type integer: "oops"' in err
    assert 'COPY t, line 2001, column a: "oops"' in err
    assert pg.copies[-1].rows == [] and pg.copies[-1].error.startswith("22P02")


# ---------------------------------------------------------------------------------- psycopg 3
TYPED = {"i": "int8", "t": "text", "ts": "timestamptz", "n": "numeric", "b": "bytea", "ok": "bool",
         "f": "float8", "d": "date", "u": "uuid", "j": "jsonb"}


def typed_rows(n: int):
    base = dt.datetime(2024, 1, 2, 3, 4, 5, 123456, tzinfo=UTC)
    return [
        (i, f"row {i} ✓\t\"q\"\n", base + dt.timedelta(seconds=i), Decimal(f"{i}.{i:03d}"), bytes([i % 256, 0, 255]),
         i % 2 == 0, i / 7, dt.date(2024, 1, 1) + dt.timedelta(days=i), uuid.UUID(int=i), {"k": [i, "v"]})
        if i % 5 else (i,) + (None,) * 9
        for i in range(n)
    ]


@pytest.mark.parametrize("binary", [False, True], ids=["text", "binary"])
def test_psycopg3_write_row_and_read_rows_back(pg, binary):
    import psycopg
    from psycopg.types.json import Jsonb

    pg.table("typed", TYPED)
    rows = typed_rows(400)
    fmt = " (FORMAT binary)" if binary else ""
    with psycopg.connect(pg.dsn, autocommit=True) as conn:
        cur = conn.cursor()
        with cur.copy(f"COPY typed FROM STDIN{fmt}") as cp:
            if binary:
                cp.set_types(list(TYPED.values()))
            for r in rows:
                cp.write_row(r[:-1] + (Jsonb(r[-1]) if r[-1] is not None else None,))
        assert cur.rowcount == 400
        rec = pg.copies[-1]
        assert rec.format == ("binary" if binary else "text")
        assert rec.rows == rows
        pg.table("typed_out", TYPED, rows=rows)
        with cur.copy(f"COPY typed_out TO STDOUT{fmt}") as cp:
            cp.set_types(list(TYPED.values()))
            got = list(cp.rows())
        assert got == rows
        assert cur.rowcount == 400


def test_psycopg3_copy_of_a_query_uses_the_matching_rule(pg):
    import psycopg

    pg.on("SELECT id, name FROM users WHERE active").reply(columns={"id": "int4", "name": "text"},
                                                         rows=[[1, "ada"], [2, "grace"]])
    with psycopg.connect(pg.dsn, autocommit=True) as conn:
        with conn.cursor().copy("COPY (SELECT id, name FROM users WHERE active) TO STDOUT (FORMAT csv, HEADER)") \
                as cp:
            data = b"".join(bytes(b) for b in cp)
    assert data == b"id,name\n1,ada\n2,grace\n"
    pg.verify()


def test_psycopg3_streams_many_rows_out(pg):
    import psycopg

    n = 200_000
    pg.on("COPY big TO STDOUT (FORMAT binary)").reply(
        columns={"i": "int4", "s": "text"}, rows=lambda: ((i, "v") for i in range(n)))
    total = last = 0
    with psycopg.connect(pg.dsn, autocommit=True) as conn:
        with conn.cursor().copy("COPY big TO STDOUT (FORMAT binary)") as cp:
            cp.set_types(["int4", "text"])
            for row in cp.rows():
                total += 1
                last = row[0]
    assert (total, last) == (n, n - 1)
    assert pg.copies[-1].count == n


# ---------------------------------------------------------------------------------- psycopg2
def test_psycopg2_copy_from_copy_to_copy_expert(pg):
    import psycopg2

    pg.table("copytest", {"a": "int4", "b": "text"})
    rows = tricky_rows(1500)
    conn = psycopg2.connect(pg.dsn)
    try:
        cur = conn.cursor()
        text = text_copy(rows)
        cur.copy_from(io.StringIO(text), "copytest", columns=("a", "b"))
        assert cur.rowcount == 1500
        assert pg.copies[-1].rows == rows
        assert pg.copies[-1].sql == 'COPY "copytest"("a","b") FROM stdin WITH DELIMITER AS \'\t\' NULL AS \'\\N\''

        pg.table("copyout", {"a": "int4", "b": "text"}, rows=rows)
        buf = io.StringIO()
        cur.copy_to(buf, "copyout")
        assert buf.getvalue() == text

        buf = io.StringIO()
        cur.copy_expert("COPY copyout TO STDOUT WITH (FORMAT csv, FORCE_QUOTE *)", buf)
        buf.seek(0)
        assert [tuple(r) for r in csv.reader(buf)] == [("" if a is None else str(a), "" if b is None else b)
                                                       for a, b in rows]
        cur.copy_expert("COPY copytest FROM STDIN WITH CSV HEADER", io.StringIO('a,b\n3,"x\ny"\n4,\n'))
        assert pg.copies[-1].rows == [(3, "x\ny"), (4, None)]
        conn.commit()
    finally:
        conn.close()


# ---------------------------------------------------------------------------------- asyncpg
def test_asyncpg_copy_records_to_table_binary_and_copy_from_query(pg):
    import asyncpg

    cols = {"i": "int8", "t": "text", "ts": "timestamptz", "n": "numeric", "b": "bytea", "ok": "bool", "f": "float8",
            "d": "date", "u": "uuid"}
    pg.table("copytest", cols)
    rows = [r[:-1] for r in typed_rows(300)]

    async def main():
        conn = await asyncpg.connect(pg.dsn)
        try:
            status = await conn.copy_records_to_table("copytest", records=rows, columns=list(cols))
            assert status == "COPY 300"
            out = io.BytesIO()
            status = await conn.copy_from_query("SELECT $1::int, 'q'", 7, output=out, format="csv")
            assert (status, out.getvalue()) == ("COPY 1", b"7,q\n")
            out = io.BytesIO()
            await conn.copy_from_table("copytest", output=out, columns=["i", "t"], format="csv", header=True)
            return out.getvalue()
        finally:
            await conn.close()

    csv_out = asyncio.run(asyncio.wait_for(main(), 30))
    rec = [c for c in pg.copies if c.direction == "in"][-1]
    assert rec.format == "binary" and rec.rows == rows
    # the declared table has no rows: COPY TO sends the header only
    assert csv_out == b"i,t\n"
    assert 'SELECT "i", "t", "ts", "n", "b", "ok", "f", "d", "u" FROM "copytest" LIMIT 1' not in [
        q.sql for q in pg.queries]  # asyncpg only Describes it; it is never executed


def test_asyncpg_copy_to_table_from_a_text_source(pg):
    import asyncpg

    pg.table("copytest", {"a": "int4", "b": "text"})
    rows = tricky_rows(800)
    data = "".join(f"{'' if a is None else a},{'' if b is None else chr(34) + b.replace(chr(34), chr(34) * 2) + chr(34)}\n"
                   for a, b in rows).encode()

    async def main():
        conn = await asyncpg.connect(pg.dsn)
        try:
            return await conn.copy_to_table("copytest", source=io.BytesIO(data), format="csv")
        finally:
            await conn.close()

    assert asyncio.run(asyncio.wait_for(main(), 30)) == "COPY 800"
    assert pg.copies[-1].rows == rows


# ---------------------------------------------------------------------------------- pg8000
def test_pg8000_copy_with_a_stream_over_the_extended_protocol(pg):
    import pg8000.native

    pg.table("copytest", {"a": "int4", "b": "text"})
    rows = tricky_rows(1200)
    text = text_copy(rows).encode()
    con = pg8000.native.Connection("postgres", host="127.0.0.1", port=pg.port, timeout=20)
    try:
        con.run("COPY copytest FROM STDIN", stream=io.BytesIO(text))
        assert con.row_count == 1200
        assert pg.copies[-1].rows == rows
        pg.table("copyout", {"a": "int4", "b": "text"}, rows=rows)
        out = io.BytesIO()
        con.run("COPY copyout TO STDOUT", stream=out)
        assert out.getvalue() == text
        assert con.run("SELECT 1") == [[1]]  # exactly one ReadyForQuery per COPY: the connection is in step
    finally:
        con.close()
    assert pg.queries[0].protocol == "extended"


def test_pg8000_bad_copy_data_fails_and_the_connection_stays_in_step(pg):
    import pg8000.native

    pg.table("copytest", {"a": "int4", "b": "text"})
    con = pg8000.native.Connection("postgres", host="127.0.0.1", port=pg.port, timeout=20)
    try:
        with pytest.raises(pg8000.native.DatabaseError) as e:
            con.run("COPY copytest FROM STDIN", stream=io.BytesIO(b"1\tok\nx\tbad\n" + b"2\tmore\n" * 5000))
        assert e.value.args[0]["C"] == "22P02"
        assert e.value.args[0]["W"] == 'COPY copytest, line 2, column a: "x"'
        assert con.run("SELECT 1") == [[1]]
    finally:
        con.close()
    assert pg.copies[-1].rows == []
