"""schema.resolve_selectors and partition_leaves on a real catalog."""
from __future__ import annotations

import pytest

from dumpcodec.errors import SelectorError
from dumpcodec.schema import TableRef, partition_leaves, resolve_selectors

SETUP = """
CREATE SCHEMA app; CREATE SCHEMA logs; CREATE SCHEMA empty; CREATE SCHEMA "odd.name";
CREATE TABLE app.t1 (a int); CREATE TABLE app.t2 (a int); CREATE TABLE app.other (a int);
CREATE TABLE public.plain (a int); CREATE TABLE public."MixedCase" (a int);
CREATE TABLE "odd.name"."t*x" (a int);
CREATE TABLE logs.log_a (a int); CREATE TABLE logs.log_b (a int); CREATE TABLE logs.log_ab (a int);
CREATE TABLE app.log_c (a int);
CREATE VIEW app.v1 AS SELECT 1 AS x; CREATE MATERIALIZED VIEW app.mv AS SELECT 1 AS x;
CREATE SEQUENCE app.s1;
CREATE VIEW logs.vv AS SELECT 1 AS x;
CREATE TABLE app.parted (k int) PARTITION BY RANGE (k);
CREATE TABLE app.parted_1 PARTITION OF app.parted FOR VALUES FROM (0) TO (10)
    PARTITION BY RANGE (k);
CREATE TABLE app.parted_1a PARTITION OF app.parted_1 FOR VALUES FROM (0) TO (5);
CREATE TABLE app.parted_1b PARTITION OF app.parted_1 FOR VALUES FROM (5) TO (10);
CREATE TABLE app.parted_2 PARTITION OF app.parted FOR VALUES FROM (10) TO (20);
"""


@pytest.fixture(scope="module")
def catdb(pg_server):
    """One database for the module: these tests only read the catalog (the foreign
    table test adds a relation no other test looks at)."""
    import conftest
    db = conftest._create_db(pg_server)
    try:
        db.execute(SETUP)
        yield db
    finally:
        conftest._drop_db(db)


@pytest.fixture
def cat(catdb):
    with catdb.connect() as c:
        yield c


def names(refs):
    return [(r.schema, r.name) for r in refs]


def test_schema_dot_table(cat):
    assert resolve_selectors(cat, ["app.t1"]) == [TableRef("app.t1", "app", "t1")]


def test_bare_table_through_search_path(cat):
    assert names(resolve_selectors(cat, ["plain"])) == [("public", "plain")]
    with pytest.raises(SelectorError, match="'t1' matches nothing"):
        resolve_selectors(cat, ["t1"])
    cat.execute("SET search_path = app, public")
    assert names(resolve_selectors(cat, ["t1", "plain"])) == [("app", "t1"),
                                                               ("public", "plain")]


def test_schema_name_gives_all_its_tables_partitions_under_their_parent(cat):
    assert names(resolve_selectors(cat, ["app"])) == [
        ("app", "log_c"), ("app", "other"), ("app", "parted"), ("app", "t1"), ("app", "t2")]


def test_patterns(cat):
    assert names(resolve_selectors(cat, ["app.t*"])) == [("app", "t1"), ("app", "t2")]
    assert names(resolve_selectors(cat, ["*.log_?"])) == [
        ("app", "log_c"), ("logs", "log_a"), ("logs", "log_b")]
    assert names(resolve_selectors(cat, ["logs.*"])) == [
        ("logs", "log_a"), ("logs", "log_ab"), ("logs", "log_b")]   # the view is skipped
    # a pattern matching a partitioned table and its partitions gives the parent
    assert names(resolve_selectors(cat, ["app.parted*"])) == [("app", "parted")]
    # partitions alone are what they are
    assert names(resolve_selectors(cat, ["app.parted_1?"])) == [
        ("app", "parted_1a"), ("app", "parted_1b")]


def test_quoting_and_case(cat):
    assert names(resolve_selectors(cat, ['"odd.name"."t*x"'])) == [("odd.name", "t*x")]
    assert names(resolve_selectors(cat, ["MixedCase"])) == [("public", "MixedCase")]
    assert names(resolve_selectors(cat, ["APP.T1"])) == [("app", "t1")]   # folded
    with pytest.raises(SelectorError, match="unterminated double quote"):
        resolve_selectors(cat, ['"app.t1'])
    with pytest.raises(SelectorError, match="too many dotted parts"):
        resolve_selectors(cat, ["a.b.c"])
    with pytest.raises(SelectorError, match="empty"):
        resolve_selectors(cat, ["app."])


def test_order_kept_and_duplicates_dropped(cat):
    assert names(resolve_selectors(cat, ["app.t2", "app.t*", "app.t1"])) == [
        ("app", "t2"), ("app", "t1")]


def test_id_map(cat):
    refs = resolve_selectors(cat, ["rd/x#main", "app.t2"],
                             id_map={"rd/x#main": ("app", "t1")})
    assert refs == [TableRef("rd/x#main", "app", "t1"), TableRef("app.t2", "app", "t2")]
    with pytest.raises(SelectorError, match=r"'rd#gone' matches nothing \(id_map maps it "
                                            r"to app.gone\)"):
        resolve_selectors(cat, ["rd#gone"], id_map={"rd#gone": ("app", "gone")})
    with pytest.raises(SelectorError, match="view app.v1"):
        resolve_selectors(cat, ["rd#v"], id_map={"rd#v": ("app", "v1")})


@pytest.mark.parametrize("selector, found", [
    ("app.v1", "view app.v1"),
    ("app.mv", "materialized view app.mv"),
    ("app.s1", "sequence app.s1"),
    ("logs.v*", "view logs.vv"),
])
def test_non_tables_are_errors_naming_what_was_found(cat, selector, found):
    with pytest.raises(SelectorError) as err:
        resolve_selectors(cat, [selector])
    assert repr(selector) in str(err.value) and found in str(err.value)


def test_foreign_table_is_an_error(cat):
    cat.execute("CREATE SCHEMA ftables; CREATE FOREIGN DATA WRAPPER dummy; CREATE SERVER "
                "srv FOREIGN DATA WRAPPER dummy; CREATE FOREIGN TABLE ftables.ft (a int) "
                "SERVER srv")
    with pytest.raises(SelectorError, match="foreign table ftables.ft"):
        resolve_selectors(cat, ["ftables.ft"])
    with pytest.raises(SelectorError, match="'ftables.\\*' names no table: it matches "
                                            "foreign table ftables.ft"):
        resolve_selectors(cat, ["ftables.*"])


def test_nothing_and_empty_schema(cat):
    with pytest.raises(SelectorError, match="'app.nope' matches nothing"):
        resolve_selectors(cat, ["app.nope"])
    with pytest.raises(SelectorError, match="'nope.\\*' matches nothing"):
        resolve_selectors(cat, ["nope.*"])
    with pytest.raises(SelectorError, match="schema 'empty', which has no tables"):
        resolve_selectors(cat, ["empty"])
    with pytest.raises(SelectorError, match="empty selector"):
        resolve_selectors(cat, [""])


def test_partition_leaves(cat):
    assert names(partition_leaves(cat, "app", "parted")) == [
        ("app", "parted_1a"), ("app", "parted_1b"), ("app", "parted_2")]
    assert names(partition_leaves(cat, "app", "parted_1")) == [
        ("app", "parted_1a"), ("app", "parted_1b")]
    assert names(partition_leaves(cat, "app", "t1")) == [("app", "t1")]
    with pytest.raises(SelectorError):
        partition_leaves(cat, "app", "v1")
