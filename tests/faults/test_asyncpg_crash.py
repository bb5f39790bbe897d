"""A finding of `python -m fakepm.fuzz`: asyncpg 0.32 dies with SIGSEGV when a reply starts
with these 27 bytes (`garbage: 27, seed: 122`; the length field reads -1836022098). The client
runs in its own process; fakepm must survive, whatever the driver does."""

import subprocess
import sys

import psycopg

from fakepm import FakePostgres

CRASH = b"\xbf\x92\x90\x82\xaeC\x8b6\xdc\xdd\xd4\x980\x806\xdf\xeeicM\x18\xc2\xd7\xe8\x8d\x16\xee"

CLIENT = """
import asyncio, sys, asyncpg
async def go():
    c = await asyncpg.connect(sys.argv[1], timeout=5)
    try:
        await c.fetch("SELECT y FROM t", timeout=2)
    finally:
        c.terminate()
try:
    asyncio.run(go())
except (asyncpg.PostgresError, asyncpg.InterfaceError, ConnectionError, asyncio.TimeoutError) as e:
    print("raised", type(e).__name__)
"""


def test_asyncpg_on_a_huge_negative_length_and_fakepm_survives():
    with FakePostgres() as pg:
        pg.on("SELECT y FROM t").reply(columns={"y": "text"}, rows=[["a"]], fault={"send": CRASH})
        assert pg.faults.plans == () and CRASH[:1] == b"\xbf"
        r = subprocess.run([sys.executable, "-c", CLIENT, pg.dsn], capture_output=True, text=True, timeout=60)
        # asyncpg 0.32.0 crashes (-11); a fixed asyncpg raises one of its documented errors
        assert r.returncode == -11 or (r.returncode == 0 and r.stdout.startswith("raised")), (r.returncode, r.stderr)
        with psycopg.connect(pg.dsn, autocommit=True) as conn:  # the server goes on
            assert conn.execute("SELECT 1").fetchone() == (1,)
        assert not [e for e in pg.events if e["kind"] == "internal_error"]
