"""schema.compare on real tables altered in every way that matters."""
from __future__ import annotations

import itertools

import psycopg
import pytest

from dumpcodec.schema import (capture_table, compare, type_widening, typmod_widening)

BASE = """
CREATE TYPE mood AS ENUM ('sad', 'ok');
CREATE TABLE t (
    id int PRIMARY KEY,
    name varchar(20) NOT NULL,
    price numeric(12,2),
    at timestamp(3),
    small smallint,
    f real,
    note text DEFAULT 'n',
    m mood,
    base int,
    calc int GENERATED ALWAYS AS (base * 2) STORED,
    CONSTRAINT t_price_pos CHECK (price > 0)
);
CREATE INDEX t_name ON t (name);
"""


_counter = itertools.count()


@pytest.fixture(scope="module")
def cdb(pg_server):
    """One database for the module; each test works in a schema of its own (creating
    and dropping a database per test costs more than all the comparisons)."""
    import conftest
    db = conftest._create_db(pg_server)
    try:
        yield db
    finally:
        conftest._drop_db(db)


@pytest.fixture
def db(cdb):
    """``cdb`` with a fresh schema first on the search_path of ``db.connect()``."""
    schema = f"s{next(_counter)}"
    cdb.execute(f"CREATE SCHEMA {schema}")

    class InSchema:
        name = schema

        def connect(self):
            return psycopg.connect(cdb.dsn, autocommit=True,
                                   options=f"-c search_path={schema}")

        def execute(self, sql_text):
            with self.connect() as c:
                c.execute(sql_text)
    return InSchema()


def _diff(db, alter):
    db.execute(BASE)
    with db.connect() as c:
        expected = capture_table(c, db.name, "t")
        c.execute(alter)
        live = capture_table(c, db.name, "t")
    return compare(expected, live)


def _only(cmp, kind):
    found = [d for d in cmp.differences]
    assert [d.kind for d in found] == [kind], str(cmp)
    return found[0]


def test_identical_tables_compare_equal(db):
    cmp = _diff(db, "SELECT 1")
    assert cmp.equal and cmp.copy_compatible and cmp.can_map_by_name and cmp.order_matches
    assert str(cmp).endswith("no differences")


@pytest.mark.parametrize("alter, kind, obj, blocks, widening", [
    ("ALTER TABLE t ALTER id TYPE bigint", "type", "id", True, True),
    ("ALTER TABLE t ALTER small TYPE int", "type", "small", True, True),
    ("ALTER TABLE t ALTER f TYPE float8", "type", "f", True, True),
    ("ALTER TABLE t ALTER name TYPE text", "type", "name", True, True),
    ("ALTER TABLE t ALTER small TYPE numeric(6,0)", "type", "small", True, True),
    ("ALTER TABLE t ALTER small TYPE numeric(4,0)", "type", "small", True, False),
    ("ALTER TABLE t ALTER at TYPE timestamptz(3)", "type", "at", True, False),
    ("ALTER TABLE t ALTER note TYPE varchar(5)", "type", "note", True, False),
    ("ALTER TABLE t ALTER name TYPE varchar(40)", "typmod", "name", False, True),
    ("ALTER TABLE t ALTER name TYPE varchar(10)", "typmod", "name", True, False),
    ("ALTER TABLE t ALTER price TYPE numeric(14,2)", "typmod", "price", False, True),
    ("ALTER TABLE t ALTER price TYPE numeric(10,2)", "typmod", "price", True, False),
    ("ALTER TABLE t ALTER price TYPE numeric(12,3)", "typmod", "price", True, False),
    ("ALTER TABLE t ALTER price TYPE numeric", "typmod", "price", False, True),
    ("ALTER TABLE t ALTER at TYPE timestamp(6)", "typmod", "at", False, True),
    ("ALTER TABLE t ALTER at TYPE timestamp(0)", "typmod", "at", True, False),
])
def test_column_type_differences(db, alter, kind, obj, blocks, widening):
    cmp = _diff(db, alter)
    d = _only(cmp, kind)
    assert (d.object, d.blocks_copy, d.widening) == (obj, blocks, widening)
    assert cmp.copy_compatible is (not blocks)
    assert cmp.can_map_by_name is widening
    assert (obj in cmp.widened_columns) is widening
    assert bool(cmp.narrowing) is (not widening)
    assert obj in str(cmp)


def test_int4_vs_int8_is_a_difference_even_though_both_are_integers(db):
    d = _only(_diff(db, "ALTER TABLE t ALTER id TYPE bigint"), "type")
    assert (d.expected, d.actual) == ("integer", "bigint")


def test_missing_and_extra_columns(db):
    cmp = _diff(db, "ALTER TABLE t DROP COLUMN note; ALTER TABLE t ADD COLUMN extra int")
    kinds = {d.kind: d for d in cmp.differences}
    assert kinds["missing_column"].object == "note" and kinds["missing_column"].blocks_copy
    assert kinds["extra_column"].object == "extra" and not kinds["extra_column"].blocks_copy
    assert not cmp.copy_compatible and not cmp.can_map_by_name
    assert not cmp.order_matches


def test_extra_not_null_column_without_default_blocks(db):
    cmp = _diff(db, "ALTER TABLE t ADD COLUMN must int NOT NULL DEFAULT 0; "
                    "ALTER TABLE t ALTER must DROP DEFAULT")
    assert [(d.kind, d.blocks_copy) for d in cmp.differences] == [("extra_column", True)]
    assert not cmp.copy_compatible and not cmp.can_map_by_name


def test_missing_generated_column_does_not_block(db):
    cmp = _diff(db, "ALTER TABLE t DROP COLUMN calc")
    d = _only(cmp, "missing_column")
    assert not d.blocks_copy and cmp.copy_compatible


def test_position_difference(db):
    cmp = _diff(db, "ALTER TABLE t DROP COLUMN price; ALTER TABLE t ADD COLUMN price "
                    "numeric(12,2) CHECK (price > 0)")
    kinds = [d.kind for d in cmp.differences]
    assert "position" in kinds and "missing_column" not in kinds
    pos = [d for d in cmp.differences if d.kind == "position"]
    assert {d.object for d in pos} >= {"price", "at"}
    assert all(not d.blocks_copy for d in pos)
    # COPY lists the columns, so the load is exact; a positional COPY would not be.
    assert not cmp.order_matches
    assert cmp.can_map_by_name


@pytest.mark.parametrize("alter, kind, obj", [
    ("ALTER TABLE t ALTER price SET NOT NULL", "nullability", "price"),
    ("ALTER TABLE t ALTER name DROP NOT NULL", "nullability", "name"),
    ("ALTER TABLE t ALTER note SET DEFAULT 'other'", "default", "note"),
    ("ALTER TABLE t ALTER note TYPE text COLLATE \"C\"", "collation", "note"),
    ("COMMENT ON COLUMN t.note IS 'hi'", "column_comment", "note"),
    ("COMMENT ON TABLE t IS 'hi'", "comment", "table"),
    ("ALTER TABLE t DROP CONSTRAINT t_price_pos", "missing_constraint", "t_price_pos"),
    ("ALTER TABLE t ADD CONSTRAINT t_more CHECK (id > 0)", "extra_constraint", "t_more"),
    ("ALTER TABLE t DROP CONSTRAINT t_price_pos; ALTER TABLE t ADD CONSTRAINT t_price_pos "
     "CHECK (price > 1)", "constraint", "t_price_pos"),
    ("DROP INDEX t_name", "missing_index", "t_name"),
    ("CREATE INDEX t_extra ON t (price)", "extra_index", "t_extra"),
    ("DROP INDEX t_name; CREATE INDEX t_name ON t (name DESC)", "index", "t_name"),
    ("ALTER TYPE mood ADD VALUE 'happy'", "user_type", "mood"),
    ("ALTER TABLE t SET UNLOGGED", "unlogged", "table"),
])
def test_differences_that_do_not_block_copy(db, alter, kind, obj):
    cmp = _diff(db, alter)
    d = _only(cmp, kind)
    assert d.object == obj and not d.blocks_copy
    assert cmp.copy_compatible and cmp.can_map_by_name
    assert kind.replace("_", " ") in str(cmp)


def test_identity(db):
    cmp = _diff(db, "ALTER TABLE t ALTER id ADD GENERATED ALWAYS AS IDENTITY")
    assert [d.kind for d in cmp.differences] == ["identity"]
    assert cmp.copy_compatible


def test_live_generated_column_blocks(db):
    db.execute("CREATE TABLE t (a int, b int)")
    db.execute("CREATE TABLE u (a int, b int GENERATED ALWAYS AS (a + 1) STORED)")
    with db.connect() as c:
        t, u = capture_table(c, db.name, "t"), capture_table(c, db.name, "u")
    u.name = t.name   # compare as if it were the same table
    cmp = compare(t, u)
    d = _only(cmp, "generated")
    assert d.object == "b" and d.blocks_copy and not cmp.copy_compatible
    back = compare(u, t)
    assert _only(back, "generated").blocks_copy   # values would be lost


def test_str_lists_every_difference(db):
    cmp = _diff(db, "ALTER TABLE t ALTER id TYPE bigint; DROP INDEX t_name; "
                    "ALTER TABLE t ALTER name TYPE varchar(10)")
    text = str(cmp)
    assert "3 difference(s), binary COPY not possible" in text
    assert "type id: expected 'integer', found 'bigint' (blocks binary COPY; widening" in text
    assert "missing index t_name" in text
    assert "typmod name" in text and "not a widening: refused" in text


def test_widening_rules_directly():
    assert typmod_widening("varchar", 24, 44)
    assert not typmod_widening("varchar", -1, 44)
    assert typmod_widening("varchar", 24, -1)
    assert typmod_widening("bpchar", 9, 12)
    assert not typmod_widening("int4", 1, 2)
    assert typmod_widening("timestamptz", 3, -1)
    assert not typmod_widening("timestamptz", -1, 3)


def test_type_relative_to_table_schema(cdb):
    """A user type in the table's own schema compares by name relative to it."""
    cdb.execute("CREATE SCHEMA a; CREATE SCHEMA b; CREATE TYPE a.e AS ENUM ('x'); "
                "CREATE TYPE b.e AS ENUM ('x'); CREATE TABLE a.t (v a.e); "
                "CREATE TABLE b.t (v b.e); CREATE TABLE b.u (v a.e)")
    with cdb.connect() as c:
        at, bt, bu = (capture_table(c, s, n) for s, n in (("a", "t"), ("b", "t"), ("b", "u")))
    assert compare(at, bt).equal
    bu.name = "t"
    assert _only(compare(at, bu), "type").object == "v"
    assert type_widening(at.columns[0], bt.columns[0]) is False
