"""What :func:`~dumpcodec.restore.restore_dump` returns: per table, and in all."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Tuple

from .. import pump


#: how :meth:`RestoreSummary.grouped_failures` names the table in a shared reason
TABLE = "<table>"


@dataclass
class TableRestoreResult:
    """One table restored (or skipped)."""
    table_id: str
    target: str                 # schema.name it went to
    action: str                 # created, replaced, appended, truncated, skipped
    rows: int = 0
    nbytes: int = 0
    seconds: float = 0.0
    reencoded: bool = False     # rows went through the codec (schema drift)
    warning: Optional[str] = None   # something that did not stop it (ANALYZE failed)
    notes: List[str] = field(default_factory=list)   # what was not restored, and why

    def to_dict(self) -> Dict[str, Any]:
        """This table as a row of the JSON report (docs/JSON.md)."""
        return {"table_id": self.table_id, "status": "ok", "reason": None,
                "rows": self.rows, "bytes": self.nbytes, "seconds": round(self.seconds, 6),
                "target": self.target, "action": self.action,
                "reencoded": self.reencoded, "warning": self.warning,
                "notes": list(self.notes)}


@dataclass
class RestoreSummary:
    """The result of :func:`~dumpcodec.restore.restore_dump`.

    ``failed``: ``(table id, reason)`` of every table (or foreign key, sequence) that
    was not restored; ``skipped``: ids left alone (``if_exists='skip'``, or DaCHS ids
    no ``definitions`` entry maps), with the reason in ``warnings``.
    """
    ok: List[TableRestoreResult] = field(default_factory=list)
    failed: List[Tuple[str, str]] = field(default_factory=list)
    skipped: List[str] = field(default_factory=list)
    warnings: List[str] = field(default_factory=list)
    seconds: float = 0.0
    pump: str = pump.PUMP
    # table id -> its failure's reason with the table's own names taken out
    _templates: Dict[str, str] = field(default_factory=dict, repr=False)

    def add_failure(self, table_id: str, reason: str, names: Sequence[str] = ()) -> None:
        """Record a failed table; ``names``: how the reason may name the table (its id,
        its target), taken out so that failures of the same kind group together."""
        self.failed.append((table_id, reason))
        template = reason
        for n in sorted({table_id, *names}, key=len, reverse=True):
            if n:
                template = template.replace(n, TABLE)
        self._templates[table_id] = template

    def grouped_failures(self) -> List[Tuple[str, List[str]]]:
        """The failures grouped by reason: ``(reason, [table ids])`` in the order of
        their first failure; a reason shared by several tables names the table as
        ``TABLE`` ("table TABLE already exists ...")."""
        groups: Dict[str, List[str]] = {}
        for tid, reason in self.failed:
            groups.setdefault(self._templates.get(tid, reason), []).append(tid)
        return [(reason if len(ids) > 1 else dict(self.failed).get(ids[0], reason), ids)
                for reason, ids in groups.items()]

    @property
    def rows(self) -> int:
        return sum(t.rows for t in self.ok)

    @property
    def nbytes(self) -> int:
        return sum(t.nbytes for t in self.ok)

    @property
    def success(self) -> bool:
        return not self.failed

    def table_rows(self) -> List[Dict[str, Any]]:
        """One row per table, in the order restored: ``ok`` (with ``failed`` and the
        reason when something after its data failed, e.g. a foreign key),
        ``skipped`` (the reason from ``warnings``), or ``failed``; a failure that
        names no table of the archive (``'archive'``: the stream broke) is a row too."""
        rows: List[Dict[str, Any]] = [r.to_dict() for r in self.ok]
        by_id = {r["table_id"]: r for r in rows}
        for tid in self.skipped:
            why = next((w for w in self.warnings if w.startswith(f"{tid}:")), None)
            row = {"table_id": tid, "status": "skipped",
                   "reason": why or "it exists already (if_exists='skip')",
                   "rows": 0, "bytes": 0, "seconds": 0.0}
            rows.append(row)
            by_id.setdefault(tid, row)
        for tid, why in self.failed:
            row = by_id.get(tid)
            if row is None:
                row = {"table_id": tid, "status": "failed", "reason": why,
                       "rows": 0, "bytes": 0, "seconds": 0.0}
                rows.append(row)
                by_id[tid] = row
            else:
                row["status"] = "failed"
                row["reason"] = why if not row.get("reason") else f"{row['reason']}; {why}"
        return rows

    def to_dict(self) -> Dict[str, Any]:
        """The JSON report of ``dumpcodec load --json`` (docs/JSON.md)."""
        from ..report import report
        return report("load", ok=self.success, tables=self.table_rows(),
                      seconds=self.seconds, warnings=self.warnings, pump=self.pump)
