"""Every fault kind, observed by real drivers over real sockets; each test asserts what the
driver does (exception class, SQLSTATE or message), so users can see their driver's reaction.
The README "Faults" table is written from these tests."""

import asyncio
import subprocess

import asyncpg
import pg8000.dbapi
import psycopg
import psycopg2
import pytest

from fakepm import FakePostgres
from realpg import need_program

SQL = "SELECT y FROM t"
ROWS = [["a"], ["b"], ["c"]]
LOST = "server closed the connection unexpectedly"


@pytest.fixture(scope="module")
def pg():
    with FakePostgres() as server:
        yield server


@pytest.fixture
def fresh(pg):
    pg.rules.clear()
    pg.clear_faults()
    pg.journal.clear()
    yield pg
    assert not [e for e in pg.events if e["kind"] == "internal_error"]
    assert not pg._loop.errors
    pg.clear_faults()


def answer(pg, fault, columns=None):
    pg.on(SQL).reply(columns=columns or {"y": "text"}, rows=ROWS, fault=fault)


def run_psycopg(pg, sql=SQL):
    with psycopg.connect(pg.dsn, autocommit=True, connect_timeout=3) as conn:
        return conn.execute(sql).fetchall()


def run_psycopg2(pg, sql=SQL):
    conn = psycopg2.connect(pg.dsn, connect_timeout=3)
    try:
        conn.autocommit = True
        cur = conn.cursor()
        cur.execute(sql)
        return cur.fetchall()
    finally:
        conn.close()


def run_pg8000(pg, sql=SQL):
    conn = pg8000.dbapi.connect(user="postgres", host="127.0.0.1", port=pg.port, database="postgres", timeout=3)
    try:
        cur = conn.cursor()
        cur.execute(sql)
        return cur.fetchall()
    finally:
        try:
            conn.close()
        except Exception:  # noqa: BLE001 - the connection is usually broken by the fault
            pass


def run_asyncpg(pg, sql=SQL, timeout=3.0):
    async def go():
        conn = await asyncpg.connect(pg.dsn, timeout=3)
        try:
            return await conn.fetch(sql, timeout=timeout)
        finally:
            conn.terminate()

    return asyncio.run(asyncio.wait_for(go(), 10))


RUN = {"psycopg": run_psycopg, "psycopg2": run_psycopg2, "pg8000": run_pg8000, "asyncpg": run_asyncpg}
OK = object()

# fault -> {driver: (exception class, message part) | OK}
CASES = {
    "close": ({"close": True}, {
        "psycopg": (psycopg.OperationalError, LOST), "psycopg2": (psycopg2.OperationalError, LOST),
        "asyncpg": (asyncpg.ConnectionDoesNotExistError, "closed in the middle of operation"),
        "pg8000": (pg8000.dbapi.InterfaceError, "network error")}),
    "reset": ({"reset": True}, {
        "psycopg": (psycopg.OperationalError, LOST),
        "asyncpg": (asyncpg.ConnectionDoesNotExistError, "closed in the middle of operation"),
        "pg8000": (ConnectionResetError, "Connection reset by peer")}),
    "hang": ({"hang": 0.2}, {
        "psycopg": (psycopg.OperationalError, LOST),
        "asyncpg": (asyncpg.ConnectionDoesNotExistError, "closed in the middle of operation")}),
    "delay fixed": ({"delay": 0.02}, {"psycopg": OK, "asyncpg": OK}),
    "delay uniform": ({"delay": {"uniform": [0.0, 0.02]}, "seed": 3}, {"psycopg": OK, "asyncpg": OK}),
    "delay lognormal": ({"delay": {"lognormal": {"mu": -5, "sigma": 0.5}}}, {"psycopg": OK, "asyncpg": OK}),
    "dribble rows": ({"dribble": 0.03}, {"psycopg": OK, "psycopg2": OK, "asyncpg": OK}),
    "dribble bytes": ({"dribble": {"seconds": 0.03, "by": "bytes", "pieces": 8}}, {"psycopg": OK, "asyncpg": OK}),
    "slice every byte": ({"slice": {"every": 1, "limit": 120}}, {"psycopg": OK, "asyncpg": OK, "pg8000": OK}),
    "slice inside header": ({"slice": [1, 2, 3, 4, 6]}, {"psycopg": OK, "psycopg2": OK, "asyncpg": OK}),
    "cut": ({"cut": 20}, {
        "psycopg": (psycopg.OperationalError, LOST),
        "asyncpg": (asyncpg.ConnectionDoesNotExistError, "closed in the middle of operation")}),
    "garbage": ({"garbage": 32, "seed": 1}, {
        "psycopg": (psycopg.DatabaseError, "lost synchronization with server"),
        "psycopg2": (psycopg2.OperationalError, "lost synchronization with server"),
        "asyncpg": (asyncpg.ConnectionDoesNotExistError, "closed in the middle of operation")}),
    "malformed unknown_type": ({"malformed": "unknown_type"}, {
        "psycopg": (psycopg.DatabaseError, 'unexpected response from server; first received character was "~"'),
        "asyncpg": (asyncpg.ConnectionDoesNotExistError, "closed in the middle of operation"),
        "pg8000": (KeyError, "~")}),
    "malformed length_short": ({"malformed": "length_short"}, {
        "psycopg": (psycopg.DatabaseError, 'message contents do not agree with length in message type "C"'),
        "asyncpg": (asyncpg.ConnectionDoesNotExistError, "closed in the middle of operation")}),
    "malformed length_long": ({"malformed": "length_long"}, {
        "psycopg": (psycopg.OperationalError, LOST),
        "asyncpg": (asyncpg.ConnectionDoesNotExistError, "closed in the middle of operation")}),
    "malformed length_negative": ({"malformed": "length_negative"}, {
        "psycopg": (psycopg.DatabaseError, 'lost synchronization with server: got message type "C", length -5'),
        "psycopg2": (psycopg2.OperationalError, "length -5"),
        "pg8000": (ValueError, "read length must be non-negative")}),
    "malformed length_huge": ({"malformed": "length_huge"}, {
        "psycopg": (psycopg.DatabaseError, "length 2147483647"),
        "asyncpg": (asyncpg.ConnectionDoesNotExistError, "closed in the middle of operation")}),
    "malformed field_count": ({"malformed": "field_count"}, {
        "psycopg": (psycopg.DatabaseError, 'unexpected field count in "D" message'),
        "psycopg2": (psycopg2.DatabaseError, 'unexpected field count in "D" message'),
        "asyncpg": (asyncpg.ProtocolError, "is different from what was described"),
        "pg8000": OK}),  # pg8000 does not check: it returns the extra row
    "malformed field_past_end": ({"malformed": "field_past_end"}, {
        "psycopg": (psycopg.OperationalError, 'insufficient data in "D" message'),
        "asyncpg": (asyncpg.ConnectionDoesNotExistError, "closed in the middle of operation")}),
    "malformed bad_utf8": ({"malformed": "bad_utf8"}, {
        "psycopg": (UnicodeDecodeError, "invalid start byte"), "psycopg2": (UnicodeDecodeError, "invalid start byte"),
        "asyncpg": (UnicodeDecodeError, "invalid start byte"), "pg8000": (UnicodeDecodeError, "invalid start byte")}),
    "error 40001 mid-result": ({"error": "40001", "after_rows": 1}, {
        "psycopg": (psycopg.errors.SerializationFailure, "could not serialize access"),
        "psycopg2": (psycopg2.errors.SerializationFailure, "could not serialize access"),
        "asyncpg": (asyncpg.SerializationError, "could not serialize access"),
        "pg8000": (pg8000.dbapi.DatabaseError, "40001")}),
    "error 40P01 mid-result": ({"error": "40P01", "after_rows": 2}, {
        "psycopg": (psycopg.errors.DeadlockDetected, "deadlock detected"),
        "asyncpg": (asyncpg.DeadlockDetectedError, "deadlock detected")}),
    "FATAL 57P01 mid-result": ({"fatal": "57P01", "after_rows": 1}, {
        "psycopg": (psycopg.errors.AdminShutdown, "terminating connection due to administrator command"),
        "psycopg2": (psycopg2.OperationalError, LOST),
        "asyncpg": (asyncpg.ConnectionDoesNotExistError, "terminating connection due to administrator command"),
        "pg8000": (pg8000.dbapi.InterfaceError, "network error")}),
    "FATAL 40001 mid-result": ({"fatal": "40001", "after_rows": 1}, {
        "psycopg": (psycopg.errors.SerializationFailure, "could not serialize"),
        "asyncpg": (asyncpg.ConnectionDoesNotExistError, "could not serialize")}),
    "FATAL 40P01 mid-result": ({"fatal": "40P01", "after_rows": 1}, {
        "psycopg": (psycopg.errors.DeadlockDetected, "deadlock detected"),
        "asyncpg": (asyncpg.ConnectionDoesNotExistError, "deadlock detected")}),
    "FATAL 53300 mid-result": ({"fatal": "53300", "after_rows": 1}, {
        "psycopg": (psycopg.errors.TooManyConnections, "too many clients"),
        "asyncpg": (asyncpg.ConnectionDoesNotExistError, "too many clients")}),
    "FATAL 08P01 mid-result": ({"fatal": "08P01", "after_rows": 1}, {
        "psycopg": (psycopg.errors.ProtocolViolation, "protocol violation"),
        "asyncpg": (asyncpg.ConnectionDoesNotExistError, "protocol violation")}),
    "missing ReadyForQuery": ({"skip_ready": 0.2}, {
        "psycopg": (psycopg.OperationalError, LOST), "psycopg2": (psycopg2.OperationalError, LOST),
        "asyncpg": (asyncpg.ConnectionDoesNotExistError, "closed in the middle of operation"),
        "pg8000": (pg8000.dbapi.InterfaceError, "network error")}),
    "malformed bad_ready_status": ({"malformed": "bad_ready_status"}, {
        "psycopg": (psycopg.OperationalError, LOST), "psycopg2": OK, "asyncpg": OK}),
}


@pytest.mark.parametrize("name,driver", [(n, d) for n, (_, ex) in CASES.items() for d in ex])
def test_query_fault(fresh, name, driver):
    plan, expect = CASES[name]
    answer(fresh, plan)
    want = expect[driver]
    if want is OK:
        rows = [tuple(r) for r in RUN[driver](fresh)]
        assert rows[-3:] == [("a",), ("b",), ("c",)]
        return
    cls, text = want
    with pytest.raises(cls) as info:
        RUN[driver](fresh)
    assert text in str(info.value)
    assert any(e["kind"] == "fault" for e in fresh.events)


def test_sqlstates_on_the_exceptions(fresh):
    answer(fresh, {"error": "40001", "after_rows": 1})
    with pytest.raises(psycopg.Error) as p3:
        run_psycopg(fresh)
    with pytest.raises(asyncpg.PostgresError) as ap:
        run_asyncpg(fresh)
    assert p3.value.sqlstate == ap.value.sqlstate == "40001"


def test_hang_against_a_client_timeout_asyncpg(fresh):
    answer(fresh, {"hang": 2.0})
    with pytest.raises(asyncio.TimeoutError):
        run_asyncpg(fresh, timeout=0.2)


def test_missing_ready_for_query_against_a_client_timeout_asyncpg(fresh):
    answer(fresh, {"skip_ready": 2.0})
    with pytest.raises(asyncio.TimeoutError):
        run_asyncpg(fresh, timeout=0.2)


def test_bad_ready_status_then_continue_psycopg_sees_unknown_status(fresh):
    answer(fresh, {"malformed": "bad_ready_status", "then": "continue"})
    with psycopg.connect(fresh.dsn, autocommit=True) as conn:
        assert conn.execute(SQL).fetchall() == [("a",), ("b",), ("c",)]
        assert conn.info.transaction_status == psycopg.pq.TransactionStatus.UNKNOWN


def test_wrong_command_tag(fresh):
    answer(fresh, {"malformed": "wrong_tag"})
    with psycopg.connect(fresh.dsn, autocommit=True) as conn:
        cur = conn.execute(SQL)
        assert cur.fetchall() == [("a",), ("b",), ("c",)]
        assert cur.statusmessage == "FAKEPM_WRONG_TAG 1 2 3"

    async def go():
        conn = await asyncpg.connect(fresh.dsn)
        try:
            return await conn.execute(SQL)
        finally:
            conn.terminate()

    assert asyncio.run(go()) == "FAKEPM_WRONG_TAG 1 2 3"


def test_parameter_description_count_asyncpg(fresh):
    fresh.fault(malformed="param_count", query="SELECT $1::int4")

    async def go():
        conn = await asyncpg.connect(fresh.dsn)
        try:
            return await conn.fetch("SELECT $1::int4", 1)
        finally:
            conn.terminate()

    with pytest.raises(asyncpg.InterfaceError, match="the server expects 2 arguments for this query, 1 was passed"):
        asyncio.run(go())
    with psycopg.connect(fresh.dsn, autocommit=True) as conn:  # psycopg never Describes a statement
        assert conn.execute("SELECT %s::int4", [1], prepare=True).fetchall() == [(1,)]


def test_unsolicited_messages_between_data_rows(fresh):
    fresh.on(SQL).reply(columns={"y": "text"}, rows=ROWS, fault=[
        {"notice": "surprise notice", "after_rows": 1},
        {"parameter_status": {"application_name": "surprise"}, "after_rows": 1},
        {"notification": {"channel": "chan", "payload": "surprise"}, "after_rows": 2},
    ])
    with psycopg.connect(fresh.dsn, autocommit=True) as conn:
        notices, notifies = [], []
        conn.add_notice_handler(lambda d: notices.append(d.message_primary))
        conn.add_notify_handler(lambda n: notifies.append((n.channel, n.payload)))
        assert conn.execute(SQL).fetchall() == [("a",), ("b",), ("c",)]
        assert notices == ["surprise notice"]
        assert conn.info.parameter_status("application_name") == "surprise"
        assert notifies == [("chan", "surprise")]

    async def go():
        conn = await asyncpg.connect(fresh.dsn)
        logs = []
        conn.add_log_listener(lambda c, msg: logs.append(msg.message))
        try:
            rows = await conn.fetch(SQL)
            await asyncio.sleep(0.01)
            return rows, logs, conn.get_settings().application_name
        finally:
            conn.terminate()

    rows, logs, app = asyncio.run(go())
    assert [r["y"] for r in rows] == ["a", "b", "c"]
    assert logs == ["surprise notice"] and app == "surprise"


def test_first_two_commits_fail_with_40001_the_third_succeeds(fresh):
    fresh.fault(error="40001", query="COMMIT", first=2)
    with psycopg.connect(fresh.dsn) as conn:
        outcomes = []
        for _ in range(3):
            try:
                conn.execute("SELECT 1")
                conn.commit()
                outcomes.append("ok")
            except psycopg.errors.SerializationFailure:
                outcomes.append("40001")
                conn.rollback()
        assert outcomes == ["40001", "40001", "ok"]


def test_every_10th_query_is_delayed_seeded(fresh):
    fresh.fault(delay=0.01, every=10)
    fresh.fault(delay=0.001, probability=0.5, seed=3, name="coin")
    with psycopg.connect(fresh.dsn, autocommit=True) as conn:
        for _ in range(30):
            conn.execute("SELECT 1")
    fired = [e for e in fresh.events if e["kind"] == "fault"]
    assert sum(1 for e in fired if e["plan"] != "coin") == 3
    coin = [i for i, e in enumerate(fired) if e["plan"] == "coin"]
    assert 5 < len(coin) < 25  # seeded: the same count on every run


# ----------------------------------------------------------------------------- startup
def connect_psycopg(pg, **kw):
    psycopg.connect(pg.dsn if not kw else pg.url(**kw), connect_timeout=3).close()


def connect_asyncpg(pg, **kw):
    async def go():
        conn = await asyncpg.connect(pg.dsn if not kw else pg.url(**kw), timeout=3)
        await conn.close()

    asyncio.run(go())


STARTUP = {
    "close before SSL answer": ({"close": True, "at": "before_ssl_answer"},
                                (psycopg.OperationalError, LOST), (ConnectionError, "connection_lost")),
    "reset after SSL answer": ({"reset": True, "at": "after_ssl_answer"},
                               (psycopg.OperationalError, LOST), (asyncpg.ConnectionDoesNotExistError, "closed")),
    "close after startup packet": ({"close": True, "at": "startup"},
                                   (psycopg.OperationalError, LOST), (asyncpg.ConnectionDoesNotExistError, "closed")),
    "hang at startup": ({"hang": 0.2, "at": "startup"},
                        (psycopg.OperationalError, LOST), (asyncpg.ConnectionDoesNotExistError, "closed")),
    "close before BackendKeyData": ({"close": True, "at": "before_backend_key_data"},
                                    (psycopg.OperationalError, LOST), (asyncpg.ConnectionDoesNotExistError, "closed")),
    "FATAL 57P01 before BackendKeyData": ({"fatal": "57P01", "at": "before_backend_key_data"},
                                          (psycopg.OperationalError, "terminating connection due to administrator"),
                                          (asyncpg.AdminShutdownError, "terminating connection")),
    "too many clients": ({"too_many_clients": True},
                         (psycopg.OperationalError, "FATAL:  sorry, too many clients already"),
                         (asyncpg.TooManyConnectionsError, "sorry, too many clients already")),
    "unsupported auth method": ({"auth": "unsupported_method"},
                                (psycopg.OperationalError, "authentication method 99 not supported"),
                                (asyncpg.InterfaceError, "unsupported authentication method requested by the server: 99")),
    "slow start": ({"delay": 0.05, "at": "before_auth_ok"}, OK, OK),
}


@pytest.mark.parametrize("name", list(STARTUP))
def test_startup_fault(fresh, name):
    plan, p3, ap = STARTUP[name]
    fresh.fault(plan)
    for fn, want in ((connect_psycopg, p3), (connect_asyncpg, ap)):
        if want is OK:
            fn(fresh)
            continue
        with pytest.raises(want[0]) as info:
            fn(fresh)
        assert want[1] in str(info.value)


def test_startup_fault_psql(fresh):
    need_program("psql", "Debian: postgresql-client")
    for plan, text in [({"too_many_clients": True}, "FATAL:  sorry, too many clients already"),
                       ({"auth": "unsupported_method"}, "authentication method 99 not supported"),
                       ({"close": True, "at": "startup"}, LOST)]:
        p = fresh.fault(plan)
        r = subprocess.run(["psql", fresh.dsn, "-XAtc", "SELECT 1"], capture_output=True, text=True, timeout=20,
                           env={"PATH": "/usr/bin:/bin", "PGCONNECT_TIMEOUT": "3"})
        fresh.remove_fault(p)
        assert r.returncode == 2 and text in r.stderr


def test_query_faults_psql(fresh):
    need_program("psql", "Debian: postgresql-client")
    for plan, text in [({"close": True}, "server closed the connection unexpectedly"),
                       ({"fatal": "57P01", "after_rows": 1}, "FATAL:  terminating connection due to administrator"),
                       ({"error": "40P01", "after_rows": 1}, "ERROR:  deadlock detected")]:
        fresh.rules.clear()
        answer(fresh, plan)
        r = subprocess.run(["psql", fresh.dsn, "-XAtc", SQL], capture_output=True, timeout=20,
                           env={"PATH": "/usr/bin:/bin", "PGCONNECT_TIMEOUT": "3"})
        assert r.returncode in (1, 2) and text in r.stderr.decode("utf-8", "replace")


@pytest.fixture
def scram_pg():
    with FakePostgres(users={"ada": "secret"}) as server:
        yield server
        assert not [e for e in server.events if e["kind"] == "internal_error"]


def test_bad_scram_server_signature(scram_pg):
    scram_pg.fault(auth="bad_server_signature")
    with pytest.raises(psycopg.OperationalError, match="incorrect server signature"):
        connect_psycopg(scram_pg, user="ada", password="secret")
    with pytest.raises(asyncpg.InterfaceError, match="could not verify server signature"):
        connect_asyncpg(scram_pg, user="ada", password="secret")


def test_sasl_final_skipped_is_accepted_by_libpq15_and_asyncpg(scram_pg):
    # libpq 15 (psycopg's and psql's here) and asyncpg accept AuthenticationOk without SASLFinal:
    # a test of "does my client verify the server?" shows they do not, in this case.
    scram_pg.fault(auth="skip_sasl_final")
    connect_psycopg(scram_pg, user="ada", password="secret")
    connect_asyncpg(scram_pg, user="ada", password="secret")


def test_close_during_auth(scram_pg):
    scram_pg.fault(close=True, at="auth")
    with pytest.raises(psycopg.OperationalError, match=LOST):
        connect_psycopg(scram_pg, user="ada", password="secret")
    with pytest.raises(asyncpg.ConnectionDoesNotExistError):
        connect_asyncpg(scram_pg, user="ada", password="secret")


def test_fixed_scram_nonce_and_salt_make_the_exchange_reproducible(scram_pg):
    import struct

    scram_pg.fault(auth=["fixed_nonce", "fixed_salt"])
    firsts = []
    for _ in range(2):  # sans-I/O sessions: read the server-first-message SCRAM sends
        s = scram_pg._make_session(("127.0.0.1", 1), False)
        body = struct.pack("!i", 196608) + b"user\0ada\0\0"
        s.receive(struct.pack("!i", len(body) + 4) + body, 0.0)
        s.data_to_send()
        client_first = b"n,,n=,r=clientnonce"
        sasl = b"SCRAM-SHA-256\0" + struct.pack("!i", len(client_first)) + client_first
        s.receive(b"p" + struct.pack("!i", len(sasl) + 4) + sasl, 0.0)
        out = s.data_to_send()
        firsts.append(out[9:])  # 'R', length, code 11
        s.close("done")
    assert firsts[0] == firsts[1] and b"r=clientnoncefakepmfixednonce" in firsts[0]
    connect_psycopg(scram_pg, user="ada", password="secret")  # a real client still logs in


def test_nth_connection_is_reset(fresh):
    n = next(fresh.hub._conn_ids) + 2  # connection ids count up: reset the next-but-one
    fresh.fault(reset=True, connection=n, at="startup")
    connect_psycopg(fresh)
    with pytest.raises(psycopg.OperationalError):
        connect_psycopg(fresh)
    connect_psycopg(fresh)


def test_refuse_new_connections(fresh):
    with psycopg.connect(fresh.dsn, autocommit=True) as old:
        fresh.fault(refuse_new=True)
        with pytest.raises(psycopg.OperationalError):
            connect_psycopg(fresh)
        # the fake accepts and closes at once: EOF, or RST when asyncpg's SSLRequest was already unread
        with pytest.raises(ConnectionError, match="unexpected connection_lost|reset by peer"):
            connect_asyncpg(fresh)
        assert old.execute("SELECT 1").fetchone() == (1,)  # existing connections go on
        fresh.clear_faults()
        connect_psycopg(fresh)


def test_message_type_trigger_sync(fresh):
    fresh.fault(close=True, message="Sync", nth=1)
    with pytest.raises(asyncpg.ConnectionDoesNotExistError):
        run_asyncpg(fresh, "SELECT 1")
    assert run_psycopg(fresh, "SELECT 1") == [(1,)]  # simple query: no Sync


def test_user_trigger(scram_pg):
    scram_pg.fault(too_many_clients=True, user="bob")
    connect_psycopg(scram_pg, user="ada", password="secret")
