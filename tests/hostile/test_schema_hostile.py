"""Hostile definitions: injected SQL in names, defaults, predicates, bounds, types.

Real hostile names on a real server must be quoted harmlessly; definitions crafted
through JSON must be refused before anything runs.  Either way a canary table in the
target database survives with its row.
"""
from __future__ import annotations

import copy
import json
import re

import psycopg
import pytest

from dumpcodec.errors import SchemaError, UnsafeExpressionError
from dumpcodec.schema import (TableDef, capture_table, checked_expression, compare,
                              ddl_plan)

EVIL = '"; DROP TABLE canary; --'

HOSTILE_SOURCE = f"""
CREATE SCHEMA "s{EVIL.replace('"', '""')}";
SET search_path = "s{EVIL.replace('"', '""')}";
CREATE TYPE "e{EVIL.replace('"', '""')}" AS ENUM ('it''s''); DROP TABLE canary; --', 'b');
CREATE TABLE "t{EVIL.replace('"', '""')}" (
    "c{EVIL.replace('"', '""')}" text DEFAULT '''); DROP TABLE canary; --'
        CONSTRAINT "k{EVIL.replace('"', '""')}" CHECK ("c{EVIL.replace('"', '""')}" <> '; DROP TABLE canary'),
    "e" "e{EVIL.replace('"', '""')}",
    id serial PRIMARY KEY
);
CREATE INDEX "i{EVIL.replace('"', '""')}" ON "t{EVIL.replace('"', '""')}"
    (("c{EVIL.replace('"', '""')}" || '); DROP TABLE canary; --'))
    WHERE "c{EVIL.replace('"', '""')}" <> '--';
COMMENT ON TABLE "t{EVIL.replace('"', '""')}" IS '''; DROP TABLE canary; --';
"""


def make_canary(db):
    db.execute("CREATE TABLE canary (alive text); INSERT INTO canary VALUES ('yes')")


def canary_alive(db) -> bool:
    return db.execute("SELECT alive FROM public.canary") == [("yes",)]


def test_hostile_names_and_literals_are_quoted(db, make_db):
    target = make_db()
    make_canary(db)
    make_canary(target)
    with db.connect() as c:
        c.execute(HOSTILE_SOURCE)
        schema = "s" + EVIL
        tdef = capture_table(c, schema, "t" + EVIL)
    assert canary_alive(db)
    tdef = TableDef.from_json(json.loads(json.dumps(tdef.to_json())))
    with target.connect() as c:
        c.execute("CREATE SCHEMA {}".format('"' + schema.replace('"', '""') + '"'))
        plan = ddl_plan(tdef, existing_types=c)
        plan.execute(c)
        live = capture_table(c, schema, "t" + EVIL)
        cmp = compare(tdef, live)
        assert cmp.equal, str(cmp)
        # the odd default and enum label arrive as data, not as SQL
        c.execute('SET search_path = "s""; DROP TABLE canary; --"')
        c.execute('INSERT INTO "t""; DROP TABLE canary; --" (e) VALUES '
                  "('it''s''); DROP TABLE canary; --')")
        assert c.execute('SELECT "c""; DROP TABLE canary; --" FROM '
                         '"t""; DROP TABLE canary; --"').fetchone() == \
            ("'); DROP TABLE canary; --",)
    assert canary_alive(target)


BASE = """
CREATE TYPE mood AS ENUM ('a');
CREATE DOMAIN posint AS int CHECK (VALUE > 0);
CREATE TABLE t (a int DEFAULT 1 CHECK (a > 0), b text, m mood, p posint,
                r int4range, g int GENERATED ALWAYS AS (a + 1) STORED,
                CONSTRAINT t_ex EXCLUDE USING gist (r WITH &&));
CREATE INDEX t_b ON t (lower(b)) WHERE a > 0;
CREATE TABLE parted (k int) PARTITION BY RANGE (k);
CREATE TABLE parted_1 PARTITION OF parted FOR VALUES FROM (0) TO (10);
"""


@pytest.fixture(scope="module")
def good(pg_server):
    """Good definitions captured once; tests mutate deep copies."""
    import conftest
    db = conftest._create_db(pg_server)
    try:
        db.execute(BASE)
        with db.connect() as c:
            yield {n: capture_table(c, "public", n).to_json()
                   for n in ("t", "parted", "parted_1")}
    finally:
        conftest._drop_db(db)


@pytest.fixture(scope="module")
def target(pg_server):
    """One target database with a canary; tests that create tables use own schemas."""
    import conftest
    db = conftest._create_db(pg_server)
    try:
        make_canary(db)
        yield db
    finally:
        conftest._drop_db(db)


def _col(d, name):
    return next(c for c in d["columns"] if c["name"] == name)


def _con(d, kind):
    return next(c for c in d["constraints"] if c["kind"] == kind)


def _type(d, name):
    return next(t for t in d["types"] if t["name"] == name)


INJECT = "0); DROP TABLE canary; --"

CRAFTED = [
    ("t", lambda d: _col(d, "a").update(default=INJECT),
     "table public.t, column 'a' default: refused expression '0); DROP TABLE canary; --'"),
    ("t", lambda d: _col(d, "a").update(default="1; DROP TABLE canary"),
     "column 'a' default: refused expression"),
    ("t", lambda d: _col(d, "a").update(default="1 FROM canary"), "refused expression"),
    ("t", lambda d: _col(d, "a").update(default="1 AS x"), "refused expression"),
    ("t", lambda d: _col(d, "a").update(default="(SELECT count(*) FROM canary)"),
     "a subquery is not allowed"),
    ("t", lambda d: _col(d, "a").update(default="1 + (SELECT 1)"),
     "a subquery is not allowed"),
    ("t", lambda d: _col(d, "a").update(default="1 UNION SELECT 2"), "refused expression"),
    ("t", lambda d: _col(d, "g").update(generated="1) STORED, x int GENERATED ALWAYS AS (2"),
     "column 'g' generated expression: refused"),
    ("t", lambda d: _con(d, "check").update(expression="true); DROP TABLE canary; --"),
     "constraint 't_a_check': refused expression"),
    ("t", lambda d: d["indexes"][0].update(predicate="true; DROP TABLE canary"),
     "index 't_b' predicate: refused expression"),
    ("t", lambda d: d["indexes"][0]["elements"][0].update(
        expression="lower(b))); DROP TABLE canary; --"),
     "index 't_b': refused expression"),
    ("t", lambda d: _con(d, "exclusion")["elements"][0].update(
        operator="&&)); DROP TABLE canary; --"),
     "refused operator"),
    ("t", lambda d: _col(d, "b").update(type="text; DROP TABLE canary; --"),
     "column 'b' type: refused"),
    ("t", lambda d: _col(d, "b").update(type="text, evil int"), "column 'b' type: refused"),
    ("t", lambda d: _col(d, "b").update(type="integer"), "not the type 'text'"),
    ("t", lambda d: _col(d, "b").update(type="text COLLATE \"C\""), "not the type"),
    ("t", lambda d: _type(d, "posint")["checks"][0].update(
        expression="VALUE > 0); DROP TABLE canary; --"),
     "type public.posint, check 'posint_check': refused expression"),
    ("t", lambda d: _type(d, "posint")["base"].update(text="int; DROP TABLE canary"),
     "refused"),
    ("parted", lambda d: d.update(partition_key="RANGE (k); DROP TABLE canary; --"),
     "table public.parted, partition key: refused"),
    ("parted", lambda d: d.update(partition_key="RANGE (k) TABLESPACE pg_default"),
     "not just a partition key"),
    ("parted_1", lambda d: d.update(partition_bound="DEFAULT; DROP TABLE canary"),
     "table public.parted_1, partition bound: refused"),
    ("parted_1", lambda d: d.update(partition_bound="DEFAULT PARTITION BY LIST (k)"),
     "not just a partition bound"),
    ("parted_1", lambda d: d.update(
        partition_bound="FOR VALUES FROM (pg_terminate_backend(1)) TO (10)"),
     "not a constant"),
    ("t", lambda d: _con(d, "check").update(
        expression="pg_catalog.pg_read_file('/etc/passwd') IS NOT NULL"),
     "calls pg_read_file"),
    ("t", lambda d: _col(d, "a").update(default="length(set_config('role', 'x', false))"),
     "calls set_config"),
    ("t", lambda d: d["indexes"][0].update(predicate="pg_sleep(100) IS NULL"),
     "calls pg_sleep"),
]


@pytest.mark.parametrize("table, mutate, message", CRAFTED,
                         ids=[f"{i}-{c[0]}" for i, c in enumerate(CRAFTED)])
def test_crafted_definitions_are_refused(good, target, table, mutate, message):
    data = copy.deepcopy(good[table])
    mutate(data)
    tdef = TableDef.from_json(data)
    with pytest.raises(UnsafeExpressionError) as err:
        ddl_plan(tdef)
    assert message in str(err.value)
    assert canary_alive(target)
    assert target.execute("SELECT count(*) FROM pg_class WHERE relname IN "
                          "('t', 'parted', 'parted_1') AND relnamespace = "
                          "'public'::regnamespace") == [(0,)]


def test_crafted_identifiers_are_quoted_harmlessly(good, target):
    data = copy.deepcopy(good["t"])
    data["name"] = 't"; DROP TABLE canary; --'
    _col(data, "m")["name"] = 'm" text); DROP TABLE canary; --'
    data["indexes"][0]["name"] = 'i"; DROP TABLE canary; --'
    data["comment"] = "'; DROP TABLE canary; --"
    tdef = TableDef.from_json(data)
    schema = 'x"; DROP TABLE canary; --'
    with target.connect() as c:
        c.execute(psycopg.sql.SQL("CREATE SCHEMA {}").format(psycopg.sql.Identifier(schema)))
        ddl_plan(tdef, schema, existing_types=c).execute(c)
        live = capture_table(c, schema, 't"; DROP TABLE canary; --')
    assert compare(tdef, live).equal
    assert [col.name for col in live.columns][2] == 'm" text); DROP TABLE canary; --'
    assert live.comment == "'; DROP TABLE canary; --"
    assert canary_alive(target)


def test_a_trailing_comment_cannot_swallow_the_statement(good, target):
    data = copy.deepcopy(good["t"])
    _col(data, "a").update(default="41 + 1 -- the answer", not_null=True)
    tdef = TableDef.from_json(data)
    with target.connect() as c:
        c.execute("CREATE SCHEMA comments")
        ddl_plan(tdef, "comments", existing_types=c).execute(c)
        live = capture_table(c, "comments", "t")
        assert live.column("a").default == "(41 + 1)" and live.column("a").not_null
        c.execute("INSERT INTO comments.t (b) VALUES ('x')")
        assert c.execute("SELECT a FROM comments.t").fetchone() == (42,)
    assert canary_alive(target)


@pytest.mark.parametrize("expr", ["", "   ", "1; SELECT 2", "1 /* open", "SELECT 1",
                                  "(1", "1)", "1) + (2; SELECT (3"])
def test_checked_expression_refuses(expr):
    with pytest.raises(UnsafeExpressionError):
        checked_expression(expr, "somewhere")


@pytest.mark.parametrize("expr", ["1", "now()", "(a > 0) AND (b IS NOT NULL)",
                                  "lower(b)",
                                  "'x;y'::text", "ARRAY[1, 2]", "$$dollar$$",
                                  "CASE WHEN a THEN 1 ELSE 2 END"])
def test_checked_expression_accepts(expr):
    assert checked_expression(expr, "here").as_string(None).startswith("(")


def test_sequence_advance_only_in_defaults():
    # a serial column's default; in a CHECK it would run once per restored row
    expr = "nextval('t_a_seq'::regclass)"
    assert checked_expression(expr, "a default", per_row=False).as_string(None) == f"({expr})"
    with pytest.raises(UnsafeExpressionError, match="nextval"):
        checked_expression(expr, "a check")
    with pytest.raises(UnsafeExpressionError, match="query_to_xml"):
        checked_expression("query_to_xml('SELECT 1', true, true, '')", "a default",
                           per_row=False)


SERIAL_LIKE = [
    "nextval('t_a_seq'::regclass)", "nextval('\"My \"\"seq\"\"\"'::regclass)",
    "nextval('s.''x''--y'::regclass)", "nextval('a\nb'::regclass)",
    "nextval('a'''::regclass)",
    # not the serial form: the full parse decides
    "nextval('a\\'::regclass)", "nextval('a'::regclass) + 1", "nextval('a')",
    "nextval('a'::regclass); SELECT 1", "nextval('a'::regclass) --",
    "nextval('a'::regclass)::int", " nextval('a'::regclass)", "nextval(''::regclass)",
    "nextval('a'::regclass, 'b')", "pg_catalog.nextval('a'::regclass)",
    "nextval('a'::regclass) FROM t",
    "nextval('a'::regclass)'::regclass)", "nextval('a''::regclass)"]


@pytest.mark.parametrize("expr", SERIAL_LIKE)
def test_serial_default_shortcut_agrees_with_the_parse(expr, monkeypatch):
    """A serial column's default skips the parse (ddl_build._SERIAL_DEFAULT): the
    verdicts and the text are those of the full check, in a default and in a CHECK."""
    from dumpcodec.schema import ddl_build

    def verdicts():
        ddl_build._checked_text.cache_clear()
        out = []
        for per_row in (False, True):
            try:
                out.append(checked_expression(expr, "here", per_row=per_row)
                           .as_string(None).replace("\n)", ")"))
            except UnsafeExpressionError:
                out.append(None)
        return out
    assert (ddl_build._SERIAL_DEFAULT.fullmatch(expr) is not None) == \
        (expr in SERIAL_LIKE[:5])
    shortcut = verdicts()
    monkeypatch.setattr(ddl_build, "_SERIAL_DEFAULT", re.compile(r"(?!)"))  # never
    parsed = verdicts()
    ddl_build._checked_text.cache_clear()
    assert shortcut == parsed
    assert parsed[1] is None                     # never in a CHECK


def test_bad_structure_is_a_schema_error(good):
    data = copy.deepcopy(good["t"])
    data["indexes"][0]["elements"][0].update(column="b", expression="lower(b)")
    with pytest.raises(SchemaError, match="a column or an expression"):
        ddl_plan(TableDef.from_json(data))


def test_percent_and_braces_in_expressions(target, make_db):
    """'%' and '{}' in stored text are neither placeholders nor format fields."""
    source = make_db()
    source.execute("CREATE TABLE pct (a int CHECK (a % 2 = 0), "
                   "b text DEFAULT '{0}%s' CHECK (b LIKE '%{0}%'))")
    with source.connect() as c:
        t = capture_table(c, "public", "pct")
    with target.connect() as c:
        c.execute("CREATE SCHEMA pct")
        ddl_plan(t, "pct").execute(c)
        assert compare(t, capture_table(c, "pct", "pct")).equal
        c.execute("INSERT INTO pct.pct (a) VALUES (2)")
        assert c.execute("SELECT b FROM pct.pct").fetchone() == ("{0}%s",)
