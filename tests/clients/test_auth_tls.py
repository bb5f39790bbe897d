"""Authentication and transport with real clients: trust, password (cleartext), md5 and SCRAM-SHA-256
with psycopg 3, psycopg2, asyncpg, pg8000 and psql; TLS (require, verify-full, SCRAM-SHA-256-PLUS),
require_tls, GSSENCRequest and protocol 3.2 negotiation (psycopg/libpq 18 and a raw socket)."""

import asyncio
import os
import shutil
import socket
import struct
import subprocess

import asyncpg
import pg8000.dbapi
import psycopg
import psycopg2
import pytest

from fakepm import FakePostgres
from fakepm.protocol import messages as m

USERS = {
    "tina": {"auth": "trust"},
    "paul": {"password": "s3cret", "auth": "password"},
    "mia": {"password": "s3cret", "auth": "md5"},
    "sam": {"password": "s3cret", "auth": "scram-sha-256"},
}
FAILED = 'password authentication failed for user "{}"'


# ---------------------------------------------------------------------------- one connect per client
# Each returns the result of `SELECT 1` or raises; `error_text` turns the exception into the server's message.

def via_psycopg(pg, user, password, **kw):
    with psycopg.connect(pg.url(user=user, password=password, **kw), connect_timeout=5) as conn:
        return conn.execute("SELECT 1").fetchone()[0]


def via_psycopg2(pg, user, password, **kw):
    conn = psycopg2.connect(pg.url(user=user, password=password, **kw), connect_timeout=5)
    try:
        cur = conn.cursor()
        cur.execute("SELECT 1")
        return cur.fetchone()[0]
    finally:
        conn.close()


def via_asyncpg(pg, user, password, **kw):
    async def run():
        conn = await asyncpg.connect(pg.url(user=user, password=password, **kw), timeout=5)
        try:
            return await conn.fetchval("SELECT 1")
        finally:
            await conn.close()

    return asyncio.run(run())


def via_pg8000(pg, user, password, **kw):
    conn = pg8000.dbapi.connect(user=user, password=password, host=pg.host, port=pg.port, database="postgres",
                                timeout=5, **kw)
    try:
        cur = conn.cursor()
        cur.execute("SELECT 1")
        return cur.fetchone()[0]
    finally:
        conn.close()


class PsqlError(Exception):
    pass


def via_psql(pg, user, password, **kw):
    env = {**os.environ, "PGCONNECT_TIMEOUT": "5"}
    if password is not None:
        env["PGPASSWORD"] = password
    conninfo = pg.conninfo(user=user, **kw)
    r = subprocess.run(["psql", "-X", "-At", "-w", conninfo, "-c", "SELECT 1"], capture_output=True, text=True,
                       timeout=20, env=env)
    if r.returncode != 0:
        raise PsqlError(r.stderr)
    return int(r.stdout.strip())


CLIENTS = {"psycopg": via_psycopg, "psycopg2": via_psycopg2, "asyncpg": via_asyncpg, "pg8000": via_pg8000}
if shutil.which("psql"):
    CLIENTS["psql"] = via_psql


def error_text(exc: BaseException) -> str:
    if isinstance(exc, asyncpg.PostgresError):
        return f"{exc.sqlstate} {exc.args[0]}"
    if isinstance(exc, pg8000.dbapi.DatabaseError) and exc.args and isinstance(exc.args[0], dict):
        return f"{exc.args[0].get('C')} {exc.args[0].get('M')}"
    return str(exc)  # libpq: 'connection to server ... failed: FATAL:  <message>'


@pytest.fixture(scope="module")
def pg():
    with FakePostgres(users=USERS) as server:
        yield server


@pytest.mark.parametrize("client", list(CLIENTS))
@pytest.mark.parametrize("user", list(USERS))
def test_each_method_connects(pg, client, user):
    password = USERS[user].get("password")
    assert CLIENTS[client](pg, user, password) == 1


@pytest.mark.parametrize("client", list(CLIENTS))
@pytest.mark.parametrize("user", ["paul", "mia", "sam", "nobody"])
def test_wrong_password_and_unknown_user_get_28p01(pg, client, user):
    with pytest.raises(Exception) as info:
        CLIENTS[client](pg, user, "wrong-password")
    text = error_text(info.value)
    assert FAILED.format(user) in text
    if client in ("asyncpg", "pg8000"):  # these expose the SQLSTATE of a failed connect
        assert text.startswith("28P01 ")
    else:
        assert "FATAL:  " + FAILED.format(user) in text


def test_failed_auth_is_journaled(pg):
    with pytest.raises(psycopg.OperationalError):
        via_psycopg(pg, "mia", "nope")
    assert any(e["kind"] == "auth_failed" and e["user"] == "mia" for e in pg.events)


# ---------------------------------------------------------------------------- TLS

@pytest.fixture(scope="module")
def tls_pg():
    with FakePostgres(tls=True, users={"sam": {"password": "s3cret", "auth": "scram-sha-256"},
                                       "postgres": {"auth": "trust"}}) as server:
        yield server


def tls_seen(pg, connect):
    """Run connect() while a handler records whether the server saw the statement over TLS."""
    seen = []
    rule = pg.on("SELECT 1", columns={"?column?": "int4"}, times=1)
    rule.handle(lambda q: seen.append(q.connection.tls) or [[1]])
    assert connect() == 1
    return seen


@pytest.mark.parametrize("client", ["psycopg", "psycopg2", "asyncpg", "psql"])
def test_sslmode_require(tls_pg, client):
    assert tls_seen(tls_pg, lambda: CLIENTS[client](tls_pg, "sam", "s3cret", sslmode="require")) == [True]


@pytest.mark.parametrize("client", ["psycopg", "psycopg2", "asyncpg", "psql"])
def test_sslmode_verify_full_with_the_fake_ca(tls_pg, client):
    connect = CLIENTS[client]
    dsn_pg = _Localhost(tls_pg)
    seen = tls_seen(tls_pg, lambda: connect(dsn_pg, "sam", "s3cret", sslmode="verify-full",
                                            sslrootcert=tls_pg.ca_file))
    assert seen == [True]


class _Localhost:
    """The same server, addressed as `localhost` (the name its certificate carries) for verify-full."""

    def __init__(self, pg):
        self._pg = pg
        self.host = "localhost"
        self.port = pg.port

    def url(self, **kw):
        return self._pg.url(**kw).replace("@127.0.0.1:", "@localhost:")

    def conninfo(self, **kw):
        return self._pg.conninfo(host="localhost", **kw)


def test_verify_full_rejects_a_wrong_ca(tls_pg, tmp_path):
    other = FakePostgres(tls=True).start()
    try:
        with pytest.raises(psycopg.OperationalError, match="certificate verify failed"):
            via_psycopg(_Localhost(tls_pg), "postgres", None, sslmode="verify-full", sslrootcert=other.ca_file)
    finally:
        other.stop()


def test_scram_sha_256_plus_with_channel_binding(tls_pg):
    with psycopg.connect(tls_pg.url(user="sam", password="s3cret", channel_binding="require"),
                         connect_timeout=5) as conn:
        assert conn.pgconn.ssl_in_use
        assert conn.execute("SELECT 1").fetchone() == (1,)
    # without TLS there is no -PLUS mechanism, so channel_binding=require must fail on the client
    with FakePostgres(users={"sam": "s3cret"}) as plain:
        with pytest.raises(psycopg.OperationalError, match="channel binding"):
            psycopg.connect(plain.url(user="sam", password="s3cret", channel_binding="require"), connect_timeout=5)


def test_sasl_offers_plus_only_over_tls(tls_pg):
    """Raw check of the AuthenticationSASL mechanism lists."""
    with FakePostgres(users={"sam": "s3cret"}) as plain:
        with socket.create_connection((plain.host, plain.port), timeout=5) as s:
            s.sendall(m.StartupMessage(m.PROTOCOL_3_0, {"user": "sam"}).encode())
            msg = Backend(s).read(1)[0]
    assert isinstance(msg, m.Authentication) and msg.code == 10
    assert msg.data == b"SCRAM-SHA-256\x00\x00"


def test_require_tls_refuses_plaintext():
    with FakePostgres(tls=True, require_tls=True) as pg:
        with pytest.raises(psycopg.OperationalError) as info:
            psycopg.connect(pg.url(sslmode="disable"), connect_timeout=5)
        assert ('FATAL:  no pg_hba.conf entry for host "127.0.0.1", user "postgres", database "postgres", '
                "no encryption") in str(info.value)
        with psycopg.connect(pg.url(sslmode="require"), connect_timeout=5) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
        # libpq's default sslmode=prefer tries TLS first and gets in
        with psycopg.connect(pg.url(sslmode="prefer"), connect_timeout=5) as conn:
            assert conn.pgconn.ssl_in_use


def test_require_tls_lets_unix_socket_clients_in():
    """The Unix socket cannot carry TLS: like a `hostssl` pg_hba rule, require_tls applies to TCP only."""
    with FakePostgres(tls=True, require_tls=True, unix_socket_dir=True) as pg:
        with psycopg.connect(host=pg.unix_socket_dir, port=pg.port, user="postgres", dbname="postgres",
                             connect_timeout=5) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
            assert not conn.pgconn.ssl_in_use
        with pytest.raises(psycopg.OperationalError, match="no encryption"):
            psycopg.connect(pg.url(sslmode="disable"), connect_timeout=5)


def test_tls_with_pg8000():
    import ssl

    with FakePostgres(tls=True) as pg:
        ctx = ssl.create_default_context(cafile=pg.ca_file)
        ctx.check_hostname = False  # pg8000 connects to 127.0.0.1; the certificate names localhost
        assert via_pg8000(pg, "postgres", None, ssl_context=ctx) == 1


# ---------------------------------------------------------------------------- GSSENC and protocol 3.2

class Backend:
    """Reads backend messages from a blocking socket, keeping what arrived beyond them."""

    def __init__(self, sock, timeout=5.0):
        self.sock = sock
        self.buf = b""
        sock.settimeout(timeout)

    def read(self, count):
        out = []
        while len(out) < count:
            while len(self.buf) < 5 or len(self.buf) < 1 + struct.unpack("!i", self.buf[1:5])[0]:
                chunk = self.sock.recv(65536)
                if not chunk:
                    raise EOFError(f"connection closed after {out}")
                self.buf += chunk
            n = struct.unpack("!i", self.buf[1:5])[0]
            out.append(m.decode_backend(self.buf[:1], self.buf[5:1 + n]))
            self.buf = self.buf[1 + n:]
        return out

    def until_ready(self):
        out = self.read(1)
        while not isinstance(out[-1], m.ReadyForQuery):
            out += self.read(1)
        return out


def test_gssenc_request_answered_n_then_startup_on_same_socket():
    with FakePostgres() as pg:
        with socket.create_connection((pg.host, pg.port), timeout=5) as s:
            s.sendall(m.GSSENCRequest().encode())
            assert s.recv(1) == b"N"
            s.sendall(m.SSLRequest().encode())
            assert s.recv(1) == b"N"
            s.sendall(m.StartupMessage(m.PROTOCOL_3_0, {"user": "postgres"}).encode())
            msgs = Backend(s).until_ready()
            assert msgs[0] == m.Authentication(0)
            assert msgs[-1] == m.ReadyForQuery("I")


def test_psycopg_gssencmode_prefer():
    with FakePostgres() as pg:
        with psycopg.connect(pg.url(gssencmode="prefer"), connect_timeout=5) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)


def test_protocol_3_2_raw_socket_gets_negotiate_protocol_version():
    with FakePostgres() as pg:
        with socket.create_connection((pg.host, pg.port), timeout=5) as s:
            s.sendall(m.StartupMessage(m.PROTOCOL_3_2, {"user": "postgres", "_pq_.fancy": "1"}).encode())
            backend = Backend(s)
            startup = backend.until_ready()
            assert startup[0] == m.NegotiateProtocolVersion(m.PROTOCOL_3_0, ("_pq_.fancy",))
            assert startup[1] == m.Authentication(0)
            assert isinstance(startup[-2], m.BackendKeyData)
            assert len(startup[-2].encode()) == 13  # a 3.0 (4-byte) cancel key: we continue on 3.0
            s.sendall(m.Query("SELECT 1").encode())
            answer = backend.until_ready()
            assert [type(x).__name__ for x in answer] == ["RowDescription", "DataRow", "CommandComplete",
                                                          "ReadyForQuery"]
            assert answer[1].values == (b"1",)
            s.sendall(m.Terminate().encode())


def test_psycopg_max_protocol_version_latest():
    if psycopg.pq.version() < 180000:
        pytest.skip(f"libpq {psycopg.pq.version()} cannot ask for protocol 3.2")
    with FakePostgres() as pg:
        with psycopg.connect(pg.url(max_protocol_version="latest"), connect_timeout=5) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
            assert conn.pgconn.protocol_version == 3
        starts = [t for items in pg.transcripts().values() for _, t in items if t.startswith("StartupMessage")]
        assert starts and starts[0].startswith("StartupMessage 3.2")
