"""What every type codec shares: codec ids, message texts, structs, TypeInfo.

A decode function takes the field's bytes and returns the value or raises
ValueError(reason); an encode function takes a value and returns the bytes or raises
TypeError / EncodeError with the whole text (see the MESSAGES block).  Names with a
leading underscore here are private to the ``dumpcodec.copy.types`` package: the
family modules beside this one import them.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any, Callable, Optional, Tuple

__all__ = ["TypeInfo", "CODECS",
           "CODEC_RAW", "CODEC_PY", "CODEC_BOOL", "CODEC_INT2", "CODEC_INT4", "CODEC_INT8",
           "CODEC_FLOAT4", "CODEC_FLOAT8", "CODEC_TEXT", "CODEC_BYTEA", "CODEC_DATE",
           "CODEC_TIMESTAMP", "CODEC_TIMESTAMPTZ", "CODEC_NUMERIC", "CODEC_UUID",
           "CODEC_JSONB", "CODEC_ARRAY", "CODEC_OID",
           "EV_VALUE", "ER_SIZE", "ER_MIN_SIZE", "ER_TRAILING", "ER_JSONB_VERSION",
           "ER_NUMERIC_SIGN", "ER_NUMERIC_DIGIT", "ER_NUMERIC_DSCALE", "ER_NDIM",
           "ER_ARRAY_FLAGS", "ER_ELEM_OID", "ER_DIM", "ER_COUNT", "ER_ITEM_LENGTH",
           "ER_ITEM_TRUNC", "ER_ITEM", "ER_RANGE_FLAGS", "ER_FAMILY", "ER_BITS",
           "ER_ADDR_LEN", "ER_BIT_LENGTH", "ER_FIELD_COUNT",
           "EE_TYPE", "EE_RANGE", "EE_NUL", "EE_NAIVE", "EE_AWARE", "EE_NO_OFFSET",
           "EE_BIT_CHARS", "EE_MAC", "EE_CHAR", "EE_RAGGED", "EE_EMPTY_SUB", "EE_LOWER",
           "EE_LABEL", "EE_RECORD_FIELDS", "EE_RECORD_OIDS", "EE_UNKNOWN_OID"]

# ---------------------------------------------------------------------------
# Codec ids: what the C core switches on.  CODEC_PY means "call TypeInfo.decode /
# TypeInfo.encode"; CODEC_RAW means bytes passthrough.
# ---------------------------------------------------------------------------
CODEC_RAW = 0
CODEC_PY = 1
CODEC_BOOL = 2
CODEC_INT2 = 3
CODEC_INT4 = 4
CODEC_INT8 = 5
CODEC_FLOAT4 = 6
CODEC_FLOAT8 = 7
CODEC_TEXT = 8          # text, varchar, bpchar, name, json, xml, unlabelled enums
CODEC_BYTEA = 9
CODEC_DATE = 10
CODEC_TIMESTAMP = 11
CODEC_TIMESTAMPTZ = 12
CODEC_NUMERIC = 13
CODEC_UUID = 14
CODEC_JSONB = 15        # jsonb, jsonpath: version byte 1, then the text
CODEC_ARRAY = 16        # element type in TypeInfo.element
CODEC_OID = 17          # uint32: oid, xid, cid, reg*
CODECS = {name[6:].lower(): value for name, value in globals().items()
          if name.startswith("CODEC_")}

# ---------------------------------------------------------------------------
# MESSAGES (the C core copies these for its hot types)
# ---------------------------------------------------------------------------
# decode: the decoder formats EV_VALUE with the TypeInfo's name and the reason
EV_VALUE = "invalid {name} value: {reason}"
ER_SIZE = "{n} bytes, expected {size}"
ER_MIN_SIZE = "{n} bytes, expected at least {size}"
ER_TRAILING = "{n} bytes of trailing data"
ER_JSONB_VERSION = "unsupported version {v}"
ER_NUMERIC_SIGN = "invalid sign 0x{sign:04x}"
ER_NUMERIC_DIGIT = "digit {d} out of range"
ER_NUMERIC_DSCALE = "dscale {d} out of range"
ER_NDIM = "{ndim} dimensions, expected 0 to 6"
ER_ARRAY_FLAGS = "invalid has-nulls flag {flags}"
ER_ELEM_OID = "element type OID {oid}, expected {expected}"
ER_DIM = "dimension {dim} has invalid size {size}"
ER_COUNT = "{count} items cannot fit in {n} bytes"
ER_ITEM_LENGTH = "{item}: invalid length {n}"
ER_ITEM_TRUNC = "{item}: length {n} exceeds the {left} bytes left"
ER_ITEM = "{item}: {reason}"
ER_RANGE_FLAGS = "invalid range flags 0x{flags:02x}"
ER_FAMILY = "invalid address family {family}"
ER_BITS = "invalid prefix length {bits}"
ER_ADDR_LEN = "invalid address length {nb}"
ER_BIT_LENGTH = "invalid bit length {n}"
ER_FIELD_COUNT = "invalid field count {n}"
# encode: whole texts
EE_TYPE = "expected {expected} for {name}, not {tname}"
EE_RANGE = "{value} out of range for {name}"
EE_NUL = "NUL character in {name} value"
EE_NAIVE = "naive {what} for {name} (give it a tzinfo)"
EE_AWARE = "aware {what} for {name} (which has no time zone)"
EE_NO_OFFSET = "{name} needs a fixed UTC offset in whole seconds"
EE_BIT_CHARS = "{name} value may contain only 0 and 1"
EE_MAC = "invalid {name} value {value!r}"
EE_CHAR = '"char" value must be one Latin-1 character or empty, not {value!r}'
EE_RAGGED = "multidimensional array is not rectangular"
EE_EMPTY_SUB = "multidimensional array has an empty sub-array"
EE_LOWER = "{n} lower bounds for {ndim} dimensions"
EE_LABEL = "invalid label {value!r} for enum {name}"
EE_RECORD_FIELDS = "{n} values for {name}, which has {nfields} fields"
EE_RECORD_OIDS = "record value needs field type OIDs (a PgRecord) for {name}"
EE_UNKNOWN_OID = "no codec for field type OID {oid}"

_i2 = struct.Struct(">h")
_i4 = struct.Struct(">i")
_u4 = struct.Struct(">I")
_i8 = struct.Struct(">q")
_u8 = struct.Struct(">Q")
_f4 = struct.Struct(">f")
_f8 = struct.Struct(">d")
_u2 = struct.Struct(">H")
_iiI = struct.Struct(">iiI")
_ii = struct.Struct(">ii")
_qi = struct.Struct(">qi")
_qii = struct.Struct(">qii")
_Iih = struct.Struct(">IH")
_numhead = struct.Struct(">HhHH")
_Ii = struct.Struct(">Ii")
_unpack_i4 = _i4.unpack_from


def _tname(v) -> str:
    return type(v).__name__


def _size(b, size: int) -> None:
    if len(b) != size:
        raise ValueError(ER_SIZE.format(n=len(b), size=size))


def _type_error(expected: str, name: str, v) -> TypeError:
    return TypeError(EE_TYPE.format(expected=expected, name=name, tname=_tname(v)))


# ---------------------------------------------------------------------------
# TypeInfo
# ---------------------------------------------------------------------------

@dataclass(frozen=True, eq=False)
class TypeInfo:
    """A resolved column type: everything both codecs need, computed once.

    ``kind``: "base", "array", "range", "multirange", "enum", "composite",
    "domain", "hstore" or "raw".  ``codec``: one of the CODEC_* ids.  ``size``: the
    fixed wire size or -1.  ``struct``: for types whose value is one struct item
    (ints, floats, oid, money, pg_lsn), the Struct (the decoder may unpack in place).
    ``element``: the element type of an array, the subtype of a range, the range
    type of a multirange.  ``fields``: (name, TypeInfo) of a registered composite.
    """
    oid: int
    name: str
    kind: str
    codec: int
    decode: Callable[[bytes], Any]
    encode: Callable[[Any], bytes]
    typmod: int = -1
    element: Optional["TypeInfo"] = None
    size: int = -1
    struct: Optional[struct.Struct] = None
    array_oid: int = 0
    fields: Tuple[Tuple[str, "TypeInfo"], ...] = ()
    labels: Optional[Tuple[str, ...]] = None

    def _key(self):
        return (self.oid, self.name, self.kind, self.typmod, self.element, self.fields,
                self.labels)

    def __eq__(self, other):
        if not isinstance(other, TypeInfo):
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self):
        return hash((self.oid, self.name, self.typmod))

    def __repr__(self) -> str:
        mod = f", typmod={self.typmod}" if self.typmod != -1 else ""
        return f"TypeInfo({self.name!r}, oid={self.oid}, kind={self.kind!r}{mod})"

    def with_typmod(self, typmod: int) -> "TypeInfo":
        if typmod == self.typmod:
            return self
        return TypeInfo(**{**self.__dict__, "typmod": typmod})

    def sql(self) -> str:
        """The type as SQL (without the typmod), e.g. 'int4[]'."""
        return self.name


# ---------------------------------------------------------------------------
# Compound values: one length-prefixed item
# ---------------------------------------------------------------------------

def _read_item(b: bytes, p: int, n: int, item: str, dec, nullable: bool):
    """Read one length-prefixed item at ``p``; return (value, new p)."""
    if p + 4 > n:
        raise ValueError(ER_ITEM_TRUNC.format(item=item, n=4, left=n - p))
    ln = _unpack_i4(b, p)[0]
    p += 4
    if ln < 0:
        if ln == -1 and nullable:
            return None, p
        raise ValueError(ER_ITEM_LENGTH.format(item=item, n=ln))
    if ln > n - p:
        raise ValueError(ER_ITEM_TRUNC.format(item=item, n=ln, left=n - p))
    try:
        return dec(b[p:p + ln]), p + ln
    except (ValueError, struct.error) as exc:
        raise ValueError(ER_ITEM.format(item=item, reason=exc)) from None
