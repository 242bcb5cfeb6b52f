"""Helpers shared by the codec tests: exact value comparison, stream building."""
import datetime
import math
import struct
from decimal import Decimal

from dumpcodec.values import PgArray, PgMultirange, PgRange, PgRecord

HEADER = b"PGCOPY\n\xff\r\n\x00" + b"\x00" * 8
TRAILER = b"\xff\xff"


def h(text: str) -> bytes:
    """Bytes from annotated hex: whitespace ignored, '#' starts a comment to end of line."""
    return bytes.fromhex("".join(line.split("#", 1)[0] for line in text.splitlines()))


def one_value_stream(field: bytes) -> bytes:
    """A COPY BINARY stream of one row with one non-NULL field."""
    return HEADER + b"\x00\x01" + struct.pack(">i", len(field)) + field + TRAILER


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
