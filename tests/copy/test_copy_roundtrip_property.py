"""Property: random typed rows written by psycopg 3 through COPY, in text, csv and binary, come
out of `pg.copies` equal to what was sent (values typed by the declared table)."""

import datetime as dt
import os

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fakepm import FakePostgres

UTC = dt.timezone.utc

COLUMNS = {"i4": "int4", "i8": "int8", "t": "text", "ok": "bool", "f": "float8", "n": "numeric",
           "ts": "timestamptz", "d": "date", "b": "bytea", "u": "uuid"}

_text = st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=30)
_values = [
    st.integers(-2**31, 2**31 - 1),
    st.integers(-2**63, 2**63 - 1),
    _text,
    st.booleans(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.decimals(allow_nan=False, allow_infinity=False, places=4, min_value=-10**12, max_value=10**12),
    st.datetimes(min_value=dt.datetime(1000, 1, 1), max_value=dt.datetime(9999, 12, 31)).map(
        lambda d: d.replace(tzinfo=UTC)),
    st.dates(min_value=dt.date(1000, 1, 1)),
    st.binary(max_size=20),
    st.uuids(),
]
ROW = st.tuples(*[st.none() | v for v in _values])
ROWS = st.lists(ROW, max_size=8)


@pytest.fixture(scope="module")
def conn():
    with FakePostgres() as pg:
        pg.table("r", COLUMNS)
        with psycopg.connect(pg.dsn, autocommit=True) as c:
            c.fake = pg
            yield c


def _plain_text(v) -> str:
    """PostgreSQL input text for a value, written independently of fakepm's encoders."""
    if isinstance(v, bool):
        return "t" if v else "f"
    if isinstance(v, float):
        return repr(v)
    if isinstance(v, bytes):
        return "\\x" + v.hex()
    if isinstance(v, (dt.datetime, dt.date)):
        return v.isoformat()
    return str(v)


SETTINGS = settings(max_examples=int(os.environ.get("FAKEPM_COPY_EXAMPLES", "25")), deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(rows=ROWS)
def test_text_round_trip(conn, rows):
    with conn.cursor().copy("COPY r FROM STDIN") as cp:
        for r in rows:
            cp.write_row(r)
    assert conn.fake.copies[-1].rows == rows


@SETTINGS
@given(rows=ROWS)
def test_binary_round_trip(conn, rows):
    with conn.cursor().copy("COPY r FROM STDIN (FORMAT binary)") as cp:
        cp.set_types(list(COLUMNS.values()))
        for r in rows:
            cp.write_row(r)
    assert conn.fake.copies[-1].rows == rows


@SETTINGS
@given(rows=ROWS, delimiter=st.sampled_from([",", ";", "|", "\t"]))
def test_csv_round_trip(conn, rows, delimiter):
    data = _csv(rows, delimiter).encode()
    with conn.cursor().copy(f"COPY r FROM STDIN (FORMAT csv, DELIMITER '{delimiter}')") as cp:
        for i in range(0, len(data), 7):  # small, arbitrary chunks
            cp.write(data[i:i + 7])
    assert conn.fake.copies[-1].rows == rows


def _csv(rows, delimiter: str) -> str:
    """NULL is an unquoted empty field; every value is quoted (so '' stays an empty string and
    quotes, delimiters and newlines inside values are data)."""
    lines = []
    for r in rows:
        fields = ["" if v is None else '"' + _plain_text(v).replace('"', '""') + '"' for v in r]
        lines.append(delimiter.join(fields) + "\n")
    return "".join(lines)
