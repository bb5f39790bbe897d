"""fakepm's own client connection to a real PostgreSQL (the proxy's and recorder's upstream).

Sans-I/O pieces are reused: message codecs (protocol/messages.py) and FrameReader; only this
module and relay.py touch sockets. Authentication implements the *client* side of trust,
cleartext password, md5 and SCRAM-SHA-256 (scramp's ScramClient). TLS to the upstream is not
supported (sslmode=require in the URL is refused with a clear error). A host that is a
directory path (starts with "/", as libpq: percent-encoded in the URL or `?host=/dir`) means
the Unix socket `<dir>/.s.PGSQL.<port>`.
"""

from __future__ import annotations

import hashlib
import socket
import struct
import urllib.parse
from dataclasses import dataclass, field

import scramp

from ..protocol.framing import FrameReader
from ..protocol.messages import (
    Authentication,
    BackendKeyData,
    CancelRequest,
    ErrorResponse,
    ParameterStatus,
    PasswordMessage,
    ReadyForQuery,
    StartupMessage,
    PROTOCOL_3_0,
    NegotiateProtocolVersion,
    decode_backend,
)
from ..protocol.errors import PgError

DEFAULT_TIMEOUT = 10.0


class UpstreamError(Exception):
    """The upstream could not be reached or refused us; the text says which and why."""

    def __init__(self, message: str, error: PgError | None = None):
        super().__init__(message)
        self.error = error


@dataclass(frozen=True)
class UpstreamURL:
    """A parsed libpq URI: postgresql://user:password@host:port/dbname?key=value.

    `host` may be a directory (starts with "/"): a Unix socket, as libpq.
    """

    host: str = "127.0.0.1"
    port: int = 5432
    user: str = "postgres"
    password: str | None = field(default=None, repr=False)  # never printed
    database: str | None = None
    options: dict = field(default_factory=dict)

    @classmethod
    def parse(cls, url: str) -> "UpstreamURL":
        u = urllib.parse.urlsplit(url)
        if u.scheme not in ("postgresql", "postgres"):
            raise ValueError(f"upstream URL {cls.redacted_text(url)!r}: expected postgresql://user:pw@host:port/db")
        opts = dict(urllib.parse.parse_qsl(u.query))
        if opts.get("sslmode") in ("require", "verify-ca", "verify-full"):
            raise ValueError("upstream URL: sslmode=%s is not supported by the fakepm proxy (use disable/prefer)"
                             % opts["sslmode"])
        try:
            port = int(opts.pop("port", None) or u.port or 5432)
        except ValueError:
            raise ValueError(f"upstream URL {cls.redacted_text(url)!r}: bad port") from None
        host = opts.pop("host", None)
        if not host:
            # libpq: a percent-encoded directory as the host is a Unix socket (keep its case)
            netloc_host = u.netloc.rpartition("@")[2]
            netloc_host = urllib.parse.unquote(netloc_host.rsplit(":", 1)[0] if "]" not in netloc_host
                                               else netloc_host)
            host = netloc_host if netloc_host.startswith("/") else u.hostname
        return cls(
            host=host or "127.0.0.1",
            port=port,
            user=urllib.parse.unquote(u.username) if u.username else "postgres",
            password=urllib.parse.unquote(u.password) if u.password is not None else None,
            database=urllib.parse.unquote(u.path[1:]) if len(u.path) > 1 else None,
            options={k: v for k, v in opts.items() if k not in ("sslmode",)},
        )

    @staticmethod
    def redacted_text(url: str) -> str:
        """The URL with any password replaced by '***' (for messages and logs)."""
        u = urllib.parse.urlsplit(url)
        if u.password is None:
            return url
        netloc = u.netloc.replace(":" + u.password + "@", ":***@", 1)
        return urllib.parse.urlunsplit((u.scheme, netloc, u.path, u.query, u.fragment))

    @property
    def is_unix(self) -> bool:
        return self.host.startswith("/")

    @property
    def unix_path(self) -> str:
        """libpq's socket file name in the directory `host`."""
        return f"{self.host}/.s.PGSQL.{self.port}"

    def __str__(self) -> str:
        if self.is_unix:
            q = urllib.parse.urlencode({"host": self.host, "port": self.port}, safe="/")
            return f"postgresql://{self.user}@/{self.database or self.user}?{q}"
        return f"postgresql://{self.user}@{self.host}:{self.port}/{self.database or self.user}"


def open_socket(url: UpstreamURL, timeout: float) -> socket.socket:
    """A connected TCP socket (TCP_NODELAY) or Unix socket (host is a directory) to the upstream."""
    if url.is_unix:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(timeout)
        try:
            sock.connect(url.unix_path)
        except BaseException:
            sock.close()
            raise
        return sock
    sock = socket.create_connection((url.host, url.port), timeout=timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def _md5_hex(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


class ClientAuth:
    """The client side of one authentication exchange, sans-I/O.

    `receive(Authentication)` returns the body of the 'p' message to send, or None when
    nothing is to be sent (Ok / SASLFinal). Secrets stay inside this object.
    """

    def __init__(self, user: str, password: str | None):
        self.user = user
        self._password = password
        self._scram: scramp.ScramClient | None = None

    def _need_password(self, method: str) -> str:
        if self._password is None:
            raise UpstreamError(f"upstream asks for {method} authentication but the upstream URL has no password")
        return self._password

    def receive(self, msg: Authentication) -> bytes | None:
        code = msg.code
        if code == 0:
            return None
        if code == 3:
            return self._need_password("password").encode() + b"\x00"
        if code == 5:
            pw = self._need_password("md5")
            inner = _md5_hex(pw.encode() + self.user.encode())
            return ("md5" + _md5_hex(inner.encode() + msg.data)).encode() + b"\x00"
        if code == 10:
            mechs = [m.decode() for m in msg.data.split(b"\x00") if m]
            if "SCRAM-SHA-256" not in mechs:
                raise UpstreamError(f"upstream offers SASL mechanisms {mechs}; only SCRAM-SHA-256 is supported")
            self._scram = scramp.ScramClient(["SCRAM-SHA-256"], self.user, self._need_password("SCRAM"))
            first = self._scram.get_client_first().encode()
            return b"SCRAM-SHA-256\x00" + struct.pack("!i", len(first)) + first
        if code == 11:
            if self._scram is None:
                raise UpstreamError("upstream sent SASLContinue before SASL")
            try:
                self._scram.set_server_first(msg.data.decode())
                return self._scram.get_client_final().encode()
            except scramp.ScramException as e:
                raise UpstreamError(f"upstream SCRAM exchange failed: {e}") from None
        if code == 12:
            if self._scram is None:
                raise UpstreamError("upstream sent SASLFinal before SASL")
            try:
                self._scram.set_server_final(msg.data.decode())
            except scramp.ScramException as e:
                raise UpstreamError(f"upstream SCRAM server signature is wrong: {e}") from None
            return None
        raise UpstreamError(f"upstream asks for an authentication method fakepm cannot do (code {code})")


class Upstream:
    """One authenticated connection to the real server.

    After `connect()`: `parameters` (ParameterStatus values), `pid`/`secret`
    (BackendKeyData) and `sock` in blocking mode, positioned after the first ReadyForQuery.
    """

    def __init__(self, url: UpstreamURL, startup: dict | None = None, timeout: float = DEFAULT_TIMEOUT,
                 protocol_minor: int = 0):
        self.url = url
        self.timeout = timeout
        self.protocol_minor = protocol_minor  # 3.x asked for (2: PostgreSQL 18's 3.2, longer cancel keys)
        params = {"user": url.user}
        if url.database:
            params["database"] = url.database
        params.update(url.options)
        for k, v in (startup or {}).items():
            if k not in ("user", "database"):
                params[k] = v
        self.startup = params
        self.parameters: dict[str, str] = {}
        self.pid = 0
        self.secret = 0
        self.sock: socket.socket | None = None
        self.reader = FrameReader()
        self.reader.expect_tagged()

    def connect(self) -> "Upstream":
        try:
            self.sock = open_socket(self.url, self.timeout)
        except OSError as e:
            where = self.url.unix_path if self.url.is_unix else f"{self.url.host}:{self.url.port}"
            raise UpstreamError(f"cannot connect to upstream {where}: {e}") from None
        try:
            self.sock.sendall(StartupMessage(PROTOCOL_3_0 | self.protocol_minor, self.startup).encode())
            auth = ClientAuth(self.url.user, self.url.password)
            while True:
                msg = self.read_message()
                if isinstance(msg, Authentication):
                    reply = auth.receive(msg)
                    if reply is not None:
                        self.sock.sendall(PasswordMessage(reply).encode())
                elif isinstance(msg, ErrorResponse):
                    raise UpstreamError(f"upstream refused the connection: {msg.error.message}", msg.error)
                elif isinstance(msg, ParameterStatus):
                    self.parameters[msg.name] = msg.value
                elif isinstance(msg, BackendKeyData):
                    self.pid, self.secret = msg.pid, msg.secret
                elif isinstance(msg, NegotiateProtocolVersion):  # an older server: the minor it speaks
                    self.protocol_minor = min(self.protocol_minor, msg.newest_minor & 0xFFFF)
                elif isinstance(msg, ReadyForQuery):
                    return self
        except BaseException:
            self.close()
            raise

    def read_frame(self) -> tuple[bytes, bytes]:
        """Next (type, body) from upstream; blocking, bounded by the socket timeout."""
        while True:
            f = self.reader.next_frame()
            if f is not None:
                return f
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                raise UpstreamError(f"upstream did not answer within {self.timeout}s") from None
            if not data:
                raise UpstreamError("upstream closed the connection")
            self.reader.feed(data)

    def read_message(self):
        t, body = self.read_frame()
        return decode_backend(t, body)

    def send(self, *messages) -> None:
        self.sock.sendall(b"".join(m if isinstance(m, (bytes, bytearray)) else m.encode() for m in messages))

    def close(self) -> None:
        if self.sock is not None:
            try:
                self.sock.sendall(b"X\x00\x00\x00\x04")
            except OSError:
                pass
            try:
                self.sock.close()
            except OSError:
                pass
            self.sock = None


def send_cancel(url: UpstreamURL, pid: int, secret: int, timeout: float = 5.0) -> None:
    """Open a new connection to the upstream and send CancelRequest(pid, secret), as libpq does."""
    try:
        with open_socket(url, timeout) as s:
            s.sendall(CancelRequest(pid, secret).encode())
            try:
                s.recv(1)  # the server closes the connection when done
            except OSError:
                pass
    except OSError:
        pass  # a cancel is best effort, exactly like in PostgreSQL
