"""Replay a recording (proxy/recording.py) as the engine of backend mode: `fakepm serve FILE`.

The relay (proxy/backend.py) forwards every client message that no rule answers to the
client's upstream session, as for a real PostgreSQL; here that session is a `Player`, which
answers each frontend message with the backend messages recorded for it, byte for byte:

* a simple Query by its text; a Parse by its text and declared types (ParseComplete unless the
  recording says it failed); Describe of a statement by the same; Bind + Describe of the
  portal + Execute by text, declared types, bound values and formats; a function call by
  its bytes. The same key asked again gets the next recorded answer (recorded order); past
  the last one, the last repeats;
* `match: shape` (the recorder's default): a statement not recorded exactly is matched by
  its shape -- the SQL with constants taken out, bound values ignored -- and gets the first
  answer of that shape not used yet (timestamps, generated names, random ids differ run to
  run); `match: exact` answers only exact keys. Either way, what is not in the recording gets
  an ErrorResponse (SQLSTATE FP000), and `report` says where the replay left the recorded
  path (FakePostgres.verify() fails on it);
* after an error the Player skips to Sync, as PostgreSQL does; ReadyForQuery carries the
  transaction status recorded after the answer; COPY FROM STDIN swallows the client's data
  and answers CopyDone with what was recorded.

Sans-I/O: `Player.feed(bytes) -> bytes`. `ReplayEngine.open_session` runs one Player per
client on a thread at the far end of a socket pair (the relay treats it as any upstream).
"""

from __future__ import annotations

import itertools
import socket
import struct
import threading

from ..protocol.errors import PgError, fatal
from ..protocol.framing import FrameReader
from ..protocol import messages as m
from ..protocol.messages import error_response
from ..sql import iter_tokens
from .recording import Entry, Index, RecordingError, parts_to_bytes, part_to_bytes
from .upstream import Upstream

_HDR = struct.Struct("!Bi")
_MAX_BUFFER = 1 << 30
_TERMINATED = error_response(fatal("57P01", "terminating connection due to administrator command"))


def _terminated_pids(sql: str, params: list) -> list[int]:
    """The pids `pg_terminate_backend(...)` names in `sql`: a number written in the call, or the
    parameter it takes ($n, bound as text or as a binary int2/int4/int8)."""
    if "pg_terminate_backend" not in sql.lower():
        return []
    toks = list(iter_tokens(sql))
    pids = []
    for i, t in enumerate(toks[:-2]):
        if not t.is_word("pg_terminate_backend") or toks[i + 1].value != "(":
            continue
        arg = toks[i + 2]
        if arg.kind == "n" and arg.value.isdigit():
            pids.append(int(arg.value))
        elif arg.kind == "p" and 0 < arg.value <= len(params) and params[arg.value - 1] is not None:
            raw = params[arg.value - 1]
            if raw.isdigit():
                pids.append(int(raw))
            elif len(raw) in (2, 4, 8):
                pids.append(int.from_bytes(raw, "big", signed=True))
    return pids


def _ready(tx: str) -> bytes:
    return m.READY[tx]


def _error(code: str, message: str, hint: str | None = None) -> bytes:
    return error_response(PgError(code, message, hint=hint, file=None))


def _cstr(body: bytes, pos: int) -> tuple[str, int]:
    end = body.index(b"\0", pos)
    return body[pos:end].decode("utf-8", "replace"), end + 1


class Player:
    """One replayed session: frontend bytes in, the recorded backend bytes out."""

    def __init__(self, index: Index, label: str = "", conn: int | None = None, attempt: int | None = None):
        self.index = index
        self._conn = conn  # the recorded connection this one replays (by number), bound at first use
        self._bound = conn is not None
        self._attempt = attempt  # this connection's place in the replay's connection order
        self.label = label
        self.buf = bytearray()
        self.statements: dict[str, tuple] = {}  # name -> (sql, declared oids)
        self.portals: dict[str, list] = {}  # name -> [entry | None, next step, key]
        self.tx = "I"
        self.group_tx: str | None = None  # recorded status of the last answer since the last Sync
        self.skipping = False
        self.copy_in: tuple | None = None  # (entry, after parts, simple?) while the client sends COPY data
        self.closed = False
        self.terminate = None  # callable(pids): pg_terminate_backend ends those replayed sessions
        self.told_pids: set[int] = set()  # what its `pg_backend_pid()` answered: how clients name it
        self._terminations: dict[str, list[int]] = {}  # portal -> pids its Execute terminates

    @property
    def recorded_connection(self) -> int | None:
        """The recorded connection (number) this session follows, once bound."""
        return self._conn if self._bound else None

    def _bind_conn(self, key: tuple) -> int | None:
        if not self._bound:
            self._bound = True
            self._conn = self.index.claim(key, self._attempt)
        return self._conn

    # ------------------------------------------------------------------ input
    def feed(self, data: bytes) -> bytes:
        self.buf += data
        if len(self.buf) > _MAX_BUFFER:
            self.closed = True
            return _error("08P01", "fakepm replay: message too large")
        out = []
        buf = self.buf
        pos = 0
        while len(buf) - pos >= 5 and not self.closed:
            kind, length = _HDR.unpack_from(buf, pos)
            end = pos + 1 + length
            if length < 4:
                self.closed = True
                break
            if end > len(buf):
                break
            body = bytes(buf[pos + 5:end])
            pos = end
            out.append(self.message(kind, body))
        del buf[:pos]
        return b"".join(out)

    def message(self, kind: int, body: bytes) -> bytes:
        k = chr(kind)
        if self.copy_in is not None:
            if k == "d":
                return b""
            if k in ("c", "f"):
                return self._end_copy(k)
            if k in ("H", "S"):
                return b""  # ignored during COPY FROM STDIN, as PostgreSQL does
            self.copy_in = None
        if k == "X":
            self.closed = True
            return b""
        if k == "S":
            self.skipping = False
            tx = self.group_tx
            self.group_tx = None
            if tx is not None:
                self.tx = tx
            return _ready(self.tx)
        if self.skipping:
            return b""
        if k == "Q":
            return self._query(body[:-1].decode("utf-8", "replace"))
        if k == "P":
            return self._parse(body)
        if k == "B":
            return self._bind(body)
        if k == "D":
            return self._describe(body)
        if k == "E":
            return self._execute(body)
        if k == "C":
            name, _ = _cstr(body, 1)
            (self.statements if body[:1] == b"S" else self.portals).pop(name, None)
            return m.CLOSE_COMPLETE
        if k == "H":
            return b""
        if k == "F":
            en, how = self.index.take(("call", body), self._bind_conn(("call", body)))
            if en is None:
                self.index.note(f"{self.label}function call not in the recording")
                return _error("FP000", "fakepm replay: this function call is not in the recording") + _ready(self.tx)
            self._took(en, how, "function call")
            self.tx = en.tx or "I"
            return en.reply() + _ready(self.tx)
        return _error("08P01", f"fakepm replay: unexpected message type {k!r}")

    # ------------------------------------------------------------------ helpers
    def _note_pid(self, sql: str, parts: list) -> None:
        if "pg_backend_pid" in sql.lower():
            for p in parts:
                for row in p.get("rows") or ():
                    for v in row:
                        if isinstance(v, str) and v.isdigit():
                            self.told_pids.add(int(v))

    def _took(self, en: Entry, how: str, what: str) -> None:
        if how == "shape":
            rec = en.data
            recorded = next((rec[k] for k in ("query", "parse", "describe", "bind") if k in rec), "")
            self.index.note(f"{self.label}matched by shape: {what!r} answered as recorded for {recorded!r} "
                            f"(statements item {en.index + 1})")

    def _missing(self, what: str, sql: str) -> bytes:
        self.index.note(f"{self.label}not in the recording: {what} {sql[:200]!r}")
        return _error("FP000", f"fakepm replay: not in the recording: {sql[:200]}",
                      "the recording has no answer for this statement (record it again, or add a rule)")

    def _ext_fail(self, err: bytes) -> bytes:
        self.skipping = True
        if self.tx == "T":
            self.tx = "E"
        return err

    def _emit(self, parts: list, simple: bool, en: Entry) -> bytes:
        """Parts up to a CopyInResponse are sent; the rest waits for the client's CopyDone. After a
        FATAL the session ends (PostgreSQL closes the connection)."""
        if any((p.get("error") or {}).get("severity") in ("FATAL", "PANIC") for p in parts):
            self.closed = True
        for i, p in enumerate(parts):
            if "copy_in" in p:
                after = en.data.get("after") or parts[i + 1:]
                self.copy_in = (en, list(after), simple)
                return parts_to_bytes(parts[:i + 1])
        return parts_to_bytes(parts)

    def _end_copy(self, k: str) -> bytes:
        en, after, simple = self.copy_in
        self.copy_in = None
        out = parts_to_bytes(after)
        if any("error" in p for p in after) and not simple:
            self.skipping = True
        if simple:
            self.tx = en.tx or "I"
            out += _ready(self.tx)
        return out

    # ------------------------------------------------------------------ simple query
    def _query(self, sql: str) -> bytes:
        en, how = self.index.take(("query", sql), self._bind_conn(("query", sql)))
        if en is None:
            if self.tx == "T":
                self.tx = "E"
            return self._missing("query", sql) + _ready(self.tx)
        self._took(en, how, sql)
        parts = en.parts()
        out = self._emit(parts, True, en)
        self._note_pid(sql, parts)
        pids = _terminated_pids(sql, [])
        if pids and self.terminate is not None:
            self.terminate(pids)
        if self.copy_in is not None:
            return out
        self.tx = en.tx or "I"
        return out + _ready(self.tx)

    # ------------------------------------------------------------------ extended protocol
    def _parse(self, body: bytes) -> bytes:
        p = m.Parse.decode(body)
        name, sql, oids = p.name, p.sql, p.param_oids
        key = ("parse", sql, tuple(oids))
        if key in self.index.parse_keys:
            en, how = self.index.take(key, self._bind_conn(key))
            if en is not None and en.data.get("error") is not None:
                if en.tx:
                    self.group_tx = en.tx
                if not name:
                    self.statements.pop("", None)
                return self._ext_fail(en.reply())
        self.statements[name] = (sql, tuple(oids))
        return m.PARSE_COMPLETE

    def _statement(self, name: str):
        st = self.statements.get(name)
        if st is None:
            text = f'prepared statement "{name}" does not exist' if name else \
                "unnamed prepared statement does not exist"
            return None, self._ext_fail(_error("26000", text))
        return st, b""

    def _bind(self, body: bytes) -> bytes:
        b = m.Bind.decode(body)
        portal, params = b.portal, list(b.params)
        st, err = self._statement(b.statement)
        if st is None:
            return err
        key = ("bind", st[0], st[1], tuple(params), tuple(b.param_formats), tuple(b.result_formats))
        en, how = self.index.take(key, self._bind_conn(key))
        if en is None:
            return self._ext_fail(self._missing("bind", st[0]))
        self._took(en, how, st[0])
        if en.tx:
            self.group_tx = en.tx
        if en.data.get("bind_error") is not None:
            self.portals.pop(portal, None)
            return self._ext_fail(part_to_bytes({"error": en.data["bind_error"]}))
        self.portals[portal] = [en, 0]
        pids = _terminated_pids(st[0], params)
        if pids:
            self._terminations[portal] = pids
        return m.BIND_COMPLETE

    def _describe(self, body: bytes) -> bytes:
        name, _ = _cstr(body, 1)
        if body[:1] == b"S":
            st, err = self._statement(name)
            if st is None:
                return err
            en, how = self.index.take(("describe", st[0], st[1]), self._bind_conn(("describe", st[0], st[1])))
            if en is None:
                return self._ext_fail(self._missing("describe", st[0]))
            self._took(en, how, st[0])
            out = en.reply()
            if en.data.get("error") is not None:
                return self._ext_fail(out)
            return out
        p = self.portals.get(name)
        if p is None:
            return self._ext_fail(_error("34000", f'portal "{name}" does not exist'))
        en, i = p
        parts = en.step(i)
        if parts is not None and _describes(parts):
            p[1] = i + 1
            return parts_to_bytes(parts)
        # not described when recorded: the columns the recorded Execute sent, if any
        head = [x for x in parts or () if "columns" in x][:1]
        return parts_to_bytes(head) if head else m.NO_DATA

    def _execute(self, body: bytes) -> bytes:
        name, _ = _cstr(body, 0)
        p = self.portals.get(name)
        if p is None:
            return self._ext_fail(_error("34000", f'portal "{name}" does not exist'))
        en, i = p
        parts = en.step(i)
        while parts is not None and _describes(parts):  # described when recorded, not now
            i += 1
            parts = en.step(i)
        if parts is None:  # executed more often than recorded: the last answer again
            parts = en.step(max(0, i - 1)) or []
            if _describes(parts):
                parts = []
        p[1] = i + 1
        out = self._emit(parts, False, en)
        self._note_pid(en.data.get("bind") or "", parts)
        pids = self._terminations.pop(name, None)
        if pids and self.terminate is not None:
            self.terminate(pids)
        if any("error" in x for x in parts):
            self.skipping = True
            if self.tx == "T":
                self.tx = "E"
        return out


def _describes(parts: list) -> bool:
    """The reply of a Describe of a portal (one RowDescription or NoData)."""
    return len(parts) == 1 and ("columns" in parts[0] or "no_data" in parts[0])


class ReplayEngine:
    """The engine behind `fakepm serve RECORDING`: every client session is a Player.

    Connections: a client's (user, database) pair is let in when the recording let it in
    (then it gets the recorded ParameterStatus values and pid of the next such recorded
    connection), refused with the recorded FATAL when the recording was refused, and refused
    with 3D000 when the database was never seen."""

    version = ""

    def __init__(self, recording: dict, server: dict | None = None):
        self.recording = recording
        self.server = server or {}
        self.index = Index(list(recording.get("statements") or ()), recording.get("match", "shape"))
        self.connections = list(recording.get("connections") or ())
        self._conn_calls: dict[tuple, int] = {}
        self._pids = itertools.count(90000)
        self._attempts = 0
        self._lock = threading.Lock()
        self._live: set[ReplaySession] = set()  # open sessions: pg_terminate_backend's targets
        self.errors: list[str] = []

    @property
    def report(self) -> list[str]:
        return self.index.report

    # the engine interface of backend mode (server.py, proxy/backend.py)
    def start(self) -> None:
        pass

    def ensure_roles(self, roles: dict) -> None:
        pass

    def acquire_database(self, setup, owner: str | None = None) -> str:
        return self.server.get("database") or "postgres"

    def release_database(self, name: str) -> None:
        pass

    def upstream_url(self, user: str, database: str, password: str | None = None):
        from .upstream import UpstreamURL

        return UpstreamURL(host="127.0.0.1", port=1, user=user, database=database)  # cancel: goes nowhere

    def _connection(self, user: str, database: str) -> tuple[dict, int]:
        """The recorded connection this one replays and its number (attempts counted in order, as the
        recorder counts them); raises UpstreamError for a refusal."""
        from ..protocol.errors import PgError, fatal
        from .upstream import UpstreamError

        with self._lock:
            self._attempts += 1
            number = self._attempts
            same = [c for c in self.connections if c.get("user") == user and c.get("database") == database]
            if not same:
                if any(c.get("database") == database and "error" not in c for c in self.connections) or \
                        (not self.connections and database == self.acquire_database(None)):
                    return {}, number
                err = fatal("3D000", f'database "{database}" does not exist')
                raise UpstreamError(f"refused: {err.message}", err)
            i = self._conn_calls.get((user, database), 0)
            self._conn_calls[(user, database)] = i + 1
            c = same[min(i, len(same) - 1)]
            if number <= len(self.connections):
                at = self.connections[number - 1]  # the same place in the recorded order, if it fits
                if at.get("user") == user and at.get("database") == database:
                    c = at
        if c.get("error") is not None:
            from ..protocol.errors import PgError

            fields = dict(c["error"])
            err = PgError(fields.get("code", "XX000"), fields.get("message", ""),
                          severity=fields.get("severity", "FATAL"),
                          **{k: v for k, v in fields.items() if k in ("detail", "hint")})
            raise UpstreamError(f"refused: {err.message}", err)
        return c, number

    def open_session(self, user: str, database: str, startup: dict):
        """(worker thread) A Player on a thread behind a socket pair, as an upstream session."""
        c, number = self._connection(user, database)
        params = dict((self.server.get("parameters") or {}))
        if self.server.get("version"):
            params.setdefault("server_version", self.server["version"])
        params.update(c.get("parameters") or {})
        for k in ("application_name", "client_encoding", "DateStyle", "TimeZone"):
            if k in startup and k not in (c.get("parameters") or {}):
                params[k] = startup[k]
        params.setdefault("session_authorization", user)
        player = Player(self.index, label=f"{user}@{database}: ", attempt=number)
        session = ReplaySession(self, player, params, c.get("pid") or next(self._pids), c.get("key") or 0,
                                self.upstream_url(user, database))
        player.terminate = lambda pids: self.terminate(pids, session)
        with self._lock:
            self._live.add(session)
        return session

    def terminate(self, pids: list[int], caller) -> None:
        """pg_terminate_backend replayed: those sessions end with PostgreSQL's FATAL 57P01."""
        wanted = set(pids)
        with self._lock:
            victims = [s for s in self._live if s is not caller and wanted & self._pids_of(s)]
            self._live.difference_update(victims)
        for victim in victims:
            victim.terminated()

    def _pids_of(self, session) -> set:
        """The pids a client may know a replayed session by: the one its startup reported, what its
        `pg_backend_pid()` answered, and the recorded pid of the connection it follows."""
        pids = {session.pid, *session.player.told_pids}
        n = session.player.recorded_connection
        if n is not None and 0 < n <= len(self.connections) and self.connections[n - 1].get("pid"):
            pids.add(self.connections[n - 1]["pid"])
        return pids

    def forget(self, session) -> None:
        with self._lock:
            self._live.discard(session)


class ReplaySession(Upstream):
    """What proxy/backend.py takes for an upstream session: a socket (ours: one end of a pair, a
    Player thread at the other), ParameterStatus values, the backend key."""

    def __init__(self, engine: ReplayEngine, player: Player, parameters: dict, pid: int, secret: int, url):
        self.engine = engine
        self.player = player
        self.parameters = parameters
        self.pid = pid
        self.secret = secret
        self.url = url
        self.startup = {"user": url.user, "database": url.database}
        self.reader = FrameReader()
        self.reader.expect_tagged()
        self.sock, self._far = socket.socketpair()
        self._send_lock = threading.Lock()  # the Player's answers and a termination never interleave
        self._thread = threading.Thread(target=self._run, args=(self._far,), name="fakepm-replay", daemon=True)
        self._thread.start()

    def _run(self, sock: socket.socket) -> None:
        try:
            with sock:
                while not self.player.closed:
                    data = sock.recv(1 << 16)
                    if not data:
                        break
                    out = self.player.feed(data)
                    if out:
                        with self._send_lock:
                            sock.sendall(out)
        except OSError:
            pass
        except Exception as e:  # noqa: BLE001 - a bug here must not hang the client: report, close
            self.engine.errors.append(f"replay: {type(e).__name__}: {e}")
        finally:
            self.engine.forget(self)

    def terminated(self) -> None:
        """(another session's thread) As a backend told to terminate: FATAL 57P01, then the end."""
        self.player.closed = True
        try:
            with self._send_lock:
                self._far.sendall(_TERMINATED)
            self._far.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass


__all__ = ["Player", "ReplayEngine", "RecordingError"]
