"""Prepared statements and portals: what Parse, Bind and DECLARE leave behind in a session."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..answers.result import Result


@dataclass
class PreparedStatement:
    name: str
    sql: str
    declared: tuple  # param OIDs from Parse (0 = unspecified)
    n_params: int
    param_types: list | None = None  # resolved PgTypes (after inference)
    columns: Any = None  # cached describe result (tuple of Columns | None)


@dataclass
class Portal:
    name: str
    sql: str
    params: list
    param_types: list
    result_formats: tuple
    statement: str | None = None
    result: Result | None = None
    rows: Any = None  # iterator of rows still to send
    formats: tuple | None = None
    encoders: list | None = None
    sent: int = 0
    done: bool = False
    hold: bool = False  # WITH HOLD cursor: survives commit
    cursor: bool = False  # created by DECLARE
    buffer: list | None = None  # cursor rows fetched so far (for scrolling)
    position: int = 0  # cursor position (rows before it)
    exhausted: bool = False
    label: str | None = None
    params_raw: tuple = ()
