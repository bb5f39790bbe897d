"""Tests for fakepm.protocol.types: the one type registry and its codecs.

Golden values (text and binary hex) were produced by a real PostgreSQL 15 with DateStyle
'ISO, MDY', IntervalStyle postgres, TimeZone UTC, extra_float_digits 1, bytea_output hex
(`SELECT concat(v::type), encode(<typsend>(v::type), 'hex')`) and are re-checked against a
live server by the tests marked ``realpg`` at the bottom (skipped when no server binaries).
"""

from __future__ import annotations

import json
import math
import os
import sys
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal
from ipaddress import (
    IPv4Address,
    IPv4Interface,
    IPv4Network,
    IPv6Address,
    IPv6Interface,
    IPv6Network,
    ip_interface,
    ip_network,
)
from pathlib import Path
from uuid import UUID

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fakepm.protocol import types as T
from fakepm.protocol.fardates import MAX_DATE_DAYS, MIN_DAYS, FarDateTime, days_of, weekday, ymd
from fakepm.protocol.types import (
    INFINITY as INF,
    NEG_INFINITY as NINF,
    REGISTRY,
    Interval,
    InvalidValue,
    PgType,
    UnknownType,
    enum_type,
    format_type,
    lookup,
)

try:
    from tests.realpg import real_postgres, skip_unless_postgres
except ImportError:  # run without the repo root on sys.path
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from realpg import real_postgres, skip_unless_postgres  # type: ignore[no-redef]

UTC = timezone.utc


def tz(hours: int = 0, minutes: int = 0, seconds: int = 0) -> timezone:
    return timezone(timedelta(hours=hours, minutes=minutes, seconds=seconds))


# --------------------------------------------------------------------------- goldens
# (type spec, Python value, PostgreSQL text output, PostgreSQL typsend hex)
GOLDEN = [
    ('bool', True, 't', '01'),
    ('bool', False, 'f', '00'),
    ('int2', 0, '0', '0000'),
    ('int2', -32768, '-32768', '8000'),
    ('int2', 32767, '32767', '7fff'),
    ('int4', 5, '5', '00000005'),
    ('int4', -2147483648, '-2147483648', '80000000'),
    ('int4', 2147483647, '2147483647', '7fffffff'),
    ('int8', -9223372036854775808, '-9223372036854775808', '8000000000000000'),
    ('int8', 9223372036854775807, '9223372036854775807', '7fffffffffffffff'),
    ('oid', 4294967295, '4294967295', 'ffffffff'),
    ('oid', 1259, '1259', '000004eb'),
    ('xid', 42, '42', '0000002a'),
    ('xid8', 18446744073709551615, '18446744073709551615', 'ffffffffffffffff'),
    ('cid', 7, '7', '00000007'),
    ('float8', 1.5, '1.5', '3ff8000000000000'),
    ('float8', 1e-05, '1e-05', '3ee4f8b588e368f1'),
    ('float8', 123456789012.0, '123456789012', '423cbe991a140000'),
    ('float8', 1e16, '1e+16', '4341c37937e08000'),
    ('float8', 1e15, '1e+15', '430c6bf526340000'),
    ('float8', 1.5e15, '1.5e+15', '431550f7dca70000'),
    ('float8', 1000000000000000.2, '1.0000000000000002e+15', '430c6bf526340002'),
    ('float8', -0.0, '-0', '8000000000000000'),
    ('float8', 0.0, '0', '0000000000000000'),
    ('float8', 1e100, '1e+100', '54b249ad2594c37d'),
    ('float8', 0.0001, '0.0001', '3f1a36e2eb1c432d'),
    ('float8', 0.1, '0.1', '3fb999999999999a'),
    ('float8', -123.456, '-123.456', 'c05edd2f1a9fbe77'),
    ('float8', float('inf'), 'Infinity', '7ff0000000000000'),
    ('float8', float('-inf'), '-Infinity', 'fff0000000000000'),
    ('float8', 5e-324, '5e-324', '0000000000000001'),
    ('float8', 1.7976931348623157e308, '1.7976931348623157e+308', '7fefffffffffffff'),
    ('float8', 999999999999999.9, '999999999999999.9', '430c6bf52633ffff'),
    ('float8', 2.5e-5, '2.5e-05', '3efa36e2eb1c432d'),
    ('float4', 1.100000023841858, '1.1', '3f8ccccd'),
    ('float4', 0.10000000149011612, '0.1', '3dcccccd'),
    ('float4', 1234567.0, '1.234567e+06', '4996b438'),
    ('float4', 123456.0, '123456', '47f12000'),
    ('float4', 16777216.0, '1.6777216e+07', '4b800000'),
    ('float4', 3.4028234663852886e+38, '3.4028235e+38', '7f7fffff'),
    ('float4', 1.401298464324817e-45, '1e-45', '00000001'),
    ('float4', -0.0, '-0', '80000000'),
    ('float4', float('inf'), 'Infinity', '7f800000'),
    ('float4', 0.5, '0.5', '3f000000'),
    ('float4', 9.999999747378752e-06, '1e-05', '3727c5ac'),
    ('float4', 1.1754943508222875e-38, '1.1754944e-38', '00800000'),
    ('float4', 33554432.0, '3.3554432e+07', '4c000000'),
    ('float4', 0.30000001192092896, '0.3', '3e99999a'),
    ('numeric', Decimal('9.99'), '9.99', '0002000000000002000926ac'),
    ('numeric', Decimal('-9.99'), '-9.99', '0002000040000002000926ac'),
    ('numeric', Decimal('0.0001'), '0.0001', '0001ffff000000040001'),
    ('numeric', Decimal('100000000000000000000'), '100000000000000000000', '00010005000000000001'),
    ('numeric', Decimal('NaN'), 'NaN', '00000000c0000000'),
    ('numeric', Decimal('Infinity'), 'Infinity', '00000000d0000020'),
    ('numeric', Decimal('-Infinity'), '-Infinity', '00000000f0000020'),
    ('numeric', Decimal('0'), '0', '0000000000000000'),
    ('numeric', Decimal('0.00'), '0.00', '0000000000000002'),
    ('numeric', Decimal('1.000'), '1.000', '00010000000000030001'),
    ('numeric', Decimal('123456789.123456789'), '123456789.123456789', '0006000200000009000109291a8504d2162e2328'),
    ('numeric', Decimal('-0.000001'), '-0.000001', '0001fffe400000060064'),
    ('numeric', Decimal('10000'), '10000', '00010001000000000001'),
    ('numeric', Decimal('1E-20'), '0.00000000000000000001', '0001fffb000000140001'),
    ('numeric', Decimal('12345678901234567890.1'), '12345678901234567890.1', '000600040000000104d2162e23340d801ed203e8'),
    ('numeric', Decimal('15000'), '15000', '000200010000000000011388'),
    ('numeric', Decimal('99999999'), '99999999', '0002000100000000270f270f'),
    ('numeric', Decimal('0.5'), '0.5', '0001ffff000000011388'),
    ('numeric', Decimal('-1'), '-1', '00010000400000000001'),
    ('text', 'hello', 'hello', '68656c6c6f'),
    ('text', '', '', ''),
    ('text', 'héllo ☃', 'héllo ☃', '68c3a96c6c6f20e29883'),
    ('varchar', 'abc', 'abc', '616263'),
    ('bpchar', 'a  ', 'a  ', '612020'),
    ('name', 'pg_class', 'pg_class', '70675f636c617373'),
    ('char', 'a', 'a', '61'),
    ('"char"', '', '', '00'),
    ('"char"', '\xff', '\\377', 'ff'),
    ('"char"', 'a', 'a', '61'),
    ('bytea', b'\x00\xffA', '\\x00ff41', '00ff41'),
    ('bytea', b'', '\\x', ''),
    ('bytea', b'abc\\', '\\x6162635c', '6162635c'),
    ('date', date(2024, 1, 2), '2024-01-02', '0000223f'),
    ('date', date(1, 1, 1), '0001-01-01', 'fff4dbf9'),
    ('date', date(9999, 12, 31), '9999-12-31', '002c95d3'),
    ('date', date(2000, 1, 1), '2000-01-01', '00000000'),
    ('date', INF, 'infinity', '7fffffff'),
    ('date', NINF, '-infinity', '80000000'),
    ('date', date(1999, 12, 31), '1999-12-31', 'ffffffff'),
    ('time', time(3, 4, 5, 500000), '03:04:05.5', '00000002925cf460'),
    ('time', time(0, 0), '00:00:00', '0000000000000000'),
    ('time', time(23, 59, 59, 999999), '23:59:59.999999', '000000141dd75fff'),
    ('time', time(12, 0, 0, 120), '12:00:00.00012', '0000000a0eebb078'),
    ('timetz', time(3, 4, 5, tzinfo=timezone(timedelta(hours=2))), '03:04:05+02', '0000000292555340ffffe3e0'),
    ('timetz', time(3, 4, 5, 123000, tzinfo=timezone(timedelta(hours=-5, minutes=-30))), '03:04:05.123-05:30', '00000002925733b800004d58'),
    ('timetz', time(3, 4, 5, tzinfo=timezone(timedelta(hours=5, minutes=30, seconds=15))), '03:04:05+05:30:15', '0000000292555340ffffb299'),
    ('timetz', time(0, 0, tzinfo=UTC), '00:00:00+00', '000000000000000000000000'),
    ('timestamp', datetime(2024, 1, 2, 3, 4, 5, 500000), '2024-01-02 03:04:05.5', '0002b0ec851d9460'),
    ('timestamp', datetime(2000, 1, 1), '2000-01-01 00:00:00', '0000000000000000'),
    ('timestamp', datetime(1999, 12, 31, 23, 59, 59, 999999), '1999-12-31 23:59:59.999999', 'ffffffffffffffff'),
    ('timestamp', datetime(1, 1, 1), '0001-01-01 00:00:00', 'ff1fe2ffc59c6000'),
    ('timestamp', datetime(9999, 12, 31, 23, 59, 59), '9999-12-31 23:59:59', '0380e70b912c3dc0'),
    ('timestamp', INF, 'infinity', '7fffffffffffffff'),
    ('timestamp', NINF, '-infinity', '8000000000000000'),
    ('timestamptz', datetime(2024, 1, 1, 21, 34, 5, 123456, tzinfo=UTC), '2024-01-01 21:34:05.123456+00', '0002b0e7e8ebcf80'),
    ('timestamptz', datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC), '2024-01-02 03:04:05+00', '0002b0ec8515f340'),
    ('timestamptz', datetime(1970, 1, 1, tzinfo=UTC), '1970-01-01 00:00:00+00', 'fffca2fec4c82000'),
    ('timestamptz', INF, 'infinity', '7fffffffffffffff'),
    ('timestamptz', NINF, '-infinity', '8000000000000000'),
    ('timestamptz', datetime(1969, 7, 20, 20, 17, 40, 100000, tzinfo=UTC), '1969-07-20 20:17:40.1+00', 'fffc96188bafe7a0'),
    ('interval', timedelta(days=1, hours=2, minutes=3, seconds=4, microseconds=500000), '1 day 02:03:04.5', '00000001b82687200000000100000000'),
    ('interval', timedelta(seconds=-1), '-00:00:01', 'fffffffffff0bdc00000000000000000'),
    ('interval', timedelta(days=3), '3 days', '00000000000000000000000300000000'),
    ('interval', timedelta(0), '00:00:00', '00000000000000000000000000000000'),
    ('interval', timedelta(days=-3), '-3 days', '0000000000000000fffffffd00000000'),
    ('interval', Interval(0, 0, 360000000000), '100:00:00', '00000053d1ac10000000000000000000'),
    ('interval', timedelta(hours=100), '4 days 04:00:00', '000000035a4e90000000000400000000'),
    ('interval', timedelta(microseconds=-500000), '-00:00:00.5', 'fffffffffff85ee00000000000000000'),
    ('interval', timedelta(days=-1, hours=-1), '-1 days -01:00:00', 'ffffffff296c5c00ffffffff00000000'),
    ('interval', timedelta(days=1), '1 day', '00000000000000000000000100000000'),
    ('interval', Interval(14, 3, 14706000000), '1 year 2 mons 3 days 04:05:06', '000000036c8bc080000000030000000e'),
    ('interval', Interval(-14, 3, -14706000000), '-1 years -2 mons +3 days -04:05:06', 'fffffffc93743f8000000003fffffff2'),
    ('interval', Interval(1, 0, 0), '1 mon', '00000000000000000000000000000001'),
    ('interval', Interval(-1, 0, 0), '-1 mons', '000000000000000000000000ffffffff'),
    ('interval', Interval(12, 0, 0), '1 year', '0000000000000000000000000000000c'),
    ('interval', Interval(0, -1, 7200000000), '-1 days +02:00:00', '00000001ad274800ffffffff00000000'),
    ('interval', Interval(1, -1, 0), '1 mon -1 days', '0000000000000000ffffffff00000001'),
    ('interval', Interval(-1, 1, 0), '-1 mons +1 day', '000000000000000000000001ffffffff'),
    ('uuid', UUID('a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'), 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', 'a0eebc999c0b4ef8bb6d6bb9bd380a11'),
    ('json', {'b': 1, 'a': 2}, '{"b":1,"a":2}', '7b2262223a312c2261223a327d'),
    ('json', [1, 'x', None, True], '[1,"x",null,true]', '5b312c2278222c6e756c6c2c747275655d'),
    ('json', '"café"', '"café"', '22636166c3a922'),
    ('jsonb', {'b': 1, 'a': [1, 2], 'aa': {'c': None}, '': 'x'}, '{"": "x", "a": [1, 2], "b": 1, "aa": {"c": null}}', '017b22223a202278222c202261223a205b312c20325d2c202262223a20312c20226161223a207b2263223a206e756c6c7d7d'),
    ('jsonb', '"é\\n\\u0001"', '"é\\n\\u0001"', '0122c3a95c6e5c753030303122'),
    ('jsonb', {'é': 1, 'z': 2, 'ab': 3}, '{"z": 2, "ab": 3, "é": 1}', '017b227a223a20322c20226162223a20332c2022c3a9223a20317d'),
    ('jsonb', 1.5, '1.5', '01312e35'),
    ('jsonb', None, 'null', '016e756c6c'),
    ('jsonb', {'a': {'b': [], 'c': {}}}, '{"a": {"b": [], "c": {}}}', '017b2261223a207b2262223a205b5d2c202263223a207b7d7d7d'),
    ('inet', IPv4Address('192.168.0.1'), '192.168.0.1', '02200004c0a80001'),
    ('inet', IPv4Interface('192.168.0.0/24'), '192.168.0.0/24', '02180004c0a80000'),
    ('inet', IPv4Interface('10.1.2.3/8'), '10.1.2.3/8', '020800040a010203'),
    ('inet', IPv6Address('::1'), '::1', '0380001000000000000000000000000000000001'),
    ('inet', IPv6Address('::ffff:1.2.3.4'), '::ffff:1.2.3.4', '0380001000000000000000000000ffff01020304'),
    ('inet', IPv6Address('::1:2'), '::0.1.0.2', '0380001000000000000000000000000000010002'),
    ('inet', IPv6Interface('fe80::1/64'), 'fe80::1/64', '03400010fe800000000000000000000000000001'),
    ('inet', IPv6Address('2001:db8::1:0:0:1'), '2001:db8::1:0:0:1', '0380001020010db8000000000001000000000001'),
    ('cidr', IPv4Network('192.168.0.0/24'), '192.168.0.0/24', '02180104c0a80000'),
    ('cidr', IPv6Network('2001:db8::/32'), '2001:db8::/32', '0320011020010db8000000000000000000000000'),
    ('cidr', IPv4Network('10.0.0.0/8'), '10.0.0.0/8', '020801040a000000'),
    ('cidr', IPv4Network('10.1.2.3/32'), '10.1.2.3/32', '022001040a010203'),
    ('pg_lsn', 0x16B374D848, '16/B374D848', '00000016b374d848'),
    ('pg_lsn', 0, '0/0', '0000000000000000'),
    ('int2vector', [1, 2, 3], '1 2 3', '0000000100000000000000150000000300000000000000020001000000020002000000020003'),
    ('oidvector', [26, 23], '26 23', '00000001000000000000001a0000000200000000000000040000001a0000000400000017'),
    ('int2vector', [], '', '0000000100000000000000150000000000000000'),
    ('int4[]', [1, 2, None], '{1,2,NULL}', '000000010000000100000017000000030000000100000004000000010000000400000002ffffffff'),
    ('int4[]', [], '{}', '000000000000000000000017'),
    ('int4[]', [[1, 2], [3, 4]], '{{1,2},{3,4}}', '000000020000000000000017000000020000000100000002000000010000000400000001000000040000000200000004000000030000000400000004'),
    ('text[]', ['a', '', 'NULL', 'null', 'b c', 'a"b', 'a\\b', '{x}', 'a,b', None, '\t', 'ab'], '{a,"","NULL","null","b c","a\\"b","a\\\\b","{x}","a,b",NULL,"\t",ab}', '0000000100000001000000190000000c00000001000000016100000000000000044e554c4c000000046e756c6c000000036220630000000361226200000003615c62000000037b787d00000003612c62ffffffff0000000109000000026162'),
    ('timestamptz[]', [datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)], '{"2024-01-02 03:04:05+00"}', '0000000100000000000004a00000000100000001000000080002b0ec8515f340'),
    ('numeric[]', [Decimal('1.5'), None], '{1.5,NULL}', '0000000100000001000006a400000002000000010000000c000200000000000100011388ffffffff'),
    ('jsonb[]', [{'a': 1}], '{"{\\"a\\": 1}"}', '000000010000000000000eda000000010000000100000009017b2261223a20317d'),
    ('bytea[]', [b'x y'], '{"\\\\x782079"}', '000000010000000000000011000000010000000100000003782079'),
    ('bool[]', [True, False], '{t,f}', '000000010000000000000010000000020000000100000001010000000100'),
    ('float8[]', [1.5, float('inf')], '{1.5,Infinity}', '0000000100000000000002bd0000000200000001000000083ff8000000000000000000087ff0000000000000'),
    ('interval[]', [timedelta(days=1)], '{"1 day"}', '0000000100000000000004a200000001000000010000001000000000000000000000000100000000'),
    ('varchar[]', ['x'], '{x}', '00000001000000000000041300000001000000010000000178'),
    ('"char"[]', ['a', ''], '{a,""}', '000000010000000000000012000000020000000100000001610000000100'),
    ('char[]', ['a'], '{a}', '00000001000000000000041200000001000000010000000161'),
    ('uuid[]', [UUID('a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'), None], '{a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11,NULL}', '000000010000000100000b86000000020000000100000010a0eebc999c0b4ef8bb6d6bb9bd380a11ffffffff'),
    ('date[]', [INF, date(2024, 1, 2)], '{infinity,2024-01-02}', '00000001000000000000043a0000000200000001000000047fffffff000000040000223f'),
    ('text[]', [['a', 'b'], ['c', None]], '{{a,b},{c,NULL}}', '00000002000000010000001900000002000000010000000200000001000000016100000001620000000163ffffffff'),
    ('inet[]', [IPv4Address('1.2.3.4')], '{1.2.3.4}', '0000000100000000000003650000000100000001000000080220000401020304'),
    ('int8[]', [1], '{1}', '0000000100000000000000140000000100000001000000080000000000000001'),
    ('name[]', ['x'], '{x}', '00000001000000000000001300000001000000010000000178'),
]

# Encoded exactly like PostgreSQL, but decoding gives a different (documented) Python value.
ENCODE_ONLY = [
    ('jsonb', [Decimal('1.50'), 1000, 0, Decimal('1E-7'), 1], '[1.50, 1000, 0, 0.0000001, 1]', '015b312e35302c20313030302c20302c20302e303030303030312c20315d'),
    ('regtype', 'integer', 'integer', '00000017'),
    ("regclass", "pg_class", "pg_class", None),
    ("regclass", 1259, "1259", "000004eb"),
    ("void", None, "", ""),
    ("unknown", "abc", "abc", "616263"),
    ("record", (1, "a b", None, "", 'q"x'), '(1,"a b",,"","q""x")', None),
]


def same(a, b) -> bool:
    """Equality that also holds for NaN, keeps -0.0 apart, and compares types and Decimal exponents."""
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        if a != a:
            return b != b
        return a == b and math.copysign(1, a) == math.copysign(1, b)
    if isinstance(a, Decimal):
        return str(a) == str(b)
    if isinstance(a, (time, datetime)) and a.tzinfo is not None:
        return a == b and a.utcoffset() == b.utcoffset()
    return a == b


def _by_spec(cases):
    """Group cases per type spec: one test per type keeps the run short, failures stay readable."""
    groups: dict[str, list] = {}
    for case in cases:
        groups.setdefault(case[0], []).append(case[1:])
    return sorted(groups.items())


@pytest.mark.parametrize("spec,cases", _by_spec(GOLDEN + ENCODE_ONLY))
def test_golden_encode(spec, cases):
    t = REGISTRY.by_name(spec)
    for value, text, hexdata in cases:
        assert (value, t.encode_text(value)) == (value, text.encode())
        if hexdata is not None:
            assert (value, t.encode_binary(value).hex()) == (value, hexdata)


@pytest.mark.parametrize("spec,cases", _by_spec(GOLDEN))
def test_golden_decode(spec, cases):
    t = REGISTRY.by_name(spec)
    for value, text, hexdata in cases:
        assert same(t.decode_text(text.encode()), value), text
        assert same(t.decode_binary(bytes.fromhex(hexdata)), value), hexdata
        assert same(t.coerce(value), value), value  # goldens are canonical values


def test_encode_only_decodes():
    jb = REGISTRY.by_name("jsonb")
    assert jb.decode_text(b"[1.50, 1e400]") == [1.5, Decimal("1e400")]  # numbers: int, float, else Decimal
    assert REGISTRY.by_name("regtype").decode_text(b"integer") == "integer"
    assert REGISTRY.by_name("regtype").decode_binary(bytes.fromhex("00000017")) == 23
    assert REGISTRY.by_name("regclass").decode_text(b"1259") == 1259
    assert REGISTRY.by_name("void").decode_text(b"") is None
    rec = REGISTRY.by_name("record")
    assert rec.decode_text(b'(1,"a b",,"","q""x")') == ("1", "a b", None, "", 'q"x')
    assert rec.decode_text(b"()") == (None,)
    assert not rec.has_binary and not REGISTRY.by_name("aclitem").has_binary
    with pytest.raises(InvalidValue):
        rec.encode_binary((1,))


# ------------------------------------------------------------- text input variants
# (type spec, text input, PostgreSQL's text output after reading it)
INPUTS = [
    ("bool", "t", "t"), ("bool", "TRUE", "t"), ("bool", "tr", "t"), ("bool", "yes", "t"), ("bool", "y", "t"),
    ("bool", "on", "t"), ("bool", "1", "t"), ("bool", " t ", "t"), ("bool", "of", "f"), ("bool", "off", "f"),
    ("bool", "fa", "f"), ("bool", "No", "f"), ("bool", "0", "f"),
    ("int4", " 12 ", "12"), ("int4", "+5", "5"), ("int4", "-0", "0"), ("int4", "007", "7"), ("int2", "+5", "5"),
    ("int8", "\t-9223372036854775808\n", "-9223372036854775808"),
    ("oid", "-1", "4294967295"), ("oid", "-2147483648", "2147483648"),
    ("numeric", " 1.5 ", "1.5"), ("numeric", "1e5", "100000"), ("numeric", "1.50e1", "15.0"), ("numeric", ".5", "0.5"),
    ("numeric", "5.", "5"), ("numeric", "nan", "NaN"), ("numeric", "inf", "Infinity"), ("numeric", "-inf", "-Infinity"),
    ("numeric", "+Infinity", "Infinity"), ("numeric", "-0.00", "0.00"), ("numeric", "1E-3", "0.001"), ("numeric", "+1", "1"),
    ("float8", " 1.5 ", "1.5"), ("float8", "inf", "Infinity"), ("float8", "-Infinity", "-Infinity"), ("float8", "nan", "NaN"),
    ("float8", "1E+2", "100"), ("float8", ".5", "0.5"), ("float8", "4.9e-324", "5e-324"),
    ("float4", "1.1", "1.1"), ("float4", "16777217", "1.6777216e+07"), ("float4", "7.1e-46", "1e-45"),
    ("float4", "1.0000000596046448", "1.0000001"),  # double rounding trap: the double is a float32 midpoint
    ("float4", "1.0000000596046447", "1"), ("float4", " -Infinity", "-Infinity"),
    ("date", " 2024-01-02 ", "2024-01-02"), ("date", "01/02/2024", "2024-01-02"), ("date", "20240102", "2024-01-02"),
    ("date", "2024-01-02 03:04:05", "2024-01-02"), ("date", "epoch", "1970-01-01"), ("date", "Infinity", "infinity"),
    ("date", "2024-1-2", "2024-01-02"),
    ("time", "03:04", "03:04:00"), ("time", "3:04:05", "03:04:05"), ("time", "03:04:05.1234567", "03:04:05.123457"),
    ("time", "03:04:05+02", "03:04:05"), ("time", "2024-01-02 03:04:05", "03:04:05"),
    ("timetz", "03:04:05", "03:04:05+00"), ("timetz", "03:04:05 +0530", "03:04:05+05:30"), ("timetz", "03:04:05Z", "03:04:05+00"),
    ("timetz", "03:04:05.5-08", "03:04:05.5-08"),
    ("timestamp", "2024-01-02T03:04:05", "2024-01-02 03:04:05"), ("timestamp", "2024-01-02 03:04:05+05", "2024-01-02 03:04:05"),
    ("timestamp", "2024-01-02", "2024-01-02 00:00:00"), ("timestamp", "2024-01-02 03:04:05.9999999", "2024-01-02 03:04:06"),
    ("timestamp", "2024-01-02 23:59:59.9999999", "2024-01-03 00:00:00"), ("timestamp", "2024-01-02 24:00:00", "2024-01-03 00:00:00"),
    ("timestamp", "epoch", "1970-01-01 00:00:00"), ("timestamp", "01/02/2024 03:04", "2024-01-02 03:04:00"),
    ("timestamp", " 2024-01-02   03:04:05 ", "2024-01-02 03:04:05"),
    ("timestamptz", "2024-01-02 03:04:05.123+05:30", "2024-01-01 21:34:05.123+00"),
    ("timestamptz", "2024-01-02T03:04:05Z", "2024-01-02 03:04:05+00"), ("timestamptz", "2024-01-02 03:04:05 UTC", "2024-01-02 03:04:05+00"),
    ("timestamptz", "2024-01-02 03:04:05-08", "2024-01-02 11:04:05+00"), ("timestamptz", "2024-01-02 03:04:05+0530", "2024-01-01 21:34:05+00"),
    ("timestamptz", "2024-01-02 03:04:05 Europe/Paris", "2024-01-02 02:04:05+00"),
    ("timestamptz", "2024-07-02 03:04:05 America/New_York", "2024-07-02 07:04:05+00"),
    ("timestamptz", "2024-01-02", "2024-01-02 00:00:00+00"), ("timestamptz", "2024-01-02 03:04:05.1234565+00", "2024-01-02 03:04:05.123456+00"),
    ("timestamptz", "-infinity", "-infinity"), ("timestamptz", "2024-01-02 03:04:05+05:30:15", "2024-01-01 21:33:50+00"),
    ("interval", "1 day 02:03", "1 day 02:03:00"), ("interval", "1.5 days", "1 day 12:00:00"), ("interval", "1.5 mons", "1 mon 15 days"),
    ("interval", "1.5 years", "1 year 6 mons"), ("interval", "@ 1 hour ago", "-01:00:00"),
    ("interval", "P1Y2M3DT4H5M6.5S", "1 year 2 mons 3 days 04:05:06.5"), ("interval", "1-2", "1 year 2 mons"),
    ("interval", "1 02:03:04", "1 day 02:03:04"), ("interval", "5", "00:00:05"), ("interval", "1 week", "7 days"),
    ("interval", "-1 day +02:00:00", "-1 days +02:00:00"), ("interval", "1:02.5", "00:01:02.5"),
    ("interval", "1 day -1 hour ago", "-1 days +01:00:00"), ("interval", "2 hours 30 minutes", "02:30:00"),
    ("interval", "1 ms", "00:00:00.001"), ("interval", "3 weeks 2 days", "23 days"), ("interval", "1 century", "100 years"),
    ("interval", "-1.5 hours", "-01:30:00"), ("interval", "90 minutes", "01:30:00"), ("interval", "1 year -1 mon", "11 mons"),
    ("interval", "PT1.5S", "00:00:01.5"), ("interval", "P1W", "7 days"), ("interval", "  10 secs  ", "00:00:10"),
    ("interval", "1 mon 2 days 3 hours", "1 mon 2 days 03:00:00"), ("interval", "-00:00:01", "-00:00:01"),
    ("uuid", "{a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11}", "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"),
    ("uuid", "A0EEBC999C0B4EF8BB6D6BB9BD380A11", "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"),
    ("uuid", "a0ee-bc99-9c0b-4ef8-bb6d-6bb9-bd38-0a11", "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"),
    ("bytea", "abc", "\\x616263"), ("bytea", "a\\000b", "\\x610062"), ("bytea", "a\\\\b", "\\x615c62"),
    ("bytea", "\\x00 ff", "\\x00ff"), ("bytea", "\\xDEADbeef", "\\xdeadbeef"), ("bytea", "\\x", "\\x"),
    ("inet", "10/8", "10.0.0.0/8"), ("inet", "10.1/16", "10.1.0.0/16"), ("inet", "FE80::1", "fe80::1"),
    ("inet", "::ffff:102:304/120", "::ffff:1.2.3.4/120"), ("inet", "1.2.3.4/0", "1.2.3.4/0"), ("inet", "10.1.2.3/32", "10.1.2.3"),
    ("cidr", "128.1", "128.1.0.0/16"), ("cidr", "224", "224.0.0.0/4"), ("cidr", "240.1", "240.1.0.0/32"),
    ("cidr", "10.1.2", "10.1.2.0/24"), ("cidr", "0", "0.0.0.0/8"), ("cidr", "10.0.0.0", "10.0.0.0/32"),
    ("cidr", "192.168", "192.168.0.0/24"), ("cidr", "0.0.0.0/0", "0.0.0.0/0"), ("cidr", "::/0", "::/0"),
    ("pg_lsn", "16/b374d848", "16/B374D848"), ("pg_lsn", "FFFFFFFF/FFFFFFFF", "FFFFFFFF/FFFFFFFF"),
    ("int4[]", "{ 1 , 2 }", "{1,2}"), ("int4[]", "{1,NULL, null}", "{1,NULL,NULL}"), ("int4[]", " {} ", "{}"),
    ("int4[]", "{{1,2},{3,4}}", "{{1,2},{3,4}}"), ("int4[]", '{"1", 2}', "{1,2}"),
    ("text[]", '{"a b", c\\,d, "q\\"x", " s ", "NULL", "" }', '{"a b","c,d","q\\"x"," s ","NULL",""}'),
    ("text[]", "{ a b }", '{"a b"}'), ("text[]", "{a\\ }", '{"a "}'), ("text[]", "{{a},{b}}", "{{a},{b}}"),
    ("text[]", "{\\NULL}", '{"NULL"}'), ("text[]", '{"\\\\"}', '{"\\\\"}'), ("text[]", "{é,ü}", "{é,ü}"),
    ("jsonb[]", '{"{\\"a\\":1}"}', '{"{\\"a\\": 1}"}'), ("float8[]", "{NaN,-0,1e-5}", "{NaN,-0,1e-05}"),
    ("jsonb", '{"a":1, "a":2}', '{"a": 2}'), ("jsonb", ' [1, {"b":true,"a":false}] ', '[1, {"a": false, "b": true}]'),
    ("jsonb", '"\\u00e9\\ud83d\\ude00"', '"é😀"'), ("jsonb", '{"x": "\\/"}', '{"x": "/"}'),
    ('"char"', "ab", "a"), ('"char"', "\\101", "A"), ("name", "x" * 70, "x" * 63),
    ("int2vector", " 1  2 ", "1 2"), ("oidvector", "", ""),
]


@pytest.mark.parametrize("spec,cases", _by_spec(INPUTS))
def test_text_input_variants(spec, cases):
    t = REGISTRY.by_name(spec)
    for text, output in cases:
        assert (text, t.encode_text(t.decode_text(text.encode()))) == (text, output.encode())


def test_text_input_values():
    d = REGISTRY.by_name
    assert d("timestamptz").decode_text(b"2024-01-02 03:04:05.123+05:30") == datetime(
        2024, 1, 1, 21, 34, 5, 123000, tzinfo=UTC)
    assert d("timestamptz").decode_text(b"2024-01-02T03:04:05Z").tzinfo is UTC
    assert d("timestamp").decode_text(b"2024-01-02 03:04:05").tzinfo is None
    assert d("timetz").decode_text(b"03:04:05+02") == time(3, 4, 5, tzinfo=tz(2))
    assert d("interval").decode_text(b"1 mon") == Interval(1, 0, 0)
    assert d("interval").decode_text(b"100:00:00") == Interval(0, 0, 100 * 3600 * 10**6)  # not a day-split timedelta
    assert d("interval").decode_text(b"1 day 02:03:04.5") == timedelta(days=1, hours=2, minutes=3, seconds=4.5)
    assert d("interval").decode_text(b"-00:00:01") == timedelta(seconds=-1)
    assert d("interval").decode_text(b"-1 days -00:00:01") == timedelta(days=-1, seconds=-1)
    assert d("bytea").decode_text(b"\\x00ff") == b"\x00\xff"
    assert d("int4[]").decode_text(b"[0:1]={1,2}") == [1, 2]  # bounds are not kept
    assert d("text[]").decode_text(b'{"a\\"b","c\\\\d",NULL,"NULL"}') == ['a"b', "c\\d", None, "NULL"]
    assert d("inet").decode_text(b"10.1.2.3/8") == IPv4Interface("10.1.2.3/8")
    assert d("inet").decode_text(b"10.1.2.3") == IPv4Address("10.1.2.3")
    assert d("cidr").decode_text(b"10") == IPv4Network("10.0.0.0/8")
    assert d("pg_lsn").decode_text(b"16/B374D848") == 0x16B374D848
    assert d("float4").decode_text(b"1.1") == 1.100000023841858
    assert d('"char"').decode_text(b"\\377") == "\xff"
    assert d("json").decode_text(b'{"a": [1, 2.5, null]}') == {"a": [1, 2.5, None]}
    assert d("json").decode_text(b' "\\u00e9" ') == ' "\\u00e9" '  # a JSON string document stays JSON text
    assert d("jsonb").decode_text(b' "\\u00e9" ') == '"\u00e9"'
    assert d("date").decode_text(b"infinity") == INF and d("date").decode_text(b"-infinity") == NINF


# (type spec, bad text input, SQLSTATE, PostgreSQL's message)
BAD_INPUTS = [
    ("int4", "abc", "22P02", 'invalid input syntax for type integer: "abc"'),
    ("int4", "1_0", "22P02", 'invalid input syntax for type integer: "1_0"'),
    ("int4", "", "22P02", 'invalid input syntax for type integer: ""'),
    ("int4", "99999999999", "22003", 'value "99999999999" is out of range for type integer'),
    ("int2", "70000", "22003", 'value "70000" is out of range for type smallint'),
    ("int8", "1.5", "22P02", 'invalid input syntax for type bigint: "1.5"'),
    ("oid", "5000000000", "22003", 'value "5000000000" is out of range for type oid'),
    ("float8", "1e400", "22003", '"1e400" is out of range for type double precision'),
    ("float8", "1e-400", "22003", '"1e-400" is out of range for type double precision'),
    ("float8", "abc", "22P02", 'invalid input syntax for type double precision: "abc"'),
    ("float4", "3.5e38", "22003", '"3.5e38" is out of range for type real'),
    ("float4", "1e-50", "22003", '"1e-50" is out of range for type real'),
    ("float4", "1_0", "22P02", 'invalid input syntax for type real: "1_0"'),
    ("numeric", "abc", "22P02", 'invalid input syntax for type numeric: "abc"'),
    ("numeric", "1_000", "22P02", 'invalid input syntax for type numeric: "1_000"'),
    ("numeric", "sNaN", "22P02", 'invalid input syntax for type numeric: "sNaN"'),
    ("numeric", "1e-20000", "22003", "value overflows numeric format"),
    ("numeric", "1e200000", "22003", "value overflows numeric format"),
    ("bool", "o", "22P02", 'invalid input syntax for type boolean: "o"'),
    ("bool", "2", "22P02", 'invalid input syntax for type boolean: "2"'),
    ("bool", "", "22P02", 'invalid input syntax for type boolean: ""'),
    ("date", "abc", "22007", 'invalid input syntax for type date: "abc"'),
    ("date", "2024-13-01", "22008", 'date/time field value out of range: "2024-13-01"'),
    ("date", "2024-02-30", "22008", 'date/time field value out of range: "2024-02-30"'),
    ("timestamp", "abc", "22007", 'invalid input syntax for type timestamp: "abc"'),
    ("timestamptz", "abc", "22007", 'invalid input syntax for type timestamp with time zone: "abc"'),
    ("time", "25:00:00", "22008", 'date/time field value out of range: "25:00:00"'),
    ("time", "abc", "22007", 'invalid input syntax for type time: "abc"'),
    ("timetz", "abc", "22007", 'invalid input syntax for type time with time zone: "abc"'),
    ("interval", "abc", "22007", 'invalid input syntax for type interval: "abc"'),
    ("interval", "1 fortnight", "22007", 'invalid input syntax for type interval: "1 fortnight"'),
    ("uuid", "abc", "22P02", 'invalid input syntax for type uuid: "abc"'),
    ("uuid", "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a1", "22P02",
     'invalid input syntax for type uuid: "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a1"'),
    ("inet", "10", "22P02", 'invalid input syntax for type inet: "10"'),
    ("inet", " 10.1.2.3 ", "22P02", 'invalid input syntax for type inet: " 10.1.2.3 "'),
    ("inet", "10.1.2.3/33", "22P02", 'invalid input syntax for type inet: "10.1.2.3/33"'),
    ("inet", "256.1.1.1", "22P02", 'invalid input syntax for type inet: "256.1.1.1"'),
    ("cidr", "192.168.1.5/24", "22P02", 'invalid cidr value: "192.168.1.5/24"'),
    ("json", "{", "22P02", "invalid input syntax for type json"),
    ("json", "NaN", "22P02", "invalid input syntax for type json"),
    ("jsonb", "[1,]", "22P02", "invalid input syntax for type json"),
    ("jsonb", '"\\u0000"', "22P05", "unsupported Unicode escape sequence"),
    ("bytea", "\\xzz", "22023", 'invalid hexadecimal digit: "z"'),
    ("bytea", "\\x0", "22023", "invalid hexadecimal data: odd number of digits"),
    ("bytea", "a\\b", "22P02", "invalid input syntax for type bytea"),
    ("int4[]", "1,2", "22P02", 'malformed array literal: "1,2"'),
    ("int4[]", "{1,2", "22P02", 'malformed array literal: "{1,2"'),
    ("int4[]", "{{1},2}", "22P02", 'malformed array literal: "{{1},2}"'),
    ("int4[]", "{{1},{2,3}}", "22P02", 'malformed array literal: "{{1},{2,3}}"'),
    ("int4[]", "{1,,2}", "22P02", 'malformed array literal: "{1,,2}"'),
    ("int4[]", "{{}}", "22P02", 'malformed array literal: "{{}}"'),
    ("int4[]", "{{},{}}", "22P02", 'malformed array literal: "{{},{}}"'),
    ("int4[]", "{1,2}x", "22P02", 'malformed array literal: "{1,2}x"'),
    ("int4[]", "{1,abc}", "22P02", 'invalid input syntax for type integer: "abc"'),
    ("pg_lsn", "x/y", "22P02", 'invalid input syntax for type pg_lsn: "x/y"'),
    ("pg_lsn", "123456789/0", "22P02", 'invalid input syntax for type pg_lsn: "123456789/0"'),
]


@pytest.mark.parametrize("spec,cases", _by_spec(BAD_INPUTS))
def test_bad_text_input(spec, cases):
    t = REGISTRY.by_name(spec)
    for text, sqlstate, message in cases:
        with pytest.raises(InvalidValue) as ei:
            t.decode_text(text.encode())
        assert (text, ei.value.sqlstate, str(ei.value)) == (text, sqlstate, message)


def test_dates_beyond_python_are_far_datetimes():
    """BC and after year 9999: PostgreSQL's own range, kept as FarDateTime, text and binary round trip."""
    date_t, ts_t, tstz_t = (REGISTRY.by_name(n) for n in ("date", "timestamp", "timestamptz"))
    for t, text in [(ts_t, b"10000-01-01 00:00:00"), (date_t, b"0044-03-15 BC"), (date_t, b"4714-11-24 BC"),
                    (date_t, b"5874897-12-31"), (tstz_t, b"0001-01-01 00:00:00.25+00 BC"),
                    (ts_t, b"294276-12-31 23:59:59.999999")]:
        v = t.decode_text(text)
        assert isinstance(v, FarDateTime) and str(v) == text.decode()
        assert t.encode_text(v) == text
        assert t.decode_binary(t.encode_binary(v)) == v
    assert str(tstz_t.decode_text(b"20000-06-01 00:00:00+02")) == "20000-05-31 22:00:00+00"
    for t, text, message in [(date_t, b"4714-11-23 BC", "date out of range"),
                             (date_t, b"5874898-01-01", "date out of range"),
                             (ts_t, b"294277-01-01 00:00:00", "timestamp out of range"),
                             (date_t, b"0002-02-29 BC", "date/time field value out of range")]:
        with pytest.raises(InvalidValue, match=message) as ei:
            t.decode_text(text)
        assert ei.value.sqlstate == "22008"
    with pytest.raises(InvalidValue, match="date out of range"):
        date_t.decode_binary(bytes.fromhex("ff000000"))
    with pytest.raises(InvalidValue, match="timestamp out of range"):
        tstz_t.decode_binary(bytes.fromhex("7fffffff00000000"))
    with pytest.raises(InvalidValue, match="24:00:00 is not representable"):
        REGISTRY.by_name("time").decode_text(b"24:00:00")


@given(st.integers(min_value=MIN_DAYS, max_value=MAX_DATE_DAYS))
def test_far_calendar_is_the_gregorian_calendar(days):
    y, m, d = ymd(days)
    assert days_of(y, m, d) == days
    if 1 <= y <= 9999:  # where Python has the calendar, the same date
        assert date(y, m, d).toordinal() - date(2000, 1, 1).toordinal() == days
        assert weekday(y, m, d) == date(y, m, d).weekday()


def test_bad_utf8_text():
    with pytest.raises(InvalidValue) as ei:
        REGISTRY.by_name("text").decode_text(b"a\xff")
    assert ei.value.sqlstate == "22021"
    assert str(ei.value) == 'invalid byte sequence for encoding "UTF8": 0xff'


# ------------------------------------------------------------- binary input errors
@pytest.mark.parametrize("spec,hexdata,sqlstate,message", [
    ("int4", "000001", "08P01", "insufficient data left in message"),
    ("int4", "0000000100", "22P03", "incorrect binary data format"),
    ("bool", "", "08P01", "insufficient data left in message"),
    ("numeric", "000100000000", "08P01", "insufficient data left in message"),
    ("numeric", "0001000012340000ffff", "22P03", 'invalid sign in external "numeric" value'),
    ("numeric", "000100000000000027ff", "22P03", 'invalid digit in external "numeric" value'),
    ("numeric", "000000000000ffff", "22P03", 'invalid scale in external "numeric" value'),
    ("jsonb", "027b7d", "22P03", "unsupported jsonb version number 2"),
    ("int4[]", "0000000100000000000000190000000100000001", "42804",
     "binary data has array element type 25 instead of expected 23 (integer)"),
    ("int4[]", "000000070000000000000017", "22P03", "invalid number of dimensions: 7"),
    ("int4[]", "000000010000000200000017", "22P03", "invalid array flags"),
    ("int4[]", "00000001000000000000001700000002000000010000000400000001", "08P01", "insufficient data left in message"),
    ("inet", "0420000401020304", "22P03", 'invalid address family in external "inet" value'),
    ("inet", "0221000401020304", "22P03", 'invalid bits in external "inet" value'),
    ("inet", "022000050102030405", "22P03", 'invalid length in external "inet" value'),
    ("cidr", "02180104c0a80001", "22P03", 'invalid external "cidr" value'),
    ("uuid", "00", "08P01", "insufficient data left in message"),
])
def test_bad_binary_input(spec, hexdata, sqlstate, message):
    with pytest.raises(InvalidValue) as ei:
        REGISTRY.by_name(spec).decode_binary(bytes.fromhex(hexdata))
    assert (ei.value.sqlstate, str(ei.value)) == (sqlstate, message)


def test_binary_input_leniency():
    assert REGISTRY.by_name("bool").decode_binary(b"\x02") is True  # boolrecv: non-zero is true
    # numeric_recv truncates digits the dscale hides: 1.2345 with dscale 2 -> 1.23
    assert str(REGISTRY.by_name("numeric").decode_binary(bytes.fromhex("00020000000000020001092d"))) == "1.23"
    # the is_cidr flag of inet_recv is ignored
    assert REGISTRY.by_name("inet").decode_binary(bytes.fromhex("02200104c0a80001")) == IPv4Address("192.168.0.1")
    # array lower bounds other than 1 decode to a plain list
    assert REGISTRY.by_name("int4[]").decode_binary(
        bytes.fromhex("000000010000000000000017000000020000000500000004000000010000000400000002")) == [1, 2]


# --------------------------------------------------------------------- coerce


@pytest.mark.parametrize("spec,value,expected", [
    ("numeric", "9.99", Decimal("9.99")), ("numeric", 9.99, Decimal("9.99")), ("numeric", 5, Decimal(5)),
    ("numeric", 1e20, Decimal("100000000000000000000")), ("numeric", Decimal("1E+3"), Decimal("1000")),
    ("numeric", Decimal("-0.00"), Decimal("0.00")), ("numeric", float("nan"), Decimal("NaN")),
    ("numeric", "-Infinity", Decimal("-Infinity")),
    ("int4", "42", 42), ("int4", 42.0, 42), ("int4", Decimal("7"), 7), ("int8", 2**40, 2**40),
    ("float8", "1.5", 1.5), ("float8", 2, 2.0), ("float8", Decimal("0.1"), 0.1), ("float4", 1.1, 1.100000023841858),
    ("bool", "yes", True), ("bool", "off", False), ("bool", 1, True), ("bool", False, False),
    ("text", "x", "x"), ("text", 5, "5"), ("text", 1.5, "1.5"), ("text", True, "true"), ("text", Decimal("1.0"), "1.0"),
    ("name", "é" * 40, "é" * 31), ('"char"', "xyz", "x"),
    ("bytea", "\\x0102", b"\x01\x02"), ("bytea", "abc", b"abc"), ("bytea", bytearray(b"a"), b"a"),
    ("date", "2024-01-02", date(2024, 1, 2)), ("date", datetime(2024, 1, 2), date(2024, 1, 2)),
    ("date", "infinity", INF), ("date", float("-inf"), NINF),
    ("time", "03:04:05", time(3, 4, 5)), ("time", time(3, 4, 5, tzinfo=tz(2)), time(3, 4, 5)),
    ("timetz", "03:04:05+02", time(3, 4, 5, tzinfo=tz(2))), ("timetz", time(3, 4), time(3, 4, tzinfo=UTC)),
    ("timestamp", "2024-01-02T03:04:05", datetime(2024, 1, 2, 3, 4, 5)),
    ("timestamp", datetime(2024, 1, 2, 3, 4, 5, tzinfo=tz(1)), datetime(2024, 1, 2, 2, 4, 5)),
    ("timestamp", date(2024, 1, 2), datetime(2024, 1, 2)),
    ("timestamptz", "2024-01-02T03:04:05Z", datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)),
    ("timestamptz", "2024-01-02 03:04:05+05:30", datetime(2024, 1, 1, 21, 34, 5, tzinfo=UTC)),
    ("timestamptz", datetime(2024, 1, 2, 3, 4, 5), datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)),
    ("timestamptz", datetime(2024, 1, 2, 3, 4, 5, tzinfo=tz(-8)), datetime(2024, 1, 2, 11, 4, 5, tzinfo=UTC)),
    ("timestamptz", ".inf", None), ("timestamptz", INF, INF),
    ("interval", "1 day", timedelta(days=1)), ("interval", "1 mon", Interval(1)),
    ("interval", Interval(0, 1, 5), timedelta(days=1, microseconds=5)),
    ("uuid", "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", UUID("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11")),
    ("json", '{"a": [1, 2]}', '{"a": [1, 2]}'), ("jsonb", '{"a": [1, 2]}', {"a": [1, 2]}), ("jsonb", {"a": 1}, {"a": 1}),
    ("jsonb", '"hello"', '"hello"'), ("jsonb", '"\\u00e9"', '"é"'), ("json", '"\\u00e9"', '"\\u00e9"'),
    ("jsonb", [1, "x"], [1, "x"]),
    ("inet", "10.0.0.1", IPv4Address("10.0.0.1")), ("inet", "10.0.0.1/8", IPv4Interface("10.0.0.1/8")),
    ("inet", IPv4Network("10.0.0.0/8"), IPv4Interface("10.0.0.0/8")), ("inet", IPv4Interface("1.2.3.4/32"), IPv4Address("1.2.3.4")),
    ("cidr", "10.0.0.0/8", IPv4Network("10.0.0.0/8")), ("cidr", IPv4Address("1.2.3.4"), IPv4Network("1.2.3.4/32")),
    ("pg_lsn", "16/B374D848", 0x16B374D848), ("pg_lsn", 5, 5),
    ("int4[]", [1, "2", None], [1, 2, None]), ("int4[]", "{1,2}", [1, 2]), ("int4[]", (1, 2), [1, 2]),
    ("int4[]", [[1, 2], [3, 4]], [[1, 2], [3, 4]]), ("int4[]", [[], []], []),
    ("jsonb[]", [[1, 2], {"a": 1}], [[1, 2], {"a": 1}]),  # lists are JSON values, not a dimension
    ("int2vector", "1 2", [1, 2]), ("oidvector", (26, 23), [26, 23]),
    ("regclass", "pg_class", "pg_class"), ("regclass", 1259, 1259), ("regtype", "1259", 1259),
    ("record", [1, "a"], (1, "a")),
    ("int4", None, None), ("text", None, None), ("int4[]", None, None),
])
def test_coerce(spec, value, expected):
    t = REGISTRY.by_name(spec)
    if expected is None and value is not None:
        with pytest.raises(ValueError):
            t.coerce(value)
        return
    assert same(t.coerce(value), expected)


@pytest.mark.parametrize("spec,value,exc,message", [
    ("int4", "abc", ValueError, 'value "abc" is not valid for type integer'),
    ("int2", 70000, ValueError, "value 70000 is out of range for type smallint"),
    ("int2", "70000", ValueError, 'value "70000" is out of range for type smallint'),
    ("int4", 1.5, ValueError, "value 1.5 is not valid for type integer"),
    ("int4", True, TypeError, "value True (bool) is not valid for type integer"),
    ("int4", [1], TypeError, "value [1] (list) is not valid for type integer"),
    ("numeric", "x", ValueError, 'value "x" is not valid for type numeric'),
    ("numeric", Decimal("1e-20000"), ValueError, "value overflows numeric format"),
    ("float4", 1e39, ValueError, "value 1e+39 is out of range for type real"),
    ("bool", "maybe", ValueError, 'value "maybe" is not valid for type boolean'),
    ("date", "2024-13-01", ValueError,
     'value "2024-13-01" is not valid for type date: date/time field value out of range: "2024-13-01"'),
    ("date", datetime(2024, 1, 2, 3), ValueError, "value datetime.datetime(2024, 1, 2, 3, 0) is not valid for type date"
     " (it has a time of day)"),
    ("timestamptz", "yesterday", ValueError, 'value "yesterday" is not valid for type timestamp with time zone'),
    ("text", b"x", TypeError, "value b'x' (bytes) is not valid for type text"),
    ("text", "a\x00b", ValueError, 'value "a\x00b" is not valid for type text: contains a NUL character'),
    ("jsonb", "hello", ValueError, 'value "hello" is not valid for type jsonb: invalid input syntax for type json'),
    ("jsonb", {"a": float("nan")}, ValueError, "value {'a': nan} is not valid for type jsonb"),
    ("jsonb", {"a": object}, TypeError, "is not valid for type jsonb"),
    ("uuid", "nope", ValueError, 'value "nope" is not valid for type uuid'),
    ("cidr", "10.0.0.1/8", ValueError, 'value "10.0.0.1/8" is not valid for type cidr: invalid cidr value'),
    ("int4[]", [1, "x"], ValueError, "value [1, 'x'] is not valid for type integer[]: value \"x\" is not valid for type integer"),
    ("int4[]", [[1], [2, 3]], ValueError, "multidimensional arrays must have sub-arrays with matching dimensions"),
    ("int4[]", [[1], 2], ValueError, "multidimensional arrays must have sub-arrays with matching dimensions"),
    ("interval", 5, TypeError, "value 5 (int) is not valid for type interval"),
])
def test_coerce_errors(spec, value, exc, message):
    t = REGISTRY.by_name(spec)
    with pytest.raises(exc) as ei:
        t.coerce(value)
    assert message in str(ei.value)


def test_encoders_coerce_natural_values():
    R = REGISTRY.by_name
    assert R("int4").encode_text("42") == b"42"
    assert R("int4").encode_binary("42") == b"\x00\x00\x00\x2a"
    assert R("numeric").encode_text(5) == b"5"
    assert R("numeric").encode_text("9.990") == b"9.990"
    assert R("numeric").encode_text(0.1) == b"0.1"
    assert R("float8").encode_text(3) == b"3"
    assert R("timestamptz").encode_text(datetime(2024, 1, 2, 3, 4, 5)) == b"2024-01-02 03:04:05+00"  # naive = UTC
    assert R("timestamptz").encode_text(datetime(2024, 1, 2, 3, 4, 5, tzinfo=tz(5, 30))) == b"2024-01-01 21:34:05+00"
    assert R("timestamptz").encode_text("2024-01-02T03:04:05Z") == b"2024-01-02 03:04:05+00"
    assert R("timestamp").encode_text(date(2024, 1, 2)) == b"2024-01-02 00:00:00"
    assert R("date").encode_text("2024-01-02") == b"2024-01-02"
    assert R("bool").encode_text("false") == b"f"
    assert R("uuid").encode_text("A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11") == b"a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"
    assert R("int4[]").encode_text((1, 2)) == b"{1,2}"
    assert R("text[]").encode_text("{a,b}") == b"{a,b}"
    assert R("bytea").encode_text("abc") == b"\\x616263"
    assert R("inet").encode_text("10.0.0.1/8") == b"10.0.0.1/8"
    assert R("interval").encode_binary("1 mon") == bytes.fromhex("00000000000000000000000000000001")
    assert R("jsonb").encode_text('{"b":1,"a":2}') == b'{"a": 2, "b": 1}'  # a str is JSON text
    assert R("json").encode_text(' {"b" : 1} ') == b' {"b" : 1} '  # json keeps its text
    assert R("jsonb").encode_text('"x"') == b'"x"'
    assert R("void").coerce("anything") is None
    with pytest.raises(ValueError, match="invalid input syntax for type json"):
        R("jsonb").encode_text("not json")
    assert R("json").encode_text({"b": 1, "a": [1, 2.5, None, True]}) == b'{"b":1,"a":[1,2.5,null,true]}'
    with pytest.raises(ValueError, match="out of range for type smallint"):
        R("int2").encode_text(70000)
    with pytest.raises(ValueError, match="out of range for type smallint"):
        R("int2").encode_binary(70000)
    with pytest.raises(ValueError, match="not valid for type integer"):
        R("int4").encode_text(1.5)
    with pytest.raises(TypeError, match="NULL"):
        R("int4").encode_text(None)


def test_no_negative_zero_numeric():
    n = REGISTRY.by_name("numeric")
    assert n.encode_text(Decimal("-0.00")) == b"0.00"
    assert n.encode_binary(Decimal("-0.00")).hex() == "0000000000000002"


# ------------------------------------------------------------------- registry


ALIASES = [
    ("int", "int4"), ("integer", "int4"), ("INT4", "int4"), ("  Integer ", "int4"), ("smallint", "int2"), ("int2", "int2"),
    ("bigint", "int8"), ("int8", "int8"), ("double precision", "float8"), ("DOUBLE   PRECISION", "float8"),
    ("float8", "float8"), ("float", "float8"), ("real", "float4"), ("float4", "float4"), ("float(24)", "float4"),
    ("float(25)", "float8"), ("numeric", "numeric"), ("decimal", "numeric"), ("numeric(10,2)", "numeric"),
    ("decimal(5, 1)", "numeric"), ("varchar(20)", "varchar"), ("character varying(20)", "varchar"),
    ("character varying", "varchar"), ("varchar", "varchar"), ("char(3)", "bpchar"), ("char", "bpchar"),
    ("character", "bpchar"), ("bpchar", "bpchar"), ("name", "name"), ('"char"', "char"), ("boolean", "bool"),
    ("bool", "bool"), ("text", "text"), ("bytea", "bytea"), ("date", "date"), ("time", "time"),
    ("time without time zone", "time"), ("timetz", "timetz"), ("time with time zone", "timetz"),
    ("time(3) with time zone", "timetz"), ("timestamp", "timestamp"), ("timestamp without time zone", "timestamp"),
    ("timestamptz", "timestamptz"), ("timestamp with time zone", "timestamptz"),
    ("timestamp(3) with time zone", "timestamptz"), ("timestamptz(3)", "timestamptz"), ("interval", "interval"),
    ("interval(3)", "interval"), ("interval day to second", "interval"), ("uuid", "uuid"), ("json", "json"),
    ("jsonb", "jsonb"), ("inet", "inet"), ("cidr", "cidr"), ("oid", "oid"), ("void", "void"), ("unknown", "unknown"),
    ("regclass", "regclass"), ("regtype", "regtype"), ("regproc", "regproc"), ("xid", "xid"), ("pg_lsn", "pg_lsn"),
    ("int2vector", "int2vector"), ("oidvector", "oidvector"), ("record", "record"), ("aclitem", "aclitem"),
    ("text[]", "_text"), ("int4[]", "_int4"), ("integer[]", "_int4"), ("_int4", "_int4"),
    ("character varying[]", "_varchar"), ("varchar(20)[]", "_varchar"), ("int[][]", "_int4"), ("int[3]", "_int4"),
    ("integer array", "_int4"), ('"char"[]', "_char"), ("char[]", "_bpchar"), ("pg_catalog.int4", "int4"),
    ('"int4"', "int4"), ("serial", "int4"), ("bigserial", "int8"), ("_text", "_text"),
]


def test_by_name_aliases():
    assert [(n, REGISTRY.by_name(n).name) for n, _ in ALIASES] == ALIASES


def test_type_table_facts():
    """OIDs, typlen, array OIDs, categories and format_type(oid, NULL) from pg_type of PostgreSQL 15."""
    rows = [  # name, oid, typlen, array_oid, category, display
        ("bool", 16, 1, 1000, "B", "boolean"), ("bytea", 17, -1, 1001, "U", "bytea"),
        ("char", 18, 1, 1002, "Z", '"char"'), ("name", 19, 64, 1003, "S", "name"),
        ("int8", 20, 8, 1016, "N", "bigint"), ("int2", 21, 2, 1005, "N", "smallint"),
        ("int2vector", 22, -1, 1006, "A", "int2vector"), ("int4", 23, 4, 1007, "N", "integer"),
        ("regproc", 24, 4, 1008, "N", "regproc"), ("text", 25, -1, 1009, "S", "text"),
        ("oid", 26, 4, 1028, "N", "oid"), ("xid", 28, 4, 1011, "U", "xid"), ("cid", 29, 4, 1012, "U", "cid"),
        ("oidvector", 30, -1, 1013, "A", "oidvector"), ("json", 114, -1, 199, "U", "json"),
        ("xml", 142, -1, 143, "U", "xml"), ("cidr", 650, -1, 651, "I", "cidr"),
        ("float4", 700, 4, 1021, "N", "real"), ("float8", 701, 8, 1022, "N", "double precision"),
        ("unknown", 705, -2, 0, "X", "unknown"), ("inet", 869, -1, 1041, "I", "inet"),
        ("aclitem", 1033, 12, 1034, "U", "aclitem"), ("bpchar", 1042, -1, 1014, "S", "character"),
        ("varchar", 1043, -1, 1015, "S", "character varying"), ("date", 1082, 4, 1182, "D", "date"),
        ("time", 1083, 8, 1183, "D", "time without time zone"),
        ("timestamp", 1114, 8, 1115, "D", "timestamp without time zone"),
        ("timestamptz", 1184, 8, 1185, "D", "timestamp with time zone"),
        ("interval", 1186, 16, 1187, "T", "interval"), ("timetz", 1266, 12, 1270, "D", "time with time zone"),
        ("numeric", 1700, -1, 1231, "N", "numeric"), ("regprocedure", 2202, 4, 2207, "N", "regprocedure"),
        ("regoper", 2203, 4, 2208, "N", "regoper"), ("regclass", 2205, 4, 2210, "N", "regclass"),
        ("regtype", 2206, 4, 2211, "N", "regtype"), ("record", 2249, -1, 2287, "P", "record"),
        ("cstring", 2275, -2, 1263, "P", "cstring"), ("void", 2278, 4, 0, "P", "void"),
        ("uuid", 2950, 16, 2951, "U", "uuid"), ("pg_lsn", 3220, 8, 3221, "U", "pg_lsn"),
        ("jsonb", 3802, -1, 3807, "U", "jsonb"), ("regnamespace", 4089, 4, 4090, "N", "regnamespace"),
        ("regrole", 4096, 4, 4097, "N", "regrole"), ("xid8", 5069, 8, 271, "U", "xid8"),
    ]
    for name, oid, typlen, array_oid, cat, display in rows:
        t = REGISTRY.by_oid(oid)
        assert (t.name, t.oid, t.typlen, t.array_oid, t.category, t.display) == (name, oid, typlen, array_oid, cat, display)
        assert REGISTRY.get_oid(oid) is t
        if array_oid:
            a = REGISTRY.by_oid(array_oid)
            assert a.elem is t and a.typlen == -1 and a.name == "_" + name
            assert a.category == ("P" if name == "record" else "A")
            assert a.display == display + "[]" and REGISTRY.array_of(t) is a
    assert REGISTRY.by_oid(22).elem is REGISTRY.by_oid(21)  # int2vector's typelem
    assert REGISTRY.by_oid(1007).display == "integer[]" and REGISTRY.by_oid(1014).display == "character[]"


def test_unknown_type():
    with pytest.raises(UnknownType) as ei:
        REGISTRY.by_name("integr")
    assert str(ei.value) == 'unknown type "integr"; did you mean "integer"?'
    assert isinstance(ei.value, KeyError) and isinstance(ei.value, ValueError)
    with pytest.raises(UnknownType, match='did you mean "timestamptz"'):
        REGISTRY.by_name("timestamptzz")
    with pytest.raises(UnknownType) as ei:
        REGISTRY.by_name("qqqqqqqq")
    assert str(ei.value) == 'unknown type "qqqqqqqq"'
    with pytest.raises(KeyError):
        REGISTRY.by_oid(999999)
    assert REGISTRY.get_oid(999999) is None
    with pytest.raises(UnknownType):
        REGISTRY.array_of(REGISTRY.by_name("void"))


@pytest.mark.parametrize("spec,typmod,formatted", [  # atttypmod and format_type() from PostgreSQL 15
    ("varchar(20)", 24, "character varying(20)"), ("character varying(20)", 24, "character varying(20)"),
    ("numeric(10,2)", 655366, "numeric(10,2)"), ("numeric(10)", 655364, "numeric(10,0)"),
    ("numeric(1000,0)", 65536004, "numeric(1000,0)"), ("decimal(5,1)", 327685, "numeric(5,1)"),
    ("numeric(5,-2)", 329730, "numeric(5,-2)"),
    ("timestamptz(3)", 3, "timestamp(3) with time zone"), ("timestamp(3) with time zone", 3, "timestamp(3) with time zone"),
    ("timestamp(0)", 0, "timestamp(0) without time zone"), ("time(2)", 2, "time(2) without time zone"),
    ("timetz(2)", 2, "time(2) with time zone"), ("timestamp(9)", 6, "timestamp(6) without time zone"),
    ("char(3)", 7, "character(3)"), ("char", 5, "character(1)"), ("character", 5, "character(1)"),
    ("bpchar", -1, "bpchar"), ("varchar", -1, "character varying"), ("numeric", -1, "numeric"),
    ("interval(3)", 2147418115, "interval(3)"), ("interval day to second(3)", 470286339, "interval day to second(3)"),
    ("interval year", 327679, "interval year"), ("interval year to month", 458751, "interval year to month"),
    ("varchar(20)[]", 24, "character varying(20)[]"), ("numeric(10,2)[]", 655366, "numeric(10,2)[]"),
    ("int4", -1, "integer"), ("text[]", -1, "text[]"), ("float(10)", -1, "real"),
])
def test_parse_type_spec_and_format_type(spec, typmod, formatted):
    t, tm = REGISTRY.parse_type_spec(spec)
    assert tm == typmod
    assert format_type(t, tm) == formatted


def test_format_type_null_typmod():
    assert format_type(REGISTRY.by_name("bpchar")) == "character"
    assert format_type(REGISTRY.by_name("bpchar"), -1) == "bpchar"  # PostgreSQL's quirk
    assert format_type(REGISTRY.by_name("bpchar[]"), -1) == "bpchar[]"
    assert format_type(REGISTRY.by_name("char[]")) == "character[]"
    assert format_type(REGISTRY.by_name("int4"), 5) == "integer"


@pytest.mark.parametrize("spec,message", [
    ("varchar(0)", "length for type varchar must be at least 1"),
    ("varchar(10485761)", "length for type varchar cannot exceed 10485760"),
    ("numeric(0)", "NUMERIC precision 0 must be between 1 and 1000"),
    ("numeric(10,1001)", "NUMERIC scale 1001 must be between -1000 and 1000"),
    ("int4(5)", 'type modifier is not allowed for type "int4"'),
    ("varchar(x)", 'invalid type modifier in "varchar(x)"'),
])
def test_bad_typmods(spec, message):
    with pytest.raises(ValueError) as ei:
        REGISTRY.parse_type_spec(spec)
    assert str(ei.value) == message


@pytest.mark.parametrize("value,name", [
    (True, "bool"), (1, "int4"), (2**31, "int8"), (-2**31 - 1, "int8"), (2**63, "numeric"), (1.5, "float8"),
    (Decimal("1"), "numeric"), ("x", "text"), (b"x", "bytea"), (bytearray(b"x"), "bytea"),
    (datetime(2024, 1, 1, tzinfo=UTC), "timestamptz"), (datetime(2024, 1, 1), "timestamp"), (date(2024, 1, 1), "date"),
    (time(1), "time"), (time(1, tzinfo=UTC), "timetz"), (timedelta(1), "interval"), (Interval(1), "interval"),
    (UUID(int=1), "uuid"), ({"a": 1}, "jsonb"), ([1, 2], "_int4"), ([None, "a"], "_text"), ([], "_text"),
    ([None], "_text"), ([[1], [2]], "_int4"), ([1, 2**40], "_int8"), ([{"a": 1}], "_jsonb"), (None, "text"),
    (IPv4Address("1.2.3.4"), "inet"), (IPv6Address("::1"), "inet"), (IPv4Interface("1.2.3.4/8"), "inet"),
    (IPv4Network("1.0.0.0/8"), "cidr"), (IPv6Network("::/0"), "cidr"), ([datetime(2024, 1, 1)], "_timestamp"),
])
def test_infer(value, name):
    assert REGISTRY.infer(value).name == name


def test_infer_unknown():
    with pytest.raises(TypeError, match="cannot infer"):
        REGISTRY.infer(object())


def test_register_enum_and_lookup():
    reg = REGISTRY.copy()
    mood = enum_type("mood", 50000, ["sad", "ok", "happy"], array_oid=50001)
    reg.register(mood, aliases=["public.mood"])
    assert reg.by_name("mood") is mood and reg.by_name("Public.Mood") is mood and reg.by_oid(50000) is mood
    arr = reg.by_name("mood[]")
    assert arr.oid == 50001 and arr.elem is mood and arr.display == "mood[]" and reg.by_oid(50001) is arr
    assert mood.encode_text("ok") == b"ok" and mood.encode_binary("ok") == b"ok"
    assert mood.decode_text(b"happy") == "happy" and arr.decode_text(b"{sad,ok}") == ["sad", "ok"]
    with pytest.raises(InvalidValue, match='invalid input value for enum mood: "meh"'):
        mood.decode_text(b"meh")
    with pytest.raises(ValueError, match='invalid input value for enum mood: "meh"'):
        mood.coerce("meh")
    assert "mood" not in REGISTRY  # the default registry is untouched
    # a plain user type is text-coded
    plain = reg.register(PgType("citext", 60000, -1, 60001))
    assert plain.encode_text("x") == b"x" and plain.decode_binary(b"y") == "y" and reg.by_name("citext[]").oid == 60001
    assert "mood" in reg.names() and "integer" in reg.names() and "int4" in reg.names()


def test_lookup():
    assert lookup("int") is REGISTRY.by_oid(23)
    assert lookup(25).name == "text"
    t = lookup("uuid")
    assert lookup(t) is t
    with pytest.raises(UnknownType):
        lookup("nope")
    with pytest.raises(TypeError):
        lookup(1.5)  # type: ignore[arg-type]


def test_pgtype_identity_and_repr():
    t = REGISTRY.by_name("int4")
    assert t == t and t != REGISTRY.by_name("int8") and hash(t) == hash(t)
    assert repr(t) == "PgType('int4', oid=23)"
    assert t.has_binary and t.typlen == 4 and t.elem is None
    assert REGISTRY.by_name("int4[]").is_array and not REGISTRY.by_name("int2vector").is_array
    with pytest.raises(Exception):
        t.oid = 5  # type: ignore[misc]


def test_interval_value_class():
    iv = Interval(14, 3, 14_706_000_000)
    assert str(iv) == "1 year 2 mons 3 days 04:05:06"
    assert iv.to_timedelta() == timedelta(days=30 * 14 + 3, seconds=14706)
    assert Interval.from_timedelta(timedelta(seconds=-1)) == Interval(0, 0, -1_000_000)
    assert Interval.from_timedelta(timedelta(days=-1, seconds=-1)) == Interval(0, -1, -1_000_000)


def test_module_is_sans_io():
    src = Path(T.__file__).read_text()
    for banned in ("import socket", "import threading", "import time\n", "import hypothesis", "from hypothesis",
                   "datetime.now", "time.time(", "date.today"):
        assert banned not in src


# ------------------------------------------------------------ hypothesis round trips
# Value generators per type (private; fakepm/strategies.py may grow from these).

_NAME_CHARS = st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00")
_TEXT = st.text(_NAME_CHARS, max_size=30)
_OFFSETS = st.integers(-15 * 3600 - 3599, 15 * 3600 + 3599).map(lambda s: timezone(timedelta(seconds=s)))
_JSON_FLOAT = st.floats(allow_nan=False, allow_infinity=False).filter(lambda f: abs(f) < 1e15)
_JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-2**70, 2**70) | _JSON_FLOAT | _TEXT,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_TEXT, inner, max_size=4),
    max_leaves=12,
).map(lambda v: json.dumps(v) if isinstance(v, str) else v)  # a top-level str is JSON text


def _decimals():
    finite = st.builds(lambda i, s: Decimal(f"{i}E{s}"), st.integers(-10**40, 10**40), st.integers(-40, 10))
    return finite | st.sampled_from([Decimal("NaN"), Decimal("Infinity"), Decimal("-Infinity")])


def _intervals():
    td = st.timedeltas(min_value=timedelta(days=-10**8), max_value=timedelta(days=10**8))
    exact = st.builds(Interval, st.integers(-2**31, 2**31 - 1), st.integers(-2**31, 2**31 - 1),
                      st.integers(-2**63 + 1, 2**63 - 1))  # PostgreSQL cannot read back INT64_MIN us
    return td | exact


def _ip_interfaces():
    v4 = st.builds(lambda a, p: ip_interface((a, p)), st.ip_addresses(v=4), st.integers(0, 32))
    v6 = st.builds(lambda a, p: ip_interface((a, p)), st.ip_addresses(v=6), st.integers(0, 128))
    return st.ip_addresses() | v4 | v6


def _ip_networks():
    v4 = st.builds(lambda a, p: ip_network((a, p), strict=False), st.ip_addresses(v=4), st.integers(0, 32))
    v6 = st.builds(lambda a, p: ip_network((a, p), strict=False), st.ip_addresses(v=6), st.integers(0, 128))
    return v4 | v6


_SCALARS = {
    "bool": st.booleans(),
    "int2": st.integers(-2**15, 2**15 - 1),
    "int4": st.integers(-2**31, 2**31 - 1),
    "int8": st.integers(-2**63, 2**63 - 1),
    "oid": st.integers(0, 2**32 - 1),
    "xid": st.integers(0, 2**32 - 1),
    "cid": st.integers(0, 2**32 - 1),
    "xid8": st.integers(0, 2**64 - 1),
    "regproc": st.integers(0, 2**32 - 1),
    "regclass": st.integers(0, 2**32 - 1),
    "regtype": st.integers(0, 2**32 - 1),
    "float4": st.floats(width=32),
    "float8": st.floats(),
    "numeric": _decimals(),
    "text": _TEXT,
    "varchar": _TEXT,
    "bpchar": _TEXT,
    "name": st.text(_NAME_CHARS, max_size=15),
    "char": st.just("") | st.characters(min_codepoint=1, max_codepoint=255),
    "bytea": st.binary(max_size=40),
    "date": st.dates() | st.sampled_from([INF, NINF]),
    "time": st.times(),
    "timetz": st.builds(lambda t, z: t.replace(tzinfo=z), st.times(), _OFFSETS),
    "timestamp": st.datetimes() | st.sampled_from([INF, NINF]),
    "timestamptz": st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30),
                                timezones=st.just(UTC) | _OFFSETS) | st.sampled_from([INF, NINF]),
    "interval": _intervals(),
    "uuid": st.uuids(),
    "json": _JSON,
    "jsonb": _JSON,
    "inet": _ip_interfaces(),
    "cidr": _ip_networks(),
    "pg_lsn": st.integers(0, 2**64 - 1),
    "int2vector": st.lists(st.integers(-2**15, 2**15 - 1), max_size=5),
    "oidvector": st.lists(st.integers(0, 2**32 - 1), max_size=5),
    "unknown": _TEXT,
    "xml": _TEXT,
    "cstring": _TEXT,
    "void": st.none(),
}
_TEXT_ONLY = {"record": st.tuples(st.none() | _TEXT, st.none() | _TEXT), "aclitem": _TEXT}
_ARRAY_ELEMS = sorted(n for n in _SCALARS if REGISTRY.by_name(n if n != "char" else '"char"').array_oid)


def _type(name: str) -> PgType:
    return REGISTRY.by_name('"char"' if name == "char" else name)


def _canon(t: PgType, v):
    """What decoding gives back for v: the coerced value (timestamptz in UTC, interval split...)."""
    return t.coerce(v)


def _eq_for(t: PgType):
    """JSON numbers are numeric: -0.0 comes back as 0.0 and 1e16 as an int, equal but not the same."""
    json_like = t.codec.list_is_scalar or (t.elem is not None and t.elem.codec.list_is_scalar)
    return (lambda a, b: a == b) if json_like else same


def _check_round_trip(t: PgType, v, binary: bool = True):
    c = _canon(t, v)
    eq = _eq_for(t)
    assert eq(t.decode_text(t.encode_text(v)), c), (t, v)
    assert t.encode_text(c) == t.encode_text(v)
    if binary:
        assert eq(t.decode_binary(t.encode_binary(v)), c), (t, v)
        assert t.encode_binary(c) == t.encode_binary(v)


# Bounded so the file stays quick; FAKEPM_TYPES_EXAMPLES=500 for a deeper local run.
_EXAMPLES = int(os.environ.get("FAKEPM_TYPES_EXAMPLES", "50"))
_FAST = settings(max_examples=_EXAMPLES, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.mark.parametrize("name", sorted(_SCALARS))
def test_round_trip_scalar(name):
    t = _type(name)

    @_FAST
    @given(_SCALARS[name])
    def run(v):
        _check_round_trip(t, v)

    run()


@pytest.mark.parametrize("name", sorted(_TEXT_ONLY))
def test_round_trip_text_only(name):
    t = _type(name)

    @_FAST
    @given(_TEXT_ONLY[name])
    def run(v):
        c = t.coerce(v)
        assert t.decode_text(t.encode_text(v)) == c

    run()


def _arrays(elem: st.SearchStrategy, list_is_scalar: bool):
    one = st.lists(st.none() | elem, max_size=5)
    if list_is_scalar:
        return one
    two = st.integers(1, 3).flatmap(lambda n: st.lists(st.lists(st.none() | elem, min_size=n, max_size=n),
                                                       min_size=1, max_size=3))
    return one | two


@pytest.mark.parametrize("name", _ARRAY_ELEMS)
def test_round_trip_array(name):
    t = REGISTRY.array_of(_type(name))

    @settings(max_examples=max(8, _EXAMPLES // 5), deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow])
    @given(_arrays(_SCALARS[name], t.elem.codec.list_is_scalar))
    def run(v):
        _check_round_trip(t, v)

    run()


def test_float4_shortest_awkward_values():
    # Powers of two (lopsided rounding interval) and format switches; checked against PostgreSQL 15.
    f4 = REGISTRY.by_name("float4")
    for v, text in [(2.0**-149, "1e-45"), (2.0**-126, "1.1754944e-38"), (2.0**127, "1.7014118e+38"),
                    (2.0**24, "1.6777216e+07"), (2.0**-10, "0.0009765625"), (2.0**90, "1.2379401e+27"),
                    (0.1, "0.1"), (100000.0, "100000"), (1000000.0, "1e+06"), (0.0001, "0.0001"), (0.00001, "1e-05")]:
        assert f4.encode_text(v) == text.encode(), v


# ------------------------------------------------------ against a real PostgreSQL
# These re-derive every golden above from a live server, then compare hypothesis-generated
# values: PostgreSQL reads our text output and must print the same text and send the same bytes.

_PG_SETTINGS = {"TimeZone": "UTC", "DateStyle": "ISO, MDY", "IntervalStyle": "postgres",
                "extra_float_digits": "1", "bytea_output": "hex", "lc_messages": "C"}


@pytest.fixture(scope="module", params=["15", "18"], ids=["pg15", "pg18"])
def pgconn(request):
    """PostgreSQL 15, then 18, with the settings above (a server of its own: its session defaults)."""
    skip_unless_postgres(request.param)
    psycopg = pytest.importorskip("psycopg")
    with real_postgres(settings=_PG_SETTINGS, version=request.param) as server:
        with psycopg.connect(server.dsn, autocommit=True) as conn:
            yield conn


class _PG:
    """Ask the server how it reads a text literal: (text output, typsend hex) or an error."""

    def __init__(self, conn):
        self.conn = conn
        self.send: dict[int, str] = {}

    def out(self, spec: str, text: str) -> tuple[str, str | None]:
        t = REGISTRY.by_name(spec)
        if t.oid not in self.send:
            row = self.conn.execute("select typsend::text from pg_type where oid = %s", (t.oid,)).fetchone()
            self.send[t.oid] = row[0]
        send = self.send[t.oid]
        if spec.startswith("reg") and text.isdigit():
            spec = "oid::" + spec  # text -> regclass is a name lookup, not the input function
        if send == "-":
            return self.conn.execute(f"select concat(%s::text::{spec})", (text,)).fetchone()[0], None
        return self.conn.execute(f"select concat(%s::text::{spec}), encode({send}(%s::text::{spec}), 'hex')",
                                 (text, text)).fetchone()

    def error(self, spec: str, text: str) -> tuple[str, str]:
        import psycopg

        try:
            self.conn.execute(f"select %s::text::{spec}", (text,))
        except psycopg.Error as e:
            return e.diag.sqlstate, e.diag.message_primary
        return "", "no error"


@pytest.mark.realpg
def test_realpg_goldens(pgconn):
    pg = _PG(pgconn)
    for spec, value, text, hexdata in GOLDEN + ENCODE_ONLY:
        if spec == "record":
            continue  # anonymous record input is not implemented in PostgreSQL
        ptext, phex = pg.out(spec, text)
        if spec.startswith("reg") and isinstance(value, int):
            assert phex == hexdata  # the server prints the catalog name for a known OID
            continue
        assert (spec, ptext) == (spec, text)
        if hexdata is not None:
            assert (spec, text, phex) == (spec, text, hexdata)


@pytest.mark.realpg
def test_realpg_inputs(pgconn):
    pg = _PG(pgconn)
    for spec, text, output in INPUTS:
        assert (spec, text, pg.out(spec, text)[0]) == (spec, text, output)


# Inputs PostgreSQL 18 accepts that 15 refuses (underscores in integers and numeric, 16's release
# notes; empty nested array literals, a later release): the one type registry answers as PostgreSQL
# 15 does, whatever version a fake announces. Checked here so that the list stays true.
ACCEPTED_BY_18 = {("int4", "1_0"), ("numeric", "1_000"), ("int4[]", "{{}}"), ("int4[]", "{{},{}}")}


@pytest.mark.realpg
def test_realpg_bad_inputs(pgconn):
    pg = _PG(pgconn)
    major = pgconn.info.server_version // 10000
    for spec, text, sqlstate, message in BAD_INPUTS:
        if major >= 18 and (spec, text) in ACCEPTED_BY_18:
            assert pg.error(spec, text) == ("", "no error")
            continue
        assert (spec, text) + pg.error(spec, text) == (spec, text, sqlstate, message)


@pytest.mark.realpg
def test_realpg_type_table_and_typmods(pgconn):
    major = pgconn.info.server_version // 10000
    for t in REGISTRY:
        if t.oid >= 10000:
            continue
        row = pgconn.execute("select typname, typlen, typarray, typcategory, format_type(oid, null) "
                             "from pg_type where oid = %s", (t.oid,)).fetchone()
        if t.name == "aclitem" and major >= 16:  # 16 widened aclitem to 16 bytes; the registry keeps 15's 12
            row = (row[0], 12) + row[2:]
        assert row == (t.name, t.typlen, t.array_oid, t.category, t.display), t
    specs = ["varchar(20)", "numeric(10,2)", "numeric(10)", "decimal(5,1)", "numeric(5,-2)", "timestamptz(3)",
             "timestamp(3) with time zone", "time(2)", "timetz(2)", "char(3)", "char", "interval(3)",
             "interval day to second(3)", "interval year", "interval year to month", "varchar(20)[]", "bpchar",
             "numeric(1000,0)", "float(10)", "float(30)"]
    cols = ", ".join(f"c{i} {s}" for i, s in enumerate(specs))
    pgconn.execute(f"create temp table typmods ({cols})")
    rows = pgconn.execute("select atttypid, atttypmod, format_type(atttypid, atttypmod) from pg_attribute "
                          "where attrelid = 'typmods'::regclass and attnum > 0 order by attnum").fetchall()
    for spec, (oid, typmod, formatted) in zip(specs, rows):
        t, tm = REGISTRY.parse_type_spec(spec)
        assert (spec, t.oid, tm, format_type(t, tm)) == (spec, oid, typmod, formatted)


_REALPG_SKIP = {"regproc", "regclass", "regtype", "void", "xml", "unknown", "cstring"}


@pytest.mark.realpg
@pytest.mark.parametrize("name", sorted(set(_SCALARS) - _REALPG_SKIP))
def test_realpg_random_values(pgconn, name):
    pg = _PG(pgconn)
    t = _type(name)
    spec = '"char"' if name == "char" else name
    arr = REGISTRY.array_of(t) if t.array_oid else None

    @settings(max_examples=max(5, _EXAMPLES * 2 // 5), deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(_SCALARS[name], st.booleans())
    def run(v, as_array):
        if as_array and arr is not None:
            tt, sp, v = arr, spec + "[]", [v, None]
        else:
            tt, sp = t, spec
        text = tt.encode_text(v).decode()
        ptext, phex = pg.out(sp, text)
        assert ptext == text
        assert phex == tt.encode_binary(v).hex()
        assert _eq_for(tt)(tt.decode_binary(bytes.fromhex(phex)), tt.coerce(v))

    run()
