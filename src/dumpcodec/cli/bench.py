"""``dumpcodec bench``: measure dump/restore settings on your own tables.

The work is done by :func:`dumpcodec.bench.run_bench`; this module parses the
options, prints progress on stderr and the table (or JSON) on stdout.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

EXAMPLES = """\
examples:
  dumpcodec bench --dsn postgresql://db/prod public.orders public.items
  dumpcodec bench --dsn "host=db dbname=prod" 'sales.*' --seconds 120 --scratch-restore
  dumpcodec bench public --seconds 30 --json > bench.json      # libpq environment

It reads a sample of the selected tables (the first pages of each, sized to fit
the time budget), dumps it into a temporary file (deleted) with each compression
method and level, a couple of chunk sizes and -j values, and, with
--scratch-restore, restores it into a scratch database dumpcodec_bench_<random>
that is always dropped.  It never writes to your tables.
"""


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "bench", help="measure dump/restore settings on a sample of your tables",
        description="Measure raw COPY, dump (each compression and level, chunk sizes, "
                    "-j) and optionally restore throughput on a sample of real tables, "
                    "within a time budget, and recommend settings.",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("selectors", nargs="+", metavar="TABLE",
                   help="tables to sample: schema.table, a schema, or a pattern like "
                        "'public.t*'")
    p.add_argument("--dsn", default="",
                   help="connection (URI or key=value); default: the libpq environment "
                        "(PGHOST, PGDATABASE, ...)")
    p.add_argument("--seconds", type=float, default=60.0,
                   help="time budget for the whole measurement (default %(default)s)")
    p.add_argument("--scratch-restore", action="store_true",
                   help="also measure restores, into a scratch database that is dropped "
                        "at the end (needs CREATEDB)")
    p.add_argument("--sample-mb", type=float, default=None,
                   help="sample size in MB of COPY data (default: sized from --seconds)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress on stderr")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..bench import run_bench

    if args.seconds <= 0:
        print("dumpcodec bench: error: --seconds must be positive", file=sys.stderr)
        return 2
    show = not args.quiet and (sys.stderr.isatty() or bool(os.environ.get("DUMPCODEC_PROGRESS")))

    def log(msg: str) -> None:
        if show:
            print(f"bench: {msg}", file=sys.stderr, flush=True)

    report = run_bench(args.dsn, args.selectors, seconds=args.seconds,
                       scratch_restore=args.scratch_restore,
                       sample_bytes=int(args.sample_mb * 1e6) if args.sample_mb else None,
                       log=log)
    if args.json:
        json.dump(report.to_dict(), sys.stdout, indent=1, default=str)
        sys.stdout.write("\n")
    else:
        print(report.format_table())
    if args.scratch_restore and report.scratch_dropped is False:
        return 1
    return 0
