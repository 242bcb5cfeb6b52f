"""Honest archives still restore under the allow-list (issue 17): the acceptance of real
definitions does not shrink.

A real schema with what applications write -- defaults ``now()``,
``gen_random_uuid()``, ``clock_timestamp()``, ``CURRENT_DATE + 30``, the serial's own
``nextval``, identity columns, CHECKs with ``length()``, ``lower()``, ``btrim()``, date
arithmetic, regular expressions, ``LIKE``, ``IN``, ``BETWEEN``, ``COALESCE``, ``CASE``,
casts and array subscripts, a domain with a CHECK, an enum, a composite, a range type
with a subtype_diff, an expression index with a predicate, a generated column, a
btree_gist exclusion constraint, a partitioned table with its partitions, foreign keys
between the restored tables -- is dumped and restored into the prepared target of
:mod:`untrusted_helpers` (which holds user code that must not be reached), as the
superuser, with ``role=``, and logged in as an ordinary role.  Every table must
arrive with its rows, keys, constraints and sequence state, nothing else may change.
"""
from __future__ import annotations

from decimal import Decimal

import psycopg
import pytest
from psycopg import sql

pytest.register_assert_rewrite("untrusted_helpers")
from untrusted_helpers import (  # noqa: E402
    MODES, Target, as_pipe, assert_unchanged, restore, snapshot)

# the fixtures (source, template, target, ...) are a plugin, so that the session's
# roles and template database exist once for every module that uses them
pytest_plugins = ["untrusted_helpers"]

HONEST_SQL = """
CREATE SCHEMA shop;
CREATE TYPE shop.status AS ENUM ('new', 'paid', 'shipped');
CREATE DOMAIN shop.email AS text
    CHECK (VALUE ~ '^[^@ ]+@[^@ ]+$' AND length(VALUE) < 200);
CREATE TYPE shop.price AS (amount numeric(12,2), currency char(3));
CREATE TYPE shop.floatrange AS RANGE (subtype = float8, subtype_diff = float8mi);
CREATE TABLE shop.customers (
    id serial PRIMARY KEY,
    uid uuid NOT NULL DEFAULT gen_random_uuid() UNIQUE,
    email shop.email NOT NULL,
    name text NOT NULL CHECK (length(name) BETWEEN 1 AND 100 AND name = btrim(name)),
    created timestamptz NOT NULL DEFAULT now(),
    born date CHECK (born > '1900-01-01' AND born <= date '2100-01-01' - interval '1 day'),
    tags text[] DEFAULT '{}',
    CONSTRAINT customers_email_lower CHECK (lower(email::text) = email::text
                                            OR email::text ILIKE '%@%'));
CREATE UNIQUE INDEX customers_lower_name ON shop.customers (lower(name));
CREATE TABLE shop.orders (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    customer int NOT NULL REFERENCES shop.customers (id),
    status shop.status NOT NULL DEFAULT 'new',
    total shop.price,
    qty int CHECK (qty IN (1, 2, 3, 5, 8) OR qty BETWEEN 10 AND 100),
    code text CHECK (code ~ '^[A-Z]{3}-[0-9]+$' AND code NOT LIKE 'XXX%'
                     AND code !~* 'bad'),
    note text CHECK (COALESCE(note, '') <> 'forbidden'),
    kind text CHECK (CASE WHEN kind IS NULL THEN true ELSE kind IN ('a', 'b') END),
    arr int[] CHECK (arr[1] IS NULL OR arr[1] > 0),
    due date DEFAULT (CURRENT_DATE + 30),
    amount numeric(10,2) CHECK (amount::int >= 0 AND round(amount) < 1e6),
    gross numeric GENERATED ALWAYS AS (amount * 1.2) STORED,
    placed timestamptz DEFAULT clock_timestamp(),
    CHECK (status <> 'shipped' OR placed IS NOT NULL),
    CHECK (date_trunc('day', placed) >= '2000-01-01'::timestamptz));
CREATE INDEX orders_code ON shop.orders (upper(code)) WHERE status <> 'shipped';
CREATE INDEX orders_customer ON shop.orders (customer, status);
CREATE TABLE shop.measures (id int, at date NOT NULL, v float8 CHECK (v >= 0),
                            PRIMARY KEY (id, at)) PARTITION BY RANGE (at);
CREATE TABLE shop.measures_2024 PARTITION OF shop.measures
    FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
CREATE TABLE shop.measures_2025 PARTITION OF shop.measures
    FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
CREATE TABLE shop.spans (id int PRIMARY KEY, span shop.floatrange,
                         during tstzrange NOT NULL);
CREATE INDEX spans_span ON shop.spans USING gist (span);

INSERT INTO shop.customers (email, name, born, tags)
SELECT 'c' || g || '@example.org', 'Customer ' || g, date '1980-01-01' + g,
       ARRAY['t' || g % 3]
FROM generate_series(1, 40) g;
INSERT INTO shop.orders (customer, status, total, qty, code, note, kind, arr, amount)
SELECT g % 40 + 1, (ARRAY['new', 'paid', 'shipped'])[g % 3 + 1]::shop.status,
       ROW(g * 1.5, 'EUR')::shop.price, (ARRAY[1, 2, 3, 5, 8])[g % 5 + 1],
       'ABC-' || g, CASE WHEN g % 4 = 0 THEN NULL ELSE 'note ' || g END,
       (ARRAY['a', 'b', NULL])[g % 3 + 1], ARRAY[g, g + 1], g * 2.5
FROM generate_series(1, 120) g;
INSERT INTO shop.measures SELECT g, date '2024-01-01' + g * 3, g / 7.0
FROM generate_series(1, 200) g;
INSERT INTO shop.spans
SELECT g, shop.floatrange(g, g + 0.5),
       tstzrange(timestamptz '2024-01-01' + g * interval '1 hour',
                 timestamptz '2024-01-01' + (g + 1) * interval '1 hour')
FROM generate_series(1, 600) g;
"""

# a btree_gist exclusion constraint, where the extension is there
GIST_SQL = """
CREATE TABLE shop.bookings (id int PRIMARY KEY, room int NOT NULL,
                            during tstzrange NOT NULL,
                            EXCLUDE USING gist (room WITH =, during WITH &&));
INSERT INTO shop.bookings
SELECT g, g % 5, tstzrange(timestamptz '2024-01-01' + g * interval '1 day',
                           timestamptz '2024-01-01' + (g + 1) * interval '1 day')
FROM generate_series(1, 50) g;
"""

TABLES = ["shop.customers", "shop.orders", "shop.measures", "shop.measures_2024",
          "shop.measures_2025", "shop.spans"]


def _has_btree_gist(conn) -> bool:
    return bool(conn.execute("SELECT 1 FROM pg_catalog.pg_available_extensions "
                             "WHERE name = 'btree_gist'").fetchone())


@pytest.fixture(scope="module")
def honest_archive(pg_server, tmp_path_factory):
    from conftest import _create_db, _drop_db
    from dumpcodec.dump import create_dump
    db = _create_db(pg_server)
    try:
        with db.connect() as c:
            c.execute(HONEST_SQL)
            tables = list(TABLES)
            if _has_btree_gist(c):
                c.execute("CREATE EXTENSION btree_gist")
                c.execute(GIST_SQL)
                tables.append("shop.bookings")
            contents = {t: _contents(c, t) for t in tables}
            seqs = c.execute("SELECT last_value FROM shop.customers_id_seq").fetchone()
        path = tmp_path_factory.mktemp("honest") / "honest.dump"
        create_dump(db.dsn, ["shop.*"], str(path), backend="zstd")
        yield path, tables, contents, seqs[0]
    finally:
        _drop_db(db)


def _contents(conn, table: str):
    schema, name = table.split(".")
    return conn.execute(sql.SQL("SELECT x::text FROM ONLY {} x ORDER BY 1").format(
        sql.Identifier(schema, name))).fetchall()


def _constraints(conn, table: str):
    return sorted(conn.execute(
        "SELECT conname, contype, convalidated FROM pg_catalog.pg_constraint "
        "WHERE conrelid = %s::regclass", (table,)).fetchall())


@pytest.mark.parametrize("mode", MODES)
def test_honest_archive_restores_whole(mode, honest_archive, target: Target):
    path, tables, contents, last_id = honest_archive
    if "shop.bookings" in tables:
        # the extension's operator classes come from the target's owner
        target.execute("CREATE EXTENSION btree_gist")
    before = snapshot(target, tables)
    summary = restore(target, path, mode)
    assert summary.failed == [], summary.failed
    assert summary.warnings == [], summary.warnings
    assert sorted(r.table_id for r in summary.ok) == sorted(tables)
    assert_unchanged(before, snapshot(target, tables),
                     tables + ["shop.customers_id_seq", "shop.orders_id_seq"], ["shop"])
    check_restored(target, tables, contents, last_id)


def test_honest_archive_from_a_pipe(honest_archive, target: Target):
    """The one-pass path accepts the same archive."""
    from dumpcodec.restore import restore_dump
    path, tables, contents, last_id = honest_archive
    if "shop.bookings" in tables:
        target.execute("CREATE EXTENSION btree_gist")
    with as_pipe(path) as pipe:
        summary = restore_dump(target.dsn, pipe, jobs=2)
    assert summary.failed == [] and summary.warnings == [], summary
    check_restored(target, tables, contents, last_id)


def check_restored(target: Target, tables, contents, last_id) -> None:
    with target.connect() as c:
        for t in tables:
            assert _contents(c, t) == contents[t], t
        # keys, checks, the exclusion constraint and the foreign key came along
        names = {n for t in tables for n, _k, _v in _constraints(c, t)}
        assert {"customers_pkey", "customers_uid_key", "customers_email_lower",
                "customers_name_check", "orders_customer_fkey", "orders_qty_check",
                "orders_code_check", "orders_kind_check", "orders_arr_check"} <= names
        if "shop.bookings" in tables:
            assert any(k == "x" for n, k, v in _constraints(c, "shop.bookings"))
        assert all(v for t in tables for _n, _k, v in _constraints(c, t))
        assert c.execute("SELECT count(*) FROM pg_catalog.pg_inherits WHERE inhparent = "
                         "'shop.measures'::regclass").fetchone() == (2,)
        # the defaults work, and the sequences go on where the dump left them
        row = c.execute("INSERT INTO shop.customers (email, name) VALUES "
                        "('new@example.org', 'New') RETURNING id, uid, created, tags"
                        ).fetchone()
        assert row[0] == last_id + 1 and row[1] is not None and row[2] is not None
        order = c.execute("INSERT INTO shop.orders (customer, code, amount) VALUES "
                          "(%s, 'XYZ-1', 3) RETURNING id, status::text, due, gross",
                          (row[0],)).fetchone()
        assert order[0] == 121 and order[1] == "new" and order[3] == Decimal("3.6")
        with pytest.raises(psycopg.errors.CheckViolation):
            c.execute("INSERT INTO shop.orders (customer, code) VALUES (1, 'bad code')")
        with pytest.raises(psycopg.errors.ForeignKeyViolation):
            c.execute("INSERT INTO shop.orders (customer, code) VALUES (999, 'ABC-2')")
        with pytest.raises(psycopg.errors.CheckViolation):
            c.execute("INSERT INTO shop.customers (email, name) VALUES ('no-at', 'X')")
        if "shop.bookings" in tables:
            with pytest.raises(psycopg.errors.ExclusionViolation):
                c.execute("INSERT INTO shop.bookings SELECT 1000, room, during "
                          "FROM shop.bookings WHERE id = 1")
