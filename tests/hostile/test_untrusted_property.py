"""Property: every expression the allow-list accepts is built only of allowed
``pg_catalog`` functions (issue 17).

Hypothesis writes expressions the way the parser's grammar allows them -- function
calls with names and signatures drawn from the target's ``pg_proc`` (harmless
built-ins, built-ins the allow-list denies, the target's user functions, qualified
or not), field selection ``(x).f``, operators from ``pg_operator`` (bare and as
``OPERATOR(schema.op)``), casts, sublinks, CASE, COALESCE, IN, BETWEEN, LIKE, array
subscripts, nested -- against the prepared target of :mod:`untrusted_helpers`, which
holds user functions, a user ``=`` on an enum and a user assignment cast.

Each one goes through :func:`dumpcodec.schema.ddl.checked_expression` with a context
and, if accepted, through the server-side :meth:`Guard.probe`.  For every expression
both accept, two oracles of our own must agree that nothing but allowed built-ins is
used: every function OID of the stored query tree of a view holding the expression
(operators' functions included; pg_depend has no rows for built-ins) must be in
``pg_catalog``, a plain function, not SECURITY DEFINER and not in ``safety.DENIED``,
and every pg_depend record must be the archive's type; and the view deparsed under
``search_path = ''`` (which qualifies everything outside ``pg_catalog``) and parsed
again with pglast must name no function, operator or type outside ``pg_catalog``, no
denied function and no subquery.

Two rules of the allow-list are left out of the property: built-ins PUBLIC may
execute, and volatility suited to the place.  The probe cannot see built-ins at all
(pg_depend records nothing about pinned objects), so they hold only as far as the
name list goes; :func:`test_builtin_rules_the_probe_cannot_see` shows it (xfail).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Dict, List, Tuple

import psycopg
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from psycopg import sql

from dumpcodec.errors import UnsafeExpressionError
from dumpcodec.schema import checked_expression
from dumpcodec.schema.safety import (Allowed, Guard, Probe, ProbeSet, denied_reason,
                                     run_probe)
pytest.register_assert_rewrite("untrusted_helpers")
from untrusted_helpers import _copy  # noqa: E402

# the fixtures (source, template, target, ...) are a plugin, so that the session's
# roles and template database exist once for every module that uses them
pytest_plugins = ["untrusted_helpers"]

# the tiny table the expressions are about: (column, type)
COLUMNS = [("a", "integer"), ("h", "bigint"), ("b", "text"), ("c", "boolean"),
           ("d", "double precision"), ("e", "numeric"), ("f", "date"),
           ("g", "timestamp with time zone"), ("m", "app.mood")]

# the types expressions are built of, as format_type() spells them
TYPES = ["integer", "bigint", "text", "boolean", "double precision", "numeric", "date",
         "timestamp with time zone", "interval", "oid", "regclass", "xml", "app.mood"]
RETURN_ONLY = ["void"]

LITERALS = {
    "integer": ["1", "-3", "42"], "bigint": ["7::bigint"], "text": ["'x'", "'a''b%'"],
    "boolean": ["true", "false"], "double precision": ["1.5::float8"],
    "numeric": ["2.5"], "date": ["'2024-01-01'::date"],
    "timestamp with time zone": ["'2024-01-01 00:00+00'::timestamptz"],
    "interval": ["'1 day'::interval"], "oid": ["0::oid"],
    "regclass": ["'pg_catalog.pg_class'::regclass", "'public.canary_seq'::regclass"],
    "xml": ["'<a/>'::xml"], "app.mood": ["'a'::app.mood"],
}

# built-ins worth trying often: the allow-list denies them, or they take a query as text
HOSTILE = ["nextval", "setval", "currval", "set_config", "lo_import", "lo_creat",
           "pg_sleep", "pg_advisory_lock", "query_to_xml", "pg_notify", "txid_current",
           "pg_create_physical_replication_slot", "pg_read_file", "pg_ls_dir",
           "pg_terminate_backend", "current_setting", "lower", "length"]
# how a call is qualified: mostly not at all (resolution through search_path = app)
SCHEMAS_FOR_CALLS = ["", "", "", "", "pg_catalog.", "app.", "public."]
SUBLINKS = ["(SELECT {x})", "(SELECT {x} FROM pg_catalog.pg_class LIMIT 1)"]


@dataclass(frozen=True)
class Func:
    schema: str
    name: str
    args: Tuple[str, ...]
    ret: str


@dataclass(frozen=True)
class Oper:
    schema: str
    name: str
    left: str
    right: str
    ret: str


@dataclass
class Catalog:
    funcs: List[Func]
    by_ret: Dict[str, List[Func]]
    one_arg: Dict[str, List[Func]]       # by argument type: for (x).f
    hostile: List[Func]
    opers: Dict[str, List[Oper]]         # by result type


def load_catalog(conn) -> Catalog:
    rows = conn.execute(
        """SELECT n.nspname, p.proname,
                  ARRAY(SELECT pg_catalog.format_type(t, NULL)
                        FROM pg_catalog.unnest(p.proargtypes::oid[]) t),
                  pg_catalog.format_type(p.prorettype, NULL)
           FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n
             ON n.oid = p.pronamespace
           WHERE n.nspname IN ('pg_catalog', 'app', 'public') AND p.prokind = 'f'
             AND NOT p.proretset AND p.pronargs <= 4""").fetchall()
    funcs = []
    for nsp, name, args, ret in rows:
        if all(a in TYPES for a in args) and (ret in TYPES or ret in RETURN_ONLY):
            funcs.append(Func(nsp, name, tuple(args), ret))
    by_ret: Dict[str, List[Func]] = {}
    one_arg: Dict[str, List[Func]] = {}
    for f in funcs:
        by_ret.setdefault(f.ret, []).append(f)
        if len(f.args) == 1:
            one_arg.setdefault(f.args[0], []).append(f)
    hostile = [f for f in funcs if f.name in HOSTILE or f.schema != "pg_catalog"]
    opers: Dict[str, List[Oper]] = {}
    for nsp, name, left, right, ret in conn.execute(
            """SELECT n.nspname, o.oprname, pg_catalog.format_type(o.oprleft, NULL),
                      pg_catalog.format_type(o.oprright, NULL),
                      pg_catalog.format_type(o.oprresult, NULL)
               FROM pg_catalog.pg_operator o JOIN pg_catalog.pg_namespace n
                 ON n.oid = o.oprnamespace
               WHERE o.oprkind = 'b' AND n.nspname IN ('pg_catalog', 'app')""").fetchall():
        if left in TYPES and right in TYPES and ret in TYPES:
            opers.setdefault(ret, []).append(Oper(nsp, name, left, right, ret))
    return Catalog(funcs, by_ret, one_arg, hostile, opers)


# ===================================================================== the grammar

def expressions(cat: Catalog):
    """A strategy of (expression text, type) built from the catalog."""

    @st.composite
    def expr(draw, want: str, depth: int) -> str:
        leaves = [c for c, t in COLUMNS if t == want]
        leaf = st.sampled_from(leaves + LITERALS.get(want, ["NULL::" + want]))
        if depth <= 0:
            return draw(leaf)
        kind = draw(st.sampled_from(
            ["leaf", "call", "call", "hostile", "user", "field", "oper", "oper", "cast",
             "sublink", "case", "coalesce", "array", "bool", "bool"]))
        sub = lambda t: draw(expr(t, depth - 1))  # noqa: E731
        if kind in ("call", "hostile", "user"):
            pool = {"hostile": cat.hostile, "call": cat.by_ret.get(want, []),
                    "user": [f for f in cat.funcs if f.schema != "pg_catalog"]}[kind]
            pool = [f for f in pool if f.ret == want] or cat.by_ret.get(want, [])
            if not pool:
                return draw(leaf)
            f = draw(st.sampled_from(pool))
            qual = draw(st.sampled_from(SCHEMAS_FOR_CALLS + [f.schema + "."]))
            return f"{qual}{f.name}({', '.join(sub(a) for a in f.args)})"
        if kind == "field":
            arg = draw(st.sampled_from(TYPES))
            fs = [f for f in cat.one_arg.get(arg, []) if f.ret == want]
            if not fs:
                return draw(leaf)
            f = draw(st.sampled_from(fs))
            return f"({sub(arg)}).{f.name}"
        if kind == "oper":
            ops = cat.opers.get(want, [])
            if not ops:
                return draw(leaf)
            o = draw(st.sampled_from(ops))
            form = draw(st.sampled_from(["bare", "bare", "catalog", "schema"]))
            name = {"bare": o.name, "catalog": f"OPERATOR(pg_catalog.{o.name})",
                    "schema": f"OPERATOR({o.schema}.{o.name})"}[form]
            return f"({sub(o.left)} {name} {sub(o.right)})"
        if kind == "cast":
            return f"({sub(draw(st.sampled_from(TYPES)))})::{want}"
        if kind == "sublink":
            if want == "boolean" and draw(st.booleans()):
                return f"EXISTS (SELECT 1 WHERE {sub('boolean')})"
            return draw(st.sampled_from(SUBLINKS)).format(x=sub(want))
        if kind == "case":
            return f"CASE WHEN {sub('boolean')} THEN {sub(want)} ELSE {sub(want)} END"
        if kind == "coalesce":
            fn = draw(st.sampled_from(["COALESCE", "NULLIF", "GREATEST"]))
            return f"{fn}({sub(want)}, {sub(want)})"
        if kind == "array":
            return f"(ARRAY[{sub(want)}, {sub(want)}])[{sub('integer')}]"
        if kind == "bool" and want == "boolean":
            t = draw(st.sampled_from(TYPES))
            form = draw(st.sampled_from(["in", "between", "isnull", "like", "regex",
                                         "distinct", "enum"]))
            if form == "enum":
                # = on the enum resolves to the target's app.= (exact match)
                op = draw(st.sampled_from(["=", "<>", "<", "IS DISTINCT FROM"]))
                return f"(m {op} {sub('app.mood')})"
            if form == "in":
                return f"({sub(t)} IN ({sub(t)}, {sub(t)}))"
            if form == "between":
                return f"({sub(t)} BETWEEN {sub(t)} AND {sub(t)})"
            if form == "isnull":
                return f"({sub(t)} IS NULL)"
            if form == "like":
                return f"({sub('text')} LIKE {sub('text')})"
            if form == "regex":
                return f"({sub('text')} ~ {sub('text')})"
            return f"({sub(t)} IS DISTINCT FROM {sub(t)})"
        return draw(leaf)

    @st.composite
    def top(draw):
        want = draw(st.sampled_from(TYPES))
        return draw(expr(want, draw(st.integers(0, 3))))

    return top()


# ===================================================================== the oracles

# pg_depend has no rows for pinned (built-in) objects, so the functions an expression
# calls are read from the stored query tree of the view instead: every function and
# operator OID in it (FuncExpr, OpExpr, ScalarArrayOpExpr, NullIfExpr,
# DistinctExpr, RowCompareExpr, ...)
_FUNC_IDS = re.compile(r":(?:funcid|opfuncid|hashfuncid|negfuncid) (\d+)")
_OP_IDS = re.compile(r":opno (\d+)")
_OP_LISTS = re.compile(r":opnos \(o ([\d ]+)\)")

_FUNC = """
SELECT n.nspname, p.proname, p.provolatile, p.prosecdef, p.prokind, p.proretset,
       p.proacl IS NULL OR EXISTS (SELECT 1 FROM pg_catalog.aclexplode(p.proacl) a
                                   WHERE a.grantee = 0 AND a.privilege_type = 'EXECUTE')
FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
WHERE p.oid = %s
"""

_DEPS = """
SELECT d.refclassid::pg_catalog.regclass::text, d.refobjid,
       pg_catalog.pg_describe_object(d.refclassid, d.refobjid, 0)
FROM pg_catalog.pg_depend d JOIN pg_catalog.pg_rewrite r ON r.oid = d.objid
WHERE d.classid = 'pg_catalog.pg_rewrite'::pg_catalog.regclass
  AND r.ev_class = 'app.oracle_v'::pg_catalog.regclass AND d.deptype = 'n'
"""

# regclass constants in the stored tree: {CONST :consttype 2205 ... :constvalue 4 [ b0 b1
# b2 b3 ... ]} (the OID's bytes, little-endian on the machines we run on)
_REGCLASS = re.compile(r":consttype 2205 [^}]*?:constisnull false [^}]*?:constvalue \d+ "
                       r"\[ (-?\d+) (-?\d+) (-?\d+) (-?\d+)")


def regclass_constants(tree: str) -> List[int]:
    return [int.from_bytes(bytes(int(b) & 0xFF for b in m), "little")
            for m in _REGCLASS.findall(tree)]


def function_facts(conn, oid: int):
    return conn.execute(_FUNC, (oid,)).fetchone()


def function_problems(conn, oid: int) -> List[str]:
    """The rules every function of an accepted expression must keep."""
    nsp, name, vol, secdef, kind, retset, public = function_facts(conn, oid)
    out = []
    if nsp != "pg_catalog":
        out.append(f"{nsp}.{name} is outside pg_catalog")
    if secdef:
        out.append(f"{name} is SECURITY DEFINER")
    if kind != "f" or retset:
        out.append(f"{name} is not a plain function")
    if denied_reason(name) is not None:
        out.append(f"{name} is denied: {denied_reason(name)}")
    return out


def stored_tree(conn) -> str:
    return conn.execute("SELECT ev_action FROM pg_catalog.pg_rewrite "
                        "WHERE ev_class = 'app.oracle_v'::regclass").fetchone()[0]


def called_functions(conn) -> List[int]:
    """Every function the view's stored query tree calls, operators' included."""
    tree = stored_tree(conn)
    funcs = {int(x) for x in _FUNC_IDS.findall(tree)}
    ops = {int(x) for x in _OP_IDS.findall(tree)}
    for group in _OP_LISTS.findall(tree):
        ops.update(int(x) for x in group.split())
    for op in ops:
        nsp, code = conn.execute(
            "SELECT o.oprnamespace::regnamespace::text, o.oprcode::oid "
            "FROM pg_catalog.pg_operator o WHERE o.oid = %s", (op,)).fetchone()
        funcs.add(code)
    funcs.discard(0)
    return sorted(funcs)


def dependency_oracle(conn, context: str, mood: int, mood_array: int) -> List[str]:
    """Our own reading of what the view uses: each function of its query tree held
    to the rules, and each pg_depend record (what is not built in) held to pg_catalog
    or the archive's own type."""
    problems = []
    for f in called_functions(conn):
        found = function_problems(conn, f)
        if found and function_facts(conn, f)[1] == "nextval" and context == "default":
            # nextval in a default: only on the table's own sequence, and there is none
            # here, so it must name no sequence at all (it then fails when it runs)
            named = regclass_constants(stored_tree(conn))
            if named and not conn.execute(
                    "SELECT pg_catalog.bool_or(relkind = 'S') FROM pg_catalog.pg_class "
                    "WHERE oid = ANY(%s)", (named,)).fetchone()[0]:
                found = []
        problems += found
    view = conn.execute("SELECT 'app.oracle_v'::pg_catalog.regclass::oid").fetchone()[0]
    for cls, oid, desc in conn.execute(_DEPS).fetchall():
        if cls == "pg_type":
            if oid not in (mood, mood_array):
                problems.append(f"{desc} is not built in")
        elif cls == "pg_class":
            if oid != view:
                problems.append(f"{desc}: a relation")
        else:
            # nothing else that is not built in: functions, operators, casts,
            # collations of the target's users
            problems.append(f"{desc} ({cls}) is not built in")
    return problems


def deparse_oracle(conn, context: str) -> List[str]:
    """The view as the server deparses it with an empty search_path: every name outside
    pg_catalog comes out qualified.  (nextval in a default is left to the dependency
    oracle, which knows what it names.)"""
    import pglast
    conn.execute("SET LOCAL search_path = ''")
    text = conn.execute("SELECT pg_catalog.pg_get_viewdef('app.oracle_v'::regclass)"
                        ).fetchone()[0]
    conn.execute("SET LOCAL search_path = app")
    problems: List[str] = []

    def names(nodes):
        return [n.get("sval") for n in nodes or ()]

    def walk(node):
        if isinstance(node, (list, tuple)):
            for v in node:
                walk(v)
            return
        if not isinstance(node, dict):
            return
        tag = node.get("@")
        if tag == "FuncCall":
            fn = names(node.get("funcname"))
            if len(fn) > 1 and fn[0] != "pg_catalog":
                problems.append(f"calls {'.'.join(fn)}")
            if denied_reason(fn[-1]) and not (fn[-1] == "nextval" and context == "default"):
                problems.append(f"calls {fn[-1]}")
        elif tag == "A_Expr":
            op = names(node.get("name"))
            if len(op) > 1 and op[0] != "pg_catalog":
                problems.append(f"operator {'.'.join(op)}")
        elif tag == "TypeCast":
            ty = names((node.get("typeName") or {}).get("names"))
            if len(ty) > 1 and ty[0] != "pg_catalog" and ty != ["app", "mood"]:
                problems.append(f"cast to {'.'.join(ty)}")
        elif tag == "SubLink":
            problems.append("a subquery")
        elif tag == "RangeVar" and node.get("relname") != "t":
            problems.append(f"reads {node.get('schemaname')}.{node.get('relname')}")
        for k, v in node.items():
            if k != "@":
                walk(v)

    stmt = pglast.parse_sql(text)[0].stmt
    walk(stmt.targetList and [t() for t in stmt.targetList])
    walk(stmt.fromClause and [f() for f in stmt.fromClause])
    return problems


def oracle_view(conn, expr: str) -> None:
    """The expression in a view of our own (inside the caller's transaction)."""
    source = ", ".join(f"NULL::{t} AS {c}" for c, t in COLUMNS)
    conn.execute(f"CREATE VIEW app.oracle_v AS SELECT ({expr}) IS NULL AS e "
                 f"FROM (SELECT {source}) AS t")


# ===================================================================== the property

@pytest.fixture(scope="module")
def prop_target(pg_server, template, _dropper):
    yield from _copy(pg_server, template, _dropper, True)


def test_accepted_expressions_use_only_allowed_builtins(prop_target):
    with prop_target.connect() as conn:
        conn.execute("SET search_path = app")
        cat = load_catalog(conn)
        guard = Guard(conn)
        mood, mood_array = conn.execute(
            "SELECT oid, typarray FROM pg_catalog.pg_type "
            "WHERE oid = 'app.mood'::regtype").fetchone()
        cols = [(c, sql.SQL(t)) for c, t in COLUMNS]
        seen = {"accepted": 0, "tree": 0, "probe": 0, "server": 0}

        @settings(suppress_health_check=[HealthCheck.too_slow,
                                         HealthCheck.function_scoped_fixture])
        @given(expressions(cat), st.sampled_from(["default", "check", "index"]))
        # always tried: what only the server-side probe can refuse, and plain built-ins
        @example("evil()", "default")
        @example("evil_imm(a) > 0", "check")
        @example("(m = 'a'::app.mood)", "check")
        @example("m IN ('a', 'b')", "check")
        @example("random()", "index")
        @example("now()", "index")
        @example("lower(b) ~ 'x' AND length(b) BETWEEN 1 AND a", "check")
        @example("gen_random_uuid()", "default")
        def prop(text, context):
            try:
                checked = checked_expression(text, "property", context=context, table="t",
                                             type_schemas=["app"])
            except UnsafeExpressionError:
                seen["tree"] += 1
                return
            conn.execute("BEGIN")
            try:
                try:
                    run_probe(conn, guard, "app",
                              ProbeSet("t", cols, [Probe(context, checked, "property")]),
                              Allowed(types=['"app"."mood"']), "property")
                except UnsafeExpressionError:
                    seen["probe"] += 1
                    return
                except psycopg.Error:
                    seen["server"] += 1     # does not resolve: nothing to check
                    return
                seen["accepted"] += 1
                oracle_view(conn, checked.as_string(conn))
                problems = dependency_oracle(conn, context, mood, mood_array)
                problems += deparse_oracle(conn, context)
                assert not problems, (text, context, problems)
            finally:
                conn.execute("ROLLBACK")

        prop()
    # the property is about something: some expressions got through every check,
    # and some were stopped by each of the two checks
    assert seen["accepted"] >= 5, seen
    assert seen["tree"] >= 1 and seen["probe"] + seen["server"] >= 1, seen


@pytest.mark.parametrize("expr, context, by_name", [
    ("evil_imm(a) > 0", "check", True),
    ("evil_def(a)", "default", True),
    ("m = 'a'::app.mood", "check", True),
    ("'a'::text::app.mood_cast", "default", True),
    ("(a).evil_imm", "check", True),
    ("nextval('public.canary_seq'::regclass)", "default", False),
    ("lo_creat(-1)", "default", False),
    ("set_config('client_encoding', 'LATIN1', false)", "default", False),
    ("(SELECT b)", "default", False),
])
def test_the_oracles_see_what_is_not_allowed(prop_target, expr, context, by_name):
    """The property's oracles are not blind: each of these (which the allow-list
    refuses) is flagged by the dependency oracle (a sublink aside: the view holds
    it as a subquery), and the ones that reach user code by the deparse oracle too."""
    with prop_target.connect() as conn:
        conn.execute("SET search_path = app")
        mood, mood_array = conn.execute(
            "SELECT oid, typarray FROM pg_catalog.pg_type "
            "WHERE oid = 'app.mood'::regtype").fetchone()
        conn.execute("BEGIN")
        try:
            oracle_view(conn, f"({expr})")
            deps = dependency_oracle(conn, context, mood, mood_array)
            parsed = deparse_oracle(conn, context)
        finally:
            conn.execute("ROLLBACK")
    assert deps or "SELECT" in expr, deps
    if by_name or "SELECT" in expr:
        assert parsed, parsed


PINNED = ("pg_depend records nothing about pinned (built-in) objects, so the probe "
          "never sees a built-in function or relation; for built-ins only the parsed "
          "tree's name list applies")


@pytest.mark.parametrize("expr, context", [
    pytest.param("setseed(0.5) IS NOT NULL", "check", id="volatile setseed in a CHECK"),
    pytest.param("random() > 0.5", "check", id="volatile random in a CHECK"),
    pytest.param("pg_stat_have_stats('relation', 0::oid, 0::oid)", "check",
                 id="built-in PUBLIC may not execute"),
    pytest.param("nextval('pg_catalog.pg_class'::regclass)", "default",
                 id="nextval on a relation the table does not own"),
])
def test_builtin_rules_the_probe_cannot_see(prop_target, expr, context):
    with prop_target.connect() as conn:
        conn.execute("SET search_path = app")
        guard = Guard(conn)
        checked = checked_expression(expr, "rule", context=context, table="t",
                                     type_schemas=["app"])
        conn.execute("BEGIN")
        try:
            with pytest.raises(UnsafeExpressionError):
                run_probe(conn, guard, "app", ProbeSet(
                    "t", [(c, sql.SQL(t)) for c, t in COLUMNS if c != "m"],
                    [Probe(context, checked, "rule")]), Allowed(), "rule")
        finally:
            conn.execute("ROLLBACK")
