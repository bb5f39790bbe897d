"""What a session's conversation generator yields while it waits, shared by every mode.

The session (connection.py), its sub-protocols (copy.py, the walsender, the relay to an
engine) and the I/O loop agree on these values; they live here so none of those modules
has to import the connection module for them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..answers.result import Deferred

NEED_INPUT = "need-input"  # the next frontend frame (or, inside a mode, an Event)
OUTPUT_FULL = "output-full"  # the output buffer is large: continue after the loop drained it
START_TLS = "start-tls"  # 'S' was answered to SSLRequest: wrap the socket, then resume_tls()
UPSTREAM_IDLE = "upstream-idle"  # backend mode: every reply owed by the engine must arrive first
CANCELED = object()  # the value an Await resumes with when a CancelRequest arrived
SUSPENDED = "suspended"  # Execute stopped at its row limit (PortalSuspended)
OUTPUT_LIMIT = 256 * 1024  # bytes of queued output before a streamed answer waits for the loop


@dataclass
class Await:
    """Work the I/O layer must do off the loop thread or after a delay; resume(token, value) when done."""

    work: Deferred
    token: int


@dataclass
class Event:
    kind: str  # "timer" | "wake"
    data: Any = None
