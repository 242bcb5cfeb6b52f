"""The hstore extension type: dict[str, str | None] (its OID differs per database)."""
from __future__ import annotations

import functools
from typing import Dict, Optional

from .core import (ER_COUNT, ER_FIELD_COUNT, ER_MIN_SIZE, ER_TRAILING, _i4, _read_item,
                   _type_error, _unpack_i4)
from .text import _make_text

def _make_hstore(name: str, encoding: str = "utf-8", errors: str = "strict"):
    decode_text = functools.partial(str, encoding=encoding, errors=errors)

    def decode(b: bytes) -> Dict[str, Optional[str]]:
        n = len(b)
        if n < 4:
            raise ValueError(ER_MIN_SIZE.format(n=n, size=4))
        count = _unpack_i4(b)[0]
        if count < 0:
            raise ValueError(ER_FIELD_COUNT.format(n=count))
        if count * 8 > n - 4:
            raise ValueError(ER_COUNT.format(count=count, n=n - 4))
        p = 4
        out: Dict[str, Optional[str]] = {}
        for k in range(count):
            key, p = _read_item(b, p, n, f"key {k + 1}", decode_text, False)
            val, p = _read_item(b, p, n, f"value {k + 1}", decode_text, True)
            out[key] = val
        if p != n:
            raise ValueError(ER_TRAILING.format(n=n - p))
        return out

    text = _make_text(name, encoding, errors)

    def encode(v) -> bytes:
        if not isinstance(v, dict):
            raise _type_error("dict", name, v)
        parts = [_i4.pack(len(v))]
        for key, val in v.items():
            kb = text(key)
            parts.append(_i4.pack(len(kb)))
            parts.append(kb)
            if val is None:
                parts.append(b"\xff\xff\xff\xff")
            else:
                vb = text(val)
                parts.append(_i4.pack(len(vb)))
                parts.append(vb)
        return b"".join(parts)

    return decode, encode
