"""``dumpcodec create`` and ``dumpcodec load``: dump a live database, restore into one.

Connection: ``--dsn`` (a URI or ``key=value`` conninfo), else the libpq environment
(PGHOST, PGPORT, PGUSER, PGDATABASE, PGPASSWORD, PGSERVICE, ...) as for psql and
pg_dump.  Progress goes to stderr on a terminal (``--quiet`` silences it); the summary
goes to stderr too, so that ``-o -`` can write the archive to stdout.
"""
from __future__ import annotations

import argparse
import re
import sys
import textwrap
from typing import Dict, List, Optional

from . import EXIT_FAILED, EXIT_OK, EXIT_USAGE
from ..progress import TerminalProgress, human_bytes, human_rate

_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(i?b?)\s*$", re.IGNORECASE)


def parse_size(text: str) -> int:
    """``'64M'`` / ``'64MiB'`` / ``'1048576'`` -> bytes (binary multiples)."""
    m = _SIZE_RE.match(text)
    if not m:
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (e.g. 64M, 1G, 1048576)")
    n = float(m.group(1)) * (1024 ** " kmgt".index((m.group(2) or " ").lower()))
    if n < 1:
        raise argparse.ArgumentTypeError(f"size must be positive: {text!r}")
    return int(n)


def _positive(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1: {text!r}")
    return n


def _pairs(values: Optional[List[str]], what: str) -> Dict[str, str]:
    out: Dict[str, str] = {}
    for v in values or ():
        key, sep, val = v.partition("=")
        if not sep or not key.strip() or not val.strip():
            raise ValueError(f"{what} expects TABLE=VALUE, got {v!r}")
        if key.strip() in out:
            raise ValueError(f"{what} given twice for {key.strip()!r}")
        out[key.strip()] = val.strip()
    return out


def _default_selectors(conninfo: str) -> List[str]:
    """Every schema with a table in it, system schemas left out (like pg_dump)."""
    import psycopg
    from psycopg import sql
    with psycopg.connect(conninfo, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT DISTINCT n.nspname FROM pg_catalog.pg_class c JOIN "
            "pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
            "WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition "
            "AND n.nspname <> 'information_schema' AND n.nspname NOT LIKE 'pg\\_%' "
            "AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d WHERE d.classid = "
            "'pg_catalog.pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e') "
            "ORDER BY 1").fetchall()
        # quoted, so that a schema name with dots or wildcards stays literal
        return [sql.Identifier(r[0]).as_string(conn) for r in rows]


def _schemas_named(conninfo: str, selectors: List[str]) -> List[str]:
    """The selectors that name a whole schema: their free sequences are dumped too."""
    import psycopg
    names = [s[1:-1].replace('""', '"') if s.startswith('"') and s.endswith('"') else s
             for s in selectors]
    with psycopg.connect(conninfo, autocommit=True) as conn:
        rows = conn.execute("SELECT nspname FROM pg_catalog.pg_namespace "
                            "WHERE nspname = ANY(%s)", (names,)).fetchall()
    return [r[0] for r in rows]


def _print_grouped_failures(summary) -> None:
    """One line per reason: many tables failing alike ("3 tables already exist")
    show as one line with their ids, not one line each."""
    if not summary.failed:
        return
    print(f"FAILED ({len(summary.failed)}):", file=sys.stderr)
    for reason, ids in summary.grouped_failures():
        if len(ids) == 1:
            print(f"  {ids[0]}: {reason}", file=sys.stderr)
            continue
        shown = ", ".join(ids) if len(ids) <= 6 else \
            f"{', '.join(ids[:3])} ... {', '.join(ids[-2:])}"
        print(f"  {len(ids)} tables: {reason}: {shown}", file=sys.stderr)


# -- create ---------------------------------------------------------------------------

def cmd_create(args) -> int:
    from ..dump import create_dump
    conninfo = args.dsn or ""
    where = _pairs(args.where, "--where")
    columns = {k: [c.strip() for c in v.split(",") if c.strip()]
               for k, v in _pairs(args.columns, "--columns").items()}
    selectors = args.table or _default_selectors(conninfo)
    seq_schemas = _schemas_named(conninfo, selectors)
    if not selectors:
        print("dumpcodec create: error: the database has no tables to dump",
              file=sys.stderr)
        return EXIT_USAGE
    backend = None if args.compress == "none" else args.compress
    progress = TerminalProgress(quiet=args.quiet)
    summary = create_dump(conninfo, selectors, args.output, backend=backend,
                          level=args.level, chunk_size=args.chunk_size, jobs=args.jobs,
                          snapshot=args.snapshot, where=where or None,
                          columns=columns or None, partitions=args.partitions,
                          sequences=seq_schemas, progress=progress)
    if not args.quiet:
        size = (f", archive {human_bytes(summary.archive_bytes)}"
                if summary.archive_bytes is not None else "")
        ratio = (f" ({summary.nbytes / summary.archive_bytes:.1f}x)"
                 if summary.archive_bytes else "")
        print(f"dumped {len(summary.tables)} tables, {summary.rows} rows, "
              f"{human_bytes(summary.nbytes)} of COPY data{size}{ratio} in "
              f"{summary.seconds:.2f} s: {human_rate(summary.rows, summary.seconds)}, "
              f"{human_rate(summary.nbytes / (1 << 20), summary.seconds, 'MiB')} "
              f"(pump: {summary.pump})", file=sys.stderr)
        text = [t for t in summary.tables if t.format == "text"]
        if text:
            print("text COPY (no binary send/receive): "
                  + ", ".join(t.table_id for t in text), file=sys.stderr)
    return EXIT_OK


# -- load -----------------------------------------------------------------------------

def cmd_load(args) -> int:
    from ..restore import restore_dump
    conninfo = args.dsn or ""
    definitions = _pairs(args.table_map, "--table-map")
    progress = TerminalProgress(quiet=args.quiet)
    summary = restore_dump(conninfo, args.dump, tables=args.table or None,
                           target_schema=args.target_schema, if_exists=args.if_exists,
                           jobs=args.jobs, data=not args.no_data,
                           indexes=not args.no_indexes, definitions=definitions or None,
                           analyze=not args.no_analyze, privileges=args.privileges,
                           progress=progress, role=args.role,
                           trust_extensions=not args.strict_extensions,
                           allow_attach=args.allow_attach,
                           allow_external_fks=args.allow_fk_to_existing)
    if not args.quiet:
        print(f"restored {len(summary.ok)} tables, {summary.rows} rows, "
              f"{human_bytes(summary.nbytes)} of COPY data in {summary.seconds:.2f} s: "
              f"{human_rate(summary.rows, summary.seconds)}, "
              f"{human_rate(summary.nbytes / (1 << 20), summary.seconds, 'MiB')} "
              f"(pump: {summary.pump})", file=sys.stderr)
        if summary.skipped:
            print(f"skipped: {', '.join(summary.skipped)}", file=sys.stderr)
        for w in summary.warnings:
            print(f"warning: {w}", file=sys.stderr)
        for r in summary.ok:    # per table: what it left out, and why
            for note in r.notes:
                print(f"note: {r.table_id}: {note}", file=sys.stderr)
    _print_grouped_failures(summary)
    return EXIT_FAILED if summary.failed else EXIT_OK


# -- parsers --------------------------------------------------------------------------

_CREATE_EPILOG = textwrap.dedent("""\
    examples:
      dumpcodec create -o shop.dcz --dsn postgresql://me@db/shop
      dumpcodec create -t 'public.order*' -t audit -j 4 -o orders.dcz
      dumpcodec create -t sales.items --where 'sales.items=created > now() - interval ''1 day''' \\
                       --columns sales.items=id,sku,qty -o recent.dcz
      PGDATABASE=shop dumpcodec create --compress none -o - | ssh backup 'cat > shop.dc'

    Selectors: schema.table, a bare table or schema name, or a pattern (* and ?),
    as pg_dump -t.  Without -t every table outside the system schemas is dumped.
    """)

_LOAD_EPILOG = textwrap.dedent("""\
    examples:
      dumpcodec load shop.dcz --dsn postgresql://me@db/shop_copy
      dumpcodec load shop.dcz -t 'public.order*' --target-schema restored -j 4
      dumpcodec load shop.dcz --if-exists replace
      dumpcodec create -o - --dsn dbname=src | dumpcodec load - --dsn dbname=dst
      dumpcodec load dachs.dump --table-map 'myrd#main=myschema.main' --if-exists append
      dumpcodec load stranger.dcz --role restorer --target-schema quarantine

    Each table is restored in its own transaction; a table that fails is reported and
    the others go on.  Exit status: 0 all restored, 1 some tables failed, 2 bad input.

    Archives are untrusted input: expressions in them may use only harmless
    pg_catalog built-ins (checked on the server before anything runs), nothing is
    created in system schemas, and only the selected tables (and their own sequences
    and types) are written.  Restore archives you did not make as a role that is not
    a superuser (--role).  See docs/RELIABILITY.md.
    """)


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "create", help="dump tables of a live database into an archive",
        description="Dump tables into a dumpcodec archive from one consistent snapshot.",
        epilog=_CREATE_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("-t", "--table", action="append", metavar="SEL",
                   help="table selector (repeatable); default: all tables")
    p.add_argument("-o", "--output", required=True, metavar="FILE",
                   help="archive to write ('-' for stdout); written atomically")
    p.add_argument("--dsn", help="connection URI or key=value conninfo "
                                 "(default: the PG* environment)")
    p.add_argument("-j", "--jobs", type=_positive, default=1, metavar="N",
                   help="parallel connections reading tables (default 1)")
    p.add_argument("--compress", choices=("zstd", "gzip", "none"), default="zstd",
                   help="archive compression (default zstd)")
    p.add_argument("--level", type=int, default=None, metavar="N",
                   help="compression level (default: the backend's, 3 for zstd)")
    p.add_argument("--chunk-size", type=parse_size, default=None, metavar="SIZE",
                   help="bytes of COPY data per archive member (default 8M)")
    p.add_argument("--snapshot", metavar="ID",
                   help="dump from this exported snapshot (pg_export_snapshot())")
    p.add_argument("--where", action="append", metavar="TABLE=COND",
                   help="dump only rows matching the SQL condition (repeatable)")
    p.add_argument("--columns", action="append", metavar="TABLE=a,b",
                   help="dump only these columns of a table (repeatable)")
    p.add_argument("--partitions", choices=("leaves", "root"), default="leaves",
                   help="partitioned tables: each leaf (default) or through the root")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress, no summary")
    p.set_defaults(func=cmd_create)

    p = subparsers.add_parser(
        "load", help="restore an archive into a live database",
        description="Restore a dumpcodec (or DaCHS) archive, one transaction per table.",
        epilog=_LOAD_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("dump", metavar="DUMP", help="archive to read ('-' for stdin)")
    p.add_argument("--dsn", help="connection URI or key=value conninfo "
                                 "(default: the PG* environment)")
    p.add_argument("-t", "--table", action="append", metavar="SEL",
                   help="restore only tables whose id or schema.name matches "
                        "(pattern, repeatable)")
    p.add_argument("--target-schema", metavar="S", help="restore every table into schema S")
    p.add_argument("--if-exists", choices=("error", "replace", "append", "truncate", "skip"),
                   default="error", help="when a table exists already (default error)")
    p.add_argument("-j", "--jobs", type=_positive, default=1, metavar="N",
                   help="parallel connections (tables and index builds; default 1)")
    p.add_argument("--no-data", action="store_true", help="create tables, load no rows")
    p.add_argument("--no-indexes", action="store_true",
                   help="no keys, unique constraints or indexes")
    p.add_argument("--no-analyze", action="store_true",
                   help="skip the ANALYZE of each restored table (as pg_restore does)")
    p.add_argument("--privileges", action="store_true",
                   help="set each created table's owner and grants as dumped, for roles "
                        "that exist (default: neither, as pg_restore --no-owner "
                        "--no-privileges)")
    p.add_argument("--table-map", action="append", metavar="ID=SCHEMA.TABLE",
                   help="load the archive's table ID into this existing table "
                        "(DaCHS dumps; repeatable)")
    p.add_argument("--role", metavar="ROLE",
                   help="do every table's work as this role (SET ROLE, as pg_restore "
                        "--role); use a role that is not a superuser for archives you "
                        "did not make")
    p.add_argument("--allow-attach", action="store_true",
                   help="let a partition attach to an existing parent table that this "
                        "restore does not restore (refused by default)")
    p.add_argument("--allow-fk-to-existing", action="store_true",
                   help="create foreign keys onto existing tables that this restore does "
                        "not restore (by default they are reported and left out)")
    p.add_argument("--strict-extensions", action="store_true",
                   help="refuse operator classes, types and functions of installed "
                        "extensions too (by default they count as built-ins)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress, no summary")
    p.set_defaults(func=cmd_load)
