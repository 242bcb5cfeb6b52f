"""Golden vectors for every type: hand-annotated wire bytes, checked both ways.

Each vector is (type spec, Python value, wire bytes of the field).  Decoding the
one-row stream gives exactly the value (``same``: Decimal scale, float bits, tz
offsets, exact types), encoding the value gives exactly the bytes.  All through
``dumpcodec.codec``, so both implementations run them.
"""
import datetime as dt
import ipaddress
import uuid
from decimal import Decimal

import pytest

from codec_helpers import HEADER, TRAILER, h, one_value_stream, same
from dumpcodec import codec, pgtypes
from dumpcodec.errors import CopyFormatError, EncodeError
from dumpcodec.values import (PgArray, PgDate, PgInterval, PgMultirange, PgRange,
                              PgRecord, PgTime, PgTimestamp)

UTC = dt.timezone.utc

GOLDEN = [
    # --- bool, integers, floats
    ("bool", True, "01"),
    ("bool", False, "00"),
    ("int2", -2, "fffe"),
    ("int2", 32767, "7fff"),
    ("int4", 1, "00000001"),
    ("int4", -2147483648, "80000000"),
    ("int8", 2**63 - 1, "7fffffffffffffff"),
    ("int8", -1, "ffffffffffffffff"),
    ("oid", 4294967295, "ffffffff"),
    ("regclass", 1259, "000004eb"),
    ("xid8", 2**64 - 1, "ffffffffffffffff"),
    ("float4", 1.5, "3fc00000"),
    ("float4", float("inf"), "7f800000"),
    ("float4", float("-inf"), "ff800000"),
    ("float8", -0.0, "8000000000000000"),
    ("float8", 0.1, "3fb999999999999a"),
    ("float8", float("-inf"), "fff0000000000000"),
    ("money", 1234, "00000000000004d2"),
    ("pg_lsn", 0x16B374D848, "00000016b374d848"),
    # --- numeric: ndigits, weight, sign, dscale, base-10000 digits
    ("numeric", Decimal("1.10"), """0002 0000 0000 0002   # 2 digits, weight 0, +, dscale 2
                                     0001 03e8             # 1 . 1000"""),
    ("numeric", Decimal("0.00"), "0000 0000 0000 0002"),
    ("numeric", Decimal("0"), "0000 0000 0000 0000"),
    ("numeric", Decimal("-1.00000001"), """0003 0000 4000 0008  # 3 digits, weight 0, -, dscale 8
                                           0001 0000 0001       # 1 . 0000 0001"""),
    ("numeric", Decimal("100000000000000000000"), """0001 0005 0000 0000  # 1 * 10000^5
                                                     0001"""),
    ("numeric", Decimal("0.0001"), "0001 ffff 0000 0004 0001"),  # weight -1
    ("numeric", Decimal("-0.00012"), "0002 ffff 4000 0005 0001 07d0"),  # 0.0001 2000
    ("numeric", Decimal("12345.678"), "0003 0001 0000 0003 0001 0929 1a7c"),
    ("numeric", Decimal("NaN"), "0000 0000 c000 0000"),
    ("numeric", Decimal("Infinity"), "0000 0000 d000 0020"),   # dscale 32 as sent
    ("numeric", Decimal("-Infinity"), "0000 0000 f000 0020"),
    # --- text family (UTF-8), "char", bytea, json
    ("text", "h\u00e9", "68 c3a9"),
    ("text", "", ""),
    ("varchar(20)", "abc", "616263"),
    ("bpchar", "ab  ", "61622020"),
    ("name", "pg_class", "70675f636c617373"),
    ('"char"', "x", "78"),
    ('"char"', "", "00"),
    ('"char"', "\u00e9", "e9"),
    ("bytea", b"\x00\xff", "00ff"),
    ("json", '{"a": 1}', "7b2261223a20317d"),
    ("jsonb", '{"a": 1}', "01 7b2261223a20317d"),   # version 1, text
    ("jsonpath", "$.a", "01 242e61"),
    ("xml", "<a/>", "3c612f3e"),
    # --- date: int32 days since 2000-01-01
    ("date", dt.date(2000, 1, 2), "00000001"),
    ("date", dt.date(1999, 12, 31), "ffffffff"),
    ("date", dt.date(1, 1, 1), "fff4dbf9"),            # -730119
    ("date", PgDate(-730120), "fff4dbf8"),              # -730120 = 0001-12-31 BC
    ("date", dt.date(9999, 12, 31), "002c95d3"),       # 2921939
    ("date", PgDate(2921940), "002c95d4"),              # 10000-01-01
    ("date", PgDate.INFINITY, "7fffffff"),
    ("date", PgDate.NEG_INFINITY, "80000000"),
    # --- timestamp(tz): int64 microseconds since 2000-01-01 00:00 (UTC)
    ("timestamp", dt.datetime(2000, 1, 1, 0, 0, 1), "00000000000f4240"),
    ("timestamp", dt.datetime(1999, 12, 31, 23, 59, 59, 999999), "ffffffffffffffff"),
    ("timestamp", PgTimestamp.INFINITY, "7fffffffffffffff"),
    ("timestamp", PgTimestamp.NEG_INFINITY, "8000000000000000"),
    ("timestamp", PgTimestamp(-63082281600000001), "ff1fe2ffc59c5fff"),  # 1 BC, last us
    ("timestamptz", dt.datetime(2000, 1, 1, 0, 0, 1, tzinfo=UTC), "00000000000f4240"),
    ("timestamptz", PgTimestamp.INFINITY, "7fffffffffffffff"),
    # --- time, timetz (zone offset in seconds WEST of Greenwich), interval
    ("time", dt.time(0, 0, 1, 5), "00000000000f4245"),
    ("time", PgTime(86400000000), "000000141dd76000"),   # 24:00:00
    ("timetz", dt.time(0, 0, 1, tzinfo=dt.timezone(dt.timedelta(hours=5, minutes=30))),
     "00000000000f4240 ffffb2a8"),                        # +05:30 is -19800 on the wire
    ("timetz", dt.time(12, 0, tzinfo=dt.timezone(dt.timedelta(hours=-1))),
     "0000000a0eebb000 00000e10"),                        # -01:00 is +3600
    ("timetz", PgTime(86400000000, -57599), "000000141dd76000 0000e0ff"),
    ("interval", dt.timedelta(seconds=1), "00000000000f4240 00000000 00000000"),
    ("interval", dt.timedelta(days=-1), "ffffffebe228a000 00000000 00000000"),
    ("interval", PgInterval(months=14, days=3, micros=5), """0000000000000005  # micros
                                                             00000003          # days
                                                             0000000e          # months"""),
    ("interval", PgInterval.INFINITY, "7fffffffffffffff 7fffffff 7fffffff"),
    ("interval", PgInterval.NEG_INFINITY, "8000000000000000 80000000 80000000"),
    # --- uuid, network, bit strings, tid
    ("uuid", uuid.UUID("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"),
     "a0eebc999c0b4ef8bb6d6bb9bd380a11"),
    ("inet", ipaddress.ip_interface("192.168.1.5/24"), "02 18 00 04 c0a80105"),
    ("inet", ipaddress.ip_interface("::1"), "03 80 00 10 00000000000000000000000000000001"),
    ("cidr", ipaddress.ip_network("10.0.0.0/8"), "02 08 01 04 0a000000"),
    ("macaddr", "08:00:2b:01:02:03", "08002b010203"),
    ("macaddr8", "08:00:2b:01:02:03:04:05", "08002b0102030405"),
    ("bit(5)", "10101", "00000005 a8"),
    ("varbit", "", "00000000"),
    ("varbit", "111111111", "00000009 ff80"),
    ("tid", (3, 7), "00000003 0007"),
    # --- arrays: ndim, has-nulls, element OID, (size, lower bound) per dim, elements
    ("int4[]", [], "00000000 00000000 00000017"),
    ("int4[]", [1, None], """00000001 00000001 00000017   # 1 dim, has nulls, int4
                            00000002 00000001            # 2 elements from 1
                            00000004 00000001 ffffffff"""),
    ("text[]", [["a", "b"], ["c", None]], """00000002 00000001 00000019
                                             00000002 00000001 00000002 00000001
                                             00000001 61 00000001 62 00000001 63 ffffffff"""),
    ("int2[]", PgArray([5], (0,)), "00000001 00000000 00000015 00000001 00000000 00000002 0005"),
    ("int4[]", PgArray([5], (), hasnull=True), """00000001 00000001 00000017  # flag set,
                                                 00000001 00000001            # no NULL left
                                                 00000004 00000005"""),
    ("int4[]", PgArray([], (), hasnull=True), "00000000 00000001 00000017"),
    ("_int8", [7], "00000001 00000000 00000014 00000001 00000001 00000008 0000000000000007"),
    # --- ranges: flags byte (01 empty, 02 [lower, 04 upper], 08 no lower, 10 no upper)
    ("int4range", PgRange(1, 5), "02 00000004 00000001 00000004 00000005"),
    ("int4range", PgRange.EMPTY, "01"),
    ("int4range", PgRange(None, 6, lower_inc=False), "08 00000004 00000006"),
    ("int4range", PgRange(None, None, False, False), "18"),
    ("daterange", PgRange(dt.date(2000, 1, 1), None, True, False), "12 00000004 00000000"),
    ("int4multirange", PgMultirange([PgRange(1, 3)]),
     "00000001 00000011 02 00000004 00000001 00000004 00000003"),
    ("int4multirange", PgMultirange([]), "00000000"),
    # --- records: field count, then (type OID, length, value) per field
    ("record", PgRecord((1, None, "x"), (23, 25, 25)), """00000003
                                                          00000017 00000004 00000001
                                                          00000019 ffffffff
                                                          00000019 00000001 78"""),
    # --- types without a codec: bytes unchanged
    ("point", b"\x3f\xf0" + b"\x00" * 6 + b"\x40" + b"\x00" * 7,
     "3ff0000000000000 4000000000000000"),
    (99999, b"\x01\x02", "0102"),
]


def _id(v):
    return f"{v[0]}-{v[2][:24].strip()}".replace(" ", "")


@pytest.mark.parametrize("spec,value,wire", GOLDEN, ids=[_id(v) for v in GOLDEN])
def test_golden(spec, value, wire):
    field = h(wire)
    stream = one_value_stream(field)
    dec = codec.Decoder([spec])
    rows = dec.feed(stream)
    dec.close()
    assert len(rows) == 1 and same(rows[0][0], value), (rows, value)
    enc = codec.Encoder([spec])
    assert enc.header() + enc.encode([(value,)]) + enc.trailer() == stream
    # and the plain per-type functions agree
    ti = pgtypes.resolve(spec)
    assert same(ti.decode(field), value)
    assert ti.encode(value) == field


def test_null_in_every_type():
    specs = sorted({g[0] for g in GOLDEN if isinstance(g[0], str)})
    enc = codec.Encoder(specs)
    data = enc.header() + enc.encode([(None,) * len(specs)]) + enc.trailer()
    assert data == HEADER + h("%04x" % len(specs)) + b"\xff\xff\xff\xff" * len(specs) + TRAILER
    dec = codec.Decoder(specs)
    assert dec.feed(data) == [(None,) * len(specs)]


def test_mixed_row_and_many_rows():
    specs = ["int8", "text", "numeric(12,2)", "timestamptz", "int4[]", "bytea", "bool"]
    rows = [(i, f"r{i}", Decimal(i) / 4, dt.datetime(2020, 1, 1, tzinfo=UTC)
             + dt.timedelta(seconds=i), [i, None], bytes([i % 256]), i % 2 == 0)
            for i in range(500)]
    enc = codec.Encoder(specs, names=list("abcdefg"))
    data = enc.header() + enc.encode(rows[:100]) + enc.encode(rows[100:]) + enc.trailer()
    dec = codec.Decoder(specs)
    out = []
    for i in range(0, len(data), 997):
        out += dec.feed(data[i:i + 997])
    dec.close()
    assert same(out, rows)


# ---------------------------------------------------------------------------
# Resolution of type specs
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("spec,name,oid,typmod", [
    ("int4", "int4", 23, -1), ("integer", "int4", 23, -1), (23, "int4", 23, -1),
    ("INTEGER", "int4", 23, -1), ("pg_catalog.int8", "int8", 20, -1),
    ("double precision", "float8", 701, -1), ("boolean", "bool", 16, -1),
    ("numeric(12,2)", "numeric", 1700, (12 << 16 | 2) + 4),
    ("character varying(20)", "varchar", 1043, 24), ("varchar(20)", "varchar", 1043, 24),
    ("character(5)", "bpchar", 1042, 9), ("char", "bpchar", 1042, -1),
    ('"char"', '"char"', 18, -1), ("timestamp with time zone", "timestamptz", 1184, -1),
    ("timestamp(3) with time zone", "timestamptz", 1184, 3),
    ("time without time zone", "time", 1083, -1), ("bit varying(8)", "varbit", 1562, 8),
    ("int4[]", "int4[]", 1007, -1), ("_int4", "int4[]", 1007, -1), (1007, "int4[]", 1007, -1),
    ("integer[]", "int4[]", 1007, -1), ("numeric(10,3)[]", "numeric[]", 1231,
                                        (10 << 16 | 3) + 4),
    ("text[][]", "text[]", 1009, -1), ("int4multirange", "int4multirange", 4451, -1),
    (3904, "int4range", 3904, -1), ("record", "record", 2249, -1),
    # format_type() output
    ("interval day to second(3)", "interval", 1186, -1), ("interval(2)", "interval", 1186, 2),
    ("interval hour to minute[]", "interval[]", 1187, -1),
    ("time(3) without time zone", "time", 1083, 3), ("time(2) with time zone", "timetz", 1266, 2),
    ("character(5)[]", "bpchar[]", 1014, 9), ('"char"[]', '"char"[]', 1002, -1),
    ("bit varying(5)", "varbit", 1562, 5), ("timestamp(3) with time zone[]", "timestamptz[]",
                                            1185, 3),
    ("numeric(5,0)", "numeric", 1700, (5 << 16) + 4), ("bit(3)", "bit", 1560, 3),
    ("double precision[]", "float8[]", 1022, -1),
])
def test_resolve(spec, name, oid, typmod):
    ti = pgtypes.resolve(spec)
    assert (ti.name, ti.oid, ti.typmod) == (name, oid, typmod)
    assert pgtypes.resolve(ti) is ti


def test_resolve_unknown_is_raw():
    ti = pgtypes.resolve("no_such_type")
    assert ti.kind == "raw" and ti.codec == pgtypes.CODEC_RAW
    assert ti.decode(b"\x01") == b"\x01"
    assert pgtypes.resolve(123456).kind == "raw"
    with pytest.raises(TypeError):
        pgtypes.resolve(1.5)


def test_array_of_unknown_type_is_raw_as_a_whole():
    ti = pgtypes.resolve("public.mood[]")
    assert ti.kind == "raw" and ti.name == "public.mood[]"
    wire = h("00000001 00000000 0000c351 00000001 00000001 00000002 6f6b")
    assert ti.decode(wire) == wire and ti.encode(wire) == wire
    assert pgtypes.resolve("point[]").element.name == "point"   # known OID: real array


def test_codec_ids_and_elements():
    assert pgtypes.resolve("int4").codec == pgtypes.CODEC_INT4
    arr = pgtypes.resolve("int4[]")
    assert arr.codec == pgtypes.CODEC_ARRAY and arr.element.codec == pgtypes.CODEC_INT4
    assert pgtypes.resolve("varchar").codec == pgtypes.CODEC_TEXT
    assert pgtypes.resolve("jsonb").codec == pgtypes.CODEC_JSONB
    assert pgtypes.resolve("int4range").element.name == "int4"
    assert pgtypes.resolve("int4multirange").element.name == "int4range"
    assert pgtypes.resolve("interval").codec == pgtypes.CODEC_PY
    assert len(set(pgtypes.CODECS.values())) == len(pgtypes.CODECS)


# ---------------------------------------------------------------------------
# Registered types: enums, composites, domains, hstore, ranges
# ---------------------------------------------------------------------------

def test_enum_registered():
    reg = pgtypes.TypeRegistry()
    mood = reg.register_enum("mood", 50001, 50002, labels=["sad", "ok"])
    assert reg.resolve("mood") is mood and reg.resolve(50001) is mood
    arr = reg.resolve("mood[]")
    assert arr.oid == 50002 and reg.resolve(50002).element is mood
    assert mood.encode("ok") == b"ok" and mood.decode(b"sad") == "sad"
    with pytest.raises(EncodeError, match="invalid label 'happy' for enum mood"):
        mood.encode("happy")
    enc = codec.Encoder([arr])
    data = enc.header() + enc.encode([(["ok", None],)]) + enc.trailer()
    assert h("0000c351") in data
    assert codec.Decoder([arr]).feed(data) == [(["ok", None],)]


def test_composite_registered_and_nested():
    reg = pgtypes.TypeRegistry()
    reg.register_enum("mood", 50001, 50002)
    pair = reg.register_composite("pair", 50010, [("a", "int4"), ("m", "mood"),
                                                  ("t", "text[]")], array_oid=50011)
    value = (1, "ok", ["x"])
    wire = pair.encode(value)
    assert wire == h("""00000003
                        00000017 00000004 00000001
                        0000c351 00000002 6f6b
                        000003f1 00000019 00000001 00000000 00000019 00000001 00000001
                                          00000001 78""")
    back = pair.decode(wire)
    assert back == PgRecord(value, (23, 50001, 1009)) and back.oids == (23, 50001, 1009)
    assert pair.encode(back) == wire
    with pytest.raises(EncodeError, match="2 values for pair, which has 3 fields"):
        pair.encode((1, "ok"))
    arr = reg.resolve("pair[]")
    assert arr.decode(arr.encode([value, None])) == [back, None]


def test_anonymous_record_needs_oids():
    rec = pgtypes.resolve("record")
    with pytest.raises(TypeError, match="needs field type OIDs"):
        rec.encode((1, 2))
    assert rec.encode(PgRecord((), ())) == h("00000000")


def test_domain_and_hstore_and_user_range():
    reg = pgtypes.TypeRegistry()
    pos = reg.register_domain("posint", 50020, "int4", array_oid=50021)
    assert pos.encode(5) == h("00000005") and pos.codec == pgtypes.CODEC_INT4
    assert reg.resolve("posint[]").encode([5])[8:12] == h("0000c364")
    hs = reg.register_hstore(50030, 50031)
    value = {"a": "1", "b": None}
    wire = hs.encode(value)
    assert wire == h("00000002 00000001 61 00000001 31 00000001 62 ffffffff")
    assert hs.decode(wire) == value
    fr = reg.register_range("floatrange", 50040, "float8", 50041, "floatmultirange", 50042)
    r = PgRange(1.5, 2.5, True, True)
    assert fr.decode(fr.encode(r)) == r
    assert reg.resolve("floatmultirange").element is fr


# ---------------------------------------------------------------------------
# Encoding errors: class, message naming field and row, encoder still usable
# ---------------------------------------------------------------------------

ENCODE_ERRORS = [
    ("int4", 2**40, EncodeError, "1099511627776 out of range for int4"),
    ("int2", 32768, EncodeError, "32768 out of range for int2"),
    ("int8", "1", TypeError, "expected int for int8, not str"),
    ("int4", True, TypeError, "expected int for int4, not bool"),
    ("oid", -1, EncodeError, "-1 out of range for oid"),
    ("float4", 1e300, EncodeError, "1e+300 out of range for float4"),
    ("float8", "x", TypeError, "expected float for float8, not str"),
    ("bool", 1, TypeError, "expected bool for bool, not int"),
    ("text", "a\x00b", EncodeError, "NUL character in text value"),
    ("varchar", b"x", TypeError, "expected str for varchar, not bytes"),
    ("jsonb", {"a": 1}, TypeError, "expected str for jsonb, not dict"),
    ("timestamptz", dt.datetime(2020, 1, 1), EncodeError,
     "naive datetime for timestamptz (give it a tzinfo)"),
    ("timestamp", dt.datetime(2020, 1, 1, tzinfo=UTC), EncodeError,
     "aware datetime for timestamp (which has no time zone)"),
    ("date", dt.datetime(2020, 1, 1), TypeError, "expected date for date, not datetime"),
    ("timetz", dt.time(1), EncodeError, "naive time for timetz (give it a tzinfo)"),
    ("interval", 5, TypeError, "expected timedelta for interval, not int"),
    ("numeric", 1.5, TypeError, "expected Decimal for numeric, not float"),
    ("numeric", Decimal("1e-20000"), EncodeError, "1E-20000 out of range for numeric"),
    ("uuid", 5, TypeError, "expected UUID for uuid, not int"),
    ("bit", "012", EncodeError, "bit value may contain only 0 and 1"),
    ("macaddr", "08:00", EncodeError, "invalid macaddr value '08:00'"),
    ("int4[]", [1, "x"], TypeError, "element 2: expected int for int4, not str"),
    ("int4[]", [[1, 2], [3]], EncodeError, "multidimensional array is not rectangular"),
    ("int4[]", [[], []], EncodeError, "multidimensional array has an empty sub-array"),
    ("int4[]", (1, 2), TypeError, "expected list for int4[], not tuple"),
    ("int4range", (1, 2), TypeError, "expected PgRange for int4range, not tuple"),
    ("int4range", PgRange(1, 2**40), EncodeError,
     "upper bound: 1099511627776 out of range for int4"),
    ('"char"', "ab", EncodeError, "\"char\" value must be one Latin-1 character or empty, "
                                  "not 'ab'"),
    ("bytea", "x", TypeError, "expected bytes for bytea, not str"),
]


@pytest.mark.parametrize("spec,value,cls,message", ENCODE_ERRORS,
                         ids=[f"{e[0]}-{e[3][:20]}" for e in ENCODE_ERRORS])
def test_encode_errors(spec, value, cls, message):
    enc = codec.Encoder(["int4", spec], names=["id", "col"])
    assert enc.encode([(1, None)])
    with pytest.raises(cls) as ei:
        enc.encode([(2, None), (3, value)])
    assert type(ei.value) is cls
    assert str(ei.value) == f'field 2 ("col") of row 3: {message}'
    assert (ei.value.row, ei.value.column) == (3, 2)
    # usable afterwards, and the failed batch left no trace
    block = enc.encode([(2, None)])
    assert codec.Decoder(["int4", spec]).feed(HEADER + block + TRAILER) == [(2, None)]
    assert enc.rows == 2


# ---------------------------------------------------------------------------
# Value decoding errors: exact message, field, row, byte
# ---------------------------------------------------------------------------

DECODE_ERRORS = [
    ("int4", "000001", "invalid int4 value: 3 bytes, expected 4"),
    ("int8", "00", "invalid int8 value: 1 bytes, expected 8"),
    ("bool", "", "invalid bool value: 0 bytes, expected 1"),
    ("float8", "0000", "invalid float8 value: 2 bytes, expected 8"),
    ("uuid", "00" * 15, "invalid uuid value: 15 bytes, expected 16"),
    ("date", "0000", "invalid date value: 2 bytes, expected 4"),
    ("timestamptz", "00", "invalid timestamptz value: 1 bytes, expected 8"),
    ("text", "ff", "invalid text value: 'utf-8' codec can't decode byte 0xff in position 0: "
                   "invalid start byte"),
    ("jsonb", "", "invalid jsonb value: 0 bytes, expected at least 1"),
    ("jsonb", "02 7b7d", "invalid jsonb value: unsupported version 2"),
    ("numeric", "0001 0000 0000", "invalid numeric value: 6 bytes, expected at least 8"),
    ("numeric", "0002 0000 0000 0000 0001", "invalid numeric value: 10 bytes, expected 12"),
    ("numeric", "0001 0000 0000 0000 2710", "invalid numeric value: digit 10000 out of range"),
    ("numeric", "0000 0000 1234 0000", "invalid numeric value: invalid sign 0x1234"),
    ("numeric", "0000 0000 0000 4000", "invalid numeric value: dscale 16384 out of range"),
    ("int4[]", "00000001 00000000", "invalid int4[] value: 8 bytes, expected at least 12"),
    ("int4[]", "00000007 00000000 00000017", "invalid int4[] value: 7 dimensions, expected 0 to 6"),
    ("int4[]", "00000000 00000002 00000017", "invalid int4[] value: invalid has-nulls flag 2"),
    ("int4[]", "00000000 00000000 00000019",
     "invalid int4[] value: element type OID 25, expected 23"),
    ("int4[]", "00000001 00000000 00000017 ffffffff 00000001",
     "invalid int4[] value: dimension 1 has invalid size -1"),
    ("int4[]", "00000001 00000000 00000017 7fffffff 00000001 00000004 00000001",
     "invalid int4[] value: 2147483647 items cannot fit in 8 bytes"),
    ("int4[]", "00000001 00000000 00000017 00000001 00000001 00000003 000000",
     "invalid int4[] value: element 1: 3 bytes, expected 4"),
    ("int4[]", "00000001 00000000 00000017 00000001 00000001 fffffffe",
     "invalid int4[] value: element 1: invalid length -2"),
    ("int4[]", "00000001 00000000 00000017 00000001 00000001 00000009 00000001",
     "invalid int4[] value: element 1: length 9 exceeds the 4 bytes left"),
    ("int4[]", "00000001 00000000 00000017 00000001 00000001 00000004 00000001 00",
     "invalid int4[] value: 1 bytes of trailing data"),
    ("int4[]", "00000000 00000000 00000017 00", "invalid int4[] value: 1 bytes of trailing data"),
    ("int4range", "", "invalid int4range value: 0 bytes, expected at least 1"),
    ("int4range", "20", "invalid int4range value: invalid range flags 0x20"),
    ("int4range", "18 00", "invalid int4range value: 1 bytes of trailing data"),
    ("int4range", "02 00000004 00000001",
     "invalid int4range value: upper bound: length 4 exceeds the 0 bytes left"),
    ("int4range", "12 ffffffff", "invalid int4range value: lower bound: invalid length -1"),
    ("int4multirange", "00000002 00000001 01",
     "invalid int4multirange value: 2 items cannot fit in 5 bytes"),
    ("record", "00000001 00000017 00000002 0000",
     "invalid record value: field 1: 2 bytes, expected 4"),
    ("record", "ffffffff", "invalid record value: invalid field count -1"),
    ("inet", "07 00 00 04 00000000", "invalid inet value: invalid address family 7"),
    ("inet", "02 21 00 04 00000000", "invalid inet value: invalid prefix length 33"),
    ("inet", "02 20 00 10 00000000", "invalid inet value: invalid address length 16"),
    ("inet", "02 20 00 04 0000000000", "invalid inet value: 9 bytes, expected 8"),
    ("bit", "00000009 ff", "invalid bit value: 5 bytes, expected 6"),
    ("bit", "ffffffff", "invalid bit value: invalid bit length -1"),
    ("interval", "00" * 12, "invalid interval value: 12 bytes, expected 16"),
    ("timetz", "00" * 8, "invalid timetz value: 8 bytes, expected 12"),
    ('"char"', "6161", 'invalid "char" value: 2 bytes, expected 1'),
]


@pytest.mark.parametrize("spec,wire,message", DECODE_ERRORS,
                         ids=[f"{e[0]}-{e[2][-24:]}" for e in DECODE_ERRORS])
def test_decode_errors(spec, wire, message):
    field = h(wire)
    good = b"\x00\x02" + h("00000004 00000007") + b"\xff\xff\xff\xff"
    bad = b"\x00\x02" + h("00000004 00000008") + len(field).to_bytes(4, "big") + field
    data = HEADER + good + bad + TRAILER
    dec = codec.Decoder(["int4", spec], names=["id", "v"])
    with pytest.raises(CopyFormatError) as ei:
        dec.feed(data)
    off = 19 + len(good) + 2 + 8
    assert str(ei.value) == f'field 2 ("v") of row 2 at byte {off}: {message}'
    assert (ei.value.offset, ei.value.row, ei.value.column) == (off, 2, 2)
    # the raw decoder does not look inside values
    assert codec.Decoder(raw=True, types=["int4", spec]).feed(data)[1][1] == field


def test_stand_in_texts():
    assert PgDate(-730120).isoformat() == "0001-12-31 BC"
    assert PgDate(-2451545).isoformat() == "4714-11-24 BC"
    assert str(PgDate.INFINITY) == "infinity"
    assert PgTimestamp(9223371331199999999).isoformat() == "294276-12-31 23:59:59.999999"
    assert str(PgRange(1, 5)) == "[1,5)" and str(PgRange.EMPTY) == "empty"
    # an infinite bound is never inclusive (as in the server)
    assert PgRange(None, 5) == PgRange(None, 5, lower_inc=False)
    assert PgRange(1, None, upper_inc=True).upper_inc is False
    assert hash(PgArray([[1]], (0, 0))) == hash(PgArray([[1]], (0, 0)))
    assert PgRecord((1,), (23,)) != PgRecord((1,), (20,))


def test_naive_as_utc_is_an_explicit_opt_in():
    naive = dt.datetime(2000, 1, 1, 0, 0, 1)
    ti = pgtypes.naive_as_utc("timestamptz")
    assert ti.encode(naive) == h("00000000000f4240") == ti.encode(naive.replace(tzinfo=UTC))
    enc = codec.Encoder([ti, pgtypes.naive_as_utc("timestamptz[]"),
                         pgtypes.naive_as_utc("tstzrange")])
    block = enc.encode([(naive, [naive, None], PgRange(naive, None))])
    aware = naive.replace(tzinfo=UTC)
    assert codec.Decoder(["timestamptz", "timestamptz[]", "tstzrange"]).feed(
        HEADER + block + TRAILER) == [(aware, [aware, None], PgRange(aware, None))]
    with pytest.raises(EncodeError, match="naive datetime"):
        codec.Encoder(["timestamptz"]).encode([(naive,)])
    with pytest.raises(ValueError):
        pgtypes.naive_as_utc("int4")


@pytest.mark.parametrize("encoding,text,wire", [
    ("LATIN1", "caf\u00e9", "636166e9"),
    ("WIN1251", "\u0416", "c6"),
    ("SQL_ASCII", "a\udcff", "61ff"),       # any byte survives, as a surrogate escape
    ("UTF8", "caf\u00e9", "636166c3a9"),
])
def test_client_encodings(encoding, text, wire):
    reg = pgtypes.TypeRegistry(encoding=encoding)
    types = [reg.resolve(t) for t in ("text", "varchar[]", "jsonb")]
    row = (text, [text, None], text)
    enc = codec.Encoder(types)
    data = enc.header() + enc.encode([row]) + enc.trailer()
    assert h(wire) in data and (b"\x01" + h(wire)) in data
    dec = codec.Decoder(types)
    assert dec.feed(data) == [row]
    mood = reg.register_enum("mood", 50001, 50002)
    assert mood.decode(mood.encode(text)) == text
    assert reg.register_hstore(50030).decode(reg.resolve("hstore").encode({text: text})) \
        == {text: text}


def test_unknown_client_encoding():
    with pytest.raises(ValueError, match="no Python codec"):
        pgtypes.TypeRegistry(encoding="MULE_INTERNAL")


def test_clamping_is_an_explicit_lossy_option():
    types = [pgtypes.clamped(t) for t in ("date", "timestamp", "timestamptz", "date[]")]
    enc = codec.Encoder(["date", "timestamp", "timestamptz", "date[]"])
    block = enc.encode([(PgDate.INFINITY, PgTimestamp(-2**62), PgTimestamp.INFINITY,
                         [PgDate(-800000), dt.date(2000, 1, 1), None])])
    rows = codec.Decoder(types).feed(HEADER + block + TRAILER)
    assert rows == [(dt.date.max, dt.datetime.min, dt.datetime.max.replace(tzinfo=UTC),
                     [dt.date.min, dt.date(2000, 1, 1), None])]
    # the default never clamps
    assert codec.Decoder(["date", "timestamp", "timestamptz", "date[]"]).feed(
        HEADER + block + TRAILER) == [(PgDate.INFINITY, PgTimestamp(-2**62),
                                       PgTimestamp.INFINITY,
                                       [PgDate(-800000), dt.date(2000, 1, 1), None])]
    with pytest.raises(ValueError):
        pgtypes.clamped("int4")
