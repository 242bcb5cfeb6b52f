"""PostgreSQL types for the COPY BINARY codec: the registry and the value codecs.

A column's type is resolved once per stream into a :class:`TypeInfo` (from an OID,
a name such as ``"int4"``, ``"integer"``, ``"numeric(12,2)"``, ``"varchar(20)[]"``,
``"_int4"``, ``"timestamp with time zone"``, or a TypeInfo).  A TypeInfo carries
everything a codec needs: OID, name, typmod, kind, the element type of arrays and
ranges, a small integer ``codec`` id the C core switches on for its hot types, the
fixed wire size if any, and the pure-Python ``decode(bytes) -> value`` and
``encode(value) -> bytes`` functions (which the C core calls for the other types).
Types without a codec pass through as raw ``bytes``.

Enums, composites, domains, hstore and user ranges have OIDs that differ per
database: register them on a :class:`TypeRegistry` (the schema layer knows them) and
resolve against it.  The module-level :func:`resolve` knows the built-in types only;
there is no global mutable state.

Python representations (decode gives these; encode accepts them back):

==========================  ==========================================================
bool                        bool
int2, int4, int8            int
oid, xid, cid, reg*         int (unsigned 32 bit); xid8, pg_lsn: int (unsigned 64)
float4, float8              float (NaN, infinities and -0.0 kept)
numeric                     decimal.Decimal with exponent -dscale (1.10 stays 1.10);
                            Decimal('NaN'), Decimal('Infinity'), Decimal('-Infinity')
text, varchar, bpchar,      str, in the registry's client encoding (UTF8 unless
name, enum, json, xml       ``TypeRegistry(encoding="LATIN1")`` etc.)
"char"                      str of length 0 or 1 (the byte as Latin-1; '' for \\0)
jsonb, jsonpath             str, the exact text (version byte 1 on the wire)
bytea                       bytes
date                        datetime.date, else values.PgDate (BC, > 9999, infinity);
                            clamped() gives date.min/max instead (lossy, opt-in)
timestamp                   naive datetime.datetime, else values.PgTimestamp
timestamptz                 aware datetime.datetime in UTC, else values.PgTimestamp
                            (naive datetimes are refused unless naive_as_utc())
time                        datetime.time, else values.PgTime (24:00:00)
timetz                      datetime.time with a fixed-offset tzinfo, else PgTime
interval                    datetime.timedelta when months == days == 0, else
                            values.PgInterval (months, days, micros apart)
uuid                        uuid.UUID
inet / cidr                 ipaddress.IPv4Interface/IPv6Interface / IPv4Network/...
macaddr, macaddr8           str, lower-case, colon-separated
bit, varbit                 str of '0' and '1'
money                       int, in minor units (the scale depends on lc_monetary)
tid                         tuple (block, offset)
arrays                      nested lists, None for NULL, [] for empty; values.PgArray
                            when a lower bound is not 1 or the has-nulls flag is set
                            without NULLs; an array of an unknown type: bytes
ranges / multiranges        values.PgRange / values.PgMultirange
composite, record           values.PgRecord (a tuple remembering its field OIDs)
hstore (registered)         dict[str, str | None]
anything else               bytes (raw passthrough)
==========================  ==========================================================

Error texts are in the MESSAGES block; the C core copies the ones of its hot types.
A decode function raises ValueError(reason); the decoder reports it as
``<field prefix>: invalid <type name> value: <reason>``.  An encode function raises
TypeError (wrong Python type) or EncodeError/ValueError (bad value) with the whole
text, and the encoder prefixes the field and row.
"""
from __future__ import annotations

import datetime as _dt
import functools
import ipaddress
import re
import struct
import uuid as _uuid
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple, Union

from .errors import EncodeError
from .values import (INT32_MAX, INT32_MIN, INT64_MAX, INT64_MIN, PgArray, PgDate,
                     PgInterval, PgMultirange, PgRange, PgRecord, PgTime, PgTimestamp)

__all__ = ["TypeInfo", "TypeRegistry", "resolve", "naive_as_utc", "clamped", "python_encoding",
           "BUILTINS", "CODECS", "PG_ENCODINGS"]

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
# Scalar codecs.  decode_x(bytes) -> value; make_x(name) -> encode function when
# the message names the type.
# ---------------------------------------------------------------------------

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

# --- text family -----------------------------------------------------------

#: str(b, encoding="utf-8"): the decoder of the whole text family; a C-level call.
decode_text = functools.partial(str, encoding="utf-8")


def _make_text(name: str, encoding: str = "utf-8", errors: str = "strict"):
    def encode(v) -> bytes:
        if type(v) is not str and not isinstance(v, str):
            raise _type_error("str", name, v)
        if "\x00" in v:
            raise EncodeError(EE_NUL.format(name=name))
        return v.encode(encoding, errors)
    return encode


# PostgreSQL client encodings -> (Python codec, error handler).  SQL_ASCII means
# "bytes, unchecked": surrogateescape keeps any byte and gives it back on encode.
PG_ENCODINGS = {
    "UTF8": ("utf-8", "strict"), "SQL_ASCII": ("utf-8", "surrogateescape"),
    "LATIN1": ("iso8859-1", "strict"), "LATIN2": ("iso8859-2", "strict"),
    "LATIN3": ("iso8859-3", "strict"), "LATIN4": ("iso8859-4", "strict"),
    "LATIN5": ("iso8859-9", "strict"), "LATIN6": ("iso8859-10", "strict"),
    "LATIN7": ("iso8859-13", "strict"), "LATIN8": ("iso8859-14", "strict"),
    "LATIN9": ("iso8859-15", "strict"), "LATIN10": ("iso8859-16", "strict"),
    "ISO_8859_5": ("iso8859-5", "strict"), "ISO_8859_6": ("iso8859-6", "strict"),
    "ISO_8859_7": ("iso8859-7", "strict"), "ISO_8859_8": ("iso8859-8", "strict"),
    "WIN866": ("cp866", "strict"), "WIN874": ("cp874", "strict"),
    "WIN1250": ("cp1250", "strict"), "WIN1251": ("cp1251", "strict"),
    "WIN1252": ("cp1252", "strict"), "WIN1253": ("cp1253", "strict"),
    "WIN1254": ("cp1254", "strict"), "WIN1255": ("cp1255", "strict"),
    "WIN1256": ("cp1256", "strict"), "WIN1257": ("cp1257", "strict"),
    "WIN1258": ("cp1258", "strict"), "KOI8R": ("koi8-r", "strict"),
    "KOI8U": ("koi8-u", "strict"), "EUC_JP": ("euc_jp", "strict"),
    "EUC_CN": ("gb2312", "strict"), "EUC_KR": ("euc_kr", "strict"),
    "SJIS": ("shift_jis", "strict"), "BIG5": ("big5", "strict"), "GBK": ("gbk", "strict"),
    "GB18030": ("gb18030", "strict"), "UHC": ("cp949", "strict"),
    "JOHAB": ("johab", "strict"), "EUC_JIS_2004": ("euc_jis_2004", "strict"),
    "SHIFT_JIS_2004": ("shift_jis_2004", "strict"),
}


def python_encoding(pg_encoding: str) -> Tuple[str, str]:
    """(Python codec, error handler) for a PostgreSQL client encoding name."""
    key = pg_encoding.upper().replace("-", "_")
    key = {"UTF_8": "UTF8", "UNICODE": "UTF8"}.get(key, key)
    try:
        return PG_ENCODINGS[key]
    except KeyError:
        raise ValueError(f"no Python codec for the client encoding {pg_encoding!r}") from None


encode_text = _make_text("text")


def decode_char(b: bytes) -> str:
    _size(b, 1)
    return "" if b == b"\x00" else chr(b[0])


def encode_char(v) -> bytes:
    if not isinstance(v, str):
        raise _type_error("str", '"char"', v)
    if v == "":
        return b"\x00"
    if len(v) == 1 and 0 < ord(v) < 256:
        return bytes((ord(v),))
    raise EncodeError(EE_CHAR.format(value=v))


def _decode_versioned(b: bytes) -> str:
    if not b:
        raise ValueError(ER_MIN_SIZE.format(n=0, size=1))
    if b[0] != 1:
        raise ValueError(ER_JSONB_VERSION.format(v=b[0]))
    return str(b[1:], "utf-8")


decode_jsonb = _decode_versioned
decode_jsonpath = _decode_versioned


def _make_versioned_decoder(encoding: str, errors: str):
    def decode(b: bytes) -> str:
        if not b:
            raise ValueError(ER_MIN_SIZE.format(n=0, size=1))
        if b[0] != 1:
            raise ValueError(ER_JSONB_VERSION.format(v=b[0]))
        return str(b[1:], encoding, errors)
    return decode


def _make_versioned(name: str, encoding: str = "utf-8", errors: str = "strict"):
    text = _make_text(name, encoding, errors)

    def encode(v) -> bytes:
        return b"\x01" + text(v)
    return encode


encode_jsonb = _make_versioned("jsonb")

# --- bytea ----------------------------------------------------------------

decode_bytea = bytes


def encode_bytea(v) -> bytes:
    if type(v) is bytes:
        return v
    if isinstance(v, (bytes, bytearray, memoryview)):
        return bytes(v)
    raise _type_error("bytes", "bytea", v)


def _make_raw(name: str):
    def encode(v) -> bytes:
        if type(v) is bytes:
            return v
        if isinstance(v, (bytes, bytearray, memoryview)):
            return bytes(v)
        raise _type_error("bytes", name, v)
    return encode


# --- date and time ----------------------------------------------------------

_PG_EPOCH_ORD = _dt.date(2000, 1, 1).toordinal()
_MIN_DATE = 1 - _PG_EPOCH_ORD                              # 0001-01-01
_MAX_DATE = _dt.date(9999, 12, 31).toordinal() - _PG_EPOCH_ORD
_US_DAY = 86_400_000_000
_MIN_TS = _MIN_DATE * _US_DAY
_MAX_TS = (_MAX_DATE + 1) * _US_DAY - 1
_EPOCH = _dt.datetime(2000, 1, 1)
_EPOCH_TZ = _dt.datetime(2000, 1, 1, tzinfo=_dt.timezone.utc)
_timedelta = _dt.timedelta
_fromordinal = _dt.date.fromordinal


def decode_date(b: bytes):
    if len(b) != 4:
        raise ValueError(ER_SIZE.format(n=len(b), size=4))
    d = _unpack_i4(b)[0]
    if _MIN_DATE <= d <= _MAX_DATE:
        return _fromordinal(d + _PG_EPOCH_ORD)
    return PgDate(d)


def encode_date(v) -> bytes:
    if type(v) is _dt.date or (isinstance(v, _dt.date) and not isinstance(v, _dt.datetime)):
        return _i4.pack(v.toordinal() - _PG_EPOCH_ORD)
    if isinstance(v, PgDate):
        if INT32_MIN <= v.days <= INT32_MAX:
            return _i4.pack(v.days)
        raise EncodeError(EE_RANGE.format(value=v, name="date"))
    raise _type_error("date", "date", v)


def decode_timestamp(b: bytes):
    if len(b) != 8:
        raise ValueError(ER_SIZE.format(n=len(b), size=8))
    us = _i8.unpack(b)[0]
    if _MIN_TS <= us <= _MAX_TS:
        return _EPOCH + _timedelta(microseconds=us)
    return PgTimestamp(us)


def decode_timestamptz(b: bytes):
    if len(b) != 8:
        raise ValueError(ER_SIZE.format(n=len(b), size=8))
    us = _i8.unpack(b)[0]
    if _MIN_TS <= us <= _MAX_TS:
        return _EPOCH_TZ + _timedelta(microseconds=us)
    return PgTimestamp(us)


def _dt_micros(v: _dt.datetime) -> int:
    return (((v.toordinal() - _PG_EPOCH_ORD) * 86400 + v.hour * 3600 + v.minute * 60
             + v.second) * 1_000_000 + v.microsecond)


def _td_micros(td: _dt.timedelta) -> int:
    return (td.days * 86400 + td.seconds) * 1_000_000 + td.microseconds


def _encode_pgts(v: PgTimestamp, name: str) -> bytes:
    if INT64_MIN <= v.micros <= INT64_MAX:
        return _i8.pack(v.micros)
    raise EncodeError(EE_RANGE.format(value=v, name=name))


def encode_timestamp(v) -> bytes:
    if isinstance(v, _dt.datetime):
        if v.tzinfo is not None and v.utcoffset() is not None:
            raise EncodeError(EE_AWARE.format(what="datetime", name="timestamp"))
        return _i8.pack(_dt_micros(v))
    if isinstance(v, PgTimestamp):
        return _encode_pgts(v, "timestamp")
    raise _type_error("datetime", "timestamp", v)


def encode_timestamptz(v) -> bytes:
    if isinstance(v, _dt.datetime):
        off = v.utcoffset()
        if off is None:
            raise EncodeError(EE_NAIVE.format(what="datetime", name="timestamptz"))
        us = _dt_micros(v) - _td_micros(off)
        if INT64_MIN < us < INT64_MAX:
            return _i8.pack(us)
        raise EncodeError(EE_RANGE.format(value=v, name="timestamptz"))
    if isinstance(v, PgTimestamp):
        return _encode_pgts(v, "timestamptz")
    raise _type_error("datetime", "timestamptz", v)


def encode_timestamptz_naive_utc(v) -> bytes:
    """Like encode_timestamptz, but a naive datetime is taken as UTC (opt-in)."""
    if isinstance(v, _dt.datetime) and v.utcoffset() is None:
        return _i8.pack(_dt_micros(v))
    return encode_timestamptz(v)


def _time_of(us: int, tz=None) -> _dt.time:
    s, us = divmod(us, 1_000_000)
    return _dt.time(s // 3600, s // 60 % 60, s % 60, us, tz)


def decode_time(b: bytes):
    if len(b) != 8:
        raise ValueError(ER_SIZE.format(n=len(b), size=8))
    us = _i8.unpack(b)[0]
    if 0 <= us < _US_DAY:
        return _time_of(us)
    return PgTime(us)


_tz_cache: Dict[int, _dt.timezone] = {}


def decode_timetz(b: bytes):
    if len(b) != 12:
        raise ValueError(ER_SIZE.format(n=len(b), size=12))
    us, zone = _qi.unpack(b)
    # The wire zone is seconds *west* of Greenwich; Python's offsets are east.
    east = -zone
    if 0 <= us < _US_DAY and -86400 < east < 86400:
        tz = _tz_cache.get(east)
        if tz is None:
            tz = _tz_cache[east] = _dt.timezone(_dt.timedelta(seconds=east))
        return _time_of(us, tz)
    return PgTime(us, east)


def _time_micros(v: _dt.time) -> int:
    return ((v.hour * 60 + v.minute) * 60 + v.second) * 1_000_000 + v.microsecond


def encode_time(v) -> bytes:
    if isinstance(v, _dt.time):
        if v.utcoffset() is not None:
            raise EncodeError(EE_AWARE.format(what="time", name="time"))
        return _i8.pack(_time_micros(v))
    if isinstance(v, PgTime):
        if v.offset is not None:
            raise EncodeError(EE_AWARE.format(what="time", name="time"))
        if INT64_MIN <= v.micros <= INT64_MAX:
            return _i8.pack(v.micros)
        raise EncodeError(EE_RANGE.format(value=v, name="time"))
    raise _type_error("time", "time", v)


def encode_timetz(v) -> bytes:
    if isinstance(v, _dt.time):
        off = v.utcoffset()
        if off is None:
            raise EncodeError(EE_NAIVE.format(what="time", name="timetz"))
        if off.microseconds:
            raise EncodeError(EE_NO_OFFSET.format(name="timetz"))
        return _qi.pack(_time_micros(v), -(off.days * 86400 + off.seconds))
    if isinstance(v, PgTime):
        if v.offset is None:
            raise EncodeError(EE_NAIVE.format(what="time", name="timetz"))
        try:
            return _qi.pack(v.micros, -v.offset)
        except struct.error:
            raise EncodeError(EE_RANGE.format(value=v, name="timetz")) from None
    raise _type_error("time", "timetz", v)


def decode_interval(b: bytes):
    if len(b) != 16:
        raise ValueError(ER_SIZE.format(n=len(b), size=16))
    us, days, months = _qii.unpack(b)
    if days == 0 and months == 0:
        return _timedelta(microseconds=us)
    return PgInterval(months, days, us)


def encode_interval(v) -> bytes:
    if isinstance(v, _dt.timedelta):
        # Microseconds only, so that it decodes back to the same timedelta.
        us = _td_micros(v)
        if INT64_MIN <= us <= INT64_MAX:
            return _qii.pack(us, 0, 0)
        raise EncodeError(EE_RANGE.format(value=v, name="interval"))
    if isinstance(v, PgInterval):
        try:
            return _qii.pack(v.micros, v.days, v.months)
        except struct.error:
            raise EncodeError(EE_RANGE.format(value=v, name="interval")) from None
    raise _type_error("timedelta", "interval", v)


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


# --- uuid, network, misc ------------------------------------------------------

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


_PGSQL_AF_INET = 2
_PGSQL_AF_INET6 = 3


def _decode_net(b: bytes):
    n = len(b)
    if n < 4:
        raise ValueError(ER_MIN_SIZE.format(n=n, size=4))
    # b[2] is the is_cidr flag; receive ignores it, the column type decides
    family, bits, nb = b[0], b[1], b[3]
    if family == _PGSQL_AF_INET:
        size = 4
    elif family == _PGSQL_AF_INET6:
        size = 16
    else:
        raise ValueError(ER_FAMILY.format(family=family))
    if nb != size:
        raise ValueError(ER_ADDR_LEN.format(nb=nb))
    if n != 4 + size:
        raise ValueError(ER_SIZE.format(n=n, size=4 + size))
    if bits > size * 8:
        raise ValueError(ER_BITS.format(bits=bits))
    return family, bits, b[4:]


def decode_inet(b: bytes):
    family, bits, addr = _decode_net(b)
    if family == _PGSQL_AF_INET:
        return ipaddress.IPv4Interface((addr, bits))
    return ipaddress.IPv6Interface((addr, bits))


def decode_cidr(b: bytes):
    family, bits, addr = _decode_net(b)
    # strict: a cidr value never has bits set right of its mask
    if family == _PGSQL_AF_INET:
        return ipaddress.IPv4Network((addr, bits))
    return ipaddress.IPv6Network((addr, bits))


def _net_bytes(ip, bits: int, is_cidr: int) -> bytes:
    fam = _PGSQL_AF_INET if ip.version == 4 else _PGSQL_AF_INET6
    packed = ip.packed
    return bytes((fam, bits, is_cidr, len(packed))) + packed


def encode_inet(v) -> bytes:
    if isinstance(v, str):
        try:
            v = ipaddress.ip_interface(v)
        except ValueError as exc:
            raise EncodeError(f"invalid inet value: {exc}") from None
    if isinstance(v, (ipaddress.IPv4Interface, ipaddress.IPv6Interface)):
        return _net_bytes(v.ip, v.network.prefixlen, 0)
    if isinstance(v, (ipaddress.IPv4Address, ipaddress.IPv6Address)):
        return _net_bytes(v, v.max_prefixlen, 0)
    if isinstance(v, (ipaddress.IPv4Network, ipaddress.IPv6Network)):
        return _net_bytes(v.network_address, v.prefixlen, 0)
    raise _type_error("ipaddress interface", "inet", v)


def encode_cidr(v) -> bytes:
    if isinstance(v, str):
        try:
            v = ipaddress.ip_network(v)
        except ValueError as exc:
            raise EncodeError(f"invalid cidr value: {exc}") from None
    if isinstance(v, (ipaddress.IPv4Network, ipaddress.IPv6Network)):
        return _net_bytes(v.network_address, v.prefixlen, 1)
    raise _type_error("ipaddress network", "cidr", v)


def _mac_codec(size: int, name: str):
    def decode(b: bytes) -> str:
        if len(b) != size:
            raise ValueError(ER_SIZE.format(n=len(b), size=size))
        return b.hex(":")

    def encode(v) -> bytes:
        if not isinstance(v, str):
            raise _type_error("str", name, v)
        h = v.replace(":", "").replace("-", "").replace(".", "")
        if len(h) != 2 * size:
            raise EncodeError(EE_MAC.format(name=name, value=v))
        try:
            return bytes.fromhex(h)
        except ValueError:
            raise EncodeError(EE_MAC.format(name=name, value=v)) from None
    return decode, encode


decode_macaddr, encode_macaddr = _mac_codec(6, "macaddr")
decode_macaddr8, encode_macaddr8 = _mac_codec(8, "macaddr8")


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
# Compound codecs: arrays, ranges, multiranges, composites, hstore
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


def _make_composite(registry: "TypeRegistry", name: str,
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


# ---------------------------------------------------------------------------
# The built-in types
# ---------------------------------------------------------------------------

def _fixed(name, oid, array_oid, codec, size, st, decode, encode):
    return TypeInfo(oid, name, "base", codec, decode, encode, size=size, struct=st,
                    array_oid=array_oid)


def _builtin_types() -> List[TypeInfo]:
    T = []
    add = T.append
    add(_fixed("bool", 16, 1000, CODEC_BOOL, 1, None, decode_bool, encode_bool))
    add(_fixed("int2", 21, 1005, CODEC_INT2, 2, _i2, decode_int2, encode_int2))
    add(_fixed("int4", 23, 1007, CODEC_INT4, 4, _i4, decode_int4, encode_int4))
    add(_fixed("int8", 20, 1016, CODEC_INT8, 8, _i8, decode_int8, encode_int8))
    add(_fixed("float4", 700, 1021, CODEC_FLOAT4, 4, _f4, decode_float4, encode_float4))
    add(_fixed("float8", 701, 1022, CODEC_FLOAT8, 8, _f8, decode_float8, encode_float8))
    for name, oid, aoid in (("oid", 26, 1028), ("xid", 28, 1011), ("cid", 29, 1012),
                            ("regproc", 24, 1008), ("regprocedure", 2202, 2207),
                            ("regoper", 2203, 2208), ("regoperator", 2204, 2209),
                            ("regclass", 2205, 2210), ("regtype", 2206, 2211),
                            ("regconfig", 3734, 3735), ("regdictionary", 3769, 3770),
                            ("regnamespace", 4089, 4090), ("regrole", 4096, 4097),
                            ("regcollation", 4191, 4192)):
        add(_fixed(name, oid, aoid, CODEC_OID, 4, _u4, decode_uint4, _make_uint4(name)))
    add(_fixed("xid8", 5069, 271, CODEC_PY, 8, _u8, decode_uint8, _make_uint8("xid8")))
    add(_fixed("pg_lsn", 3220, 3221, CODEC_PY, 8, _u8, decode_uint8, _make_uint8("pg_lsn")))
    add(_fixed("money", 790, 791, CODEC_PY, 8, _i8, decode_int8, _make_int8("money")))
    for name, oid, aoid in (("text", 25, 1009), ("varchar", 1043, 1015),
                            ("bpchar", 1042, 1014), ("name", 19, 1003),
                            ("json", 114, 199), ("xml", 142, 143),
                            ("refcursor", 1790, 2201), ("unknown", 705, 0)):
        add(TypeInfo(oid, name, "base", CODEC_TEXT, decode_text, _make_text(name),
                     array_oid=aoid))
    add(_fixed('"char"', 18, 1002, CODEC_PY, 1, None, decode_char, encode_char))
    add(TypeInfo(3802, "jsonb", "base", CODEC_JSONB, decode_jsonb, encode_jsonb,
                 array_oid=3807))
    add(TypeInfo(4072, "jsonpath", "base", CODEC_JSONB, decode_jsonpath,
                 _make_versioned("jsonpath"), array_oid=4073))
    add(TypeInfo(17, "bytea", "base", CODEC_BYTEA, decode_bytea, encode_bytea,
                 array_oid=1001))
    add(_fixed("date", 1082, 1182, CODEC_DATE, 4, None, decode_date, encode_date))
    add(_fixed("timestamp", 1114, 1115, CODEC_TIMESTAMP, 8, None, decode_timestamp,
               encode_timestamp))
    add(_fixed("timestamptz", 1184, 1185, CODEC_TIMESTAMPTZ, 8, None, decode_timestamptz,
               encode_timestamptz))
    add(_fixed("time", 1083, 1183, CODEC_PY, 8, None, decode_time, encode_time))
    add(_fixed("timetz", 1266, 1270, CODEC_PY, 12, None, decode_timetz, encode_timetz))
    add(_fixed("interval", 1186, 1187, CODEC_PY, 16, None, decode_interval,
               encode_interval))
    add(TypeInfo(1700, "numeric", "base", CODEC_NUMERIC, decode_numeric, encode_numeric,
                 array_oid=1231))
    add(_fixed("uuid", 2950, 2951, CODEC_UUID, 16, None, decode_uuid, encode_uuid))
    add(TypeInfo(869, "inet", "base", CODEC_PY, decode_inet, encode_inet, array_oid=1041))
    add(TypeInfo(650, "cidr", "base", CODEC_PY, decode_cidr, encode_cidr, array_oid=651))
    add(_fixed("macaddr", 829, 1040, CODEC_PY, 6, None, decode_macaddr, encode_macaddr))
    add(_fixed("macaddr8", 774, 775, CODEC_PY, 8, None, decode_macaddr8, encode_macaddr8))
    add(TypeInfo(1560, "bit", "base", CODEC_PY, decode_bit, encode_bit, array_oid=1561))
    add(TypeInfo(1562, "varbit", "base", CODEC_PY, decode_bit, _make_bit("varbit"),
                 array_oid=1563))
    add(_fixed("tid", 27, 1010, CODEC_PY, 6, None, decode_tid, encode_tid))
    # Types with a binary form we pass through unchanged.
    for name, oid, aoid in (("point", 600, 1017), ("lseg", 601, 1018), ("path", 602, 1019),
                            ("box", 603, 1020), ("polygon", 604, 1027),
                            ("line", 628, 629), ("circle", 718, 719),
                            ("tsvector", 3614, 3643), ("tsquery", 3615, 3645),
                            ("txid_snapshot", 2970, 2949), ("pg_snapshot", 5038, 5039),
                            ("aclitem", 1033, 1034)):
        add(TypeInfo(oid, name, "raw", CODEC_RAW, bytes, _make_raw(name), array_oid=aoid))
    return T


# (name, oid, subtype, array oid, multirange name, multirange oid, its array oid)
_BUILTIN_RANGES = (
    ("int4range", 3904, "int4", 3905, "int4multirange", 4451, 6150),
    ("int8range", 3926, "int8", 3927, "int8multirange", 4536, 6157),
    ("numrange", 3906, "numeric", 3907, "nummultirange", 4532, 6151),
    ("tsrange", 3908, "timestamp", 3909, "tsmultirange", 4533, 6152),
    ("tstzrange", 3910, "timestamptz", 3911, "tstzmultirange", 4534, 6153),
    ("daterange", 3912, "date", 3913, "datemultirange", 4535, 6155),
)

# SQL spellings -> our names (format_type() output included)
_ALIASES = {
    "integer": "int4", "int": "int4", "smallint": "int2", "bigint": "int8",
    "serial": "int4", "serial4": "int4", "bigserial": "int8", "serial8": "int8",
    "smallserial": "int2", "serial2": "int2",
    "real": "float4", "double precision": "float8", "float": "float8",
    "boolean": "bool", "decimal": "numeric",
    "character varying": "varchar", "character": "bpchar", "char": "bpchar",
    "timestamp without time zone": "timestamp", "timestamp with time zone": "timestamptz",
    "time without time zone": "time", "time with time zone": "timetz",
    "bit varying": "varbit", "char_": '"char"', "record": "record",
}
_TYPMOD = re.compile(r"\(([^()]*)\)")


def _typmod_for(name: str, args: List[int]) -> int:
    if not args:
        return -1
    if name == "numeric":
        prec = args[0]
        scale = args[1] if len(args) > 1 else 0
        return ((prec << 16) | (scale & 0xFFFF)) + 4
    if name in ("varchar", "bpchar"):
        return args[0] + 4
    # bit, varbit, timestamp(p), time(p), ... store the number itself
    return args[0]


class TypeRegistry:
    """Types by OID and name: the built-ins plus what a database adds.

    ``TypeRegistry()`` starts with the built-in types; ``register_enum``,
    ``register_composite``, ``register_domain``, ``register_range`` and
    ``register_hstore`` add the types whose OIDs are per database.  ``resolve``
    turns a spec into a TypeInfo.  ``encoding``: the PostgreSQL client encoding of
    the text the streams carry (default UTF8; see PG_ENCODINGS; SQL_ASCII keeps any
    byte through surrogateescape).
    """

    def __init__(self, parent: Any = "builtins", *, encoding: Optional[str] = None):
        if parent == "builtins":
            # None only while the built-in registry itself is being made
            parent = globals().get("BUILTINS")
        self._parent = parent
        self.encoding = "UTF8" if encoding is None else encoding
        self._codec = python_encoding(self.encoding)
        self._by_oid: Dict[int, TypeInfo] = {}
        self._by_name: Dict[str, TypeInfo] = {}
        self._array_of: Dict[int, int] = {}    # array oid -> element oid
        self._arrays: Dict[Tuple[int, str, int], TypeInfo] = {}
        # Anonymous records look their fields up by OID in *this* registry.
        dec, enc = _make_composite(self, "record", ())
        self.register(TypeInfo(2249, "record", "composite", CODEC_PY, dec, enc,
                               array_oid=2287))
        if self._codec != ("utf-8", "strict") and parent is not None:
            self._install_encoding()

    def _install_encoding(self) -> None:
        """Shadow the text-family built-ins with codecs for this client encoding.

        Their codec id becomes CODEC_PY, so the C core calls these functions too.
        """
        enc, errors = self._codec
        dec = functools.partial(str, encoding=enc, errors=errors)
        for ti in _builtin_types():
            if ti.codec == CODEC_TEXT:
                self.register(TypeInfo(ti.oid, ti.name, ti.kind, CODEC_PY, dec,
                                       _make_text(ti.name, enc, errors),
                                       array_oid=ti.array_oid))
            elif ti.codec == CODEC_JSONB:
                self.register(TypeInfo(ti.oid, ti.name, ti.kind, CODEC_PY,
                                       _make_versioned_decoder(enc, errors),
                                       _make_versioned(ti.name, enc, errors),
                                       array_oid=ti.array_oid))

    # -- lookups ------------------------------------------------------------
    def lookup_oid(self, oid: int) -> Optional[TypeInfo]:
        """The TypeInfo for an OID (arrays included), or None when unknown."""
        ti = self._by_oid.get(oid)
        if ti is not None:
            return ti
        elem_oid = self._array_of.get(oid)
        if elem_oid is not None:
            elem = self.lookup_oid(elem_oid)
            if elem is not None:
                return self.array_of(elem)
        if self._parent is not None:
            return self._parent.lookup_oid(oid)
        return None

    def lookup_name(self, name: str) -> Optional[TypeInfo]:
        ti = self._by_name.get(name)
        if ti is None and self._parent is not None:
            ti = self._parent.lookup_name(name)
        return ti

    def array_of(self, elem: TypeInfo) -> TypeInfo:
        """The array type whose elements are ``elem``."""
        key = (elem.oid, elem.name, elem.typmod)
        ti = self._arrays.get(key)
        if ti is None and not elem.oid:
            # Element type unknown (no OID): pass the whole array through raw, so that
            # the element OID on the wire survives a round trip.
            name = elem.name + "[]"
            ti = TypeInfo(0, name, "raw", CODEC_RAW, bytes, _make_raw(name), typmod=elem.typmod)
            self._arrays[key] = ti
        if ti is None:
            name = elem.name + "[]"
            dec, enc = _make_array(elem, name)
            ti = TypeInfo(elem.array_oid, name, "array", CODEC_ARRAY, dec, enc,
                          typmod=elem.typmod, element=elem)
            self._arrays[key] = ti
        return ti

    # -- registration -------------------------------------------------------
    def register(self, ti: TypeInfo) -> TypeInfo:
        """Add a TypeInfo (known by its OID, if not 0, and by its name)."""
        if ti.oid:
            self._by_oid[ti.oid] = ti
            if ti.array_oid:
                self._array_of[ti.array_oid] = ti.oid
        self._by_name[ti.name] = ti
        return ti

    def register_enum(self, name: str, oid: int, array_oid: int = 0,
                      labels: Optional[Iterable[str]] = None) -> TypeInfo:
        """An enum: values are its labels as str; with ``labels``, others are refused."""
        text = _make_text(name, *self._codec)
        if labels is not None:
            labels = tuple(labels)
            allowed = frozenset(labels)

            def encode(v) -> bytes:
                b = text(v)
                if v not in allowed:
                    raise EncodeError(EE_LABEL.format(value=v, name=name))
                return b
            codec = CODEC_PY
        else:
            encode = text
            codec = CODEC_TEXT
        if self._codec != ("utf-8", "strict"):
            codec = CODEC_PY
        dec = functools.partial(str, encoding=self._codec[0], errors=self._codec[1])
        return self.register(TypeInfo(oid, name, "enum", codec, dec, encode,
                                      array_oid=array_oid, labels=labels))

    def register_composite(self, name: str, oid: int,
                           fields: Sequence[Tuple[str, Any]],
                           array_oid: int = 0) -> TypeInfo:
        """A composite type: ``fields`` are (name, type spec) in column order."""
        resolved = tuple((fname, self.resolve(spec)) for fname, spec in fields)
        dec, enc = _make_composite(self, name, resolved)
        return self.register(TypeInfo(oid, name, "composite", CODEC_PY, dec, enc,
                                      array_oid=array_oid, fields=resolved))

    def register_domain(self, name: str, oid: int, base: Any,
                        array_oid: int = 0) -> TypeInfo:
        """A domain: the wire form of its base type, its own OID and name."""
        b = self.resolve(base)
        return self.register(TypeInfo(oid, name, "domain", b.codec, b.decode, b.encode,
                                      typmod=b.typmod, element=b.element, size=b.size,
                                      struct=b.struct, array_oid=array_oid))

    def register_range(self, name: str, oid: int, subtype: Any, array_oid: int = 0,
                       multirange: Optional[str] = None, multirange_oid: int = 0,
                       multirange_array_oid: int = 0) -> TypeInfo:
        """A range type (and optionally its multirange type)."""
        sub = self.resolve(subtype)
        dec, enc = _make_range(sub, name)
        rng = self.register(TypeInfo(oid, name, "range", CODEC_PY, dec, enc,
                                     element=sub, array_oid=array_oid))
        if multirange:
            mdec, menc = _make_multirange(rng, multirange)
            self.register(TypeInfo(multirange_oid, multirange, "multirange", CODEC_PY,
                                   mdec, menc, element=rng, array_oid=multirange_array_oid))
        return rng

    def register_hstore(self, oid: int, array_oid: int = 0, name: str = "hstore") -> TypeInfo:
        """The hstore extension type (its OID differs per database)."""
        dec, enc = _make_hstore(name, *self._codec)
        return self.register(TypeInfo(oid, name, "hstore", CODEC_PY, dec, enc,
                                      array_oid=array_oid))

    # -- resolution ---------------------------------------------------------
    def resolve(self, spec: Union[int, str, TypeInfo]) -> TypeInfo:
        """A TypeInfo for an OID, a type name (SQL spellings, typmods, ``[]``) or a
        TypeInfo; unknown types resolve to raw passthrough."""
        if isinstance(spec, TypeInfo):
            return spec
        if isinstance(spec, bool) or not isinstance(spec, (int, str)):
            raise TypeError(f"a type is an OID, a name or a TypeInfo, not {_tname(spec)}")
        if isinstance(spec, int):
            ti = self.lookup_oid(spec)
            if ti is None:
                ti = TypeInfo(spec, f"type {spec}", "raw", CODEC_RAW, bytes,
                              _make_raw(f"type {spec}"))
            return ti
        return self._resolve_name(spec)

    def _resolve_name(self, spec: str) -> TypeInfo:
        s = " ".join(spec.strip().split())
        ndim = 0
        while s.endswith("[]"):
            ndim += 1
            s = s[:-2].rstrip()
        m = re.search(r"\s+array(\[\d*\])?$", s, re.IGNORECASE)
        if m:
            ndim += 1
            s = s[:m.start()]
        args: List[int] = []
        m = _TYPMOD.search(s)
        if m:
            try:
                args = [int(a) for a in m.group(1).split(",")]
            except ValueError:
                raise ValueError(f"cannot parse the type modifier in {spec!r}") from None
            s = (s[:m.start()] + s[m.end():]).strip()
            s = " ".join(s.split())
        ti = self.lookup_name(s)
        if ti is None:
            low = s.lower()
            if low.startswith("pg_catalog."):
                low = low[len("pg_catalog."):]
            if low.startswith('"') and low.endswith('"') and low != '"char"':
                low = low[1:-1]
            low = _ALIASES.get(low, low)
            if low.startswith("interval "):
                # "interval day to second(3)": the fields restrict input, not the wire
                low, args = "interval", []
            ti = self.lookup_name(low)
            if ti is None and low.startswith("_") and ndim == 0:
                elem = self.lookup_name(low[1:])
                if elem is not None:
                    ti, ndim = elem, 1
            if ti is None:
                ti = TypeInfo(0, s, "raw", CODEC_RAW, bytes, _make_raw(s))
        if args:
            ti = ti.with_typmod(_typmod_for(ti.name, args))
        if ndim:
            ti = self.array_of(ti)
        return ti


def _make_builtins() -> TypeRegistry:
    reg = TypeRegistry(None)
    for ti in _builtin_types():
        reg.register(ti)
    for name, oid, sub, aoid, mname, moid, maoid in _BUILTIN_RANGES:
        reg.register_range(name, oid, sub, aoid, mname, moid, maoid)
    # int2vector and oidvector travel as arrays (with lower bound 0)
    for name, oid, elem, aoid in (("int2vector", 22, "int2", 1006),
                                  ("oidvector", 30, "oid", 1013)):
        e = reg.lookup_name(elem)
        dec, enc = _make_array(e, name)
        reg.register(TypeInfo(oid, name, "array", CODEC_ARRAY, dec, enc, element=e,
                              array_oid=aoid))
    return reg


#: The built-in types.  Register database types on your own ``TypeRegistry()``,
#: which starts from (and falls back to) these.
BUILTINS = _make_builtins()


def naive_as_utc(spec: Union[int, str, TypeInfo],
                 registry: Optional[TypeRegistry] = None) -> TypeInfo:
    """timestamptz (or an array or range of it) whose encoder takes naive datetimes
    as UTC instead of refusing them: the explicit opt-in.  Decoding is unchanged."""
    ti = resolve(spec, registry)
    if ti.codec == CODEC_TIMESTAMPTZ or ti.encode is encode_timestamptz:
        return TypeInfo(**{**ti.__dict__, "codec": CODEC_PY,
                           "encode": encode_timestamptz_naive_utc})
    if ti.kind == "array" and ti.element is not None:
        elem = naive_as_utc(ti.element)
        dec, enc = _make_array(elem, ti.name)
        return TypeInfo(**{**ti.__dict__, "element": elem, "decode": dec, "encode": enc})
    if ti.kind == "range" and ti.element is not None:
        elem = naive_as_utc(ti.element)
        dec, enc = _make_range(elem, ti.name)
        return TypeInfo(**{**ti.__dict__, "element": elem, "decode": dec, "encode": enc,
                           "codec": CODEC_PY})
    raise ValueError(f"naive_as_utc applies to timestamptz, not {ti.name}")


def _clamping(decode, lo, hi):
    def clamped(b: bytes):
        v = decode(b)
        if isinstance(v, (PgDate, PgTimestamp)):
            return lo if (v.days if isinstance(v, PgDate) else v.micros) < 0 else hi
        return v
    return clamped


_CLAMP = {
    "date": (_dt.date.min, _dt.date.max),
    "timestamp": (_dt.datetime.min, _dt.datetime.max),
    "timestamptz": (_dt.datetime.min.replace(tzinfo=_dt.timezone.utc),
                    _dt.datetime.max.replace(tzinfo=_dt.timezone.utc)),
}


def clamped(spec: Union[int, str, TypeInfo],
            registry: Optional[TypeRegistry] = None) -> TypeInfo:
    """date, timestamp or timestamptz (or an array of one) that decodes values outside
    Python's range, infinities included, to ``date.min``/``max`` or
    ``datetime.min``/``max`` instead of stand-ins.  Lossy, so only on request: such a
    value no longer re-encodes to its bytes."""
    ti = resolve(spec, registry)
    base = {CODEC_DATE: "date", CODEC_TIMESTAMP: "timestamp",
            CODEC_TIMESTAMPTZ: "timestamptz"}.get(ti.codec)
    if base is None and ti.element is not None and ti.kind == "array":
        elem = clamped(ti.element)
        dec, enc = _make_array(elem, ti.name)
        return TypeInfo(**{**ti.__dict__, "element": elem, "decode": dec, "encode": enc,
                           "codec": CODEC_PY})
    if base is None:
        raise ValueError(f"clamped applies to date, timestamp and timestamptz, not {ti.name}")
    lo, hi = _CLAMP[base]
    return TypeInfo(**{**ti.__dict__, "codec": CODEC_PY,
                       "decode": _clamping(ti.decode, lo, hi)})


def resolve(spec: Union[int, str, TypeInfo],
            registry: Optional[TypeRegistry] = None) -> TypeInfo:
    """Resolve a type spec against ``registry`` (default: the built-in types)."""
    return (registry or BUILTINS).resolve(spec)
