"""The building blocks of :mod:`.ddl`: the checks on the pieces of text a definition
can hold (expressions, partition keys and bounds, built-in type names, operators; see
:mod:`.ddl` for the rules), the finished-statement check, the plan object
(:class:`DDLPlan`), the builder the phases share and :class:`Step` (a statement that
needs something of the target, run by :func:`run_steps`).

Split from :mod:`.ddl` so that :mod:`.ddl_extras` builds on these without importing the
module that imports it.
"""
from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass, field
from typing import Dict, Iterable, Iterator, List, Optional, Sequence, Tuple, Union

import psycopg
from psycopg import sql

from ..errors import RestoreError, UnsafeExpressionError
from .safety import Probe, ProbeSet, check_tree
from .model import ColumnDef, TableDef, TypeRef


#: The order a restore runs a plan's statements in (``setup`` before each session):
#: ``types``, ``serials`` (owned sequences), ``table`` (with storage parameters and
#: column settings), then the data, ``post_data`` (keys, indexes, index parameters,
#: statistics, replica identity, CLUSTER ON), ``foreign_keys`` (after all tables; with
#: comments on foreign keys), ``sequences`` (values), ``comments``, then, in the table's
#: transaction before its COMMIT, ``policies`` (RLS; required), ``triggers`` (after the
#: data, so they never fire during a restore), ``privileges`` (owner and grants, only on
#: request).  The last three hold :class:`Step` statements, run by
#: :func:`run_steps`.
PHASES = ("types", "serials", "table", "post_data", "foreign_keys", "sequences",
          "comments", "policies", "triggers", "privileges")

_OPERATOR_RE = re.compile(r"^[+\-*/<>=~!@#%^&|`?]{1,63}$")


# -- checking text pieces ---------------------------------------------------------------

def _parse(text: str):
    import pglast          # here: only restores and --where need it (~50 ms to import)
    try:
        return pglast.parse_sql(text)
    except pglast.parser.ParseError as exc:
        raise ValueError(f"does not parse: {exc}") from None


def checked_expression(expr: str, where: str, *, per_row: bool = True,
                       context: Optional[str] = None, table: Optional[str] = None,
                       type_schemas: Sequence[str] = ()) -> sql.SQL:
    """``(expr)`` as SQL, after proving it is exactly one SQL expression built only of
    what :func:`.safety.check_tree` allows in ``context`` (one of
    :data:`.safety.CONTEXTS`; without it ``per_row`` chooses ``'check'`` or
    ``'default'``).  The server-side half of the allow-list is :class:`.safety.Guard`.
    """
    if context is None:
        context = "check" if per_row else "default"
    if not isinstance(expr, str) or not expr.strip():
        raise UnsafeExpressionError(f"{where}: empty expression")
    try:
        return sql.SQL(_checked_text(expr, context, table, tuple(type_schemas)))
    except RecursionError:
        raise UnsafeExpressionError(f"{where}: refused expression: nested too deeply") \
            from None
    except ValueError as exc:
        raise UnsafeExpressionError(f"{where}: refused expression {expr!r}: {exc}") from None


#: a serial column's default as PostgreSQL prints it, ``nextval('name'::regclass)``:
#: one string literal without backslashes (its extent is the same whatever
#: standard_conforming_strings says), so nothing but that call.  Each table has its
#: own, so the cache below does not help, and the parse is most of a small table's
#: plan; this form is what the parse and :func:`.safety.check_tree` accept in a
#: default, checked without them (tests/schema: the same verdicts as the parse)
_SERIAL_DEFAULT = re.compile(r"nextval\('(?:[^'\\]|'')+'::regclass\)")


@functools.lru_cache(maxsize=4096)
def _checked_text(expr: str, context: str, table: Optional[str],
                  type_schemas: Tuple[str, ...]) -> str:
    """The parenthesised text of an accepted expression, or ValueError.  Cached: many
    tables share their expressions, and the parse is what costs (a refusal raises,
    and is never cached)."""
    if context == "default" and _SERIAL_DEFAULT.fullmatch(expr):
        return f"({expr})"
    # A newline ends a trailing "--" comment inside the parentheses; the parse below
    # sees exactly the text the statement will embed.
    wrapped = f"({expr}\n)" if "--" in expr else f"({expr})"
    stmts = _parse(f"SELECT {wrapped}")
    if len(stmts) != 1:
        raise ValueError(f"{len(stmts)} statements")
    sel = stmts[0].stmt
    if type(sel).__name__ != "SelectStmt":
        raise ValueError(f"a {type(sel).__name__}, not an expression")
    others = [f for f in ("distinctClause", "intoClause", "fromClause", "whereClause",
                          "groupClause", "havingClause", "windowClause", "valuesLists",
                          "sortClause", "limitOffset", "limitCount", "lockingClause",
                          "withClause", "larg", "rarg") if getattr(sel, f, None)]
    if others or sel.op.value != 0:
        raise ValueError(f"more than an expression ({', '.join(others) or 'set op'})")
    if not sel.targetList or len(sel.targetList) != 1 or sel.targetList[0].name:
        raise ValueError("not exactly one expression")
    check_tree(sel.targetList[0](), context, table=table, type_schemas=type_schemas)
    return wrapped


def _checked_clause(skeleton: str, piece: str, where: str, check) -> sql.SQL:
    """Validate ``piece`` inside ``skeleton`` (which has one ``{}``)."""
    if not isinstance(piece, str) or not piece.strip():
        raise UnsafeExpressionError(f"{where}: empty text")
    text = piece + "\n" if "--" in piece else piece
    try:
        stmts = _parse(skeleton.format(text))
        if len(stmts) != 1:
            raise ValueError(f"{len(stmts)} statements")
        check(stmts[0].stmt)
    except (ValueError, AttributeError) as exc:
        raise UnsafeExpressionError(f"{where}: refused {piece!r}: {exc}") from None
    return sql.SQL(text)


def _constant(node) -> bool:
    """A bound datum as the server deparses them: a literal, maybe cast or negated,
    MINVALUE or MAXVALUE.  Anything else (a function call) would run at CREATE."""
    tag = node.get("@") if isinstance(node, dict) else None
    if tag == "A_Const":
        return True
    if tag in ("TypeCast", "CollateClause"):
        return _constant(node.get("arg"))
    if tag == "ColumnRef":
        fields = node.get("fields") or ()
        return len(fields) == 1 and fields[0].get("sval") in ("minvalue", "maxvalue")
    if tag == "A_Expr":
        names = [n.get("sval") for n in node.get("name") or ()]
        return names == ["-"] and node.get("lexpr") is None and _constant(node.get("rexpr"))
    return False


def _check_bound(stmt) -> None:
    if (type(stmt).__name__ != "CreateStmt" or stmt.partbound is None or stmt.tableElts
            or stmt.partspec is not None or len(stmt.inhRelations or ()) != 1
            or stmt.options or stmt.tablespacename or stmt.accessMethod):
        raise ValueError("not just a partition bound")
    bound = stmt.partbound()
    for key in ("listdatums", "lowerdatums", "upperdatums"):
        for datum in bound.get(key) or ():
            if not _constant(datum):
                raise ValueError("a partition bound value that is not a constant")


def _partkey_checker(b: "_Builder"):
    """A check for :func:`_checked_clause`: exactly a partition key, whose expressions
    are allowed as partition keys (kept as probes) and whose operator classes and
    collations are qualified only with pg_catalog."""
    def check(stmt) -> None:
        if (type(stmt).__name__ != "CreateStmt" or stmt.partspec is None or stmt.tableElts
                or stmt.partbound is not None or stmt.inhRelations or stmt.options
                or stmt.tablespacename or stmt.accessMethod):
            raise ValueError("not just a partition key")
        from pglast.stream import RawStream
        for elem in stmt.partspec.partParams or ():
            for what, names in (("operator class", elem.opclass),
                                ("collation", elem.collation)):
                names = [n.sval for n in names or ()]
                if len(names) > 1 and names[-2] != "pg_catalog":
                    raise ValueError(f"the {what} {'.'.join(names)} is outside pg_catalog")
            if elem.expr is not None:
                check_tree(elem.expr(), "partition_key", table=b.t.name,
                           type_schemas=b.type_schemas)
                b.probes.probes.append(Probe(
                    "partition_key", sql.SQL("({})").format(sql.SQL(RawStream()(elem.expr))),
                    "partition key"))
    return check


def _builtin_type_sql(text: str, elem: str, where: str) -> sql.SQL:
    ok = _BUILTIN_TYPES.get((text, elem))
    if ok is None:
        if len(_BUILTIN_TYPES) > 4096:
            _BUILTIN_TYPES.clear()
        ok = _BUILTIN_TYPES[(text, elem)] = _builtin_type_sql_checked(text, elem, where)
    return ok


# (format_type text, element name) -> checked SQL: the same few types come back for
# every column of every table (the parse is what costs; a refusal raises, never cached)
_BUILTIN_TYPES: Dict[Tuple[str, str], sql.SQL] = {}


def _builtin_type_sql_checked(text: str, elem: str, where: str) -> sql.SQL:
    def check(stmt):
        elts = getattr(stmt, "tableElts", None)
        if type(stmt).__name__ != "CreateStmt" or not elts or len(elts) != 1:
            raise ValueError("not a single type")
        col = elts[0]
        if (type(col).__name__ != "ColumnDef" or col.constraints or col.collClause
                or col.typeName is None or col.typeName.names[-1].sval != elem):
            raise ValueError(f"not the type {elem!r}")
    return _checked_clause("CREATE TABLE x (c {})", text, where, check)


def _operator_sql(schema: Optional[str], op: str, where: str) -> sql.Composable:
    if not isinstance(op, str) or not _OPERATOR_RE.match(op) or "--" in op or "/*" in op:
        raise UnsafeExpressionError(f"{where}: refused operator {op!r}")
    if schema:
        return sql.SQL("OPERATOR({}.{})").format(sql.Identifier(schema), sql.SQL(op))
    return sql.SQL("OPERATOR({})").format(sql.SQL(op))


_EXPECTED_NODE = {"CREATE TABLE": "CreateStmt", "CREATE INDEX": "IndexStmt",
                  "ALTER TABLE": "AlterTableStmt", "CREATE TYPE ENUM": "CreateEnumStmt",
                  "CREATE DOMAIN": "CreateDomainStmt", "CREATE TYPE": "CompositeTypeStmt",
                  "CREATE TYPE RANGE": "CreateRangeStmt", "CREATE SEQUENCE": "CreateSeqStmt",
                  "ALTER SEQUENCE": "AlterSeqStmt", "SELECT": "SelectStmt",
                  "COMMENT": "CommentStmt", "CREATE TRIGGER": "CreateTrigStmt",
                  "CREATE POLICY": "CreatePolicyStmt", "GRANT": "GrantStmt",
                  "CREATE STATISTICS": "CreateStatsStmt",
                  "ALTER STATISTICS": "AlterStatsStmt"}


def _built(stmt: sql.Composed, kind: str, where: str) -> sql.Composed:
    """A statement composed only of identifiers, literals and our own keywords, no
    text from the definition: it is one ``kind`` statement by construction, so it is
    not parsed again (:func:`_final` is for statements that embed checked text)."""
    return stmt


def _statement_kinds(text: str) -> List[str]:
    """The node name of each statement in ``text`` (the parser's JSON: about eight
    times faster than building pglast's node objects, and that is all
    :func:`_final` needs)."""
    from pglast import parser
    try:
        doc = json.loads(parser.parse_sql_json(text))
    except parser.ParseError as exc:
        raise ValueError(f"does not parse: {exc}") from None
    return [next(iter(s.get("stmt") or {"": None})) for s in doc.get("stmts") or ()]


def _final(stmt: sql.Composed, kind: str, where: str) -> sql.Composed:
    """Belt and braces: the finished statement is exactly one statement of ``kind``."""
    text = stmt.as_string(None)
    try:
        kinds = _statement_kinds(text)
    except ValueError as exc:
        raise UnsafeExpressionError(f"{where}: generated {kind} does not parse ({exc}): "
                                    f"{text}") from None
    if kinds != [_EXPECTED_NODE[kind]]:
        raise UnsafeExpressionError(f"{where}: generated text is not one {kind} "
                                    f"statement: {text}")
    return stmt


# -- the plan -------------------------------------------------------------------------

@dataclass
class ForeignKeySteps:
    """A foreign key added ``NOT VALID`` (no row is checked, so what it resolves to
    can be looked at first), then validated when the source's was."""
    add: sql.Composed
    validate: Optional[sql.Composed]
    comment: Optional[sql.Composed] = None


@dataclass
class DDLPlan:
    """The statements recreating one table, by phase (see ``PHASES`` for the order).

    ``setup`` sets ``search_path`` to the target schema; run it before any phase in
    each session (the expressions were captured relative to the table's schema).
    """
    schema: str
    name: str
    setup: List[sql.Composed] = field(default_factory=list)
    types: List[sql.Composed] = field(default_factory=list)
    serials: List[sql.Composed] = field(default_factory=list)   # owned sequences
    table: List[sql.Composed] = field(default_factory=list)
    post_data: List[sql.Composed] = field(default_factory=list)
    foreign_keys: List[sql.Composed] = field(default_factory=list)
    sequences: List[sql.Composed] = field(default_factory=list)
    comments: List[sql.Composed] = field(default_factory=list)
    policies: List[sql.Composed] = field(default_factory=list)
    triggers: List[sql.Composed] = field(default_factory=list)
    privileges: List[sql.Composed] = field(default_factory=list)
    skipped_types: List[str] = field(default_factory=list)   # already there and equal
    schemas: List[str] = field(default_factory=list)   # where the plan creates objects
    #: the CREATE TABLE statement of ``table`` (the rest of that phase alters it)
    create_table: Optional[sql.Composed] = None
    #: each foreign key by name, in two steps (see :class:`ForeignKeySteps`)
    foreign_key_steps: Dict[str, "ForeignKeySteps"] = field(default_factory=dict)
    #: the statements of ``post_data`` that build an index (keys, exclusion
    #: constraints, indexes) as ``(kind, name, statement)``, kind ``"constraint"``
    #: or ``"index"`` (a staged restore builds them before its final transaction)
    builds: List[Tuple[str, str, sql.Composed]] = field(default_factory=list)
    #: every expression of the plan, for :meth:`.safety.Guard.probe` (run it after
    #: ``types`` and ``serials`` and before ``table``)
    probes: ProbeSet = field(default_factory=lambda: ProbeSet(table=""))
    notes: List[str] = field(default_factory=list)     # what the plan does not restore

    def statements(self, phases: Sequence[str] = PHASES) -> Iterator[sql.Composed]:
        for phase in phases:
            if phase not in PHASES:
                raise ValueError(f"unknown DDL phase {phase!r}")
            yield from getattr(self, phase)

    def as_strings(self, phases: Sequence[str] = PHASES,
                   context: Optional[psycopg.Connection] = None) -> List[str]:
        return [s.as_string(context) for s in self.statements(phases)]

    def execute(self, conn: psycopg.Connection,
                phases: Sequence[str] = PHASES) -> List[str]:
        """Run ``setup`` and the given phases on ``conn``; search_path is restored.

        Returns the notes of what was not restored (the plan's own and those of
        :func:`run_steps`)."""
        old = conn.execute("SELECT pg_catalog.current_setting('search_path')").fetchone()[0]
        notes = list(self.notes)
        try:
            for stmt in self.setup:
                conn.execute(stmt)
            for phase in phases:
                if phase not in PHASES:
                    raise ValueError(f"unknown DDL phase {phase!r}")
                notes += run_steps(conn, getattr(self, phase),
                                   f"{self.schema}.{self.name}")
            return notes
        finally:
            if conn.info.transaction_status != psycopg.pq.TransactionStatus.INERROR:
                conn.execute("SELECT pg_catalog.set_config('search_path', %s, false)",
                             (old,))


class _Builder:
    def __init__(self, t: TableDef, target_schema: Optional[str]):
        self.t = t
        self.schema = target_schema or t.schema
        self.where = f"table {t.schema}.{t.name}"
        self.table_ident = sql.Identifier(self.schema, t.name)
        self.type_schemas = sorted({ty.schema for ty in t.types})
        self.probes = ProbeSet(table=t.name)
        self.notes: List[str] = []

    def map_schema(self, schema: str) -> str:
        return self.schema if schema == self.t.schema else schema

    def ident(self, schema: Optional[str], name: str) -> sql.Identifier:
        if schema is None:
            return sql.Identifier(name)
        return sql.Identifier(self.map_schema(schema), name)

    def expr(self, text: str, what: str, context: str = "check",
             cast_to: Optional[sql.Composable] = None) -> sql.SQL:
        """The checked expression; also kept as a probe for :meth:`.safety.Guard.probe`."""
        where = f"{self.where}, {what}"
        checked = checked_expression(text, where, context=context, table=self.t.name,
                                     type_schemas=self.type_schemas)
        self.probes.probes.append(Probe(context, checked, what, cast_to))
        return checked

    def value_expr(self, text: str, what: str, context: str,
                   base: sql.Composable) -> sql.SQL:
        """A domain default or CHECK (it refers to the value as VALUE)."""
        checked = checked_expression(text, what, context=context,
                                     type_schemas=self.type_schemas)
        self.probes.value_probes.append((base, Probe(context, checked, what)))
        return checked

    # types
    def type_sql(self, ref: Union[TypeRef, ColumnDef], what: str, ndims: int = 0) -> sql.Composable:
        if isinstance(ref, ColumnDef):
            ref = ref.type_ref()
        extra = sql.SQL("[]" * max(0, ndims - 1))
        if ref.builtin:
            return sql.Composed([_builtin_type_sql(ref.text, ref.name,
                                                   f"{self.where}, {what} type"), extra])
        base = self.ident(ref.schema, ref.name)
        return sql.Composed([base, sql.SQL("[]" if ref.is_array else ""), extra])

    def collate(self, name: Optional[str], schema: Optional[str]) -> sql.Composable:
        if name is None:
            return sql.SQL("")
        return sql.SQL(" COLLATE {}").format(
            sql.Identifier(schema, name) if schema else sql.Identifier(name))


# -- steps: statements that need something of the target -----------------------------

class Step(sql.Composed):
    """A statement of the ``policies``, ``triggers`` or ``privileges`` phase.

    ``what`` names the object (statements of one object share it: when one is left
    out, the rest of that object is too); ``functions`` ((schema, name) of
    argument-less functions) and ``roles`` must exist in the target; ``required``: a
    missing need or a failure fails the table instead of being noted.
    """

    def __init__(self, seq: Sequence[sql.Composable], what: str,
                 functions: Sequence[Tuple[str, str]] = (), roles: Iterable[str] = (),
                 required: bool = False,
                 index_of: Optional[Tuple[sql.Identifier, sql.Identifier]] = None):
        super().__init__(list(seq))
        self.what = what
        self.functions = list(functions)
        # (index, table): the index must be one of the table's (a comment on an
        # index the plan did not create, a partition's inherited one)
        self.index_of = index_of
        self.roles = sorted({r for r in roles if r is not None})
        self.required = required
        self.owners = False      # the owner's own privileges (or the owner itself)


def _missing_needs(conn: psycopg.Connection, step: Step) -> Optional[str]:
    for schema_, name in step.functions:
        sig = sql.SQL("{}()").format(sql.Identifier(schema_, name)).as_string(conn)
        if conn.execute("SELECT pg_catalog.to_regprocedure(%s)", (sig,)).fetchone()[0] \
                is None:
            return f"its function {schema_}.{name}() does not exist in the target"
    if step.index_of is not None:
        index, table = (x.as_string(conn) for x in step.index_of)
        if conn.execute("SELECT 1 FROM pg_catalog.pg_index WHERE indexrelid = "
                        "pg_catalog.to_regclass(%s) AND indrelid = "
                        "pg_catalog.to_regclass(%s)", (index, table)).fetchone() is None:
            return f"{index} is not an index of {table}"
    missing = [r for r in step.roles if conn.execute(
        "SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = %s", (r,)).fetchone() is None]
    if missing:
        return f"role(s) {', '.join(missing)} do not exist in the target"
    return None


def run_steps(conn: psycopg.Connection, steps: Sequence[sql.Composed],
              table: str) -> List[str]:
    """Run one phase's steps in the open transaction on ``conn``.

    A step whose needs are missing, or that fails, is left out (with the other steps
    of its object) and noted; a ``required`` one raises :class:`RestoreError`
    instead, naming the table and the reason.  Returns the notes.
    """
    notes: List[str] = []
    left_out = set()
    for step in steps:
        if not isinstance(step, Step):
            conn.execute(step)
            continue
        if step.what in left_out:
            continue
        why = _missing_needs(conn, step)
        if why is None:
            # in a transaction (a restore's): a savepoint; autocommit: none needed
            in_tx = conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE
            if in_tx:
                conn.execute("SAVEPOINT dumpcodec_step")
            try:
                conn.execute(step)
                if in_tx:
                    conn.execute("RELEASE SAVEPOINT dumpcodec_step")
            except psycopg.Error as exc:
                if in_tx:
                    conn.execute("ROLLBACK TO SAVEPOINT dumpcodec_step")
                why = exc.diag.message_primary or str(exc).strip()
        if why is not None:
            if step.required:
                raise RestoreError(f"{table}: {step.what} could not be restored ({why}); "
                                   f"the table is not restored without it")
            left_out.add(step.what)
            notes.append(f"{step.what} not restored: {why}")
    return notes
