"""Hostile input: crafted archives must not run SQL, escape the reader, or blow up.

Two halves:

* SQL injection through a crafted manifest.  A real dump is made, then rewritten
  with the library's own writer (so that every checksum, offset and end marker is
  consistent: the attacker knows the format) with injected SQL in the table-id,
  schema, table, column, constraint and index names, type names, defaults, CHECKs,
  domain CHECKs, index expressions and predicates, sequence names, collations,
  comments.  It is restored into a database holding a canary table and a canary
  sequence; afterwards the canary rows and the sequence state must be unchanged, no
  large object, role, function or schema must have appeared, and every new relation
  must be the restored table or one of its own indexes/sequences.
* Hostile archives read without a database: path traversal and absolute member
  names, symlink/hardlink/device/FIFO/directory members, decompression bombs, huge
  declared sizes, and table-ids/member names with spaces, newlines, control
  characters and non-UTF-8 bytes.
"""
from __future__ import annotations

import copy
import io
import json
import os
import subprocess
import sys
import tarfile

import psycopg
import pytest

from dumpcodec.archive import open_dump
from dumpcodec.errors import DumpcodecError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
INJECT = "; DROP TABLE public.canary; SELECT nextval('public.canary_seq'); --"


# ===================================================================== helpers

def read_tables(path):
    """[(table_id, definition, columns, types, format, data)] of an archive."""
    out = []
    with open_dump(str(path)) as r:
        for info, chunks in r.iter_tables():
            pieces = [bytes(c) for c in chunks]
            assert len(pieces) == 1, "test tables are small: one chunk each"
            out.append([info.table_id, info.definition, info.columns, info.types,
                        info.format, pieces[0]])
    return out


def write_archive(path, tables, backend="tar"):
    with open_dump(str(path), "w", backend=backend) as w:
        w.set_info(server_version="15", client_encoding="UTF8")
        for table_id, definition, columns, types, fmt, data in tables:
            with w.add_table(table_id, definition, columns, types, format=fmt) as t:
                t.write(data)


def rename_column(t, old, new):
    """Rename a column everywhere the definition names it as a column (not in text)."""
    d = t[1]
    for c in d["columns"]:
        if c["name"] == old:
            c["name"] = new
    for con in d["constraints"]:
        con["columns"] = [new if x == old else x for x in con["columns"]]
    for idx in d["indexes"]:
        for e in idx["elements"]:
            if e.get("column") == old:
                e["column"] = new
    for s in d.get("sequences", []):
        if s.get("column") == old:
            s["column"] = new
    t[2] = [new if x == old else x for x in t[2]]


def constraint(d, kind):
    return next(c for c in d["constraints"] if c["kind"] == kind)


STATE_SQL = {
    "canary": "SELECT x FROM public.canary ORDER BY x",
    "canary_seq": "SELECT last_value, is_called FROM public.canary_seq",
    "large_objects": "SELECT count(*) FROM pg_catalog.pg_largeobject_metadata",
    "roles": "SELECT rolname FROM pg_catalog.pg_roles ORDER BY 1",
    "functions": "SELECT p.oid::regprocedure::text FROM pg_catalog.pg_proc p JOIN "
                 "pg_catalog.pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname "
                 "NOT IN ('pg_catalog', 'information_schema') ORDER BY 1",
    "db_settings": "SELECT setconfig::text FROM pg_catalog.pg_db_role_setting ORDER BY 1",
}


def state(tdb):
    return {k: tdb.execute(q) for k, q in STATE_SQL.items()}


def relations(tdb):
    return {r[0]: r[1:] for r in tdb.execute(
        "SELECT c.oid, n.nspname, c.relname, c.relkind FROM pg_catalog.pg_class c "
        "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')")}


def schemas(tdb):
    return {r[0] for r in tdb.execute("SELECT nspname FROM pg_catalog.pg_namespace")}


def foreign_new_relations(tdb, before):
    """New relations that are neither a table nor owned by / indexing a new table."""
    after = relations(tdb)
    new = {oid: v for oid, v in after.items() if oid not in before}
    tables = {oid for oid, v in new.items() if v[2] in ("r", "p")}
    bad = []
    for oid, (nsp, name, kind) in new.items():
        if oid in tables:
            continue
        owner = tdb.execute(
            "SELECT indrelid FROM pg_catalog.pg_index WHERE indexrelid = %s "
            "UNION ALL SELECT refobjid FROM pg_catalog.pg_depend WHERE objid = %s "
            "AND classid = 'pg_class'::regclass AND refclassid = 'pg_class'::regclass "
            "AND deptype IN ('a', 'i')", (oid, oid))
        if not any(o[0] in tables for o in owner or []):
            bad.append(f"{nsp}.{name} ({kind})")
    return bad


# ============================================================ SQL injection

@pytest.fixture(scope="module")
def source_archive(pg_server, tmp_path_factory):
    """A real dump of a table with a serial, a default, a CHECK, a domain column, a
    unique and a partial expression index, and a comment."""
    from dumpcodec.dump import create_dump
    name = "dct_hostile_src_%d" % os.getpid()
    with psycopg.connect(pg_server.dsn, autocommit=True) as c:
        c.execute(f'DROP DATABASE IF EXISTS "{name}"')
        c.execute(f'CREATE DATABASE "{name}"')
    dsn = pg_server.dsn_for(name)
    try:
        with psycopg.connect(dsn, autocommit=True) as c:
            c.execute("""
                CREATE DOMAIN public.small AS int CHECK (VALUE < 1000);
                CREATE TABLE public.t (
                    id serial PRIMARY KEY,
                    v text DEFAULT 'x' CHECK (length(v) < 10),
                    n numeric(12,2),
                    s public.small,
                    CONSTRAINT t_v_key UNIQUE (v));
                CREATE INDEX t_lower_idx ON public.t (lower(v)) WHERE n > 0;
                COMMENT ON TABLE public.t IS 'a table';
                INSERT INTO public.t (v, n, s) VALUES ('a', 1.5, 1), ('b', NULL, 2),
                                                      ('c', 2, NULL);""")
        path = tmp_path_factory.mktemp("hostile") / "source.dump"
        create_dump(dsn, ["public.t"], str(path), backend="tar")
        yield path
    finally:
        with psycopg.connect(pg_server.dsn, autocommit=True) as c:
            c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def target(make_db):
    tdb = make_db()
    tdb.execute("CREATE TABLE public.canary (x int)")
    tdb.execute("INSERT INTO public.canary VALUES (42), (43)")
    tdb.execute("CREATE SEQUENCE public.canary_seq")
    tdb.execute("SELECT setval('public.canary_seq', 7)")
    return tdb


def _set(path, value):
    """A mutator setting definition[path...] = value (path of keys and indexes)."""
    def mutate(t):
        obj = t[1]
        for key in path[:-1]:
            obj = obj[key](obj) if callable(key) else obj[key]
        obj[path[-1]] = value
    return mutate


def _check_expr(expr):
    def mutate(t):
        constraint(t[1], "check")["expression"] = expr
    return mutate


def _domain_check(expr):
    def mutate(t):
        dom = next(ty for ty in t[1]["types"] if ty["kind"] == "domain")
        dom["checks"][0]["expression"] = expr
    return mutate


def _index_expr(expr):
    def mutate(t):
        idx = next(i for i in t[1]["indexes"] if i["name"] == "t_lower_idx")
        idx["elements"][0]["expression"] = expr
    return mutate


def _index_pred(expr):
    def mutate(t):
        idx = next(i for i in t[1]["indexes"] if i["name"] == "t_lower_idx")
        idx["predicate"] = expr
    return mutate


def _table_id(t):
    t[0] = "public.t" + INJECT


def _col_type(t):
    t[1]["columns"][2]["type"] = "numeric(12,2))" + INJECT
    t[3][2] = t[1]["columns"][2]["type"]


def _col_type_user(t):
    col = t[1]["columns"][1]
    col.update(builtin=False, type_schema='public"' + INJECT, type_elem='text"' + INJECT,
               type_kind="b", type_oid=99999)


def _seq_name(t):
    t[1]["sequences"][0]["name"] = 'canary_seq'
    t[1]["sequences"][0]["last_value"] = 99999
    t[1]["sequences"][0]["is_called"] = True


def _seq_type(t):
    t[1]["sequences"][0]["data_type"] = "bigint" + INJECT


def _fk(t):
    t[1]["constraints"].append({
        "columns": ["s"], "deferrable": False, "deferred": False, "elements": [],
        "expression": None, "include": [], "inherited": False, "kind": "foreign_key",
        "match": "s", "method": None, "name": "t_fk" + INJECT, "no_inherit": False,
        "nulls_not_distinct": False, "on_delete": "c" + INJECT, "on_update": "a",
        "predicate": None, "ref_columns": ["x"], "ref_schema": "public",
        "ref_table": "canary", "validated": True})


CASES = {
    # names: quoted as identifiers, so they only make odd names (or fail)
    "table-id": _table_id,
    "schema name": _set(["schema"], 'public"' + INJECT),
    "table name": _set(["name"], 't"' + INJECT),
    "column name": lambda t: rename_column(t, "id", 'id"' + INJECT),
    "constraint name": lambda t: constraint(t[1], "check").update(name='c"' + INJECT),
    "index name": lambda t: t[1]["indexes"][0].update(name='i"' + INJECT),
    "collation": lambda t: t[1]["columns"][1].update(collation='C"' + INJECT,
                                                     collation_schema="pg_catalog"),
    "opclass": lambda t: t[1]["indexes"][0]["elements"][0].update(
        opclass='text_ops"' + INJECT, opclass_schema="pg_catalog"),
    "index method": lambda t: t[1]["indexes"][0].update(method="btree" + INJECT),
    "comment": _set(["comment"], "x'" + INJECT),
    "builtin type text": _col_type,
    "user type name": _col_type_user,
    "sequence data type": _seq_type,
    "foreign key": _fk,
    # text expressions: more than one expression must be refused
    "default statement": lambda t: t[1]["columns"][1].update(default="'x'::text)" + INJECT),
    "check statement": _check_expr("length(v) < 10)" + INJECT),
    "check comment": _check_expr("length(v) < 10 -- ) " + INJECT),
    "index expression statement": _index_expr("lower(v))" + INJECT),
    "index predicate statement": _index_pred("n > 0)" + INJECT),
    "domain check statement": _domain_check("VALUE < 1000)" + INJECT),
    "index expression volatile": _index_expr("nextval('public.canary_seq')"),
    # single expressions with side effects, evaluated while the data loads
    "default volatile": lambda t: t[1]["columns"][1].update(
        default="nextval('public.canary_seq')::text"),
    "check volatile nextval": _check_expr("nextval('public.canary_seq') > 0"),
    "check volatile large object": _check_expr("lo_from_bytea(0, '\\x00'::bytea) > 0"),
    "domain check volatile": _domain_check("nextval('public.canary_seq') > 0"),
    "index predicate volatile": _index_pred("nextval('public.canary_seq') > 0"),
    # an owned sequence that is really someone else's
    "sequence name": _seq_name,
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_crafted_manifest_runs_nothing_else(case, source_archive, target, tmp_path):
    from dumpcodec.restore import restore_dump
    tables = read_tables(source_archive)
    crafted = copy.deepcopy(tables)
    CASES[case](crafted[0])
    path = tmp_path / "crafted.dump"
    write_archive(path, crafted)

    before_state = state(target)
    before_rel = relations(target)
    before_schemas = schemas(target)
    summary = None
    try:
        summary = restore_dump(target.dsn, str(path), if_exists="error")
    except DumpcodecError:
        pass        # refusing the whole archive is fine
    assert state(target) == before_state, f"{case}: something outside the restore ran"
    assert foreign_new_relations(target, before_rel) == [], case
    new_schemas = schemas(target) - before_schemas
    assert new_schemas <= {crafted[0][1]["schema"]}, new_schemas
    if summary is not None and not summary.failed:
        # restored: it is the table the archive describes, with its rows
        d = crafted[0][1]
        rows = target.execute(psycopg.sql.SQL("SELECT count(*) FROM {}").format(
            psycopg.sql.Identifier(d["schema"], d["name"])))
        assert rows == [(3,)]


def test_existing_sequence_not_moved_on_append(source_archive, target, tmp_path):
    # Loading into an existing table (append) moves the table's own sequences on; a
    # crafted definition naming another sequence must not move that one.
    from dumpcodec.restore import restore_dump
    tables = read_tables(source_archive)
    clean = tmp_path / "clean.dump"
    write_archive(clean, tables)
    first = restore_dump(target.dsn, str(clean))
    assert not first.failed
    crafted = copy.deepcopy(tables)
    _seq_name(crafted[0])
    path = tmp_path / "crafted.dump"
    write_archive(path, crafted)
    before = state(target)
    try:
        restore_dump(target.dsn, str(path), if_exists="append")
    except DumpcodecError:
        pass
    assert state(target)["canary_seq"] == before["canary_seq"]
    assert state(target)["canary"] == before["canary"]
