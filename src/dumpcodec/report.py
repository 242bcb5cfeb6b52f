"""The JSON report of ``create``, ``load`` and ``verify`` (``--json``), version 1.

One document per command, the same shape for all three, so that a wrapper never
parses human text; docs/JSON.md describes it and ``docs/report.schema.json`` is its
JSON Schema.  The library's result objects build it (``DumpSummary.to_dict()``,
``RestoreSummary.to_dict()``, :func:`verify_report`); the command line prints it.

A new key may be added within a version; a key is never removed or changes meaning
without a new ``version``.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Dict, Iterable, List, Optional

if TYPE_CHECKING:   # pragma: no cover
    from .archive import VerifyReport

#: the ``version`` of the document this module writes
REPORT_VERSION = 1

#: values of a table row's ``status``
STATUSES = ("ok", "failed", "skipped")


def report(command: str, *, ok: bool, tables: Iterable[Dict[str, Any]],
           seconds: Optional[float] = None, warnings: Iterable[str] = (),
           pump: Optional[str] = None, error: Optional[str] = None,
           extra: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
    """A report document: the common keys, ``totals`` summed from ``tables``, and the
    command's own keys from ``extra``."""
    rows: List[Dict[str, Any]] = list(tables)
    totals = {"tables": len(rows),
              "ok": sum(1 for t in rows if t["status"] == "ok"),
              "failed": sum(1 for t in rows if t["status"] == "failed"),
              "skipped": sum(1 for t in rows if t["status"] == "skipped"),
              "rows": sum(t.get("rows") or 0 for t in rows),
              "bytes": sum(t.get("bytes") or 0 for t in rows)}
    doc: Dict[str, Any] = {
        "report": "dumpcodec", "version": REPORT_VERSION, "command": command,
        "ok": bool(ok), "error": error,
        "seconds": None if seconds is None else round(seconds, 6),
        "pump": pump, "totals": totals, "tables": rows, "warnings": list(warnings)}
    doc.update(extra or {})
    return doc


def error_report(command: str, error: str) -> Dict[str, Any]:
    """The report of a command that stopped before any table (bad input, no
    connection): ``ok`` false, ``error`` the one-line message, no tables."""
    return report(command, ok=False, tables=[], error=error)


def _names(problem: str, table_id: str) -> bool:
    # verify's messages name a table as "table 'ID'" (archive/verify.py)
    return f"table {table_id!r}" in problem


def verify_report(rep: "VerifyReport", *, scanned: bool = True,
                  archive: Optional[str] = None) -> Dict[str, Any]:
    """The report of ``dumpcodec verify`` from :meth:`DumpReader.verify`'s result: a
    row per table, ``failed`` with the problems that name it as ``reason``."""
    tables = []
    for t in rep.tables:
        problems = [p for p in rep.problems if _names(p, t.table_id)]
        status = "failed" if problems or not t.complete else "ok"
        reason = "; ".join(problems) if problems else (
            None if t.complete else "the archive ends before this table's end")
        tables.append({"table_id": t.table_id, "status": status, "reason": reason,
                       "rows": t.rows, "bytes": t.raw_size, "seconds": None,
                       "format": t.format, "members": len(t.members)})
    return report("verify", ok=rep.ok, tables=tables, error=None if rep.complete else (
        rep.problems[-1] if rep.problems else "incomplete archive"),
        extra={"archive": archive, "verify": {
            "layout": rep.layout, "complete": rep.complete, "members": rep.members,
            "rows": rep.rows if scanned else None, "scanned": scanned,
            "problems": list(rep.problems)}})


__all__ = ["REPORT_VERSION", "STATUSES", "error_report", "report", "verify_report"]
