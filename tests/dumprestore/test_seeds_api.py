"""The seeds' API (docs/SEEDS.md): every name reachable from ``dumpcodec``, and
get_tables_for_ids / iter_db_tables against a real server."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

import dumpcodec
from dumpcodec import create_dump, get_tables_for_ids, iter_db_tables, open_dump
from dumpcodec.errors import SchemaError, SelectorError

DOC = Path(__file__).parents[2] / "docs" / "SEEDS.md"


def test_every_name_of_the_seeds_table_is_reachable():
    rows = [line for line in DOC.read_text().splitlines()
            if line.startswith("| DaCHS") or line.startswith("| icat")]
    assert len(rows) == 15
    for row in rows:
        ours = row.split("|")[3]
        name = re.search(r"`dumpcodec\.(\w+)", ours).group(1)
        assert hasattr(dumpcodec, name), name
        assert name in dumpcodec.__all__
    assert isinstance(dumpcodec.backends, dict) and "zstd" in dumpcodec.backends
    assert dumpcodec.backends is __import__("dumpcodec.archive").archive.backends
    assert callable(dumpcodec.main)


@pytest.fixture
def tables(db):
    db.execute("""
        CREATE SCHEMA app;
        CREATE TABLE app.a (id int PRIMARY KEY, v text);
        CREATE TABLE app.b (x numeric(10,2), y date);
        CREATE TABLE public.c (z int);
    """)
    return db


def test_iter_db_tables(tables):
    with tables.connect() as conn:
        assert [(t.schema, t.name) for t in iter_db_tables(conn, "app")] == [
            ("app", "a"), ("app", "b")]
        [a] = iter_db_tables(conn, "app.a")
        assert [c.name for c in a.columns] == ["id", "v"]
        assert list(iter_db_tables(conn, a)) == [a]          # a definition as it is
        assert [t.name for t in iter_db_tables(conn, "rd#main",
                                               id_map={"rd#main": ("public", "c")})] \
            == ["c"]
        with pytest.raises(SelectorError, match="'nope' matches nothing"):
            list(iter_db_tables(conn, "nope"))


def test_get_tables_for_ids_validates_against_definitions(tables, tmp_path):
    path = str(tmp_path / "v.dcz")
    create_dump(tables.dsn, None, path)
    with tables.connect() as conn:
        got = get_tables_for_ids(conn, ["app.a", "c"])
        assert [(t.schema, t.name) for t in got] == [("app", "a"), ("public", "c")]
        # an archive's definitions: all hold now
        with open_dump(path) as reader:
            assert len(get_tables_for_ids(conn, ["app.a", "app.b"], reader)) == 2
        conn.execute("ALTER TABLE app.b ALTER COLUMN x TYPE int")
        conn.execute("ALTER TABLE app.a ADD COLUMN w int")
        with open_dump(path) as reader:
            with pytest.raises(SchemaError) as err:
                get_tables_for_ids(conn, ["app.a", "app.b", "public.c", "gone", "app.*"],
                                   reader)
        text = str(err.value)
        # every problem at once: the two changed tables, the unknown id, the pattern
        assert text.startswith("4 of 5 table id(s) do not hold")
        assert "app.a: the live table app.a differs from its definition: extra column w" in text
        assert "app.b: the live table app.b differs" in text and "numeric" in text
        assert "'gone' matches nothing" in text
        assert "'app.*' names 2 tables (app.a, app.b), not one" in text
        # a definition the caller keeps, as a TableDef or its JSON
        [b] = get_tables_for_ids(conn, ["app.b"])
        assert get_tables_for_ids(conn, ["app.b"], {"app.b": b.to_json()}) == [b]
        with pytest.raises(TypeError, match="not the string"):
            get_tables_for_ids(conn, "app.a")
