"""A pass-through PostgreSQL proxy: clients connect here, every message is relayed to a real server.

    with Proxy("postgresql://app:secret@db:5432/shop", hooks=[Anonymize(email=pseudonym)]) as px:
        psycopg.connect(px.dsn) ...

Design: one accept thread plus one thread per client connection (the proxy is not on
fakepm's hot path; threads keep hooks free to block). Each connection thread waits with a
selector on the client socket, its upstream socket and a wake-up socket, so `stop()` ends
every thread at once; every wait is bounded.

Per connection:
1. startup: SSLRequest/GSSENCRequest get 'N'; a CancelRequest carrying one of our keys is
   forwarded to the upstream with the upstream's own pid/key; the StartupMessage is kept.
2. the client is authenticated locally (protocol/auth.py Authenticator: any method `users`
   gives; trust by default) -- its password never goes upstream;
3. our own connection upstream authenticates with the URL's credentials (upstream.py);
4. the client gets AuthenticationOk, the upstream's ParameterStatus values, our
   BackendKeyData and ReadyForQuery; then messages are relayed both ways, decoded with the
   shared codecs so hooks can rewrite queries, rows and replication tuples, and a Tracker
   attributes replies to statements (for on_exchange and the recorder).
"""

from __future__ import annotations

import itertools
import secrets
import selectors
import socket
import threading
from typing import Iterable

from ..answers.match import default_tag
from ..answers.result import Result
from ..protocol import messages as m
from ..protocol import pgoutput as po
from ..protocol.auth import AuthFailed, Authenticator, user_auths
from ..protocol.errors import PgError
from ..protocol.framing import FrameReader
from ..protocol.replication import XLogData, decode_replication_message
from .hooks import ColumnInfo, ConnInfo, ProxyHooks
from .tracker import Tracker, decode_value, encode_value, type_name
from .upstream import Upstream, UpstreamError, UpstreamURL, send_cancel

_CLIENT_TIMEOUT = 30.0  # startup/auth must finish within this
_JOIN_TIMEOUT = 5.0


class Proxy:
    """Listen on host:port (a free port by default) and relay every client to `upstream`."""

    def __init__(self, upstream: str | UpstreamURL, *, hooks: Iterable[ProxyHooks] = (), host: str = "127.0.0.1",
                 port: int = 0, users: dict | None = None, max_connections: int = 100):
        self.upstream = upstream if isinstance(upstream, UpstreamURL) else UpstreamURL.parse(upstream)
        self.hooks = list(hooks)
        self.host = host
        self._requested_port = port
        self.port = 0
        self.users = user_auths(users)
        self.max_connections = max_connections
        self._keys: dict[tuple[int, int], tuple[int, int]] = {}  # our (pid, key) -> upstream's
        self._conns: dict[int, "_Connection"] = {}
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._pids = itertools.count(40000)
        self._stopping = threading.Event()
        self._listener: socket.socket | None = None
        self._wake_r, self._wake_w = socket.socketpair()
        self._thread: threading.Thread | None = None
        self.errors: list[str] = []  # connection failures, for tests and logs

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> "Proxy":
        if self._thread is not None:
            return self
        sock = socket.socket(socket.AF_INET6 if ":" in self.host else socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self._requested_port))
        sock.listen(64)
        sock.setblocking(False)
        self.port = sock.getsockname()[1]
        self._listener = sock
        self._thread = threading.Thread(target=self._accept_loop, name=f"fakepm-proxy:{self.port}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread is None:
            return
        self._stopping.set()
        try:
            self._wake_w.send(b"x")
        except OSError:
            pass
        self._thread.join(_JOIN_TIMEOUT)
        with self._lock:
            conns = list(self._conns.values())
        for c in conns:  # a thread still in startup/auth waits in recv(): wake it
            if c.info is None:
                try:
                    c.client.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
        for c in conns:
            c.join(_JOIN_TIMEOUT)
        self._listener.close()
        self._wake_r.close()
        self._wake_w.close()
        self._thread = None

    close = stop

    def __enter__(self) -> "Proxy":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def dsn(self) -> str:
        """Where clients connect: postgresql://<upstream user>@host:port/<upstream db>."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"postgresql://{self.upstream.user}@{host}:{self.port}/{self.upstream.database or self.upstream.user}"

    def url(self, user: str | None = None, password: str | None = None, **params) -> str:
        import urllib.parse

        auth = urllib.parse.quote(user or self.upstream.user, safe="")
        if password is not None:
            auth += ":" + urllib.parse.quote(password, safe="")
        q = ("?" + urllib.parse.urlencode(params)) if params else ""
        return f"postgresql://{auth}@{self.host}:{self.port}/{self.upstream.database or self.upstream.user}{q}"

    # ------------------------------------------------------------------ accept
    def _accept_loop(self) -> None:
        sel = selectors.DefaultSelector()
        sel.register(self._listener, selectors.EVENT_READ)
        sel.register(self._wake_r, selectors.EVENT_READ)
        try:
            while not self._stopping.is_set():
                for key, _ in sel.select(1.0):
                    if key.fileobj is self._wake_r:
                        return
                    try:
                        client, _addr = self._listener.accept()
                    except (BlockingIOError, OSError):
                        continue
                    client.setblocking(True)
                    client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # no Nagle delay per reply
                    with self._lock:
                        if len(self._conns) >= self.max_connections:
                            client.close()
                            continue
                        cid = next(self._ids)
                        conn = _Connection(self, cid, client)
                        self._conns[cid] = conn
                    conn.start()
        finally:
            sel.close()

    def _forget(self, conn: "_Connection") -> None:
        with self._lock:
            self._conns.pop(conn.id, None)
            if conn.local_key is not None:
                self._keys.pop(conn.local_key, None)


class _Closed(Exception):
    pass


class _Connection:
    def __init__(self, proxy: Proxy, cid: int, client: socket.socket):
        self.proxy = proxy
        self.id = cid
        self.client = client
        self.upstream: Upstream | None = None
        self.local_key: tuple[int, int] | None = None
        self.info: ConnInfo | None = None
        self.tracker = Tracker(self._on_exchange)
        self.creader = FrameReader()
        self.pgoutput: po.PgoutputDecoder | None = None
        self._local_stmts: dict = {}  # statement name -> (sql, local answer, param oids)
        self._local_portals: dict = {}  # portal name -> (sql, local answer, result formats)
        self._local_skip = False
        self.thread = threading.Thread(target=self._run, name=f"fakepm-proxy-conn-{cid}", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def join(self, timeout: float) -> None:
        self.thread.join(timeout)

    # ------------------------------------------------------------------ plumbing
    def _recv_client(self) -> bytes:
        data = self.client.recv(65536)
        if not data:
            raise _Closed()
        return data

    def _next_client_frame(self):
        while True:
            f = self.creader.next_frame()
            if f is not None:
                return f
            self.creader.feed(self._recv_client())

    def _send_client(self, data: bytes) -> None:
        if data:
            self.client.sendall(data)

    def _fatal(self, err: PgError) -> None:
        try:
            self._send_client(m.error_response(err))
        except OSError:
            pass

    # ------------------------------------------------------------------ phases
    def _run(self) -> None:
        try:
            self.client.settimeout(_CLIENT_TIMEOUT)
            startup = self._startup()
            if startup is None:
                return
            if not self._authenticate(startup):
                return
            if not self._connect_upstream(startup):
                return
            self.client.settimeout(None)
            self._relay()
        except (_Closed, OSError, socket.timeout):
            pass
        except Exception as e:  # noqa: BLE001 - one bad connection must not take the proxy down
            self.proxy.errors.append(f"connection #{self.id}: {type(e).__name__}: {e}")
            self._fatal(PgError("XX000", f"fakepm proxy: {type(e).__name__}: {e}", severity="FATAL"))
        finally:
            if self.info is not None:
                for h in self.proxy.hooks:
                    try:
                        h.on_disconnect(self.info)
                    except Exception:  # noqa: BLE001
                        pass
            if self.upstream is not None:
                self.upstream.close()
            try:
                self.client.close()
            except OSError:
                pass
            self.proxy._forget(self)

    def _startup(self) -> m.StartupMessage | None:
        while True:
            _, body = self._next_client_frame()
            msg = m.decode_startup_packet(body)
            if isinstance(msg, (m.SSLRequest, m.GSSENCRequest)):
                self._send_client(b"N")  # the proxy speaks plain TCP to its clients
                continue
            if isinstance(msg, m.CancelRequest):
                with self.proxy._lock:
                    target = self.proxy._keys.get((msg.pid, msg.secret))
                if target is not None:
                    send_cancel(self.proxy.upstream, *target)
                return None
            if msg.major != 3:
                self._fatal(PgError("0A000", f"unsupported frontend protocol {msg.major}.{msg.minor}",
                                    severity="FATAL"))
                return None
            self.creader.expect_tagged()
            return msg

    def _authenticate(self, startup: m.StartupMessage) -> bool:
        user = startup.parameters.get("user", "")
        auth = Authenticator(self.proxy.users, user)
        try:
            out = auth.start()
            while True:
                # AuthenticationOk waits until the upstream connection is up (_connect_upstream)
                self._send_client(b"".join(m.Authentication(r.code, r.data).encode() for r in out if r.code != 0))
                if auth.done:
                    return True
                t, body = self._next_client_frame()
                if t != b"p":
                    self._fatal(PgError("08P01", f"expected password response, got message type {t!r}",
                                        severity="FATAL"))
                    return False
                out = auth.receive(body)
        except AuthFailed as e:
            self._fatal(e.error)
            return False

    def _connect_upstream(self, startup: m.StartupMessage) -> bool:
        params = dict(startup.parameters)
        try:
            self.upstream = Upstream(self.proxy.upstream, params).connect()
        except UpstreamError as e:
            self.proxy.errors.append(f"connection #{self.id}: {e}")
            err = e.error or PgError("08006", f"fakepm proxy: {e}", severity="FATAL")
            self._fatal(err)
            return False
        up = self.upstream
        pid, key = next(self.proxy._pids), secrets.randbits(31)
        self.local_key = (pid, key)
        with self.proxy._lock:
            self.proxy._keys[self.local_key] = (up.pid, up.secret)
        self.info = ConnInfo(
            self.id, up.startup.get("user", ""), up.startup.get("database", up.startup.get("user", "")),
            dict(startup.parameters), dict(up.parameters), startup.parameters.get("replication"),
        )
        out = [m.AUTH_OK] + [m.parameter_status(k, v) for k, v in up.parameters.items()]
        out += [m.BackendKeyData(pid, key).encode(), m.READY_IDLE]
        self._send_client(b"".join(out))
        for h in self.proxy.hooks:
            h.on_connect(self.info)
        return True

    def _relay(self) -> None:
        up = self.upstream
        sel = selectors.DefaultSelector()
        self.client.setblocking(False)
        up.sock.setblocking(False)
        sel.register(self.client, selectors.EVENT_READ, "client")
        sel.register(up.sock, selectors.EVENT_READ, "upstream")
        sel.register(self.proxy._wake_r, selectors.EVENT_READ, "wake")
        try:
            # bytes the upstream sent after its first ReadyForQuery (rare) are already buffered
            self._pump_upstream(b"")
            while not self.proxy._stopping.is_set():
                for key, _ in sel.select(1.0):
                    if key.data == "wake":
                        return
                    sock = self.client if key.data == "client" else up.sock
                    try:
                        data = sock.recv(262144)
                    except (BlockingIOError, InterruptedError):
                        continue
                    if not data:
                        return
                    if key.data == "client":
                        if self._pump_client(data):
                            return
                    else:
                        self._pump_upstream(data)
        finally:
            sel.close()

    @staticmethod
    def _sendall(sock: socket.socket, data: bytes) -> None:
        """sendall on a non-blocking socket, bounded: wait for writability up to 30 s per chunk."""
        view = memoryview(data)
        while view:
            try:
                n = sock.send(view)
                view = view[n:]
            except (BlockingIOError, InterruptedError):
                sel = selectors.DefaultSelector()
                sel.register(sock, selectors.EVENT_WRITE)
                ready = sel.select(30.0)
                sel.close()
                if not ready:
                    raise _Closed()

    # ------------------------------------------------------------------ client -> upstream
    def _pump_client(self, data: bytes) -> bool:
        """Relay complete client messages; True when the client said Terminate."""
        self.creader.feed(data)
        to_up: list[bytes] = []
        done = False
        while True:
            f = self.creader.next_frame()
            if f is None:
                break
            t, body = f
            raw = m.frame(t, body)
            if t == b"X":
                to_up.append(raw)
                done = True
                break
            try:
                msg = m.decode_frontend(t, body)
            except m.ProtocolViolation:
                to_up.append(raw)  # let the real server judge it
                continue
            if self.proxy.hooks or self._local_stmts or self._local_portals:
                handled, new = self._client_hooks(msg)
                if handled:
                    continue
                if new is not msg:
                    msg, raw = new, new.encode()
            self.tracker.client(msg)
            to_up.append(raw)
        if to_up:
            self._sendall(self.upstream.sock, b"".join(to_up))
        local = self.tracker.take_local()  # local answers with nothing pending before them
        if local:
            self._sendall(self.client, local)
        return done

    def _reply_locally(self, data: bytes) -> None:
        """Queue a local reply behind the replies still due from upstream (order is the protocol's)."""
        self.tracker.client_local(data)

    def _client_hooks(self, msg) -> tuple[bool, object]:
        """(True, _) when the message was answered here; else (False, the message to forward)."""
        if self._local_skip:  # a local error in the extended protocol: drop until Sync
            if not isinstance(msg, m.Sync):
                return True, msg
            self._local_skip = False
        if isinstance(msg, m.Query):
            r, sql = self._query_hooks(msg.sql)
            if r is not None:
                self._reply_locally(self._local_result(sql, r, ()) + m.READY[self.info.transaction_status])
                return True, msg
            return False, (msg if sql == msg.sql else m.Query(sql))
        if isinstance(msg, m.Parse):
            r, sql = self._query_hooks(msg.sql)
            if r is not None:
                self._local_stmts[msg.name] = (sql, r, msg.param_oids)
                self._reply_locally(m.PARSE_COMPLETE)
                return True, msg
            self._local_stmts.pop(msg.name, None)
            return False, (msg if sql == msg.sql else m.Parse(msg.name, sql, msg.param_oids))
        if isinstance(msg, m.Bind):
            st = self._local_stmts.get(msg.statement)
            if st is not None:
                self._local_portals[msg.portal] = (st[0], st[1], msg.result_formats)
                self._reply_locally(m.BIND_COMPLETE)
                return True, msg
            self._local_portals.pop(msg.portal, None)
        elif isinstance(msg, m.Describe):
            if msg.kind == "S" and msg.name in self._local_stmts:
                sql, r, oids = self._local_stmts[msg.name]
                desc = m.ParameterDescription(tuple(o or 25 for o in oids)).encode()
                self._reply_locally(desc + self._local_description(r, ()))
                return True, msg
            if msg.kind == "P" and msg.name in self._local_portals:
                sql, r, formats = self._local_portals[msg.name]
                self._reply_locally(self._local_description(r, formats))
                return True, msg
        elif isinstance(msg, m.Execute) and msg.portal in self._local_portals:
            sql, r, formats = self._local_portals[msg.portal]
            if isinstance(r, PgError):
                self._local_skip = True
            self._reply_locally(self._local_result(sql, r, formats, describe=False))
            return True, msg
        elif isinstance(msg, m.Close):
            local = self._local_stmts if msg.kind == "S" else self._local_portals
            if msg.name in local:
                del local[msg.name]
                self._reply_locally(m.CLOSE_COMPLETE)
                return True, msg
        return False, msg

    def _query_hooks(self, sql: str):
        """(local answer or None, SQL to send) after every hook's on_query."""
        for h in self.proxy.hooks:
            r = h.on_query(sql, self.info)
            if r is None:
                continue
            if isinstance(r, str):
                sql = r
                continue
            if isinstance(r, (Result, PgError)):
                return r, sql
            raise TypeError(f"{type(h).__name__}.on_query returned {r!r}: expected None, a str, a Result "
                            "(see fakepm.proxy.answer) or a PgError")
        return None, sql

    @staticmethod
    def _formats(r: Result, formats: tuple) -> list:
        n = len(r.columns or ())
        if not formats:
            return [0] * n
        return [formats[0]] * n if len(formats) == 1 else list(formats)[:n]

    def _local_description(self, r, formats: tuple) -> bytes:
        if isinstance(r, PgError) or r.columns is None:
            return m.NO_DATA
        fmts = self._formats(r, formats)
        return m.row_description([m.FieldDescription(c.name, c.type.oid, c.type.typlen, c.typmod, f)
                                  for c, f in zip(r.columns, fmts)])

    def _local_result(self, sql: str, r, formats: tuple, describe: bool = True) -> bytes:
        if isinstance(r, PgError):
            return m.error_response(r)
        out = []
        n = 0
        if r.columns is not None:
            fmts = self._formats(r, formats)
            if describe:
                out.append(self._local_description(r, formats))
            for row in r.iter_rows():
                out.append(m.data_row([None if v is None else (c.type.encode_binary(v) if f else c.type.encode_text(v))
                                       for c, f, v in zip(r.columns, fmts, row)]))
                n += 1
        out.append(m.command_complete(r.tag or default_tag(sql, n)))
        return b"".join(out)

    # ------------------------------------------------------------------ upstream -> client
    def _pump_upstream(self, data: bytes) -> None:
        up = self.upstream
        if data:
            up.reader.feed(data)
        out: list[bytes] = []
        hooks = self.proxy.hooks
        while True:
            f = up.reader.next_frame()
            if f is None:
                break
            t, body = f
            raw = m.frame(t, body)
            try:
                msg = m.decode_backend(t, body)
            except m.ProtocolViolation:
                out.append(raw)
                continue
            if hooks:
                if isinstance(msg, m.DataRow) and not self.tracker.copy_both:
                    new = self._row_hooks(msg)
                    if new is not None:
                        msg, raw = new, new.encode()
                elif isinstance(msg, m.CopyData) and self.tracker.copy_both:
                    payload = self._replication_hooks(msg.data)
                    if payload is not None:
                        msg = m.CopyData(payload)
                        raw = msg.encode()
            if isinstance(msg, m.ReadyForQuery):
                self.info.transaction_status = msg.status
            self.tracker.server(msg)
            out.append(raw)
            local = self.tracker.take_local()
            if local:
                out.append(local)
        if out:
            self._sendall(self.client, b"".join(out))

    def _row_hooks(self, msg: m.DataRow) -> m.DataRow | None:
        fields = self.tracker.row_fields()
        if len(fields) != len(msg.values):
            return None
        cols = [ColumnInfo(f.name, type_name(f.type_oid, f.type_modifier), f.type_oid, f.table_oid) for f in fields]
        row = [decode_value(f.type_oid, f.format, v) for f, v in zip(fields, msg.values)]
        changed = False
        for h in self.proxy.hooks:
            new = h.on_row(cols, row, self.info)
            if new is not None:
                row, changed = list(new), True
        if not changed:
            return None
        return m.DataRow(tuple(encode_value(f.type_oid, f.format, v) for f, v in zip(fields, row)))

    def _replication_hooks(self, data: bytes) -> bytes | None:
        """Rewrite Insert/Update/Delete tuples inside an XLogData's pgoutput payload; None = unchanged."""
        if not data or data[:1] != b"w":
            return None
        try:
            xlog = decode_replication_message(data)
            if self.pgoutput is None:
                self.pgoutput = po.PgoutputDecoder()
            msg = self.pgoutput.decode(xlog.payload)
        except ValueError:
            return None  # not pgoutput (another plugin): relayed untouched
        if not isinstance(msg, (po.Insert, po.Update, po.Delete)):
            return None
        rel = self.pgoutput.relations.get(msg.relid)
        if rel is None:
            return None
        kw = {}
        for name in ("new", "key", "old"):  # key/old: identity columns may hold the value too
            tup = getattr(msg, name, None)
            if tup is not None:
                changed = self._tuple_hooks(rel, tup)
                if changed is not None:
                    kw[name] = changed
        if not kw:
            return None
        payload = type(msg)(**{**_fields_of(msg), **kw}).encode()
        return XLogData(xlog.wal_start, xlog.wal_end, xlog.send_time, payload).encode()

    def _tuple_hooks(self, rel: po.Relation, tup) -> tuple | None:
        cols = [c.name for c in rel.columns]
        if len(cols) != len(tup):
            return None
        values = []
        for c, v in zip(rel.columns, tup):
            if isinstance(v, po.TextValue):
                values.append(decode_value(c.type_oid, 0, v.data))
            elif isinstance(v, po.BinaryValue):
                values.append(decode_value(c.type_oid, 1, v.data))
            else:
                values.append(None)
        orig = list(values)
        changed = False
        relation = f"{rel.namespace}.{rel.name}"
        for h in self.proxy.hooks:
            new = h.on_change(relation, cols, values, self.info)
            if new is not None:
                values, changed = list(new), True
        if not changed:
            return None
        out = []
        for c, old, before, after in zip(rel.columns, tup, orig, values):
            if after == before and (after is not None or not isinstance(old, (po.TextValue, po.BinaryValue))):
                out.append(old)
            elif after is None:
                out.append(None)
            elif isinstance(old, po.BinaryValue):
                out.append(po.BinaryValue(encode_value(c.type_oid, 1, after)))
            else:
                out.append(po.TextValue(encode_value(c.type_oid, 0, after)))
        return tuple(out)

    # ------------------------------------------------------------------ observers
    def _on_exchange(self, ex) -> None:
        for h in self.proxy.hooks:
            try:
                h.on_exchange(ex, self.info)
            except Exception as e:  # noqa: BLE001 - a logging hook must not break the relay
                self.proxy.errors.append(f"{type(h).__name__}.on_exchange: {type(e).__name__}: {e}")


def _fields_of(msg) -> dict:
    import dataclasses

    return {f.name: getattr(msg, f.name) for f in dataclasses.fields(msg)}
