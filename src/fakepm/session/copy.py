"""The COPY sub-protocol, sans-I/O: COPY IN, COPY OUT and COPY BOTH, run inside a Session.

``run(session, result, sql, portal)`` is a generator the session's conversation delegates to
(``yield from``) when a statement's Result carries ``copy`` (an answers.copyspec.CopySpec).
It yields what the session yields (NEED_INPUT, OUTPUT_FULL, Await) and returns True when the
statement completed, False after an error (the session then sends ReadyForQuery / skips
to Sync, as for any failed statement).

COPY IN (``COPY ... FROM STDIN``)
    CopyInResponse with the overall format and one format per column; CopyData payloads are
    fed to an incremental decoder (protocol/copyformat.py), so rows may be cut anywhere;
    the text ``\\.`` line ends the data; Sync and Flush are ignored (pg8000 and libpq send
    them); CopyFail answers 57014 ``COPY from stdin failed: <message>``; bad data answers
    PostgreSQL's SQLSTATE with ``CONTEXT: COPY t, line 3, column b: "x"`` at once, and the
    rest of the client's COPY messages are then ignored by the main loop (as PostgreSQL
    does). Only a COPY that reached CopyDone is journaled as loaded (``pg.copies``).
COPY OUT (``COPY ... TO STDOUT``)
    CopyOutResponse, one CopyData per row (binary: header with the first row, trailer in
    its own CopyData, as PostgreSQL sends them), CopyDone, ``COPY n``. Rows are encoded
    lazily and the generator yields OUTPUT_FULL when the output buffer is full, so a
    million rows stay flat in memory.
COPY BOTH (CopyBothResponse)
    A two-way channel run by a *mode object*. This is the generic machinery the walsender
    reuses; its interface:

    ``class MyMode(CopyBothMode)`` overrides any of
        ``on_start()``          - after CopyBothResponse was queued;
        ``on_data(payload)``    - a client CopyData (bytes);
        ``on_client_done()``    - the client sent CopyDone (the server may keep sending);
        ``on_event(event)``     - a ``connection.Event``: ``kind == "timer"`` when
                                  ``session.deadline`` passed, ``kind == "wake"`` with
                                  ``event.data`` posted by ``Session.wake`` (loop thread) or
                                  ``session.post_threadsafe(data)`` (any thread);
        ``closed()``            - the connection went away (stop threads here);
    and calls
        ``send(payload)``       - queue a CopyData;
        ``finish()``            - queue the server's CopyDone;
        ``fail(PgError)``       - end the COPY with an ErrorResponse.
    ``yield from run_copy_both(session, mode, overall_format, column_formats, tag)`` drives
    it until both sides sent CopyDone (or a failure), then sends CommandComplete ``tag``
    (None: no CommandComplete, for callers that send their own).

    Two modes ship here: ``ChannelMode`` (a Python handler on its own thread with a
    ``Channel``: ``recv()``/``send()``/``done()``), and ``ScriptMode`` (steps of
    ``expect``/``send``).

Fault seam: ``CopySpec.fault`` (answers.copyspec.CopyFault) - COPY OUT disconnects or errors
after N rows; COPY IN errors after N rows received.
"""

from __future__ import annotations

import dataclasses
import hashlib
import queue
import threading
from dataclasses import dataclass

from ..answers.copyspec import CopySpec
from ..protocol import messages as m
from ..protocol.copybulk import CopyRows, RowBlock
from ..protocol.copyformat import CopyDataError, CopyDecoder, CopyEncoder, RowTyper
from ..protocol.errors import PgError, fatal
from ..protocol.framing import bad_utf8_message
from ..protocol.types import REGISTRY
from .hub import COPY_MEMORY_FACTOR
from .waits import NEED_INPUT, OUTPUT_FULL, OUTPUT_LIMIT
from .rowbatch import CopyOutFramer, take_rows

__all__ = ["run", "CopyRecord", "CopyBothMode", "ChannelMode", "ScriptMode", "Channel", "run_copy_both"]

_TEXT = REGISTRY.by_name("text")
# Rows of one COPY FROM STDIN kept in its record (pg.copies), by their COPY data size: a test
# reads what it loaded (100,000 short rows are ~5 MB), a soak or a 2 GiB load must not keep it
# all (typed rows take 2-8 times their wire size, session/hub.py COPY_MEMORY_FACTOR). The
# server's `copy_keep_bytes` setting overrides it.
COPY_KEEP_BYTES = 8 << 20
_SYNC_LOST = fatal("08P01", "terminating connection because protocol synchronization was lost")


@dataclass
class CopyRecord:
    """One COPY as the journal keeps it (`pg.copies`).

    rows: typed Python values of every row loaded (COPY IN; empty when it failed); for
    COPY OUT the rows are not kept (`count` says how many were sent); for COPY both,
    `rows` holds the client's CopyData payloads.
    """

    direction: str  # "in" | "out" | "both"
    table: str | None
    columns: list
    format: str
    options: dict
    rows: list | None
    count: int
    sql: str
    connection: int
    error: str | None = None  # "SQLSTATE message" when the COPY failed
    schema: str | None = None
    # COPY IN (and COPY both): what the whole stream was, even when `rows` keeps only its start
    bytes: int = 0  # CopyData bytes received
    checksum: str | None = None  # sha256 (hex) of the CopyData payloads in order (COPY IN)
    first_row: tuple | None = None  # the first and last rows loaded (kept or not)
    last_row: tuple | None = None
    dropped: int = 0  # rows (COPY both: payloads) loaded but not kept in `rows` (beyond copy_keep_bytes)
    kept_bytes: int = 0  # COPY data bytes of the rows kept
    kept_limit: str | None = None  # what stopped keeping rows: copy_keep_bytes, or the server's bound

    @property
    def ok(self) -> bool:
        return self.error is None

    released: str | None = None  # why `rows` was emptied after the COPY (the journal's bound), if it was

    @property
    def complete(self) -> bool:
        """True when `rows` holds every row loaded (nothing dropped beyond copy_keep_bytes)."""
        return self.dropped == 0

    @property
    def note(self) -> str | None:
        """What the record did not keep, in words (None when it kept everything)."""
        if self.released:
            return (f"kept none of its {self.count} rows: {self.released}; count, bytes, checksum, first_row and "
                    f"last_row cover all of them")
        if not self.dropped:
            return None
        kept = self.count - self.dropped
        return (f"kept the first {kept} of {self.count} rows ({self.kept_bytes} of {self.bytes} bytes of COPY data; "
                f"limited by {self.kept_limit or 'copy_keep_bytes'}); count, bytes, checksum, first_row and last_row "
                f"cover all of them")

    def release_rows(self, why: str) -> None:
        """Let go of the kept rows (the journal's byte bound); the rest of the record stays."""
        if self.direction == "out" or self.released:
            return
        self._rows = []
        self.dropped = self.count
        self.kept_bytes = 0
        self.released = why


def _get_rows(rec: CopyRecord) -> list | None:
    rows = rec._rows
    if rows.__class__ is CopyRows:  # a COPY IN's rows are zipped into tuples when first read
        rows = rec._rows = rows.rows()
    return rows


def _set_rows(rec: CopyRecord, rows) -> None:
    rec._rows = rows


CopyRecord.rows = property(_get_rows, _set_rows, doc=CopyRecord.__doc__)  # the dataclass field, read lazily


def _record(session, spec: CopySpec, sql: str, rows, count: int, error: PgError | None = None,
            names=None, **stream) -> CopyRecord:
    rec = CopyRecord(
        direction=spec.direction, table=spec.table, schema=spec.schema,
        columns=list(names if names is not None else spec.names), format=spec.options.format,
        options={**spec.options.as_dict(), **({"where": spec.where} if spec.where else {})}, rows=rows,
        count=count, sql=sql, connection=session.id,
        error=f"{error.code} {error.message}" if error is not None else None, **stream,
    )
    copies = getattr(session.hub.journal, "copies", None)
    if copies is not None:
        copies.append(rec)
    return rec


def _context_name(spec: CopySpec) -> str:
    return spec.table or "stdin"


def run(session, result, sql: str, portal):
    spec: CopySpec = result.copy
    if spec.direction == "in":
        return (yield from _copy_in(session, spec, sql))
    if spec.direction == "out":
        return (yield from _copy_out(session, spec, sql))
    if spec.direction == "both":
        mode = ScriptMode(session, spec.script) if spec.script is not None else ChannelMode(session, spec.handler)
        fmt = 1 if spec.options.binary else 0
        ok = yield from run_copy_both(session, mode, fmt, spec.column_formats or (), spec.tag or "COPY 0")
        _record(session, spec, sql, list(mode.received), len(mode.received) + mode.dropped, mode.error,
                bytes=mode.received_bytes, dropped=mode.dropped, kept_bytes=mode.kept_bytes)
        return ok
    session.statement_failed(PgError("XX000", f"fakepm: unknown COPY direction {spec.direction!r}"))
    return False


# ------------------------------------------------------------------------------ COPY IN
def copy_fail_error(body: bytes, table: str | None = None, line: int | None = None) -> PgError:
    """The ERROR for a CopyFail, as PostgreSQL 15 answers even a malformed one (the connection
    stays usable): no string terminator 08P01 ``invalid string in message``; invalid UTF-8
    22021; otherwise 57014 ``COPY from stdin failed: <message>`` (bytes after the first
    terminator are ignored, as PostgreSQL does)."""
    where = f"COPY {table}, line {line}" if table is not None else None
    end = body.find(b"\0")
    if end < 0:
        return PgError("08P01", "invalid string in message", where=where)
    raw = body[:end]
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        return PgError("22021", bad_utf8_message(raw, e.start), where=where)
    return PgError("57014", f"COPY from stdin failed: {text}", where=where)


def keep_budget(session) -> int:
    """Bytes of COPY data whose rows (payloads) a COPY keeps in its record."""
    n = getattr(session.config, "copy_keep_bytes", None)
    return COPY_KEEP_BYTES if n is None else n


def _one_row(item, last: bool):
    """The first (or last) row of what a lazy decoder gave: a RowBlock or one row."""
    if item.__class__ is RowBlock:
        i = item.n - 1 if last else 0
        return RowBlock([c[i:i + 1] for c in item.columns], item.convert, 1).rows()[0]
    return tuple(item) if isinstance(item, list) else item


def _nrows(items: list) -> int:
    return sum(x.n if x.__class__ is RowBlock else 1 for x in items)


class _Kept:
    """COPY IN rows: kept in `rows` while their data fits the budget, counted and summed always.

    Two budgets: this COPY's (copy_keep_bytes of COPY data), and the server's for rows that
    COPYs still running keep (the journal's `copy_inflight`, the same bound as pg.copies):
    200 connections each loading at once must not keep 200 budgets' worth."""

    __slots__ = ("budget", "count", "dropped", "first", "hash", "journal", "kept_bytes", "keeping", "last",
                 "limit", "pending", "received", "reserved", "rows")

    def __init__(self, budget: int, journal=None):
        self.rows = CopyRows()  # every value checked as it arrives; tuples made when the test reads them
        self.budget = budget
        self.journal = journal if hasattr(journal, "copy_inflight") else None
        self.keeping = True
        self.limit: str | None = None  # what stopped the keeping
        self.count = 0
        self.dropped = 0
        self.received = 0
        self.pending = 0  # bytes received since the last rows came out (a row cut by CopyData)
        self.kept_bytes = 0
        self.reserved = 0  # this COPY's share of journal.copy_inflight (estimated memory)
        self.hash = hashlib.sha256()
        self.first = self.last = None  # the items holding the first and the last row

    def data(self, body: bytes) -> None:
        self.received += len(body)
        self.pending += len(body)
        self.hash.update(body)

    def add(self, items: list) -> None:
        if not items:
            return
        n = _nrows(items)
        if n == 0:
            return
        if self.first is None:
            self.first = items[0]
        self.last = items[-1]
        self.count += n
        nbytes, self.pending = self.pending, 0
        if self.keeping:
            cost = nbytes * COPY_MEMORY_FACTOR
            j = self.journal
            if self.kept_bytes + nbytes > self.budget:
                self.limit = "copy_keep_bytes"
            elif j is not None and j.copy_inflight + cost > j.copy_inflight_max:
                self.limit = "the rows the COPYs running at the same time keep"
            else:
                self.rows.add(items)
                self.kept_bytes += nbytes
                if j is not None:
                    j.copy_inflight += cost
                    self.reserved += cost
                return
            self.keeping = False  # `rows` stays the first rows, in order
        self.dropped += n

    def release(self) -> None:
        """The COPY is over: its rows go to the journal (or away); give back its in-flight share."""
        if self.reserved and self.journal is not None:
            self.journal.copy_inflight -= self.reserved
        self.reserved = 0

    def stream(self) -> dict:
        return {"bytes": self.received, "checksum": self.hash.hexdigest(), "dropped": self.dropped,
                "kept_bytes": self.kept_bytes, "kept_limit": self.limit,
                "first_row": _one_row(self.first, False) if self.first is not None else None,
                "last_row": _one_row(self.last, True) if self.last is not None else None}


def _copy_in(session, spec: CopySpec, sql: str):
    opts = spec.options
    fmt = 1 if opts.binary else 0
    session.send(m.CopyInResponse(fmt, (fmt,) * spec.ncolumns).encode())
    session.transcript.append(("S", f"CopyInResponse format={fmt} columns={spec.ncolumns}"))
    known = spec.types is not None
    decoder = CopyDecoder(opts, spec.ncolumns if known else None, spec.names, RowTyper(opts, spec.types, spec.names),
                          lazy=True)
    kept = _Kept(keep_budget(session), session.hub.journal)
    try:
        return (yield from _copy_in_rows(session, spec, sql, decoder, kept))
    finally:
        kept.release()  # done, failed or the connection gone


def _copy_in_rows(session, spec: CopySpec, sql: str, decoder, kept):
    # an unfinished line (or binary row) may grow to one message's size, as a line may in
    # PostgreSQL up to its 1 GB allocation limit
    line_limit = session.config.max_message_size
    fault = spec.fault
    table = _context_name(spec)

    def failed(err: PgError):
        session.statement_failed(err)
        _record(session, spec, sql, [], 0, err)
        return False

    while True:
        frame = yield NEED_INPUT
        if isinstance(frame, Exception):  # a message length PostgreSQL refuses: it reads that as EOF
            failed(PgError("08006", "unexpected EOF on client connection with an open transaction",
                           where=f"COPY {table}, line {decoder.line + 1}"))
            session.send_fatal(_SYNC_LOST)
            return False
        if not isinstance(frame, tuple):
            continue  # an Event: nothing to do during COPY IN
        t, body = frame
        try:
            if t == b"d":
                kept.data(body)
                kept.add(decoder.feed(body))
                if fault is not None and kept.count >= fault.after_rows:
                    return failed(fault.error or PgError("57014", "canceling statement due to user request"))
                if len(decoder._buf) > line_limit:
                    return failed(PgError("54000", "out of memory",
                                          detail=f"Cannot enlarge string buffer containing {len(decoder._buf)} "
                                                 f"bytes by {len(body)} more bytes.",
                                          where=f"COPY {table}, line {decoder.line + 1}"))
            elif t == b"c":
                kept.add(decoder.finish())
                break
            elif t == b"f":
                err = copy_fail_error(body, table, decoder.line + 1)
                return failed(err)
            elif t in (b"S", b"H"):
                continue  # libpq/pg8000 send these without noticing the COPY; PostgreSQL ignores them
            elif t == b"X":
                session.close_reason = "client sent Terminate during COPY"
                _record(session, spec, sql, [], 0, PgError("08006", "client sent Terminate during COPY"))
                return False
            else:  # PostgreSQL 15 stops reading mid-message: ERROR, then FATAL and the end
                failed(PgError("08P01", f"unexpected message type 0x{t[0]:02X} during COPY from stdin",
                               where=f"COPY {table}, line {decoder.line + 1}"))
                session.send_fatal(_SYNC_LOST)
                return False
        except CopyDataError as e:
            return failed(PgError(e.sqlstate, e.message, where=e.context(table), hint=e.hint))
        if session.cancel_requested:
            session.cancel_requested = False
            return failed(PgError("57014", "canceling statement due to user request",
                                  where=f"COPY {table}, line {decoder.line}"))
    if fault is not None and kept.count >= fault.after_rows:
        return failed(fault.error or PgError("57014", "canceling statement due to user request"))
    _record(session, spec, sql, kept.rows, kept.count, **kept.stream())
    session.send(m.command_complete(spec.tag or f"COPY {kept.count}"))
    return True


# ------------------------------------------------------------------------------ COPY OUT
_BATCH = 512  # COPY TO rows framed and sent per _send (one CopyData each, as PostgreSQL)


def _copy_out(session, spec: CopySpec, sql: str):
    names, types, rows = spec.names, spec.types, spec.rows
    if spec.query is not None:
        inner = yield from session.evaluate(spec.query, [], (), "simple", None)
        if inner.error is not None:
            session.statement_failed(inner.error)
            _record(session, spec, sql, None, 0, inner.error)
            return False
        if inner.columns is None or inner.copy is not None:
            err = PgError("0A000", "COPY query must have a RETURNING clause" if inner.copy is None
                          else "COPY (COPY ...) TO is not allowed")
            session.statement_failed(err)
            return False
        names = tuple(c.name for c in inner.columns)
        types = tuple(c.type for c in inner.columns)
        rows = inner.rows
    types = tuple(t if t is not None else _TEXT for t in (types or ()))
    opts = spec.options
    fmt = 1 if opts.binary else 0
    session.send(m.CopyOutResponse(fmt, (fmt,) * len(types)).encode())
    session.transcript.append(("S", f"CopyOutResponse format={fmt} columns={len(types)}"))
    enc = CopyEncoder(opts, types, names)
    pending = enc.header()
    if pending and not opts.binary:
        session.send(m.copy_data(pending))
        pending = b""
    source = rows() if callable(rows) else (rows or ())
    send = session.send
    copy_data = m.copy_data
    encode = enc.row
    encode_rows = enc.rows
    framed_rows = CopyOutFramer(enc).frame  # a batch framed column by column, or None: row by row
    fault = spec.fault
    count = 0
    row_size = 64  # bytes per framed row, measured once rows are sent
    it = iter(source)
    try:
        for row in it:
            data = encode(row)
            if pending:
                data = pending + data
                pending = b""
            send(copy_data(data))
            row_size = len(data) + 5
            count += 1
            if fault is not None and count >= fault.after_rows:
                if fault.disconnect:
                    session.close_reason = f"fault: disconnect after {count} COPY rows"
                    _record(session, spec, sql, None, count, names=names)
                    return False
                # a copy: the rule's own error raised again and again would chain every traceback
                raise dataclasses.replace(fault.error) if fault.error is not None else \
                    PgError("57014", "canceling statement due to user request")
            if session.output_size > OUTPUT_LIMIT:
                yield OUTPUT_FULL
                if session.cancel_requested:
                    session.cancel_requested = False
                    raise PgError("57014", "canceling statement due to user request")
            if fault is None:
                break  # the first row carried the header; the rest go in batches below
        while fault is None:
            # same messages (one CopyData per row), sent _BATCH rows at a time; a row that cannot be
            # encoded, or a source that fails, still sends every row before it
            # no more rows than fit under OUTPUT_LIMIT (by the widest batch average so far): the
            # queued output stays bounded as with one send per row
            room = (OUTPUT_LIMIT - session.output_size) // row_size + 1
            batch, failure = take_rows(it, _BATCH if room > _BATCH else room if room > 0 else 1)
            if not batch and failure is None:
                break
            try:
                framed = framed_rows(batch)
                if framed is None:
                    framed = b"".join(map(copy_data, encode_rows(batch)))
                send(framed)
                count += len(batch)
                row_size = max(row_size, len(framed) // len(batch))
            except Exception:  # noqa: BLE001 - redone row by row: the bad row raises with count right
                for row in batch:
                    send(copy_data(encode(row)))
                    count += 1
            if failure is not None:
                raise failure
            if session.output_size > OUTPUT_LIMIT:
                yield OUTPUT_FULL
                if session.cancel_requested:
                    session.cancel_requested = False
                    raise PgError("57014", "canceling statement due to user request")
    except (PgError, CopyDataError) as e:
        if isinstance(e, CopyDataError):
            e = PgError(e.sqlstate, e.message)
        session.statement_failed(e)
        _record(session, spec, sql, None, count, e, names=names)
        return False
    except (TypeError, ValueError, OverflowError, AttributeError) as e:
        err = PgError("XX000", f"fakepm: COPY TO row {count + 1} cannot be encoded: {e}",
                      hint=f"columns: {list(zip(names, (t.name for t in types)))}")
        session.statement_failed(err)
        _record(session, spec, sql, None, count, err, names=names)
        return False
    trailer = pending + enc.trailer()
    if trailer:
        send(copy_data(trailer))
    send(m.COPY_DONE)
    send(m.command_complete(spec.tag or f"COPY {count}"))
    _record(session, spec, sql, None, count, names=names)
    return True


# ------------------------------------------------------------------------------ COPY BOTH
class CopyBothMode:
    """A CopyBoth conversation (see the module docstring). Runs on the server's loop thread."""

    def __init__(self, session):
        self.session = session
        self.client_done = False
        self.server_done = False
        self.error: PgError | None = None
        self.received: list = []  # client payloads (kept for the journal by the channel modes)
        self.received_bytes = 0
        self.kept_bytes = 0
        self.dropped = 0  # payloads beyond copy_keep_bytes: counted, not kept
        self._budget = keep_budget(session) if hasattr(session, "config") else COPY_KEEP_BYTES

    def keep(self, payload: bytes) -> None:
        """Keep a client payload for the journal while they fit copy_keep_bytes; count it always."""
        self.received_bytes += len(payload)
        if not self.dropped and self.kept_bytes + len(payload) <= self._budget:
            self.received.append(payload)
            self.kept_bytes += len(payload)
        else:
            self.dropped += 1

    # hooks
    def on_start(self) -> None:
        pass

    def on_data(self, payload: bytes) -> None:
        pass

    def on_client_done(self) -> None:
        pass

    def on_event(self, event) -> None:
        pass

    def closed(self) -> None:
        pass

    # actions
    def send(self, payload: bytes) -> None:
        if not self.server_done:
            self.session.send(m.copy_data(payload))

    def finish(self) -> None:
        if not self.server_done:
            self.server_done = True
            self.session.send(m.COPY_DONE)

    def fail(self, err: PgError) -> None:
        if self.error is None:
            self.error = err


def run_copy_both(session, mode: CopyBothMode, overall_format: int = 0, column_formats: tuple = (),
                  tag: str | None = "COPY 0"):
    """Drive a CopyBothMode until both sides sent CopyDone; True when it ended cleanly."""
    session.send(m.CopyBothResponse(overall_format, tuple(column_formats)).encode())
    session.transcript.append(("S", "CopyBothResponse"))
    session.mode = mode
    try:
        mode.on_start()
        while mode.error is None and not (mode.client_done and mode.server_done):
            item = yield NEED_INPUT
            if isinstance(item, Exception):
                session.send_fatal(fatal("08P01", str(item)))
                return False
            if not isinstance(item, tuple):
                mode.on_event(item)
                continue
            t, body = item
            if t == b"d":
                if not mode.client_done:
                    mode.on_data(body)
            elif t == b"c":
                if not mode.client_done:
                    mode.client_done = True
                    mode.on_client_done()
            elif t == b"f":
                mode.fail(copy_fail_error(body))
            elif t in (b"S", b"H"):
                continue
            elif t == b"X":
                session.close_reason = "client sent Terminate during COPY"
                return False
            else:
                mode.fail(PgError("08P01", f"unexpected message type 0x{t[0]:02X} during COPY from stdin"))
    finally:
        session.mode = None
        if mode.error is not None or session.close_reason is not None:
            try:
                mode.closed()
            except Exception:  # noqa: BLE001 - a mode's cleanup must not break the session
                pass
    if mode.error is not None:
        session.statement_failed(mode.error)
        return False
    if tag is not None:
        session.send(m.command_complete(tag))
    return True


class Channel:
    """What a COPY-both handler gets (on its own thread)."""

    def __init__(self, post):
        self._post = post
        self._inbox: queue.Queue = queue.Queue()
        self._closed = threading.Event()
        self.client_done = False

    def recv(self, timeout: float | None = 10.0) -> bytes | None:
        """The next CopyData payload from the client; None once the client sent CopyDone (or went
        away). Raises TimeoutError after `timeout` seconds without one."""
        try:
            item = self._inbox.get(timeout=timeout)
        except queue.Empty:
            raise TimeoutError(f"no CopyData from the client within {timeout} s") from None
        if item is None:
            self.client_done = True
        return item

    def __iter__(self):
        while True:
            item = self.recv()
            if item is None:
                return
            yield item

    def send(self, data: bytes | str) -> None:
        """Send a CopyData to the client (any thread, any time until done())."""
        if isinstance(data, str):
            data = data.encode("utf-8")
        if self._closed.is_set():
            raise ConnectionError("the COPY channel is closed")
        self._post(("copy-send", bytes(data)))

    def done(self) -> None:
        """Send the server's CopyDone (also sent when the handler returns)."""
        if not self._closed.is_set():
            self._post(("copy-done", None))

    @property
    def closed(self) -> bool:
        return self._closed.is_set()


class ChannelMode(CopyBothMode):
    """A Python handler(channel) on its own thread; its sends are marshalled to the loop thread."""

    def __init__(self, session, handler):
        super().__init__(session)
        self.handler = handler
        post = getattr(session, "post_threadsafe", None)
        if post is None:
            raise RuntimeError("COPY both handlers need a running FakePostgres (session.post_threadsafe)")
        self.channel = Channel(post)
        self.thread: threading.Thread | None = None

    def on_start(self) -> None:
        ch = self.channel

        def work():
            try:
                self.handler(ch)
            except PgError as e:
                ch._post(("copy-error", e))
            except BaseException as e:  # noqa: BLE001 - user code: reported as XX000
                import traceback

                ch._post(("copy-error", PgError("XX000", f"fakepm COPY both handler raised {type(e).__name__}: {e}",
                                                detail=traceback.format_exc()[-2000:])))
            else:
                ch._post(("copy-done", None))

        self.thread = threading.Thread(target=work, name=f"fakepm-copyboth-{self.session.id}", daemon=True)
        self.thread.start()

    def on_data(self, payload: bytes) -> None:
        self.keep(payload)
        self.channel._inbox.put(payload)

    def on_client_done(self) -> None:
        self.channel._inbox.put(None)

    def on_event(self, event) -> None:
        data = getattr(event, "data", None)
        if not isinstance(data, tuple) or len(data) != 2:
            return
        kind, value = data
        if kind == "copy-send":
            self.send(value)
        elif kind == "copy-done":
            self.channel._closed.set()
            self.finish()
        elif kind == "copy-error":
            self.channel._closed.set()
            self.fail(value)

    def closed(self) -> None:
        self.channel._closed.set()
        self.channel._inbox.put(None)


class ScriptMode(CopyBothMode):
    """Plays [("expect", bytes|None) | ("send", bytes)] steps; CopyDone after the last one (or as soon
    as the client sends its CopyDone)."""

    def __init__(self, session, steps: list):
        super().__init__(session)
        self.steps = list(steps)
        self.pos = 0

    def _advance(self) -> None:
        while self.pos < len(self.steps) and self.steps[self.pos][0] == "send":
            self.send(self.steps[self.pos][1])
            self.pos += 1
        if self.pos >= len(self.steps):
            self.finish()

    def on_start(self) -> None:
        self._advance()

    def on_data(self, payload: bytes) -> None:
        self.keep(payload)
        if self.pos >= len(self.steps):
            return
        want = self.steps[self.pos][1]
        if want is not None and payload != want:
            self.fail(PgError("XX000", f"fakepm: COPY both script step {self.pos + 1} expected {want!r}, "
                                       f"got {payload!r}"))
            return
        self.pos += 1
        self._advance()

    def on_client_done(self) -> None:
        # CopyDone from the client ends the exchange even mid-script (the journal shows how far it got)
        self.finish()

