"""Capture table definitions from the catalog of a live database (psycopg 3).

Expressions (defaults, CHECKs, generated columns, index expressions, partition keys and
bounds) are deparsed by the server with ``search_path`` set to the table's own schema,
so references to objects of that schema come out unqualified and everything else
qualified.  The DDL layer sets ``search_path`` to the target schema before it runs, so a
table restored into another schema finds its own sequences and types there.

Supports PostgreSQL 12 and later (generated columns, ``pg_partition_tree``).
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

import psycopg
from psycopg import sql

from ..errors import SchemaError
from .model import (FIRST_NORMAL_OID, AttributeDef, ColumnDef, ConstraintDef, DomainCheck,
                    IndexDef, IndexElem, SequenceDef, TableDef, TypeDef, TypeRef)

_SYSTEM_SCHEMAS = ("pg_catalog", "information_schema")


@contextmanager
def _search_path(conn: psycopg.Connection, schema: str) -> Iterator[None]:
    """Deparse relative to ``schema``: its objects unqualified, others qualified."""
    old = conn.execute("SELECT pg_catalog.current_setting('search_path')").fetchone()[0]
    conn.execute("SELECT pg_catalog.set_config('search_path', "
                 "pg_catalog.quote_ident(%s), false)", (schema,))
    try:
        yield
    finally:
        if conn.info.transaction_status != psycopg.pq.TransactionStatus.INERROR:
            conn.execute("SELECT pg_catalog.set_config('search_path', %s, false)", (old,))


def _server_version(conn: psycopg.Connection) -> int:
    return conn.info.server_version


# -- the table itself -------------------------------------------------------------------

_REL_SQL = """
SELECT c.oid, c.relkind, c.relpersistence, c.relispartition,
       pg_catalog.obj_description(c.oid, 'pg_class'),
       CASE WHEN c.relkind = 'p' THEN pg_catalog.pg_get_partkeydef(c.oid) END,
       CASE WHEN c.relispartition THEN pg_catalog.pg_get_expr(c.relpartbound, c.oid) END,
       pn.nspname, pc.relname
FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_catalog.pg_inherits i ON c.relispartition AND i.inhrelid = c.oid
LEFT JOIN pg_catalog.pg_class pc ON pc.oid = i.inhparent
LEFT JOIN pg_catalog.pg_namespace pn ON pn.oid = pc.relnamespace
WHERE n.nspname = %s AND c.relname = %s
"""

# Columns with their (element) type.  Arrays are recognised the way format_type() does
# (typelem set and variable length), because attndims is not reliable.
_COLS_SQL = """
SELECT a.attnum, a.attname,
       pg_catalog.format_type(a.atttypid, a.atttypmod), a.atttypid, a.atttypmod,
       a.attndims, a.attnotnull, a.attidentity, a.attgenerated,
       pg_catalog.pg_get_expr(d.adbin, d.adrelid),
       CASE WHEN a.attcollation <> t.typcollation AND a.attcollation <> 0
            THEN co.collname END,
       CASE WHEN a.attcollation <> t.typcollation AND a.attcollation <> 0
            THEN con.nspname END,
       pg_catalog.col_description(a.attrelid, a.attnum),
       (t.typelem <> 0 AND t.typlen = -1) AS is_array,
       et.oid, etn.nspname, et.typname, et.typtype
FROM pg_catalog.pg_attribute a
JOIN pg_catalog.pg_type t ON t.oid = a.atttypid
JOIN pg_catalog.pg_type et
  ON et.oid = CASE WHEN t.typelem <> 0 AND t.typlen = -1 THEN t.typelem ELSE t.oid END
JOIN pg_catalog.pg_namespace etn ON etn.oid = et.typnamespace
LEFT JOIN pg_catalog.pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
LEFT JOIN pg_catalog.pg_collation co ON co.oid = a.attcollation
LEFT JOIN pg_catalog.pg_namespace con ON con.oid = co.collnamespace
WHERE a.attrelid = %s AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attnum
"""


def _names(conn, relid: int, nums: Optional[Sequence[int]]) -> List[str]:
    if not nums:
        return []
    rows = conn.execute(
        "SELECT a.attname FROM unnest(%s::int2[]) WITH ORDINALITY k(n, i) "
        "JOIN pg_catalog.pg_attribute a ON a.attrelid = %s AND a.attnum = k.n "
        "ORDER BY k.i", (list(nums), relid)).fetchall()
    return [r[0] for r in rows]


def _capture_columns(conn, relid: int) -> Tuple[List[ColumnDef], List[int]]:
    cols: List[ColumnDef] = []
    elem_oids: List[int] = []
    for i, r in enumerate(conn.execute(_COLS_SQL, (relid,)).fetchall(), 1):
        (attnum, name, typ, typoid, typmod, ndims, notnull, identity, generated, expr,
         coll, coll_schema, comment, is_array, eoid, eschema, ename, ekind) = r
        cols.append(ColumnDef(
            name=name, type=typ, type_oid=typoid, type_schema=eschema, type_elem=ename,
            typmod=typmod, ndims=ndims, is_array=bool(is_array), type_kind=ekind,
            builtin=eoid < FIRST_NORMAL_OID, not_null=notnull,
            default=expr if generated != "s" else None,
            identity=identity or None,
            generated=expr if generated == "s" else None,
            collation=coll, collation_schema=coll_schema, position=i, comment=comment))
        elem_oids.append(eoid)
    return cols, elem_oids


# -- indexes and constraints -------------------------------------------------------------

_ELEMS_SQL = """
SELECT k.i, k.attnum, pg_catalog.pg_get_indexdef(%(ix)s, k.i::int, true),
       CASE WHEN k.i <= %(nkey)s AND NOT opc.opcdefault THEN opc.opcname END,
       CASE WHEN k.i <= %(nkey)s AND NOT opc.opcdefault THEN opcn.nspname END,
       CASE WHEN k.coll NOT IN (0, 100) AND (k.attnum = 0 OR k.coll <> a.attcollation)
            THEN co.collname END,
       CASE WHEN k.coll NOT IN (0, 100) AND (k.attnum = 0 OR k.coll <> a.attcollation)
            THEN con.nspname END,
       coalesce(k.opt, 0), a.attname
FROM unnest(%(key)s::int2[], %(cls)s::oid[], %(colls)s::oid[], %(opts)s::int2[])
     WITH ORDINALITY AS k(attnum, cls, coll, opt, i)
LEFT JOIN pg_catalog.pg_attribute a ON a.attrelid = %(rel)s AND a.attnum = k.attnum
     AND k.attnum <> 0
LEFT JOIN pg_catalog.pg_opclass opc ON opc.oid = k.cls
LEFT JOIN pg_catalog.pg_namespace opcn ON opcn.oid = opc.opcnamespace
LEFT JOIN pg_catalog.pg_collation co ON co.oid = k.coll
LEFT JOIN pg_catalog.pg_namespace con ON con.oid = co.collnamespace
ORDER BY k.i
"""

_INDEX_SQL = """
SELECT i.indexrelid, ic.relname, am.amname, i.indisunique, i.indnkeyatts,
       i.indkey::int2[], i.indclass::oid[], i.indcollation::oid[], i.indoption::int2[],
       pg_catalog.pg_get_expr(i.indpred, i.indrelid), {nnd},
       EXISTS (SELECT 1 FROM pg_catalog.pg_constraint c
               WHERE c.conindid = i.indexrelid AND c.conrelid = i.indrelid
                 AND c.contype IN ('p', 'u', 'x')) AS backs_constraint,
       EXISTS (SELECT 1 FROM pg_catalog.pg_inherits h
               WHERE h.inhrelid = i.indexrelid) AS inherited
FROM pg_catalog.pg_index i
JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid
JOIN pg_catalog.pg_am am ON am.oid = ic.relam
WHERE i.indrelid = %s
ORDER BY ic.relname
"""


class _IndexInfo:
    __slots__ = ("oid", "name", "method", "unique", "elements", "include", "predicate",
                 "nulls_not_distinct", "backs_constraint", "inherited")


def _capture_index_infos(conn, relid: int) -> Dict[int, _IndexInfo]:
    nnd = "i.indnullsnotdistinct" if _server_version(conn) >= 150000 else "false"
    out: Dict[int, _IndexInfo] = {}
    for r in conn.execute(_INDEX_SQL.format(nnd=nnd), (relid,)).fetchall():
        info = _IndexInfo()
        (info.oid, info.name, info.method, info.unique, nkey, key, cls, colls, opts,
         info.predicate, info.nulls_not_distinct, info.backs_constraint,
         info.inherited) = r
        info.elements, info.include = [], []
        rows = conn.execute(_ELEMS_SQL, {"ix": info.oid, "nkey": nkey, "key": list(key),
                                         "cls": list(cls), "colls": list(colls),
                                         "opts": list(opts), "rel": relid}).fetchall()
        for (i, attnum, text, opc, opcs, coll, colls_, opt, attname) in rows:
            if i > nkey:
                info.include.append(attname)
                continue
            desc = bool(opt & 1)          # INDOPTION_DESC
            info.elements.append(IndexElem(
                column=attname if attnum else None,
                expression=None if attnum else text,
                collation=coll, collation_schema=colls_,
                opclass=opc, opclass_schema=opcs,
                descending=desc, nulls_first=bool(opt & 2)))   # INDOPTION_NULLS_FIRST
        out[info.oid] = info
    return out


_CONS_SQL = """
SELECT con.conname, con.contype, con.condeferrable, con.condeferred, con.convalidated,
       con.connoinherit, con.conislocal, con.conparentid, con.conkey::int2[],
       con.conindid, fn.nspname, fc.relname, con.confrelid, con.confkey::int2[],
       con.confupdtype, con.confdeltype, con.confmatchtype,
       pg_catalog.pg_get_expr(con.conbin, con.conrelid),
       ARRAY(SELECT o.oprname FROM unnest(con.conexclop) WITH ORDINALITY x(op, i)
             JOIN pg_catalog.pg_operator o ON o.oid = x.op ORDER BY x.i),
       ARRAY(SELECT n.nspname FROM unnest(con.conexclop) WITH ORDINALITY x(op, i)
             JOIN pg_catalog.pg_operator o ON o.oid = x.op
             JOIN pg_catalog.pg_namespace n ON n.oid = o.oprnamespace ORDER BY x.i)
FROM pg_catalog.pg_constraint con
LEFT JOIN pg_catalog.pg_class fc ON fc.oid = con.confrelid
LEFT JOIN pg_catalog.pg_namespace fn ON fn.oid = fc.relnamespace
WHERE con.conrelid = %s AND con.contype IN ('p', 'u', 'c', 'f', 'x')
ORDER BY con.conname
"""

_CONTYPES = {"p": "primary_key", "u": "unique", "c": "check", "f": "foreign_key",
             "x": "exclusion"}


def _capture_constraints(conn, relid: int,
                         indexes: Dict[int, _IndexInfo]) -> List[ConstraintDef]:
    out: List[ConstraintDef] = []
    for r in conn.execute(_CONS_SQL, (relid,)).fetchall():
        (name, ctype, deferrable, deferred, validated, noinherit, islocal, parentid, key,
         indid, fschema, ftable, frelid, fkey, upd, dele, match, expr, ops, opschemas) = r
        con = ConstraintDef(name=name, kind=_CONTYPES[ctype], deferrable=deferrable,
                            deferred=deferred, validated=validated,
                            no_inherit=noinherit and ctype == "c",
                            inherited=(not islocal) or parentid != 0)
        if ctype in ("p", "u", "f"):
            con.columns = _names(conn, relid, key)
        if ctype in ("p", "u", "x"):
            info = indexes.get(indid)
            if info is None:  # pragma: no cover - the catalog guarantees it
                raise SchemaError(f"constraint {name!r}: backing index not found")
            con.include = list(info.include)
            con.nulls_not_distinct = bool(info.nulls_not_distinct)
            if ctype == "x":
                con.method = info.method
                con.predicate = info.predicate
                con.elements = [
                    IndexElem(**{**e.__dict__, "operator": op, "operator_schema": ops_})
                    for e, op, ops_ in zip(info.elements, ops, opschemas)]
        if ctype == "c":
            con.expression = expr
        if ctype == "f":
            con.ref_schema, con.ref_table = fschema, ftable
            con.ref_columns = _names(conn, frelid, fkey)
            con.on_update, con.on_delete, con.match = upd, dele, match
        out.append(con)
    return out


# -- sequences --------------------------------------------------------------------------

_SEQ_SQL = """
SELECT n.nspname, s.relname, a.attname, d.deptype = 'i',
       pg_catalog.format_type(q.seqtypid, NULL), q.seqstart, q.seqincrement,
       q.seqmin, q.seqmax, q.seqcache, q.seqcycle
FROM pg_catalog.pg_depend d
JOIN pg_catalog.pg_class s ON s.oid = d.objid AND s.relkind = 'S'
JOIN pg_catalog.pg_namespace n ON n.oid = s.relnamespace
JOIN pg_catalog.pg_sequence q ON q.seqrelid = s.oid
LEFT JOIN pg_catalog.pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
WHERE d.classid = 'pg_catalog.pg_class'::regclass
  AND d.refclassid = 'pg_catalog.pg_class'::regclass
  AND d.refobjid = %s AND d.deptype IN ('a', 'i')
ORDER BY s.relname
"""


def _capture_sequences(conn, relid: int) -> List[SequenceDef]:
    out = []
    for r in conn.execute(_SEQ_SQL, (relid,)).fetchall():
        (schema, name, col, ident, dtype, start, inc, mn, mx, cache, cycle) = r
        last, called = conn.execute(
            sql.SQL("SELECT last_value, is_called FROM {}").format(
                sql.Identifier(schema, name))).fetchone()
        out.append(SequenceDef(schema=schema, name=name, column=col, identity=ident,
                               data_type=dtype, start=start, increment=inc, min_value=mn,
                               max_value=mx, cache=cache, cycle=cycle, last_value=last,
                               is_called=called))
    return out


# -- user-defined types ---------------------------------------------------------------

_TYPE_SQL = """
SELECT t.oid, t.typarray, n.nspname, t.typname, t.typtype, t.typrelid, t.typbasetype,
       t.typtypmod,
       t.typnotnull, t.typdefault,
       CASE WHEN t.typtype = 'd' AND t.typcollation <> 0 AND t.typcollation <>
                 (SELECT b.typcollation FROM pg_catalog.pg_type b
                  WHERE b.oid = t.typbasetype) THEN co.collname END,
       CASE WHEN t.typtype = 'd' AND t.typcollation <> 0 AND t.typcollation <>
                 (SELECT b.typcollation FROM pg_catalog.pg_type b
                  WHERE b.oid = t.typbasetype) THEN con.nspname END,
       (SELECT e.extname FROM pg_catalog.pg_depend dep
        JOIN pg_catalog.pg_extension e ON e.oid = dep.refobjid
        WHERE dep.classid = 'pg_catalog.pg_type'::regclass AND dep.objid = t.oid
          AND dep.refclassid = 'pg_catalog.pg_extension'::regclass
          AND dep.deptype = 'e'),
       pg_catalog.obj_description(t.oid, 'pg_type')
FROM pg_catalog.pg_type t
JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace
LEFT JOIN pg_catalog.pg_collation co ON co.oid = t.typcollation
LEFT JOIN pg_catalog.pg_namespace con ON con.oid = co.collnamespace
WHERE t.oid = %s
"""

_TYPEREF_SQL = """
SELECT pg_catalog.format_type(t.oid, %(mod)s), (t.typelem <> 0 AND t.typlen = -1),
       et.oid, etn.nspname, et.typname, et.typtype
FROM pg_catalog.pg_type t
JOIN pg_catalog.pg_type et
  ON et.oid = CASE WHEN t.typelem <> 0 AND t.typlen = -1 THEN t.typelem ELSE t.oid END
JOIN pg_catalog.pg_namespace etn ON etn.oid = et.typnamespace
WHERE t.oid = %(oid)s
"""


def _type_ref(conn, oid: int, typmod: int) -> Tuple[TypeRef, int]:
    text, is_array, eoid, eschema, ename, ekind = conn.execute(
        _TYPEREF_SQL, {"oid": oid, "mod": typmod if typmod >= 0 else None}).fetchone()
    return (TypeRef(text=text, oid=oid, schema=eschema, name=ename, typmod=typmod,
                    is_array=bool(is_array), kind=ekind, builtin=eoid < FIRST_NORMAL_OID),
            eoid)


def _is_user_type(conn, oid: int) -> bool:
    if oid < FIRST_NORMAL_OID:
        return False
    row = conn.execute("SELECT n.nspname FROM pg_catalog.pg_type t JOIN "
                       "pg_catalog.pg_namespace n ON n.oid = t.typnamespace "
                       "WHERE t.oid = %s", (oid,)).fetchone()
    return row is not None and row[0] not in _SYSTEM_SCHEMAS


def _capture_type(conn, oid: int) -> Tuple[TypeDef, List[int]]:
    """One user-defined type and the OIDs of the types it depends on."""
    (oid, array_oid, schema, name, typtype, relid, basetype, typmod, notnull, default, coll,
     coll_schema, ext, comment) = conn.execute(_TYPE_SQL, (oid,)).fetchone()
    deps: List[int] = []
    tdef, deps = _capture_type_body(conn, oid, schema, name, typtype, relid, basetype,
                                    typmod, notnull, default, coll, coll_schema, ext,
                                    comment)
    tdef.oid, tdef.array_oid = oid, array_oid
    return tdef, deps


def _capture_type_body(conn, oid, schema, name, typtype, relid, basetype, typmod, notnull,
                       default, coll, coll_schema, ext, comment):
    deps: List[int] = []
    if ext is not None:
        return TypeDef(schema=schema, name=name, kind="extension", extension=ext,
                       comment=comment), deps
    if typtype == "e":
        labels = [r[0] for r in conn.execute(
            "SELECT enumlabel FROM pg_catalog.pg_enum WHERE enumtypid = %s "
            "ORDER BY enumsortorder", (oid,)).fetchall()]
        return TypeDef(schema=schema, name=name, kind="enum", labels=labels,
                       comment=comment), deps
    if typtype == "d":
        base, beoid = _type_ref(conn, basetype, typmod)
        deps.append(beoid)
        checks = [DomainCheck(n, e) for n, e in conn.execute(
            "SELECT conname, pg_catalog.pg_get_expr(conbin, 0) "
            "FROM pg_catalog.pg_constraint WHERE contypid = %s AND contype = 'c' "
            "ORDER BY conname", (oid,)).fetchall()]
        return TypeDef(schema=schema, name=name, kind="domain", base=base,
                       not_null=notnull, default=default, collation=coll,
                       collation_schema=coll_schema, checks=checks, comment=comment), deps
    if typtype == "c":
        attrs = []
        for aname, atyp, amod, acoll, acolls in conn.execute(
                "SELECT a.attname, a.atttypid, a.atttypmod, "
                "CASE WHEN a.attcollation <> t.typcollation THEN co.collname END, "
                "CASE WHEN a.attcollation <> t.typcollation THEN n.nspname END "
                "FROM pg_catalog.pg_attribute a "
                "JOIN pg_catalog.pg_type t ON t.oid = a.atttypid "
                "LEFT JOIN pg_catalog.pg_collation co ON co.oid = a.attcollation "
                "LEFT JOIN pg_catalog.pg_namespace n ON n.oid = co.collnamespace "
                "WHERE a.attrelid = %s AND a.attnum > 0 AND NOT a.attisdropped "
                "ORDER BY a.attnum", (relid,)).fetchall():
            ref, eoid = _type_ref(conn, atyp, amod)
            deps.append(eoid)
            attrs.append(AttributeDef(aname, ref, acoll, acolls))
        return TypeDef(schema=schema, name=name, kind="composite", attributes=attrs,
                       comment=comment), deps
    if typtype == "r":
        multi = ("(SELECT typname FROM pg_catalog.pg_type WHERE oid = r.rngmultitypid)"
                 if _server_version(conn) >= 140000 else "NULL")
        (sub, rcoll, rcolls, opc, opcs, diff, diffs, mname) = conn.execute(
            "SELECT r.rngsubtype, "
            "CASE WHEN r.rngcollation NOT IN (0, st.typcollation) THEN co.collname END, "
            "CASE WHEN r.rngcollation NOT IN (0, st.typcollation) THEN cn.nspname END, "
            "CASE WHEN NOT opc.opcdefault THEN opc.opcname END, "
            "CASE WHEN NOT opc.opcdefault THEN on_.nspname END, "
            "p.proname, pn.nspname, " + multi + " "
            "FROM pg_catalog.pg_range r "
            "JOIN pg_catalog.pg_type st ON st.oid = r.rngsubtype "
            "JOIN pg_catalog.pg_opclass opc ON opc.oid = r.rngsubopc "
            "JOIN pg_catalog.pg_namespace on_ ON on_.oid = opc.opcnamespace "
            "LEFT JOIN pg_catalog.pg_collation co ON co.oid = r.rngcollation "
            "LEFT JOIN pg_catalog.pg_namespace cn ON cn.oid = co.collnamespace "
            "LEFT JOIN pg_catalog.pg_proc p ON p.oid = r.rngsubdiff "
            "LEFT JOIN pg_catalog.pg_namespace pn ON pn.oid = p.pronamespace "
            "WHERE r.rngtypid = %s", (oid,)).fetchone()
        base, beoid = _type_ref(conn, sub, -1)
        deps.append(beoid)
        return TypeDef(schema=schema, name=name, kind="range", base=base, collation=rcoll,
                       collation_schema=rcolls, subtype_opclass=opc,
                       subtype_opclass_schema=opcs, subtype_diff=diff,
                       subtype_diff_schema=diffs, multirange_name=mname,
                       comment=comment), deps
    # Base types, multiranges and pseudo-types outside extensions: recorded so the
    # restore can check they exist, never created.
    return TypeDef(schema=schema, name=name, kind="base", comment=comment), deps


def capture_types(conn: psycopg.Connection, oids: Sequence[int]) -> List[TypeDef]:
    """User-defined types with these OIDs and everything they need, dependencies first.

    The order is a depth-first post-order from ``oids`` in the order given, so it is
    deterministic for a given table.
    """
    done: Dict[int, Optional[TypeDef]] = {}
    order: List[TypeDef] = []

    def visit(oid: int, stack: Tuple[int, ...]) -> None:
        if oid in done or oid in stack or not _is_user_type(conn, oid):
            return
        tdef, deps = _capture_type(conn, oid)
        for dep in deps:
            visit(dep, stack + (oid,))
        done[oid] = tdef
        order.append(tdef)

    for oid in oids:
        visit(oid, ())
    return order


# -- public entry points --------------------------------------------------------------

def _capture_one(conn: psycopg.Connection, schema: str, name: str) -> Optional[TableDef]:
    row = conn.execute(_REL_SQL, (schema, name)).fetchone()
    if row is None:
        return None
    (relid, relkind, persistence, ispartition, comment, partkey, bound, pschema,
     pname) = row
    if relkind not in ("r", "p"):
        raise SchemaError(f"{schema}.{name} is not a table (relkind {relkind!r})")
    with _search_path(conn, schema):
        columns, elem_oids = _capture_columns(conn, relid)
        infos = _capture_index_infos(conn, relid)
        constraints = _capture_constraints(conn, relid, infos)
        indexes = [IndexDef(name=i.name, method=i.method, elements=i.elements,
                            include=i.include, unique=i.unique,
                            nulls_not_distinct=bool(i.nulls_not_distinct),
                            predicate=i.predicate, inherited=i.inherited)
                   for i in infos.values() if not i.backs_constraint]
        indexes.sort(key=lambda i: i.name)
        sequences = _capture_sequences(conn, relid)
        types = capture_types(conn, elem_oids)
    kind = "partition" if ispartition else ("partitioned" if relkind == "p" else "table")
    return TableDef(schema=schema, name=name, kind=kind, unlogged=persistence == "u",
                    partition_key=partkey, partition_bound=bound,
                    parent_schema=pschema, parent_name=pname, columns=columns,
                    constraints=constraints, indexes=indexes, sequences=sequences,
                    types=types, comment=comment)


def capture_live_if_exists(conn: psycopg.Connection, schema: str,
                           name: str) -> Optional[TableDef]:
    """The live definition of ``schema.name``, or None when no such relation exists."""
    return _capture_one(conn, schema, name)


def capture_table(conn: psycopg.Connection, schema: str, name: str) -> TableDef:
    """The definition of the table ``schema.name`` (names exact, not patterns)."""
    tdef = _capture_one(conn, schema, name)
    if tdef is None:
        raise SchemaError(f"table {schema}.{name} does not exist")
    return tdef


def capture_tables(conn: psycopg.Connection,
                   names: Sequence[Tuple[str, str]]) -> List[TableDef]:
    """:func:`capture_table` for each ``(schema, name)``, in the order given."""
    return [capture_table(conn, s, n) for s, n in names]
