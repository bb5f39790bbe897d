"""WAL records -> pgoutput messages for one consumer, as pgoutput.c/proto.c would write them.

`PgoutputWriter(options, publications, server_major).encode(record)` returns a list of
`(wal_start, payload)` pairs (walEnd = walStart for logical streams; walsender-behavior.md
4.1). The writer keeps the per-connection state PostgreSQL keeps: which Relations were
sent (again after the relation changed, and in every streamed transaction), so the same
record encodes differently on different connections.

`writer.frames(record)` gives the same messages already framed as XLogData CopyData, split
where each frame's sendTime goes (`send_time.join(segments)`). The common record, a
committed transaction of row changes whose Relations this connection already has and whose
tables and actions it publishes, is encoded once per format and shared by every connection
(`plain_body`); everything else goes through `encode()` and is framed per connection.
"""

from __future__ import annotations

import struct

from ..answers.catalog import Table
from ..protocol import pgoutput as po
from ..protocol.errors import PgError
from .wal import Change, Marker, NonTxMessage, PreparedEnd, SubAbort, Txn, key_columns

_ACTIONS = {"insert", "update", "delete", "truncate"}


class Publications:
    """Which tables a set of publication names publishes, and which actions.

    `declared` None means "no publications were declared": every name publishes every table.
    """

    def __init__(self, declared: dict | None):
        self.declared = declared  # name -> {"tables": set(qualnames) | None (all), "publish": set}

    def resolve(self, names: list[str]):
        if self.declared is None:
            return None  # everything
        missing = [n for n in names if n not in self.declared]
        if missing:
            raise PgError("42704", f'publication "{missing[0]}" does not exist',
                          where="slot, output plugin \"pgoutput\", in the change callback")
        return [self.declared[n] for n in names]


def pre_encode(change: Change) -> None:
    """Fill a row change's text TupleData cache when it is written to the WAL (on the emitting thread),
    so senders only frame bytes (plain_body() moves them into a shared body when the transaction has one);
    binary tuples are encoded lazily by the first binary consumer."""
    if change.table is None:
        return
    encs = [c.type.encode_text for c in change.table.columns]
    toast = po.UNCHANGED_TOAST
    for which, values in (("new", change.new), ("old", change.old)):
        if values is not None:
            out = [v if v is None or v is toast else enc(v) for enc, v in zip(encs, values)]
            change.cache[(which, False)] = po.encode_tuple_bytes(out)


# CopyData 'd', its length, XLogData 'w', walStart, walEnd; the 8-byte sendTime follows
_XLOG_HEAD = struct.Struct(">cIcQQ")
_XLOG_OVERHEAD = 4 + 1 + 8 + 8 + 8  # the CopyData length counts itself, 'w' and the three LSN/time fields
_ROW_KINDS = frozenset(("insert", "update", "delete"))


def frame_segments(msgs: list) -> list:
    """[(wal_start, payload), ...] as XLogData CopyData frames cut at each sendTime: for any 8-byte
    sendTime `ts`, `ts.join(segments)` is the frames (so one encoding serves every send)."""
    segs = []
    prev = b""
    for start, payload in msgs:
        segs.append(prev + _XLOG_HEAD.pack(b"d", _XLOG_OVERHEAD + len(payload), b"w", start, start))
        prev = payload
    segs.append(prev)
    return segs


class PlainBody:
    """A committed transaction of row changes (no origin, gid, messages, truncates or subtransaction
    rollbacks), framed once per format: Begin, each Insert/Update/Delete, Commit, no Relation.

    Any connection may send it that already sent these Tables' Relations and publishes every
    (table, action) in `actions`; what it sends is byte-identical to `encode()` (tests check)."""

    __slots__ = ("tables", "actions", "count", "segments")

    def __init__(self, tables: tuple, actions: tuple, count: int):
        self.tables = tables  # distinct Table objects, in order of first change
        self.actions = actions  # distinct (qualname, kind)
        self.count = count  # messages in the body
        self.segments: dict = {}  # binary flag -> frame_segments() of the body


def plain_body(txn: Txn) -> PlainBody | None:
    """txn's shared body, or None when it cannot be shared. Built once and kept on the Txn: the builder
    has WalLog call this (on the emitting thread) before readers can see the txn."""
    body = txn.plain
    if body is not False:
        return body
    body = None
    items = txn.items
    if items and txn.gid is None and not txn.aborted and txn.origin is None:
        tables: dict = {}
        actions: dict = {}
        for c in items:
            if type(c) is not Change or c.kind not in _ROW_KINDS:
                break
            tables[id(c.table)] = c.table
            actions[(c.table.qualname, c.kind)] = None
        else:
            body = PlainBody(tuple(tables.values()), tuple(actions), len(items) + 2)
            body.segments[False] = frame_segments(_TEXT_WRITER._body_messages(txn))
            for c in items:  # the body holds these bytes now; a connection that cannot share re-encodes
                c.cache.clear()
    txn.plain = body
    return body


class PgoutputWriter:
    def __init__(self, options: po.PgoutputOptions, publications: Publications, server_major: int = 17):
        self.opts = options
        self.v = options.proto_version
        self.pubs = publications
        self.server_major = server_major
        self.relations_sent: dict[int, tuple] = {}  # relid -> (Table, signature) last sent outside streams
        self._column_encoders: dict[int, tuple] = {}  # relid -> (Table, [encoder per column])
        self._resolved = False
        self._pubspecs = None
        self._published: dict = {}  # (qualname, action) -> published? (publications resolve once per writer)

    # ------------------------------------------------------------------ filtering
    def _specs(self):
        if not self._resolved:
            self._pubspecs = self.pubs.resolve(self.opts.publication_names)
            self._resolved = True
        return self._pubspecs

    def published(self, table: Table, action: str) -> bool:
        return self._publishes(table.qualname, action)

    def _publishes(self, qualname: str, action: str) -> bool:
        specs = self._specs()
        if specs is None:
            return True
        for spec in specs:
            tables = spec.get("tables")
            if (tables is None or qualname in tables) and action in spec.get("publish", _ACTIONS):
                return True
        return False

    def _keep(self, c: Change) -> bool:
        if c.kind == "message":
            return self.opts.messages
        if c.kind == "truncate":
            return any(self.published(t, "truncate") for t in c.tables)
        return self.published(c.table, c.kind)

    # ------------------------------------------------------------------ pieces
    @staticmethod
    def signature(table: Table) -> tuple:
        return (table.schema, table.name, table.replica_identity, tuple((c.name, c.type.oid, c.typmod) for c in table.columns))

    def _relation(self, table: Table, xid):
        keys = set(key_columns(table))
        out = []
        for c in table.columns:
            if c.type.oid >= po.FIRST_GENBKI_OBJECT_ID:
                out.append((0, po.Type(c.type.oid, table.schema, c.type.name, xid=xid).encode()))
        cols = tuple(po.RelationColumn(c.name, c.type.oid, c.typmod, 1 if c.name in keys else 0) for c in table.columns)
        rel = po.Relation(table.oid, "" if table.schema == "pg_catalog" else table.schema, table.name,
                          table.replica_identity, cols, xid=xid)
        out.append((0, rel.encode()))
        return out

    def _encoders(self, table: Table) -> list:
        """Per column: value -> bytes (text, or binary with binary=true where the type has a send function)."""
        cached = self._column_encoders.get(table.oid)
        if cached is None or cached[0] is not table:
            encs = []
            for col in table.columns:
                if not self.opts.binary:
                    encs.append(col.type.encode_text)
                elif col.type.has_binary:
                    encs.append(col.type.encode_binary)
                else:  # no send function: this column stays text inside a binary tuple
                    encs.append(lambda v, enc=col.type.encode_text: po.TextValue(enc(v)))
            cached = self._column_encoders[table.oid] = (table, encs)
        return cached[1]

    def _tuple(self, change: Change, which: str) -> bytes:
        """The TupleData bytes of a change's new or old row, cached per format (shared by connections)."""
        key = (which, self.opts.binary)
        cached = change.cache.get(key)
        if cached is None:
            values = change.new if which == "new" else change.old
            toast = po.UNCHANGED_TOAST
            out = [v if v is None or v is toast else enc(v) for enc, v in zip(self._encoders(change.table), values)]
            cached = change.cache[key] = po.encode_tuple_bytes(out, self.opts.binary)
        return cached

    def _row(self, c: Change, xid) -> bytes:
        """The Insert/Update/Delete payload of a row change."""
        if c.kind == "insert":
            return po.encode_row_change("I", c.table.oid, new=self._tuple(c, "new"), xid=xid)
        if c.kind == "update":
            old = self._tuple(c, "old") if c.old_kind else None
            return po.encode_row_change("U", c.table.oid, new=self._tuple(c, "new"), old=old, old_kind=c.old_kind,
                                        xid=xid)
        return po.encode_row_change("D", c.table.oid, old=self._tuple(c, "old"), old_kind=c.old_kind, xid=xid)

    def _change(self, c: Change, xid, stream_rels: set | None):
        """Messages for one change (Relations first when needed)."""
        out = []
        tables = c.tables if c.kind == "truncate" else ((c.table,) if c.table is not None else ())
        for t in tables:
            if stream_rels is not None:
                if t.oid not in stream_rels:
                    stream_rels.add(t.oid)
                    out += self._relation(t, xid)
            else:
                # a Table object is replaced (same OID) when it changes: identity says "already sent"
                sent = self.relations_sent.get(t.oid)
                if sent is None or (sent[0] is not t and sent[1] != self.signature(t)):
                    self.relations_sent[t.oid] = (t, self.signature(t))
                    out += self._relation(t, xid)
                elif sent[0] is not t:
                    self.relations_sent[t.oid] = (t, sent[1])
        if c.kind in _ROW_KINDS:
            out.append((c.lsn, self._row(c, xid)))
            return out
        if c.kind == "truncate":
            rels = tuple(t.oid for t in c.tables if self.published(t, "truncate"))
            msg = po.Truncate(rels, c.truncate_options, xid=xid)
        else:
            msg = po.Message(c.lsn, c.prefix, c.content, flags=po.MESSAGE_TRANSACTIONAL, xid=xid)
        out.append((c.lsn, msg.encode()))
        return out

    # ------------------------------------------------------------------ records
    def frames(self, rec) -> tuple:
        """(segments, message count) of one WAL record: `send_time.join(segments)` is its XLogData frames."""
        if type(rec) is Txn and not self._stream_it(rec):
            body = plain_body(rec)
            if body is not None and self._can_share(body):
                binary = self.opts.binary
                segs = body.segments.get(binary)
                if segs is None:
                    segs = body.segments[binary] = frame_segments(self._body_messages(rec))
                return segs, body.count
        msgs = self.encode(rec)
        return (frame_segments(msgs) if msgs else []), len(msgs)

    def _can_share(self, body: PlainBody) -> bool:
        """This connection would send exactly the shared body: it publishes every change, and already
        sent the current Relation of every table (the same Table object, so nothing changed since)."""
        published = self._published
        for key in body.actions:
            ok = published.get(key)
            if ok is None:
                ok = published[key] = self._publishes(*key)
            if not ok:
                return False
        sent = self.relations_sent
        for t in body.tables:
            s = sent.get(t.oid)
            if s is None or s[0] is not t:
                return False
        return True

    def _body_messages(self, txn: Txn) -> list:
        """What _plain() sends for a PlainBody transaction when no Relation is due."""
        items = txn.items
        out = [(items[0].lsn, po.Begin(txn.commit_lsn, txn.commit_time, txn.xid).encode())]
        row = self._row
        out += [(c.lsn, row(c, None)) for c in items]
        out.append((txn.end_lsn, po.Commit(txn.commit_lsn, txn.end_lsn, txn.commit_time).encode()))
        return out

    def encode(self, rec) -> list:
        """[(wal_start, payload), ...] for one WAL record (may be empty: nothing to publish)."""
        if isinstance(rec, Txn):
            return self._txn(rec)
        if isinstance(rec, NonTxMessage):
            if not self.opts.messages:
                return []
            c = rec.change
            return [(c.lsn, po.Message(c.lsn, c.prefix, c.content, flags=0).encode())]
        if isinstance(rec, PreparedEnd):
            return self._prepared_end(rec)
        if isinstance(rec, Marker):
            return []
        raise TypeError(f"not a WAL record: {rec!r}")

    def _suppressed_origin(self, txn: Txn) -> bool:
        return txn.origin is not None and self.opts.origin == "none"

    def _stream_it(self, txn: Txn) -> bool:
        return txn.streaming and self.opts.streaming != "off" and self.v >= 2

    def _txn(self, txn: Txn) -> list:
        if self._suppressed_origin(txn):
            return []
        if self._stream_it(txn):
            return self._streamed(txn)
        if txn.aborted:
            return []  # a rolled-back transaction is never decoded unless it was streamed
        if txn.gid is not None and not (self.opts.two_phase and self.v >= 3):
            return []  # decoded at COMMIT PREPARED instead
        return self._plain(txn, prepared=txn.gid is not None)

    def _visible_changes(self, txn: Txn) -> list:
        dead = txn.aborted_subxids
        return [c for c in txn.changes if c.subxid not in dead and self._keep(c)]

    def _plain(self, txn: Txn, prepared: bool, commit: PreparedEnd | None = None) -> list:
        changes = self._visible_changes(txn)
        if not changes and self.server_major >= 15:
            return []  # PG15+: empty transactions are skipped (only keepalives)
        first = changes[0].lsn if changes else txn.first_lsn
        out = []
        if prepared:
            out.append((first, po.BeginPrepare(txn.commit_lsn, txn.end_lsn, txn.commit_time, txn.xid, txn.gid).encode()))
        elif commit is not None:
            out.append((first, po.Begin(commit.lsn, commit.time, txn.xid).encode()))
        else:
            out.append((0 if txn.origin else first, po.Begin(txn.commit_lsn, txn.commit_time, txn.xid).encode()))
        if txn.origin and not prepared and commit is None:
            name, origin_lsn = txn.origin
            out.append((first, po.Origin(origin_lsn, name).encode()))
        for c in changes:
            out += self._change(c, None, None)
        if prepared:
            out.append((txn.end_lsn, po.Prepare(txn.commit_lsn, txn.end_lsn, txn.commit_time, txn.xid, txn.gid).encode()))
        elif commit is not None:
            out.append((commit.end_lsn, po.Commit(commit.lsn, commit.end_lsn, commit.time).encode()))
        else:
            out.append((txn.end_lsn, po.Commit(txn.commit_lsn, txn.end_lsn, txn.commit_time).encode()))
        return out

    def _streamed(self, txn: Txn) -> list:
        out: list = []
        rels: set = set()
        seg: list = []
        first_segment = True

        def flush_segment():
            nonlocal seg, first_segment
            if not seg:
                return
            start = next((lsn for lsn, _ in seg if lsn), txn.first_lsn)
            out.append((start, po.StreamStart(txn.xid, first_segment).encode()))
            out.extend(seg)
            last = max(p[0] for p in seg)
            out.append((last, po.StreamStop().encode()))
            first_segment = False
            seg = []

        count = 0
        for item in txn.items:
            if isinstance(item, SubAbort):
                flush_segment()
                count = 0
                out.append((item.lsn, self._abort(txn.xid, item.subxid, item.lsn, txn.commit_time)))
                rels = set()  # the abort invalidates what the stream sent (capture wal-a2)
                continue
            if not self._keep(item):
                continue
            msgs = self._change(item, item.subxid if item.subxid is not None else txn.xid, rels)
            seg += [(lsn or 0, p) for lsn, p in msgs]
            count += 1
            if count >= txn.segment_size:
                flush_segment()
                count = 0
        flush_segment()
        if not out:
            return []
        if txn.aborted:
            out.append((txn.commit_lsn, self._abort(txn.xid, txn.xid, txn.commit_lsn, txn.commit_time)))
        elif txn.gid is not None and self.opts.two_phase and self.v >= 3:
            out.append((txn.end_lsn, po.StreamPrepare(txn.commit_lsn, txn.end_lsn, txn.commit_time, txn.xid,
                                                      txn.gid).encode()))
        elif txn.gid is not None:
            return []  # streamed but prepared without two_phase: PostgreSQL decodes it at COMMIT PREPARED
        else:
            out.append((txn.end_lsn, po.StreamCommit(txn.xid, txn.commit_lsn, txn.end_lsn, txn.commit_time).encode()))
        return out

    def _abort(self, xid: int, subxid: int, lsn: int, time: int) -> bytes:
        if self.v >= po.PROTO_VERSION_STREAM_ABORT_INFO and self.opts.streaming == "parallel":
            return po.StreamAbort(xid, subxid, lsn, time).encode()
        return po.StreamAbort(xid, subxid).encode()

    def _prepared_end(self, rec: PreparedEnd) -> list:
        txn = rec.txn
        if self._suppressed_origin(txn):
            return []
        if self.opts.two_phase and self.v >= 3:
            if not self._visible_changes(txn) and not self._stream_it(txn):
                return []
            if rec.kind == "commit":
                return [(rec.end_lsn, po.CommitPrepared(rec.lsn, rec.end_lsn, rec.time, txn.xid, txn.gid).encode())]
            return [(rec.end_lsn, po.RollbackPrepared(txn.end_lsn, rec.end_lsn, txn.commit_time, rec.time, txn.xid,
                                                      txn.gid).encode())]
        if rec.kind == "rollback":
            return []
        return self._plain(txn, prepared=False, commit=rec)


# builds the text bodies at emit time (no per-connection state is used: Relations and filters are not asked)
_TEXT_WRITER = PgoutputWriter(po.PgoutputOptions(proto_version=1), Publications(None))
