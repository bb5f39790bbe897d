"""A small simple-query client for fakepm's own admin statements, on fakepm's Upstream.

No driver at runtime (drivers are test-only dependencies). Values come back as text (str or
None); an ErrorResponse raises EngineSQLError after the ReadyForQuery, so the connection
stays usable.
"""

from __future__ import annotations

from ..protocol.messages import (
    CommandComplete,
    CopyData,
    CopyDone,
    CopyInResponse,
    DataRow,
    EmptyQueryResponse,
    ErrorResponse,
    NoticeResponse,
    Query,
    ReadyForQuery,
    RowDescription,
)
from ..proxy.upstream import Upstream, UpstreamError, UpstreamURL
from .errors import EngineError, EngineSQLError

ADMIN_TIMEOUT = 120.0  # a CREATE DATABASE of a big template or a DROP waiting for a lock: bounded, not short
_COPY_CHUNK = 256 * 1024


def sql_literal(value: str) -> str:
    """A standard-conforming string literal ('' doubles quotes; backslashes are plain)."""
    if "\x00" in value:
        raise ValueError("a NUL character cannot be sent to PostgreSQL")
    return "'" + value.replace("'", "''") + "'"


def ident(name: str) -> str:
    """A quoted identifier ("" doubles quotes): exact case, any character."""
    if "\x00" in name:
        raise ValueError("a NUL character cannot be part of an identifier")
    return '"' + name.replace('"', '""') + '"'


class AdminConnection:
    """One admin session (superuser or the URL's user). Not thread-safe: one user at a time."""

    def __init__(self, url: UpstreamURL, *, timeout: float = ADMIN_TIMEOUT, application_name: str = "fakepm-engine"):
        self.url = url
        try:
            self.up = Upstream(url, {"application_name": application_name}, timeout=timeout).connect()
        except UpstreamError as e:
            raise EngineError(f"fakepm's admin connection to {url} failed: {e}") from None
        self.broken = False

    @property
    def parameters(self) -> dict:
        return self.up.parameters

    def query(self, sql: str, *, what: str = "") -> list[tuple]:
        """Run `sql` (one or more statements); the rows of the last result, as tuples of str/None."""
        return self._run(sql, None, what)

    def copy_in(self, sql: str, data: bytes, *, what: str = "") -> None:
        """Run a `COPY ... FROM STDIN` statement, sending `data` as its CopyData."""
        self._run(sql, data, what)

    def _run(self, sql: str, copy_data: bytes | None, what: str) -> list[tuple]:
        if self.broken:
            raise EngineError("fakepm's admin connection is broken (an earlier statement lost it)")
        rows: list[tuple] = []
        error = None
        try:
            self.up.send(Query(sql))
            while True:
                msg = self.up.read_message()
                if isinstance(msg, DataRow):
                    rows.append(tuple(None if v is None else bytes(v).decode() for v in msg.values))
                elif isinstance(msg, RowDescription):
                    rows = []
                elif isinstance(msg, ErrorResponse):
                    error = msg.error
                elif isinstance(msg, CopyInResponse):
                    data = copy_data if copy_data is not None else b""
                    chunks = [CopyData(data[i:i + _COPY_CHUNK]) for i in range(0, len(data), _COPY_CHUNK)]
                    self.up.send(*chunks, CopyDone())
                elif isinstance(msg, ReadyForQuery):
                    break
                elif isinstance(msg, (CommandComplete, EmptyQueryResponse, NoticeResponse)):
                    pass
        except (UpstreamError, OSError) as e:
            self.broken = True
            self.close()
            raise EngineError(f"fakepm's admin connection to {self.url} failed during {what or _short(sql)}: {e}") \
                from None
        if error is not None:
            detail = f" ({error.detail})" if error.detail else ""
            raise EngineSQLError(f"{what or _short(sql)}: {error.severity} {error.code}: {error.message}{detail}",
                                 error)
        return rows

    def close(self) -> None:
        self.up.close()

    def abandon(self) -> None:
        """Close our descriptor without a Terminate (after fork: the parent still owns the session)."""
        sock, self.up.sock = self.up.sock, None
        self.broken = True
        if sock is not None:
            try:
                sock.close()  # closing a fork's copy does not end the parent's session; 'X' would
            except OSError:
                pass


def _short(sql: str, n: int = 200) -> str:
    one = " ".join(sql.split())
    return one if len(one) <= n else one[:n] + "..."
