"""Composite types and anonymous records: values.PgRecord (a tuple remembering its
field type OIDs)."""
from __future__ import annotations

import struct
from typing import Optional, Protocol, Tuple

from ...errors import EncodeError
from ..values import PgRecord
from .core import (EE_RECORD_FIELDS, EE_RECORD_OIDS, EE_UNKNOWN_OID, ER_COUNT,
                   ER_FIELD_COUNT, ER_ITEM, ER_ITEM_TRUNC, ER_MIN_SIZE, ER_TRAILING,
                   TypeInfo, _i4, _read_item, _type_error, _u4, _unpack_i4)


class _FieldTypes(Protocol):
    """What a composite needs of its TypeRegistry: field types by OID.  (A protocol,
    so that this module need not import the registry, which imports it.)"""

    def lookup_oid(self, oid: int) -> Optional[TypeInfo]: ...


def _make_composite(registry: _FieldTypes, name: str,
                    fields: Tuple[Tuple[str, TypeInfo], ...]):
    def field_type(oid: int, k: int) -> Optional[TypeInfo]:
        if k < len(fields) and fields[k][1].oid == oid:
            return fields[k][1]
        return registry.lookup_oid(oid)

    def decode(b: bytes) -> PgRecord:
        n = len(b)
        if n < 4:
            raise ValueError(ER_MIN_SIZE.format(n=n, size=4))
        count = _unpack_i4(b)[0]
        if count < 0:
            raise ValueError(ER_FIELD_COUNT.format(n=count))
        if count * 8 > n - 4:
            raise ValueError(ER_COUNT.format(count=count, n=n - 4))
        p = 4
        values = []
        oids = []
        for k in range(count):
            if p + 4 > n:
                raise ValueError(ER_ITEM_TRUNC.format(item=f"field {k + 1}", n=4, left=n - p))
            oid = _u4.unpack_from(b, p)[0]
            ti = field_type(oid, k)
            dec = ti.decode if ti is not None else bytes
            v, p = _read_item(b, p + 4, n, f"field {k + 1}", dec, True)
            values.append(v)
            oids.append(oid)
        if p != n:
            raise ValueError(ER_TRAILING.format(n=n - p))
        return PgRecord(values, oids)

    def encode(v) -> bytes:
        if isinstance(v, PgRecord) and (v.oids or not v):
            oids = v.oids
            types = [field_type(oid, k) for k, oid in enumerate(oids)]
        elif isinstance(v, tuple):
            if not fields:
                raise TypeError(EE_RECORD_OIDS.format(name=name))
            if len(v) != len(fields):
                raise EncodeError(EE_RECORD_FIELDS.format(n=len(v), name=name,
                                                          nfields=len(fields)))
            types = [f[1] for f in fields]
            oids = [t.oid for t in types]
        else:
            raise _type_error("tuple", name, v)
        parts = [_i4.pack(len(v))]
        for k, (oid, ti, x) in enumerate(zip(oids, types, v), 1):
            parts.append(_u4.pack(oid))
            if x is None:
                parts.append(b"\xff\xff\xff\xff")
                continue
            item = f"field {k}"
            if ti is None:
                if not isinstance(x, bytes):
                    raise TypeError(ER_ITEM.format(item=item, reason=EE_UNKNOWN_OID.format(
                        oid=oid)))
                fb = x
            else:
                try:
                    fb = ti.encode(x)
                except TypeError as exc:
                    raise TypeError(ER_ITEM.format(item=item, reason=exc)) from None
                except (ValueError, OverflowError, struct.error) as exc:
                    raise EncodeError(ER_ITEM.format(item=item, reason=exc)) from None
            parts.append(_i4.pack(len(fb)))
            parts.append(fb)
        return b"".join(parts)

    return decode, encode
