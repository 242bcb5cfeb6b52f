"""``dumpcodec demo``: the whole round trip on a throw-away database, no setup needed.

Starts an embedded PostgreSQL (the ``embedded`` extra, pgserver) unless ``--dsn``
names a server, creates a small but real database (enum, domain, numeric, timestamptz,
jsonb, arrays, uuid, keys, indexes, a foreign key, sequences, a partitioned table),
dumps it, lists and verifies the archive, restores it into a new database, checks that
every table and sequence is equal, prints what it did with throughput figures, and
drops both databases again (``--keep`` keeps them and the archive).
"""
from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
import uuid

from . import EXIT_FAILED, EXIT_OK
from ..progress import TerminalProgress, human_bytes, human_rate

_SCHEMA = """
CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
CREATE DOMAIN email AS text CHECK (VALUE LIKE '%@%');
CREATE TABLE customers (
    id serial PRIMARY KEY,
    email email NOT NULL UNIQUE,
    mood mood,
    signed_up timestamptz NOT NULL DEFAULT now(),
    prefs jsonb,
    tags text[]
);
CREATE TABLE orders (
    id bigserial PRIMARY KEY,
    customer_id int NOT NULL REFERENCES customers (id),
    amount numeric(12, 2) NOT NULL,
    placed timestamptz NOT NULL,
    items int[],
    ref uuid NOT NULL DEFAULT gen_random_uuid()
);
CREATE INDEX orders_customer ON orders (customer_id);
CREATE INDEX orders_placed ON orders (placed DESC);
CREATE TABLE events (id bigint NOT NULL, kind int NOT NULL);
CREATE INDEX events_id ON events (id);
CREATE TABLE readings (sensor int, at date NOT NULL, value double precision)
    PARTITION BY RANGE (at);
CREATE TABLE readings_h1 PARTITION OF readings FOR VALUES FROM ('2024-01-01') TO ('2024-07-01');
CREATE TABLE readings_h2 PARTITION OF readings FOR VALUES FROM ('2024-07-01') TO ('2025-01-01');
CREATE SEQUENCE invoice_no START 1000;
ALTER TABLE customers ADD COLUMN invoice bigint DEFAULT nextval('invoice_no');
ALTER SEQUENCE invoice_no OWNED BY customers.invoice;
CREATE SEQUENCE ticket_no AS integer INCREMENT 5 MINVALUE 10 START 10;
"""

_DATA = """
INSERT INTO customers (email, mood, signed_up, prefs, tags)
SELECT 'user' || g || '@example.org', (ARRAY['sad', 'ok', 'happy'])[g %% 3 + 1]::mood,
       timestamptz '2020-01-01 00:00+00' + g * interval '17 minutes',
       jsonb_build_object('lang', (ARRAY['en', 'de', 'fr'])[g %% 3 + 1], 'n', g),
       ARRAY['t' || (g %% 7), 't' || (g %% 11)]
FROM generate_series(1, %(customers)s) g;
INSERT INTO orders (customer_id, amount, placed, items)
SELECT g %% %(customers)s + 1, (g %% 100000) / 100.0,
       timestamptz '2023-01-01 00:00+00' + g * interval '1 minute',
       ARRAY[g %% 10, g %% 100]
FROM generate_series(1, %(orders)s) g;
INSERT INTO events SELECT g, g %% 1000 FROM generate_series(1, %(events)s) g;
INSERT INTO readings SELECT g %% 50, date '2024-01-01' + g %% 366, g / 7.0
FROM generate_series(1, %(readings)s) g;
SELECT setval('invoice_no', 4242, false);
SELECT setval('ticket_no', 505, true);
"""


def _say(text: str) -> None:
    print(text, flush=True)


def _table_digest(conn, schema: str, name: str):
    from psycopg import sql
    q = sql.SQL("SELECT count(*), md5(coalesce(string_agg(t::text, E'\\n' "
                "ORDER BY t::text), '')) FROM {} t").format(sql.Identifier(schema, name))
    return tuple(conn.execute(q).fetchone())


def _tables(conn):
    return [tuple(r) for r in conn.execute(
        "SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n "
        "ON n.oid = c.relnamespace WHERE c.relkind IN ('r', 'p') AND n.nspname = 'public' "
        "ORDER BY 2").fetchall()]


def _sequences(conn):
    out = {}
    for (name,) in conn.execute("SELECT c.relname FROM pg_class c JOIN pg_namespace n ON "
                                "n.oid = c.relnamespace WHERE c.relkind = 'S' AND "
                                "n.nspname = 'public' ORDER BY 1").fetchall():
        out[name] = tuple(conn.execute(f'SELECT last_value, is_called FROM "{name}"')
                          .fetchone())
    return out


def _server(dsn):
    """The server to work on: the one named, or an embedded one started now."""
    if dsn:
        _say(f"server: {dsn}")
        return dsn
    from ..embedded import start_embedded
    _say("starting an embedded PostgreSQL (pgserver) ...")
    t0 = time.perf_counter()
    import warnings
    with warnings.catch_warnings():   # platformdirs: XDG_RUNTIME_DIR not set
        warnings.simplefilter("ignore")
        base = start_embedded()
    _say(f"  ready in {time.perf_counter() - t0:.1f} s")
    return base


def _fill_source(src_dsn: str, sizes) -> None:
    import psycopg
    t0 = time.perf_counter()
    with psycopg.connect(src_dsn, autocommit=True) as c:
        if int(c.execute("SHOW server_version_num").fetchone()[0]) < 130000:
            c.execute("CREATE EXTENSION IF NOT EXISTS pgcrypto")
        c.execute(_SCHEMA)
        c.execute(_DATA % {k: int(v) for k, v in sizes.items()})
        c.execute("ANALYZE")
        tables = _tables(c)
    _say(f"  {len(tables)} tables ({', '.join(n for _, n in tables)}), "
         f"{sum(sizes.values())} rows, in {time.perf_counter() - t0:.1f} s")


def _dump(src_dsn: str, archive: str, jobs: int, progress) -> None:
    from ..dump import create_dump
    _say(f"dumping to {archive} (zstd, -j {jobs}) ...")
    ds = create_dump(src_dsn, ["public"], archive, jobs=jobs, sequences=["public"],
                     progress=progress)
    _say(f"  {len(ds.tables)} tables, {ds.rows} rows, {human_bytes(ds.nbytes)} of "
         f"COPY data -> {human_bytes(ds.archive_bytes)} archive in "
         f"{ds.seconds:.2f} s ({human_rate(ds.rows, ds.seconds)}, "
         f"{human_rate(ds.nbytes / (1 << 20), ds.seconds, 'MiB')}; pump: {ds.pump})")


def _list_and_verify(archive: str) -> bool:
    """List the archive (no database needed) and verify it; whether it is good."""
    from ..archive import open_dump
    _say("listing the archive (no database needed):")
    with open_dump(archive) as r:
        for t in r.tables():
            kind = "definition only" if t.extra.get("data") is False else \
                f"{t.rows} rows, {human_bytes(t.raw_size or 0)}"
            _say(f"  {t.table_id:<24} {t.format:<6} {len(t.members)} member(s), {kind}")
    t0 = time.perf_counter()
    with open_dump(archive) as r:
        report = r.verify()
    if not report.ok:
        _say("archive verification FAILED:")
        for p in report.problems:
            _say(f"  {p}")
        return False
    _say(f"verified: {report.members} members, {report.rows} rows, every "
         f"checksum and COPY framing ok ({time.perf_counter() - t0:.2f} s)")
    return True


def _restore(dst_dsn: str, dst_name: str, archive: str, jobs: int, progress):
    from ..restore import restore_dump
    _say(f"restoring into {dst_name} (-j {jobs}) ...")
    rs = restore_dump(dst_dsn, archive, jobs=jobs, progress=progress)
    _say(f"  {len(rs.ok)} tables, {rs.rows} rows in {rs.seconds:.2f} s "
         f"({human_rate(rs.rows, rs.seconds)}, "
         f"{human_rate(rs.nbytes / (1 << 20), rs.seconds, 'MiB')}) including "
         f"keys, indexes, foreign keys and ANALYZE")
    for tid, reason in rs.failed:
        _say(f"  FAILED {tid}: {reason}")
    for w in rs.warnings:
        _say(f"  warning: {w}")
    return rs


def _compare(src_dsn: str, dst_dsn: str) -> list:
    """Every table and sequence of both databases side by side; the names that differ."""
    import psycopg
    _say("comparing every table and sequence ...")
    bad = []
    with psycopg.connect(src_dsn, autocommit=True) as a, \
            psycopg.connect(dst_dsn, autocommit=True) as b:
        for schema, name in _tables(a):
            da, db_ = _table_digest(a, schema, name), _table_digest(b, schema, name)
            same = da == db_
            _say(f"  {schema}.{name:<20} {da[0]:>9} rows  md5 {da[1][:12]}  "
                 f"{'equal' if same else 'DIFFERENT'}")
            if not same:
                bad.append(name)
        sa, sb = _sequences(a), _sequences(b)
        for name, state in sa.items():
            same = sb.get(name) == state
            _say(f"  sequence {name:<20} last_value {state[0]}, is_called "
                 f"{state[1]}  {'equal' if same else 'DIFFERENT'}")
            if not same:
                bad.append(name)
    return bad


def cmd_demo(args) -> int:
    """Generate a database, dump it, list and verify the archive, restore it into a
    second database and compare both; the databases and the archive are dropped
    unless ``--keep``."""
    import psycopg
    import psycopg.conninfo

    t_all = time.perf_counter()
    base = _server(args.dsn)
    tag = uuid.uuid4().hex[:8]
    src_name, dst_name = f"dumpcodec_demo_{tag}", f"dumpcodec_demo_{tag}_restored"
    src_dsn = psycopg.conninfo.make_conninfo(base, dbname=src_name)
    dst_dsn = psycopg.conninfo.make_conninfo(base, dbname=dst_name)
    workdir = tempfile.mkdtemp(prefix="dumpcodec-demo-")
    archive = os.path.join(workdir, "demo.dcz")
    n = args.rows
    sizes = {"customers": max(10, n // 20), "orders": n, "events": n * 2,
             "readings": max(10, n // 4)}
    ok = False
    with psycopg.connect(base, autocommit=True) as admin:
        server_version = admin.execute("SHOW server_version").fetchone()[0]
        for name in (src_name, dst_name):
            admin.execute(f'CREATE DATABASE "{name}"')
        try:
            _say(f"PostgreSQL {server_version}; creating database {src_name} ...")
            _fill_source(src_dsn, sizes)
            progress = TerminalProgress(quiet=args.quiet)
            _dump(src_dsn, archive, args.jobs, progress)
            if not _list_and_verify(archive):
                return EXIT_FAILED
            rs = _restore(dst_dsn, dst_name, archive, args.jobs, progress)
            bad = _compare(src_dsn, dst_dsn)
            ok = not bad and not rs.failed
            _say(("demo OK" if ok else f"demo FAILED ({', '.join(bad)})")
                 + f" in {time.perf_counter() - t_all:.1f} s")
        finally:
            if not args.keep:
                for name in (src_name, dst_name):
                    admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                shutil.rmtree(workdir, ignore_errors=True)
            else:
                _say(f"kept: databases {src_name}, {dst_name}; archive {archive}")
    return EXIT_OK if ok else EXIT_FAILED


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "demo", help="dump and restore a generated database on an embedded server",
        description="Start an embedded PostgreSQL (no setup), create a small database, "
                    "dump it, list and verify the archive, restore it into a new "
                    "database, and check that every table is equal.",
        epilog="examples:\n  dumpcodec demo\n  dumpcodec demo --rows 1000000 -j 2\n"
               "  dumpcodec demo --dsn postgresql://postgres@localhost/postgres --keep",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dsn", help="use this server (maintenance database conninfo) "
                                 "instead of an embedded one")
    p.add_argument("--rows", type=int, default=100_000, metavar="N",
                   help="rows in the orders table (others scale with it; default 100000)")
    p.add_argument("-j", "--jobs", type=int, default=2, metavar="N",
                   help="parallel connections for dump and restore (default 2)")
    p.add_argument("--keep", action="store_true",
                   help="keep the databases and the archive")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress line")
    p.set_defaults(func=cmd_demo)
