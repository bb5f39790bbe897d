"""fakepm.strategies: values for every registered type encode with the registry's codecs,
rows fit their columns, and streams/plans are well-formed where they should be."""

import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fakepm import strategies as pgst
from fakepm.answers.result import coerce_rows, make_columns

from fakepm.protocol.types import REGISTRY

NAMES = pgst.registered_type_names()
ROUND_TRIP = {"bool", "int2", "int4", "int8", "text", "bytea", "uuid", "date", "oid", "_int4", "_text", "jsonb"}


def test_covers_the_registry():
    for name in ("int4", "numeric", "timestamptz", "jsonb", "_int4", "inet", "interval", "bytea", "uuid"):
        assert name in NAMES
    assert len(NAMES) >= 60
    with pytest.raises(ValueError, match="no strategy for type 'record'"):
        pgst.values("record")


@pytest.mark.parametrize("name", NAMES)
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_values_encode_with_the_registry(name, data):
    t = REGISTRY.by_name(name)
    v = data.draw(pgst.values(t))
    c = t.coerce(v)
    text = t.encode_text(c)
    if t.has_binary:
        t.encode_binary(c)
    if name in ROUND_TRIP:
        assert t.decode_text(text) == c
    elif name in ("float8",) and not math.isnan(c):
        assert t.decode_text(text) == c


@settings(max_examples=50, deadline=None)
@given(rows=pgst.rows({"id": "int4", "name": "text", "tags": "_text", "at": "timestamptz"}, max_size=5))
def test_rows_fit_their_columns(rows):
    cols = make_columns({"id": "int4", "name": "text", "tags": "_text", "at": "timestamptz"})
    assert len(coerce_rows(cols, rows)) == len(rows)


@settings(max_examples=100, deadline=None)
@given(pgst.malformed_messages())
def test_malformed_messages_are_bytes_with_a_type_byte(data):
    assert isinstance(data, bytes) and len(data) >= 5


@settings(max_examples=100, deadline=None)
@given(pgst.frontend_messages())
def test_frontend_messages_are_framed(data):
    assert int.from_bytes(data[1:5], "big") == len(data) - 1


@settings(max_examples=50, deadline=None)
@given(pgst.backend_streams())
def test_backend_streams_are_bytes(data):
    assert isinstance(data, bytes)

