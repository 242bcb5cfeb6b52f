"""Ranges and multiranges (values.PgRange, values.PgMultirange), over any subtype."""
from __future__ import annotations

import struct

from ...errors import EncodeError
from ..values import PgMultirange, PgRange
from .core import (ER_COUNT, ER_FIELD_COUNT, ER_ITEM, ER_MIN_SIZE, ER_RANGE_FLAGS,
                   ER_TRAILING, TypeInfo, _i4, _read_item, _type_error, _unpack_i4)

_RANGE_EMPTY = 0x01
_RANGE_LB_INC = 0x02
_RANGE_UB_INC = 0x04
_RANGE_LB_INF = 0x08
_RANGE_UB_INF = 0x10


def _make_range(sub: TypeInfo, name: str):
    sdec = sub.decode
    senc = sub.encode

    def decode(b: bytes) -> PgRange:
        n = len(b)
        if n < 1:
            raise ValueError(ER_MIN_SIZE.format(n=n, size=1))
        flags = b[0]
        if flags & ~0x1F:
            raise ValueError(ER_RANGE_FLAGS.format(flags=flags))
        if flags & _RANGE_EMPTY:
            if n != 1:
                raise ValueError(ER_TRAILING.format(n=n - 1))
            return PgRange.EMPTY
        p = 1
        lower = upper = None
        if not flags & _RANGE_LB_INF:
            lower, p = _read_item(b, p, n, "lower bound", sdec, False)
        if not flags & _RANGE_UB_INF:
            upper, p = _read_item(b, p, n, "upper bound", sdec, False)
        if p != n:
            raise ValueError(ER_TRAILING.format(n=n - p))
        return PgRange(lower, upper, bool(flags & _RANGE_LB_INC), bool(flags & _RANGE_UB_INC))

    def bound(v, which: str) -> bytes:
        try:
            bb = senc(v)
        except TypeError as exc:
            raise TypeError(ER_ITEM.format(item=which, reason=exc)) from None
        except (ValueError, OverflowError, struct.error) as exc:
            raise EncodeError(ER_ITEM.format(item=which, reason=exc)) from None
        return _i4.pack(len(bb)) + bb

    def encode(v) -> bytes:
        if not isinstance(v, PgRange):
            raise _type_error("PgRange", name, v)
        if v.empty:
            return b"\x01"
        flags = 0
        parts = []
        if v.lower is None:
            flags |= _RANGE_LB_INF
        else:
            if v.lower_inc:
                flags |= _RANGE_LB_INC
            parts.append(bound(v.lower, "lower bound"))
        if v.upper is None:
            flags |= _RANGE_UB_INF
        else:
            if v.upper_inc:
                flags |= _RANGE_UB_INC
            parts.append(bound(v.upper, "upper bound"))
        return bytes((flags,)) + b"".join(parts)

    return decode, encode


def _make_multirange(rng: TypeInfo, name: str):
    rdec = rng.decode
    renc = rng.encode

    def decode(b: bytes) -> PgMultirange:
        n = len(b)
        if n < 4:
            raise ValueError(ER_MIN_SIZE.format(n=n, size=4))
        count = _unpack_i4(b)[0]
        if count < 0:
            raise ValueError(ER_FIELD_COUNT.format(n=count))
        if count * 4 > n - 4:
            raise ValueError(ER_COUNT.format(count=count, n=n - 4))
        p = 4
        out = []
        for k in range(count):
            r, p = _read_item(b, p, n, f"range {k + 1}", rdec, False)
            out.append(r)
        if p != n:
            raise ValueError(ER_TRAILING.format(n=n - p))
        return PgMultirange(out)

    def encode(v) -> bytes:
        if isinstance(v, PgMultirange):
            ranges = v.ranges
        elif isinstance(v, (list, tuple)):
            ranges = v
        else:
            raise _type_error("PgMultirange", name, v)
        parts = [_i4.pack(len(ranges))]
        for k, r in enumerate(ranges, 1):
            try:
                rb = renc(r)
            except TypeError as exc:
                raise TypeError(ER_ITEM.format(item=f"range {k}", reason=exc)) from None
            except (ValueError, OverflowError, struct.error) as exc:
                raise EncodeError(ER_ITEM.format(item=f"range {k}", reason=exc)) from None
            parts.append(_i4.pack(len(rb)))
            parts.append(rb)
        return b"".join(parts)

    return decode, encode
