"""pg_restore's selection switches on an archive's tables, without a database.

``load`` takes ``-t`` patterns as before (:mod:`.select`: shell patterns on the table
id, ``schema.name`` and the name) and, like pg_restore 17, ``-n`` / ``-N`` (schemas
in / out), ``-T`` (tables out) and ``--filter FILE`` (``include|exclude table|schema``
lines), given as a :class:`~dumpcodec.schema.Selection`.  pg_restore's rule: a table
is restored when it matches some ``-t`` (if any) *and* lies in some ``-n`` schema (if
any), and no ``-N`` or ``-T`` names it.  ``-n``, ``-N`` and ``-T`` use the pattern
rules of ``create`` (psql's: ``*``, ``?``, quoting; a one-part ``-T`` pattern matches
the table name in any schema, there being no search_path offline).  A table of an
archive without definitions (DaCHS) has no schema: ``-n`` never matches it.
"""
from __future__ import annotations

import re
from typing import List, Optional, Sequence, Tuple

from ..errors import NoMatchError, SelectorError
from ..schema.selection import Selection
from ..schema.selectors import pattern_regex, split_pattern
from . import select
from .select import Item


def _regexes(pattern: str, max_parts: int) -> List["re.Pattern[str]"]:
    parts = split_pattern(pattern)
    if len(parts) > max_parts:
        raise SelectorError(f"pattern {pattern!r}: too many dotted parts")
    # as create does: matched as written, or lower-cased when it has capitals
    return [re.compile(pattern_regex(t, q, False)) for t, q in parts]


def _folded(pattern: str, max_parts: int) -> List[List["re.Pattern[str]"]]:
    parts = split_pattern(pattern)
    out = [_regexes(pattern, max_parts)]
    if any(not q and t != t.lower() for t, q in parts):
        out.append([re.compile(pattern_regex(t, q, True)) for t, q in parts])
    return out


def _schema_of(item: Item) -> Optional[str]:
    return item.source[0] if item.source is not None else None


def in_schema(item: Item, pattern: str) -> bool:
    sch = _schema_of(item)
    return sch is not None and any(rx[0].match(sch) for rx in _folded(pattern, 1))


def names_table(item: Item, pattern: str) -> bool:
    d = item.source         # (schema, name) of its definition
    for rx in _folded(pattern, 2):
        if len(rx) == 2:
            if d is not None and rx[0].match(d[0]) and rx[1].match(d[1]):
                return True
        elif (d is not None and rx[0].match(d[1])) or rx[0].match(item.table_id):
            return True
    return False


def wanted(item: Item, tables: Optional[Sequence[str]],
           selection: Optional[Selection]) -> bool:
    """Whether ``item`` is restored (one pass: decided table by table)."""
    if not select.wanted(item, tables):
        return False
    if selection is None:
        return True
    if selection.tables and not select.matching(item, selection.tables):
        return False
    if selection.schemas and not any(in_schema(item, p) for p in selection.schemas):
        return False
    if any(in_schema(item, p) for p in selection.exclude_schemas):
        return False
    return not any(names_table(item, p) for p in selection.exclude_tables)


def sequence_wanted(schema_: str, name: str, selection: Optional[Selection]) -> bool:
    """Whether a free-standing sequence of the archive goes with this selection: in
    some ``-n`` schema (if any) and named by no ``-N`` or ``-T``."""
    if selection is None:
        return True

    def matches(pattern: str, max_parts: int, parts: Tuple[str, ...]) -> bool:
        for rx in _folded(pattern, max_parts):
            if len(rx) == len(parts) and all(r.match(p) for r, p in zip(rx, parts)):
                return True
            if len(rx) == 1 and len(parts) == 2 and rx[0].match(parts[1]):
                return True
        return False

    if selection.schemas and not any(matches(p, 1, (schema_,)) for p in selection.schemas):
        return False
    if any(matches(p, 1, (schema_,)) for p in selection.exclude_schemas):
        return False
    return not any(matches(p, 2, (schema_, name)) for p in selection.exclude_tables)


def choose(items: List[Item], tables: Optional[Sequence[str]],
           selection: Optional[Selection]) -> Tuple[List[Item], List[str]]:
    """The items restored, and the include patterns of ``selection`` that matched
    nothing (an error with ``strict_names``); ``tables`` patterns must each match
    (:func:`.select.select`)."""
    items = select.select(items, tables)
    if selection is None:
        return items, []
    unmatched: List[str] = []
    for pat in selection.tables:
        if not any(select.matching(it, [pat]) for it in items):
            unmatched.append(selection.label("-t", pat))
    for pat in selection.schemas:
        if not any(in_schema(it, pat) for it in items):
            unmatched.append(selection.label("-n", pat))
    if unmatched and selection.strict_names:
        raise NoMatchError(f"no matching tables were found for {'; '.join(unmatched)}")
    return [it for it in items if wanted(it, None, selection)], unmatched


__all__ = ["choose", "in_schema", "names_table", "sequence_wanted", "wanted"]
