"""Capture table definitions from the catalog of a live database (psycopg 3).

Expressions (defaults, CHECKs, generated columns, index expressions, partition keys and
bounds) are deparsed by the server with ``search_path`` set to the table's own schema,
so references to objects of that schema come out unqualified and everything else
qualified.  The DDL layer sets ``search_path`` to the target schema before it runs, so a
table restored into another schema finds its own sequences and types there.

:func:`capture_tables` works per schema with one query per kind of object (relations,
columns, indexes with their elements, constraints, sequences and their values) for all
the tables of that schema; user-defined types are captured once per call.

Supports PostgreSQL 12 and later (generated columns, ``pg_partition_tree``).
"""
from __future__ import annotations

import copy
from contextlib import contextmanager
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

import psycopg
from psycopg import sql

from ..errors import SchemaError
from . import capture_extras as extras
from .model import (COLUMN_OPTIONS, FIRST_NORMAL_OID, AttributeDef, ColumnDef, ConstraintDef, DomainCheck,
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


# -- relations ---------------------------------------------------------------------------

_REL_SQL = """
SELECT c.relname, c.oid, c.relkind, c.relpersistence, c.relispartition,
       pg_catalog.obj_description(c.oid, 'pg_class'),
       CASE WHEN c.relkind = 'p' THEN pg_catalog.pg_get_partkeydef(c.oid) END,
       CASE WHEN c.relispartition THEN pg_catalog.pg_get_expr(c.relpartbound, c.oid) END,
       pn.nspname, pc.relname, c.reloptions,
       (SELECT t.reloptions FROM pg_catalog.pg_class t WHERE t.oid = c.reltoastrelid),
       c.relreplident, c.relrowsecurity, c.relforcerowsecurity,
       pg_catalog.pg_get_userbyid(c.relowner)
FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_catalog.pg_inherits i ON c.relispartition AND i.inhrelid = c.oid
LEFT JOIN pg_catalog.pg_class pc ON pc.oid = i.inhparent
LEFT JOIN pg_catalog.pg_namespace pn ON pn.oid = pc.relnamespace
WHERE n.nspname = %s AND c.relname = ANY(%s)
"""

# Columns with their (element) type.  Arrays are recognised as the array type of their
# element (not by attndims, which is not reliable, nor by typelem alone: int2vector and
# oidvector have a typelem and a variable length but are types of their own).
_ARRAY = ("t.typelem <> 0 AND t.typlen = -1 AND EXISTS (SELECT 1 FROM pg_catalog.pg_type x "
          "WHERE x.oid = t.typelem AND x.typarray = t.oid)")

_COLS_SQL = """
SELECT a.attrelid, a.attname,
       pg_catalog.format_type(a.atttypid, a.atttypmod), a.atttypid, a.atttypmod,
       a.attndims, a.attnotnull, a.attidentity, a.attgenerated,
       pg_catalog.pg_get_expr(d.adbin, d.adrelid),
       CASE WHEN a.attcollation <> t.typcollation AND a.attcollation <> 0
            THEN co.collname END,
       CASE WHEN a.attcollation <> t.typcollation AND a.attcollation <> 0
            THEN con.nspname END,
       pg_catalog.col_description(a.attrelid, a.attnum),
       ({_ARRAY}) AS is_array,
       et.oid, etn.nspname, et.typname, et.typtype,
       CASE WHEN a.attstorage <> t.typstorage THEN a.attstorage::text END,
       {compression}, CASE WHEN a.attstattarget >= 0 THEN a.attstattarget::int END,
       NOT a.attislocal, a.attoptions
FROM pg_catalog.pg_attribute a
JOIN pg_catalog.pg_type t ON t.oid = a.atttypid
JOIN pg_catalog.pg_type et
  ON et.oid = CASE WHEN {_ARRAY} THEN t.typelem ELSE t.oid END
JOIN pg_catalog.pg_namespace etn ON etn.oid = et.typnamespace
LEFT JOIN pg_catalog.pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
LEFT JOIN pg_catalog.pg_collation co ON co.oid = a.attcollation
LEFT JOIN pg_catalog.pg_namespace con ON con.oid = co.collnamespace
WHERE a.attrelid = ANY(%s) AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attrelid, a.attnum
""".replace("{_ARRAY}", _ARRAY)


def _capture_columns(conn, relids: List[int]) -> Dict[int, Tuple[List[ColumnDef], List[int]]]:
    out: Dict[int, Tuple[List[ColumnDef], List[int]]] = {r: ([], []) for r in relids}
    compression = ("NULLIF(a.attcompression::text, '')" if _server_version(conn) >= 140000
                   else "NULL::text")
    acls = extras.column_acls(conn, relids)
    for r in conn.execute(_COLS_SQL.replace("{compression}", compression),
                          (relids,)).fetchall():
        (relid, name, typ, typoid, typmod, ndims, notnull, identity, generated, expr,
         coll, coll_schema, comment, is_array, eoid, eschema, ename, ekind, storage,
         compress, stattarget, inherited, attoptions) = r
        cols, elem_oids = out[relid]
        cols.append(ColumnDef(
            name=name, type=typ, type_oid=typoid, type_schema=eschema, type_elem=ename,
            typmod=typmod, ndims=ndims, is_array=bool(is_array), type_kind=ekind,
            builtin=eoid < FIRST_NORMAL_OID, not_null=notnull,
            default=expr if generated != "s" else None,
            identity=identity or None,
            generated=expr if generated == "s" else None,
            collation=coll, collation_schema=coll_schema, position=len(cols) + 1,
            comment=comment, storage=storage, compression=compress,
            statistics=stattarget, inherited=inherited, acl=acls.get((relid, name)),
            options=[o for o in extras.storage_params(attoptions)
                     if o.name in COLUMN_OPTIONS]))
        elem_oids.append(eoid)
    return out


# -- indexes and constraints -------------------------------------------------------------

_INDEX_SQL = """
SELECT i.indrelid, i.indexrelid, ic.relname, am.amname, i.indisunique,
       pg_catalog.pg_get_expr(i.indpred, i.indrelid), {nnd},
       EXISTS (SELECT 1 FROM pg_catalog.pg_constraint c
               WHERE c.conindid = i.indexrelid AND c.conrelid = i.indrelid
                 AND c.contype IN ('p', 'u', 'x')) AS backs_constraint,
       EXISTS (SELECT 1 FROM pg_catalog.pg_inherits h
               WHERE h.inhrelid = i.indexrelid) AS inherited,
       ic.reloptions, pg_catalog.obj_description(i.indexrelid, 'pg_class'),
       i.indisclustered, i.indisreplident
FROM pg_catalog.pg_index i
JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid
JOIN pg_catalog.pg_am am ON am.oid = ic.relam
WHERE i.indrelid = ANY(%s)
ORDER BY i.indrelid, ic.relname
"""

# One row per index column.  indclass, indcollation and indoption have entries for the
# key columns only (the first indnkeyatts); the rest of indkey is INCLUDE columns.
# Only an expression is deparsed (pg_get_indexdef costs tens of microseconds a call:
# at 10,000 indexes the query took four times as long with every column deparsed).
_ELEMS_SQL = """
SELECT i.indexrelid, k.i, i.indnkeyatts, k.attnum,
       CASE WHEN k.attnum = 0 THEN pg_catalog.pg_get_indexdef(i.indexrelid, k.i::int, true)
       END,
       CASE WHEN k.i <= i.indnkeyatts AND NOT opc.opcdefault THEN opc.opcname END,
       CASE WHEN k.i <= i.indnkeyatts AND NOT opc.opcdefault THEN opcn.nspname END,
       CASE WHEN k.coll NOT IN (0, 100) AND (k.attnum = 0 OR k.coll <> a.attcollation)
            THEN co.collname END,
       CASE WHEN k.coll NOT IN (0, 100) AND (k.attnum = 0 OR k.coll <> a.attcollation)
            THEN con.nspname END,
       coalesce(k.opt, 0), a.attname
FROM pg_catalog.pg_index i
CROSS JOIN LATERAL unnest(i.indkey::int2[], i.indclass::oid[], i.indcollation::oid[],
                          i.indoption::int2[])
     WITH ORDINALITY AS k(attnum, cls, coll, opt, i)
LEFT JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
     AND k.attnum <> 0
LEFT JOIN pg_catalog.pg_opclass opc ON opc.oid = k.cls
LEFT JOIN pg_catalog.pg_namespace opcn ON opcn.oid = opc.opcnamespace
LEFT JOIN pg_catalog.pg_collation co ON co.oid = k.coll
LEFT JOIN pg_catalog.pg_namespace con ON con.oid = co.collnamespace
WHERE i.indrelid = ANY(%s)
ORDER BY i.indexrelid, k.i
"""


class _IndexInfo:
    __slots__ = ("relid", "oid", "name", "method", "unique", "elements", "include",
                 "predicate", "nulls_not_distinct", "backs_constraint", "inherited",
                 "options", "comment", "clustered", "replident")


def _capture_index_infos(conn, relids: List[int]) -> Dict[int, _IndexInfo]:
    nnd = "i.indnullsnotdistinct" if _server_version(conn) >= 150000 else "false"
    out: Dict[int, _IndexInfo] = {}
    for r in conn.execute(_INDEX_SQL.format(nnd=nnd), (relids,)).fetchall():
        info = _IndexInfo()
        (info.relid, info.oid, info.name, info.method, info.unique, info.predicate,
         info.nulls_not_distinct, info.backs_constraint, info.inherited, options,
         info.comment, info.clustered, info.replident) = r
        info.options = extras.storage_params(options)
        info.elements, info.include = [], []
        out[info.oid] = info
    for (ixoid, i, nkey, attnum, text, opc, opcs, coll, colls, opt,
         attname) in conn.execute(_ELEMS_SQL, (relids,)).fetchall():
        info = out[ixoid]
        if i > nkey:
            info.include.append(attname)
            continue
        info.elements.append(IndexElem(
            column=attname if attnum else None,
            expression=None if attnum else text,
            collation=coll, collation_schema=colls,
            opclass=opc, opclass_schema=opcs,
            descending=bool(opt & 1),           # INDOPTION_DESC
            nulls_first=bool(opt & 2)))         # INDOPTION_NULLS_FIRST
    return out


_CONS_SQL = """
SELECT con.conrelid, con.conname, con.contype, con.condeferrable, con.condeferred,
       con.convalidated, con.connoinherit, con.conislocal, con.conparentid,
       CASE WHEN con.contype IN ('p', 'u', 'f') THEN
       ARRAY(SELECT a.attname FROM unnest(con.conkey) WITH ORDINALITY k(n, i)
             JOIN pg_catalog.pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.n
             ORDER BY k.i) END,
       con.conindid, fn.nspname, fc.relname,
       CASE WHEN con.contype = 'f' THEN
       ARRAY(SELECT a.attname FROM unnest(con.confkey) WITH ORDINALITY k(n, i)
             JOIN pg_catalog.pg_attribute a ON a.attrelid = con.confrelid AND a.attnum = k.n
             ORDER BY k.i) END,
       con.confupdtype, con.confdeltype, con.confmatchtype,
       pg_catalog.pg_get_expr(con.conbin, con.conrelid),
       con.oid, pg_catalog.obj_description(con.oid, 'pg_constraint')
FROM pg_catalog.pg_constraint con
LEFT JOIN pg_catalog.pg_class fc ON fc.oid = con.confrelid
LEFT JOIN pg_catalog.pg_namespace fn ON fn.oid = fc.relnamespace
WHERE con.conrelid = ANY(%s) AND con.contype IN ('p', 'u', 'c', 'f', 'x')
"""
# The key names are looked up only for the kinds of constraint that have them, the
# operators of exclusion constraints by a query of their own (_EXCL_SQL), and there is
# no ORDER BY (sorted here): at 10,000 tables on PostgreSQL 15 the query took 2 s with
# the operators' sub-selects in it (even where never run) and the rows read in conrelid
# order through the index, 0.3 s like this.

_EXCL_SQL = """
SELECT con.oid,
       ARRAY(SELECT o.oprname FROM unnest(con.conexclop) WITH ORDINALITY x(op, i)
             JOIN pg_catalog.pg_operator o ON o.oid = x.op ORDER BY x.i),
       ARRAY(SELECT n.nspname FROM unnest(con.conexclop) WITH ORDINALITY x(op, i)
             JOIN pg_catalog.pg_operator o ON o.oid = x.op
             JOIN pg_catalog.pg_namespace n ON n.oid = o.oprnamespace ORDER BY x.i)
FROM pg_catalog.pg_constraint con
WHERE con.oid = ANY(%s)
"""

_CONTYPES = {"p": "primary_key", "u": "unique", "c": "check", "f": "foreign_key",
             "x": "exclusion"}


def _capture_constraints(conn, relids: List[int],
                         indexes: Dict[int, _IndexInfo]) -> Dict[int, List[ConstraintDef]]:
    out: Dict[int, List[ConstraintDef]] = {r: [] for r in relids}
    rows = sorted(conn.execute(_CONS_SQL, (relids,)).fetchall(), key=lambda r: (r[0], r[1]))
    exclusion = [r[-2] for r in rows if r[2] == "x"]
    operators = ({oid: (ops, schemas) for oid, ops, schemas in
                  conn.execute(_EXCL_SQL, (exclusion,)).fetchall()} if exclusion else {})
    for r in rows:
        (relid, name, ctype, deferrable, deferred, validated, noinherit, islocal, parentid,
         keynames, indid, fschema, ftable, fkeynames, upd, dele, match, expr, oid,
         comment) = r
        ops, opschemas = operators.get(oid, ((), ()))
        con = ConstraintDef(name=name, kind=_CONTYPES[ctype], deferrable=deferrable,
                            deferred=deferred, validated=validated,
                            no_inherit=noinherit and ctype == "c",
                            inherited=(not islocal) or parentid != 0, comment=comment)
        if ctype in ("p", "u", "f"):
            con.columns = list(keynames)
        if ctype in ("p", "u", "x"):
            info = indexes.get(indid)
            if info is None:  # pragma: no cover - the catalog guarantees it
                raise SchemaError(f"constraint {name!r}: backing index not found")
            con.include = list(info.include)
            con.nulls_not_distinct = bool(info.nulls_not_distinct)
            con.index_options = list(info.options)
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
            con.ref_columns = list(fkeynames)
            con.on_update, con.on_delete, con.match = upd, dele, match
        out[relid].append(con)
    return out


# -- sequences --------------------------------------------------------------------------

_SEQ_SQL = """
SELECT d.refobjid, n.nspname, s.relname, a.attname, d.deptype = 'i',
       pg_catalog.format_type(q.seqtypid, NULL), q.seqstart, q.seqincrement,
       q.seqmin, q.seqmax, q.seqcache, q.seqcycle,
       pg_catalog.obj_description(s.oid, 'pg_class')
FROM pg_catalog.pg_depend d
JOIN pg_catalog.pg_class s ON s.oid = d.objid AND s.relkind = 'S'
JOIN pg_catalog.pg_namespace n ON n.oid = s.relnamespace
JOIN pg_catalog.pg_sequence q ON q.seqrelid = s.oid
LEFT JOIN pg_catalog.pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
WHERE d.classid = 'pg_catalog.pg_class'::regclass
  AND d.refclassid = 'pg_catalog.pg_class'::regclass
  AND d.refobjid = ANY(%s) AND d.deptype IN ('a', 'i')
ORDER BY d.refobjid, s.relname
"""


def _capture_sequences(conn, relids: List[int]) -> Dict[int, List[SequenceDef]]:
    out: Dict[int, List[SequenceDef]] = {r: [] for r in relids}
    seqs: List[SequenceDef] = []
    for r in conn.execute(_SEQ_SQL, (relids,)).fetchall():
        (relid, schema, name, col, ident, dtype, start, inc, mn, mx, cache, cycle,
         comment) = r
        s = SequenceDef(schema=schema, name=name, column=col, identity=ident,
                        data_type=dtype, start=start, increment=inc, min_value=mn,
                        max_value=mx, cache=cache, cycle=cycle, comment=comment)
        out[relid].append(s)
        seqs.append(s)
    if seqs:
        _sequence_states(conn, seqs)
    return out


def _sequence_states(conn, seqs: List[SequenceDef]) -> None:
    """Each sequence's state (last_value, is_called), which only the sequence itself
    holds: ``SELECT ... FROM seq`` (an ACCESS SHARE lock, as pg_dump takes;
    ``pg_sequence_last_value`` would take ROW EXCLUSIVE), a UNION of up to
    :data:`_SEQ_BATCH` sequences per query.  One UNION of all of them took 0.3 s at
    1,000 sequences (its planning grows faster than its branches), batches of 100
    0.07 s."""
    for lo in range(0, len(seqs), _SEQ_BATCH):
        batch = seqs[lo:lo + _SEQ_BATCH]
        query = sql.SQL(" UNION ALL ").join(
            sql.SQL("SELECT {}::int, last_value, is_called FROM {}").format(
                sql.Literal(k), sql.Identifier(s.schema, s.name))
            for k, s in enumerate(batch))
        for k, last, called in conn.execute(query).fetchall():
            batch[k].last_value, batch[k].is_called = last, called


_SEQ_BATCH = 100


# -- user-defined types ---------------------------------------------------------------

_TYPE_SQL = """
SELECT t.oid, t.typarray, n.nspname, t.typname, t.typtype, t.typrelid, t.typbasetype,
       t.typtypmod,
       t.typnotnull, pg_catalog.pg_get_expr(t.typdefaultbin, 0),
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
SELECT pg_catalog.format_type(t.oid, %(mod)s), ({_ARRAY}),
       et.oid, etn.nspname, et.typname, et.typtype
FROM pg_catalog.pg_type t
JOIN pg_catalog.pg_type et
  ON et.oid = CASE WHEN {_ARRAY} THEN t.typelem ELSE t.oid END
JOIN pg_catalog.pg_namespace etn ON etn.oid = et.typnamespace
WHERE t.oid = %(oid)s
""".replace("{_ARRAY}", _ARRAY)


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


def capture_types(conn: psycopg.Connection, oids: Sequence[int], *,
                  _cache: Optional[dict] = None) -> List[TypeDef]:
    """User-defined types with these OIDs and everything they need, dependencies first.

    The order is a depth-first post-order from ``oids`` in the order given, so it is
    deterministic for a given table.  Built-in types are left out.
    """
    cache = {} if _cache is None else _cache    # oid -> (TypeDef, deps) or None
    done = set()
    order: List[TypeDef] = []

    def visit(oid: int, stack: Tuple[int, ...]) -> None:
        if oid in done or oid in stack:
            return
        if oid not in cache:
            cache[oid] = _capture_type(conn, oid) if _is_user_type(conn, oid) else None
        entry = cache[oid]
        if entry is None:
            return
        tdef, deps = entry
        for dep in deps:
            visit(dep, stack + (oid,))
        done.add(oid)
        order.append(copy.deepcopy(tdef))

    for oid in oids:
        visit(oid, ())
    return order


# -- public entry points --------------------------------------------------------------

def _types_for(conn, elem_oids: Sequence[int], cache: dict) -> List[TypeDef]:
    return capture_types(conn, elem_oids, _cache=cache)


def _capture_schema(conn: psycopg.Connection, schema: str, names: Sequence[str],
                    type_cache: dict) -> Dict[str, Optional[TableDef]]:
    out: Dict[str, Optional[TableDef]] = {n: None for n in names}
    rels = {r[0]: r[1:] for r in conn.execute(_REL_SQL, (schema, list(names))).fetchall()}
    for name, (relid, relkind, *_rest) in rels.items():
        if relkind not in ("r", "p"):
            raise SchemaError(f"{schema}.{name} is not a table (relkind {relkind!r})")
    if not rels:
        return out
    relids = [rels[n][0] for n in names if n in rels]
    with _search_path(conn, schema):
        columns = _capture_columns(conn, relids)
        infos = _capture_index_infos(conn, relids)
        constraints = _capture_constraints(conn, relids, infos)
        sequences = _capture_sequences(conn, relids)
        types = {relid: _types_for(conn, columns[relid][1], type_cache) for relid in relids}
        triggers = extras.triggers(conn, relids)
        policies = extras.policies(conn, relids)
        statistics = extras.statistics(conn, relids)
        acls = extras.table_acls(conn, relids)
        parents = extras.inherits(conn, relids)
    by_relid: Dict[int, List[_IndexInfo]] = {}
    for i in infos.values():
        by_relid.setdefault(i.relid, []).append(i)
    for name in names:
        if name not in rels:
            continue
        (relid, relkind, persistence, ispartition, comment, partkey, bound, pschema,
         pname, options, toast_options, replident, rls, rls_forced, owner) = rels[name]
        indexes = sorted((IndexDef(name=i.name, method=i.method, elements=i.elements,
                                   include=i.include, unique=i.unique,
                                   nulls_not_distinct=bool(i.nulls_not_distinct),
                                   predicate=i.predicate, inherited=i.inherited,
                                   options=i.options, comment=i.comment)
                          for i in by_relid.get(relid, ())
                          if not i.backs_constraint),
                         key=lambda i: i.name)
        mine = by_relid.get(relid, [])
        clustered = next((i.name for i in mine if i.clustered), None)
        replident_index = next((i.name for i in mine if i.replident), None)
        kind = "partition" if ispartition else ("partitioned" if relkind == "p" else "table")
        out[name] = TableDef(
            schema=schema, name=name, kind=kind, unlogged=persistence == "u",
            partition_key=partkey, partition_bound=bound, parent_schema=pschema,
            parent_name=pname, columns=columns[relid][0], constraints=constraints[relid],
            indexes=indexes, sequences=sequences[relid], types=types[relid],
            comment=comment, options=extras.storage_params(options),
            toast_options=extras.storage_params(toast_options), inherits=parents[relid],
            replica_identity=replident,
            replica_identity_index=replident_index if replident == "i" else None,
            clustered_index=clustered, triggers=triggers[relid], rls_enabled=rls,
            rls_forced=rls_forced, policies=policies[relid],
            statistics=statistics[relid], owner=owner, acl=acls[relid])
    return out


def _capture_many(conn: psycopg.Connection,
                  names: Sequence[Tuple[str, str]]) -> List[Optional[TableDef]]:
    by_schema: Dict[str, Dict[str, None]] = {}     # names in order, each once
    for schema, name in names:
        if not isinstance(schema, str) or not isinstance(name, str):
            raise SchemaError(f"table names are (schema, name) strings, not "
                              f"{(schema, name)!r}")
        by_schema.setdefault(schema, {})[name] = None
    type_cache: dict = {}
    found: Dict[Tuple[str, str], Optional[TableDef]] = {}
    for schema, tnames in by_schema.items():
        for name, tdef in _capture_schema(conn, schema, list(tnames), type_cache).items():
            found[(schema, name)] = tdef
    return [found[(s, n)] for s, n in names]


def capture_live_if_exists(conn: psycopg.Connection, schema: str,
                           name: str) -> Optional[TableDef]:
    """The live definition of ``schema.name``, or None when no such relation exists
    (a relation that exists but is not a table is a :class:`SchemaError`)."""
    return _capture_many(conn, [(schema, name)])[0]


def capture_table(conn: psycopg.Connection, schema: str, name: str) -> TableDef:
    """The definition of the table ``schema.name`` (names exact, not patterns)."""
    return capture_tables(conn, [(schema, name)])[0]


def capture_tables(conn: psycopg.Connection,
                   names: Sequence[Tuple[str, str]]) -> List[TableDef]:
    """:func:`capture_table` for each ``(schema, name)``, in the order given, with one
    query per kind of object per schema."""
    out = []
    for (schema, name), tdef in zip(names, _capture_many(conn, names)):
        if tdef is None:
            raise SchemaError(f"table {schema}.{name} does not exist")
        out.append(tdef)
    return out
