"""Capture what ``pg_dump -t`` keeps beyond columns, keys and indexes.

Triggers, row-level security policies, extended statistics, privileges (table and
column ACLs, as ``aclexplode`` gives them), INHERITS parents and storage parameters,
each with one query for all the tables of a schema (called by :mod:`.capture`, with
``search_path`` set to the table's schema, so expressions come out relative to it).
"""
from __future__ import annotations

from typing import Dict, List, Optional, Sequence

import psycopg

from .model import (Grant, PolicyDef, RelationName, StatisticsDef, StorageParam,
                    TriggerDef)


def storage_params(options: Optional[Sequence[str]]) -> List[StorageParam]:
    """``['fillfactor=70', ...]`` (reloptions) as structure, in the catalog's order."""
    out = []
    for opt in options or ():
        name, _, value = opt.partition("=")
        out.append(StorageParam(name, value))
    return out


_GRANT_COLS = """
CASE WHEN a.grantor = 0 THEN NULL ELSE pg_catalog.pg_get_userbyid(a.grantor) END,
CASE WHEN a.grantee = 0 THEN NULL ELSE pg_catalog.pg_get_userbyid(a.grantee) END,
a.privilege_type, a.is_grantable"""


def table_acls(conn: psycopg.Connection, relids: List[int]) -> Dict[int, Optional[List[Grant]]]:
    """relacl of each table as grants; None where it is NULL (the owner's default)."""
    out: Dict[int, Optional[List[Grant]]] = {r: None for r in relids}
    for relid, has, gr, ge, priv, grantable in conn.execute(
            f"SELECT c.oid, c.relacl IS NOT NULL, {_GRANT_COLS} "
            "FROM pg_catalog.pg_class c "
            "LEFT JOIN LATERAL pg_catalog.aclexplode(c.relacl) WITH ORDINALITY a ON true "
            "WHERE c.oid = ANY(%s) ORDER BY c.oid, a.ordinality", (relids,)).fetchall():
        if has:
            acl = out[relid] if out[relid] is not None else []
            if priv is not None:
                acl.append(Grant(privilege=priv, grantee=ge, grantor=gr,
                                 grantable=grantable))
            out[relid] = acl
    return out


def column_acls(conn: psycopg.Connection,
                relids: List[int]) -> Dict[tuple, List[Grant]]:
    """attacl of the columns that have one, by (relid, column name)."""
    out: Dict[tuple, List[Grant]] = {}
    for relid, attname, gr, ge, priv, grantable in conn.execute(
            f"SELECT at.attrelid, at.attname, {_GRANT_COLS} "
            "FROM pg_catalog.pg_attribute at "
            "CROSS JOIN LATERAL pg_catalog.aclexplode(at.attacl) WITH ORDINALITY a "
            "WHERE at.attrelid = ANY(%s) AND at.attnum > 0 AND NOT at.attisdropped "
            "AND at.attacl IS NOT NULL ORDER BY at.attrelid, at.attnum, a.ordinality",
            (relids,)).fetchall():
        out.setdefault((relid, attname), []).append(
            Grant(privilege=priv, grantee=ge, grantor=gr, grantable=grantable))
    return out


def inherits(conn: psycopg.Connection, relids: List[int]) -> Dict[int, List[RelationName]]:
    """INHERITS parents (partitioning aside), in declaration order."""
    out: Dict[int, List[RelationName]] = {r: [] for r in relids}
    for relid, schema, name in conn.execute(
            "SELECT i.inhrelid, n.nspname, p.relname FROM pg_catalog.pg_inherits i "
            "JOIN pg_catalog.pg_class c ON c.oid = i.inhrelid "
            "JOIN pg_catalog.pg_class p ON p.oid = i.inhparent "
            "JOIN pg_catalog.pg_namespace n ON n.oid = p.relnamespace "
            "WHERE i.inhrelid = ANY(%s) AND NOT c.relispartition "
            "ORDER BY i.inhrelid, i.inhseqno", (relids,)).fetchall():
        out[relid].append(RelationName(schema, name))
    return out


# pg_trigger.tgtype bits (src/include/catalog/pg_trigger.h)
_ROW, _BEFORE, _INSERT, _DELETE, _UPDATE, _TRUNCATE, _INSTEAD = 1, 2, 4, 8, 16, 32, 64


def _when_clause(triggerdef: str) -> Optional[str]:
    """The WHEN expression of a CREATE TRIGGER the server deparsed, as text."""
    import pglast
    from pglast.stream import RawStream
    stmt = pglast.parse_sql(triggerdef)[0].stmt
    if stmt.whenClause is None:
        return None
    return RawStream()(stmt.whenClause)


def triggers(conn: psycopg.Connection, relids: List[int]) -> Dict[int, List[TriggerDef]]:
    """User triggers (not the internal ones of foreign keys), by name."""
    out: Dict[int, List[TriggerDef]] = {r: [] for r in relids}
    parent = "t.tgparentid <> 0" if conn.info.server_version >= 130000 else "false"
    pyenc = conn.info.encoding
    rows = conn.execute(
        "SELECT t.tgrelid, t.tgname, t.tgtype, t.tgenabled, t.tgconstraint <> 0, "
        "t.tgdeferrable, t.tginitdeferred, t.tgoldtable, t.tgnewtable, t.tgnargs, "
        "t.tgargs, pn.nspname, p.proname, "
        "ARRAY(SELECT a.attname FROM unnest(t.tgattr::int2[]) WITH ORDINALITY k(n, i) "
        "      JOIN pg_catalog.pg_attribute a ON a.attrelid = t.tgrelid AND a.attnum = k.n "
        "      ORDER BY k.i), "
        "t.tgqual IS NOT NULL, pg_catalog.pg_get_triggerdef(t.oid, false), "
        f"{parent}, pg_catalog.obj_description(t.oid, 'pg_trigger') "
        "FROM pg_catalog.pg_trigger t "
        "JOIN pg_catalog.pg_proc p ON p.oid = t.tgfoid "
        "JOIN pg_catalog.pg_namespace pn ON pn.oid = p.pronamespace "
        "WHERE t.tgrelid = ANY(%s) AND NOT t.tgisinternal "
        "ORDER BY t.tgrelid, t.tgname", (relids,)).fetchall()
    for (relid, name, tgtype, enabled, is_con, deferrable, deferred, old, new, nargs,
         args, fschema, fname, cols, has_when, tdef, inherited, comment) in rows:
        timing = ("before" if tgtype & _BEFORE else
                  "instead of" if tgtype & _INSTEAD else "after")
        events = [e for e, bit in (("insert", _INSERT), ("update", _UPDATE),
                                   ("delete", _DELETE), ("truncate", _TRUNCATE))
                  if tgtype & bit]
        arguments = [bytes(a).decode(pyenc) for a in bytes(args).split(b"\0")[:nargs]]
        out[relid].append(TriggerDef(
            name=name, timing=timing, events=events, function_schema=fschema,
            function_name=fname, for_each_row=bool(tgtype & _ROW), columns=list(cols),
            when=_when_clause(tdef) if has_when else None, arguments=arguments,
            enabled=enabled, constraint=is_con, deferrable=deferrable,
            deferred=deferred, old_table=old, new_table=new, inherited=inherited,
            comment=comment))
    return out


_POLCMD = {"*": "all", "r": "select", "a": "insert", "w": "update", "d": "delete"}


def policies(conn: psycopg.Connection, relids: List[int]) -> Dict[int, List[PolicyDef]]:
    out: Dict[int, List[PolicyDef]] = {r: [] for r in relids}
    for relid, name, cmd, permissive, roles, using, check, comment in conn.execute(
            "SELECT p.polrelid, p.polname, p.polcmd, p.polpermissive, "
            "ARRAY(SELECT pg_catalog.pg_get_userbyid(r) FROM unnest(p.polroles) "
            "      WITH ORDINALITY x(r, i) WHERE r <> 0 ORDER BY x.i), "
            "pg_catalog.pg_get_expr(p.polqual, p.polrelid), "
            "pg_catalog.pg_get_expr(p.polwithcheck, p.polrelid), "
            "pg_catalog.obj_description(p.oid, 'pg_policy') "
            "FROM pg_catalog.pg_policy p WHERE p.polrelid = ANY(%s) "
            "ORDER BY p.polrelid, p.polname", (relids,)).fetchall():
        out[relid].append(PolicyDef(name=name, command=_POLCMD[cmd], permissive=permissive,
                                    roles=list(roles), using=using, with_check=check,
                                    comment=comment))
    return out


def statistics(conn: psycopg.Connection, relids: List[int]) -> Dict[int, List[StatisticsDef]]:
    out: Dict[int, List[StatisticsDef]] = {r: [] for r in relids}
    v = conn.info.server_version
    exprs = ("pg_catalog.pg_get_statisticsobjdef_expressions(s.oid)" if v >= 140000
             else "NULL::text[]")
    target = "s.stxstattarget" if v >= 130000 else "-1"
    for relid, schema, name, kinds, cols, ex, tgt, comment in conn.execute(
            "SELECT s.stxrelid, n.nspname, s.stxname, s.stxkind::text[], "
            "ARRAY(SELECT a.attname FROM unnest(s.stxkeys::int2[]) WITH ORDINALITY k(c, i) "
            "      JOIN pg_catalog.pg_attribute a ON a.attrelid = s.stxrelid "
            "      AND a.attnum = k.c ORDER BY k.i), "
            f"{exprs}, {target}, pg_catalog.obj_description(s.oid, 'pg_statistic_ext') "
            "FROM pg_catalog.pg_statistic_ext s "
            "JOIN pg_catalog.pg_namespace n ON n.oid = s.stxnamespace "
            "WHERE s.stxrelid = ANY(%s) ORDER BY s.stxrelid, n.nspname, s.stxname",
            (relids,)).fetchall():
        out[relid].append(StatisticsDef(
            schema=schema, name=name, kinds=list(kinds), columns=list(cols),
            expressions=list(ex or ()),
            target=tgt if tgt is not None and tgt >= 0 else None, comment=comment))
    return out
