"""Arrays: nested lists (None for NULL, [] for empty), or values.PgArray when a
lower bound is not 1 or the has-nulls flag is set without NULLs."""
from __future__ import annotations

import struct
from typing import Any, List

from ...errors import EncodeError
from ..values import PgArray
from .core import (EE_EMPTY_SUB, EE_LOWER, EE_RAGGED, EE_RANGE, ER_ARRAY_FLAGS, ER_COUNT,
                   ER_DIM, ER_ELEM_OID, ER_ITEM, ER_ITEM_LENGTH, ER_ITEM_TRUNC,
                   ER_MIN_SIZE, ER_NDIM, ER_TRAILING, TypeInfo, _i4, _ii, _iiI, _type_error,
                   _unpack_i4)

def _make_array(elem: TypeInfo, name: str):
    edec = elem.decode
    eenc = elem.encode
    eoid = elem.oid
    unpack_i = _unpack_i4
    pack_i = _i4.pack
    null_word = b"\xff\xff\xff\xff"

    def decode(b: bytes):
        n = len(b)
        if n < 12:
            raise ValueError(ER_MIN_SIZE.format(n=n, size=12))
        ndim, flags, oid = _iiI.unpack_from(b, 0)
        if not 0 <= ndim <= 6:
            raise ValueError(ER_NDIM.format(ndim=ndim))
        if flags != 0 and flags != 1:
            raise ValueError(ER_ARRAY_FLAGS.format(flags=flags))
        if eoid and oid != eoid:
            raise ValueError(ER_ELEM_OID.format(oid=oid, expected=eoid))
        if ndim == 0:
            if n != 12:
                raise ValueError(ER_TRAILING.format(n=n - 12))
            return PgArray([], (), True) if flags else []
        p = 12 + 8 * ndim
        if n < p:
            raise ValueError(ER_MIN_SIZE.format(n=n, size=p))
        dims = []
        lower = []
        total = 1
        for i in range(ndim):
            d, lb = _ii.unpack_from(b, 12 + 8 * i)
            if d < 0:
                raise ValueError(ER_DIM.format(dim=i + 1, size=d))
            dims.append(d)
            lower.append(lb)
            total *= d
        # Each element takes at least its 4-byte length word: refuse counts the
        # data cannot hold before building anything.
        if total * 4 > n - p:
            raise ValueError(ER_COUNT.format(count=total, n=n - p))
        items = []
        add = items.append
        nulls = False
        for k in range(total):
            ln = unpack_i(b, p)[0]
            p += 4
            if ln < 0:
                if ln == -1:
                    add(None)
                    nulls = True
                    continue
                raise ValueError(ER_ITEM_LENGTH.format(item=f"element {k + 1}", n=ln))
            if ln > n - p:
                raise ValueError(ER_ITEM_TRUNC.format(item=f"element {k + 1}", n=ln,
                                                      left=n - p))
            try:
                add(edec(b[p:p + ln]))
            except (ValueError, struct.error) as exc:
                raise ValueError(ER_ITEM.format(item=f"element {k + 1}", reason=exc)) from None
            p += ln
            if k + 1 < total and p + 4 > n:
                raise ValueError(ER_ITEM_TRUNC.format(item=f"element {k + 2}", n=4,
                                                      left=n - p))
        if p != n:
            raise ValueError(ER_TRAILING.format(n=n - p))
        for d in reversed(dims[1:]):
            items = [items[i:i + d] for i in range(0, len(items), d)]
        odd_bounds = any(lb != 1 for lb in lower)
        if odd_bounds or (flags and not nulls):
            return PgArray(items, tuple(lower) if odd_bounds else (), flags and not nulls)
        return items

    def encode(v) -> bytes:
        lower = None
        hasnull = 0
        if isinstance(v, PgArray):
            lower = v.lower
            hasnull = 1 if v.hasnull else 0
            v = v.values
        elif not isinstance(v, list):
            raise _type_error("list", name, v)
        dims = []
        x = v
        while isinstance(x, list):
            dims.append(len(x))
            if not x:
                break
            x = x[0]
        if dims[-1] == 0:
            if len(dims) > 1:
                raise EncodeError(EE_EMPTY_SUB)
            if lower:
                raise EncodeError(EE_LOWER.format(n=len(lower), ndim=0))
            return _iiI.pack(0, hasnull, eoid)
        ndim = len(dims)
        if ndim > 6:
            raise EncodeError(EE_RANGE.format(value=f"{ndim} dimensions", name=name))
        if lower is None or not lower:
            lower = (1,) * ndim
        elif len(lower) != ndim:
            raise EncodeError(EE_LOWER.format(n=len(lower), ndim=ndim))
        flat: List[Any] = []
        if ndim == 1:
            flat = v
        else:
            last = ndim - 1

            def walk(x, depth):
                if not isinstance(x, list) or len(x) != dims[depth]:
                    raise EncodeError(EE_RAGGED)
                if depth == last:
                    for e in x:
                        if isinstance(e, list):
                            raise EncodeError(EE_RAGGED)
                    flat.extend(x)
                else:
                    for sub in x:
                        walk(sub, depth + 1)
            walk(v, 0)
        parts = []
        add = parts.append
        k = 0
        for e in flat:
            k += 1
            if e is None:
                hasnull = 1
                add(null_word)
                continue
            try:
                eb = eenc(e)
            except TypeError as exc:
                raise TypeError(ER_ITEM.format(item=f"element {k}", reason=exc)) from None
            except (ValueError, OverflowError, struct.error) as exc:
                raise EncodeError(ER_ITEM.format(item=f"element {k}", reason=exc)) from None
            add(pack_i(len(eb)))
            add(eb)
        head = [_iiI.pack(ndim, hasnull, eoid)]
        for d, lb in zip(dims, lower):
            try:
                head.append(_ii.pack(d, lb))
            except struct.error:
                raise EncodeError(EE_RANGE.format(value=f"lower bound {lb}", name=name)) from None
        return b"".join(head + parts)

    return decode, encode
