"""uuid, bit and varbit (as str of '0' and '1'), tid."""
from __future__ import annotations

import re
import struct
import uuid as _uuid
from typing import Tuple

from ...errors import EncodeError
from .core import (EE_BIT_CHARS, EE_MAC, EE_RANGE, ER_BIT_LENGTH, ER_MIN_SIZE, ER_SIZE,
                   _Iih, _i4, _type_error, _unpack_i4)

__all__ = ["decode_uuid", "encode_uuid", "decode_bit", "encode_bit", "decode_tid",
           "encode_tid"]

_UUID = _uuid.UUID


def decode_uuid(b: bytes) -> _uuid.UUID:
    if len(b) != 16:
        raise ValueError(ER_SIZE.format(n=len(b), size=16))
    return _UUID(bytes=b)


def encode_uuid(v) -> bytes:
    if isinstance(v, _UUID):
        return v.bytes
    if isinstance(v, str):
        try:
            return _UUID(v).bytes
        except ValueError:
            raise EncodeError(EE_MAC.format(name="uuid", value=v)) from None
    raise _type_error("UUID", "uuid", v)


def decode_bit(b: bytes) -> str:
    n = len(b)
    if n < 4:
        raise ValueError(ER_MIN_SIZE.format(n=n, size=4))
    nbits = _unpack_i4(b)[0]
    if nbits < 0:
        raise ValueError(ER_BIT_LENGTH.format(n=nbits))
    nbytes = (nbits + 7) // 8
    if n != 4 + nbytes:
        raise ValueError(ER_SIZE.format(n=n, size=4 + nbytes))
    if not nbits:
        return ""
    return format(int.from_bytes(b[4:], "big"), f"0{nbytes * 8}b")[:nbits]


_BITS = re.compile(r"[01]*")


def _make_bit(name: str):
    def encode(v) -> bytes:
        if not isinstance(v, str):
            raise _type_error("str", name, v)
        if not _BITS.fullmatch(v):
            raise EncodeError(EE_BIT_CHARS.format(name=name))
        n = len(v)
        nbytes = (n + 7) // 8
        body = int(v + "0" * (nbytes * 8 - n), 2).to_bytes(nbytes, "big") if n else b""
        return _i4.pack(n) + body
    return encode


encode_bit = _make_bit("bit")


def decode_tid(b: bytes) -> Tuple[int, int]:
    if len(b) != 6:
        raise ValueError(ER_SIZE.format(n=len(b), size=6))
    return _Iih.unpack(b)


def encode_tid(v) -> bytes:
    if not isinstance(v, tuple) or len(v) != 2:
        raise _type_error("(block, offset) tuple", "tid", v)
    try:
        return _Iih.pack(*v)
    except struct.error:
        raise EncodeError(EE_RANGE.format(value=v, name="tid")) from None
