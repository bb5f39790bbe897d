"""Longer robustness runs than CI affords: `python -m fakepm.fuzz --seconds 300`.

Targets (all by default):
  session  arbitrary frontend bytes fed to a Session in-process, in random splits: no
           internal error, and a connection closed by fakepm ends with a FATAL ErrorResponse
           naming the problem (never XX000, never a traceback);
  sockets  arbitrary frontend bytes over real sockets to one running server, then a
           well-behaved psycopg client must still be served;
  drivers  random fault plans against psycopg 3 and asyncpg: only their documented exception
           types, never a hang (each attempt bounded).

Each target runs hypothesis in rounds of `--batch` examples until its share of the time is
used; prints one line per target (cases, cases/s, problems) and exits 1 if any problem was
found (the first few are printed with the failing input).
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import struct
import sys
import threading
import time

END_REASONS = ("client sent Terminate", "cancel request", "client closed the connection")


# ------------------------------------------------------------------------------ checks
def backend_messages(data: bytes) -> list:
    """(type, body) pairs of a backend byte stream (stops at an incomplete message)."""
    out, pos = [], 0
    while pos + 5 <= len(data):
        (n,) = struct.unpack_from("!i", data, pos + 1)
        out.append((data[pos:pos + 1], data[pos + 5:pos + 1 + n]))
        pos += 1 + n
    return out


def error_fields(body: bytes) -> dict:
    out = {}
    for part in body.split(b"\0"):
        if part:
            out[part[:1].decode("latin-1")] = part[1:].decode("utf-8", "replace")
    return out


def check_session_bytes(pg, data: bytes, splits=()) -> None:
    """Feed `data` to a new in-process Session of `pg` (a FakePostgres, started or not);
    raise AssertionError when fakepm misbehaves."""
    pg.journal.clear()
    s = pg._make_session(("127.0.0.1", 5432), False)
    out = []
    pos = 0
    for cut in sorted(splits) + [len(data)]:
        s.receive(data[pos:cut], 0.0)
        out.append(s.data_to_send())
        pos = max(pos, cut)
        if s.closed:
            break
    try:
        errors = [e for e in pg.journal.events if e["kind"] == "internal_error"]
        assert not errors, errors[0]["error"]
        if s.closed and s.close_reason not in END_REASONS:
            stream = b"".join(out)
            while stream[:1] in (b"N", b"S") and stream[1:2] != b"\0":
                stream = stream[1:]  # single-byte SSL/GSS answers
            if stream.startswith(b"EFATAL:  unsupported frontend protocol ") and stream.endswith(b"\n\0"):
                return  # a client asking for protocol < 3 gets PostgreSQL's pre-3.0 error format
            msgs = backend_messages(stream)
            assert msgs, f"closed ({s.close_reason}) without telling the client"
            t, body = msgs[-1]
            assert t == b"E", f"closed ({s.close_reason}); last message {t!r}"
            f = error_fields(body)
            assert f.get("S") == "FATAL" and f.get("C") and f.get("M"), f
            assert "Traceback" not in f.get("M", "") and f.get("C") != "XX000", f
    finally:
        s.close("check over")


def check_socket_bytes(pg, data: bytes) -> None:
    with socket.create_connection(("127.0.0.1", pg.port), timeout=2) as sock:
        try:
            sock.sendall(data)
            sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        sock.settimeout(1.0)
        deadline = time.monotonic() + 2
        while time.monotonic() < deadline:
            try:
                if not sock.recv(65536):
                    break
            except (OSError, socket.timeout):
                break
    errors = [e for e in pg.events if e["kind"] == "internal_error"]
    assert not errors, errors[0]["error"]
    assert not pg._loop.errors, pg._loop.errors[0]


def bounded(fn, seconds: float):
    box: list = []

    def run():
        try:
            box.append(("ok", fn()))
        except BaseException as e:  # noqa: BLE001 - inspected by the caller
            box.append(("raised", e))

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(seconds)
    if t.is_alive():
        raise AssertionError(f"the driver hung for more than {seconds} s")
    return box[0]


# ------------------------------------------------------------------------------ runner
class Target:
    def __init__(self, name: str):
        self.name = name
        self.cases = 0
        self.problems: list[str] = []
        self.seconds = 0.0


def _run_rounds(target: Target, test_factory, seconds: float, batch: int) -> None:
    from hypothesis import HealthCheck, settings

    deadline = time.monotonic() + seconds
    start = time.monotonic()
    while time.monotonic() < deadline and len(target.problems) < 5:
        test = test_factory()
        wrapped = settings(max_examples=batch, deadline=None, database=None, derandomize=False,
                           suppress_health_check=list(HealthCheck))(test)
        try:
            wrapped()
        except Exception as e:  # noqa: BLE001 - a found problem: hypothesis prints the input
            subs = getattr(e, "exceptions", ())  # FlakyFailure / ExceptionGroup: say what failed
            detail = "".join(f"\n    caused by {type(x).__name__}: {x}" for x in subs)
            target.problems.append(f"{type(e).__name__}: {e}{detail}"[:3000])
    target.seconds = time.monotonic() - start


def fuzz_session(seconds: float, batch: int) -> Target:
    from hypothesis import given
    from hypothesis import strategies as st

    from .server import FakePostgres
    from .strategies import frontend_bytes

    target = Target("session")
    pg = FakePostgres()

    def factory():
        @given(data=frontend_bytes(), splits=st.lists(st.integers(0, 200), max_size=4))
        def test(data, splits):
            target.cases += 1
            check_session_bytes(pg, data, splits)

        return test

    _run_rounds(target, factory, seconds, batch)
    return target


def fuzz_sockets(seconds: float, batch: int) -> Target:
    import psycopg
    from hypothesis import given

    from .server import FakePostgres
    from .strategies import frontend_bytes

    target = Target("sockets")
    with FakePostgres() as pg:
        def factory():
            @given(data=frontend_bytes())
            def test(data):
                target.cases += 1
                check_socket_bytes(pg, data)
                if target.cases % 20 == 0:
                    with psycopg.connect(pg.dsn, connect_timeout=3) as conn:
                        assert conn.execute("SELECT 1").fetchone() == (1,)

            return test

        _run_rounds(target, factory, seconds, batch)
    return target


def fuzz_drivers(seconds: float, batch: int) -> Target:
    import asyncpg
    import psycopg
    from asyncpg.exceptions._base import InternalClientError
    from hypothesis import given
    from hypothesis import strategies as st

    from .server import FakePostgres
    from .strategies import query_fault_plans

    p_raises = (psycopg.Error, UnicodeDecodeError)
    a_raises = (asyncpg.PostgresError, asyncpg.InterfaceError, InternalClientError, asyncio.TimeoutError,
                ConnectionError, UnicodeDecodeError)
    sql = "SELECT y FROM t"
    target = Target("drivers")
    with FakePostgres() as pg:
        def with_psycopg():
            with psycopg.connect(pg.dsn, autocommit=True, connect_timeout=3) as conn:
                return conn.execute(sql).fetchall()

        async def with_asyncpg():
            conn = await asyncpg.connect(pg.dsn, timeout=3)
            try:
                return await conn.fetch(sql, timeout=1.0)
            finally:
                conn.terminate()

        def factory():
            @given(plans=st.lists(query_fault_plans(max_hang=0.2), min_size=1, max_size=3))
            def test(plans):
                target.cases += 1
                pg.rules.clear()
                pg.on(sql).reply(columns={"y": "text"}, rows=[["a"], ["b"], ["c"]], fault=plans)
                kind, value = bounded(with_psycopg, 8)
                assert kind == "ok" or isinstance(value, p_raises), f"psycopg raised {value!r}"
                if any("garbage" in p for p in plans):
                    return  # asyncpg 0.32 may spin holding the GIL on random bytes: nothing could stop it
                pg.journal.clear()
                pg.rules.clear()
                pg.on(sql).reply(columns={"y": "text"}, rows=[["a"], ["b"], ["c"]], fault=plans)
                kind, value = bounded(lambda: asyncio.run(with_asyncpg()), 8)
                assert kind == "ok" or isinstance(value, a_raises), f"asyncpg raised {value!r}"
                errors = [e for e in pg.events if e["kind"] == "internal_error"]
                assert not errors, errors[0]["error"]
                pg.journal.clear()

            return test

        _run_rounds(target, factory, seconds, batch)
    return target


TARGETS = {"session": fuzz_session, "sockets": fuzz_sockets, "drivers": fuzz_drivers}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m fakepm.fuzz", description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=60.0, help="total time, shared by the targets (default 60)")
    ap.add_argument("--targets", default="session,sockets,drivers", help="comma-separated: " + ", ".join(TARGETS))
    ap.add_argument("--batch", type=int, default=500, help="hypothesis examples per round (default 500)")
    args = ap.parse_args(argv)
    names = [n.strip() for n in args.targets.split(",") if n.strip()]
    unknown = [n for n in names if n not in TARGETS]
    if unknown:
        ap.error(f"unknown target(s) {', '.join(unknown)}; known: {', '.join(TARGETS)}")
    share = args.seconds / len(names)
    failed = False
    for name in names:
        t = TARGETS[name](share, args.batch if name == "session" else max(1, args.batch // 10))
        rate = t.cases / t.seconds if t.seconds else 0.0
        print(f"{t.name:8} cases={t.cases:<8} seconds={t.seconds:7.1f} cases/s={rate:8.1f} problems={len(t.problems)}",
              flush=True)
        for p in t.problems[:3]:
            print("  problem:", p.replace("\n", "\n    "))
        failed |= bool(t.problems)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
