"""Whole-archive verification without a database (``dumpcodec verify``).

One pass over everything: each data member's SHA-256 against its table's footer (and,
through the footer checks, the manifest), its COPY framing through the codec's
Scanner (text members: complete lines, the field count, and nothing that would make
PostgreSQL split rows otherwise: :mod:`.textcheck`), row counts, layout,
index and end marker.  Data is read in pieces, so memory stays at about one piece
whatever the member sizes.  Problems are collected, one line each, naming the member
and table; a structural problem (truncation, corrupt compression) ends the pass.
"""
from __future__ import annotations

from typing import Any, List, Optional

from ..copy import Scanner
from ..errors import ArchiveError, CopyFormatError, IncompleteArchiveError
from .model import VerifyReport
from .textcheck import TextCopyCheck


def _scan_binary(walker, entry, info) -> Optional[int]:
    ncols = len(info.columns) if info.columns is not None else None
    scanner = Scanner(ncols)
    error = None
    for piece in walker.stream_member(entry):
        if error is None:
            try:
                scanner.feed(bytes(piece))
            except CopyFormatError as exc:
                error = exc      # keep reading: the checksum is checked as well
    if error is None:
        try:
            scanner.close()
        except CopyFormatError as exc:
            error = exc
    if error is not None:
        walker.problem(ArchiveError(f"member {entry.name!r} (table {info.table_id!r}): "
                                    f"COPY framing: {error}"))
        return None
    return scanner.rows


def _scan_text(walker, entry, info, encoding: Optional[str]) -> Optional[int]:
    where = f"member {entry.name!r} (table {info.table_id!r})"
    check = TextCopyCheck(where, encoding)
    error = None
    lines = tabs = 0
    last = b"\n"
    for piece in walker.stream_member(entry):
        data = bytes(piece)
        lines += data.count(b"\n")
        tabs += data.count(b"\t")
        if data:
            last = data[-1:]
        if error is None:
            try:
                check.piece(data)
            except ArchiveError as exc:
                error = exc      # keep reading: the checksum is checked as well
    if error is None and entry.size and last == b"\n":
        try:
            check.close()
        except ArchiveError as exc:
            error = exc
    if error is not None:
        walker.problem(error)
        return None
    if entry.size and last != b"\n":
        walker.problem(ArchiveError(f"{where}: text COPY data does not end with a newline"))
        return None
    if info.columns is not None and lines and tabs != lines * (len(info.columns) - 1):
        walker.problem(ArchiveError(
            f"{where}: {tabs} field separators in {lines} lines, expected "
            f"{len(info.columns) - 1} per line for {len(info.columns)} columns"))
    return lines


def verify_reader(reader: Any, *, scan: bool = True) -> VerifyReport:
    """What :meth:`.reader.DumpReader.verify` returns (see there)."""
    problems: List[str] = []
    complete = False
    walker = None
    members = rows = 0
    encoding = reader.info.get("client_encoding")   # DaCHS: none recorded
    try:
        walker = reader.walk(lenient=True)
        for ev in walker.events():
            kind = ev[0]
            if kind == "info":
                encoding = ev[1].get("client_encoding")
            if kind not in ("data", "dachs"):
                continue
            info, entry = ev[1], ev[2]
            members += 1
            if scan:
                if info.format == "binary":
                    n = _scan_binary(walker, entry, info)
                else:
                    n = _scan_text(walker, entry, info, encoding)
                if n is not None:
                    walker.record_rows(entry, n)
                    rows += n
                    if kind == "dachs":
                        info.rows = n
            else:
                for _ in walker.stream_member(entry):
                    pass
        complete = True
    except IncompleteArchiveError as exc:
        problems.append(f"incomplete: {exc}")
    except ArchiveError as exc:
        problems.append(str(exc))
    if walker is not None:
        problems[:0] = [str(p) for p in walker.problems]
        reader.record_walk(walker)
        tables = walker.tables
        if walker.layout == "dachs" and complete:
            rows_by_member = walker.rows_by_member()
            for t in tables:
                counts = [rows_by_member.get(m.name) for m in t.members]
                t.rows = sum(counts) if all(c is not None for c in counts) else None
                for m, c in zip(t.members, counts):
                    m.rows = c
    else:
        tables = []
    return VerifyReport(walker.layout if walker else None, tables, problems, complete,
                        members, rows)


__all__ = ["verify_reader"]
