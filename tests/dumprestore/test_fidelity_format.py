"""The table definition's format 2 (issue 13): old archives load, new fields survive JSON.

``data/format1_main_34e1af2.dcz`` was written by dumpcodec at commit 34e1af2 (before
format 2: ``{"format": 1}`` definitions) from a table with an enum column, a serial,
a CHECK, an expression index and comments; it must keep loading.
"""
from __future__ import annotations

import json
import os

import pytest

from dumpcodec import create_dump, open_dump, restore_dump
from dumpcodec.schema import FORMAT_VERSION, TableDef, capture_table, ddl_plan

OLD_ARCHIVE = os.path.join(os.path.dirname(__file__), "data", "format1_main_34e1af2.dcz")


def test_archive_of_format_1_still_loads(any_db):
    with open_dump(OLD_ARCHIVE, "r") as reader:
        (info,) = reader.tables()
        assert info.definition["format"] == 1
        tdef = TableDef.from_json(info.definition)
    assert tdef.triggers == [] and tdef.acl is None and tdef.replica_identity == "d"
    assert FORMAT_VERSION == 2 and tdef.to_json()["format"] == 2
    summary = restore_dump(any_db.dsn, OLD_ARCHIVE)
    assert summary.success, summary.failed
    assert summary.ok[0].notes == []
    assert any_db.execute("SELECT id, name, m::text, qty::text FROM things ORDER BY id") == [
        (1, "a", "ok", "1.50"), (2, "b", "happy", "2.00"), (3, "c", None, None)]
    assert any_db.execute("SELECT obj_description('things'::regclass, 'pg_class'), "
                          "nextval('things_id_seq')") == [("old archive", 4)]


def test_format_2_fields_survive_json_and_ddl(db):
    db.execute("""
        CREATE TABLE p (a int PRIMARY KEY, b text, c int) WITH (fillfactor = 60);
        CREATE TABLE t (d int) INHERITS (p);
        ALTER TABLE t ALTER COLUMN b SET STORAGE MAIN;
        ALTER TABLE t ALTER COLUMN c SET STATISTICS 42;
        ALTER TABLE t ENABLE ROW LEVEL SECURITY;
        CREATE POLICY pol ON t USING (c > 0) WITH CHECK (b IS NOT NULL);
        CREATE STATISTICS t_st (mcv) ON b, c FROM t;
        ALTER TABLE t REPLICA IDENTITY FULL;
        GRANT SELECT (b) ON t TO PUBLIC;
        COMMENT ON CONSTRAINT p_pkey ON p IS 'key';""")
    with db.connect() as c:
        p, t = capture_table(c, "public", "p"), capture_table(c, "public", "t")
    for tdef in (p, t):
        text = json.dumps(tdef.to_json(), sort_keys=True)
        assert TableDef.from_json(json.loads(text)) == tdef
    assert [(o.name, o.value) for o in p.options] == [("fillfactor", "60")]
    assert p.constraints[0].comment == "key"
    assert [(x.schema, x.name) for x in t.inherits] == [("public", "p")]
    assert [c.name for c in t.columns if c.inherited] == ["a", "b", "c"]
    assert t.column("b").storage == "m" and t.column("c").statistics == 42
    assert t.rls_enabled and not t.rls_forced and t.replica_identity == "f"
    assert [(x.name, x.using, x.with_check) for x in t.policies] == [
        ("pol", "(c > 0)", "(b IS NOT NULL)")]
    assert [(s.name, s.kinds, s.columns) for s in t.statistics] == [
        ("t_st", ["m"], ["b", "c"])]
    assert [(g.privilege, g.grantee) for g in t.column("b").acl] == [("SELECT", None)]
    plan = ddl_plan(t)
    text = "\n".join(plan.as_strings())
    assert 'CREATE TABLE "public"."t" ("d" integer) INHERITS ("public"."p")' in text
    assert 'CREATE POLICY "pol" ON "public"."t" AS PERMISSIVE FOR ALL TO PUBLIC ' \
           'USING ((c > 0)) WITH CHECK ((b IS NOT NULL))' in text
    assert 'GRANT SELECT("b") ON TABLE "public"."t" TO PUBLIC' in text


def test_sequence_comments_travel(make_db, tmp_path):
    src, dst = make_db(), make_db()
    src.execute("""
        CREATE TABLE t (id serial PRIMARY KEY);
        CREATE SEQUENCE free_seq START 7;
        SELECT nextval('free_seq');
        COMMENT ON SEQUENCE t_id_seq IS 'owned one';
        COMMENT ON SEQUENCE free_seq IS 'free one';""")
    path = str(tmp_path / "s.dcz")
    create_dump(src.dsn, ["t"], path, sequences=["public"])
    assert restore_dump(dst.dsn, path).success
    assert dst.execute("SELECT obj_description('t_id_seq'::regclass, 'pg_class'), "
                       "obj_description('free_seq'::regclass, 'pg_class'), "
                       "nextval('free_seq')") == [("owned one", "free one", 8)]


@pytest.mark.parametrize("kind", ["regclass", "regproc"])
def test_tables_without_text_columns_keep_the_raw_copy(db, tmp_path, kind):
    """Only tables with OID-alias / vector columns read through a query and a stage."""
    db.execute(f"CREATE TABLE plain (a int, b oid); CREATE TABLE named (a int, r {kind});"
               "INSERT INTO plain VALUES (1, 2); INSERT INTO named VALUES (1, NULL);")
    path = str(tmp_path / "x.dcz")
    create_dump(db.dsn, ["plain", "named"], path)
    with open_dump(path, "r") as reader:
        infos = {t.table_id: t for t in reader.tables()}
    assert "as_text" not in infos["public.plain"].extra
    assert infos["public.plain"].types == ["integer", "oid"]     # plain oid: a number
    assert infos["public.named"].extra["as_text"] == ["r"]
    assert infos["public.named"].types == ["integer", "text"]


def test_crafted_format_2_fields_touch_nothing_else(make_db, tmp_path):
    """A crafted definition naming another table's index and sequence (for comments),
    a trigger function that does not exist, an expression with a side effect in a
    policy: nothing outside the restored table changes, and what was left out is said."""
    from archive_helpers import read_tables, write_archive
    src, dst = make_db(), make_db()
    src.execute("CREATE TABLE t (id int, v text); INSERT INTO t VALUES (1, 'a')")
    dst.execute("CREATE TABLE base (id int, v text);"
                "CREATE TABLE other (a int); CREATE INDEX other_idx ON other (a);"
                "CREATE SEQUENCE other_seq; COMMENT ON INDEX other_idx IS 'mine';"
                "COMMENT ON SEQUENCE other_seq IS 'mine too'")
    path, crafted = tmp_path / "t.dcz", tmp_path / "crafted.dcz"
    create_dump(src.dsn, ["t"], str(path))
    tables = read_tables(path)
    d = tables[0][1]
    d["indexes"] = [{"name": "other_idx", "method": "btree", "elements": [{"column": "id"}],
                     "inherited": True, "comment": "hijacked"}]
    d["inherits"] = [{"schema": "public", "name": "base"}]   # so the index is "its parent's"
    d["sequences"] = [{"schema": "public", "name": "other_seq", "column": "id",
                       "identity": True, "data_type": "bigint", "start": 1, "increment": 1,
                       "min_value": 1, "max_value": 10, "comment": "hijacked"}]
    d["triggers"] = [{"name": "tr", "timing": "after", "events": ["insert"],
                      "function_schema": "public", "function_name": "nope"}]
    write_archive(crafted, tables)
    # an INHERITS parent the restore does not restore is the user's: refused ...
    summary = restore_dump(dst.dsn, str(crafted))
    assert [t for t, _ in summary.failed] == ["public.t"]
    assert "--allow-attach" in summary.failed[0][1]
    # ... unless the user allows it; then the comments still stay off their objects
    summary = restore_dump(dst.dsn, str(crafted), allow_attach=True)
    assert summary.success, summary.failed
    assert dst.execute("SELECT obj_description('other_idx'::regclass, 'pg_class'), "
                       "obj_description('other_seq'::regclass, 'pg_class')") == [
        ("mine", "mine too")]
    notes = summary.ok[0].notes
    assert "trigger 'tr' not restored: its function public.nope() does not exist in the " \
           "target" in notes
    assert any(n.startswith("comment on index 'other_idx' not restored: ") for n in notes)

    d["policies"] = [{"name": "p", "using": "pg_catalog.pg_terminate_backend(1) > 0"}]
    d["rls_enabled"] = True
    d["triggers"] = []
    write_archive(crafted, tables)
    summary = restore_dump(dst.dsn, str(crafted), if_exists="replace", allow_attach=True)
    assert [t for t, _ in summary.failed] == ["public.t"]
    assert "pg_terminate_backend" in summary.failed[0][1]


def test_no_indexes_leaves_their_comments_out(make_db, tmp_path):
    src, dst = make_db(), make_db()
    src.execute("""
        CREATE TABLE t (id int PRIMARY KEY, v text CONSTRAINT v_ok CHECK (v <> ''));
        CREATE INDEX t_v ON t (v) WITH (fillfactor = 40);
        CREATE STATISTICS t_st ON id, v FROM t;
        ALTER TABLE t REPLICA IDENTITY USING INDEX t_pkey;
        COMMENT ON CONSTRAINT t_pkey ON t IS 'key';
        COMMENT ON CONSTRAINT v_ok ON t IS 'check';
        COMMENT ON INDEX t_v IS 'index';
        COMMENT ON STATISTICS t_st IS 'stats';""")
    path = str(tmp_path / "t.dcz")
    create_dump(src.dsn, ["t"], path)
    summary = restore_dump(dst.dsn, path, indexes=False)
    assert summary.success, summary.failed
    assert dst.execute("SELECT conname, obj_description(oid, 'pg_constraint') "
                       "FROM pg_constraint WHERE conrelid = 't'::regclass") == [
        ("v_ok", "check")]
    assert dst.execute("SELECT count(*) FROM pg_index WHERE indrelid = 't'::regclass") \
        == [(0,)]


def test_load_privileges_option(make_db, tmp_path, capsys):
    from dumpcodec.cli import main
    src, dst = make_db(), make_db()
    src.execute("CREATE TABLE t (a int, b int); GRANT SELECT ON t TO PUBLIC;"
                "GRANT UPDATE (b) ON t TO PUBLIC")
    path = str(tmp_path / "t.dcz")
    create_dump(src.dsn, ["t"], path)
    assert main(["load", path, "--dsn", dst.dsn, "--privileges"]) == 0
    assert "note:" not in capsys.readouterr().err
    assert dst.execute("SELECT has_table_privilege('public', 't', 'SELECT'), "
                       "has_column_privilege('public', 't', 'b', 'UPDATE'), "
                       "has_column_privilege('public', 't', 'a', 'UPDATE')") == [
        (True, True, False)]
    assert "--privileges" in subprocess_help()


def subprocess_help() -> str:
    import subprocess
    import sys
    return subprocess.run([sys.executable, "-m", "dumpcodec", "load", "--help"],
                          capture_output=True, text=True, check=True).stdout
