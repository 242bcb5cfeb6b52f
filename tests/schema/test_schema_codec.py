"""schema.type_specs: the codec decodes a table's COPY BINARY and re-encodes it for a
database where the user types have other OIDs (and live in another schema)."""
from __future__ import annotations

from psycopg import sql

from dumpcodec.codec import Decoder, Encoder
from dumpcodec.errors import SchemaError
from dumpcodec.values import PgRecord
from dumpcodec.schema import (capture_table, copy_columns, ddl_plan, live_type_oids,
                              type_registry, type_specs)

import pytest

SOURCE = """
CREATE SCHEMA app;
CREATE TYPE app.mood AS ENUM ('sad', 'ok', 'happy');
CREATE DOMAIN app.posint AS integer CHECK (VALUE > 0);
CREATE TYPE app.pair AS (label varchar(10), m app.mood, n numeric(6,2));
CREATE TYPE app.floatrange AS RANGE (subtype = float8);
CREATE TABLE app.t (
    id int PRIMARY KEY, m app.mood, ms app.mood[], p app.posint, pr app.pair,
    prs app.pair[], r app.floatrange, price numeric(12,2), at timestamp(3),
    tags varchar(5)[], g int GENERATED ALWAYS AS (id * 2) STORED);
INSERT INTO app.t (id, m, ms, p, pr, prs, r, price, at, tags) VALUES
  (1, 'happy', '{sad,NULL,ok}', 5, ROW('a', 'ok', 1.50), ARRAY[ROW('b', 'sad', 2)::app.pair],
   '[1.5,2.5)', 12.30, '2020-01-02 03:04:05.678', '{x,yy}'),
  (2, NULL, '{}', NULL, NULL, NULL, 'empty', NULL, NULL, NULL);
"""

CHECK = ("SELECT id, m::text, ms::text, p, pr::text, prs::text, r::text, price::text, "
         "at::text, tags::text, g FROM t ORDER BY id")


def _plain(v):
    if isinstance(v, PgRecord):
        return tuple(_plain(x) for x in v)
    if isinstance(v, list):
        return [_plain(x) for x in v]
    return v


def _copy_out(conn, schema, tdef):
    cols = copy_columns(tdef)
    stmt = sql.SQL("COPY {} ({}) TO STDOUT (FORMAT binary)").format(
        sql.Identifier(schema, tdef.name), sql.SQL(", ").join(map(sql.Identifier, cols)))
    data = bytearray()
    with conn.cursor().copy(stmt) as cp:
        for block in cp:
            data += block
    return bytes(data)


def test_decode_and_reencode_into_other_oids(db, make_db):
    target = make_db()
    db.execute(SOURCE)
    with db.connect() as src:
        tdef = capture_table(src, "app", "t")
        raw = _copy_out(src, "app", tdef)
        src.execute("SET search_path = app")
        expected = src.execute(CHECK).fetchall()
    specs = type_specs(tdef)
    assert [ti.kind for ti in specs[1:7]] == ["enum", "array", "domain", "composite",
                                             "array", "range"]
    assert len(specs) == len(copy_columns(tdef)) == 10
    dec = Decoder(specs, names=copy_columns(tdef))
    rows = dec.feed(raw)
    dec.close()
    assert len(rows) == 2 and rows[0][1] == "happy" and rows[0][2] == ["sad", None, "ok"]

    with target.connect() as dst:
        # other OIDs for everything: burn some first, restore into another schema
        dst.execute("CREATE TYPE burn1 AS ENUM ('x'); CREATE TYPE burn2 AS (a int); "
                    "CREATE SCHEMA elsewhere")
        ddl_plan(tdef, "elsewhere", existing_types=dst).execute(dst)
        oids = live_type_oids(dst, tdef, "elsewhere")
        assert oids[("app", "mood")][0] != next(t.oid for t in tdef.types if t.name == "mood")
        out_specs = type_specs(tdef, copy_columns(tdef), type_registry(tdef, oids))
        enc = Encoder(out_specs, names=copy_columns(tdef))
        # A decoded PgRecord keeps the *source* field OIDs and the codec encodes those
        # as they are; plain tuples take the registered (target) field types.
        rows = [tuple(_plain(v) for v in row) for row in rows]
        payload = enc.header() + enc.encode(rows) + enc.trailer()
        stmt = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT binary)").format(
            sql.Identifier("elsewhere", "t"),
            sql.SQL(", ").join(map(sql.Identifier, copy_columns(tdef))))
        with dst.cursor().copy(stmt) as cp:
            cp.write(payload)
        dst.execute("SET search_path = elsewhere")
        assert dst.execute(CHECK).fetchall() == expected


def test_type_specs_errors(db):
    db.execute("CREATE TABLE t (a int)")
    with db.connect() as c:
        tdef = capture_table(c, "public", "t")
        with pytest.raises(SchemaError, match="has no column 'nope'"):
            type_specs(tdef, ["nope"])
        c.execute("CREATE TYPE e AS ENUM ('x'); ALTER TABLE t ADD COLUMN b e")
        tdef = capture_table(c, "public", "t")
        c.execute("ALTER TABLE t DROP COLUMN b; DROP TYPE e")
        with pytest.raises(SchemaError, match="type public.e .* does not exist"):
            live_type_oids(c, tdef)
