"""Regenerate the seed corpus of the codec harnesses from a real server.

    python fuzz/make_corpus.py [--dsn DSN]

Writes ``fuzz/corpus/decoder/*`` and ``fuzz/corpus/scanner/*``: the server's own
``COPY ... TO STDOUT (FORMAT binary)`` output for one column of every type the codec
knows (edge values included: infinities, NaN, BC dates, empty and multi-dimensional
arrays with other lower bounds, empty ranges, NULLs) and for a table of all of them,
streams written by the codec's own encoder, and hand-made framing cases (OIDs flag,
header extension, data after the trailer, truncations, huge lengths).  Each file is
a fuzz input: the 4-byte control prefix of ``fuzzlib`` followed by the stream.

The DSN defaults to ``DUMPCODEC_TEST_DSN`` or the local server.  Only a temporary
table is created; nothing is left in the database.
"""
from __future__ import annotations

import argparse
import hashlib
import os
import random
import struct
import sys

_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, _HERE)

import fuzzlib  # noqa: E402

# SQL expressions per type (cast to the type by the query).  Index i of every list
# also fills row i of the "alltypes" table (lists are cycled).
VALUES = {
    "bool": ["true", "false"],
    "int2": ["0", "32767", "-32768"],
    "int4": ["0", "2147483647", "-2147483648", "42"],
    "int8": ["9223372036854775807", "-9223372036854775808", "1"],
    "oid": ["0", "4294967295"],
    "float4": ["'NaN'", "'Infinity'", "'-Infinity'", "'-0'", "'1.4e-45'", "'3.4028235e38'"],
    "float8": ["'NaN'", "'Infinity'", "'-Infinity'", "'-0'", "'5e-324'",
               "'1.7976931348623157e308'", "0.1"],
    "numeric": ["'NaN'", "'Infinity'", "'-Infinity'", "0", "1.10", "-1.00000001",
                "123456789012345678901234567890.123456789", "0.0000000000001",
                "'1e100'", "-0.5", "10000", "0.000"],
    "numeric(12,2)": ["1.10", "-9999999999.99", "0"],
    "text": ["''", "'hello'", "'ünïcödé ☃ 𝄞'", "E'tab\\there\\nline'", "repeat('x', 300)"],
    "varchar": ["'abc'", "''"],
    "varchar(10)": ["'abc'", "''", "'0123456789'"],
    "bpchar": ["'ab  '", "'x'"],
    "bpchar(5)": ["'ab'", "'abcde'"],
    "name": ["'pg_catalog'", "repeat('n', 63)"],
    '"char"': ["'a'", "''", "'é'"],
    "bytea": ["decode('00ff10', 'hex')", "''", "decode(repeat('ab', 100), 'hex')"],
    "date": ["'2000-01-01'", "'infinity'", "'-infinity'", "'4713-01-01 BC'",
             "'5874897-12-31'", "'0001-01-01'", "'9999-12-31'", "'10000-01-01'",
             "'0001-12-31 BC'"],
    "time": ["'00:00'", "'24:00:00'", "'23:59:59.999999'"],
    "timetz": ["'00:00+00'", "'12:34:56.789-05:30'", "'24:00:00+15:59'",
               "'01:02:03+14:00:05'"],
    "timestamp": ["'2000-01-01'", "'infinity'", "'-infinity'", "'4713-01-01 00:00 BC'",
                  "'294276-12-31 23:59:59.999999'", "'1970-01-01 00:00:00.000001'",
                  "'10000-01-01'"],
    "timestamp(3)": ["'2000-01-01 12:34:56.789'"],
    "timestamptz": ["'2000-01-01 00:00+00'", "'infinity'", "'-infinity'",
                    "'4713-01-01 00:00+00 BC'", "'294276-12-31 23:59:59.999999+00'",
                    "'2024-02-29 12:00:00.5+05:30'", "'10000-01-01 00:00+00'"],
    "interval": ["'1 year 2 months 3 days 04:05:06.789'", "'-1 mon'", "'0'",
                 "'178000000 years'", "'-2147483648 days'", "'-00:00:00.000001'"],
    "uuid": ["'00000000-0000-0000-0000-000000000000'",
             "'ffffffff-ffff-ffff-ffff-ffffffffffff'",
             "'12345678-9abc-def0-1234-56789abcdef0'"],
    "json": ["'{\"a\": [1, 2.5, null, true, \"é\"]}'", "'[]'", "'1e400'"],
    "jsonb": ["'{\"a\": [1, 2.5, null, true, \"é\"]}'", "'[]'", "'1e400'", "'\"\"'"],
    "jsonpath": ["'$.a[*] ? (@ > 1)'", "'strict $'"],
    "inet": ["'127.0.0.1'", "'10.0.0.0/8'", "'::1'", "'2001:db8::1/64'",
             "'192.168.1.5/24'"],
    "cidr": ["'10.0.0.0/8'", "'2001:db8::/32'", "'0.0.0.0/0'"],
    "macaddr": ["'08:00:2b:01:02:03'", "'ff:ff:ff:ff:ff:ff'"],
    "macaddr8": ["'08:00:2b:01:02:03:04:05'"],
    "bit": ["B'1'", "B'0'"],
    "bit(8)": ["B'10101010'", "B'00000000'"],
    "varbit": ["B''", "B'1'", "B'101010101'"],
    "money": ["'12.34'", "'-92233720368547758.08'", "'0'"],
    "xml": ["'<a>x</a>'", "'text only'"],
    "pg_lsn": ["'0/0'", "'FFFFFFFF/FFFFFFFF'", "'16/B374D848'"],
    "tid": ["'(0,0)'", "'(4294967295,65535)'"],
    "int4range": ["'empty'", "'[1,10)'", "'(,5]'", "'[3,)'", "'(,)'"],
    "int8range": ["'[-9223372036854775808,9223372036854775807)'", "'empty'"],
    "numrange": ["'[1.10,2.200)'", "'(,)'", "'empty'"],
    "tsrange": ["'[2000-01-01,infinity)'", "'empty'"],
    "tstzrange": ["'[-infinity,2000-01-01 00:00+00]'", "'(,)'"],
    "daterange": ["'[2000-01-01,2000-01-10]'", "'(,infinity)'", "'empty'"],
    "int4multirange": ["'{}'", "'{[1,3),[5,7)}'"],
    "nummultirange": ["'{[1.5,2.5]}'", "'{}'"],
    "tstzmultirange": ["'{[2000-01-01 00:00+00,infinity)}'"],
    "datemultirange": ["'{[2000-01-01,2000-02-01)}'", "'{}'"],
    "int4[]": ["'{}'", "'{1,NULL,3}'", "'[0:2]={1,2,3}'", "'{{1,2},{3,4}}'",
               "'[-5:-4][2:3]={{1,2},{3,NULL}}'", "'{{{{{{1}}}}}}'"],
    "int8[]": ["'{9223372036854775807,NULL}'", "'{}'"],
    "text[]": ["'{\"\",NULL,\"a,b\",\"é\"}'", "'{}'", "'{{a,b},{c,d}}'"],
    "numeric[]": ["'{NaN,1.10,-Infinity}'", "'{}'"],
    "float8[]": ["'{NaN,Infinity,-0}'"],
    "timestamptz[]": ["'{infinity,\"2000-01-01 00:00+00\"}'", "'{NULL}'"],
    "date[]": ["'{-infinity,2000-01-01}'"],
    "bool[]": ["'{t,f,NULL}'", "'{}'"],
    "uuid[]": ["'{00000000-0000-0000-0000-000000000001}'"],
    "jsonb[]": ["ARRAY['{\"a\":1}'::jsonb, NULL]"],
    "bytea[]": ["ARRAY[decode('00ff','hex'), NULL]"],
    "interval[]": ["'{\"1 day\",\"-1 mon\"}'"],
    "inet[]": ["'{127.0.0.1,::1}'"],
    "int4range[]": ["'{\"[1,2)\",empty}'"],
    "record": ["row(1, 'a'::text, NULL::int4, 2.5::numeric)", "row()",
               "row(row(1, 'x'::text), ARRAY[1,2])"],
    "xid": ["'0'", "'4294967295'"],
    "cid": ["'7'"],
    "xid8": ["'18446744073709551615'", "'0'"],
    "regclass": ["'pg_class'"],
    "regtype": ["'int4'"],
}


def _cast(expr: str, typ: str) -> str:
    # "record" values are row constructors: no cast needed (and bare ::record works).
    return f"({expr})::{typ}" if typ != "record" else f"({expr})"


def copy_out(conn, query: str) -> bytes:
    with conn.cursor() as cur:
        with cur.copy(f"COPY ({query}) TO STDOUT (FORMAT binary)") as copy:
            return b"".join(bytes(b) for b in copy)


def server_streams(conn):
    """(name, types, stream) from the server: one per type, the tables of fuzzlib."""
    out = []
    for typ in fuzzlib.SINGLE_TYPES:
        vals = VALUES.get(typ)
        if not vals:
            continue
        selects = [f"SELECT {_cast(v, typ)}" for v in vals]
        selects.append(f"SELECT NULL::{typ}")
        q = " UNION ALL ".join(selects)
        try:
            out.append((f"pg-{typ}", [typ], copy_out(conn, q)))
        except Exception as exc:  # a type this server lacks: say so, go on
            conn.rollback()
            print(f"skipped {typ}: {exc}", file=sys.stderr)
    rows = max(len(v) for v in VALUES.values())
    selects = []
    for i in range(rows):
        cols = []
        for k, (name, typ) in enumerate(fuzzlib.ALLTYPES):
            vals = VALUES[typ]
            # a4x2 shows the multi-dimensional arrays, the rest cycles.
            v = vals[(i + (3 if name == "a4x2" else 0)) % len(vals)]
            cols.append(f"{_cast(v, typ)} AS {name}")
        selects.append("SELECT " + ", ".join(cols))
    nulls = ", ".join(f"NULL::{t} AS {n}"
                      for n, t in fuzzlib.ALLTYPES)
    selects.append("SELECT " + nulls)
    q = " UNION ALL ".join(selects)
    out.append(("pg-alltypes", fuzzlib.MULTI_SCHEMAS[0], copy_out(conn, q)))
    out.append(("pg-narrow", fuzzlib.MULTI_SCHEMAS[1], copy_out(
        conn, "SELECT i::int8 * 1000003, i::int4 FROM generate_series(-20, 20) i")))
    out.append(("pg-mixed", fuzzlib.MULTI_SCHEMAS[2], copy_out(conn, """
        SELECT i::int8, (i * 7)::int4, i / 3.0::float8, i % 2 = 0,
               CASE WHEN i % 10 = 0 THEN NULL ELSE 'row ' || i END,
               '2024-01-01 00:00+00'::timestamptz + i * interval '1 hour',
               '2024-01-01'::date + i, (i * 1.25)::numeric(12,2),
               md5(i::text)::uuid, jsonb_build_object('i', i, 'l', ARRAY[i, i + 1]),
               ARRAY[i, NULL, i + 2], decode(md5(i::text), 'hex')
        FROM generate_series(1, 30) i""")))
    return out


def _stream(tuples, flags=0, ext=b"") -> bytes:
    return (fuzzlib_header(flags, ext) + b"".join(tuples) + b"\xff\xff")


def fuzzlib_header(flags=0, ext=b"") -> bytes:
    return b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", flags, len(ext)) + ext


def _tuple(fields, oid=None) -> bytes:
    parts = [struct.pack(">h", len(fields))]
    if oid is not None:
        parts.append(struct.pack(">iI", 4, oid))
    for f in fields:
        parts.append(b"\xff\xff\xff\xff" if f is None else struct.pack(">i", len(f)) + f)
    return b"".join(parts)


def handmade_streams():
    """(name, types, stream): framing cases, good and bad."""
    t2 = [_tuple([b"\x00\x00\x00\x01", b"abc"]), _tuple([None, b""])]
    good = _stream(t2)
    out = [
        ("hm-empty", None, _stream([])),
        ("hm-two-rows", None, good),
        ("hm-oids", None, _stream([_tuple([b"x"], oid=12345), _tuple([None], oid=0)],
                                  flags=1 << 16)),
        ("hm-extension", None, _stream(t2, ext=b"\x01\x02\x03\x04extension")),
        ("hm-low-flags", None, _stream(t2, flags=0xFFFF)),
        ("hm-critical-flag", None, _stream(t2, flags=1 << 17)),
        ("hm-after-trailer", None, good + b"\x00"),
        ("hm-two-trailers", None, good + b"\xff\xff"),
        ("hm-no-trailer", None, good[:-2]),
        ("hm-huge-length", None, fuzzlib_header() + b"\x00\x01\x40\x00\x00\x01" + b"x" * 8),
        ("hm-max-length", None, fuzzlib_header() + b"\x00\x01\x7f\xff\xff\xff" + b"x" * 8),
        ("hm-negative-length", None, fuzzlib_header() + b"\x00\x01\xff\xff\xff\xfe"),
        ("hm-negative-count", None, fuzzlib_header() + b"\x80\x00"),
        ("hm-count-mismatch", None, _stream([_tuple([b"a"]), _tuple([b"a", b"b"])])),
        ("hm-zero-fields", None, _stream([_tuple([]), _tuple([])])),
        ("hm-bad-signature", None, b"PGCOPY\n\xff\r\n\x01" + good[11:]),
        ("hm-ext-huge", None, b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 0x7FFFFFFF)),
        ("hm-oid-bad-length", None, fuzzlib_header(1 << 16) + b"\x00\x01\x00\x00\x00\x08"),
    ]
    for cut in (1, 5, 11, 15, 19, 21, 25, len(good) - 1):
        out.append((f"hm-cut{cut}", None, good[:cut]))
    return out


def encoder_streams():
    """Streams written by the codec's own encoder (raw, and typed when available)."""
    impls = fuzzlib.load_impls()
    mod = impls.get("python") or next(iter(impls.values()))
    rnd = random.Random(1)
    out = []
    rows = [tuple(None if rnd.random() < 0.1 else bytes(rnd.randrange(256)
                                                         for _ in range(rnd.randrange(12)))
                  for _ in range(3)) for _ in range(20)]
    enc = mod.Encoder(None)
    out.append(("enc-raw3", None, enc.header() + enc.encode(rows) + enc.trailer()))
    try:
        import datetime as dt
        import decimal
        import uuid
        types = fuzzlib.MULTI_SCHEMAS[2]
        vals = []
        for i in range(15):
            vals.append((i * 10**12, -i, i / 7, bool(i % 2), f"tëxt {i}" * (i % 3),
                         dt.datetime(2024, 1, 1, i, tzinfo=dt.timezone.utc),
                         dt.date(1999, 12, 31) + dt.timedelta(days=i * 400),
                         decimal.Decimal(i) / 4, uuid.UUID(int=i), '{"k": [%d, null]}' % i,
                         [i, None, -i], bytes(range(i))))
        enc = mod.Encoder(types)
        out.append(("enc-mixed", types, enc.header() + enc.encode(vals) + enc.trailer()))
    except Exception as exc:  # typed encoder not there yet: raw seeds only
        print(f"typed encoder seeds skipped: {exc!r}", file=sys.stderr)
    return out


TEXT_DATA = b"1\tfoo\n2\t\\N\n3\ttab\\there\n"


def build_archive(backend: str, streams, abort_after: int = -1, chunk_size: int = 256) -> bytes:
    """An archive of ours holding ``streams`` (name, types, stream) and a text table."""
    import io
    from dumpcodec.archive import open_dump
    buf = io.BytesIO()
    w = open_dump(buf, "w", backend=backend, chunk_size=chunk_size, created=0)
    w.set_info(server_version="15.20", client_encoding="UTF8")
    for i, (name, types, stream) in enumerate(streams):
        cols = [f"c{k}" for k in range(len(types))] if types else None
        with w.add_table(name, None, cols, list(types) if types else None) as t:
            # in two pieces, cut inside the first tuple
            t.write(stream[:23])
            t.write(stream[23:])
        if i == abort_after:
            w.abort()
            return buf.getvalue()
    with w.add_table("public.text table\nwith 'quotes'", None, ["a", "b"],
                     ["int4", "text"], format="text") as t:
        t.write(TEXT_DATA)
    w.close()
    return buf.getvalue()


def build_dachs(streams, compress: bool = True) -> bytes:
    """A dump laid out exactly as DaCHS writes one: gzip tar, index.txt last."""
    import io
    import tarfile
    buf = io.BytesIO()
    index = []
    with tarfile.open(fileobj=buf, mode="w:gz" if compress else "w") as tar:
        members = [(f"table_{i:03d}.dump", name, stream)
                   for i, (name, _types, stream) in enumerate(streams)]
        members.append((f"table_{len(members):03d}.textdump", "public.txt", TEXT_DATA))
        for member, name, data in members:
            ti = tarfile.TarInfo(member)
            ti.size = len(data)
            ti.mtime = 0
            tar.addfile(ti, io.BytesIO(data))
            index.append(f"{member} {name}\n")
        data = "".join(index).encode()
        ti = tarfile.TarInfo("index.txt")
        ti.size = len(data)
        tar.addfile(ti, io.BytesIO(data))
    return buf.getvalue()


def archive_inputs(streams):
    """(name, fuzz input) pairs for the archive harness."""
    sys.path.insert(0, _HERE)
    import fuzz_archive
    by_name = {n: (n, t, s) for n, t, s in streams}
    tables = [("public.narrow",) + by_name["pg-narrow"][1:],
              ("public.mixed",) + by_name["pg-mixed"][1:],
              ("public.empty", ["int4"], by_name["hm-empty"][2][:19] + b"\xff\xff")]
    out = []
    for backend in ("tar", "gzip", "zstd"):
        arch = build_archive(backend, tables)
        out.append((f"ours-{backend}", fuzz_archive.pack(arch, 0)))
        out.append((f"ours-{backend}-pipe", fuzz_archive.pack(arch, 8)))
    tar = build_archive("tar", tables)
    out.append(("ours-tar-as-gzip", fuzz_archive.pack(tar, 1)))
    out.append(("ours-tar-as-zstd", fuzz_archive.pack(tar, 2)))
    out.append(("ours-tar-aborted", fuzz_archive.pack(build_archive("tar", tables, 1), 0)))
    out.append(("ours-zstd-aborted", fuzz_archive.pack(build_archive("zstd", tables, 0), 0)))
    dtables = tables[:2]
    out.append(("dachs-gz", fuzz_archive.pack(build_dachs(dtables), 0)))
    out.append(("dachs-tar-forced", fuzz_archive.pack(build_dachs(dtables, False), 3)))
    out.append(("dachs-tar-as-gzip", fuzz_archive.pack(build_dachs(dtables, False), 1)))
    return out


def write_corpus(streams, root: str) -> int:
    dec_dir = os.path.join(root, "decoder")
    scan_dir = os.path.join(root, "scanner")
    arch_dir = os.path.join(root, "archive")
    for d in (dec_dir, scan_dir, arch_dir):
        os.makedirs(d, exist_ok=True)
        for old in os.listdir(d):      # a regenerated corpus replaces the old one
            os.unlink(os.path.join(d, old))
    count = 0

    def put(d, name, data):
        nonlocal count
        digest = hashlib.sha1(data).hexdigest()[:8]
        with open(os.path.join(d, f"{name}-{digest}"), "wb") as f:
            f.write(data)
        count += 1

    for name, data in archive_inputs(streams):
        put(arch_dir, name, data)
    for name, types, stream in streams:
        safe = name.replace('"', "").replace("[]", "_arr").replace("(", "_").replace(
            ")", "").replace(",", "_")
        sidx = fuzzlib.schema_index(types)
        put(dec_dir, safe, fuzzlib.pack_input(stream, 0, sidx, 0))
        if types is not None:
            put(dec_dir, safe + "-rt", fuzzlib.pack_input(stream, 2 | 4, sidx, 7))
            put(dec_dir, safe + "-raw", fuzzlib.pack_input(stream, 1, sidx, 1))
        put(scan_dir, safe, fuzzlib.pack_input(stream, 0, 4, 0))
        if len(stream) > 60:
            put(scan_dir, safe + "-split", fuzzlib.pack_input(stream, 0, 1, 3))
    return count


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dsn", default=os.environ.get(
        "DUMPCODEC_TEST_DSN", "host=127.0.0.1 port=5432 user=postgres dbname=postgres"))
    ap.add_argument("--out", default=os.path.join(_HERE, "corpus"))
    args = ap.parse_args()
    import psycopg
    with psycopg.connect(args.dsn) as conn:
        conn.execute("SET client_encoding TO 'UTF8'")
        conn.execute("SET lc_monetary TO 'C'")
        streams = server_streams(conn)
    streams += handmade_streams() + encoder_streams()
    n = write_corpus(streams, args.out)
    print(f"wrote {n} corpus files from {len(streams)} streams under {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
