"""Hypothesis strategies for codec values: one strategy per type, canonical values.

Canonical means: what our decoder gives back for that value's bytes (Decimal with
exponent <= 0, UTC timestamptz, stand-ins only outside Python's ranges, ...), so
that ``decode(encode(v))`` is ``v`` exactly.  ``SERVER`` strategies are also what the
server stores unchanged (canonical discrete ranges, normalized jsonb text, ...).
"""
import datetime as dt
import ipaddress
import json
from decimal import Decimal

from hypothesis import strategies as st

from dumpcodec.values import (PgArray, PgDate, PgInterval, PgMultirange, PgRange,
                              PgRecord, PgTime, PgTimestamp)

UTC = dt.timezone.utc
_US_DAY = 86_400_000_000
_MIN_TS = -63082281600000000          # 0001-01-01 00:00
_MAX_TS = 252455615999999999          # 9999-12-31 23:59:59.999999
PG_MIN_TS = -211813488000000000       # 4714-11-24 00:00 BC
PG_MAX_TS = 9223371331199999999       # 294276-12-31 23:59:59.999999


def nullable(s):
    return st.one_of(st.none(), s, s)


def int_range(bits):
    return st.integers(-2 ** (bits - 1), 2 ** (bits - 1) - 1)


TEXT = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
               max_size=12)
DECIMAL_FINITE = st.builds(lambda c, s: Decimal(f"{c}E-{s}"),
                           st.integers(-10 ** 25, 10 ** 25), st.integers(0, 20))
DECIMAL = st.one_of(DECIMAL_FINITE, DECIMAL_FINITE,
                    st.sampled_from([Decimal("NaN"), Decimal("Infinity"),
                                     Decimal("-Infinity")]))
DATE = st.one_of(
    st.dates(), st.dates(),
    st.builds(PgDate, st.integers(-2451545, -730120) | st.integers(2921940, 2145031948)),
    st.sampled_from([PgDate.INFINITY, PgDate.NEG_INFINITY]))
_PG_TS = st.one_of(
    st.builds(PgTimestamp, st.integers(PG_MIN_TS, _MIN_TS - 1)
              | st.integers(_MAX_TS + 1, PG_MAX_TS)),
    st.sampled_from([PgTimestamp.INFINITY, PgTimestamp.NEG_INFINITY]))
TIMESTAMP = st.one_of(st.datetimes(), st.datetimes(), _PG_TS)
TIMESTAMPTZ = st.one_of(st.datetimes(timezones=st.just(UTC)), st.datetimes(
    timezones=st.just(UTC)), _PG_TS)
TIME = st.one_of(st.times(), st.times(), st.just(PgTime(_US_DAY)))
_OFFSET = st.integers(-57599, 57599)
TIMETZ = st.one_of(
    st.builds(lambda t, off: t.replace(tzinfo=dt.timezone(dt.timedelta(seconds=off))),
              st.times(), _OFFSET),
    st.builds(lambda off: PgTime(_US_DAY, off), _OFFSET))
INTERVAL = st.one_of(
    st.timedeltas(min_value=dt.timedelta(microseconds=-2 ** 63 + 1),
                  max_value=dt.timedelta(microseconds=2 ** 63 - 1)),
    st.builds(PgInterval, st.integers(-10 ** 6, 10 ** 6), st.integers(-10 ** 6, 10 ** 6),
              int_range(64)).filter(lambda i: i.months or i.days))
INET = st.one_of(
    st.builds(lambda a, p: ipaddress.IPv4Interface(f"{a}/{p}"),
              st.ip_addresses(v=4), st.integers(0, 32)),
    st.builds(lambda a, p: ipaddress.IPv6Interface(f"{a}/{p}"),
              st.ip_addresses(v=6), st.integers(0, 128)))
CIDR = st.one_of(
    st.builds(lambda a, p: ipaddress.IPv4Network(f"{a}/{p}", strict=False),
              st.ip_addresses(v=4), st.integers(0, 32)),
    st.builds(lambda a, p: ipaddress.IPv6Network(f"{a}/{p}", strict=False),
              st.ip_addresses(v=6), st.integers(0, 128)))
JSON_TEXT = st.lists(st.integers(-1000, 1000), max_size=4).map(json.dumps)


def array_of(elem, canonical_bounds=False):
    one = st.lists(nullable(elem), max_size=5)
    two = st.integers(1, 3).flatmap(lambda n: st.lists(
        st.lists(nullable(elem), min_size=n, max_size=n), min_size=1, max_size=3))
    bounded = st.builds(PgArray, st.lists(nullable(elem), min_size=1, max_size=4),
                        st.tuples(st.integers(-5, 5)).filter(lambda t: t != (1,)))
    # has-nulls flag set without NULLs (an array whose NULLs were updated away)
    flagged = st.builds(lambda v, lower: PgArray(v, lower if v else (), True),
                        st.lists(elem, max_size=3), st.sampled_from([(), (0,)]))
    return st.one_of(one, one, two, bounded, flagged)


def _sorted_pair(s):
    return st.tuples(s, s).filter(lambda p: p[0] < p[1])


def discrete_range(s):
    """Ranges as the server stores them for a discrete subtype: [a,b) or unbounded."""
    return st.one_of(
        st.builds(lambda p: PgRange(p[0], p[1]), _sorted_pair(s)),
        st.builds(lambda b: PgRange(None, b), s),
        st.builds(lambda a: PgRange(a, None), s),
        st.just(PgRange(None, None)), st.just(PgRange.EMPTY))


def continuous_range(s):
    return st.one_of(
        st.builds(lambda p, li, ui: PgRange(p[0], p[1], li, ui), _sorted_pair(s),
                  st.booleans(), st.booleans()),
        st.builds(lambda b, ui: PgRange(None, b, False, ui), s, st.booleans()),
        st.just(PgRange.EMPTY))


def any_range(s):
    """Any flags at all (codec to codec)."""
    return st.one_of(
        st.builds(PgRange, nullable(s), nullable(s), st.booleans(), st.booleans()),
        st.just(PgRange.EMPTY))


INT4MULTI = st.lists(st.integers(-1000, 1000), max_size=6, unique=True).map(
    lambda xs: sorted(xs)[: len(xs) // 2 * 2]).map(
    lambda xs: PgMultirange([PgRange(xs[i], xs[i + 1]) for i in range(0, len(xs), 2)]))

# Types the server stores exactly as we send them (for the server round trip).
SERVER = {
    "bool": st.booleans(),
    "int2": int_range(16),
    "int4": int_range(32),
    "int8": int_range(64),
    "float4": st.floats(width=32),
    "float8": st.floats(),
    "numeric": DECIMAL,
    "text": TEXT,
    "varchar": TEXT,
    "bytea": st.binary(max_size=20),
    "date": DATE,
    "timestamp": TIMESTAMP,
    "timestamptz": TIMESTAMPTZ,
    "time": TIME,
    "timetz": TIMETZ,
    "interval": INTERVAL,
    "uuid": st.uuids(),
    "json": TEXT.map(json.dumps),
    "jsonb": JSON_TEXT,
    "inet": INET,
    "cidr": CIDR,
    "macaddr": st.binary(min_size=6, max_size=6).map(lambda b: b.hex(":")),
    "varbit": st.text("01", max_size=20),
    "money": int_range(64),
    "int4[]": array_of(int_range(32)),
    "int8[]": array_of(int_range(64)),
    "text[]": array_of(TEXT),
    "numeric[]": array_of(DECIMAL),
    "date[]": array_of(DATE),
    "timestamptz[]": array_of(TIMESTAMPTZ),
    "int4range": discrete_range(int_range(32)),
    "daterange": discrete_range(st.dates()),
    "numrange": continuous_range(DECIMAL_FINITE),
    "tstzrange": continuous_range(st.datetimes(timezones=st.just(UTC))),
    "int4multirange": INT4MULTI,
}
SERVER_TYPES = list(SERVER)

# Everything the codec handles, codec to codec (not all of it is a valid server value).
ALL = dict(SERVER)
ALL.update({
    "oid": st.integers(0, 2 ** 32 - 1),
    "xid8": st.integers(0, 2 ** 64 - 1),
    "pg_lsn": st.integers(0, 2 ** 64 - 1),
    '"char"': st.one_of(st.just(""), st.characters(min_codepoint=1, max_codepoint=255)),
    "name": TEXT,
    "bpchar": TEXT,
    "xml": TEXT,
    "jsonb": TEXT,
    "jsonpath": TEXT,
    "macaddr8": st.binary(min_size=8, max_size=8).map(lambda b: b.hex(":")),
    "bit": st.text("01", max_size=20),
    "tid": st.tuples(st.integers(0, 2 ** 32 - 1), st.integers(0, 2 ** 16 - 1)),
    "interval": st.one_of(INTERVAL, st.builds(PgInterval, int_range(32), int_range(32),
                                              int_range(64)).filter(
        lambda i: i.months or i.days)),
    "int4range": any_range(int_range(32)),
    "numrange": any_range(DECIMAL),
    "tsrange": any_range(TIMESTAMP),
    "int8multirange": st.lists(any_range(int_range(64)), max_size=3).map(PgMultirange),
    "int4range[]": array_of(any_range(int_range(32))),
    "bool[]": array_of(st.booleans()),
    "uuid[]": array_of(st.uuids()),
    "float8[]": array_of(st.floats()),
    "interval[]": array_of(INTERVAL),
    "bytea[]": array_of(st.binary(max_size=5)),
    "record": st.lists(st.sampled_from([("int4", 23), ("text", 25), ("numeric", 1700),
                                        ("date", 1082)]), max_size=4).flatmap(
        lambda fields: st.tuples(*[nullable(ALL[f]) for f, _ in fields]).map(
            lambda vals, fields=fields: PgRecord(vals, [oid for _, oid in fields]))),
    "point": st.binary(min_size=16, max_size=16),
})
ALL_TYPES = list(ALL)


@st.composite
def server_rows(draw):
    return draw(st.lists(st.tuples(*[nullable(SERVER[t]) for t in SERVER_TYPES]),
                         max_size=4))


def server_normal(typ, value):
    """The value the server gives back for ``value``: our strategies generate stored
    forms, except that the server drops a has-nulls flag without NULLs on input."""
    if isinstance(value, PgArray) and value.hasnull:
        return PgArray(value.values, value.lower) if value.lower else value.values
    return value


@st.composite
def typed_rows(draw, max_cols=6, max_rows=8):
    """(types, rows) with random column types and values."""
    types = draw(st.lists(st.sampled_from(ALL_TYPES), min_size=1, max_size=max_cols))
    rows = draw(st.lists(st.tuples(*[nullable(ALL[t]) for t in types]), max_size=max_rows))
    return types, rows


@st.composite
def cuts(draw, size):
    """Sorted split offsets into a buffer of ``size`` bytes."""
    return sorted(draw(st.lists(st.integers(0, size), max_size=8)))


def split(data, offsets):
    pieces, last = [], 0
    for off in offsets:
        pieces.append(data[last:off])
        last = off
    pieces.append(data[last:])
    return pieces
