"""Crafted archives against a target that holds data, grants and user code (issue 17).

Every case is a real dump rewritten with the library's own writer (see
:mod:`untrusted_helpers`), restored into a fresh copy of a prepared target as the
superuser and as an ordinary role that owns schema ``app`` (with ``role=``, as
``pg_restore --role``; a subset also logged in as that role).  Afterwards the canary
table, its grant, the canary sequence, the roles, large objects, replication slots,
publications, event triggers, functions, operators, casts, every other table and
sequence, the files of the working directory and the trace of ``evil()`` must be as
they were; the crafted table must be reported as failed with a reason naming what was
refused, and the honest table of the same archive (``app.honest``, non-ASCII text,
after the crafted one on the same connection) must arrive intact.

Cases marked ``xfail(strict=True)`` with a reason starting ``HOLE`` are attacks the
defence does not stop yet: the test says what should happen, and fails today.
"""
from __future__ import annotations

import io
import os
import re
import tarfile
import threading
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional

import psycopg
import pytest

from dumpcodec.errors import DumpcodecError
pytest.register_assert_rewrite("untrusted_helpers")
from untrusted_helpers import (  # noqa: E402
    EVIL_ROLE, HONEST_TXT, MODES, SLOT, Target, add_column, as_pipe, assert_unchanged,
    column, constraint, entry, honest_rows, restore, set_type, snapshot, write_archive)

# the fixtures (source, template, target, ...) are a plugin, so that the session's
# roles and template database exist once for every module that uses them
pytest_plugins = ["untrusted_helpers"]

Mutator = Callable[[Dict[str, list], Target], None]


@dataclass
class Case:
    tables: List[str]                       # source ids, in archive order
    mutate: Optional[Mutator] = None        # edits the crafted entries (by source id)
    refused: Optional[str] = None           # table id that must be in summary.failed
    reason: str = r"refused"                # ... with a reason matching this
    raises: Optional[str] = None            # the whole archive is refused: message
    warning: Optional[str] = None           # a warning must match this
    kwargs: Dict[str, Any] = field(default_factory=dict)
    restored: List[str] = field(default_factory=list)    # targets that may change
    honest: bool = True                     # app.honest follows and must restore
    prepare: Optional[Callable[..., None]] = None   # (target, mode, source, tmp_path)
    check: Optional[Callable[[Target, Any], None]] = None
    info: Dict[str, Any] = field(default_factory=dict)


# ===================================================================== mutators

def check_expr(expr: str, table: str = "app.t") -> Mutator:
    def mutate(ts, db):
        d = ts[table][1]
        next(c for c in d["constraints"] if c["kind"] == "check")["expression"] = expr
    return mutate


def omitted_default(expr: str, table: str = "app.t", like: str = "id") -> Mutator:
    """A column the header leaves out, so COPY computes its default for every row."""
    def mutate(ts, db):
        add_column(ts[table], "extra", like=like, default=expr)
    return mutate


def generated(expr: str, table: str = "app.t", col: str = "g") -> Mutator:
    def mutate(ts, db):
        column(ts[table][1], col)["generated"] = expr
    return mutate


def domain_check(expr: str) -> Mutator:
    def mutate(ts, db):
        set_type(ts["app.t"], "small")["checks"][0]["expression"] = expr
    return mutate


def index_elem(expr: str) -> Mutator:
    def mutate(ts, db):
        ts["app.t"][1]["indexes"][0]["elements"][0]["expression"] = expr
    return mutate


def index_pred(expr: str) -> Mutator:
    def mutate(ts, db):
        ts["app.t"][1]["indexes"][0]["predicate"] = expr
    return mutate


def ts_rewrite(query: str) -> str:
    """A CHECK that runs ``query`` (ts_rewrite's second form takes a query as text)."""
    q = query.replace("'", "''")
    return f"ts_rewrite('a'::tsquery, '{q}') IS NOT NULL"


def rename(table_id: str, schema: str, name: str) -> Mutator:
    def mutate(ts, db):
        t = ts[table_id]
        t[0] = f"{schema}.{name}"
        t[1]["schema"], t[1]["name"] = schema, name
    return mutate


def then(*mutators: Mutator) -> Mutator:
    def mutate(ts, db):
        for m in mutators:
            m(ts, db)
    return mutate


def _id_names_canary(ts, db):
    t = ts["public.canary"]
    t[0] = "public.harmless"


def _pg_catalog_type(ts, db):
    ty = set_type(ts["app.t"], "mood")
    ty["schema"] = "pg_catalog"
    col = column(ts["app.t"][1], "m")
    col["type_schema"], col["type"] = "pg_catalog", "pg_catalog.mood"


def _builtin_name_type(ts, db):
    ty = set_type(ts["app.t"], "mood")
    ty["name"] = "text"
    col = column(ts["app.t"][1], "m")
    col["type_elem"], col["type"] = "text", "app.text"


def _seq_is_canary(ts, db):
    s = ts["app.t"][1]["sequences"][0]
    s.update(schema="public", name="canary_seq", last_value=99999, is_called=True)


def _undeclared_domain(ts, db):
    d = ts["app.tc"][1]
    d["types"] = [ty for ty in d["types"] if ty["name"] != "posdom"]


def _evil_subtype_diff(ts, db):
    ty = set_type(ts["app.rt"], "frange")
    ty["subtype_diff"], ty["subtype_diff_schema"] = "evil_diff", "app"


def _evil_partition_key(ts, db):
    """A partitioned table (and its partition) the target does not have yet, whose
    key runs evil_imm() for every row routed."""
    rename("app.events", "app", "events2")(ts, db)
    rename("app.evpart", "app", "evpart2")(ts, db)
    ts["app.events"][1]["partition_key"] = "RANGE (evil_imm(id))"
    ts["app.evpart"][1]["parent_name"] = "events2"


def _restore_clean_t(db: Target, mode: str, src, tmp_path) -> None:
    """The table is there already (empty), created from an honest archive the same
    way the crafted one is then restored."""
    path = write_archive(tmp_path / "clean.dump", [entry(src, "app.t")])
    summary = restore(db, path, mode, data=False)
    assert not summary.failed, summary.failed


def _events_unchanged(db: Target, summary) -> None:
    # the application's next row of 2030 finds no partition to land in
    with pytest.raises(psycopg.errors.CheckViolation):
        db.execute("INSERT INTO app.events VALUES (11, '2030-06-01', 'app')")


def _tparent_truncated_only(db: Target, summary) -> None:
    assert db.execute("SELECT id, v FROM ONLY app.tparent") == [(100, "archive")]
    assert db.execute("SELECT id, v FROM app.tchild") == [(2, "child row")]


def _own_seq_moved(db: Target, summary) -> None:
    # the table's own sequence follows the archive; nothing else does
    assert db.execute("SELECT last_value FROM app.t_id_seq") == [(99999,)]


HASH_OPCLASS_SQL = """
CREATE FUNCTION app.evil_hash(int, bigint) RETURNS bigint LANGUAGE plpgsql IMMUTABLE AS
  'BEGIN PERFORM public.evil(); RETURN pg_catalog.hashint4extended($1, $2); END';
CREATE OPERATOR CLASS app.evil_hash_ops FOR TYPE int USING hash AS
  OPERATOR 1 pg_catalog.=, FUNCTION 1 pg_catalog.hashint4(int),
  FUNCTION 2 app.evil_hash(int, bigint);
CREATE TABLE app.hashed (k int) PARTITION BY HASH (k app.evil_hash_ops);
CREATE TABLE app.hashed_0 PARTITION OF app.hashed FOR VALUES WITH (MODULUS 2, REMAINDER 0);
"""

# json has no btree operator class of its own; a default one the target's owner added
# is what the server uses for json wherever it needs an order: arrays of json, ANALYZE
JSON_OPCLASS_SQL = """
CREATE FUNCTION app.json_cmp(json, json) RETURNS int LANGUAGE plpgsql IMMUTABLE AS
  'BEGIN PERFORM public.evil(); RETURN pg_catalog.bttextcmp($1::text, $2::text); END';
""" + "".join(f"""
CREATE FUNCTION app.json_{fn}(json, json) RETURNS bool LANGUAGE sql IMMUTABLE AS
  'SELECT $1::text {op} $2::text';
CREATE OPERATOR app.{op} (LEFTARG = json, RIGHTARG = json, FUNCTION = app.json_{fn});
""" for fn, op in (("lt", "<"), ("le", "<="), ("eq", "="), ("ge", ">="), ("gt", ">"))) + """
CREATE OPERATOR CLASS app.json_ops DEFAULT FOR TYPE json USING btree AS
  OPERATOR 1 app.<, OPERATOR 2 app.<=, OPERATOR 3 app.=, OPERATOR 4 app.>=,
  OPERATOR 5 app.>, FUNCTION 1 app.json_cmp(json, json);
"""


def run_sql(query: str):
    def prepare(db: Target, mode: str, src, tmp_path) -> None:
        db.execute(query)
    return prepare


def _unique_json_array(ts, db):
    d = ts["app.tj"][1]
    key = dict(constraint(d, "primary_key"), kind="unique", name="tj_j_key", columns=["j"])
    d["constraints"].append(key)


def hole(reason: str):
    return pytest.mark.xfail(strict=True, reason="HOLE: " + reason)


FREE_CANARY_SEQ = {"sequences": [{
    "schema": "public", "name": "canary_seq", "data_type": "bigint", "start": 1,
    "increment": 1, "min_value": 1, "max_value": 9223372036854775807, "cache": 1,
    "cycle": False, "last_value": 99999, "is_called": True}]}


# ===================================================================== the cases

EVIL_CHECKS = r"refused.*(evil|outside pg_catalog|not allowed)"
RESOLVED = r"refused.*outside pg_catalog|refused.*not built in"

CASES: Dict[str, Any] = {
    # -- SQL text run by a built-in ---------------------------------------------------
    "check ts_rewrite runs setval": Case(
        ["app.t"], check_expr(ts_rewrite(
            "SELECT 'a'::tsquery, 'b'::tsquery FROM pg_catalog.setval('public.canary_seq', "
            "1000)")), "app.t", r"refused.*ts_rewrite"),
    "check ts_rewrite runs lo_import": Case(
        ["app.t"], check_expr(ts_rewrite(
            "SELECT 'a'::tsquery, 'b'::tsquery FROM pg_catalog.lo_import('/etc/hostname')")),
        "app.t", r"refused.*ts_rewrite"),
    "check ts_rewrite creates a replication slot": Case(
        ["app.t"], check_expr(ts_rewrite(
            f"SELECT 'a'::tsquery, 'b'::tsquery FROM "
            f"pg_catalog.pg_create_physical_replication_slot('{SLOT}')")),
        "app.t", r"refused.*ts_rewrite"),
    "check ts_rewrite runs evil()": Case(
        ["app.t"], check_expr(ts_rewrite(
            "SELECT 'a'::tsquery, 'b'::tsquery FROM public.evil()")),
        "app.t", r"refused.*ts_rewrite"),
    "check creates a replication slot directly": Case(
        ["app.t"], check_expr(f"pg_create_physical_replication_slot('{SLOT}') IS NOT NULL"),
        "app.t", r"refused.*replication"),
    # -- function calls written as field selection ------------------------------------
    "field selection nextval": Case(
        ["app.t"], check_expr("('public.canary_seq'::regclass).nextval > 0"),
        "app.t", r"refused.*field selection"),
    "field selection lo_import": Case(
        ["app.t"], check_expr("('/etc/hostname'::text).lo_import > 0"),
        "app.t", r"refused.*field selection"),
    "field selection evil in a default": Case(
        ["app.t"], omitted_default("(id).evil_imm"), "app.t", r"refused.*field selection"),
    # -- a column the header leaves out: its default runs per row ---------------------
    "omitted column default nextval(canary_seq)": Case(
        ["app.t"], omitted_default("nextval('public.canary_seq'::regclass)"),
        "app.t", r"refused.*(canary_seq|relation)"),
    "omitted column default evil()": Case(
        ["app.t"], omitted_default("evil()"), "app.t", EVIL_CHECKS),
    "omitted column default public.evil()": Case(
        ["app.t"], omitted_default("public.evil()"), "app.t", EVIL_CHECKS),
    # -- user functions in stored expressions -----------------------------------------
    "check calls evil() (volatile)": Case(
        ["app.t"], check_expr("evil() > 0"), "app.t", EVIL_CHECKS),
    "check calls evil_imm() (falsely immutable)": Case(
        ["app.t"], check_expr("evil_imm(id) > 0"), "app.t", EVIL_CHECKS),
    "check calls evil_def() (security definer)": Case(
        ["app.t"], check_expr("evil_def(id) > 0"), "app.t", EVIL_CHECKS),
    "check calls app.evil_imm() qualified": Case(
        ["app.t"], check_expr("app.evil_imm(id) > 0"), "app.t", EVIL_CHECKS),
    "domain check calls evil_imm()": Case(
        ["app.t"], domain_check("evil_imm(VALUE) > 0"), "app.t", EVIL_CHECKS),
    "domain default calls evil_imm() for an omitted column": Case(
        ["app.t"], then(lambda ts, db: set_type(ts["app.t"], "small").update(
            default="evil_imm(1)"), lambda ts, db: add_column(ts["app.t"], "extra",
                                                              like="s")),
        "app.t", EVIL_CHECKS),
    "partition key calls evil_imm()": Case(
        ["app.events", "app.evpart"], _evil_partition_key, "app.events2", EVIL_CHECKS),
    "index expression calls evil_text()": Case(
        ["app.t"], index_elem("evil_text(v)"), "app.t", EVIL_CHECKS),
    "index expression folds evil_imm(1) at CREATE INDEX": Case(
        ["app.t"], index_elem("evil_imm(1)"), "app.t", EVIL_CHECKS),
    "index predicate calls evil_imm()": Case(
        ["app.t"], index_pred("evil_imm(id) > 0"), "app.t", EVIL_CHECKS),
    "generated column calls evil_imm()": Case(
        ["app.t"], generated("evil_imm(id)"), "app.t", EVIL_CHECKS),
    "generated column folds evil_def(1)": Case(
        ["app.t"], generated("evil_def(1)"), "app.t", EVIL_CHECKS),
    # -- user code reached through resolution, no function named ----------------------
    "check = resolves to a user operator on the enum": Case(
        ["app.t"], check_expr("(m = 'a') IS NOT NULL OR m IS NULL"), "app.t", RESOLVED),
    "check IN resolves to a user operator on the enum": Case(
        ["app.t"], check_expr("(m IN ('a', 'b')) IS NOT NULL OR m IS NULL"),
        "app.t", RESOLVED),
    "check OPERATOR(app.=) named": Case(
        ["app.t"], check_expr("(m OPERATOR(app.=) 'a') IS NOT NULL OR m IS NULL"),
        "app.t", r"refused.*(operator app\.=|outside pg_catalog)"),
    "user operator changes client_encoding for the next table": Case(
        ["app.t_ce"], check_expr("(m = 'a') IS NOT NULL", "app.t_ce"), "app.t_ce",
        RESOLVED, kwargs={"jobs": 1}),
    "omitted column default runs the user's assignment cast": Case(
        ["app.t_cast"], lambda ts, db: add_column(ts["app.t_cast"], "extra", like="m",
                                                  default="'a'::text"),
        "app.t_cast", r"refused.*(cast|text_to_mood)"),
    "generated column runs the user's assignment cast": Case(
        ["app.t_cast"], lambda ts, db: add_column(ts["app.t_cast"], "extra", like="m",
                                                  generated="'a'::text"),
        "app.t_cast", r"refused.*(cast|text_to_mood)"),
    "unique uses the type's user default operator class": Case(
        ["app.t_opc"], None, "app.t_opc", r"refused.*operator class"),
    "composite found equal holds a domain the archive does not define": Case(
        ["app.tc"], _undeclared_domain, "app.tc", r"refused.*(posdom|type)"),
    "range type's subtype_diff is a user function": Case(
        ["app.rt"], _evil_subtype_diff, "app.rt", r"refused.*(evil_diff|range)"),
    # -- structure ---------------------------------------------------------------------
    "table id names another table (replace)": Case(
        ["public.canary"], _id_names_canary, honest=False,
        raises=r"public\.harmless.*does not match.*public\.canary",
        kwargs={"tables": ["public.harmless"], "if_exists": "replace"},
        restored=["public.harmless"]),
    "table id names another table (truncate)": Case(
        ["public.canary"], _id_names_canary, honest=False,
        raises=r"public\.harmless.*does not match.*public\.canary",
        kwargs={"tables": ["public.harmless"], "if_exists": "truncate"},
        restored=["public.harmless"]),
    "table id names another table (append)": Case(
        ["public.canary"], _id_names_canary, honest=False,
        raises=r"public\.harmless.*does not match.*public\.canary",
        kwargs={"tables": ["public.harmless"], "if_exists": "append"},
        restored=["public.harmless"]),
    "pg_catalog.pg_authid (append)": Case(
        ["app.pg_authid"], rename("app.pg_authid", "pg_catalog", "pg_authid"),
        "pg_catalog.pg_authid", r"refused.*reserved", kwargs={"if_exists": "append"}),
    "information_schema.sql_features (truncate)": Case(
        ["app.sql_features"], rename("app.sql_features", "information_schema",
                                     "sql_features"),
        "information_schema.sql_features", r"refused.*reserved",
        kwargs={"if_exists": "truncate"}),
    "information_schema.sql_features (replace)": Case(
        ["app.sql_features"], rename("app.sql_features", "information_schema",
                                     "sql_features"),
        "information_schema.sql_features", r"refused.*reserved",
        kwargs={"if_exists": "replace"}),
    "default partition of the application's events": Case(
        ["app.evpart"], None, "app.evpart", r"attach.*app\.events.*allow-attach",
        check=_events_unchanged),
    "type created in pg_catalog": Case(
        ["app.t"], _pg_catalog_type, "app.t", r"refused.*(reserved|pg_catalog)"),
    "type named like a built-in": Case(
        ["app.t"], _builtin_name_type, "app.t", r"refused.*shadow"),
    "foreign key onto an existing table": Case(
        ["app.fkt"], None, warning=r"fkt_c_fkey not created.*public\.canary",
        restored=["app.fkt"]),
    "truncate leaves inheritance children alone": Case(
        ["app.tparent"], None, kwargs={"if_exists": "truncate"},
        restored=["app.tparent"], check=_tparent_truncated_only),
    "owned sequence entry names canary_seq (append)": Case(
        ["app.t"], _seq_is_canary, kwargs={"if_exists": "append"}, restored=["app.t", "app.t_id_seq"],
        prepare=_restore_clean_t, check=_own_seq_moved),
    # -- what a first version of the defence let through (issue 17's red team) --------
    "check domain_in() runs a domain's CHECK by OID": pytest.param(Case(
        ["app.t"], check_expr("domain_in('5'::cstring, to_regtype('app.posdom')::oid, -1) "
                              "IS NOT NULL"), "app.t", r"refused.*domain_in")),
    "check array_in() runs a domain's CHECK by OID": pytest.param(Case(
        ["app.t"], check_expr("array_in('{5}'::cstring, to_regtype('app.posdom')::oid, -1) "
                              "IS NOT NULL"), "app.t", r"refused.*array_in")),
    "check record_in() runs a domain's CHECK by OID": pytest.param(Case(
        ["app.t"], check_expr("record_in('(1,5)'::cstring, to_regtype('app.pair')::oid, "
                              "-1) IS NOT NULL"), "app.t", r"refused.*record_in")),
    "check satisfies_hash_partition() runs a user hash function": pytest.param(Case(
        ["app.t"], check_expr("satisfies_hash_partition(to_regclass('app.hashed')::oid, 2, "
                              "0, id) IS NOT NULL"), "app.t",
        r"refused.*satisfies_hash_partition", prepare=run_sql(HASH_OPCLASS_SQL))),
    "unique on json[] uses a user default operator class of json": pytest.param(Case(
        ["app.tj"], _unique_json_array, "app.tj", r"refused.*operator class",
        prepare=run_sql(JSON_OPCLASS_SQL), kwargs={"analyze": False})),
    "analyze of a json column uses a user default operator class": pytest.param(Case(
        ["app.tj"], None, "app.tj", r"refused.*operator class",
        prepare=run_sql(JSON_OPCLASS_SQL))),
    "partition attaches to an existing parent the archive also lists (append)":
        pytest.param(Case(
            ["app.events", "app.evpart"], None, "app.evpart",
            r"attach.*app\.events.*allow-attach", kwargs={"if_exists": "append"},
            check=_events_unchanged)),
    "opaque table id (with #) names another table (truncate)": pytest.param(Case(
        ["public.canary"], lambda ts, db: ts["public.canary"].__setitem__(0, "harmless#t"),
        honest=False, raises=r"harmless#t.*public\.canary",
        kwargs={"tables": ["harmless#t"], "if_exists": "truncate"},
        restored=["harmless#t"])),
    "free sequence entry names canary_seq": Case(
        [], None, kwargs={"if_exists": "append"}, info={"sequences":
                                                        FREE_CANARY_SEQ["sequences"]},
        warning=r"public\.canary_seq exists and was left as it is"),
}


# Every case runs as the superuser and with role= (SET ROLE, as pg_restore --role);
# these also logged in as the ordinary role (the other way a restore gets its rights).
LOGIN_CASES = {"check ts_rewrite runs lo_import", "field selection nextval",
               "omitted column default evil()", "check calls evil_def() (security definer)",
               "check = resolves to a user operator on the enum",
               "user operator changes client_encoding for the next table",
               "unique uses the type's user default operator class",
               "range type's subtype_diff is a user function",
               "table id names another table (append)", "pg_catalog.pg_authid (append)",
               "default partition of the application's events",
               "truncate leaves inheritance children alone",
               "owned sequence entry names canary_seq (append)",
               "check domain_in() runs a domain's CHECK by OID"}


def _params(cases):
    """pytest params (name, mode), holes with their xfail mark, and the cases."""
    params, objs = [], {}
    for name, c in cases.items():
        marks = () if isinstance(c, Case) else c.marks
        objs[name] = c if isinstance(c, Case) else c.values[0]
        for mode in MODES:
            if mode != "login" or name in LOGIN_CASES:
                params.append(pytest.param(name, mode, marks=marks,
                                           id=f"{name}-{mode}"))
    assert LOGIN_CASES <= set(objs)
    return params, objs


CASE_PARAMS, CASE_OBJS = _params(CASES)


def _new_ok(case: Case) -> List[str]:
    ids = [t for t in case.tables] + (["app.honest"] if case.honest else [])
    return ids + case.restored


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    """The restore runs in an empty working directory, which must stay empty."""
    d = tmp_path / "cwd"
    d.mkdir()
    monkeypatch.chdir(d)
    return d


@pytest.mark.parametrize("name, mode", CASE_PARAMS)
def test_crafted_archive(name, mode, source, target, workdir, tmp_path):
    case: Case = CASE_OBJS[name]
    if case.prepare is not None:
        case.prepare(target, mode, source, tmp_path)
    crafted = {tid: entry(source, tid) for tid in case.tables}
    if case.mutate is not None:
        case.mutate(crafted, target)
    tables = list(crafted.values()) + ([entry(source, "app.honest")] if case.honest else [])
    path = write_archive(tmp_path / "crafted.dump", tables, **case.info)

    before = snapshot(target, case.restored)
    summary = error = None
    try:
        summary = restore(target, path, mode, **case.kwargs)
    except DumpcodecError as exc:
        error = exc
    after = snapshot(target, case.restored)

    assert_unchanged(before, after, _new_ok(case))
    assert os.listdir(workdir) == []
    if case.raises is not None:
        assert error is not None and re.search(case.raises, str(error)), (error, summary)
        return
    assert error is None, error
    failed = dict(summary.failed)
    if case.refused is not None:
        assert case.refused in failed, (summary.failed, summary.ok)
        assert re.search(case.reason, failed[case.refused], re.S), failed[case.refused]
    others = {k: v for k, v in failed.items() if k != case.refused}
    if case.honest:
        assert "app.honest" not in failed, failed
        assert honest_rows(target) == HONEST_TXT
    if case.warning is not None:
        assert any(re.search(case.warning, w) for w in summary.warnings), summary.warnings
    if case.check is not None:
        case.check(target, summary)
    if case.refused is None:
        assert not others, others


# ===================================================================== other input paths

@pytest.mark.parametrize("mode", MODES)
def test_dachs_archive_restores_only_mapped_ids(mode, source, target, workdir, tmp_path):
    """A DaCHS archive's index.txt also lists ``pg_catalog.pg_authid`` (a text member
    holding a superuser login role); only the id the user mapped is restored."""
    path = tmp_path / "dachs.tar.gz"
    members = [("table_000.dump", source.dachs_binary),
               ("table_001.textdump", source.authid_text),
               ("index.txt", b"table_000.dump myrd#main\n"
                             b"table_001.textdump pg_catalog.pg_authid\n")]
    with tarfile.open(path, "w:gz") as tar:
        for name, data in members:
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            tar.addfile(ti, io.BytesIO(data))
    before = snapshot(target, ["app.dtab"])
    summary = restore(target, path, mode, definitions={"myrd#main": "app.dtab"},
                      if_exists="append")
    assert_unchanged(before, snapshot(target, ["app.dtab"]))
    assert os.listdir(workdir) == []
    assert not target.execute("SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = %s",
                              (EVIL_ROLE,))
    assert summary.failed == []
    assert "pg_catalog.pg_authid" in summary.skipped
    assert any("pg_catalog.pg_authid" in w and "--table-map" in w for w in summary.warnings)
    assert target.execute("SELECT id, v FROM app.dtab ORDER BY id") == [
        (0, "mine"), (1, "dachs"), (2, "dachs")]


PIPE_CASES = ["check calls evil_imm() (falsely immutable)",
              "check = resolves to a user operator on the enum",
              "user operator changes client_encoding for the next table",
              "table id names another table (append)", "pg_catalog.pg_authid (append)",
              "default partition of the application's events", "type created in pg_catalog",
              "range type's subtype_diff is a user function"]


@pytest.mark.parametrize("name", PIPE_CASES)
def test_crafted_archive_from_a_pipe(name, source, target, workdir, tmp_path):
    """The one-pass path keeps the same rules (superuser; a refusal of the whole
    archive becomes a refusal of the table, since its rows already went by)."""
    from dumpcodec.restore import restore_dump
    case: Case = CASE_OBJS[name]
    crafted = {tid: entry(source, tid) for tid in case.tables}
    case.mutate(crafted, target) if case.mutate else None
    tables = list(crafted.values()) + ([entry(source, "app.honest")] if case.honest else [])
    path = write_archive(tmp_path / "crafted.dump", tables, **case.info)
    before = snapshot(target, case.restored)
    with as_pipe(path) as pipe:
        summary = restore_dump(target.dsn, pipe, **case.kwargs)
    assert_unchanged(before, snapshot(target, case.restored), _new_ok(case))
    assert os.listdir(workdir) == []
    failed = dict(summary.failed)
    refused = case.refused or crafted[case.tables[0]][0]
    assert refused in failed, summary.failed
    assert re.search(case.raises or case.reason, failed[refused], re.S), failed[refused]
    if case.honest:
        assert "app.honest" not in failed and honest_rows(target) == HONEST_TXT


# ===================================================================== concurrency

@pytest.mark.parametrize("mode", ["superuser", "role"])
def test_concurrent_replace_of_one_table(mode, source, target, tmp_path):
    """Two restores replacing one table at once: each either replaces it or fails
    with a clear message; never a server internal error from the definition capture
    (it failed about half the time before)."""
    path = write_archive(tmp_path / "honest.dump", [entry(source, "app.honest")])
    first = restore(target, path, mode)
    assert not first.failed, first.failed
    for _ in range(4):
        results: List[Any] = [None, None]

        def run(i):
            try:
                results[i] = restore(target, path, mode, if_exists="replace",
                                     analyze=False)
            except BaseException as exc:      # reported below, with the other result
                results[i] = exc
        threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for r in results:
            assert not isinstance(r, BaseException), repr(r)
            for tid, why in r.failed:
                assert not re.search(r"InternalError|XX000|cache lookup|could not open "
                                     r"relation|concurrently", why), why
        assert sum(len(r.ok) for r in results) >= 1, results
        assert honest_rows(target) == HONEST_TXT


# ===================================================================== least privilege

def test_role_owning_only_its_schema(source, target_schema_owner_only, tmp_path):
    """The issue's ordinary role owns the target schema and has no other right; an
    honest archive must restore into that schema."""
    target = target_schema_owner_only
    path = write_archive(tmp_path / "honest.dump", [entry(source, "app.honest")])
    summary = restore(target, path, "login")
    assert summary.failed == [], summary.failed
    assert honest_rows(target) == HONEST_TXT


PG16_TARGET_SQL = """
CREATE SCHEMA app;
CREATE SEQUENCE public.evil_trace;
CREATE FUNCTION public.evil() RETURNS int LANGUAGE plpgsql AS
  'BEGIN PERFORM pg_catalog.nextval(''public.evil_trace''); RETURN 1; END';
CREATE FUNCTION app.evil_imm(int) RETURNS int LANGUAGE plpgsql IMMUTABLE AS
  'BEGIN PERFORM public.evil(); RETURN $1; END';
CREATE DOMAIN app.posdom AS int CHECK (app.evil_imm(VALUE) > 0);
"""


def test_pg_input_is_valid_runs_a_domain_check(pg_servers, source, make_db, tmp_path):
    servers = [s for s in pg_servers if s.major >= 16]
    if not servers:
        pytest.skip("pg_input_is_valid() exists from PostgreSQL 16 on; no such server here")
    from dumpcodec.restore import restore_dump
    db = make_db(servers[0])
    db.execute(PG16_TARGET_SQL)
    t = entry(source, "app.honest")
    t[1]["constraints"].append(dict(constraint(t[1], "primary_key"), kind="check",
                                    name="honest_check", columns=[], expression=
                                    "pg_input_is_valid(id::text, 'app.posdom')"))
    path = write_archive(tmp_path / "crafted.dump", [t])
    summary = restore_dump(db.dsn, path)
    assert db.execute("SELECT last_value, is_called FROM public.evil_trace") == [(1, False)]
    assert re.search(r"refused.*pg_input_is_valid", dict(summary.failed)["app.honest"])
