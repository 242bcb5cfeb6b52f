"""What :func:`~dumpcodec.restore.restore_dump` returns: per table, and in all."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import List, Optional, Tuple

from .. import pump


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

    @property
    def rows(self) -> int:
        return sum(t.rows for t in self.ok)

    @property
    def nbytes(self) -> int:
        return sum(t.nbytes for t in self.ok)

    @property
    def success(self) -> bool:
        return not self.failed
