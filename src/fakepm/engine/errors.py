"""The engine room's errors: every one says what failed and how to fix it."""

from __future__ import annotations

from ..protocol.errors import PgError


class EngineError(RuntimeError):
    """The engine could not be found, started or used; the text names the cause and a fix.

    `log_tail` holds the end of the server log when the server itself was involved.
    """

    def __init__(self, message: str, *, log_tail: str = ""):
        if log_tail:
            message = f"{message}\n--- server log (last lines) ---\n{log_tail.rstrip()}"
        super().__init__(message)
        self.log_tail = log_tail


class EngineSQLError(EngineError):
    """The engine answered one of fakepm's own statements with an ErrorResponse (`error`)."""

    def __init__(self, message: str, error: PgError):
        super().__init__(message)
        self.error = error

    @property
    def sqlstate(self) -> str:
        return self.error.code
