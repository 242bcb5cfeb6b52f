"""The ``extra.split`` record of a table's header (docs/FORMAT.md 5.2), type-checked."""
from __future__ import annotations

from typing import Any

from ..errors import ArchiveError


def check_split(split: Any, where: str) -> None:
    """``extra.split`` (a table dumped as ranges of its heap or of its key; docs/FORMAT.md
    5.2).  Informative: nothing reads it to restore; checked so that a tool showing it
    gets the types the format promises."""
    if split is None:
        return
    method = split.get("method") if isinstance(split, dict) else None
    if method not in ("ctid", "key"):
        raise ArchiveError(f"{where}: 'split' must be an object with method 'ctid' or "
                           f"'key'")
    if method == "key" and not isinstance(split.get("column"), str):
        raise ArchiveError(f"{where}: 'split.column' must be a string (the key column)")
    ranges = split.get("ranges")
    if not isinstance(ranges, list) or not ranges:
        raise ArchiveError(f"{where}: 'split.ranges' must be a non-empty list")
    low = 0 if method == "ctid" else None
    for i, r in enumerate(ranges):
        if (not isinstance(r, list) or len(r) != 2
                or not all(v is None or (isinstance(v, int) and not isinstance(v, bool)
                                         and (low is None or v >= low)) for v in r)):
            what = ("first page or null, end page or null" if method == "ctid"
                    else "first key value or null, end key value or null")
            raise ArchiveError(f"{where}: 'split.ranges[{i}]' must be [{what}]")
