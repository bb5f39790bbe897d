"""walsender: replication commands (IDENTIFY_SYSTEM, *_REPLICATION_SLOT, START_REPLICATION,
TIMELINE_HISTORY, SHOW) and the scripted/live logical change stream (pgoutput v1-v4).

`WalSender` is `pg.wal` (the Python API and the session hook); `parse_replication_section`
turns a scenario's `replication:` mapping into something that applies to a FakePostgres.
"""

from ..protocol.pgoutput import UNCHANGED_TOAST
from .sender import TransactionBuilder, WalSender
from .wal import Slot

__all__ = ["WalSender", "TransactionBuilder", "Slot", "UNCHANGED_TOAST", "parse_replication_section"]


def parse_replication_section(data, where: str = "replication"):
    """Validate a scenario's `replication:` mapping; returns an object with `.apply(pg)`."""
    from .scenario import parse_replication_section as parse

    return parse(data, where)
