"""bool, the fixed-width integers (int2/4/8, oid-like, xid8, pg_lsn, money), floats,
numeric."""
from __future__ import annotations

import struct
from decimal import Decimal
from typing import List

from ...errors import EncodeError
from ..values import INT32_MAX, INT32_MIN, INT64_MAX, INT64_MIN
from .core import (EE_RANGE, ER_MIN_SIZE, ER_NUMERIC_DIGIT, ER_NUMERIC_DSCALE,
                   ER_NUMERIC_SIGN, ER_SIZE, _f4, _f8, _i2, _i4, _i8, _numhead, _size,
                   _type_error, _u4, _u8)

__all__ = ["decode_bool", "encode_bool", "decode_int2", "decode_int4", "decode_int8",
           "decode_uint4", "decode_uint8", "encode_int2", "encode_int4", "encode_int8",
           "decode_oid", "encode_oid", "decode_float4", "encode_float4", "decode_float8",
           "encode_float8", "decode_numeric", "encode_numeric"]

def decode_bool(b: bytes) -> bool:
    _size(b, 1)
    return b != b"\x00"


def encode_bool(v) -> bytes:
    if v is True:
        return b"\x01"
    if v is False:
        return b"\x00"
    raise _type_error("bool", "bool", v)


def _fixed_int(struct_: struct.Struct, size: int, lo: int, hi: int):
    unpack = struct_.unpack
    pack = struct_.pack

    def decode(b: bytes) -> int:
        if len(b) != size:
            raise ValueError(ER_SIZE.format(n=len(b), size=size))
        return unpack(b)[0]

    def make_encoder(name: str):
        def encode(v) -> bytes:
            if type(v) is not int:
                if isinstance(v, bool) or not isinstance(v, int):
                    # bool is an int, but True in an int column is almost always a bug
                    raise _type_error("int", name, v)
                v = int(v)
            if lo <= v <= hi:
                return pack(v)
            raise EncodeError(EE_RANGE.format(value=v, name=name))
        return encode
    return decode, make_encoder


decode_int2, _make_int2 = _fixed_int(_i2, 2, -2**15, 2**15 - 1)
decode_int4, _make_int4 = _fixed_int(_i4, 4, INT32_MIN, INT32_MAX)
decode_int8, _make_int8 = _fixed_int(_i8, 8, INT64_MIN, INT64_MAX)
decode_uint4, _make_uint4 = _fixed_int(_u4, 4, 0, 2**32 - 1)
decode_uint8, _make_uint8 = _fixed_int(_u8, 8, 0, 2**64 - 1)
encode_int2 = _make_int2("int2")
encode_int4 = _make_int4("int4")
encode_int8 = _make_int8("int8")
encode_oid = _make_uint4("oid")
decode_oid = decode_uint4


def _float_codec(struct_: struct.Struct, size: int, name: str):
    unpack = struct_.unpack
    pack = struct_.pack

    def decode(b: bytes) -> float:
        if len(b) != size:
            raise ValueError(ER_SIZE.format(n=len(b), size=size))
        return unpack(b)[0]

    def encode(v) -> bytes:
        if type(v) is not float:
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                raise _type_error("float", name, v)
            v = float(v)
        try:
            return pack(v)
        except (OverflowError, struct.error):
            raise EncodeError(EE_RANGE.format(value=v, name=name)) from None
    return decode, encode


decode_float4, encode_float4 = _float_codec(_f4, 4, "float4")
decode_float8, encode_float8 = _float_codec(_f8, 8, "float8")


# --- numeric ---------------------------------------------------------------

_NUMERIC_POS = 0x0000
_NUMERIC_NEG = 0x4000
_NUMERIC_NAN = 0xC000
_NUMERIC_PINF = 0xD000
_NUMERIC_NINF = 0xF000
_DEC_NAN = Decimal("NaN")
_DEC_PINF = Decimal("Infinity")
_DEC_NINF = Decimal("-Infinity")
_POW10 = [10 ** i for i in range(64)]


def _p10(n: int) -> int:
    return _POW10[n] if n < 64 else 10 ** n


def decode_numeric(b: bytes) -> Decimal:
    n = len(b)
    if n < 8:
        raise ValueError(ER_MIN_SIZE.format(n=n, size=8))
    ndigits, weight, sign, dscale = _numhead.unpack_from(b, 0)
    if n != 8 + 2 * ndigits:
        raise ValueError(ER_SIZE.format(n=n, size=8 + 2 * ndigits))
    if sign != _NUMERIC_POS and sign != _NUMERIC_NEG:
        if sign == _NUMERIC_NAN:
            return _DEC_NAN
        if sign == _NUMERIC_PINF:
            return _DEC_PINF
        if sign == _NUMERIC_NINF:
            return _DEC_NINF
        raise ValueError(ER_NUMERIC_SIGN.format(sign=sign))
    if dscale > 0x3FFF:
        raise ValueError(ER_NUMERIC_DSCALE.format(d=dscale))
    coeff = 0
    if ndigits:
        digits = struct.unpack_from(f">{ndigits}H", b, 8)
        for d in digits:
            if d >= 10000:
                raise ValueError(ER_NUMERIC_DIGIT.format(d=d))
            coeff = coeff * 10000 + d
        # value = coeff * 10000 ** (weight - ndigits + 1); we want exponent -dscale.
        exp10 = 4 * (weight - ndigits + 1)
        if exp10 >= -dscale:
            coeff *= _p10(exp10 + dscale)
        else:
            # Digits beyond dscale: the server truncates them on input; so do we.
            coeff //= _p10(-dscale - exp10)
    neg = "-" if sign == _NUMERIC_NEG and coeff else ""
    return Decimal(f"{neg}{coeff}E-{dscale}")


def encode_numeric(v) -> bytes:
    if not isinstance(v, Decimal):
        if isinstance(v, int) and not isinstance(v, bool):
            v = Decimal(v)
        else:
            raise _type_error("Decimal", "numeric", v)
    sign, digits, exp = v.as_tuple()
    if not isinstance(exp, int):
        if exp == "F":
            # The server sends dscale 32 with infinities (bits of its short header
            # read as a dscale); we write the same so its bytes round-trip.
            return _numhead.pack(0, 0, _NUMERIC_NINF if sign else _NUMERIC_PINF, 32)
        if exp == "n":
            return _numhead.pack(0, 0, _NUMERIC_NAN, 0)
        raise EncodeError(EE_RANGE.format(value=v, name="numeric"))  # sNaN
    dscale = -exp if exp < 0 else 0
    if dscale > 0x3FFF:
        raise EncodeError(EE_RANGE.format(value=v, name="numeric"))
    coeff = int("".join(map(str, digits))) if digits else 0
    if not coeff:
        return _numhead.pack(0, 0, _NUMERIC_POS, dscale)
    # Align the exponent on a base-10000 boundary: value = N * 10000 ** e4.
    e4 = exp // 4
    coeff *= _p10(exp - 4 * e4)
    groups: List[int] = []
    while coeff:
        coeff, g = divmod(coeff, 10000)
        groups.append(g)
    # Strip trailing zero groups (the low end) as the server does.
    i = 0
    while groups[i] == 0:
        i += 1
    e4 += i
    groups = groups[i:]
    groups.reverse()
    ndigits = len(groups)
    weight = e4 + ndigits - 1
    if ndigits > 0xFFFF or not -0x8000 <= weight <= 0x7FFF:
        raise EncodeError(EE_RANGE.format(value=v, name="numeric"))
    return (_numhead.pack(ndigits, weight, _NUMERIC_NEG if sign else _NUMERIC_POS, dscale)
            + struct.pack(f">{ndigits}H", *groups))
