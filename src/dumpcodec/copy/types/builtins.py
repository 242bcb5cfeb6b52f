"""The built-in types: OIDs, names, array OIDs and codecs of what PostgreSQL ships."""
from __future__ import annotations

from typing import List

from .core import (CODEC_BOOL, CODEC_BYTEA, CODEC_DATE, CODEC_FLOAT4, CODEC_FLOAT8,
                   CODEC_INT2, CODEC_INT4, CODEC_INT8, CODEC_JSONB, CODEC_NUMERIC,
                   CODEC_OID, CODEC_PY, CODEC_RAW, CODEC_TEXT, CODEC_TIMESTAMP,
                   CODEC_TIMESTAMPTZ, CODEC_UUID, TypeInfo, _f4, _f8, _i2, _i4, _i8, _u4,
                   _u8)
from .datetime import (decode_date, decode_interval, decode_time, decode_timestamp,
                       decode_timestamptz, decode_timetz, encode_date, encode_interval,
                       encode_time, encode_timestamp, encode_timestamptz, encode_timetz)
from .json import decode_jsonb, decode_jsonpath, encode_jsonb, _make_versioned
from .misc import (_make_bit, decode_bit, decode_tid, decode_uuid, encode_bit, encode_tid,
                   encode_uuid)
from .network import (decode_cidr, decode_inet, decode_macaddr, decode_macaddr8,
                      encode_cidr, encode_inet, encode_macaddr, encode_macaddr8)
from .numeric import (_make_int8, _make_uint4, _make_uint8, decode_bool, decode_float4,
                      decode_float8, decode_int2, decode_int4, decode_int8, decode_numeric,
                      decode_uint4, decode_uint8, encode_bool, encode_float4,
                      encode_float8, encode_int2, encode_int4, encode_int8, encode_numeric)
from .text import (_make_raw, _make_text, decode_bytea, decode_char, decode_text,
                   encode_bytea, encode_char)

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
