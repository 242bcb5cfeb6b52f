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
   savepoint is rolled back.  Not needed (:func:`probe_needed`) when the expressions
   are only defaults and CHECKs of the CREATE TABLE: it only stores them, and check 3
   reads what they resolved to before anything runs them.
3. **What the server recorded, before any row** (:meth:`Guard.table_check`).  After
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
   operator classes (what ANALYZE, unique indexes and array comparisons use), and so
   are those of every column's type.  ``pg_depend`` records nothing about built-in
   (pinned) objects, so each stored expression's tree is read too (its ``funcid``,
   ``opno`` and ``regclass`` constants): the rules hold for built-ins as well.

Allowed built-ins: functions in ``pg_catalog`` that PUBLIC may execute (the server
itself revokes EXECUTE from PUBLIC on functions that read files, signal backends or
administer the server), are not SECURITY DEFINER, are plain functions (not aggregates,
window functions or procedures), return a single value, take and return no
``internal`` or handler pseudo-types, and are not in :data:`DENIED` (documented
built-ins that PUBLIC may execute but that run SQL text, touch large objects,
sequences, settings, locks, replication, other sessions or index maintenance).
Volatility: immutable for generated columns, indexes, partition keys, exclusion
constraints and statistics; immutable or stable for CHECKs, domain CHECKs, policies
and trigger WHEN clauses (stable built-ins only read); anything in defaults (a
restore evaluates a default only for a column the data leaves out, as ``create
--columns`` dumps do, and then only allowed built-ins and the table's own sequences),
so that ``now()``, ``gen_random_uuid()`` and ``clock_timestamp()`` stay.  ``nextval`` only in a default,
and only on a sequence the same table owns.

Objects that belong to an installed extension (``btree_gist``'s operator classes,
``citext``'s type and functions) are treated like built-ins when ``trust_extensions``
(the default): only a superuser or a database owner installs an extension, and its
code comes from the extension, not from the archive or the target's ordinary users.
Volatility and SECURITY DEFINER rules still apply to them.  ``trust_extensions=False``
refuses them too.
"""
from __future__ import annotations

import functools
import hashlib
import re
import weakref
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, FrozenSet, Iterable, List, Optional, Sequence, Set, Tuple

import psycopg
from psycopg import sql
from psycopg.adapt import Transformer

from ..errors import UnsafeExpressionError
from . import safety_sql as sq

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
    r"pg_input_is_valid|pg_input_error_info":
        "runs the input function and CHECKs of a type named in a string",
    r"satisfies_hash_partition":
        "runs the hash functions of a table named by an OID computed at run time",
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
        # a.b may be field b of column a, which the server may read as b(a); only the
        # table's own name (and in a trigger's WHEN, NEW and OLD) may come first
        firsts = {table} | ({"new", "old"} if context == "trigger_when" else set())
        if len(names) > 2 or (len(names) == 2 and names[0] not in firsts):
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


#: Contexts whose expressions CREATE TABLE only parses and stores: column defaults and
#: the CHECKs written into it (a CHECK added later by ALTER TABLE is prepared, and so
#: constant-folded, when it is validated; a generated column is planned from
#: PostgreSQL 17 on).  What they resolved to is in the stored trees, which the check
#: of the new table reads before anything runs them.
STORED_ONLY = frozenset({"default", "check"})


def probe_needed(probes: ProbeSet) -> bool:
    """Whether ``probes`` must be resolved before the table is created
    (:meth:`Guard.probe`): some expression goes where DDL evaluates it (an index, a
    partition key, a generated column, a domain), or is created apart from CREATE
    TABLE (a policy, a trigger's WHEN).  A table whose expressions are only defaults
    and CHECKs in its CREATE TABLE needs no probe: :meth:`Guard.table_check` right
    after the CREATE TABLE sees the same resolution (about 2.5 ms a table saved)."""
    return bool(probes.value_probes) or any(p.context not in STORED_ONLY
                                            for p in probes.probes)


_FIRST_NORMAL_OID = 16384


@dataclass
class Allowed:
    """What a check allows besides built-ins, by name (resolved on the server):
    quoted qualified names of relations (the table itself is ``table``), of the
    table's own sequences, of the archive's types; bare schema names; the
    ``regprocedure`` texts of the functions triggers may call."""
    table: Optional[str] = None
    relations: Sequence[str] = ()
    own_sequences: Sequence[str] = ()
    types: Sequence[str] = ()
    schemas: Sequence[str] = ()
    trigger_functions: Sequence[str] = ()

    def params(self) -> Dict[str, Any]:
        return {"table": self.table, "rels": list(self.relations),
                "own": list(self.own_sequences), "types": list(self.types),
                "schemas": list(self.schemas)}


@dataclass
class Check:
    """A query and what to make of its rows: :meth:`run` it, or queue the
    :meth:`statements` in a pipeline and hand the rows to ``judge`` (it raises
    :class:`UnsafeExpressionError` listing every problem)."""
    query: str
    params: Dict[str, Any]
    judge: Callable[[List[tuple]], None]

    def run(self, conn: psycopg.Connection) -> None:
        self.judge(self.fetch(conn))

    def fetch(self, conn: psycopg.Connection) -> List[tuple]:
        """The query's rows (not judged)."""
        rows: List[tuple] = []
        for query, params, result in self.statements(conn):
            cur = conn.execute(query, params)
            if result:
                rows = cur.fetchall()
        return rows

    def statements(self, conn: psycopg.Connection
                   ) -> List[Tuple[Any, Optional[Dict[str, Any]], bool]]:
        """``(query, params, gives the rows)`` to execute in order on ``conn`` (one may
        queue them in a pipeline).  Call it outside a pipeline: the first call on a
        connection prepares the query on the server.

        The allow-list's queries are long, and parsing and planning them took most of
        their time (about 4 of 5 ms a table), so each is prepared once per connection
        (``PREPARE``) and then only ``EXECUTE``d, its values given as literals.  On a
        session with ``plan_cache_mode = force_generic_plan`` (a restore's, see
        :mod:`dumpcodec.restore.pool`) it is planned once, at the first ``EXECUTE``,
        in a target that may still be empty: with sequential scans allowed, that plan
        would scan catalogs the restore then fills (seen: 8 ms a query at 1,000
        tables), so that first ``EXECUTE`` runs with index scans only (set and reset
        around it).  A connection on which psycopg prepares statements itself
        (``prepare_threshold`` set) gets the plain query: psycopg ends with
        ``DEALLOCATE ALL`` after DDL, which would drop ours."""
        if conn.prepare_threshold is not None:
            return [(self.query, self.params, True)]
        name, text, names = _prepared_form(self.query)
        done = _PREPARED.setdefault(conn, set())
        # the values as literals by one adapter (sql.Literal makes one per value)
        tx = Transformer(conn)
        execute = (b"EXECUTE " + name.encode() + b"(" + b", ".join(
            tx.as_literal([str(v) for v in self.params[n]] if n == "g_oid"
                          else self.params[n]) for n in names) + b")", None, True)
        if name in done:
            return [execute]
        conn.execute(text)
        done.add(name)
        return [(_INDEX_SCANS_ONLY, None, False), execute, (_RESET_SEQSCAN, None, False)]


_INDEX_SCANS_ONLY = sql.SQL("SET enable_seqscan = off")
_RESET_SEQSCAN = sql.SQL("RESET enable_seqscan")


#: the statements prepared on each connection (by name)
_PREPARED: "weakref.WeakKeyDictionary[psycopg.Connection, Set[str]]" = \
    weakref.WeakKeyDictionary()
#: the parameters' types; the others are text[]
_PARAM_TYPES = {"table": "pg_catalog.text", "g_oid": "pg_catalog.oid[]"}


@functools.lru_cache(maxsize=None)
def _prepared_form(query: str) -> Tuple[str, str, Tuple[str, ...]]:
    """``(name, PREPARE statement, parameter names in order)`` of a check's query
    (its ``%(name)s`` placeholders become ``$1``...)."""
    names: List[str] = []

    def number(m: "re.Match[str]") -> str:
        if m.group(1) not in names:
            names.append(m.group(1))
        return f"${names.index(m.group(1)) + 1}"

    body = re.sub(r"%\((\w+)\)s", number, query)
    name = "dumpcodec_check_" + hashlib.sha1(query.encode()).hexdigest()[:16]
    types = ", ".join(_PARAM_TYPES.get(n, "pg_catalog.text[]") for n in names)
    return name, f"PREPARE {name}({types}) AS {body}", tuple(names)


class Guard:
    """The allow-list of one target database, loaded once (two queries) and then used
    by every table of a restore (read-only, so threads may share it)."""

    def __init__(self, conn: psycopg.Connection, *, trust_extensions: bool = True):
        self.trust_extensions = trust_extensions
        #: names of the built-in types (an archive's type may not shadow one)
        self.catalog_types: FrozenSet[str] = frozenset(r[0] for r in conn.execute(
            "SELECT typname FROM pg_catalog.pg_type "
            "WHERE typnamespace = 'pg_catalog'::pg_catalog.regnamespace").fetchall())
        self.funcs: Dict[int, _Func] = {}
        for (oid, name, sig, vol, secdef, kind, retset, public,
             pseudo) in conn.execute(sq.FUNCS_SQL, (list(sq.PSEUDO_REFUSED),)).fetchall():
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
                # cstring: the types' own input and output functions (domain_in,
                # array_in, record_in run any type's code, CHECKs of domains
                # included, for a type named by an OID computed at run time)
                why = "takes or returns an internal, cstring or handler type"
            elif name != "nextval" and denied_reason(name):
                why = str(denied_reason(name))
            self.funcs[oid] = _Func(name, sig, vol, not why, why)

    # -- the checks -----------------------------------------------------------------------

    def objects_check(self, objects: Sequence[Tuple[str, int, str, str]],
                      allowed: Allowed, where: str) -> Check:
        """Every dependency record of ``objects`` ((catalog such as ``'pg_class'``,
        oid, kind, label): kind one of :data:`CONTEXTS` or a key of
        ``_KIND_CONTEXT``; label names the object in messages)."""
        params = allowed.params()
        params.update(g_class=[o[0] for o in objects], g_oid=[o[1] for o in objects],
                      g_kind=[o[2] for o in objects], g_label=[o[3] for o in objects])
        return Check(sq.DEPS_SQL.format(objects=sq.GIVEN_OBJECTS), params,
                     lambda rows: self._judge(rows, allowed, where))

    def table_check(self, allowed: Allowed, where: str) -> Check:
        """Everything table ``allowed.table`` has: the table, its defaults,
        constraints, indexes, own sequences, triggers, policies, statistics."""
        return Check(sq.DEPS_SQL.format(objects=sq.TABLE_OBJECTS), allowed.params(),
                     lambda rows: self._judge(rows, allowed, where))

    def column_opclass_check(self, allowed: Allowed, where: str) -> Check:
        """The default btree and hash operator classes of ``allowed.table``'s column
        types (and their element and base types): only built-in ones or an
        extension's (a user's would run when a unique index or ANALYZE compares)."""
        return Check(sq.COLUMN_OPCLASS_SQL, allowed.params(),
                     lambda rows: self._judge_opclasses(rows, where))

    def _judge_opclasses(self, rows: List[tuple], where: str) -> None:
        problems = [f"{ty}: default {am} operator class {opc} is outside pg_catalog"
                    for ty, am, opc, ext in rows if not (ext and self.trust_extensions)]
        if problems:
            raise UnsafeExpressionError(f"{where}: refused: " + "; ".join(problems))

    def types_check(self, type_objects: Sequence[str], allowed: Allowed,
                    where: str) -> List[Check]:
        """The archive's types in the target, created or found equal (all of them in
        ``allowed.types``; the ones to look into, not extensions', in
        ``type_objects``): their own dependency records (domain CHECKs and
        defaults, range support functions, composite attributes), and the default
        btree and hash operator classes of all of them."""
        params = allowed.params()
        params["type_objects"] = list(type_objects)
        return [Check(sq.DEPS_SQL.format(objects=sq.TYPE_OBJECTS), params,
                      lambda rows: self._judge(rows, allowed, where)),
                Check(sq.OPCLASS_SQL, params,
                      lambda rows: self._judge_opclasses(rows, where))]

    def probe(self, schema: str, probes: ProbeSet, allowed: Allowed, where: str,
              ) -> Tuple[List[sql.Composable], Optional[Check], List[sql.Composable]]:
        """Statements that resolve the expressions of ``probes`` on the server without
        running them, and the check of what they use: ``(before, check, after)`` --
        run ``before``, the check, then ``after`` (one may queue all three in one
        pipeline).  One view per volatility class (a view is parsed and analysed,
        never planned or run), created in ``schema`` inside a savepoint that
        ``after`` rolls back.  ``check`` is None when there is nothing to probe."""
        views = self._views(probes)
        if not views:
            return [], None, []
        return self._probe(schema, views, allowed, where)

    def probe_each(self, schema: str, probes: ProbeSet, allowed: Allowed, where: str,
                   ) -> Tuple[List[sql.Composable], Optional[Check], List[sql.Composable]]:
        """:meth:`probe` with one view per expression (slower): after a refusal, to
        name exactly the expressions refused."""
        views = [([p], source, kind) for items, source, kind in self._views(probes)
                 for p in items]
        if not views:
            return [], None, []
        return self._probe(schema, views, allowed, where)

    @staticmethod
    def _views(probes: ProbeSet) -> List[Tuple[List[Probe], sql.Composable, str]]:
        groups: Dict[str, List[Probe]] = {}
        for p in probes.probes:
            # a trigger's WHEN sees the row as NEW and OLD: a view of its own
            key = "when" if p.context == "trigger_when" else CONTEXTS[p.context]
            groups.setdefault(key, []).append(p)
        views: List[Tuple[List[Probe], sql.Composable, str]] = []
        if groups:
            cols = sql.SQL(", ").join(
                sql.SQL("NULL::{} AS {}").format(t, sql.Identifier(c))
                for c, t in probes.columns) if probes.columns else sql.SQL("")
            row = sql.SQL("(SELECT {})").format(cols)
            for key, items in sorted(groups.items()):
                if key == "when":
                    views.append((items, sql.SQL(" FROM {} AS new, {} AS old").format(
                        row, row), "trigger_when"))
                else:
                    views.append((items, sql.SQL(" FROM {} AS {}").format(
                        row, sql.Identifier(probes.table)), _STRICTEST[key]))
        for base, p in probes.value_probes:
            views.append(([p], sql.SQL(" FROM (SELECT NULL::{} AS value) AS d")
                          .format(base), p.context))
        return views

    def _probe(self, schema: str, views, allowed: Allowed, where: str):
        before: List[sql.Composable] = [sql.SQL("SAVEPOINT dumpcodec_probe")]
        names, kinds, labels = [], [], []
        for n, (items, source, kind) in enumerate(views, 1):
            name = sql.Identifier(schema, f"dumpcodec_probe_{n}")
            exprs = []
            for i, p in enumerate(items):
                e = p.expr if p.cast_to is None else sql.SQL("CAST({} AS {})").format(
                    p.expr, p.cast_to)
                # IS NULL: a view column may not be of type record or unknown
                exprs.append(sql.SQL("({}) IS NULL AS {}").format(
                    e, sql.Identifier(f"e{i}")))
            before.append(sql.SQL("CREATE VIEW {} AS SELECT {}{}").format(
                name, sql.SQL(", ").join(exprs), source))
            names.append(name.as_string(None))
            kinds.append(kind)
            labels.append(", ".join(p.where for p in items))
        params = allowed.params()
        params.update(views=names, g_kind=kinds, g_label=labels)
        check = Check(sq.DEPS_SQL.format(objects=sq.VIEW_OBJECTS), params,
                      lambda rows: self._judge(rows, allowed, where))
        after = [sql.SQL("ROLLBACK TO SAVEPOINT dumpcodec_probe"),
                 sql.SQL("RELEASE SAVEPOINT dumpcodec_probe")]
        return before, check, after

    # -- judging --------------------------------------------------------------------------

    def _judge(self, rows: List[tuple], allowed: Allowed, where: str) -> None:
        triggers = set(allowed.trigger_functions)
        problems = set()
        for row in rows:
            why = self._dependency_problem(*row, triggers=triggers)
            if why:
                problems.add(f"{row[1]}: {row[4]}: {why}")
        if problems:
            raise UnsafeExpressionError(
                f"{where}: refused: it would use what a restore may not run or touch: "
                + "; ".join(sorted(problems)))

    def _dependency_problem(self, kind: str, label: str, refclass: str, refoid: int,
                            desc: str, in_catalog: Optional[bool], ext: bool,
                            func: Optional[int], info: Optional[str], allowed_rel: bool,
                            own_seq: bool, archive_type: bool, allowed_nsp: bool, *,
                            triggers: Set[str]) -> Optional[str]:
        context = kind if kind in CONTEXTS else _KIND_CONTEXT[kind]
        trusted = ext and self.trust_extensions
        if refclass == "pg_proc":
            if kind == "trigger" and desc in triggers:
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
            return None if in_catalog or archive_type or trusted else \
                "a type the archive does not define"
        if refclass == "pg_class":
            if allowed_rel:
                return None
            if own_seq and context == "default":
                return None
            return "a relation the restore does not create"
        if refclass == "pg_namespace":
            return None if allowed_nsp else "a schema the restore does not write to"
        if refclass == "pg_constraint":
            return None    # a key of a relation, which is checked through pg_class
        if refclass == "pg_extension":
            return None if self.trust_extensions else "an extension"
        return f"a {refclass} object, which is not understood here"

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


def run_probe(conn: psycopg.Connection, guard: Guard, schema: str, probes: ProbeSet,
              allowed: Allowed, where: str) -> None:
    """:meth:`Guard.probe` run statement by statement (no pipeline); on a refusal,
    again one view per expression, to name exactly the ones refused."""
    try:
        _run_probe(conn, guard.probe(schema, probes, allowed, where))
    except UnsafeExpressionError:
        _run_probe(conn, guard.probe_each(schema, probes, allowed, where))
        raise


def _run_probe(conn: psycopg.Connection, probe) -> None:
    before, check, after = probe
    if check is None:
        return
    try:
        for stmt in before:
            conn.execute(stmt)
        rows = check.fetch(conn)
    finally:
        if conn.info.transaction_status != psycopg.pq.TransactionStatus.INERROR:
            for stmt in after:
                conn.execute(stmt)
    check.judge(rows)


_STRICTEST = {"i": "index", "s": "check", "v": "default"}


#: Contexts of the objects that are not expressions themselves: a table (its
#: partition key), its sequences and types (domain defaults), keys (their operators),
#: triggers (WHEN; the trigger function itself is checked apart).
_KIND_CONTEXT = {"table": "partition_key", "sequence": "default", "type": "default",
                 "constraint": "index", "trigger": "trigger_when", "view": "default"}

_VOL = {"i": "immutable", "s": "stable", "v": "volatile"}
_CONTEXT_NAMES = {"check": "a CHECK", "domain_check": "a domain CHECK",
                  "policy": "a policy", "trigger_when": "a trigger's WHEN",
                  "generated": "a generated column", "index": "an index",
                  "partition_key": "a partition key", "exclusion": "an exclusion constraint",
                  "statistics": "statistics", "range_support": "a range type"}


def _parse_row(text: str) -> Tuple[str, str, str, str]:
    parts = text.strip("()").split(",")
    return tuple((parts + ["", "", "", ""])[:4])   # type: ignore[return-value]
