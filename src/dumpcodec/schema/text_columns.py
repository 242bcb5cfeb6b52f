"""Columns that travel as their text: OID-alias types (by name) and int2vector/oidvector.

A value of an OID-alias type (``regclass``, ``regproc``, ...) is an OID, and COPY BINARY
carries it as one: restored into another cluster, the same number names another object
or none.  pg_dump keeps such values by name; so does dumpcodec.  And an *empty*
``int2vector`` or ``oidvector`` (a function without arguments, a statement trigger)
is sent by the server in a binary form its own receive function refuses ("invalid
int2vector data").  Both kinds of column therefore travel as text:

* the dump reads every column whose type is, or contains (an array of, a domain over,
  a composite or range with), such a type through ``::text`` in a ``COPY (SELECT
  ...)``, with ``search_path`` empty so that every name outside ``pg_catalog`` comes out
  schema-qualified.  ``regproc`` and ``regoper`` go through ``regprocedure`` /
  ``regoperator`` first: their own text is the bare name, which is ambiguous (and
  refused on input) for an overloaded function or operator.  The archive's ``types``
  say ``text`` (``text[]``) for those columns and the table's ``extra`` lists them
  under ``as_text``;
* the restore copies the data into a temporary staging table (those columns ``text``)
  and moves the rows into the table with ``INSERT ... SELECT CAST(...)``, so the
  target's own catalog turns each name into its OID there.  A name that does not exist
  in the target fails the table with an error naming the columns (never a wrong value).

Tables without such columns keep the plain ``COPY table TO STDOUT`` (raw bytes, no
query); :func:`text_columns` is the only extra cost (one catalog query for the types
not seen before).  Plain ``oid`` columns stay numbers, as in pg_dump.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence

import psycopg
from psycopg import sql

from ..errors import RestoreError
from .catalog import TypeFacts, type_facts
from .model import TableDef

#: The OID-alias types (the same OIDs on every server version).
OID_ALIAS_TYPES = {24: "regproc", 2202: "regprocedure", 2203: "regoper",
                   2204: "regoperator", 2205: "regclass", 2206: "regtype",
                   3734: "regconfig", 3769: "regdictionary", 4089: "regnamespace",
                   4096: "regrole", 4191: "regcollation"}
#: int2vector and oidvector: their binary form of an empty vector is refused on receive
_VECTOR_TYPES = {22: "int2vector", 30: "oidvector"}
#: types whose text output is not unique: read through the signature-bearing type
_VIA = {"regproc": "regprocedure", "regoper": "regoperator"}

def _contains_alias(oid: int, facts: Dict[int, Optional[TypeFacts]], cache: Dict[int, bool],
                    depth: int = 0) -> bool:
    if oid in OID_ALIAS_TYPES or oid in _VECTOR_TYPES:
        return True
    if oid in cache:
        return cache[oid]
    if depth > 30:
        return False
    cache[oid] = False     # provisional: breaks cycles through composites
    f = facts.get(oid)
    found = False
    if f is not None:
        parts = [p for p in (f.base, f.elem, f.sub) if p]
        if f.typtype == "c" and f.relid:
            parts += list(f.attributes)
        found = any(_contains_alias(p, facts, cache, depth + 1) for p in parts)
    cache[oid] = found
    return found


def text_columns(conn: psycopg.Connection, tdef: TableDef, columns: Sequence[str],
                 cache: Optional[Dict[int, bool]] = None,
                 facts: Optional[Dict[int, Optional[TypeFacts]]] = None) -> List[str]:
    """The columns (of ``columns``) that travel as text: those whose values hold an
    OID-alias type or an int2vector / oidvector (see the module doc).

    ``cache`` and ``facts`` (:func:`.catalog.type_facts`) may be shared between calls:
    each type is then looked up once, all the types of a call in one query."""
    cache = {} if cache is None else cache
    oids = [tdef.column(c).type_oid for c in columns]
    facts = type_facts(conn, [o for o in oids if o not in cache], facts)
    return [c for c, oid in zip(columns, oids) if _contains_alias(oid, facts, cache)]


def _alias_of(tdef: TableDef, column: str) -> Optional[str]:
    """'regproc' etc. when the column is of that type or an array of it."""
    col = tdef.column(column)
    if col.builtin and col.type_schema == "pg_catalog" and \
            col.type_elem in OID_ALIAS_TYPES.values():
        return col.type_elem
    return None


def dump_select_list(tdef: TableDef, columns: Sequence[str],
                     as_text: Sequence[str]) -> sql.Composed:
    """The SELECT list reading ``columns`` with the ``as_text`` ones as text."""
    items = []
    for c in columns:
        ident = sql.Identifier(c)
        if c not in as_text:
            items.append(ident)
            continue
        via = _VIA.get(_alias_of(tdef, c) or "")
        arr = "[]" if tdef.column(c).is_array else ""
        if via:
            items.append(sql.SQL("{}::pg_catalog.{}{}::pg_catalog.text AS {}").format(
                ident, sql.Identifier(via), sql.SQL(arr), ident))
        else:
            items.append(sql.SQL("{}::pg_catalog.text AS {}").format(ident, ident))
    return sql.SQL(", ").join(items)


#: set on the dump's connection while it reads a table with such columns
EMPTY_SEARCH_PATH = sql.SQL("SELECT pg_catalog.set_config('search_path', '', false)")


@dataclass
class Stage:
    """The restore's staging of a table with columns as text (see the module doc)."""
    create: sql.Composed          # CREATE TEMP TABLE ... ON COMMIT DROP
    table: sql.Identifier         # what the COPY goes into
    insert: sql.Composed          # moves the rows into the table, names cast
    drop: sql.Composed
    as_text: List[str]

    def move(self, conn: psycopg.Connection, what: str) -> int:
        """Run the INSERT; a name missing in the target is a :class:`RestoreError`."""
        try:
            conn.execute("SAVEPOINT dumpcodec_as_text")
            cur = conn.execute(self.insert)
            conn.execute("RELEASE SAVEPOINT dumpcodec_as_text")
        except psycopg.Error as exc:
            conn.execute("ROLLBACK TO SAVEPOINT dumpcodec_as_text")
            msg = exc.diag.message_primary or str(exc)
            raise RestoreError(
                f"{what}: a value of the column(s) {', '.join(self.as_text)} (OID-alias "
                f"types, restored by name) names an object that does not exist (or is "
                f"ambiguous) in the target: {msg}") from None
        conn.execute(self.drop)
        return cur.rowcount


_STAGE_COUNTER = [0]


def stage_plan(tdef: TableDef, schema_: str, name: str, columns: Sequence[str],
               as_text: Sequence[str]) -> Stage:
    """The statements staging ``columns`` of ``tdef`` for ``schema_.name``."""
    from .ddl_build import _Builder    # the checked type spelling of the DDL layer
    unknown = [c for c in as_text if c not in columns]
    if unknown:
        raise RestoreError(f"table {tdef.schema}.{tdef.name}: as_text column(s) "
                           f"{', '.join(unknown)} are not among the dumped columns")
    b = _Builder(tdef, schema_)
    _STAGE_COUNTER[0] += 1
    stage = sql.Identifier(f"dumpcodec_stage_{_STAGE_COUNTER[0]}")
    target = sql.Identifier(schema_, name)
    select = []
    for c in columns:
        ident = sql.Identifier(c)
        if c in as_text:
            select.append(sql.SQL("{}::pg_catalog.text AS {}").format(ident, ident))
        else:
            select.append(ident)
    create = sql.SQL("CREATE TEMP TABLE {} ON COMMIT DROP AS SELECT {} FROM ONLY {} "
                     "WITH NO DATA").format(stage, sql.SQL(", ").join(select), target)
    moved = []
    for c in columns:
        ident = sql.Identifier(c)
        if c not in as_text:
            moved.append(ident)
            continue
        col = tdef.column(c)
        alias = _alias_of(tdef, c)
        arr = sql.SQL("[]" if col.is_array else "")
        if alias == "regclass" and not col.is_array:
            # text -> regclass is a function cast (for nextval('...')) that does not
            # take '-' (the zero OID) as regclass's own input does
            moved.append(sql.SQL("CASE WHEN {} = '-' THEN '-'::pg_catalog.regclass "
                                 "ELSE CAST({} AS pg_catalog.regclass) END").format(
                                     ident, ident))
        elif alias in _VIA:
            moved.append(sql.SQL("CAST(CAST({} AS pg_catalog.{}{}) AS pg_catalog.{}{})")
                         .format(ident, sql.Identifier(_VIA[alias]), arr,
                                 sql.Identifier(alias), arr))
        else:
            moved.append(sql.SQL("CAST({} AS {})").format(
                ident, b.type_sql(col, f"column {c!r}", col.ndims)))
    collist = sql.SQL(", ").join(sql.Identifier(c) for c in columns)
    insert = sql.SQL("INSERT INTO {} ({}) OVERRIDING SYSTEM VALUE SELECT {} FROM {}").format(
        target, collist, sql.SQL(", ").join(moved), stage)
    return Stage(create, stage, insert, sql.SQL("DROP TABLE {}").format(stage),
                 list(as_text))
