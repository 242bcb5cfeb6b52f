"""``dumpcodec create`` and ``dumpcodec load``: dump a live database, restore into one.

Connection: ``--dsn`` (a URI or ``key=value`` conninfo), else the libpq environment
(PGHOST, PGPORT, PGUSER, PGDATABASE, PGPASSWORD, PGSERVICE, ...) as for psql and
pg_dump.  Progress goes to stderr on a terminal (``--quiet`` silences it); the summary
goes to stderr too, so that ``-o -`` can write the archive to stdout.
"""
from __future__ import annotations

import argparse
import json
import re
import sys
import textwrap
from typing import Dict, List, Optional

from . import EXIT_FAILED, EXIT_OK, add_storage_option, storage_options
from ..progress import JsonProgress, TerminalProgress, human_bytes, human_rate

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


def _progress(args):
    """``--progress json``: a JSON line a second on stderr; else the status line."""
    if getattr(args, "progress", None) == "json":
        return JsonProgress()
    return TerminalProgress(quiet=args.quiet or args.json)


def _size_or_zero(text: str) -> int:
    """``parse_size``, or ``0`` (never)."""
    return 0 if text.strip() == "0" else parse_size(text)


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

def _selection(args, kinds=None, tables=True):
    """pg_dump's switches and filter files as a library Selection (``tables``: with
    the -t selectors; load keeps those apart: each must match, as before)."""
    from ..schema.selection import selection_from_args
    return selection_from_args(
        tables=(args.table or ()) if tables else (), schemas=args.schema or (),
        exclude_tables=args.exclude_table or (), exclude_schemas=args.exclude_schema or (),
        exclude_table_data=getattr(args, "exclude_table_data", None) or (),
        filters=args.filter or (), strict_names=args.strict_names, kinds=kinds)


def _print_json(doc) -> None:
    json.dump(doc, sys.stdout, indent=1, ensure_ascii=False, default=str)
    sys.stdout.write("\n")
    sys.stdout.flush()


def _warn(warnings) -> None:
    for w in warnings:
        print(f"warning: {w}", file=sys.stderr)


def cmd_create(args) -> int:
    from ..dump import create_dump
    if args.json and args.output == "-":
        raise ValueError("--json prints the report on stdout: it needs -o FILE, not -o -")
    conninfo = args.dsn or ""
    where = _pairs(args.where, "--where")
    columns = {k: [c.strip() for c in v.split(",") if c.strip()]
               for k, v in _pairs(args.columns, "--columns").items()}
    backend = None if args.compress == "none" else args.compress
    progress = _progress(args)
    summary = create_dump(conninfo, _selection(args), args.output, backend=backend,
                          level=args.level, chunk_size=args.chunk_size, jobs=args.jobs,
                          snapshot=args.snapshot, where=where or None,
                          columns=columns or None, partitions=args.partitions,
                          progress=progress, binary=args.format == "binary",
                          split_larger_than=args.split_larger_than,
                          split_method=args.split_method,
                          storage_options=storage_options(args))
    if args.json:
        _print_json(summary.to_dict())
        return EXIT_OK
    _warn(summary.warnings)
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
        if text and args.format == "binary":
            print("text COPY (no binary send/receive): "
                  + ", ".join(t.table_id for t in text), file=sys.stderr)
    return EXIT_OK


# -- load -----------------------------------------------------------------------------

def cmd_load(args) -> int:
    from ..schema.selection import RESTORE_FILTER_TYPES
    selection = _selection(args, RESTORE_FILTER_TYPES, tables=False)
    if args.list or args.file is not None:
        return _offline(args, selection)
    from ..restore import restore_dump
    conninfo = args.dsn or ""
    definitions = _pairs(args.table_map, "--table-map")
    progress = _progress(args)
    summary = restore_dump(conninfo, args.dump, tables=args.table or None,
                           selection=selection,
                           target_schema=args.target_schema, if_exists=args.if_exists,
                           jobs=args.jobs, data=not (args.no_data or args.schema_only),
                           indexes=not args.no_indexes, definitions=definitions or None,
                           analyze=not args.no_analyze, privileges=args.privileges,
                           progress=progress, role=args.role,
                           trust_extensions=not args.strict_extensions,
                           allow_attach=args.allow_attach,
                           allow_external_fks=args.allow_fk_to_existing,
                           resume=args.resume,
                           stage_larger_than=args.stage_larger_than,
                           storage_options=storage_options(args))
    if args.json:
        _print_json(summary.to_dict())
        return EXIT_FAILED if summary.failed else EXIT_OK
    if not args.quiet:
        print(f"restored {len(summary.ok)} tables, {summary.rows} rows, "
              f"{human_bytes(summary.nbytes)} of COPY data in {summary.seconds:.2f} s: "
              f"{human_rate(summary.rows, summary.seconds)}, "
              f"{human_rate(summary.nbytes / (1 << 20), summary.seconds, 'MiB')} "
              f"(pump: {summary.pump})", file=sys.stderr)
        if summary.skipped:
            print(f"skipped: {', '.join(summary.skipped)}", file=sys.stderr)
        for r in summary.ok:    # per table: what it left out, and why
            for note in r.notes:
                print(f"note: {r.table_id}: {note}", file=sys.stderr)
    _warn(summary.warnings)
    _print_grouped_failures(summary)
    return EXIT_FAILED if summary.failed else EXIT_OK


def _offline(args, selection) -> int:
    """``load --list`` and ``load --schema-only -f FILE``: no connection."""
    from ..restore.script import restore_list, restore_script
    if args.list and args.file is not None:
        raise ValueError("--list and -f/--file: choose one")
    if args.file is not None and not args.schema_only:
        raise ValueError("-f/--file writes the SQL of the tables' definitions: add "
                         "--schema-only (data is not written as SQL)")
    if args.json:
        raise ValueError("--json reports a restore; --list and -f write no report")
    if args.list:
        out, close = sys.stdout, False
    elif args.file == "-":
        out, close = sys.stdout, False
    else:
        out, close = open(args.file, "w", encoding="utf-8"), True
    try:
        write = restore_list if args.list else restore_script
        plan = write(args.dump, out, tables=args.table or None, selection=selection,
                     target_schema=args.target_schema, indexes=not args.no_indexes,
                     allow_attach=args.allow_attach,
                     storage_options=storage_options(args))
    finally:
        if close:
            out.close()
        else:
            out.flush()
    _warn(plan.warnings)
    for tid, why in plan.refused:
        print(f"not included: {tid}: {why}", file=sys.stderr)
    return EXIT_FAILED if plan.refused else EXIT_OK


# -- parsers --------------------------------------------------------------------------

_CREATE_EPILOG = textwrap.dedent("""\
    examples:
      dumpcodec create -o shop.dcz --dsn postgresql://me@db/shop      # every table
      dumpcodec create -t 'public.order*' -t audit -j 4 -o orders.dcz
      dumpcodec create -n 'east*gsm' -n 'west*gsm' -N '*test*' -o gsm.dcz
      dumpcodec create -n '(east|west)*gsm' -o gsm.dcz           # regex notation
      dumpcodec create -t 'detroit.emp*' -T detroit.employee_log -o emp.dcz
      dumpcodec create -T 'ts_*' -o no_ts.dcz                    # all but ts_* tables
      dumpcodec create --exclude-table-data 'audit.*' -o lean.dcz  # audit: no rows
      dumpcodec create --filter filter.txt -o mine.dcz
      dumpcodec create -t a -t b --strict-names -o ab.dcz        # each must match
      dumpcodec create --format text -o text.dcz                 # text COPY members
      dumpcodec create -o shop.dcz --json > report.json          # docs/JSON.md
      dumpcodec create -t sales.items --where 'sales.items=created > now() - interval ''1 day''' \\
                       --columns sales.items=id,sku,qty -o recent.dcz
      PGDATABASE=shop dumpcodec create --compress none -o - | ssh backup 'cat > shop.dc'
      dumpcodec create -j 4 -o s3://backups/shop.dcz             # pip install 'dumpcodec[s3]'
      AWS_ENDPOINT_URL=http://127.0.0.1:9000 dumpcodec create -o s3://b/x.dcz

    Selection, as pg_dump 17: without -t or -n, every table outside the system schemas
    (not of an extension).  -t: schema.table, a bare table or schema name, or a
    pattern (* and ?, and the regex characters | ( ) [ ] { } + ^; double quotes keep
    text literal).  With -t, exactly what -t matches (-n and -N do not apply); else
    with -n, the tables of those schemas.  -N and -T take out schemas and tables (a
    partitioned table with its partitions).  An include pattern that matches nothing
    is a warning; --strict-names makes it an error, and a selection of no table at
    all is always one.

    A filter file (--filter FILE, '-' for stdin) has pg_dump's syntax, one rule a line:
        # a comment
        include table mytable*
        exclude table mytable2
        include schema "My Schema"         # double quotes: exact text
        exclude table_data audit.*         # definition only
    Object types: table, table_and_children, schema, table_data,
    table_data_and_children (the last two with exclude only).
    """)

_LOAD_EPILOG = textwrap.dedent("""\
    examples:
      dumpcodec load shop.dcz --dsn postgresql://me@db/shop_copy
      dumpcodec load shop.dcz -t 'public.order*' --target-schema restored -j 4
      dumpcodec load shop.dcz -n app -N 'app_*' -T 'app.log*'
      dumpcodec load shop.dcz --filter filter.txt --strict-names
      dumpcodec load shop.dcz --if-exists replace
      dumpcodec load shop.dcz --json > report.json               # docs/JSON.md
      dumpcodec load shop.dcz --list                             # as pg_restore -l
      dumpcodec load shop.dcz --schema-only -f schema.sql        # the SQL, no database
      dumpcodec load shop.dcz --schema-only -f - | psql -d empty_db
      dumpcodec create -o - --dsn dbname=src | dumpcodec load - --dsn dbname=dst
      dumpcodec create -j 2 --compress none -o - | dumpcodec load - -j 2 --dsn dbname=dst
      dumpcodec load dachs.dump --table-map 'myrd#main=myschema.main' --if-exists append
      dumpcodec load stranger.dcz --role restorer --target-schema quarantine
      dumpcodec load s3://backups/shop.dcz -j 4 --storage-option profile=backup

    Each table is restored in its own transaction; a table that fails is reported and
    the others go on.  A pipe between two databases on one machine costs less CPU
    with `create --compress none` (no zstd at either end), which on few cores is
    usually faster.  Exit status: 0 all restored, 1 some tables failed, 2 bad input.

    Selection, as pg_restore 17: a table is restored when it matches some -t (shell
    patterns on the table id, schema.table or name; each must match) and lies in
    some -n schema, and no -N or -T names it.  --filter FILE takes 'include|exclude
    table|schema PATTERN' lines (pg_dump's filter syntax, see create --help).

    --schema-only -f FILE (or -f -) writes the SQL a restore would run to create the
    tables, without a connection and without running anything.  It is NOT checked on
    a server: a restore first resolves every expression of the archive on the target
    and accepts only allowed built-ins; the script had only the static checks (each
    expression parsed and held to the allow-list by name).  Review it, and run it as
    a role that is not a superuser.  --schema-only without -f restores the tables
    without rows (as --no-data).

    Archives are untrusted input: expressions in them may use only harmless
    pg_catalog built-ins (checked on the server before anything runs), nothing is
    created in system schemas, and only the selected tables (and their own sequences
    and types) are written.  Restore archives you did not make as a role that is not
    a superuser (--role).  See docs/RELIABILITY.md.
    """)


def _add_selection(p, restore: bool) -> None:
    """pg_dump's (and pg_restore's) selection switches."""
    p.add_argument("-n", "--schema", action="append", metavar="PATTERN",
                   help="only tables in schemas matching PATTERN (repeatable), "
                        "e.g. -n 'east*gsm'")
    p.add_argument("-N", "--exclude-schema", action="append", metavar="PATTERN",
                   help="no table in schemas matching PATTERN (repeatable), "
                        "e.g. -N '*test*'")
    p.add_argument("-T", "--exclude-table", action="append", metavar="PATTERN",
                   help="no table matching PATTERN (repeatable), e.g. -T 'ts_*'")
    if not restore:
        p.add_argument("--exclude-table-data", action="append", metavar="PATTERN",
                       help="dump the definition of tables matching PATTERN without "
                            "their rows (repeatable), e.g. --exclude-table-data 'audit.*'")
    p.add_argument("--filter", action="append", metavar="FILE",
                   help="read include/exclude rules from FILE in pg_dump's filter "
                        "syntax ('-' for stdin; repeatable), e.g. --filter filter.txt")
    p.add_argument("--strict-names", action="store_true",
                   help="an include pattern (-t, -n, include lines) that matches "
                        "nothing is an error, not a warning, e.g. -t a --strict-names"
                        if not restore else
                        "an -n pattern or include line that matches nothing is an "
                        "error, not a warning, e.g. -n app --strict-names")


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "create", help="dump tables of a live database into an archive",
        description="Dump tables into a dumpcodec archive from one consistent snapshot.",
        epilog=_CREATE_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("-t", "--table", action="append", metavar="SEL",
                   help="table selector (repeatable), e.g. -t 'public.order*'; "
                        "default: all tables")
    _add_selection(p, restore=False)
    p.add_argument("-o", "--output", required=True, metavar="FILE",
                   help="archive to write ('-' for stdout; a URL such as "
                        "s3://bucket/key uploads it); written atomically: the file or "
                        "object appears only when the dump succeeded")
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
    p.add_argument("--split-larger-than", type=_size_or_zero, metavar="SIZE",
                   default=256 << 20,
                   help="with -j N, a table larger than this (heap and TOAST) is read as "
                        "several ranges at once, in the same snapshot (see "
                        "--split-method; default 256M; 0: never), e.g. "
                        "-j 4 --split-larger-than 1G")
    p.add_argument("--split-method", choices=("auto", "ctid", "key"), default="auto",
                   help="how a split table is cut: ctid (ranges of heap pages, "
                        "PostgreSQL 14+), key (ranges of a single-column smallint/"
                        "integer/bigint primary key; tables without one are read "
                        "whole), auto (default: ctid from 14, key before), e.g. "
                        "--split-method key for a table whose heap is bloated")
    p.add_argument("--format", choices=("binary", "text"), default="binary",
                   help="COPY format of the data members: binary wherever the column "
                        "types allow it (default), or text for every table, e.g. "
                        "--format text")
    p.add_argument("--snapshot", metavar="ID",
                   help="dump from this exported snapshot (pg_export_snapshot())")
    p.add_argument("--where", action="append", metavar="TABLE=COND",
                   help="dump only rows matching the SQL condition (repeatable)")
    p.add_argument("--columns", action="append", metavar="TABLE=a,b",
                   help="dump only these columns of a table (repeatable)")
    p.add_argument("--partitions", choices=("leaves", "root"), default="leaves",
                   help="partitioned tables: each leaf (default) or through the root")
    p.add_argument("--json", action="store_true",
                   help="print a JSON report on stdout (docs/JSON.md), e.g. "
                        "create -o x.dcz --json > report.json")
    p.add_argument("--progress", choices=("terminal", "json"), default="terminal",
                   help="progress: a status line on a terminal (default), or 'json': one "
                        "JSON object a second on stderr (docs/JSON.md), e.g. "
                        "--progress json 2> progress.jsonl")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress, no summary")
    add_storage_option(p)
    p.set_defaults(func=cmd_create)

    p = subparsers.add_parser(
        "load", help="restore an archive into a live database",
        description="Restore a dumpcodec (or DaCHS) archive, one transaction per table.",
        epilog=_LOAD_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("dump", metavar="DUMP",
                   help="archive to read ('-' for stdin; or a URL: s3://bucket/key, ...)")
    p.add_argument("--dsn", help="connection URI or key=value conninfo "
                                 "(default: the PG* environment)")
    p.add_argument("-t", "--table", action="append", metavar="SEL",
                   help="restore only tables whose id or schema.name matches "
                        "(pattern, repeatable)")
    _add_selection(p, restore=True)
    p.add_argument("--target-schema", metavar="S", help="restore every table into schema S")
    p.add_argument("--if-exists", choices=("error", "replace", "append", "truncate", "skip"),
                   default="error", help="when a table exists already (default error)")
    p.add_argument("-j", "--jobs", type=_positive, default=1, metavar="N",
                   help="parallel connections (tables and index builds; default 1)")
    p.add_argument("--no-data", action="store_true", help="create tables, load no rows")
    p.add_argument("-s", "--schema-only", action="store_true",
                   help="the tables' definitions only: with -f, the SQL script; "
                        "without, as --no-data")
    p.add_argument("-f", "--file", metavar="FILE",
                   help="with --schema-only: write the SQL a restore would run to FILE "
                        "('-' for stdout) instead of connecting; NOT checked on a "
                        "server (see below), e.g. --schema-only -f schema.sql")
    p.add_argument("-l", "--list", action="store_true",
                   help="list what would be restored, in order (as pg_restore -l); "
                        "no connection, e.g. load x.dcz --list")
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
    p.add_argument("--resume", action="store_true",
                   help="continue a restore that stopped: tables it finished are "
                        "skipped, a big table's committed chunks are not loaded again "
                        "(e.g. load x.dcz -j 4 --resume)")
    p.add_argument("--stage-larger-than", type=_size_or_zero, metavar="SIZE",
                   default=32 << 20,
                   help="with -j 2 or more (or --resume), a table with this much data "
                        "or more loads through a staging "
                        "table, its chunks over the -j connections, and takes its place "
                        "in one final transaction, also from a pipe (default 32M; 0: "
                        "never; from a pipe at most 64M counts)")
    p.add_argument("--json", action="store_true",
                   help="print a JSON report on stdout (docs/JSON.md), e.g. "
                        "load x.dcz --json > report.json")
    p.add_argument("--progress", choices=("terminal", "json"), default="terminal",
                   help="progress: a status line on a terminal (default), or 'json': one "
                        "JSON object a second on stderr (docs/JSON.md), e.g. "
                        "--progress json 2> progress.jsonl")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress, no summary")
    add_storage_option(p)
    p.set_defaults(func=cmd_load)
