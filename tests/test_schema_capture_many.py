"""capture_tables (all tables at once, a handful of queries per schema) gives what
capture_table gives table by table, on schemas with every captured feature; and the
dump's one-query type look-ups answer as the per-type ones did."""
from __future__ import annotations

import uuid

import psycopg
import pytest

import test_fidelity_pg_dump as fid
import test_schema as ts
from dumpcodec.dump import binary_capable
from dumpcodec.schema import capture_table, capture_tables, text_columns
from dumpcodec.schema.catalog import partition_trees, relation_sizes, type_facts

APP2 = ["items", "items_archive", "events", "events_2024"]


@pytest.fixture
def rich(db, pg_server):
    """test_schema's features in ``app`` and the pg_dump comparison's (triggers,
    policies, statistics, storage parameters, INHERITS, grants) in ``app2``."""
    tag = uuid.uuid4().hex[:8]
    roles = {"owner": f"dct_own_{tag}", "reader": f"dct_read_{tag}",
             "ghost": f"dct_ghost_{tag}"}
    with psycopg.connect(pg_server.dsn, autocommit=True) as c:
        for r in roles.values():
            c.execute(f'CREATE ROLE "{r}"')
    try:
        names = [("app", n) for n in ts.build(db, gist=False)]
        sql = (fid._FUNCS + fid._BUILD.format(**{k: f'"{v}"' for k, v in roles.items()}))
        with db.connect() as c:
            c.execute(sql.replace("app.", "app2.").replace("SCHEMA app;", "SCHEMA app2;"))
            c.execute("CREATE SEQUENCE app2.free_seq")
        yield db, names + [("app2", n) for n in APP2]
    finally:
        with psycopg.connect(pg_server.dsn, autocommit=True) as c:
            c.execute(f'DROP DATABASE IF EXISTS "{db.name}" WITH (FORCE)')
            for r in roles.values():
                c.execute(f'DROP ROLE IF EXISTS "{r}"')


def test_capture_tables_equals_capture_table(rich):
    db, names = rich
    with db.connect() as c:
        one = [capture_table(c, s, n) for s, n in names]
        many = capture_tables(c, names)
        backwards = capture_tables(c, names[::-1])
        twice = capture_tables(c, names + names[:3])
    assert many == one
    assert [t.to_json() for t in many] == [t.to_json() for t in one]
    assert backwards[::-1] == one
    assert twice[:len(names)] == one and twice[len(names):] == one[:3]
    # the rich parts are really there (a comparison of empty lists proves nothing)
    t = {(x.schema, x.name): x for x in one}
    items = t[("app2", "items")]
    assert {x.name for x in items.triggers} == {"items_audit", "items_quiet",
                                                "items_missing"}
    assert [p.name for p in items.policies] == ["items_read", "items_write"]
    assert len(items.statistics) == 2 and items.options and items.toast_options
    assert items.rls_enabled and items.rls_forced and items.acl and items.sequences
    assert items.comment == "the items" and items.replica_identity == "i"
    assert [(p.schema, p.name) for p in t[("app2", "items_archive")].inherits] == \
        [("app2", "items")]
    assert t[("app2", "events_2024")].kind == "partition"
    assert t[("app", "events")].kind == "partitioned"
    assert any(x.types for x in one) and any(x.sequences for x in one)


def test_catalog_questions_for_many_tables(rich):
    db, names = rich
    with db.connect() as c:
        trees = partition_trees(c, [("app2", "events"), ("app", "owner"), ("app", "nope")])
        sizes = relation_sizes(c, [("app2", "items"), ("app", "nope"), ("app2", "events")])
        items = capture_table(c, "app2", "items")
        cols = [col.name for col in items.columns]
        assert text_columns(c, items, cols) == ["kind", "keys", "sig"]
        facts = type_facts(c, [col.type_oid for col in items.columns])
        # the walk went inside: oidvector's element (oid) is there too
        assert 26 in facts and facts[26].binary
        cache: dict = {}
        assert binary_capable(c, [23, 25, 1016], cache)      # int4, text, int8[]
        assert not binary_capable(c, [23, 1034], cache)      # aclitem[]: no send
        c.execute("CREATE TYPE pg_temp.acl_pair AS (a int, b aclitem)")
        pair = c.execute("SELECT 'pg_temp.acl_pair'::regtype::oid").fetchone()[0]
        assert not binary_capable(c, [pair])
        assert type_facts(c, [4000000000])[4000000000] is None
    assert trees[0][0][:2] == ("app2", "events") and trees[0][0][3] == 0
    assert ("app2", "events_2024", "r", 1) in trees[0]
    assert trees[1] == [] and trees[2] == []       # not partitioned; no such table
    assert sizes[0] > 0 and sizes[1] is None and sizes[2] == 0
