"""Benchmark data: the mixed and the narrow table, generated on the server.

Both tables are built with ``generate_series`` inside the server (no rows travel
through the client), so that a multi-million-row setup takes seconds.  The values
are derived from the row number only (no ``random()``), so that two runs of the
same size produce the same bytes and the same archive sizes.

- ``mixed``: bigint (primary key), int, float8, bool, text, timestamptz, date,
  numeric(12,2), uuid, jsonb, int[], bytea; each nullable column is NULL in about
  10% of the rows (staggered, so most rows have exactly one NULL).
- ``narrow``: (bigint, int) with one plain index.

A table is re-created only when its size or its definition changed: the table
comment records both, so repeated runs on the same server skip the setup.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

import psycopg
from psycopg import sql

#: Bump when the generating SQL changes, so that cached tables are rebuilt.
DATA_VERSION = 1

SCHEMA = "bench"
#: the benchmark database (the runner passes other names for other sizes)
DEFAULT_DBNAME = "dumpcodec_bench"
DEFAULT_SIZES = {"mixed": 1_000_000, "narrow": 5_000_000}
QUICK_SIZES = {"mixed": 20_000, "narrow": 100_000}


@dataclass(frozen=True)
class Column:
    name: str
    type: str       # SQL type, as written in CREATE TABLE
    short: str      # the catalog name (int8, int4[], ...), as psycopg's set_types wants it


MIXED_COLUMNS: List[Column] = [
    Column("id", "bigint", "int8"),
    Column("n", "integer", "int4"),
    Column("f", "double precision", "float8"),
    Column("flag", "boolean", "bool"),
    Column("label", "text", "text"),
    Column("created", "timestamp with time zone", "timestamptz"),
    Column("day", "date", "date"),
    Column("amount", "numeric(12,2)", "numeric"),
    Column("uid", "uuid", "uuid"),
    Column("doc", "jsonb", "jsonb"),
    Column("tags", "integer[]", "int4[]"),
    Column("blob", "bytea", "bytea"),
]

NARROW_COLUMNS: List[Column] = [
    Column("id", "bigint", "int8"),
    Column("n", "integer", "int4"),
]

COLUMNS: Dict[str, List[Column]] = {"mixed": MIXED_COLUMNS, "narrow": NARROW_COLUMNS}

# The generator SELECT for each table; {n} is the row count.  Each nullable
# column of ``mixed`` is NULL when g % 10 hits its own residue (~10% each).
_MIXED_SELECT = """
SELECT g,
  CASE WHEN g % 10 = 1 THEN NULL ELSE ((g * 7919) % 1000003)::int END,
  CASE WHEN g % 10 = 2 THEN NULL ELSE ((g * 2654435761) % 1000003)::float8 / 7.0 END,
  CASE WHEN g % 10 = 3 THEN NULL ELSE g % 3 = 0 END,
  CASE WHEN g % 10 = 4 THEN NULL ELSE 'customer ' || (g % 50000) || ' ' || left(md5(g::text), 16) END,
  CASE WHEN g % 10 = 5 THEN NULL ELSE timestamptz '2020-01-01 00:00:00+00' + g * interval '1.5 second' END,
  CASE WHEN g % 10 = 6 THEN NULL ELSE date '2000-01-01' + (g % 9000)::int END,
  CASE WHEN g % 10 = 7 THEN NULL ELSE ((g * 48271) % 100000000)::numeric / 100 END,
  CASE WHEN g % 10 = 8 THEN NULL ELSE md5('u' || g)::uuid END,
  CASE WHEN g % 10 = 9 THEN NULL ELSE jsonb_build_object(
       'id', g, 'kind', (ARRAY['order', 'refund', 'quote'])[1 + g % 3],
       'qty', g % 17, 'ok', g % 2 = 0) END,
  CASE WHEN g % 10 = 0 THEN NULL ELSE ARRAY[(g % 100)::int, (g % 7)::int, (g % 1009)::int] END,
  CASE WHEN g % 20 = 0 THEN NULL ELSE decode(left(md5('b' || g), 24), 'hex') END
FROM generate_series(1::bigint, {n}) AS g
"""

_NARROW_SELECT = """
SELECT g, ((g * 7919) % 1000003)::int FROM generate_series(1::bigint, {n}) AS g
"""


def qualified(table: str, schema: str = SCHEMA) -> str:
    """``schema.table`` as text, for command-line tools and selectors."""
    return f"{schema}.{table}"


def column_types(table: str) -> List[str]:
    """The SQL types of ``table``'s columns, in order."""
    return [c.type for c in COLUMNS[table]]


def short_types(table: str) -> List[str]:
    """The catalog type names of ``table``'s columns (``int8``, ``int4[]``, ...)."""
    return [c.short for c in COLUMNS[table]]


def column_names(table: str) -> List[str]:
    return [c.name for c in COLUMNS[table]]


def create_statements(table: str, name: Optional[str] = None, schema: str = SCHEMA,
                      with_index: bool = True) -> List[sql.Composed]:
    """CREATE TABLE (and its one index) for ``table`` under the name ``name``."""
    name = name or table
    ident = sql.Identifier(schema, name)
    cols = sql.SQL(", ").join(
        sql.SQL("{} {}").format(sql.Identifier(c.name), sql.SQL(c.type))
        for c in COLUMNS[table])
    stmts = [sql.SQL("CREATE TABLE {} ({})").format(ident, cols)]
    if with_index:
        if table == "mixed":
            stmts.append(sql.SQL("ALTER TABLE {} ADD PRIMARY KEY (id)").format(ident))
        else:
            stmts.append(sql.SQL("CREATE INDEX {} ON {} (id)").format(
                sql.Identifier(f"{name}_id_idx"), ident))
    return stmts


def _stamp(table: str, rows: int) -> str:
    return f"dumpcodec benchmark table {table} v{DATA_VERSION} rows={rows}"


def ensure_database(admin_dsn: str, dbname: str = DEFAULT_DBNAME) -> str:
    """Create the benchmark database if missing; return its conninfo."""
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        found = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s",
                             (dbname,)).fetchone()
        if not found:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname)))
    return psycopg.conninfo.make_conninfo(admin_dsn, dbname=dbname)


def ensure_table(dsn: str, table: str, rows: int, schema: str = SCHEMA) -> bool:
    """Make ``schema.table`` hold the benchmark data for ``rows`` rows.

    Returns True when the table was (re)built, False when it was already there.
    """
    stamp = _stamp(table, rows)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))
        row = conn.execute(
            "SELECT obj_description(c.oid, 'pg_class') FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = %s AND c.relname = %s", (schema, table)).fetchone()
        if row is not None and row[0] == stamp:
            return False
        ident = sql.Identifier(schema, table)
        select = _MIXED_SELECT if table == "mixed" else _NARROW_SELECT
        with conn.transaction():
            conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(ident))
            stmts = create_statements(table, schema=schema)
            conn.execute(stmts[0])
            conn.execute(sql.SQL("INSERT INTO {} ").format(ident)
                         + sql.SQL(select.format(n=int(rows))))
            for stmt in stmts[1:]:
                conn.execute(stmt)
            conn.execute(sql.SQL("COMMENT ON TABLE {} IS {}").format(ident, sql.Literal(stamp)))
        # Freeze and set hint bits now so that the first measured read does not
        # pay for writing them; statistics help pg_restore's index builds too.
        conn.execute(sql.SQL("VACUUM (FREEZE, ANALYZE) {}").format(ident))
    return True


def table_stats(dsn: str, table: str, schema: str = SCHEMA) -> Dict[str, int]:
    """Rows, on-disk size (heap + indexes) and binary COPY size of a table."""
    ident = sql.Identifier(schema, table)
    with psycopg.connect(dsn, autocommit=True) as conn:
        rows = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(ident)).fetchone()[0]
        disk = conn.execute("SELECT pg_total_relation_size(%s::regclass)",
                            (qualified(table, schema),)).fetchone()[0]
        copy_bytes = 0
        with conn.cursor() as cur:
            with cur.copy(sql.SQL("COPY {} TO STDOUT (FORMAT binary)").format(ident)) as copy:
                for block in copy:
                    copy_bytes += len(block)
    return {"rows": int(rows), "disk_bytes": int(disk), "copy_bytes": copy_bytes}


def setup(dsn: str, sizes: Dict[str, int], schema: str = SCHEMA) -> Dict[str, Dict[str, int]]:
    """Ensure every table in ``sizes`` exists at its size; return their stats."""
    out = {}
    for table, rows in sizes.items():
        if table not in COLUMNS:
            raise ValueError(f"unknown benchmark table {table!r}; known: {sorted(COLUMNS)}")
        built = ensure_table(dsn, table, rows, schema)
        stats = table_stats(dsn, table, schema)
        stats["built"] = built
        out[table] = stats
    return out


def sizes_from_args(mixed: Optional[int], narrow: Optional[int],
                    quick: bool = False) -> Dict[str, int]:
    base = dict(QUICK_SIZES if quick else DEFAULT_SIZES)
    if mixed is not None:
        base["mixed"] = mixed
    if narrow is not None:
        base["narrow"] = narrow
    return {k: v for k, v in base.items() if v > 0}


__all__: Tuple[str, ...] = (
    "DEFAULT_SIZES", "QUICK_SIZES", "COLUMNS", "SCHEMA", "DEFAULT_DBNAME", "column_types",
    "column_names", "short_types", "create_statements", "ensure_database", "ensure_table",
    "table_stats",
    "setup", "qualified", "sizes_from_args",
)
