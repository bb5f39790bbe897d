"""The Python API's transaction builder (`pg.wal.transaction()`) and value helpers (LSNs, durations, times)."""

from __future__ import annotations

import contextlib
import datetime as dt
from typing import TYPE_CHECKING

from ..answers.catalog import Table
from ..protocol import pgoutput as po
from ..protocol.replication import parse_lsn, to_pg_timestamp
from .encoder import plain_body, pre_encode
from .wal import Change, SubAbort, Txn, make_change

if TYPE_CHECKING:  # the annotation only; sender.py imports this module
    from .sender import WalSender

def _seconds(value, what: str) -> float:
    """60, 1.5, '60s', '2min', '500ms' -> seconds."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        s = value.strip().lower()
        for suffix, mult in (("ms", 0.001), ("min", 60.0), ("s", 1.0), ("h", 3600.0)):
            if s.endswith(suffix):
                try:
                    return float(s[: -len(suffix)]) * mult
                except ValueError:
                    break
        try:
            return float(s)
        except ValueError:
            pass
    raise ValueError(f"{what}: expected seconds (a number) or a duration like '60s', '2min', '500ms'; got {value!r}")


def _lsn(value, what: str) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    try:
        return parse_lsn(str(value))
    except ValueError:
        raise ValueError(f"{what}: expected an LSN like '0/1000000', got {value!r}") from None


def _timestamp(value, what: str) -> int:
    """datetime, ISO 8601 text or Unix seconds -> microseconds since 2000-01-01 UTC."""
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(f"{what}: expected an ISO 8601 timestamp or Unix seconds, got {value!r}") from None
    try:
        return to_pg_timestamp(value)
    except TypeError as e:
        raise ValueError(f"{what}: {e}") from None


class TransactionBuilder:
    """What `pg.wal.transaction()` yields: add changes, then leave the `with` block to commit."""

    def __init__(self, wal: "WalSender", *, xid=None, commit_time=None, origin=None, streaming=False,
                 prepare: str | None = None, abort: bool = False, segment_size: int = 100, lsn=None,
                 commit_lsn=None, end_lsn=None, where: str = "transaction"):
        self._wal = wal
        self.where = where
        self.xid = xid if xid is not None else wal.log.new_xid()
        self.commit_time = commit_time
        self.origin = origin
        self.streaming = streaming
        self.gid = prepare
        self.aborted = abort
        self.segment_size = segment_size
        self.items: list = []
        self._subxid: int | None = None
        self._lsns = (lsn, commit_lsn, end_lsn)
        self.txn: Txn | None = None

    # changes -----------------------------------------------------------------
    def _add(self, change: Change, lsn=None) -> Change:
        pre_encode(change)  # also fails early (here, in the test) on a value the type cannot encode
        change.subxid = self._subxid
        if lsn is not None:
            change.lsn = _lsn(lsn, f"{self.where} change lsn")
        self.items.append(change)
        return change

    def insert(self, table, row, *, lsn=None) -> Change:
        t = self._wal.table(table, self.where)
        return self._add(make_change("insert", t, row, where=f"{self.where} insert into {t.qualname}"), lsn)

    def update(self, table, row, *, old=None, lsn=None) -> Change:
        t = self._wal.table(table, self.where)
        return self._add(make_change("update", t, row, old=old, where=f"{self.where} update of {t.qualname}"), lsn)

    def delete(self, table, row, *, lsn=None) -> Change:
        t = self._wal.table(table, self.where)
        return self._add(make_change("delete", t, row, where=f"{self.where} delete from {t.qualname}"), lsn)

    def truncate(self, tables, *, cascade: bool = False, restart_identity: bool = False, lsn=None) -> Change:
        if isinstance(tables, (str, Table)):
            tables = [tables]
        ts = tuple(self._wal.table(t, self.where) for t in tables)
        opts = (po.TRUNCATE_CASCADE if cascade else 0) | (po.TRUNCATE_RESTART_IDENTITY if restart_identity else 0)
        return self._add(Change("truncate", tables=ts, truncate_options=opts), lsn)

    def message(self, prefix: str, content, *, transactional: bool = True, lsn=None):
        data = content.encode() if isinstance(content, str) else bytes(content)
        if not transactional:
            return self._wal.message(prefix, data, transactional=False, lsn=lsn)
        return self._add(Change("message", prefix=prefix, content=data), lsn)

    @contextlib.contextmanager
    def subtransaction(self, *, abort: bool = False):
        """Changes made inside belong to a subtransaction (SAVEPOINT); abort=True rolls it back."""
        outer = self._subxid
        self._subxid = self._wal.log.new_xid()
        try:
            yield self
        finally:
            if abort:
                self.items.append(SubAbort(self._subxid))
            self._subxid = outer

    def abort(self) -> None:
        """Roll the whole transaction back (only streamed transactions show anything)."""
        self.aborted = True

    # commit ----------------------------------------------------------------------
    def commit(self) -> Txn:
        if self.txn is not None:
            return self.txn
        ct = _timestamp(self.commit_time if self.commit_time is not None else self._wal.clock(), "commit_time")
        txn = Txn(self.xid, self.items, ct, origin=self.origin, streaming=self.streaming, aborted=self.aborted,
                  gid=self.gid, segment_size=self.segment_size)
        b, c, e = self._lsns
        self.txn = self._wal._append(
            lambda: self._wal.log.append_txn(txn, begin_lsn=_lsn(b, "lsn") if b is not None else None,
                                             commit_lsn=_lsn(c, "commit_lsn") if c is not None else None,
                                             end_lsn=_lsn(e, "end_lsn") if e is not None else None,
                                             where=self.where, prepare=plain_body))
        return self.txn

    @property
    def commit_lsn(self) -> int:
        return self.commit().commit_lsn

    @property
    def end_lsn(self) -> int:
        return self.commit().end_lsn

    def __enter__(self) -> "TransactionBuilder":
        self._outer = getattr(self._wal._local, "tx", None)
        self._wal._local.tx = self
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self._wal._local.tx = self._outer
        if exc_type is None:  # an exception inside the block discards the transaction (a rollback)
            self.commit()
