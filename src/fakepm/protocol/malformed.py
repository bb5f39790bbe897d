"""Wire bytes of deliberately broken backend messages (for fault injection and fuzzing).

Everything here is sans-I/O and builds bytes with the normal codecs, then breaks exactly
one thing, so a test knows what its driver saw. Kinds (see faults/plan.py MALFORMED):

  unknown_type      b"~" message with an empty body (no backend message uses '~')
  length_short      a CommandComplete whose length is 2 bytes short (the tail is read as
                    the start of the next message)
  length_long       a CommandComplete whose length claims 1000 more bytes than follow
  length_negative   a CommandComplete with length -5
  length_huge       a CommandComplete with length 0x7fffffff
  field_count       a DataRow with one field more than RowDescription announced
  field_past_end    a DataRow whose only field length runs 100 bytes past the message end
  bad_utf8          a well-framed DataRow with b"\\xff\\xfe" in every field
  bad_ready_status  ReadyForQuery with status 'X'
  wrong_tag         CommandComplete with a tag that fits no statement
  param_count       ParameterDescription with one parameter more than the statement has
"""

from __future__ import annotations

import struct

from .messages import ParameterDescription, command_complete, data_row, frame

_I32 = struct.Struct("!i")
_I16 = struct.Struct("!h")

TEXT_OID = 25


def _with_length(type_byte: bytes, length: int, body: bytes) -> bytes:
    return type_byte + _I32.pack(length) + body


def unknown_type() -> bytes:
    return frame(b"~", b"")


def lying_length(kind: str, tag: str = "SELECT 1") -> bytes:
    """A CommandComplete whose length field lies (kind: short, long, negative, huge)."""
    body = tag.encode() + b"\0"
    true_len = 4 + len(body)
    length = {"short": true_len - 2, "long": true_len + 1000, "negative": -5, "huge": 0x7FFFFFFF}[kind]
    return _with_length(b"C", length, body)


def data_row_extra_field(ncolumns: int) -> bytes:
    return data_row([b"1"] * (ncolumns + 1))


def data_row_field_past_end() -> bytes:
    # one field announcing 104 bytes, only 4 present
    body = _I16.pack(1) + _I32.pack(104) + b"abcd"
    return _with_length(b"D", 4 + len(body), body)


def data_row_bad_utf8(ncolumns: int) -> bytes:
    return data_row([b"\xff\xfe"] * max(1, ncolumns))


def bad_ready_status() -> bytes:
    return frame(b"Z", b"X")


def wrong_tag(tag: str = "FAKEPM_WRONG_TAG 1 2 3") -> bytes:
    return command_complete(tag)


def parameter_description_extra(type_oids) -> bytes:
    return ParameterDescription(tuple(type_oids) + (TEXT_OID,)).encode()


def build(kind: str, *, ncolumns: int = 1, tag: str = "SELECT 1", type_oids=()) -> bytes:
    """The bytes of one malformed message of `kind`."""
    if kind == "unknown_type":
        return unknown_type()
    if kind.startswith("length_"):
        return lying_length(kind[len("length_"):], tag)
    if kind == "field_count":
        return data_row_extra_field(ncolumns)
    if kind == "field_past_end":
        return data_row_field_past_end()
    if kind == "bad_utf8":
        return data_row_bad_utf8(ncolumns)
    if kind == "bad_ready_status":
        return bad_ready_status()
    if kind == "wrong_tag":
        return wrong_tag()
    if kind == "param_count":
        return parameter_description_extra(type_oids)
    raise ValueError(f"unknown malformed message kind {kind!r}")
