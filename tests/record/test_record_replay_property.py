"""Property: whatever a real PostgreSQL 15 answers, recorded through `fakepm record` and replayed by
`fakepm serve` of the file, the client gets the same bytes (RowDescription, DataRows, tags, errors,
notices, ParameterStatus), in the simple and the extended protocol, text and binary results, under
any DateStyle / IntervalStyle / bytea_output / extra_float_digits."""

from __future__ import annotations

import datetime as dt
import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fakepm import FakePostgres
from fakepm.protocol import messages as m
from fakepm.proxy.record import Recording
from fakepm.proxy.upstream import Upstream, UpstreamURL

pytestmark = pytest.mark.realpg

TYPES = {
    "int2": st.integers(-40000, 40000).map(str),
    "int8": st.integers(-2**63, 2**63 - 1).map(str),
    "float8": st.floats(allow_nan=True).map(repr).map(lambda s: s.replace("inf", "Infinity")),
    "numeric": st.decimals(allow_nan=False, allow_infinity=False, places=4).map(str),
    "text": st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=20),
    "date": st.dates().map(lambda d: d.isoformat()) | st.sampled_from(["4713-01-01 BC", "10000-01-01", "infinity"]),
    "timestamptz": st.datetimes(timezones=st.just(dt.timezone.utc)).map(lambda d: d.isoformat()),
    "time": st.sampled_from(["24:00", "00:00:00.5", "13:14:15"]),
    "interval": st.sampled_from(["1 day 2 hours", "-3 mons", "P1Y2M3DT4H5M6S", "1 year -1 second"]),
    "bytea": st.binary(max_size=12).map(lambda b: "\\x" + b.hex()),
    "int4[]": st.lists(st.integers(-5, 5), max_size=4).map(lambda v: "{" + ",".join(map(str, v)) + "}"),
    "jsonb": st.sampled_from(['{"a": [1, 2]}', "[]", '"x"', "{bad"]),
    "bool": st.sampled_from(["t", "no", "maybe"]),
}
SETTINGS = st.sampled_from([
    "SET DateStyle = 'ISO, MDY'", "SET DateStyle = 'German'", "SET DateStyle = 'SQL, DMY'",
    "SET DateStyle = 'Postgres'", "SET IntervalStyle = 'sql_standard'", "SET IntervalStyle = 'iso_8601'",
    "SET bytea_output = 'escape'", "SET extra_float_digits = 0", "SET TimeZone = 'Asia/Kolkata'",
])
STEP = st.one_of(
    st.tuples(st.just("set"), SETTINGS),
    st.sampled_from(sorted(TYPES)).flatmap(
        lambda t: st.tuples(st.sampled_from(["simple", "ext-text", "ext-binary"]), st.just(t), TYPES[t])),
)


def _literal(v: str) -> str:
    return "'" + v.replace("'", "''") + "'"


def _run(port: int, steps) -> list[bytes]:
    """Each step's reply, as the bytes the client received (up to and including ReadyForQuery)."""
    up = Upstream(UpstreamURL(host="127.0.0.1", port=port, user="postgres", database="postgres")).connect()
    out = []
    try:
        for step in steps:
            if step[0] == "set":
                up.send(m.Query(step[1]))
            elif step[0] == "simple":
                up.send(m.Query(f"SELECT {_literal(step[2])}::{step[1]} AS v, 1 AS n"))
            else:
                fmt = 1 if step[0] == "ext-binary" else 0
                up.send(m.Parse("", f"SELECT $1::{step[1]} AS v, $1 AS raw", ()), m.Describe("S", ""),
                        m.Bind("", "", (0,), (step[2].encode(),), (fmt, 0)), m.Describe("P", ""),
                        m.Execute("", 0), m.Sync())
            got = b""
            while True:
                t, body = up.read_frame()
                got += t + struct.pack("!i", len(body) + 4) + body
                if t == b"Z":
                    break
            out.append(got)
    finally:
        up.close()
    return out


@pytest.fixture(scope="module")
def pg15(real_pg):
    return real_pg


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=st.lists(STEP, min_size=1, max_size=6))
def test_replay_gives_the_client_the_recorded_bytes(pg15, tmp_path_factory, steps):
    out = tmp_path_factory.mktemp("prop") / "rec.yaml"
    with Recording(f"postgresql://postgres@127.0.0.1:{pg15.port}/postgres", out) as rec:
        recorded = _run(rec.proxy.port, steps)
    with FakePostgres(scenario=out) as fake:
        replayed = _run(fake.port, steps)
        assert not fake.problems()
    assert replayed == recorded
