"""What an archive may make the server run: the allow-list for stored expressions.

An archive is untrusted input, and a table definition carries expressions PostgreSQL
can give only as text (defaults, CHECKs, generated columns, index expressions and
predicates, partition keys, domain defaults and CHECKs, policies, trigger WHEN
clauses).  Restoring them must not run anything but PostgreSQL's own, harmless
built-ins.  Three checks, each on its own enough to stop the attacks we know of:

1. **The parsed tree** (:func:`check_tree`, no database needed).  Every node must be of
   a kind listed in ``_NODES`` (constants, column references, operators, function calls,
   casts, CASE, COALESCE, ...); anything else -- a subquery, field selection
   ``(x).f`` (a function call in disguise), ``%TYPE``, aggregates, window calls, XML
   and JSON constructors -- is refused, since what we do not understand we do not
   run.  A qualified function, operator, type or collation name must be in
   ``pg_catalog`` (types may also be in the archive's own schemas); a function named in
   :data:`DENIED` is refused outright; ``nextval`` only in a default, on a literal.
2. **What the server resolves, before anything runs** (:meth:`Guard.probe`).  Some DDL
   evaluates expressions when it runs (constant folding of generated columns, index
   expressions and predicates, partition keys: a user function falsely marked
   IMMUTABLE runs at CREATE time), and resolution can pick a user's function or
   operator although the text names a built-in (an exact-match ``public.=(myenum,
   myenum)`` beats ``pg_catalog.=(anyenum, anyenum)``).  So every expression is first
   put into a view inside a savepoint (a view is only parsed and analysed, never
   planned or run), the server's dependency records of that view are read, and the
   savepoint is rolled back.
3. **What the server recorded, before any row** (:meth:`Guard.check_objects`).  After
   the DDL, and with keys and indexes built on the still-empty table inside a savepoint,
   every ``pg_depend`` record of everything the archive created (table, defaults,
   constraints, indexes, types, domain constraints, sequences, policies, triggers,
   statistics) is classified.  Each function (directly, or behind an operator or a
   cast) must be an allowed ``pg_catalog`` built-in whose volatility suits the place;
   operator classes and families, collations, access methods, text search objects
   must be in ``pg_catalog``; types must be built in or the archive's own (created or
   found equal); relations must be the table itself, its own sequences, or what the
   caller allows (the restored tables, a parent).  Types the archive found already in
   the target are held to the same rule, and so are their default btree and hash
   operator classes (what ANALYZE, unique indexes and array comparisons use).

Allowed built-ins: functions in ``pg_catalog`` that PUBLIC may execute (the server
itself revokes EXECUTE from PUBLIC on functions that read files, signal backends or
administer the server), are not SECURITY DEFINER, are plain functions (not aggregates,
window functions or procedures), return a single value, take and return no
``internal`` or handler pseudo-types, and are not in :data:`DENIED` (documented
built-ins that PUBLIC may execute but that run SQL text, touch large objects,
sequences, settings, locks, replication, other sessions or index maintenance).
Volatility: immutable for generated columns, indexes, partition keys, exclusion
constraints and statistics; immutable or stable for CHECKs, domain CHECKs, policies
and trigger WHEN clauses (stable built-ins only read); anything in defaults, which a
restore never evaluates (COPY lists every column), so that ``now()``,
``gen_random_uuid()`` and ``clock_timestamp()`` stay.  ``nextval`` only in a default,
and only on a sequence the same table owns.

Objects that belong to an installed extension (``btree_gist``'s operator classes,
``citext``'s type and functions) are treated like built-ins when ``trust_extensions``
(the default): only a superuser or a database owner installs an extension, and its
code comes from the extension, not from the archive or the target's ordinary users.
Volatility and SECURITY DEFINER rules still apply to them.  ``trust_extensions=False``
refuses them too.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Dict, FrozenSet, Iterable, List, Optional, Sequence, Set, Tuple

import psycopg
from psycopg import sql

from ..errors import UnsafeExpressionError
from .catalog import owned_sequences

# -- contexts -------------------------------------------------------------------------

#: Where an expression goes, and the most volatile function allowed there
#: (``i`` immutable, ``s`` stable, ``v`` volatile).
CONTEXTS: Dict[str, str] = {
    "default": "v", "domain_default": "v",
    "check": "s", "domain_check": "s", "policy": "s", "trigger_when": "s",
    "generated": "i", "index": "i", "partition_key": "i", "exclusion": "i",
    "statistics": "i", "range_support": "i",
}
_RANK = {"i": 0, "s": 1, "v": 2}

#: Built-ins PUBLIC may execute that an archive's expression may still not call, with
#: the reason (PostgreSQL's documentation, "System Administration Functions", "Large
#: Objects", "Sequence Manipulation Functions", "XML Functions" (query mapping), "Text
#: Search Functions" (ts_stat, ts_rewrite with a query)).  Keys are regular expressions
#: matched against the whole function name.
DENIED: Dict[str, str] = {
    r"(query|cursor|table|schema|database)_to_xml(schema|_and_xmlschema)?":
        "runs a query given as text or reads whole tables",
    r"ts_stat": "runs a query given as text",
    r"ts_rewrite": "one form runs a query given as text",
    r"lo_.*|loread|lowrite": "reads or writes large objects",
    r"nextval": "advances a sequence (allowed only in a default, on the table's own "
                "sequence)",
    r"setval|currval|lastval": "reads or sets sequence state",
    r"set_config": "changes settings of the session",
    r"pg_(try_)?advisory_.*": "takes or releases locks",
    r"pg_sleep(_for|_until)?": "sleeps",
    r"pg_(cancel|terminate)_backend|pg_notify|pg_log_backend_memory_contexts":
        "acts on other sessions",
    r"pg_stat_reset.*|pg_stat_clear_snapshot|pg_stat_force_next_flush":
        "resets or flushes statistics",
    r"pg_(create|drop|copy)_.*replication_slot|pg_replication_slot_advance|"
    r"pg_logical_.*|pg_replication_origin_.*": "acts on replication",
    r"pg_switch_wal|pg_create_restore_point|pg_(start|stop)_backup|pg_backup_.*|"
    r"pg_promote|pg_wal_replay_.*|pg_reload_conf|pg_rotate_logfile.*|"
    r"pg_export_snapshot|pg_import_system_collations|binary_upgrade_.*|"
    r"pg_log_standby_snapshot": "administers the server",
    r"pg_read_.*|pg_ls_.*|pg_stat_file|pg_file_.*|pg_current_logfile":
        "reads server files",
    r"brin_summarize_.*|brin_desummarize_range|gin_clean_pending_list":
        "maintains indexes",
    r"txid_current(_if_assigned)?|pg_current_xact_id(_if_assigned)?":
        "assigns a transaction id",
    r"dblink.*": "connects to other databases",
}
_DENIED_RE = re.compile("|".join(f"(?:{k})" for k in DENIED))


def denied_reason(name: str) -> Optional[str]:
    """Why the built-in function ``name`` is denied, or None."""
    if not _DENIED_RE.fullmatch(name):
        return None
    return next(why for k, why in DENIED.items() if re.fullmatch(k, name))


# -- 1. the parsed tree ---------------------------------------------------------------

# Node kinds an expression may be built of (pglast's names for the raw parse tree).
# Leaves and structural helpers first, then the expression nodes.
_NODES = frozenset({
    "A_Const", "String", "Integer", "Float", "Boolean", "BitString", "TypeName",
    "ColumnRef", "A_Expr", "BoolExpr", "NullTest", "BooleanTest", "CaseExpr",
    "CaseWhen", "CoalesceExpr", "MinMaxExpr", "FuncCall", "A_ArrayExpr", "RowExpr",
    "A_Indirection", "A_Indices", "TypeCast", "CollateClause", "SQLValueFunction",
    "NamedArgExpr", "ResTarget",
})
_A_EXPR_KINDS = frozenset({
    "AEXPR_OP", "AEXPR_OP_ANY", "AEXPR_OP_ALL", "AEXPR_DISTINCT", "AEXPR_NOT_DISTINCT",
    "AEXPR_NULLIF", "AEXPR_IN", "AEXPR_LIKE", "AEXPR_ILIKE", "AEXPR_SIMILAR",
    "AEXPR_BETWEEN", "AEXPR_NOT_BETWEEN", "AEXPR_BETWEEN_SYM", "AEXPR_NOT_BETWEEN_SYM",
})
_FUNC_REFUSED_FIELDS = ("agg_order", "agg_filter", "over", "agg_within_group",
                        "agg_star", "agg_distinct")


def _names(nodes) -> List[str]:
    return [n.get("sval", "") if isinstance(n, dict) else str(n) for n in nodes or ()]


def check_tree(tree: Any, context: str, *, table: Optional[str] = None,
               type_schemas: Iterable[str] = ()) -> None:
    """Raise ValueError if the raw parse tree of one expression is not allowed in
    ``context`` (see :data:`CONTEXTS`).  ``table``: the name a two-part column
    reference may start with; ``type_schemas``: schemas whose types the archive
    defines (casts to them are allowed)."""
    if context not in CONTEXTS:
        raise ValueError(f"unknown expression context {context!r}")
    schemas = frozenset(type_schemas) | {"pg_catalog"}
    _walk(tree, context, table, schemas)


def _walk(node: Any, context: str, table: Optional[str], schemas: FrozenSet[str]) -> None:
    if isinstance(node, (list, tuple)):
        for v in node:
            _walk(v, context, table, schemas)
        return
    if not isinstance(node, dict):
        return
    tag = node.get("@")
    if tag is None:
        # enum values are {"#": ...}; other plain dicts do not occur
        if "#" in node:
            return
        raise ValueError("an unexpected piece of syntax")
    if tag not in _NODES:
        raise ValueError(f"{_what(tag)} is not allowed here")
    if tag == "FuncCall":
        _check_call(node, context)
    elif tag == "A_Expr":
        kind = (node.get("kind") or {}).get("name")
        if kind not in _A_EXPR_KINDS:
            raise ValueError(f"the operator form {kind} is not allowed here")
        _qualified_ok(_names(node.get("name")), "operator", {"pg_catalog"})
    elif tag == "A_Indirection":
        for ind in node.get("indirection") or ():
            if not (isinstance(ind, dict) and ind.get("@") == "A_Indices"):
                # (x).f is field selection, which the server may read as f(x)
                raise ValueError("field selection ((x).name) is not allowed here")
    elif tag == "ColumnRef":
        fields = node.get("fields") or ()
        if any(not (isinstance(f, dict) and f.get("@") == "String") for f in fields):
            raise ValueError("* is not allowed here")
        names = _names(fields)
        # a.b may be field b of column a, which the server may read as b(a)
        if len(names) > 2 or (len(names) == 2 and names[0] != table):
            raise ValueError(f"the reference {'.'.join(names)} is not a column of the "
                             f"table")
    elif tag == "TypeName":
        if node.get("pct_type") or node.get("setof"):
            raise ValueError("%TYPE and SETOF are not allowed here")
        _qualified_ok(_names(node.get("names")), "type", schemas)
    elif tag == "CollateClause":
        _qualified_ok(_names(node.get("collname")), "collation", {"pg_catalog"})
    for key, value in node.items():
        if key != "@":
            _walk(value, context, table, schemas)


def _what(tag: str) -> str:
    return {"SubLink": "a subquery", "ParamRef": "a parameter",
            "GroupingFunc": "GROUPING", "A_Star": "*"}.get(tag, f"syntax {tag}")


def _qualified_ok(names: List[str], what: str, schemas: Set[str]) -> None:
    if len(names) > 1 and names[-2] not in schemas:
        raise ValueError(f"the {what} {'.'.join(names)} is outside pg_catalog")
    if len(names) > 2:
        raise ValueError(f"the {what} {'.'.join(names)} names another database")


def _check_call(node: dict, context: str) -> None:
    names = _names(node.get("funcname"))
    name = names[-1]
    _qualified_ok(names, "function", {"pg_catalog"})
    for f in _FUNC_REFUSED_FIELDS:
        if node.get(f):
            raise ValueError(f"{name}(): aggregate and window calls are not allowed here")
    if name == "nextval":
        args = node.get("args") or ()
        if context != "default":
            raise ValueError("nextval() is allowed only in a column default")
        if len(args) != 1 or not _string_literal(args[0]):
            raise ValueError("nextval() only on a sequence named by a literal")
        return
    why = denied_reason(name)
    if why is not None:
        raise ValueError(f"calls {name}(), which {why}")


def _string_literal(node: Any) -> bool:
    if not isinstance(node, dict):
        return False
    if node.get("@") == "TypeCast":
        return _names((node.get("typeName") or {}).get("names"))[-1:] == ["regclass"] \
            and _string_literal(node.get("arg"))
    return node.get("@") == "A_Const" and (node.get("val") or {}).get("@") == "String"


# -- 2 and 3. on the server -------------------------------------------------------------

@dataclass
class _Func:
    name: str
    signature: str
    volatility: str
    ok: bool
    why: str = ""


@dataclass
class Probe:
    """One expression to resolve on the server before the DDL that uses it."""
    context: str
    expr: sql.Composable          # the checked, parenthesised expression
    where: str
    cast_to: Optional[sql.Composable] = None    # the column type (defaults, generated)


@dataclass
class ProbeSet:
    """The expressions of one table, with the columns they may refer to."""
    table: str                    # the alias column references may use
    columns: List[Tuple[str, sql.Composable]] = field(default_factory=list)
    probes: List[Probe] = field(default_factory=list)
    # domain CHECKs and defaults refer to VALUE: (base type, probe)
    value_probes: List[Tuple[sql.Composable, Probe]] = field(default_factory=list)


_PSEUDO_REFUSED = ("internal", "trigger", "event_trigger", "language_handler",
                   "fdw_handler", "index_am_handler", "tsm_handler", "table_am_handler")

_FUNCS_SQL = """
SELECT p.oid, p.proname, p.oid::pg_catalog.regprocedure::pg_catalog.text,
       p.provolatile, p.prosecdef, p.prokind, p.proretset,
       p.proacl IS NULL OR EXISTS (
           SELECT 1 FROM pg_catalog.aclexplode(p.proacl) a
           WHERE a.grantee = 0 AND a.privilege_type = 'EXECUTE'),
       EXISTS (SELECT 1 FROM pg_catalog.pg_type t
               WHERE (t.oid = p.prorettype OR t.oid = ANY (p.proargtypes))
                 AND t.typnamespace = 'pg_catalog'::pg_catalog.regnamespace
                 AND t.typname = ANY (%s))
FROM pg_catalog.pg_proc p
WHERE p.pronamespace = 'pg_catalog'::pg_catalog.regnamespace
"""

# One row per dependency of the given objects: what depends (kind, label), on what
# (catalog, oid, description), where that lives, and what the rules need to know.
_DEPS_SQL = """
WITH o(classid, objid, kind, label) AS ({objects}),
d AS (
    SELECT DISTINCT o.kind, o.label, dep.refclassid, dep.refobjid
    FROM o JOIN pg_catalog.pg_depend dep
      ON dep.classid = o.classid AND dep.objid = o.objid
    WHERE dep.deptype IN ('n', 'a', 'i'))
SELECT d.kind, d.label, d.refclassid::pg_catalog.regclass::pg_catalog.text, d.refobjid,
       pg_catalog.pg_describe_object(d.refclassid, d.refobjid, 0),
       CASE d.refclassid
         WHEN 'pg_catalog.pg_proc'::pg_catalog.regclass THEN
           (SELECT pronamespace FROM pg_catalog.pg_proc WHERE oid = d.refobjid)
         WHEN 'pg_catalog.pg_operator'::pg_catalog.regclass THEN
           (SELECT oprnamespace FROM pg_catalog.pg_operator WHERE oid = d.refobjid)
         WHEN 'pg_catalog.pg_type'::pg_catalog.regclass THEN
           (SELECT typnamespace FROM pg_catalog.pg_type WHERE oid = d.refobjid)
         WHEN 'pg_catalog.pg_opclass'::pg_catalog.regclass THEN
           (SELECT opcnamespace FROM pg_catalog.pg_opclass WHERE oid = d.refobjid)
         WHEN 'pg_catalog.pg_opfamily'::pg_catalog.regclass THEN
           (SELECT opfnamespace FROM pg_catalog.pg_opfamily WHERE oid = d.refobjid)
         WHEN 'pg_catalog.pg_collation'::pg_catalog.regclass THEN
           (SELECT collnamespace FROM pg_catalog.pg_collation WHERE oid = d.refobjid)
         WHEN 'pg_catalog.pg_ts_config'::pg_catalog.regclass THEN
           (SELECT cfgnamespace FROM pg_catalog.pg_ts_config WHERE oid = d.refobjid)
         WHEN 'pg_catalog.pg_ts_dict'::pg_catalog.regclass THEN
           (SELECT dictnamespace FROM pg_catalog.pg_ts_dict WHERE oid = d.refobjid)
       END = 'pg_catalog'::pg_catalog.regnamespace,
       EXISTS (SELECT 1 FROM pg_catalog.pg_depend e
               WHERE e.classid = d.refclassid AND e.objid = d.refobjid
                 AND e.deptype = 'e'),
       CASE d.refclassid
         WHEN 'pg_catalog.pg_operator'::pg_catalog.regclass THEN
           (SELECT oprcode::pg_catalog.oid FROM pg_catalog.pg_operator
            WHERE oid = d.refobjid)
         WHEN 'pg_catalog.pg_cast'::pg_catalog.regclass THEN
           (SELECT castfunc FROM pg_catalog.pg_cast WHERE oid = d.refobjid)
       END,
       CASE WHEN d.refclassid = 'pg_catalog.pg_proc'::pg_catalog.regclass THEN
           (SELECT ROW(provolatile, prosecdef, prokind, proretset)::pg_catalog.text
            FROM pg_catalog.pg_proc WHERE oid = d.refobjid) END,
       CASE WHEN d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass THEN
           (SELECT indrelid FROM pg_catalog.pg_index WHERE indexrelid = d.refobjid) END
FROM d
"""

_GIVEN_OBJECTS = """
SELECT * FROM ROWS FROM (pg_catalog.unnest(%s::pg_catalog.oid[]),
                        pg_catalog.unnest(%s::pg_catalog.oid[]),
                        pg_catalog.unnest(%s::pg_catalog.text[]),
                        pg_catalog.unnest(%s::pg_catalog.text[]))"""

# Everything a table has that a definition can give it: the table (its partition
# key), defaults and generated columns, constraints, indexes, its own sequences,
# triggers, policies, extended statistics.
_TABLE_OBJECTS = """
SELECT 'pg_catalog.pg_class'::pg_catalog.regclass::pg_catalog.oid, %(rel)s::pg_catalog.oid,
       'table', 'the table'
UNION ALL
SELECT 'pg_catalog.pg_attrdef'::pg_catalog.regclass, ad.oid,
       CASE WHEN a.attgenerated <> '' THEN 'generated' ELSE 'default' END,
       'column ' || pg_catalog.quote_ident(a.attname)
FROM pg_catalog.pg_attrdef ad JOIN pg_catalog.pg_attribute a
  ON a.attrelid = ad.adrelid AND a.attnum = ad.adnum
WHERE ad.adrelid = %(rel)s
UNION ALL
SELECT 'pg_catalog.pg_constraint'::pg_catalog.regclass, c.oid,
       CASE c.contype WHEN 'c' THEN 'check' WHEN 'x' THEN 'exclusion' ELSE 'constraint' END,
       'constraint ' || pg_catalog.quote_ident(c.conname)
FROM pg_catalog.pg_constraint c WHERE c.conrelid = %(rel)s
UNION ALL
SELECT 'pg_catalog.pg_class'::pg_catalog.regclass, i.indexrelid, 'index',
       'index ' || pg_catalog.quote_ident(c.relname)
FROM pg_catalog.pg_index i JOIN pg_catalog.pg_class c ON c.oid = i.indexrelid
WHERE i.indrelid = %(rel)s
UNION ALL
SELECT 'pg_catalog.pg_class'::pg_catalog.regclass, d.objid, 'sequence',
       'sequence ' || pg_catalog.quote_ident(s.relname)
FROM pg_catalog.pg_depend d JOIN pg_catalog.pg_class s ON s.oid = d.objid
WHERE d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass
  AND d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass
  AND d.refobjid = %(rel)s AND d.deptype IN ('a', 'i') AND s.relkind = 'S'
UNION ALL
SELECT 'pg_catalog.pg_trigger'::pg_catalog.regclass, t.oid, 'trigger',
       'trigger ' || pg_catalog.quote_ident(t.tgname)
FROM pg_catalog.pg_trigger t WHERE t.tgrelid = %(rel)s AND NOT t.tgisinternal
UNION ALL
SELECT 'pg_catalog.pg_policy'::pg_catalog.regclass, p.oid, 'policy',
       'policy ' || pg_catalog.quote_ident(p.polname)
FROM pg_catalog.pg_policy p WHERE p.polrelid = %(rel)s
UNION ALL
SELECT 'pg_catalog.pg_statistic_ext'::pg_catalog.regclass, x.oid, 'statistics',
       'statistics ' || pg_catalog.quote_ident(x.stxname)
FROM pg_catalog.pg_statistic_ext x WHERE x.stxrelid = %(rel)s"""

# Default btree and hash operator classes of types that are not built in: what the
# server uses for them without being asked (unique indexes, ANALYZE, comparisons of
# arrays and rows of them).
_OPCLASS_SQL = """
SELECT pg_catalog.format_type(opc.opcintype, NULL), am.amname,
       pg_catalog.quote_ident(n.nspname) || '.' || pg_catalog.quote_ident(opc.opcname),
       EXISTS (SELECT 1 FROM pg_catalog.pg_depend e
               WHERE e.classid = 'pg_catalog.pg_opclass'::pg_catalog.regclass
                 AND e.objid = opc.oid AND e.deptype = 'e')
FROM pg_catalog.pg_opclass opc
JOIN pg_catalog.pg_am am ON am.oid = opc.opcmethod
JOIN pg_catalog.pg_namespace n ON n.oid = opc.opcnamespace
WHERE opc.opcdefault AND opc.opcintype = ANY (%s) AND am.amname IN ('btree', 'hash')
  AND n.nspname <> 'pg_catalog'
"""

_FIRST_NORMAL_OID = 16384


class Guard:
    """The allow-list of one target database, loaded once (one query) and then used by
    every table of a restore (read-only, so threads may share it)."""

    def __init__(self, conn: psycopg.Connection, *, trust_extensions: bool = True):
        self.trust_extensions = trust_extensions
        #: names of the built-in types (an archive's type may not shadow one)
        self.catalog_types: FrozenSet[str] = frozenset(r[0] for r in conn.execute(
            "SELECT typname FROM pg_catalog.pg_type "
            "WHERE typnamespace = 'pg_catalog'::pg_catalog.regnamespace").fetchall())
        self.funcs: Dict[int, _Func] = {}
        for (oid, name, sig, vol, secdef, kind, retset, public,
             pseudo) in conn.execute(_FUNCS_SQL, (list(_PSEUDO_REFUSED),)).fetchall():
            why = ""
            if not public:
                why = "is not executable by PUBLIC (the server reserves it)"
            elif secdef:
                why = "is SECURITY DEFINER"
            elif kind != "f":
                why = "is an aggregate, window function or procedure"
            elif retset:
                why = "returns a set"
            elif pseudo:
                why = "takes or returns an internal or handler type"
            elif name != "nextval" and denied_reason(name):
                why = str(denied_reason(name))
            self.funcs[oid] = _Func(name, sig, vol, not why, why)

    # -- function rule ----------------------------------------------------------------

    def _func_problem(self, oid: int, context: str) -> Optional[str]:
        """Why the pg_catalog function ``oid`` may not be used in ``context``."""
        f = self.funcs.get(oid)
        if f is None:
            return "a function outside pg_catalog"
        if not f.ok:
            return f"function {f.signature}, which {f.why}"
        if f.name == "nextval" and context != "default":
            return f"function {f.signature}: nextval() only in a column default"
        if _RANK[f.volatility] > _RANK[CONTEXTS[context]]:
            return (f"function {f.signature} is {_VOL[f.volatility]}, not allowed in "
                    f"{_CONTEXT_NAMES.get(context, context)}")
        return None

    def _ext_func_problem(self, info: Optional[str], context: str) -> Optional[str]:
        """The same for a function of an installed extension (``info``: its
        volatility, SECURITY DEFINER, kind and set-returning flags)."""
        if not self.trust_extensions:
            return "a function outside pg_catalog"
        vol, secdef, kind, retset = _parse_row(info or "")
        if secdef == "t":
            return "an extension's SECURITY DEFINER function"
        if kind != "f" or retset == "t":
            return "an extension's aggregate, window or set-returning function"
        if _RANK.get(vol, 2) > _RANK[CONTEXTS[context]]:
            return (f"an extension's {_VOL.get(vol, vol)} function, not allowed in "
                    f"{_CONTEXT_NAMES.get(context, context)}")
        return None

    # -- dependency records ---------------------------------------------------------------

    def check_objects(self, conn: psycopg.Connection,
                      objects: Sequence[Tuple[str, int, str, str]], *,
                      relations: Iterable[int] = (), own_sequences: Iterable[int] = (),
                      types: Iterable[int] = (), namespaces: Iterable[int] = (),
                      trigger_functions: Iterable[int] = (), where: str = "") -> None:
        """Check every dependency record of ``objects`` ((catalog, oid, kind, label):
        catalog such as ``'pg_class'``; kind one of :data:`CONTEXTS` or a key of
        ``_KIND_CONTEXT``; label names the object in messages).

        ``relations``: relations any object may refer to (the table itself, a parent,
        tables the restore creates; their indexes too); ``own_sequences``: the table's
        own sequences (only its defaults and the table itself may use them);
        ``types``: the archive's types in the target (created or found equal), with
        their array and row types; ``namespaces``: schemas objects may live in;
        ``trigger_functions``: the functions triggers may call.  Raises
        :class:`UnsafeExpressionError` listing every problem.
        """
        if not objects:
            return
        classes = [_class_oid(conn, o[0]) for o in objects]
        rows = conn.execute(_DEPS_SQL.format(objects=_GIVEN_OBJECTS),
                            (classes, [o[1] for o in objects], [o[2] for o in objects],
                             [o[3] for o in objects])).fetchall()
        self._judge(rows, relations, own_sequences, types, namespaces, trigger_functions,
                    where)

    def check_table(self, conn: psycopg.Connection, relid: int, *,
                    relations: Iterable[int] = (), types: Iterable[int] = (),
                    namespaces: Iterable[int] = (), trigger_functions: Iterable[int] = (),
                    where: str = "") -> None:
        """:meth:`check_objects` for everything table ``relid`` has (the table, its
        defaults, constraints, indexes, own sequences, triggers, policies, statistics),
        in one query.  The table itself and its own sequences are always allowed."""
        rows = conn.execute(_DEPS_SQL.format(objects=_TABLE_OBJECTS),
                            {"rel": relid}).fetchall()
        own = owned_sequences(conn, relid)
        self._judge(rows, list(relations) + [relid], own, types, namespaces,
                    trigger_functions, where)

    def check_types(self, conn: psycopg.Connection,
                    objects: Sequence[Tuple[str, int, str, str]], type_oids: Iterable[int],
                    *, namespaces: Iterable[int] = (), where: str = "") -> None:
        """The archive's types in the target, created or found equal: their own
        dependency records (domain CHECKs and defaults, range support functions,
        composite attributes), and their default btree and hash operator classes."""
        typs = list(type_oids)
        self.check_objects(conn, objects, relations=[o[1] for o in objects
                                                     if o[0] == "pg_class"],
                           types=typs, namespaces=namespaces, where=where)
        problems = [f"{ty}: default {am} operator class {opc} is outside pg_catalog"
                    for ty, am, opc, ext in conn.execute(_OPCLASS_SQL, (typs,)).fetchall()
                    if not (ext and self.trust_extensions)]
        if problems:
            raise UnsafeExpressionError(f"{where}: refused: " + "; ".join(problems))

    def _judge(self, rows, relations, own_sequences, types, namespaces,
               trigger_functions, where: str) -> None:
        allowed = _Allowed(set(relations), set(own_sequences), set(types),
                           set(namespaces), set(trigger_functions))
        problems = set()
        for kind, label, refclass, refoid, desc, in_catalog, ext, func, info, heap in rows:
            why = self._dependency_problem(kind, refclass, refoid, bool(in_catalog),
                                           bool(ext), func, info, heap, allowed)
            if why:
                problems.add(f"{label}: {desc}: {why}")
        if problems:
            raise UnsafeExpressionError(
                f"{where}: refused: it would use what a restore may not run or touch: "
                + "; ".join(sorted(problems)))

    def _dependency_problem(self, kind: str, refclass: str, refoid: int,
                            in_catalog: bool, ext: bool, func: Optional[int],
                            info: Optional[str], heap: Optional[int],
                            allowed: "_Allowed") -> Optional[str]:
        context = kind if kind in CONTEXTS else _KIND_CONTEXT[kind]
        trusted = ext and self.trust_extensions
        if refclass == "pg_proc":
            if kind == "trigger" and refoid in allowed.trigger_functions:
                return None
            if in_catalog:
                return self._func_problem(refoid, context)
            return self._ext_func_problem(info, context) if ext else \
                "a function outside pg_catalog"
        if refclass == "pg_operator":
            if in_catalog:
                return self._func_problem(func, context) if func else None
            return None if trusted else "an operator outside pg_catalog"
        if refclass == "pg_cast":
            if refoid < _FIRST_NORMAL_OID:
                return self._func_problem(func, context) if func else None
            return None if trusted else "a cast that is not built in"
        if refclass in ("pg_opclass", "pg_opfamily", "pg_collation", "pg_ts_config",
                        "pg_ts_dict"):
            return None if in_catalog or trusted else "outside pg_catalog"
        if refclass == "pg_am":
            return None if refoid < _FIRST_NORMAL_OID or trusted else \
                "an access method that is not built in"
        if refclass == "pg_type":
            return None if in_catalog or refoid in allowed.types or trusted else \
                "a type the archive does not define"
        if refclass == "pg_class":
            if refoid in allowed.relations or heap in allowed.relations:
                return None
            if refoid in allowed.own_sequences and context == "default":
                return None
            return "a relation the restore does not create"
        if refclass == "pg_namespace":
            return None if refoid in allowed.namespaces else \
                "a schema the restore does not write to"
        if refclass == "pg_constraint":
            return None    # a key of a relation, which is checked through pg_class
        if refclass == "pg_extension":
            return None if self.trust_extensions else "an extension"
        return f"a {refclass} object, which is not understood here"

    # -- 2. probes ------------------------------------------------------------------------

    def probe(self, conn: psycopg.Connection, schema: str, probes: ProbeSet, *,
              own_sequences: Iterable[int] = (), types: Iterable[int] = (),
              where: str = "") -> None:
        """Resolve the expressions of ``probes`` on the server without running them and
        check what they use: one view per volatility class (a view is parsed and
        analysed, never planned or run), created in ``schema`` inside a savepoint that
        is rolled back."""
        groups: Dict[str, List[Probe]] = {}
        for p in probes.probes:
            groups.setdefault(CONTEXTS[p.context], []).append(p)
        views: List[Tuple[List[Probe], sql.Composable, str]] = []
        if groups:
            cols = sql.SQL(", ").join(
                sql.SQL("NULL::{} AS {}").format(t, sql.Identifier(c))
                for c, t in probes.columns) if probes.columns else sql.SQL("")
            source = sql.SQL(" FROM (SELECT {}) AS {}").format(
                cols, sql.Identifier(probes.table))
            for vol, items in sorted(groups.items()):
                views.append((items, source, _STRICTEST[vol]))
        for base, p in probes.value_probes:
            views.append(([p], sql.SQL(" FROM (SELECT NULL::{} AS value) AS d")
                          .format(base), p.context))
        if not views:
            return
        try:
            self._probe_views(conn, schema, views, own_sequences, types, where)
        except UnsafeExpressionError:
            if all(len(v[0]) == 1 for v in views):
                raise
            # one view per expression, to name exactly the ones refused
            self._probe_views(conn, schema, [([p], source, kind)
                                             for items, source, kind in views
                                             for p in items],
                              own_sequences, types, where)
            raise

    def _probe_views(self, conn: psycopg.Connection, schema: str,
                     views: List[Tuple[List[Probe], sql.Composable, str]],
                     own_sequences: Iterable[int], types: Iterable[int],
                     where: str) -> None:
        conn.execute("SAVEPOINT dumpcodec_probe")
        try:
            objects: List[Tuple[str, int, str, str]] = []
            relids: List[int] = []
            for n, (items, source, kind) in enumerate(views, 1):
                relid, rule = self._view(conn, schema, n, items, source)
                relids.append(relid)
                objects.append(("pg_rewrite", rule, kind,
                                ", ".join(p.where for p in items)))
            self.check_objects(conn, objects, relations=relids,
                               own_sequences=own_sequences, types=types, where=where)
        finally:
            conn.execute("ROLLBACK TO SAVEPOINT dumpcodec_probe")
            conn.execute("RELEASE SAVEPOINT dumpcodec_probe")

    @staticmethod
    def _view(conn: psycopg.Connection, schema: str, n: int, items: List[Probe],
              source: sql.Composable) -> Tuple[int, int]:
        exprs = []
        for i, p in enumerate(items):
            e = p.expr if p.cast_to is None else sql.SQL("CAST({} AS {})").format(
                p.expr, p.cast_to)
            # IS NULL: a view column may not be of type record or unknown
            exprs.append(sql.SQL("({}) IS NULL AS {}").format(e, sql.Identifier(f"e{i}")))
        name = sql.Identifier(schema, f"dumpcodec_probe_{n}")
        conn.execute(sql.SQL("CREATE VIEW {} AS SELECT {}{}").format(
            name, sql.SQL(", ").join(exprs), source))
        row = conn.execute(
            "SELECT r.ev_class::pg_catalog.oid, r.oid FROM pg_catalog.pg_rewrite r "
            "WHERE r.ev_class = pg_catalog.to_regclass(%s)",
            (name.as_string(conn),)).fetchone()
        return row[0], row[1]


_STRICTEST = {"i": "index", "s": "check", "v": "default"}


#: Contexts of the objects that are not expressions themselves: a table (its
#: partition key), its sequences and types (domain defaults), keys (their operators),
#: triggers (WHEN; the trigger function itself is checked apart).
_KIND_CONTEXT = {"table": "partition_key", "sequence": "default", "type": "default",
                 "constraint": "index", "trigger": "trigger_when", "view": "default"}


@dataclass
class _Allowed:
    relations: Set[int]
    own_sequences: Set[int]
    types: Set[int]
    namespaces: Set[int]
    trigger_functions: Set[int]


_VOL = {"i": "immutable", "s": "stable", "v": "volatile"}
_CONTEXT_NAMES = {"check": "a CHECK", "domain_check": "a domain CHECK",
                  "policy": "a policy", "trigger_when": "a trigger's WHEN",
                  "generated": "a generated column", "index": "an index",
                  "partition_key": "a partition key", "exclusion": "an exclusion constraint",
                  "statistics": "statistics", "range_support": "a range type"}

_CLASS_OIDS: Dict[str, int] = {}


def _class_oid(conn: psycopg.Connection, catalog: str) -> int:
    oid = _CLASS_OIDS.get(catalog)
    if oid is None:
        oid = conn.execute("SELECT %s::pg_catalog.regclass::pg_catalog.oid",
                           (f"pg_catalog.{catalog}",)).fetchone()[0]
        _CLASS_OIDS[catalog] = oid    # catalog OIDs are fixed across servers
    return oid


def _parse_row(text: str) -> Tuple[str, str, str, str]:
    parts = text.strip("()").split(",")
    return tuple((parts + ["", "", "", ""])[:4])   # type: ignore[return-value]
