"""Small questions to a live database's catalog that dump and restore ask.

Kept apart from :mod:`.capture` (which reads whole table definitions): these look up
one fact each -- does a relation exist, which foreign keys point at a table, which
OIDs a set of types or sequences has -- and :func:`lock_if_exists` takes the lock
under which a restore then reads a live table's definition.  The dump's planning
asks its questions for all tables (or types) at once: :func:`type_facts`,
:func:`partition_trees`, :func:`relation_sizes`; and the free-standing
sequences it records with their state (:func:`free_sequences`).
"""
from __future__ import annotations

import weakref
from typing import Any, Dict, Iterable, List, NamedTuple, Optional, Sequence, Tuple

import psycopg
from psycopg import sql

#: Schemas nothing from an archive may be created in or written to: PostgreSQL
#: reserves every name starting with ``pg_`` (pg_catalog, pg_toast, pg_temp_N, ...),
#: and information_schema belongs to the server.
def reserved_schema(name: str) -> bool:
    return name.startswith("pg_") or name == "information_schema"


def relation_exists(conn: psycopg.Connection, schema: str, name: str) -> bool:
    return relation_oid(conn, schema, name) is not None


_RELATION_OID_SQL = (
    "SELECT c.oid FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n "
    "ON n.oid = c.relnamespace WHERE n.nspname = %s AND c.relname = %s")


_RELATION_OID_PREPARE = (
    "PREPARE dumpcodec_relation_oid(pg_catalog.name, pg_catalog.name) AS "
    + _RELATION_OID_SQL.replace("%s", "$1", 1).replace("%s", "$2", 1))
#: the connections :data:`_RELATION_OID_PREPARE` ran on
_OID_PREPARED: "weakref.WeakSet[psycopg.Connection]" = weakref.WeakSet()


def relation_oid(conn: psycopg.Connection, schema: str, name: str) -> Optional[int]:
    row = conn.execute(_RELATION_OID_SQL, (schema, name)).fetchone()
    return None if row is None else row[0]


def existing_relations(conn: psycopg.Connection,
                       names: Sequence[Tuple[str, str]]) -> set:
    """The (schema, name) pairs of ``names`` that exist as relations."""
    if not names:
        return set()
    return {(s, n) for s, n in conn.execute(
        "SELECT n.nspname, c.relname FROM pg_catalog.pg_class c "
        "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
        "JOIN ROWS FROM (pg_catalog.unnest(%s::pg_catalog.text[]), "
        "pg_catalog.unnest(%s::pg_catalog.text[])) AS w(s, t) "
        "ON w.s = n.nspname AND w.t = c.relname",
        ([s for s, _ in names], [t for _, t in names])).fetchall()}


def namespace_oids(conn: psycopg.Connection, names: Iterable[str]) -> List[int]:
    return [r[0] for r in conn.execute(
        "SELECT oid FROM pg_catalog.pg_namespace WHERE nspname = ANY(%s)",
        (list(names),)).fetchall()]


def lock_if_exists(conn: psycopg.Connection, schema: str, name: str,
                   mode: str, *, begin: bool = False) -> Optional[int]:
    """Lock ``schema.name`` in ``mode`` (inside the caller's transaction; ``begin``:
    open it first, in the same round trip) and return its OID, or None when there is
    no such relation.

    Taken before the definition is read, so that a concurrent DROP (two restores
    replacing one table at once) waits instead of pulling the catalog rows away from
    under the capture; LOCK resolves the name again after waiting, so a table
    replaced meanwhile is the new one.
    """
    if mode not in ("ACCESS EXCLUSIVE", "ROW EXCLUSIVE", "ACCESS SHARE"):
        raise ValueError(f"lock mode {mode!r}")
    if begin:
        query: Any = _RELATION_OID_SQL
        params: Any = (schema, name)
        if conn.prepare_threshold is None:
            # once a table: prepared once a connection (planning the join was most of
            # the query's 0.4 ms on the server); psycopg's own preparing is off on such
            # a connection (it would DEALLOCATE ALL after DDL)
            if conn not in _OID_PREPARED:
                conn.execute(_RELATION_OID_PREPARE)
                _OID_PREPARED.add(conn)
            query = sql.SQL("EXECUTE dumpcodec_relation_oid({}, {})").format(
                sql.Literal(schema), sql.Literal(name))
            params = None
        with conn.pipeline():
            conn.execute("BEGIN")
            cur = conn.execute(query, params)
        if cur.fetchone() is None:
            return None
    elif relation_oid(conn, schema, name) is None:
        return None
    conn.execute("SAVEPOINT dumpcodec_lock")
    try:
        conn.execute(sql.SQL("LOCK TABLE {} IN {} MODE").format(
            sql.Identifier(schema, name), sql.SQL(mode)))
    except psycopg.errors.UndefinedTable:
        conn.execute("ROLLBACK TO SAVEPOINT dumpcodec_lock")
        return None
    except psycopg.errors.WrongObjectType:
        # not a table (a view, a sequence): the caller's capture says so
        conn.execute("ROLLBACK TO SAVEPOINT dumpcodec_lock")
    conn.execute("RELEASE SAVEPOINT dumpcodec_lock")
    return relation_oid(conn, schema, name)


def referencing_fks(conn: psycopg.Connection, schema: str,
                    name: str) -> List[Tuple[str, str, str, str]]:
    """Foreign keys of *other* tables that point at ``schema.name``:
    ``(schema, table, constraint name, pg_get_constraintdef text)``."""
    return conn.execute(
        """SELECT cn.nspname, cr.relname, c.conname, pg_catalog.pg_get_constraintdef(c.oid)
           FROM pg_catalog.pg_constraint c
           JOIN pg_catalog.pg_class cr ON cr.oid = c.conrelid
           JOIN pg_catalog.pg_namespace cn ON cn.oid = cr.relnamespace
           WHERE c.contype = 'f' AND c.confrelid = (
               SELECT t.oid FROM pg_catalog.pg_class t JOIN pg_catalog.pg_namespace n
               ON n.oid = t.relnamespace WHERE n.nspname = %s AND t.relname = %s)
             AND c.conrelid <> c.confrelid AND c.conparentid = 0""",
        (schema, name)).fetchall()


def constraint_exists(conn: psycopg.Connection, schema: str, table: str,
                      name: str) -> bool:
    return conn.execute(
        "SELECT 1 FROM pg_catalog.pg_constraint c JOIN pg_catalog.pg_class t "
        "ON t.oid = c.conrelid JOIN pg_catalog.pg_namespace n ON n.oid = "
        "t.relnamespace WHERE n.nspname = %s AND t.relname = %s AND c.conname = %s",
        (schema, table, name)).fetchone() is not None


def type_oids(conn: psycopg.Connection,
              names: Sequence[Tuple[str, str]]) -> Dict[Tuple[str, str], List[int]]:
    """``{(schema, name): [oid, array type, row relation, multirange type]}`` of the
    types that exist (0 where a type has no such thing)."""
    if not names:
        return {}
    rows = conn.execute(
        "SELECT n.nspname, t.typname, t.oid, t.typarray, t.typrelid, NULL, "
        "       (SELECT r.rngmultitypid FROM pg_catalog.pg_range r "
        "        WHERE r.rngtypid = t.oid) "
        "FROM pg_catalog.pg_type t JOIN pg_catalog.pg_namespace n "
        "ON n.oid = t.typnamespace "
        "JOIN ROWS FROM (pg_catalog.unnest(%s::pg_catalog.text[]), "
        "pg_catalog.unnest(%s::pg_catalog.text[])) AS w(s, t) "
        "ON w.s = n.nspname AND w.t = t.typname",
        ([s for s, _ in names], [t for _, t in names])).fetchall()
    return {(schema, name): [oid, arr or 0, rel or 0, multi or 0]
            for schema, name, oid, arr, rel, _cons, multi in rows}


def type_constraint_oids(conn: psycopg.Connection, types: Sequence[int]) -> List[int]:
    """CHECK constraints of the given domains."""
    return [r[0] for r in conn.execute(
        "SELECT oid FROM pg_catalog.pg_constraint WHERE contypid = ANY(%s)",
        (list(types),)).fetchall()]


def owned_sequences(conn: psycopg.Connection, relid: int) -> List[int]:
    """Sequences owned by a column of the table (serial and identity)."""
    return [r[0] for r in conn.execute(
        "SELECT d.objid FROM pg_catalog.pg_depend d JOIN pg_catalog.pg_class s "
        "ON s.oid = d.objid WHERE d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass "
        "AND d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass "
        "AND d.refobjid = %s AND d.deptype IN ('a', 'i') AND s.relkind = 'S'",
        (relid,)).fetchall()]


def sequence_oids(conn: psycopg.Connection,
                  names: Sequence[Tuple[str, str]]) -> List[int]:
    if not names:
        return []
    return [r[0] for r in conn.execute(
        "SELECT c.oid FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n "
        "ON n.oid = c.relnamespace "
        "JOIN ROWS FROM (pg_catalog.unnest(%s::pg_catalog.text[]), "
        "pg_catalog.unnest(%s::pg_catalog.text[])) AS w(s, t) "
        "ON w.s = n.nspname AND w.t = c.relname WHERE c.relkind = 'S'",
        ([s for s, _ in names], [t for _, t in names])).fetchall()]


class TypeFacts(NamedTuple):
    """What the dump asks about a column type: binary send/receive, and the types
    inside it (a domain's base, an array's element, a range's subtype, a multirange's
    range, a composite's attributes)."""
    binary: bool
    typtype: str
    base: int
    relid: int
    elem: int
    sub: int
    range: int
    attributes: Tuple[int, ...]

    def parts(self) -> List[int]:
        return [p for p in (self.base, self.elem, self.sub, self.range) if p] + \
            list(self.attributes)


# Every type reachable from the given ones, in one round trip; UNION (not UNION ALL)
# keeps each type once, which also ends the walk on a cycle through composites.
_TYPE_FACTS_SQL = """
WITH RECURSIVE walk(oid) AS (
    SELECT w.oid FROM pg_catalog.unnest(%s::pg_catalog.oid[]) AS w(oid)
  UNION
    SELECT p.part FROM walk JOIN pg_catalog.pg_type t ON t.oid = walk.oid
    CROSS JOIN LATERAL (
        SELECT t.typbasetype WHERE t.typtype = 'd'
        UNION ALL SELECT t.typelem WHERE t.typelem <> 0 AND t.typlen = -1
        UNION ALL SELECT r.rngsubtype FROM pg_catalog.pg_range r WHERE r.rngtypid = t.oid
        UNION ALL SELECT r.rngtypid FROM pg_catalog.pg_range r
                  WHERE r.rngmultitypid = t.oid
        UNION ALL SELECT a.atttypid FROM pg_catalog.pg_attribute a
                  WHERE t.typtype = 'c' AND a.attrelid = t.typrelid AND a.attnum > 0
                    AND NOT a.attisdropped) AS p(part)
    WHERE p.part <> 0
)
SELECT t.oid, t.typsend <> 0 AND t.typreceive <> 0, t.typtype, t.typbasetype, t.typrelid,
       CASE WHEN t.typelem <> 0 AND t.typlen = -1 THEN t.typelem ELSE 0 END,
       COALESCE((SELECT r.rngsubtype FROM pg_catalog.pg_range r WHERE r.rngtypid = t.oid), 0),
       COALESCE((SELECT r.rngtypid FROM pg_catalog.pg_range r
                 WHERE r.rngmultitypid = t.oid), 0),
       CASE WHEN t.typtype = 'c' THEN ARRAY(
           SELECT a.atttypid FROM pg_catalog.pg_attribute a WHERE a.attrelid = t.typrelid
             AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum) END
FROM walk JOIN pg_catalog.pg_type t ON t.oid = walk.oid
"""


def type_facts(conn: psycopg.Connection, oids: Iterable[int],
               known: Optional[Dict[int, Optional[TypeFacts]]] = None,
               ) -> Dict[int, Optional[TypeFacts]]:
    """:class:`TypeFacts` of ``oids`` and of every type inside them, by OID (None for
    an OID that names no type), in one query; ``known`` (filled in and returned) holds
    what an earlier call found, and only the OIDs missing there are asked for."""
    known = {} if known is None else known
    wanted = sorted({int(o) for o in oids} - set(known))
    if not wanted:
        return known
    for (oid, binary, typtype, base, relid, elem, sub, rng,
         attrs) in conn.execute(_TYPE_FACTS_SQL, (wanted,)).fetchall():
        known[oid] = TypeFacts(bool(binary), typtype, base if typtype == "d" else 0,
                               relid, elem, sub, rng, tuple(attrs or ()))
    for oid in wanted:
        known.setdefault(oid, None)
    return known


# one row per name, x.i counting from 1, r the relation
_NAMES = ("ROWS FROM (pg_catalog.unnest(%s::pg_catalog.text[]), "
          "pg_catalog.unnest(%s::pg_catalog.text[])) WITH ORDINALITY AS x(s, n, i) "
          "JOIN pg_catalog.pg_namespace rn ON rn.nspname = x.s "
          "JOIN pg_catalog.pg_class r ON r.relnamespace = rn.oid AND r.relname = x.n")


def partition_trees(conn: psycopg.Connection,
                    names: Sequence[Tuple[str, str]]) -> List[List[tuple]]:
    """``(schema, name, relkind, level)`` of the tables (``r`` and ``p``) in the
    partition tree of each ``(schema, name)``, by level and name (nothing for a table
    outside any partition tree, and for a name that does not exist), in one query."""
    trees: List[List[tuple]] = [[] for _ in names]
    if names:
        for i, *row in conn.execute(
                "SELECT x.i, n.nspname, c.relname, c.relkind, t.level FROM " + _NAMES +
                " CROSS JOIN LATERAL pg_catalog.pg_partition_tree(r.oid) t "
                "JOIN pg_catalog.pg_class c ON c.oid = t.relid "
                "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
                "WHERE c.relkind IN ('r', 'p') "
                "ORDER BY x.i, t.level, n.nspname, c.relname",
                ([s for s, _ in names], [n for _, n in names])).fetchall():
            trees[i - 1].append(tuple(row))
    return trees


def size_estimates(conn: psycopg.Connection,
                   names: Sequence[Tuple[str, str]]) -> List[Optional[int]]:
    """What :func:`relation_sizes` gives (bytes of the table, its TOAST and its
    indexes), estimated from the page counts the last VACUUM or ANALYZE recorded
    (as pg_dump does) where there are some, else measured; in one query.

    ``pg_total_relation_size`` opens every index and TOAST table of each table and
    asks the file system about every fork of each: at 10,000 tables that was the
    slowest catalog question of a dump.  A table never vacuumed nor analyzed (no
    statistics: ``reltuples`` -1, PostgreSQL 14 and later; no pages recorded before
    that) is measured, so a table just filled is not taken for an empty one.
    """
    sizes: List[Optional[int]] = [None] * len(names)
    if not names:
        return sizes
    known = "r.reltuples >= 0" if conn.info.server_version >= 140000 else "r.relpages > 0"
    query = f"""
SELECT x.i, CASE WHEN {known} THEN
    (r.relpages::pg_catalog.int8
     + coalesce((SELECT t.relpages FROM pg_catalog.pg_class t
                 WHERE t.oid = r.reltoastrelid), 0)
     + coalesce((SELECT pg_catalog.sum(ic.relpages) FROM pg_catalog.pg_index i
                 JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid
                 WHERE i.indrelid = r.oid), 0))
    * pg_catalog.current_setting('block_size')::pg_catalog.int8
  ELSE pg_catalog.pg_total_relation_size(r.oid) END
FROM {_NAMES}"""
    for i, size in conn.execute(query, ([s for s, _ in names],
                                        [n for _, n in names])).fetchall():
        sizes[i - 1] = int(size)
    return sizes


def relation_sizes(conn: psycopg.Connection,
                   names: Sequence[Tuple[str, str]]) -> List[Optional[int]]:
    """``pg_total_relation_size`` of each ``(schema, name)`` (None where no such
    relation), in one query."""
    sizes: List[Optional[int]] = [None] * len(names)
    if names:
        for i, size in conn.execute(
                "SELECT x.i, pg_catalog.pg_total_relation_size(r.oid) FROM " + _NAMES,
                ([s for s, _ in names], [n for _, n in names])).fetchall():
            sizes[i - 1] = size
    return sizes


_FREE_SEQ_SQL = """
SELECT n.nspname, c.relname, pg_catalog.format_type(s.seqtypid, NULL), s.seqstart,
       s.seqincrement, s.seqmin, s.seqmax, s.seqcache, s.seqcycle,
       pg_catalog.obj_description(c.oid, 'pg_class')
FROM pg_catalog.pg_sequence s
JOIN pg_catalog.pg_class c ON c.oid = s.seqrelid
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = ANY(%s)
  AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d
                  WHERE d.classid = 'pg_catalog.pg_class'::regclass AND d.objid = c.oid
                    AND d.deptype IN ('a', 'i', 'e'))
ORDER BY 1, 2
"""


def free_sequences(conn: psycopg.Connection, schemas: Sequence[str]) -> List[Dict[str, Any]]:
    """Sequences of ``schemas`` that no table column owns, with their state.

    (Owned ones travel in their table's definition.)  A sequence the user may not
    read is left out rather than failing the dump.
    """
    out = []
    for (schema_, name, dtype, start, inc, mn, mx, cache, cycle, comment) in conn.execute(
            _FREE_SEQ_SQL, (list(schemas),)).fetchall():
        conn.execute("SAVEPOINT dumpcodec_seq")
        try:
            last, called = conn.execute(sql.SQL("SELECT last_value, is_called FROM {}").format(
                sql.Identifier(schema_, name))).fetchone()
            conn.execute("RELEASE SAVEPOINT dumpcodec_seq")
        except psycopg.Error:
            conn.execute("ROLLBACK TO SAVEPOINT dumpcodec_seq")
            continue
        out.append({"schema": schema_, "name": name, "data_type": dtype, "start": start,
                    "increment": inc, "min_value": mn, "max_value": mx, "cache": cache,
                    "cycle": cycle, "last_value": last, "is_called": called,
                    "comment": comment})
    return out
