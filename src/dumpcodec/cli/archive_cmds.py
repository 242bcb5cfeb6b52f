"""``dumpcodec ls | verify | cat``: look into an archive without a database.

``ls`` lists the tables (rows, sizes, dump time, definition, format); ``verify``
reads everything and checks checksums, COPY framing, row counts and completeness;
``cat`` streams one table's rows as CSV or JSON lines.  An archive may be a path,
``-`` (stdin) or a URL (``s3://bucket/key``, any fsspec URL, read by ranged
requests: ``ls`` and ``cat`` fetch the manifest and the members they need, not the
whole object); the backend is recognised by its magic bytes.
"""
from __future__ import annotations

import argparse
import datetime as _dt
import decimal
import json
import math
import sys
from typing import Any, List

from ..progress import human_bytes
from . import EXIT_FAILED, EXIT_OK, EXIT_USAGE, add_storage_option, storage_options

_LS_EPILOG = """\
examples:
  dumpcodec ls backup.dump              table of tables
  dumpcodec ls --json backup.dump       the same as JSON (with definitions)
  ssh host cat backup.dump | dumpcodec ls -
  dumpcodec ls old-dachs-dump.tar.gz    DaCHS dumps list too (no definitions)
  dumpcodec ls s3://backups/shop.dcz    ranged reads: the locator and manifest only

exit status: 0 listed, 2 incomplete archive (writer did not finish) or unreadable
"""

_VERIFY_EPILOG = """\
examples:
  dumpcodec verify backup.dump          checksums, COPY framing, row counts, completeness
  dumpcodec verify --no-scan big.dump   checksums and structure only (faster)
  dumpcodec verify --json backup.dump   the result as a JSON report (docs/JSON.md)
  zstdcat backup.dump | zstd | dumpcodec verify -
  dumpcodec verify s3://backups/shop.dcz --storage-option profile=backup

exit status: 0 everything holds, 1 some member or table is bad, 2 incomplete or
unreadable archive.  Each problem is one line on stderr naming member and table.
"""

_CAT_EPILOG = """\
examples:
  dumpcodec cat backup.dump public.orders | head
  dumpcodec cat backup.dump public.orders --format jsonl --limit 10
  dumpcodec cat --raw backup.dump public.t   raw field bytes as \\x hex, no type decoding
  dumpcodec cat s3://backups/shop.dcz public.orders   only that table's members are read

values: NULL is an empty field in CSV and null in JSON; bytea as \\x hex; dates and
times in ISO 8601; numeric as exact decimal text.  CSV quotes fields holding a comma,
a quote, LF or CR.  On a terminal, control characters in the data are shown escaped
(\\x1b, \\r, \\n in CSV; \\u escapes in JSON), never sent to the terminal.
"""


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "ls", help="list the tables of an archive",
        description="List the tables of an archive: rows, raw and compressed sizes, "
                    "dump time (UTC), whether a definition is stored, COPY format.",
        epilog=_LS_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("dump", help="archive path, URL (s3://bucket/key, ...), or - for stdin")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--backend", help="force a backend (zstd, gzip, tar, dachs)")
    add_storage_option(p)
    p.set_defaults(func=cmd_ls)

    p = subparsers.add_parser(
        "verify", help="check an archive's checksums, framing and completeness",
        description="Read the whole archive and check every member's SHA-256, COPY "
                    "framing and row count against the footers and manifest, the "
                    "index and the end marker.  No database needed.",
        epilog=_VERIFY_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("dump", help="archive path, URL (s3://bucket/key, ...), or - for stdin")
    p.add_argument("--no-scan", action="store_true",
                   help="skip the COPY framing scan (checksums and structure only)")
    p.add_argument("--backend", help="force a backend (zstd, gzip, tar, dachs)")
    p.add_argument("--json", action="store_true",
                   help="print a JSON report on stdout (docs/JSON.md), e.g. "
                        "verify x.dcz --json")
    add_storage_option(p)
    p.set_defaults(func=cmd_verify)

    p = subparsers.add_parser(
        "cat", help="print one table's rows as CSV or JSON lines",
        description="Stream the decoded rows of one table.",
        epilog=_CAT_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("dump", help="archive path, URL (s3://bucket/key, ...), or - for stdin")
    p.add_argument("table", help="table id as shown by 'dumpcodec ls'")
    p.add_argument("--format", choices=("csv", "jsonl"), default="csv",
                   help="output format (default csv)")
    p.add_argument("--limit", type=int, default=None, metavar="N",
                   help="stop after N rows")
    p.add_argument("--no-header", action="store_true",
                   help="CSV: no header line with the column names")
    p.add_argument("--raw", action="store_true",
                   help="do not decode values: each field as \\x hex of its bytes")
    p.add_argument("--backend", help="force a backend (zstd, gzip, tar, dachs)")
    add_storage_option(p)
    p.set_defaults(func=cmd_cat)


# ------------------------------------------------------------------------- helpers

def _open(args):
    from ..archive import open_dump
    return open_dump(args.dump, "r", backend=args.backend,
                     storage_options=storage_options(args))


def _size(n) -> str:
    return "-" if n is None else human_bytes(n)


def _when(ts) -> str:
    if ts is None:
        return "-"
    return _dt.datetime.fromtimestamp(ts, _dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%SZ")


def _shown(text: str) -> str:
    """``text`` safe for a terminal line: control characters (escape sequences,
    newlines) of a hostile table-id or member name are shown escaped, not obeyed."""
    return "".join(c if c.isprintable() else ascii(c)[1:-1] for c in text)


def _err(cmd: str, msg: str) -> None:
    print(f"dumpcodec {cmd}: {_shown(msg)}", file=sys.stderr)


# ------------------------------------------------------------------------- ls

def cmd_ls(args) -> int:
    with _open(args) as reader:
        tables = reader.tables(allow_incomplete=True)
        complete = reader.complete
        if args.json:
            doc = {"backend": reader.backend_name, "layout": reader.layout,
                   "complete": bool(complete), "info": reader.info,
                   "tables": [dict(t.to_json(), has_definition=t.has_definition,
                                   complete=t.complete) for t in tables]}
            if not complete:
                doc["error"] = reader.incomplete_reason
            json.dump(doc, sys.stdout, indent=1, ensure_ascii=False)
            sys.stdout.write("\n")
        else:
            rows: List[List[str]] = [["TABLE", "ROWS", "RAW", "COMPRESSED", "DUMPED (UTC)",
                                      "DEF", "FORMAT", "CHUNKS"]]
            for t in tables:
                rows.append([_shown(t.table_id), "-" if t.rows is None else str(t.rows),
                             _size(t.raw_size), _size(t.compressed_size),
                             _when(t.dump_time), "yes" if t.has_definition else "no",
                             t.format if t.complete else t.format + " (incomplete)",
                             str(len(t.members))])
            widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
            right = {1, 2, 3, 7}
            for r in rows:
                print("  ".join(c.rjust(w) if i in right else c.ljust(w)
                                for i, (c, w) in enumerate(zip(r, widths))).rstrip())
            info = reader.info
            bits = [f"{len(tables)} tables", f"layout {reader.layout}",
                    f"backend {reader.backend_name}"]
            if info.get("created"):
                bits.append(f"created {info['created']}")
            if info.get("server_version"):
                bits.append(f"server {info['server_version']}")
            if info.get("client_encoding"):
                bits.append(f"encoding {info['client_encoding']}")
            print("# " + ", ".join(bits))
        if not complete:
            _err("ls", f"INCOMPLETE archive: {reader.incomplete_reason}")
            return EXIT_USAGE
    return EXIT_OK


# ------------------------------------------------------------------------- verify

def cmd_verify(args) -> int:
    with _open(args) as reader:
        report = reader.verify(scan=not args.no_scan)
    if args.json:
        from ..report import verify_report
        archive = args.dump
        if "://" in archive:
            from ..archive.remote import shown_url
            archive = shown_url(archive)      # no user info (credentials) in the report
        json.dump(verify_report(report, scanned=not args.no_scan, archive=archive),
                  sys.stdout, indent=1, ensure_ascii=False)
        sys.stdout.write("\n")
        return EXIT_OK if report.ok else EXIT_USAGE if not report.complete else EXIT_FAILED
    for problem in report.problems:
        _err("verify", problem)
    tables = len(report.tables)
    if report.ok:
        what = "checksums, framing and row counts" if not args.no_scan else "checksums"
        print(f"OK: {tables} tables, {report.members} data members, "
              f"{report.rows if not args.no_scan else '?'} rows; {what} hold "
              f"(layout {report.layout})")
        return EXIT_OK
    if not report.complete:
        print(f"INCOMPLETE: {len(report.problems)} problem(s) after {tables} tables")
        return EXIT_USAGE
    print(f"BAD: {len(report.problems)} problem(s) in {tables} tables")
    return EXIT_FAILED


# ------------------------------------------------------------------------- cat

def _text(v: Any) -> Any:
    """A value as CSV text (None stays None: an empty field)."""
    if v is None:
        return None
    if isinstance(v, (bytes, bytearray, memoryview)):
        return "\\x" + bytes(v).hex()
    if isinstance(v, bool):
        return "t" if v else "f"
    if isinstance(v, (_dt.datetime, _dt.date, _dt.time)):
        return v.isoformat()
    if isinstance(v, float):
        if math.isnan(v):
            return "NaN"
        if math.isinf(v):
            return "Infinity" if v > 0 else "-Infinity"
        return repr(v)
    if isinstance(v, (list, tuple, dict)):
        return json.dumps(_jsonable(v), ensure_ascii=False)
    return str(v)


def _csv_line(fields: List[Any]) -> str:
    """One CSV record (RFC 4180 quoting, LF-terminated) of text fields, None empty.

    Python's csv module quotes a field holding a LF but not one holding a lone CR
    (it quotes the characters of its line terminator), and a CR unquoted ends the
    record for most CSV readers: a field is quoted here when it holds a comma, a
    quote, a LF or a CR.  A record of one empty field is ``""`` (else it would be an
    empty line), as the csv module writes it.
    """
    if len(fields) == 1 and not fields[0]:
        return '""\n'
    out = []
    for f in fields:
        if f is None:
            out.append("")
        elif any(c in f for c in ',"\n\r'):
            out.append('"' + f.replace('"', '""') + '"')
        else:
            out.append(f)
    return ",".join(out) + "\n"


def _json_shown(line: str) -> str:
    """A JSON text safe for a terminal: characters that are not printable (DEL, C1
    controls such as CSI, bidirectional overrides, line separators) as ``\\uXXXX``
    escapes, which JSON reads back the same (json.dumps escapes only C0)."""
    if line.isprintable():
        return line
    return "".join(c if c.isprintable() else json.dumps(c)[1:-1] for c in line)


def _jsonable(v: Any) -> Any:
    if v is None or isinstance(v, (bool, int, str)):
        return v
    if isinstance(v, float):
        return v if math.isfinite(v) else _text(v)
    if isinstance(v, decimal.Decimal):
        return str(v)
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    return _text(v)


def cmd_cat(args) -> int:
    if args.limit is not None and args.limit < 0:
        _err("cat", "--limit must not be negative")
        return EXIT_USAGE
    out = sys.stdout
    # on a terminal, control characters in the data (escape sequences, CR) are shown
    # escaped, never obeyed; into a file or a pipe the data goes as it is
    terminal = out.isatty()
    with _open(args) as reader, reader.open_table(args.table) as table:
        rows = table.rows(decode=not args.raw)
        columns = table.info.columns
        n = 0
        csv_out = args.format == "csv"
        if csv_out and not args.no_header and columns:
            out.write(_csv_line([_shown(c) if terminal else c for c in columns]))
        if args.limit == 0:
            return EXIT_OK
        for row in rows:
            if csv_out:
                fields = [_text(v) for v in row]
                if terminal:
                    fields = [None if f is None else _shown(f) for f in fields]
                out.write(_csv_line(fields))
            else:
                if columns and len(columns) == len(row):
                    doc = {c: _jsonable(v) for c, v in zip(columns, row)}
                else:
                    doc = [_jsonable(v) for v in row]
                line = json.dumps(doc, ensure_ascii=False)
                out.write((_json_shown(line) if terminal else line) + "\n")
            n += 1
            if args.limit is not None and n >= args.limit:
                break
        out.flush()
    return EXIT_OK
