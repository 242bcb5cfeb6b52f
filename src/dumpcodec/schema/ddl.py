"""Generate the DDL that recreates a table from its :class:`~.model.TableDef`.

Nothing from a definition is executed as text.  Statements are composed with
``psycopg.sql`` (every identifier an ``sql.Identifier``, every string a ``sql.Literal``,
every number an int), except the pieces PostgreSQL can give only as text:

* expressions (defaults, CHECKs, generated columns, domain defaults and checks, index
  expressions and predicates): each is parsed with pglast as ``SELECT (<expr>\\n)`` and
  must be exactly one plain SELECT with one unnamed target, no subquery, nothing else,
  and must not call server functions with side effects outside the table (reading
  files, signalling backends, set_config, large objects, advisory locks, sleeping...:
  defence in depth, not a sandbox -- other functions run with the restoring user's
  privileges, so do not restore untrusted archives as a superuser); the
  statement then embeds exactly that parenthesised text, so a trailing ``--`` comment
  cannot swallow the rest of the statement;
* partition keys and bounds: parsed inside a skeleton CREATE TABLE that must come out
  as exactly one CREATE TABLE with nothing but the key (or bound); bound values must be
  constants (the server deparses them so; a function call would run at CREATE time);
* built-in type names (``format_type`` text such as ``timestamp(3) without time zone``):
  parsed as the type of a column and required to name the recorded type;
* operator names (exclusion constraints): symbol characters only.

On top of that, every finished statement is parsed again and must be exactly one
statement of the expected kind.  A refusal raises
:class:`~dumpcodec.errors.UnsafeExpressionError` naming the table, the column or
constraint, and the text.

Target schema: with ``target_schema``, the table and every object of the table's own
schema that it uses (its owned sequences, its user-defined types, the parent of a
partition, foreign-key targets in that schema) are created in / looked up in the target
schema; objects in other schemas stay where they are.  Expressions were captured
relative to the table's own schema (see :mod:`.capture`), so the plan's ``setup``
statement sets ``search_path`` to the target schema; run it first in every session that
executes a phase (:meth:`DDLPlan.execute` does).
"""
from __future__ import annotations

import dataclasses
from typing import Dict, List, Mapping, Optional, Sequence, Tuple, Union

import psycopg
from psycopg import sql

from ..errors import SchemaError
from .model import (FK_ACTIONS, FK_MATCH, ColumnDef, ConstraintDef, IndexElem,
                    SequenceDef, TableDef, TypeDef)

# the building blocks (re-exported: the schema package and callers name them here)
from .ddl_build import (PHASES, DDLPlan, ForeignKeySteps, Step, _Builder, _built,  # noqa: F401
                        _check_bound, _checked_clause, _final, _operator_sql,
                        _partkey_checker, checked_expression, run_steps)


def free_sequence_statements(seq: SequenceDef, schema: str, *, create: bool = True
                             ) -> List[sql.Composed]:
    """A sequence no column owns (``create_dump(sequences=...)``), in ``schema``: its
    CREATE and COMMENT (``create``), and its value (``setval``).  The same options as a
    table's own sequences (one spelling for both)."""
    ident = sql.Identifier(schema, seq.name)
    where = f"sequence {schema}.{seq.name}"
    out: List[sql.Composed] = []
    if create:
        out.append(_built(sql.SQL("CREATE SEQUENCE {} {}").format(
            ident, _options(seq, True, where)), "CREATE SEQUENCE", where))
        if seq.comment is not None:
            out.append(_built(sql.SQL("COMMENT ON SEQUENCE {} IS {}").format(
                ident, sql.Literal(seq.comment)), "COMMENT", where))
    if seq.last_value is not None:
        out.append(_built(sql.SQL("SELECT pg_catalog.setval({}, {}, {})").format(
            sql.Literal(ident.as_string(None)), sql.Literal(int(seq.last_value)),
            sql.Literal(bool(seq.is_called))), "SELECT", where))
    return out


def _seq_options(b: _Builder, s: SequenceDef, with_type: bool) -> sql.Composed:
    return _options(s, with_type, b.where)


def _options(s: SequenceDef, with_type: bool, where: str) -> sql.Composed:
    parts = []
    if with_type:
        if s.data_type not in ("smallint", "integer", "bigint"):
            raise SchemaError(f"{where}: sequence {s.name!r}: bad data type")
        parts.append(sql.SQL("AS " + s.data_type))
    parts += [sql.SQL("INCREMENT BY {}").format(sql.Literal(int(s.increment))),
              sql.SQL("MINVALUE {}").format(sql.Literal(int(s.min_value))),
              sql.SQL("MAXVALUE {}").format(sql.Literal(int(s.max_value))),
              sql.SQL("START WITH {}").format(sql.Literal(int(s.start))),
              sql.SQL("CACHE {}").format(sql.Literal(int(s.cache))),
              sql.SQL("CYCLE" if s.cycle else "NO CYCLE")]
    return sql.SQL(" ").join(parts)


def _elem_sql(b: _Builder, e: IndexElem, what: str, exclusion: bool) -> sql.Composed:
    if (e.column is None) == (e.expression is None):
        raise SchemaError(f"{b.where}, {what}: an element needs a column or an expression")
    parts: List[sql.Composable] = [
        sql.Identifier(e.column) if e.column is not None
        else sql.SQL("({})").format(b.expr(e.expression, what,
                                           "exclusion" if exclusion else "index"))]
    if e.collation:
        parts.append(b.collate(e.collation, e.collation_schema))
    if e.opclass:
        parts.append(sql.SQL(" {}").format(
            sql.Identifier(e.opclass_schema, e.opclass) if e.opclass_schema
            else sql.Identifier(e.opclass)))
    if e.descending:
        parts.append(sql.SQL(" DESC"))
    if e.nulls_first != e.descending:
        parts.append(sql.SQL(" NULLS FIRST" if e.nulls_first else " NULLS LAST"))
    if exclusion:
        if e.operator is None:
            raise SchemaError(f"{b.where}, {what}: exclusion element without operator")
        parts.append(sql.SQL(" WITH {}").format(
            _operator_sql(e.operator_schema, e.operator, f"{b.where}, {what}")))
    return sql.Composed(parts)


def _idents(names: Sequence[str]) -> sql.Composed:
    return sql.SQL(", ").join(sql.Identifier(n) for n in names)


def _deferrable(c: ConstraintDef) -> sql.SQL:
    if not c.deferrable:
        return sql.SQL("")
    return sql.SQL(" DEFERRABLE INITIALLY DEFERRED" if c.deferred else " DEFERRABLE")


def _column_sql(b: _Builder, c: ColumnDef) -> sql.Composed:
    what = f"column {c.name!r}"
    ctype = b.type_sql(c, what, c.ndims)
    if c.builtin and (c.type_schema, c.type_elem) == ("pg_catalog", "pg_node_tree"):
        # PostgreSQL accepts no pg_node_tree value from a client (its input and
        # receive functions refuse all); its text is the value, so text keeps it
        ctype = sql.SQL("pg_catalog.text" + "[]" * max(c.ndims, int(c.is_array)))
        b.notes.append(f"{what}: pg_node_tree restored as text (PostgreSQL accepts no "
                       f"pg_node_tree value from a client)")
    parts: List[sql.Composable] = [sql.Identifier(c.name), sql.SQL(" "), ctype]
    parts.append(b.collate(c.collation, c.collation_schema))
    if c.generated is not None:
        parts.append(sql.SQL(" GENERATED ALWAYS AS {} STORED").format(
            b.expr(c.generated, f"{what} generated expression", "generated",
                   b.type_sql(c, what, c.ndims))))
    elif c.identity is not None:
        if c.identity not in ("a", "d"):
            raise SchemaError(f"{b.where}, {what}: bad identity {c.identity!r}")
        parts.append(sql.SQL(" GENERATED ALWAYS AS IDENTITY" if c.identity == "a"
                             else " GENERATED BY DEFAULT AS IDENTITY"))
        seq = next((s for s in b.t.sequences if s.identity and s.column == c.name), None)
        if seq is not None:
            parts.append(sql.SQL(" (SEQUENCE NAME {} {})").format(
                b.ident(seq.schema, seq.name), _seq_options(b, seq, False)))
    if c.default is not None and c.generated is None:
        parts.append(sql.SQL(" DEFAULT {}").format(
            b.expr(c.default, f"{what} default", "default",
                   b.type_sql(c, what, c.ndims))))
    if c.not_null:
        parts.append(sql.SQL(" NOT NULL"))
    return sql.Composed(parts)


def column_defaults(tdef: TableDef, target_schema: Optional[str] = None
                    ) -> List[sql.Composed]:
    """Defaults and identities of ``tdef``'s columns as ``ALTER TABLE`` statements, for a
    table that was created without them (a restore's staging table, whose defaults
    would otherwise bind to the sequences of the table it replaces).  Run after the
    plan's ``serials``."""
    b = _Builder(tdef, target_schema)
    out: List[sql.Composed] = []
    for c in tdef.columns:
        what = f"column {c.name!r}"
        head = sql.SQL("ALTER TABLE {} ALTER COLUMN {} ").format(b.table_ident,
                                                               sql.Identifier(c.name))
        if c.identity is not None and c.generated is None:
            if c.identity not in ("a", "d"):
                raise SchemaError(f"{b.where}, {what}: bad identity {c.identity!r}")
            body = [sql.SQL("ADD GENERATED ALWAYS AS IDENTITY" if c.identity == "a"
                            else "ADD GENERATED BY DEFAULT AS IDENTITY")]
            seq = next((s for s in tdef.sequences if s.identity and s.column == c.name),
                       None)
            if seq is not None:
                body.append(sql.SQL(" (SEQUENCE NAME {} {})").format(
                    b.ident(seq.schema, seq.name), _seq_options(b, seq, False)))
            out.append(_built(sql.Composed([head, *body]), "ALTER TABLE", b.where))
        elif c.default is not None and c.generated is None:
            out.append(_final(sql.Composed([head, sql.SQL("SET DEFAULT {}").format(
                b.expr(c.default, f"{what} default", "default"))]), "ALTER TABLE", b.where))
    return out


def _check_sql(b: _Builder, c: ConstraintDef) -> sql.Composed:
    return sql.SQL("CONSTRAINT {} CHECK {}{}").format(
        sql.Identifier(c.name), b.expr(c.expression, f"constraint {c.name!r}"),
        sql.SQL(" NO INHERIT" if c.no_inherit else ""))


def _own(b: _Builder, items):
    """What this table creates itself (a partition, or an INHERITS child, inherits the
    rest from its parent)."""
    child = b.t.kind == "partition" or bool(b.t.inherits)
    return [x for x in items if not (child and x.inherited)]


def _type_statements(b: _Builder, ty: TypeDef) -> List[sql.Composed]:
    where = f"{b.where}, type {ty.schema}.{ty.name}"
    name = b.ident(ty.schema, ty.name)
    if ty.kind == "enum":
        return [_built(sql.SQL("CREATE TYPE {} AS ENUM ({})").format(
            name, sql.SQL(", ").join(sql.Literal(l) for l in ty.labels)),
            "CREATE TYPE ENUM", where)]
    if ty.kind == "domain":
        if ty.base is None:
            raise SchemaError(f"{where}: domain without base type")
        parts = [sql.SQL("CREATE DOMAIN {} AS {}").format(
            name, b.type_sql(ty.base, f"type {ty.name!r} base")),
            b.collate(ty.collation, ty.collation_schema)]
        if ty.default is not None:
            parts.append(sql.SQL(" DEFAULT {}").format(
                b.value_expr(ty.default, f"{where} default", "domain_default",
                             b.type_sql(ty.base, f"type {ty.name!r} base"))))
        if ty.not_null:
            parts.append(sql.SQL(" NOT NULL"))
        for chk in ty.checks:
            parts.append(sql.SQL(" CONSTRAINT {} CHECK {}").format(
                sql.Identifier(chk.name),
                b.value_expr(chk.expression, f"{where}, check {chk.name!r}",
                             "domain_check",
                             b.type_sql(ty.base, f"type {ty.name!r} base"))))
        return [_final(sql.Composed(parts), "CREATE DOMAIN", where)]
    if ty.kind == "composite":
        attrs = sql.SQL(", ").join(
            sql.Composed([sql.Identifier(a.name), sql.SQL(" "),
                          b.type_sql(a.type, f"type {ty.name!r} attribute {a.name!r}"),
                          b.collate(a.collation, a.collation_schema)])
            for a in ty.attributes)
        return [_final(sql.SQL("CREATE TYPE {} AS ({})").format(name, attrs),
                       "CREATE TYPE", where)]
    if ty.kind == "range":
        if ty.base is None:
            raise SchemaError(f"{where}: range without subtype")
        opts = [sql.SQL("SUBTYPE = {}").format(b.type_sql(ty.base, f"type {ty.name!r}"))]
        if ty.subtype_opclass:
            opts.append(sql.SQL("SUBTYPE_OPCLASS = {}").format(
                b.ident(ty.subtype_opclass_schema, ty.subtype_opclass)))
        if ty.collation:
            opts.append(sql.SQL("COLLATION = {}").format(
                b.ident(ty.collation_schema, ty.collation)))
        if ty.subtype_diff:
            opts.append(sql.SQL("SUBTYPE_DIFF = {}").format(
                b.ident(ty.subtype_diff_schema, ty.subtype_diff)))
        if ty.multirange_name:
            opts.append(sql.SQL("MULTIRANGE_TYPE_NAME = {}").format(
                b.ident(ty.schema, ty.multirange_name)))
        return [_final(sql.SQL("CREATE TYPE {} AS RANGE ({})").format(
            name, sql.SQL(", ").join(opts)), "CREATE TYPE RANGE", where)]
    return []   # extension and base types are never created here


def _normalized_type(ty: TypeDef, table_schema: str) -> dict:
    d = dataclasses.asdict(ty)
    for k in ("comment", "schema", "oid", "array_oid"):
        d.pop(k)

    def fix(ref):
        if ref is not None:
            ref.pop("text")
            ref.pop("oid")
            if ref["schema"] == table_schema:
                ref["schema"] = None
    fix(d["base"])
    for a in d["attributes"]:
        fix(a["type"])
    return d


def _type_matches(want: TypeDef, want_schema: str, have: TypeDef,
                  have_schema: str) -> bool:
    if want.kind == "enum" and have.kind == "enum":
        # Extra labels in the target are harmless; ours must all be there, in order.
        pos = [have.labels.index(l) if l in have.labels else -1 for l in want.labels]
        return -1 not in pos and pos == sorted(pos)
    if want.kind in ("extension", "base"):
        return True
    return _normalized_type(want, want_schema) == _normalized_type(have, have_schema)


def existing_types_for(conn: psycopg.Connection, tdef: TableDef,
                       target_schema: Optional[str] = None) -> Dict[Tuple[str, str], TypeDef]:
    """The target database's versions of the types ``tdef`` needs, by (schema, name)
    as they would be created (after the target-schema mapping)."""
    from .capture import _search_path
    target = target_schema or tdef.schema
    out: Dict[Tuple[str, str], TypeDef] = {}
    with _search_path(conn, target):   # deparse as the dump's capture did
        _existing_types(conn, tdef, target, out)
    return out


def _existing_types(conn, tdef: TableDef, target: str, out: dict) -> None:
    from .capture import capture_types
    for ty in tdef.types:
        schema = target if ty.schema == tdef.schema else ty.schema
        row = conn.execute("SELECT t.oid FROM pg_catalog.pg_type t JOIN "
                           "pg_catalog.pg_namespace n ON n.oid = t.typnamespace "
                           "WHERE n.nspname = %s AND t.typname = %s",
                           (schema, ty.name)).fetchone()
        if row is not None:
            found = capture_types(conn, [row[0]])
            if found:
                out[(schema, ty.name)] = found[-1]


ExistingTypes = Union[None, psycopg.Connection, Mapping[Tuple[str, str], TypeDef]]


def _as_standalone(t: TableDef) -> TableDef:
    """A partition as a table of its own: no parent, its inherited keys and indexes
    become its own (for restoring one leaf without its partitioned parent)."""
    return dataclasses.replace(
        t, kind="partitioned" if t.partition_key is not None else "table",
        parent_schema=None, parent_name=None, partition_bound=None,
        constraints=[dataclasses.replace(c, inherited=False) for c in t.constraints],
        indexes=[dataclasses.replace(i, inherited=False) for i in t.indexes])


def ddl_plan(tdef: TableDef, target_schema: Optional[str] = None, *,
             existing_types: ExistingTypes = None, standalone: bool = False) -> DDLPlan:
    """Statements recreating ``tdef`` (in ``target_schema`` when given), by phase.

    ``standalone``: create a partition as an ordinary table (its parent need not
    exist; keys and indexes it inherited become its own).  Column defaults are kept as
    they are, so a default taking values from the parent's sequence needs that
    sequence in the target.

    ``existing_types``: the target's types, as :func:`existing_types_for` gives them (or
    a connection to look them up): a type that exists and matches is skipped, one that
    exists and differs is a :class:`SchemaError`, an extension type that is missing is
    a :class:`SchemaError`.  Without it every type is created (and a CREATE fails if
    it exists).
    """
    if standalone and tdef.kind == "partition":
        tdef = _as_standalone(tdef)
    b = _Builder(tdef, target_schema)
    plan = DDLPlan(schema=b.schema, name=tdef.name)
    plan.setup.append(sql.SQL("SELECT pg_catalog.set_config('search_path', {}, false)")
                      .format(sql.Literal(sql.Identifier(b.schema).as_string(None))))
    if isinstance(existing_types, psycopg.Connection):
        existing_types = existing_types_for(existing_types, tdef, target_schema)
    skipped = _plan_types(b, plan, existing_types)
    _plan_table(b, plan)
    _plan_keys_and_indexes(b, plan)
    _plan_foreign_keys(b, plan)
    _plan_sequence_values(b, plan)
    _plan_comments(b, plan, skipped)
    # storage parameters, statistics, RLS, triggers, privileges, ... (ddl_extras)
    from .ddl_extras import add_to_plan
    add_to_plan(plan, b, tdef, _own)
    plan.notes.extend(b.notes)
    b.probes.columns = [(c.name, sql.Composed([b.type_sql(c, f"column {c.name!r}", c.ndims),
                                               b.collate(c.collation, c.collation_schema)]))
                        for c in tdef.columns]
    plan.probes = b.probes
    return plan


def _plan_types(b: _Builder, plan: DDLPlan, existing_types) -> set:
    """The types the table needs: created, or skipped when the target has them equal
    (returned as (schema, name) keys)."""
    t, where = b.t, b.where
    skipped = set()
    for ty in t.types:
        key = (b.map_schema(ty.schema), ty.name)
        if existing_types is not None:
            have = existing_types.get(key)
            if have is not None:
                if not _type_matches(ty, t.schema, have, b.schema):
                    raise SchemaError(f"{where}: type {key[0]}.{key[1]} exists in the target "
                                      f"with a different definition ({have.kind}) than the "
                                      f"dump's ({ty.kind})")
                plan.skipped_types.append(f"{key[0]}.{key[1]}")
                skipped.add(key)
                continue
            if ty.kind in ("extension", "base"):
                raise SchemaError(f"{where}: type {key[0]}.{key[1]} is missing in the target"
                                  + (f" (install extension {ty.extension!r})"
                                     if ty.extension else ""))
        stmts = _type_statements(b, ty)
        if stmts and key[0] not in plan.schemas:
            plan.schemas.append(key[0])
        plan.types.extend(stmts)
    if b.schema not in plan.schemas:
        plan.schemas.insert(0, b.schema)
    return skipped


def _plan_table(b: _Builder, plan: DDLPlan) -> None:
    """The owned serial sequences (``serials``: defaults refer to them), then CREATE
    TABLE with its columns and validated CHECKs, and the sequences' OWNED BY."""
    t, where = b.t, b.where
    serials = [s for s in t.sequences if not s.identity]
    for s in serials:
        plan.serials.append(_built(sql.SQL("CREATE SEQUENCE {} {}").format(
            b.ident(s.schema, s.name), _seq_options(b, s, True)), "CREATE SEQUENCE", where))
    checks = [c for c in _own(b, t.constraints) if c.kind == "check"]
    items: List[sql.Composable] = []
    if t.kind == "partition":
        if not (t.parent_schema and t.parent_name and t.partition_bound):
            raise SchemaError(f"{where}: partition without parent or bound")
        items += [_check_sql(b, c) for c in checks if c.validated]
        head = sql.SQL("CREATE {}TABLE {} PARTITION OF {}{} ").format(
            sql.SQL("UNLOGGED " if t.unlogged else ""),
            b.table_ident, b.ident(t.parent_schema, t.parent_name),
            sql.SQL(" ({})").format(sql.SQL(", ").join(items)) if items else sql.SQL(""))
        stmt = [head, _checked_clause("CREATE TABLE x PARTITION OF y {}", t.partition_bound,
                                      f"{where}, partition bound", _check_bound)]
    else:
        # an INHERITS child declares its own columns only (the parent's come first)
        items += [_column_sql(b, c) for c in t.columns
                  if not (t.inherits and c.inherited)]
        items += [_check_sql(b, c) for c in checks if c.validated]
        stmt = [sql.SQL("CREATE {}TABLE {} ({})").format(
            sql.SQL("UNLOGGED " if t.unlogged else ""), b.table_ident,
            sql.SQL(", ").join(items))]
        if t.inherits:
            stmt.append(sql.SQL(" INHERITS ({})").format(sql.SQL(", ").join(
                b.ident(p.schema, p.name) for p in t.inherits)))
    if t.partition_key is not None:
        stmt += [sql.SQL(" PARTITION BY "),
                 _checked_clause("CREATE TABLE x () PARTITION BY {}", t.partition_key,
                                 f"{where}, partition key", _partkey_checker(b))]
    elif t.kind == "partitioned":
        raise SchemaError(f"{where}: partitioned table without partition key")
    plan.create_table = _final(sql.Composed(stmt), "CREATE TABLE", where)
    plan.table.append(plan.create_table)
    for s in serials:
        if s.column is not None:
            plan.table.append(_built(sql.SQL("ALTER SEQUENCE {} OWNED BY {}").format(
                b.ident(s.schema, s.name), sql.Identifier(b.schema, t.name, s.column)),
                "ALTER SEQUENCE", where))


_ADD_CONSTRAINT = sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} ")


def _plan_keys_and_indexes(b: _Builder, plan: DDLPlan) -> None:
    """``post_data``: keys, exclusion constraints, CHECKs added NOT VALID, indexes."""
    t, where = b.t, b.where
    for c in _own(b, t.constraints):
        what = f"constraint {c.name!r}"
        head = _ADD_CONSTRAINT.format(b.table_ident, sql.Identifier(c.name))
        if c.kind in ("primary_key", "unique"):
            body = sql.SQL("{}{} ({}){}{}").format(
                sql.SQL("PRIMARY KEY" if c.kind == "primary_key" else "UNIQUE"),
                sql.SQL(" NULLS NOT DISTINCT" if c.nulls_not_distinct else ""),
                _idents(c.columns),
                sql.SQL(" INCLUDE ({})").format(_idents(c.include)) if c.include
                else sql.SQL(""), _deferrable(c))
        elif c.kind == "exclusion":
            if not c.method or not c.elements:
                raise SchemaError(f"{where}, {what}: exclusion without method or elements")
            body = sql.SQL("EXCLUDE USING {} ({}){}{}{}").format(
                sql.Identifier(c.method),
                sql.SQL(", ").join(_elem_sql(b, e, what, True) for e in c.elements),
                sql.SQL(" INCLUDE ({})").format(_idents(c.include)) if c.include
                else sql.SQL(""),
                sql.SQL(" WHERE ({})").format(b.expr(c.predicate, f"{what} predicate",
                                                     "exclusion"))
                if c.predicate else sql.SQL(""), _deferrable(c))
        elif c.kind == "check" and not c.validated:
            body = sql.SQL("CHECK {}{} NOT VALID").format(
                b.expr(c.expression, what), sql.SQL(" NO INHERIT" if c.no_inherit else ""))
        else:
            continue
        stmt = (_built if c.kind in ("primary_key", "unique") else _final)(
            sql.Composed([head, body]), "ALTER TABLE", where)
        plan.post_data.append(stmt)
        if c.kind != "check":
            plan.builds.append(("constraint", c.name, stmt))
    for ix in _own(b, t.indexes):
        what = f"index {ix.name!r}"
        if not ix.elements:
            raise SchemaError(f"{where}, {what}: no elements")
        stmt = sql.SQL("CREATE {}INDEX {} ON {} USING {} ({}){}{}{}").format(
            sql.SQL("UNIQUE " if ix.unique else ""), sql.Identifier(ix.name), b.table_ident,
            sql.Identifier(ix.method),
            sql.SQL(", ").join(_elem_sql(b, e, what, False) for e in ix.elements),
            sql.SQL(" INCLUDE ({})").format(_idents(ix.include)) if ix.include
            else sql.SQL(""),
            sql.SQL(" NULLS NOT DISTINCT" if ix.nulls_not_distinct else ""),
            sql.SQL(" WHERE {}").format(b.expr(ix.predicate, f"{what} predicate", "index"))
            if ix.predicate else sql.SQL(""))
        text = ix.predicate or any(e.expression for e in ix.elements)
        stmt = (_final if text else _built)(stmt, "CREATE INDEX", where)
        plan.post_data.append(stmt)
        plan.builds.append(("index", ix.name, stmt))


def _plan_foreign_keys(b: _Builder, plan: DDLPlan) -> None:
    """``foreign_keys``, and each by name in two steps (``foreign_key_steps``)."""
    t, where = b.t, b.where
    for c in _own(b, t.constraints):
        if c.kind != "foreign_key":
            continue
        if c.on_update not in FK_ACTIONS or c.on_delete not in FK_ACTIONS \
                or c.match not in ("s", "f"):
            raise SchemaError(f"{where}, constraint {c.name!r}: bad foreign key options")

        def fk(not_valid: bool, c: ConstraintDef = c) -> sql.Composed:
            return _built(sql.Composed([
                _ADD_CONSTRAINT.format(b.table_ident, sql.Identifier(c.name)),
                sql.SQL("FOREIGN KEY ({}) REFERENCES {} ({}) MATCH {} ON UPDATE {} "
                        "ON DELETE {}{}{}").format(
                    _idents(c.columns), b.ident(c.ref_schema, c.ref_table),
                    _idents(c.ref_columns), sql.SQL(FK_MATCH[c.match]),
                    sql.SQL(FK_ACTIONS[c.on_update]), sql.SQL(FK_ACTIONS[c.on_delete]),
                    _deferrable(c), sql.SQL(" NOT VALID" if not_valid else ""))]),
                "ALTER TABLE", where)
        plan.foreign_keys.append(fk(not c.validated))
        plan.foreign_key_steps[c.name] = ForeignKeySteps(
            fk(True), None if not c.validated else _built(
                sql.SQL("ALTER TABLE {} VALIDATE CONSTRAINT {}").format(
                    b.table_ident, sql.Identifier(c.name)), "ALTER TABLE", where))


def _plan_sequence_values(b: _Builder, plan: DDLPlan) -> None:
    """``sequences``: the owned sequences' values, each found through its column (so
    identity sequences, and an existing table's own, work too)."""
    table_text = sql.Identifier(b.schema, b.t.name).as_string(None)
    for s in b.t.sequences:
        if s.column is None or s.last_value is None:
            continue
        plan.sequences.append(_built(sql.SQL(
            "SELECT pg_catalog.setval(pg_catalog.pg_get_serial_sequence({}, {}), {}, {})")
            .format(sql.Literal(table_text), sql.Literal(s.column),
                    sql.Literal(int(s.last_value)), sql.Literal(bool(s.is_called))),
            "SELECT", b.where))


def _plan_comments(b: _Builder, plan: DDLPlan, skipped: set) -> None:
    """``comments``: on the table, its columns, and the types the plan creates."""
    t, where = b.t, b.where
    if t.comment is not None:
        plan.comments.append(_built(sql.SQL("COMMENT ON TABLE {} IS {}").format(
            b.table_ident, sql.Literal(t.comment)), "COMMENT", where))
    for c in t.columns:
        if c.comment is not None:
            plan.comments.append(_built(sql.SQL("COMMENT ON COLUMN {} IS {}").format(
                sql.Identifier(b.schema, t.name, c.name), sql.Literal(c.comment)),
                "COMMENT", where))
    created = {(b.map_schema(ty.schema), ty.name) for ty in t.types} - skipped
    for ty in t.types:
        if (ty.comment is not None and ty.kind in ("enum", "composite", "range", "domain")
                and (b.map_schema(ty.schema), ty.name) in created):
            plan.comments.append(_built(sql.SQL("COMMENT ON {} {} IS {}").format(
                sql.SQL("DOMAIN" if ty.kind == "domain" else "TYPE"),
                b.ident(ty.schema, ty.name), sql.Literal(ty.comment)), "COMMENT", where))
