"""Helpers shared by the tests: exact value comparison, COPY BINARY stream building."""
import datetime
import math
import struct
from decimal import Decimal

from dumpcodec.copy.values import PgArray, PgMultirange, PgRange, PgRecord

SIG = b"PGCOPY\n\xff\r\n\x00"
#: signature, flags 0, extension length 0
HEADER = SIG + b"\x00" * 8
TRAILER = b"\xff\xff"


def h(text: str) -> bytes:
    """Bytes from annotated hex: whitespace ignored, '#' starts a comment to end of line."""
    return bytes.fromhex("".join(line.split("#", 1)[0] for line in text.splitlines()))


def tup(*fields) -> bytes:
    """One tuple: int16 field count, then per field int32 length + bytes (-1 for None)."""
    out = struct.pack(">h", len(fields))
    for f in fields:
        out += b"\xff\xff\xff\xff" if f is None else struct.pack(">i", len(f)) + f
    return out


def stream(*tuples, header: bytes = HEADER) -> bytes:
    """A whole COPY BINARY stream by hand: header, the tuples, trailer."""
    return header + b"".join(tuples) + TRAILER


def one_value_stream(field: bytes) -> bytes:
    """A COPY BINARY stream of one row with one non-NULL field."""
    return stream(tup(field))


def encoded_stream(rows, types=None, mod=None) -> bytes:
    """A whole COPY BINARY stream of ``rows`` from an Encoder of ``mod`` (default the
    switch, :mod:`dumpcodec.copy`); ``types=None`` is raw mode."""
    if mod is None:
        from dumpcodec import copy as mod
    enc = mod.Encoder(types)
    return enc.header() + enc.encode(rows) + enc.trailer()


def same(a, b) -> bool:
    """Equality that also sees what == forgives: Decimal scale, float sign and NaN,
    tz offsets, exact types."""
    if type(a) is not type(b):
        return False
    if isinstance(a, Decimal):
        return a.as_tuple() == b.as_tuple() or (a.is_nan() and b.is_nan())
    if isinstance(a, float):
        return struct.pack(">d", a) == struct.pack(">d", b) or (math.isnan(a) and math.isnan(b))
    if isinstance(a, (datetime.datetime, datetime.time)):
        return a == b and a.utcoffset() == b.utcoffset() and a.replace(tzinfo=None) == \
            b.replace(tzinfo=None)
    if isinstance(a, PgRecord):
        return a.oids == b.oids and all(same(x, y) for x, y in zip(a, b)) and len(a) == len(b)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    if isinstance(a, PgArray):
        return a.lower == b.lower and a.hasnull == b.hasnull and same(a.values, b.values)
    if isinstance(a, PgRange):
        return (a.empty, a.lower_inc, a.upper_inc) == (b.empty, b.lower_inc, b.upper_inc) \
            and same(a.lower, b.lower) and same(a.upper, b.upper)
    if isinstance(a, PgMultirange):
        return same(list(a.ranges), list(b.ranges))
    return a == b
