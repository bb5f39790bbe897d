"""The I/O loop: one background thread runs a plain `selectors` loop for every connection.

Why this shape (see DESIGN.md, "The I/O model"): a thread per connection is capped by the
GIL with many clients; asyncio adds ~20 us per round trip. So: one selector thread, rule
answers served inline from prebuilt bytes, Python handlers on worker threads, delays and
keepalives as loop timers (never sleeps), TLS through ssl.MemoryBIO so it fits the loop.

Only this module (and server.py, which drives it) touches sockets and threads.
"""

from __future__ import annotations

import errno
import heapq
import itertools
import os
import queue
import selectors
import socket
import ssl
import struct
import threading
import time
from collections import deque
from typing import Any, Callable

from .session.connection import Session
from .session.waits import NEED_INPUT, OUTPUT_FULL, START_TLS, Await

RECV_SIZE = 256 * 1024
WRITE_HIGH_WATER = 4 * 1024 * 1024  # stop reading from a client that does not read its answers
# Descriptors: a connection accepted when the descriptor table is nearly full gets PostgreSQL's
# FATAL 53300 "sorry, too many clients already" and is closed, rather than taking the last
# descriptors (then accept() fails with EMFILE, its listener stays readable and the loop
# would spin). The headroom keeps room for those answers, TLS, engine sockets and files.
# The headroom is 1/16 of the limit, at least 16: 16 of 128, 64 of 1024. Half of it may hold
# "too many clients" connections being answered at once; beyond that new clients wait in the
# listen backlog until one is done.
FD_HEADROOM_MIN = 16
FD_HEADROOM_FRACTION = 16
# How long such a connection may take to send its startup packet, read the answer and hang up:
# short, so silent connections waiting in the backlog do not keep new clients from their answer
# (a client sends its startup packet right after connecting; it is usually there at accept)
DEAD_END_SECONDS = 0.5
DEAD_END_SILENT = 0.1  # ... and one that has sent nothing at all by then is a silent one: closed
ACCEPT_BACKOFF = (0.05, 1.0)  # accept() failed (EMFILE...): stop watching the listener, doubling up to 1 s
_TOO_MANY = None  # the FATAL 53300 bytes, made on first use


def _too_many_clients() -> bytes:
    global _TOO_MANY
    if _TOO_MANY is None:
        from .protocol import messages as m
        from .protocol.errors import fatal

        _TOO_MANY = m.error_response(fatal("53300", "sorry, too many clients already"))
    return _TOO_MANY


def _ignore(*args) -> None:
    """What a closed session's hooks become (another thread may still call one)."""


def descriptor_limit() -> int:
    """This process's soft RLIMIT_NOFILE (a large number when unlimited or unknown)."""
    try:
        import resource

        soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    except (ImportError, OSError, ValueError):
        return 1 << 20
    return soft if soft > 0 else 1 << 20


class DeadEnd:
    """A connection accepted over the descriptor limit, served as PostgreSQL's dead-end backend
    serves one: SSLRequest/GSSENCRequest get 'N', the startup packet gets FATAL 53300 "sorry,
    too many clients already" (libpq shows that text only after its startup packet), then the
    rest is read and dropped (closing with unread bytes would reset the connection and could
    lose the answer) until the client hangs up or DEAD_END_SECONDS pass."""

    __slots__ = ("answered", "buf", "sock", "until")

    def __init__(self, sock: socket.socket, until: float):
        self.sock = sock
        self.until = until
        self.buf = b""
        self.answered = False

    def feed(self, data: bytes, now: float) -> bool:
        """Take client bytes; False when the connection should end now."""
        if self.answered:
            return True
        if not self.buf:
            self.until = now + DEAD_END_SECONDS  # it speaks: time to finish
        self.buf += data
        while len(self.buf) >= 8:
            n, code = struct.unpack_from("!ii", self.buf)
            if n < 8 or n > 10000:
                return False
            if len(self.buf) < n:
                return True
            self.buf = self.buf[n:]
            if code in (80877103, 80877104):  # SSLRequest, GSSENCRequest: not here
                self.sock.send(b"N")
            elif code == 80877102:  # CancelRequest: nothing to say
                return False
            else:
                self.sock.send(_too_many_clients())
                self.sock.shutdown(socket.SHUT_WR)
                self.answered = True
                self.buf = b""
                return True
        return True


class _Workers:
    """A small pool of daemon threads for user handlers (which may block on a test's Event)."""

    def __init__(self, size: int = 16):
        self._q: queue.SimpleQueue = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._size = size
        self._idle = 0
        self._lock = threading.Lock()

    def submit(self, fn: Callable[[], None]) -> None:
        with self._lock:
            if self._idle == 0 and len(self._threads) < self._size:
                t = threading.Thread(target=self._run, name=f"fakepm-worker-{len(self._threads)}", daemon=True)
                self._threads.append(t)
                t.start()
        self._q.put(fn)

    def _run(self) -> None:
        while True:
            with self._lock:
                self._idle += 1
            fn = self._q.get()
            with self._lock:
                self._idle -= 1
            if fn is None:
                return
            try:
                fn()
            except Exception:  # noqa: BLE001 - the callable reports its own errors
                pass

    def stop(self, timeout: float = 1.0) -> list[threading.Thread]:
        """Ask every worker to end; returns the ones still busy after `timeout` (stuck handlers)."""
        for _ in self._threads:
            self._q.put(None)
        deadline = time.monotonic() + timeout
        for t in self._threads:
            t.join(max(0.0, deadline - time.monotonic()))
        stuck = [t for t in self._threads if t.is_alive()]
        self._threads = []
        return stuck


class UpSide:
    """Backend mode: the loop's end of a client's upstream session on the engine."""

    __slots__ = ("conn", "sock", "out", "out_size", "events")

    def __init__(self, conn: "Conn", sock: socket.socket):
        self.conn = conn
        self.sock = sock
        self.out: deque = deque()
        self.out_size = 0
        self.events = 0


class Conn:
    __slots__ = (
        "sock", "session", "out", "out_size", "tls", "tls_in", "tls_out", "handshaking", "closing",
        "events", "timer_at", "peer", "reading", "key", "rst", "paced", "up", "authing",
    )

    def __init__(self, sock: socket.socket, session: Session, peer):
        self.sock = sock
        self.session = session
        self.out: deque = deque()
        self.out_size = 0
        self.tls: ssl.SSLObject | None = None
        self.tls_in: ssl.MemoryBIO | None = None
        self.tls_out: ssl.MemoryBIO | None = None
        self.handshaking = False
        self.closing = False
        self.events = 0
        self.timer_at: float | None = None
        self.peer = peer
        self.reading = True
        self.rst = False
        self.paced: deque | None = None  # (delay, chunk, then) pieces of a byte-level fault
        self.up: UpSide | None = None  # backend mode: the upstream session's socket
        self.authing = False  # in Loop._authing until it authenticated (authentication_timeout)


class Loop:
    """Runs the selector thread. Everything that touches sessions happens on this thread;
    other threads hand work over with `call_soon_threadsafe`."""

    def __init__(self, make_session: Callable[[Any, bool], Session], *, ssl_context: ssl.SSLContext | None = None):
        self.make_session = make_session
        self.ssl_context = ssl_context
        self.sel = selectors.DefaultSelector()
        self.listeners: list[socket.socket] = []
        self.conns: set[Conn] = set()
        self._calls: deque = deque()
        self._timers: list = []
        self._seq = itertools.count()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self.sel.register(self._wake_r, selectors.EVENT_READ, None)
        self._stopping = False
        self.thread: threading.Thread | None = None
        self.workers = _Workers()
        self.errors: list[str] = []
        self.refuse_new = False
        self.stuck_handlers: list[threading.Thread] = []
        # accept throttling and authentication_timeout (see the constants above)
        self.fd_limit = descriptor_limit()
        self.fd_headroom = max(FD_HEADROOM_MIN, self.fd_limit // FD_HEADROOM_FRACTION)
        self.dead_ends: set[DeadEnd] = set()
        self._dead_end_timer: list | None = None
        self._listening = True
        self._backoff = 0.0
        self._authing: dict[Conn, float] = {}  # connections not yet authenticated -> their deadline (in order)
        self._auth_timer: list | None = None
        self.stats = {"too_many_clients": 0, "accept_failed": 0, "auth_timeouts": 0}

    # ------------------------------------------------------------------ setup / teardown
    def add_listener(self, sock: socket.socket) -> None:
        sock.setblocking(False)
        self.listeners.append(sock)
        self.sel.register(sock, selectors.EVENT_READ, "listener")

    def start(self) -> None:
        self.thread = threading.Thread(target=self._run, name="fakepm-loop", daemon=True)
        self.thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        if self.thread is None:
            return
        self._stopping = True
        self._wake()
        self.thread.join(timeout)
        self.thread = None
        self.stuck_handlers = self.workers.stop()

    def call_soon_threadsafe(self, fn: Callable[[], None]) -> None:
        self._calls.append(fn)
        self._wake()

    def _wake(self) -> None:
        try:
            self._wake_w.send(b"\0")
        except (BlockingIOError, OSError):
            pass  # a wakeup is already pending (buffer full) or we are shutting down

    def call_later(self, delay: float, fn: Callable[[], None]) -> list:
        """Schedule fn on the loop thread (call from the loop thread). Returns a cancellable entry."""
        entry = [time.monotonic() + delay, next(self._seq), fn]
        heapq.heappush(self._timers, entry)
        return entry

    @staticmethod
    def cancel_timer(entry: list) -> None:
        entry[2] = None

    # ------------------------------------------------------------------ the loop
    def _run(self) -> None:
        sel = self.sel
        try:
            while not self._stopping:
                timeout = None
                if self._timers:
                    timeout = max(0.0, self._timers[0][0] - time.monotonic())
                if self._calls:
                    timeout = 0
                for key, mask in sel.select(timeout):
                    data = key.data
                    if data is None:
                        try:
                            self._wake_r.recv(4096)
                        except OSError:
                            pass
                    elif data == "listener":
                        self._accept(key.fileobj)
                    elif data.__class__ is UpSide:
                        if mask & selectors.EVENT_WRITE:
                            self._on_up_writable(data)
                        if mask & selectors.EVENT_READ and data.conn.up is data:
                            self._on_up_readable(data)
                    elif data.__class__ is DeadEnd:
                        self._on_dead_end(data)
                    else:
                        if mask & selectors.EVENT_WRITE:
                            self._on_writable(data)
                        if mask & selectors.EVENT_READ and data in self.conns:
                            self._on_readable(data)
                while self._calls:
                    fn = self._calls.popleft()
                    self._guard(fn)
                if self._timers:
                    now = time.monotonic()
                    while self._timers and self._timers[0][0] <= now:
                        _, _, fn = heapq.heappop(self._timers)
                        if fn is not None:
                            self._guard(fn)
        finally:
            self._shutdown()

    def _guard(self, fn) -> None:
        try:
            fn()
        except Exception:  # noqa: BLE001 - one bad callback must not kill every connection
            import traceback

            self.errors.append(traceback.format_exc())

    def _shutdown(self) -> None:
        for sock in self.listeners:
            try:
                self.sel.unregister(sock)
            except (KeyError, ValueError):
                pass
            sock.close()
        self.listeners = []
        for conn in list(self.conns):
            self._say_shutdown(conn)
            self._close(conn, "server stopped")
        for de in list(self.dead_ends):
            self._end_dead_end(de)
        try:
            self.sel.unregister(self._wake_r)
        except (KeyError, ValueError):
            pass
        self._wake_r.close()
        self._wake_w.close()
        self.sel.close()

    def _say_shutdown(self, conn: Conn) -> None:
        """PostgreSQL's fast shutdown: each authenticated client gets FATAL 57P01 "terminating
        connection due to administrator command" before the close (best effort: one send, no wait)."""
        s = conn.session
        if not s.ready or s.closed or conn.closing:
            return
        try:
            from .protocol import messages as m
            from .protocol.errors import fatal

            self._write(conn, m.error_response(fatal("57P01", "terminating connection due to administrator command")))
        except Exception:  # noqa: BLE001 - a client already gone: nothing to tell it
            pass

    # ------------------------------------------------------------------ connections
    def _accept(self, lsock: socket.socket) -> None:
        for _ in range(64):  # bounded: let other connections run too
            if len(self.dead_ends) >= self.fd_headroom // 2:
                self._pause_accepting()  # until one of them is done
                return
            try:
                sock, peer = lsock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as e:
                if e.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                    self.stats["accept_failed"] += 1
                    self._pause_accepting()  # the pending client stays in the backlog: no spinning on it
                return
            if self.refuse_new:
                sock.close()
                continue
            if sock.fileno() >= self.fd_limit - self.fd_headroom:
                self._refuse_too_many(sock)  # descriptors are lowest-first: the table is nearly full
                continue
            self._backoff = 0.0
            sock.setblocking(False)
            if sock.family in (socket.AF_INET, socket.AF_INET6):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            try:
                session = self.make_session(peer, sock.family == socket.AF_UNIX)
            except Exception:  # noqa: BLE001
                import traceback

                self.errors.append(traceback.format_exc())
                sock.close()
                continue
            conn = Conn(sock, session, peer)
            session.on_output = lambda c=conn: self._flush(c)
            self.conns.add(conn)
            conn.events = selectors.EVENT_READ
            self.sel.register(sock, selectors.EVENT_READ, conn)
            session.now = time.monotonic()
            timeout = getattr(session.config, "authentication_timeout", None)
            if timeout and timeout > 0:
                self._watch_auth(conn, session.now + timeout)
            self._after(conn)

    # -- accept throttling: the descriptor table nearly full ------------------------------
    def _refuse_too_many(self, sock: socket.socket) -> None:
        """Serve the connection as a DeadEnd: FATAL 53300 after its startup packet, then close."""
        self.stats["too_many_clients"] += 1
        sock.setblocking(False)
        de = DeadEnd(sock, time.monotonic() + DEAD_END_SILENT)
        try:
            self.sel.register(sock, selectors.EVENT_READ, de)
        except (OSError, ValueError):
            sock.close()
            return
        self.dead_ends.add(de)
        if self._dead_end_timer is None:
            self._dead_end_timer = self.call_later(DEAD_END_SILENT / 2, self._expire_dead_ends)
        self._on_dead_end(de)  # its startup packet is often here already

    def _on_dead_end(self, de: DeadEnd) -> None:
        try:
            data = de.sock.recv(65536)
            if data and de.feed(data, time.monotonic()):
                return
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            pass
        self._end_dead_end(de)

    def _end_dead_end(self, de: DeadEnd) -> None:
        if de not in self.dead_ends:
            return
        self.dead_ends.discard(de)
        try:
            self.sel.unregister(de.sock)
        except (KeyError, ValueError):
            pass
        try:
            de.sock.close()
        except OSError:
            pass
        self._resume_accepting()

    def _expire_dead_ends(self) -> None:
        self._dead_end_timer = None
        now = time.monotonic()
        for de in [d for d in self.dead_ends if d.until <= now]:
            self._end_dead_end(de)
        if self.dead_ends:
            self._dead_end_timer = self.call_later(DEAD_END_SILENT / 2, self._expire_dead_ends)

    def _pause_accepting(self) -> None:
        """Stop watching the listeners (a readable listener we cannot accept from would make
        select() return at once forever); look again after a backoff or when a descriptor frees."""
        if not self._listening:
            return
        self._listening = False
        for sock in self.listeners:
            try:
                self.sel.unregister(sock)
            except (KeyError, ValueError):
                pass
        lo, hi = ACCEPT_BACKOFF
        self._backoff = min(hi, self._backoff * 2) if self._backoff else lo
        self.call_later(self._backoff, self._resume_accepting)

    def _resume_accepting(self) -> None:
        if self._listening or self._stopping:
            return
        self._listening = True
        for sock in self.listeners:
            try:
                self.sel.register(sock, selectors.EVENT_READ, "listener")
            except (KeyError, ValueError, OSError):
                pass

    # -- authentication_timeout -----------------------------------------------------------
    def _watch_auth(self, conn: Conn, deadline: float) -> None:
        conn.authing = True
        self._authing[conn] = deadline  # every session of a server has one timeout: in deadline order
        if self._auth_timer is None:
            self._auth_timer = self.call_later(max(0.0, deadline - time.monotonic()), self._check_auth)

    def _check_auth(self) -> None:
        self._auth_timer = None
        now = time.monotonic()
        pending = self._authing
        while pending:
            conn, deadline = next(iter(pending.items()))
            if deadline > now:
                self._auth_timer = self.call_later(deadline - now, self._check_auth)
                return
            del pending[conn]
            conn.authing = False
            s = conn.session
            if conn in self.conns and not s.ready and not s.closed:
                self.stats["auth_timeouts"] += 1
                s.now = now
                s.authentication_timed_out()
                self._after(conn)
                if conn in self.conns:
                    self._close_after_flush(conn)

    def _on_readable(self, conn: Conn) -> None:
        try:
            data = conn.sock.recv(RECV_SIZE)
        except (BlockingIOError, InterruptedError, ssl.SSLWantReadError):
            return
        except OSError:
            self._close(conn, "connection reset by client")
            return
        if not data:
            conn.session.receive_eof()
            self._close(conn, "client closed the connection")
            return
        if conn.tls is not None:
            conn.tls_in.write(data)
            if conn.handshaking:
                if not self._handshake(conn):
                    return
            plain = []
            while True:
                try:
                    chunk = conn.tls.read(RECV_SIZE)
                except ssl.SSLWantReadError:
                    break
                except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
                    conn.session.receive_eof()
                    self._close(conn, "client closed the TLS connection")
                    return
                except ssl.SSLError as e:
                    self._close(conn, f"TLS error: {e}")
                    return
                if not chunk:
                    break
                plain.append(chunk)
            self._pump_tls_out(conn)
            if not plain:
                return
            data = b"".join(plain)
        conn.session.receive(data, time.monotonic())
        self._after(conn)

    def _after(self, conn: Conn) -> None:
        """After the session ran: send its output, then serve what it waits for."""
        # a loop, not recursion: a long streamed result resumes once per 256 KiB sent, and a
        # recursive call per batch kept every sent batch alive (memory grew with the rows) and
        # would hit the recursion limit for results of a few hundred MB
        s = conn.session
        if conn.up is not None and s.relaying:  # backend mode's hot path: just move the bytes
            out = s.data_to_send()
            if out:
                self._write(conn, out)
            data = s.upstream_data_to_send()
            if data and conn.up is not None:
                self._up_send(conn, s, data)
            return
        while self._after_once(conn):
            pass

    def _after_once(self, conn: Conn) -> bool:
        """One pass of _after; True when the session resumed its output and has more to send."""
        s = conn.session
        if conn.authing and s.ready:
            conn.authing = False
            self._authing.pop(conn, None)
        out = s.data_to_send()
        if out:
            self._write(conn, out)
        if conn not in self.conns:
            return
        if s.upstream is not None and not s.closed:
            self._serve_upstream(conn, s)
        if s.closed or s.close_reason is not None and s.waiting is NEED_INPUT and s.closed:
            self._close_after_flush(conn)
            return
        w = s.waiting
        if isinstance(w, Await):
            self._serve_await(conn, w)
        elif w is START_TLS:
            self._start_tls(conn)
        elif w is OUTPUT_FULL and conn.out_size == 0:
            s.resume_output()
            return True
        if s.closed:
            self._close_after_flush(conn)
            return
        dl = s.deadline
        if dl is not None and dl != conn.timer_at:
            conn.timer_at = dl
            self.call_later(max(0.0, dl - time.monotonic()), lambda c=conn, d=dl: self._fire_deadline(c, d))

    def _fire_deadline(self, conn: Conn, dl: float) -> None:
        if conn not in self.conns or conn.timer_at != dl:
            return
        conn.timer_at = None
        conn.session.on_timer(time.monotonic())
        self._after(conn)

    def _flush(self, conn: Conn) -> None:
        """Output appeared outside receive() (a notification, a cancel, a wake)."""
        if conn in self.conns:
            self._after(conn)

    def wake_session(self, session: Session, data: Any = None) -> None:
        """(loop thread) give a session news from outside; then serve its output."""
        for conn in self.conns:
            if conn.session is session:
                session.now = time.monotonic()  # the session never reads a clock itself
                session.wake(data)
                self._after(conn)
                return

    def _serve_await(self, conn: Conn, w: Await) -> None:
        work = w.work
        s = conn.session
        token = w.token

        def resume(value):
            if conn in self.conns:
                s.resume(token, value)
                self._after(conn)

        def run_compute():
            try:
                value = work.compute()
            except BaseException as e:  # noqa: BLE001 - handed to the session as a PgError/exception
                value = e
            self.call_soon_threadsafe(lambda: resume(value))

        def after_delay():
            if work.compute is not None:
                self.workers.submit(run_compute)
            else:
                resume(None)

        key = ("await", token)
        if getattr(conn, "key", None) == key:
            return  # already scheduled
        conn.key = key
        if work.delay and work.delay > 0:
            self.call_later(work.delay, after_delay)
        else:
            after_delay()

    # ------------------------------------------------------------------ TLS
    def _start_tls(self, conn: Conn) -> None:
        if conn.tls is not None or self.ssl_context is None:
            return
        conn.tls_in = ssl.MemoryBIO()
        conn.tls_out = ssl.MemoryBIO()
        conn.tls = self.ssl_context.wrap_bio(conn.tls_in, conn.tls_out, server_side=True)
        conn.handshaking = True

    def _handshake(self, conn: Conn) -> bool:
        try:
            conn.tls.do_handshake()
        except ssl.SSLWantReadError:
            self._pump_tls_out(conn)
            return False
        except ssl.SSLError as e:
            self._pump_tls_out(conn)
            self._close(conn, f"TLS handshake failed: {e}")
            return False
        conn.handshaking = False
        self._pump_tls_out(conn)
        conn.session.resume_tls()
        self._after(conn)
        return True

    def _pump_tls_out(self, conn: Conn) -> None:
        data = conn.tls_out.read() if conn.tls_out is not None else b""
        if data:
            self._raw_write(conn, data)

    # ------------------------------------------------------------------ writing
    def _write(self, conn: Conn, data: bytes) -> None:
        if conn.session.wire_shaper is not None or conn.paced:
            self._paced_write(conn, data)
            return
        if conn.tls is not None and not conn.handshaking:
            try:
                conn.tls.write(data)
            except ssl.SSLError as e:
                self._close(conn, f"TLS error: {e}")
                return
            self._pump_tls_out(conn)
        else:
            self._raw_write(conn, data)

    def _raw_write(self, conn: Conn, data: bytes) -> None:
        if conn.out:
            conn.out.append(data)
            conn.out_size += len(data)
            return
        try:
            n = conn.sock.send(data)
        except (BlockingIOError, InterruptedError):
            n = 0
        except OSError:
            self._close(conn, "connection reset while writing")
            return
        if n < len(data):
            rest = memoryview(data)[n:]
            conn.out.append(rest)
            conn.out_size += len(rest)
            self._set_events(conn)

    def _on_writable(self, conn: Conn) -> None:
        while conn.out:
            chunk = conn.out[0]
            try:
                n = conn.sock.send(chunk)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                self._close(conn, "connection reset while writing")
                return
            conn.out_size -= n
            if n < len(chunk):
                conn.out[0] = memoryview(chunk)[n:]  # a view: a big answer is not copied again per partial send
                break
            conn.out.popleft()
        self._set_events(conn)
        if not conn.out:
            if conn.closing:
                self._close(conn, conn.session.close_reason or "closed")
                return
            if conn.session.waiting is OUTPUT_FULL:
                conn.session.resume_output()
                self._after(conn)

    # ------------------------------------------------------------------ backend mode: the upstream
    def _serve_upstream(self, conn: Conn, s: Session) -> None:
        up = conn.up
        if up is None:
            sock = s.upstream.sock
            sock.setblocking(False)
            up = conn.up = UpSide(conn, sock)
            up.events = selectors.EVENT_READ
            self.sel.register(sock, up.events, up)
        if s.engine_cancel:
            s.engine_cancel = False
            backend, upstream = s.backend, s.upstream
            self.workers.submit(lambda: backend.cancel(upstream))
        data = s.upstream_data_to_send()
        if data:
            self._up_send(conn, s, data)
        self._set_up_events(conn)

    def _up_send(self, conn: Conn, s: Session, data: bytes) -> None:
        up = conn.up
        if up.out:
            up.out.append(data)
            up.out_size += len(data)
            return
        try:
            n = up.sock.send(data)
        except (BlockingIOError, InterruptedError):
            n = 0
        except OSError:
            s.upstream_eof()
            self._drop_upstream(conn)
            self._close_after_flush(conn)
            return
        if n < len(data):
            rest = memoryview(data)[n:]
            up.out.append(rest)
            up.out_size += len(rest)
            self._set_up_events(conn)

    def _on_up_readable(self, up: UpSide) -> None:
        conn = up.conn
        try:
            data = up.sock.recv(RECV_SIZE)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            conn.session.upstream_eof()
            self._drop_upstream(conn)
            self._after(conn)
            return
        conn.session.receive_upstream(data, time.monotonic())
        self._after(conn)

    def _on_up_writable(self, up: UpSide) -> None:
        while up.out:
            chunk = up.out[0]
            try:
                n = up.sock.send(chunk)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                conn = up.conn
                conn.session.upstream_eof()
                self._drop_upstream(conn)
                self._after(conn)
                return
            up.out_size -= n
            if n < len(chunk):
                up.out[0] = memoryview(chunk)[n:]
                break
            up.out.popleft()
        self._set_events(up.conn)  # reading from the client may go on again (and this side's events)

    def _set_up_events(self, conn: Conn) -> None:
        up = conn.up
        if up is None or conn not in self.conns:
            return
        ev = 0
        link = conn.session.link
        if conn.out_size < WRITE_HIGH_WATER and not conn.closing and not (link is not None and link.paused):
            ev |= selectors.EVENT_READ  # the client reads its answers: keep reading the engine's
        if up.out:
            ev |= selectors.EVENT_WRITE
        if ev == 0:
            ev = selectors.EVENT_WRITE
        if ev != up.events:
            up.events = ev
            self.sel.modify(up.sock, ev, up)

    def _drop_upstream(self, conn: Conn) -> None:
        up = conn.up
        if up is None:
            return
        conn.up = None
        conn.session.upstream = None
        try:
            self.sel.unregister(up.sock)
        except (KeyError, ValueError):
            pass
        try:
            up.sock.close()
        except OSError:
            pass

    def _set_events(self, conn: Conn) -> None:
        if conn not in self.conns:
            return
        ev = 0
        up = conn.up
        conn.reading = conn.out_size < WRITE_HIGH_WATER and not conn.closing and (
            up is None or up.out_size < WRITE_HIGH_WATER)  # backend mode: the engine reads what we relay
        if conn.reading:
            ev |= selectors.EVENT_READ
        if conn.out:
            ev |= selectors.EVENT_WRITE
        if ev == 0:
            ev = selectors.EVENT_WRITE  # keep it registered; closing with nothing to send
        if ev != conn.events:
            conn.events = ev
            self.sel.modify(conn.sock, ev, conn)
        if up is not None:
            self._set_up_events(conn)

    def _paced_write(self, conn: Conn, data: bytes) -> None:
        """Byte-level faults (faults/wire.py): send pieces with loop timers between them."""
        shaper = conn.session.wire_shaper
        pieces = shaper.shape(data) if shaper is not None else [(0.0, data, None)]
        if shaper is not None and shaper.spent:
            conn.session.wire_shaper = None
        if conn.paced is None:
            conn.paced = deque()
        idle = not conn.paced
        conn.paced.extend(pieces)
        if idle:
            self._pace(conn)

    def _pace(self, conn: Conn) -> None:
        while conn.paced and conn in self.conns:
            delay, chunk, then = conn.paced[0]
            if delay > 0:
                conn.paced[0] = (0.0, chunk, then)
                self.call_later(delay, lambda c=conn: self._pace(c))
                return
            conn.paced.popleft()
            if chunk:
                if conn.tls is not None and not conn.handshaking:
                    conn.tls.write(chunk)
                    self._pump_tls_out(conn)
                else:
                    self._raw_write(conn, chunk)
            if then is not None:
                conn.paced.clear()
                conn.rst = conn.rst or then == "reset"
                conn.session.close_reason = conn.session.close_reason or f"fakepm fault: {then} (byte level)"
                self._close_after_flush(conn)
                return

    def _close_after_flush(self, conn: Conn) -> None:
        if conn.paced:  # paced fault output still to send: close after it
            conn.paced.append((0.0, b"", "close"))
            return
        if conn.out:
            conn.closing = True
            self._set_events(conn)
        else:
            self._close(conn, conn.session.close_reason or "closed")

    def _close(self, conn: Conn, reason: str) -> None:
        if conn not in self.conns:
            return
        self.conns.discard(conn)
        # the session's hooks refer back to it (and to the conn): unhooked, a closed session is
        # freed at once instead of waiting, with everything it holds, for a full gc
        conn.session.on_output = None
        conn.session.post_threadsafe = _ignore
        if conn.authing:
            conn.authing = False
            self._authing.pop(conn, None)
        if not self._listening:
            self.call_soon_threadsafe(self._resume_accepting)  # a descriptor is about to be free
        conn.session.close(reason)
        if conn.up is not None:  # the engine's backend ends (and rolls back) when its socket closes
            up = conn.up
            if not up.out:
                try:
                    up.sock.send(b"X\x00\x00\x00\x04")
                except OSError:
                    pass
            self._drop_upstream(conn)
        try:
            self.sel.unregister(conn.sock)
        except (KeyError, ValueError):
            pass
        try:
            if conn.rst or conn.session.abort_with_rst:
                import struct

                conn.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            conn.sock.close()
        except OSError:
            pass

    # ------------------------------------------------------------------ helpers for the API
    def close_all(self, reason: str = "closed by the test") -> None:
        for conn in list(self.conns):
            self._close(conn, reason)


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def listen_tcp(host: str, port: int, backlog: int = 512) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(backlog)
    return sock


def listen_unix(directory: str, port: int, backlog: int = 512) -> tuple[socket.socket, str]:
    """libpq's socket path convention: <dir>/.s.PGSQL.<port>."""
    path = os.path.join(directory, f".s.PGSQL.{port}")
    if os.path.exists(path):
        os.unlink(path)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(path)
    sock.listen(backlog)
    return sock, path
