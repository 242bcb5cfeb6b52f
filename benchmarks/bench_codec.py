"""Codec benchmark: dumpcodec's COPY BINARY codec against psycopg, asyncpg and pgcopy.

Run by hand:  ``python benchmarks/bench_codec.py [--dsn DSN] [--rows N] [--narrow-rows N]``

Builds the mixed table (bigint, int, float8, bool, text, timestamptz, date,
numeric(12,2), uuid, jsonb, int[], bytea; ~10% NULLs) and the narrow one (bigint,
int) on the server (same generator as benchmarks/datasets.py, in its own schema),
fetches each table's COPY BINARY bytes once, and then measures side by side in one
run, median of ``--rounds`` (3):

- offline decode from the bytes in memory: ours (C), ours (pure Python, on a
  prefix), psycopg's own binary row parser (``parse_row_binary`` with a Transformer
  whose loader types are set, fed the rows one by one as COPY hands them over);
- end-to-end decode from the server: ours (dumpcodec.pump blocks into a Decoder),
  psycopg ``copy.rows()`` with ``set_types``, asyncpg (it cannot decode COPY
  output: a server-side cursor over ``SELECT *``);
- offline encode into bytes: ours (C), ours (Python, on a prefix), psycopg's
  ``format_row_binary``;
- encode + load into the server: ours (Encoder blocks into dumpcodec.pump.CopyIn),
  psycopg ``write_row`` (binary, ``set_types``), asyncpg
  ``copy_records_to_table``, pgcopy ``CopyManager.copy``, and the server's ingest
  limit (the pre-encoded bytes sent as they are);
- the scanner (``scan``) against a plain copy of the bytes (``bytearray(data)``).

jsonb is text on both sides where the tool allows it (dumpcodec gives and takes
``str``; psycopg is set to load/dump jsonb as text too, its default dict figures are
shown as well; asyncpg's default jsonb codec is text; pgcopy takes bytes).  Every
decoder keeps all decoded rows in a list (as ``list(copy.rows())`` would), with the
garbage collector on, as in an application.  The machine may be shared: figures are
indicative, the ratios (measured in the same run) are the point.
"""
from __future__ import annotations

import argparse
import asyncio
import gc
import os
import statistics
import struct
import sys
import time
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import psycopg  # noqa: E402
import psycopg.conninfo  # noqa: E402
from psycopg import sql  # noqa: E402

import datasets  # noqa: E402  (benchmarks/datasets.py: the generator SQL)

SCHEMA = "bench_codec"
PY_PREFIX_BYTES = 4 << 20   # the pure-Python twin runs on a prefix of this size


# ---------------------------------------------------------------------------
# helpers

#: Offline measurements (no server involved) use this process's CPU time, which a
#: machine shared with other work disturbs far less than the wall clock; the
#: end-to-end ones (client and server) use the wall clock.
CLOCKS = {"cpu": time.process_time, "wall": time.perf_counter}


def median_time(fn: Callable[[], Any], rounds: int,
                before: Optional[Callable[[], Any]] = None,
                clock: str = "wall") -> Tuple[float, Any]:
    """Median seconds of ``rounds`` calls of fn (``before`` runs untimed each time)."""
    secs = []
    result = None
    now = CLOCKS[clock]
    for _ in range(rounds):
        if before is not None:
            before()
        gc.collect()
        t0 = now()
        result = fn()
        secs.append(now() - t0)
        if not isinstance(result, int):
            result = None   # do not keep big results alive into the next round
    return statistics.median(secs), result


def default_dsn() -> str:
    for dsn in ("", "host=127.0.0.1 port=5432 user=postgres dbname=postgres"):
        try:
            with psycopg.connect(dsn, connect_timeout=3, autocommit=True):
                return dsn
        except psycopg.Error:
            continue
    raise SystemExit("no PostgreSQL server found: pass --dsn")


def fetch_copy(conn: psycopg.Connection, table: str) -> bytes:
    with conn.cursor() as cur:
        with cur.copy(sql.SQL("COPY {} TO STDOUT (FORMAT binary)").format(
                sql.Identifier(SCHEMA, table))) as copy:
            return b"".join(bytes(b) for b in copy)


def split_tuples(data: bytes) -> List[bytes]:
    """The stream as COPY hands it to a client: one message per tuple (untimed)."""
    out = []
    unpack_h = struct.Struct(">h").unpack_from
    unpack_i = struct.Struct(">i").unpack_from
    pos = 19 + unpack_i(data, 15)[0]
    mv = memoryview(data)
    while True:
        n = unpack_h(data, pos)[0]
        if n == -1:
            break
        p = pos + 2
        for _ in range(n):
            ln = unpack_i(data, p)[0]
            p += 4 + (ln if ln > 0 else 0)
        out.append(bytes(mv[pos:p]))
        pos = p
    return out


def oids_for(conn: psycopg.Connection, types: Sequence[str]) -> List[int]:
    out = []
    for t in types:
        if t.endswith("[]"):
            out.append(conn.adapters.types[t[:-2]].array_oid)
        else:
            out.append(conn.adapters.types[t].oid)
    return out


def asyncpg_kwargs(dsn: str) -> Dict[str, Any]:
    info = psycopg.conninfo.conninfo_to_dict(dsn)
    kw: Dict[str, Any] = {}
    for src, dst in (("host", "host"), ("port", "port"), ("user", "user"),
                     ("password", "password"), ("dbname", "database")):
        if info.get(src):
            kw[dst] = int(info[src]) if dst == "port" else info[src]
    return kw


class Report:
    def __init__(self) -> None:
        self.lines: List[Tuple[str, str, str, float, float, Optional[float]]] = []

    def add(self, group: str, table: str, who: str, secs: float, rows: int,
            nbytes: int, base: Optional[float] = None) -> float:
        rate = rows / secs if secs > 0 else float("inf")
        mbs = nbytes / secs / 1e6 if secs > 0 else float("inf")
        self.lines.append((group, table, who, rate, mbs, base))
        print(f"  {group:<14} {table:<7} {who:<34} {rate:>12,.0f} rows/s {mbs:>9.1f} MB/s",
              flush=True)
        return rate

    def table(self) -> str:
        out = [f"{'benchmark':<14} {'table':<7} {'who':<34} {'rows/s':>12} {'MB/s':>9}  ratio"]
        out.append("-" * len(out[0]) + "-" * 6)
        for group, table, who, rate, mbs, base in self.lines:
            ratio = f"{rate / base:6.2f}x" if base else ""
            out.append(f"{group:<14} {table:<7} {who:<34} {rate:>12,.0f} {mbs:>9.1f}  {ratio}")
        return "\n".join(out)


# ---------------------------------------------------------------------------
# the measurements

def bench_offline_decode(rep: Report, conn, table: str, data: bytes, types: List[str],
                         rounds: int) -> None:
    from dumpcodec import _fastcopy
    from dumpcodec.copy import pure
    from psycopg.adapt import Transformer
    from psycopg.pq import Format
    from psycopg._copy_base import BinaryFormatter, parse_row_binary
    import psycopg.types.json as pjson

    piece = 1 << 20

    def ours(mod, buf):
        def run():
            dec = mod.Decoder(types)
            rows = []
            for i in range(0, len(buf), piece):
                rows += dec.feed(buf[i:i + piece])
            dec.close()
            return len(rows)
        return run

    secs, nrows = median_time(ours(_fastcopy, data), rounds, clock="cpu")
    ours_rate = secs
    n_all = nrows
    msgs = split_tuples(data)
    oids = oids_for(conn, types)

    def psy(tx):
        # what psycopg's Copy does per COPY message: its BinaryFormatter.parse_row
        # (signature check on the first, then the C parse_row_binary); the server
        # sends the header in the same message as the first tuple
        hsize = 19 + struct.unpack_from(">i", data, 15)[0]
        first = data[:hsize] + msgs[0]
        rest = msgs[1:]

        def run():
            parse = BinaryFormatter(tx).parse_row
            out = [parse(first)]
            out += [parse(m) for m in rest]
            return len(out)
        return run

    def psy_core(tx):
        def run():
            return len([parse_row_binary(m, tx) for m in msgs])
        return run

    tx = Transformer(conn)
    tx.set_loader_types(oids, Format.BINARY)
    psecs, _ = median_time(psy(tx), rounds, clock="cpu")
    with psycopg.connect(conn.info.dsn, autocommit=True) as c2:
        pjson.set_json_loads(lambda b: bytes(b).decode(), c2)
        tx2 = Transformer(c2)
        tx2.set_loader_types(oids, Format.BINARY)
        psecs_text, _ = median_time(psy(tx2), rounds, clock="cpu")
        csecs_text, _ = median_time(psy_core(tx2), rounds, clock="cpu")
    base = n_all / psecs_text
    rep.add("decode offline", table, "psycopg Copy row parser (jsonb str)", psecs_text,
            n_all, len(data), base)
    if "jsonb" in types:
        rep.add("decode offline", table, "psycopg Copy row parser (jsonb dict)", psecs,
                n_all, len(data), base)
    rep.add("decode offline", table, "psycopg C parse_row_binary alone", csecs_text,
            n_all, len(data), base)
    rep.add("decode offline", table, "dumpcodec C", ours_rate, n_all, len(data), base)
    # The same two with the garbage collector off: what the decoding itself costs.
    # (Both keep every row alive; with the collector on, its passes over millions
    # of tracked tuples and lists are a large share of both figures.)
    gc.disable()
    try:
        nsecs, _ = median_time(ours(_fastcopy, data), rounds, clock="cpu")
        with psycopg.connect(conn.info.dsn, autocommit=True) as c3:
            pjson.set_json_loads(lambda b: bytes(b).decode(), c3)
            tx3 = Transformer(c3)
            tx3.set_loader_types(oids, Format.BINARY)
            pnsecs, _ = median_time(psy(tx3), rounds, clock="cpu")
    finally:
        gc.enable()
    nbase = n_all / pnsecs
    rep.add("decode gc off", table, "psycopg Copy row parser (jsonb str)", pnsecs, n_all,
            len(data), nbase)
    rep.add("decode gc off", table, "dumpcodec C", nsecs, n_all, len(data), nbase)
    # the pure-Python twin on a prefix that is a complete stream
    ch = _fastcopy.Chunker(PY_PREFIX_BYTES)
    prefix = ch.feed(data)[0][0] if len(data) > PY_PREFIX_BYTES else data
    py_secs, py_rows = median_time(ours(pure, prefix), 1, clock="cpu")
    rep.add("decode offline", table, "dumpcodec pure Python", py_secs, py_rows,
            len(prefix), base)


def bench_e2e_decode(rep: Report, dsn: str, table: str, nbytes: int, types: List[str],
                     rounds: int) -> None:
    from dumpcodec import _fastcopy, pump
    import psycopg.types.json as pjson
    query = sql.SQL("COPY {} TO STDOUT (FORMAT binary)").format(sql.Identifier(SCHEMA, table))

    with psycopg.connect(dsn, autocommit=True) as conn:
        def psy():
            with conn.cursor() as cur:
                with cur.copy(query) as copy:
                    copy.set_types(types)
                    return len(list(copy.rows()))
        psecs, n = median_time(psy, rounds)
    with psycopg.connect(dsn, autocommit=True) as conn:
        pjson.set_json_loads(lambda b: bytes(b).decode(), conn)

        def psy_text():
            with conn.cursor() as cur:
                with cur.copy(query) as copy:
                    copy.set_types(types)
                    return len(list(copy.rows()))
        psecs_text, _ = median_time(psy_text, rounds)
        # streamed: each row looked at and dropped, as a consumer that does not keep
        # the whole table in memory (no collector passes over millions of live rows)
        def psy_stream():
            k = 0
            with conn.cursor() as cur:
                with cur.copy(query) as copy:
                    copy.set_types(types)
                    for _row in copy.rows():
                        k += 1
            return k
        psecs_stream, _ = median_time(psy_stream, rounds)
    base = n / psecs_text
    rep.add("decode e2e", table, "psycopg copy.rows() (jsonb str)", psecs_text, n, nbytes, base)
    if "jsonb" in types:
        rep.add("decode e2e", table, "psycopg copy.rows() (jsonb dict)", psecs, n, nbytes, base)

    with psycopg.connect(dsn, autocommit=True) as conn:
        # pump.copy_out_rows: the server's data read in a helper thread while this
        # one decodes (with the C Decoder whatever DUMPCODEC_IMPL says)
        def ours():
            rows: List[tuple] = []
            for batch in pump.copy_out_rows(conn, query, decoder=_fastcopy.Decoder(types)):
                rows += batch
            return len(rows)
        osecs, on = median_time(ours, rounds)

        def ours_stream():
            k = 0
            for batch in pump.copy_out_rows(conn, query, decoder=_fastcopy.Decoder(types)):
                for _row in batch:
                    k += 1
            return k
        ssecs, _ = median_time(ours_stream, rounds)
    rep.add("decode e2e", table, f"dumpcodec C (pump: {pump.PUMP})", osecs, on, nbytes, base)
    sbase = n / psecs_stream
    rep.add("decode e2e streamed", table, "psycopg copy.rows() (jsonb str), streamed",
            psecs_stream, n, nbytes, sbase)
    rep.add("decode e2e streamed", table, f"dumpcodec C (pump: {pump.PUMP}), streamed",
            ssecs, n, nbytes, sbase)

    try:
        import asyncpg
    except ImportError:
        return

    async def apg() -> float:
        c = await asyncpg.connect(**asyncpg_kwargs(dsn))
        try:
            secs = []
            for _ in range(rounds):
                gc.collect()
                t0 = time.perf_counter()
                rows = []
                async with c.transaction():
                    cur = await c.cursor(f'SELECT * FROM "{SCHEMA}"."{table}"')
                    while True:
                        got = await cur.fetch(50_000)
                        if not got:
                            break
                        rows += got
                secs.append(time.perf_counter() - t0)
                del rows
            return statistics.median(secs)
        finally:
            await c.close()
    asecs = asyncio.run(apg())
    rep.add("decode e2e", table, "asyncpg SELECT * (cursor)", asecs, n, nbytes, base)


def bench_encode(rep: Report, dsn: str, table: str, data: bytes, types: List[str],
                 rounds: int) -> None:
    from dumpcodec import _fastcopy, pump
    from dumpcodec.copy import pure
    from psycopg.adapt import Transformer
    from psycopg.pq import Format
    from psycopg._copy_base import format_row_binary
    import psycopg.types.json as pjson

    gc.disable()
    rows = _fastcopy.Decoder(types).feed(data)
    gc.freeze()
    gc.enable()
    nbytes = len(data)
    load = f"{table}_load"
    ident = sql.Identifier(SCHEMA, load)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(ident))
        conn.execute(sql.SQL("CREATE UNLOGGED TABLE {} (LIKE {})").format(
            ident, sql.Identifier(SCHEMA, table)))

    def truncate():
        with psycopg.connect(dsn, autocommit=True) as c:
            c.execute(sql.SQL("TRUNCATE {}").format(ident))

    # rows per encode() call offline: blocks of about 64 kB, as copy_in_rows makes
    batch = max(64, (64 << 10) * len(rows) // max(1, nbytes))

    # offline: ours C, ours Python (prefix), psycopg format_row_binary
    def ours_offline():
        enc = _fastcopy.Encoder(types)
        total = len(enc.header())
        for i in range(0, len(rows), batch):
            total += len(enc.encode(rows[i:i + batch]))
        return total + 2
    osecs, _ = median_time(ours_offline, rounds, clock="cpu")
    with psycopg.connect(dsn, autocommit=True) as conn:
        pjson.set_json_dumps(lambda obj: obj, conn)   # jsonb given as str, like ours
        oids = oids_for(conn, types)
        tx = Transformer(conn)
        tx.set_dumper_types(oids, Format.BINARY)

        def psy_offline():
            out = bytearray()
            for r in rows:
                format_row_binary(r, tx, out)
            return len(out)
        psecs, _ = median_time(psy_offline, rounds, clock="cpu")
    base = len(rows) / psecs
    rep.add("encode offline", table, "psycopg format_row_binary", psecs, len(rows), nbytes, base)
    rep.add("encode offline", table, "dumpcodec C", osecs, len(rows), nbytes, base)
    prefix = rows[:max(1, len(rows) * PY_PREFIX_BYTES // max(1, nbytes))]

    def py_offline():
        return len(pure.Encoder(types).encode(prefix))
    pysecs, _ = median_time(py_offline, 1, clock="cpu")
    rep.add("encode offline", table, "dumpcodec pure Python", pysecs, len(prefix),
            nbytes * len(prefix) // len(rows), base)

    copy_in = sql.SQL("COPY {} FROM STDIN (FORMAT binary)").format(ident)

    # encode + load: psycopg write_row
    with psycopg.connect(dsn) as conn:
        pjson.set_json_dumps(lambda obj: obj, conn)

        def psy_load():
            with conn.cursor() as cur:
                with cur.copy(copy_in) as copy:
                    copy.set_types(types)
                    for r in rows:
                        copy.write_row(r)
            conn.commit()
        psecs, _ = median_time(psy_load, rounds, truncate)
    base = len(rows) / psecs
    rep.add("encode+load", table, "psycopg write_row (binary)", psecs, len(rows), nbytes, base)

    with psycopg.connect(dsn) as conn:
        # pump.copy_in_rows: encoding here while a helper thread sends the blocks
        def ours_load():
            pump.copy_in_rows(conn, copy_in, rows, encoder=_fastcopy.Encoder(types))
            conn.commit()
        osecs, _ = median_time(ours_load, rounds, truncate)

        # the limit: the same bytes, already encoded, in 64 kB writes (the fastest of
        # 64 kB and 1 MB here, as for copy_in_rows' blocks)
        def raw_load():
            with pump.CopyIn(conn, copy_in) as cp:
                for i in range(0, len(data), 64 << 10):
                    cp.write(data[i:i + (64 << 10)])
            conn.commit()
        rsecs, _ = median_time(raw_load, rounds, truncate)
    rep.add("encode+load", table, f"dumpcodec C (pump: {pump.PUMP}, copy_in_rows)", osecs,
            len(rows), nbytes, base)
    rep.add("encode+load", table, "server ingest limit (raw bytes)", rsecs, len(rows), nbytes,
            base)

    try:
        import asyncpg

        async def apg() -> float:
            c = await asyncpg.connect(**asyncpg_kwargs(dsn))
            try:
                secs = []
                for _ in range(rounds):
                    truncate()
                    gc.collect()
                    t0 = time.perf_counter()
                    await c.copy_records_to_table(load, records=rows, schema_name=SCHEMA)
                    secs.append(time.perf_counter() - t0)
                return statistics.median(secs)
            finally:
                await c.close()
        asecs = asyncio.run(apg())
        rep.add("encode+load", table, "asyncpg copy_records_to_table", asecs, len(rows),
                nbytes, base)
    except ImportError:
        pass

    try:
        import psycopg2
        from pgcopy import CopyManager
        jcols = [i for i, t in enumerate(types) if t == "jsonb"]
        # pgcopy takes jsonb as bytes (serialised); prepared untimed
        prow = rows if not jcols else [
            tuple(v.encode() if (i in jcols and v is not None) else v
                  for i, v in enumerate(r)) for r in rows]
        conn2 = psycopg2.connect(dsn)
        try:
            cols = datasets.column_names(table)
            mgr = CopyManager(conn2, f"{SCHEMA}.{load}", cols)

            def pgc():
                mgr.copy(prow)
                conn2.commit()
            gsecs, _ = median_time(pgc, rounds, truncate)
        finally:
            conn2.close()
        rep.add("encode+load", table, "pgcopy CopyManager.copy", gsecs, len(rows), nbytes, base)
    except ImportError:
        pass
    gc.unfreeze()


def bench_scan(rep: Report, table: str, data: bytes, rows: int, rounds: int) -> None:
    from dumpcodec import _fastcopy
    from dumpcodec.copy import pure

    def rep_time(fn):
        # repeat so that a sub-10 ms operation is measurable
        k = max(1, int(0.2 / max(1e-6, median_time(fn, 1, clock="cpu")[0])))

        def many():
            for _ in range(k):
                fn()
        return median_time(many, rounds, clock="cpu")[0] / k
    csecs = rep_time(lambda: bytearray(data))
    ssecs = rep_time(lambda: _fastcopy.scan(data))
    base = rows / csecs
    rep.add("scan", table, "bytes copy (bytearray)", csecs, rows, len(data), base)
    rep.add("scan", table, "dumpcodec C scan()", ssecs, rows, len(data), base)
    ch = _fastcopy.Chunker(PY_PREFIX_BYTES)
    prefix = ch.feed(data)[0] if len(data) > PY_PREFIX_BYTES else (data, rows)
    psecs = median_time(lambda: pure.scan(prefix[0]), 1, clock="cpu")[0]
    rep.add("scan", table, "dumpcodec pure Python scan()", psecs, prefix[1], len(prefix[0]),
            base)


def main(argv: Optional[Sequence[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dsn", help="libpq conninfo of a maintenance database "
                    "(default: libpq defaults, then 127.0.0.1 user postgres)")
    ap.add_argument("--rows", type=int, default=200_000, help="rows of the mixed table")
    ap.add_argument("--narrow-rows", type=int, default=1_000_000,
                    help="rows of the narrow table")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--only", default="decode,e2e,encode,scan",
                    help="comma-separated subset of decode,e2e,encode,scan")
    args = ap.parse_args(argv)
    only = set(args.only.split(","))

    from dumpcodec import _fastcopy  # noqa: F401  (fail early when the core is not built)

    admin = args.dsn if args.dsn is not None else default_dsn()
    dsn = datasets.ensure_database(admin)
    sizes = {"mixed": args.rows, "narrow": args.narrow_rows}
    rep = Report()
    with psycopg.connect(dsn, autocommit=True) as conn:
        ver = conn.info.server_version
    print(f"server {ver // 10000}.{ver % 100}, psycopg {psycopg.__version__} "
          f"({psycopg.pq.__impl__}), python {sys.version.split()[0]}, "
          f"median of {args.rounds}", flush=True)
    for table, n in sizes.items():
        if n <= 0:
            continue
        datasets.ensure_table(dsn, table, n, schema=SCHEMA)
        types = datasets.short_types(table)
        with psycopg.connect(dsn, autocommit=True) as conn:
            data = fetch_copy(conn, table)
            print(f"{table}: {n:,} rows, {len(data) / 1e6:.1f} MB of COPY BINARY", flush=True)
            if "decode" in only:
                bench_offline_decode(rep, conn, table, data, types, args.rounds)
        if "e2e" in only:
            bench_e2e_decode(rep, dsn, table, len(data), types, args.rounds)
        if "encode" in only:
            bench_encode(rep, dsn, table, data, types, args.rounds)
        if "scan" in only:
            bench_scan(rep, table, data, n, args.rounds)
    print()
    print("ratio: rows/s relative to the first line of each group "
          "(psycopg for decode and encode, a bytes copy for scan); offline groups "
          "and scan in process CPU time, e2e and encode+load in wall time")
    print(rep.table())
    return 0


if __name__ == "__main__":
    sys.exit(main())
