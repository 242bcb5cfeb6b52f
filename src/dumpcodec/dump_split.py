"""Big tables in a dump: one table read as several heap ranges at once.

With ``jobs > 1`` a table larger than ``split_larger_than`` bytes (heap and TOAST,
``pg_table_size``) is read as ``jobs * RANGES_PER_JOB`` ranges of its heap pages
(``WHERE ctid >= '(a,0)' AND ctid < '(b,0)'``: a TID range scan, PostgreSQL 14+),
each by whichever dump worker is free, all in the dump's one exported snapshot.  The
first range starts at page 0 and the last has no end, so together they cover the whole
heap, pages the table gained after planning included (rows there are not in the
snapshot anyway); no two overlap.

Each range is a complete COPY stream of its own.  The workers put its blocks, tagged
with the range's number, in the table's one bounded queue (``QUEUE_BLOCKS`` blocks per
worker reading the table); the single archive writer takes them in the order they
arrive, from whichever range has one ready, and cuts each range into chunk members of
its own (:meth:`TableWriter.write_part`).  So no reader waits for another range, memory
stays at the queue plus one chunk being cut per range being read, and the archive is
still one stream in which the table has more chunks.  The order of the chunks within
the table depends on timing (each member records its ``range``); the set of rows does
not.  The header's ``extra.split`` records the ranges (docs/FORMAT.md 5.2).

Not split: tables dumped as text COPY, with columns as text, through a partitioned
root, or from a server older than 14 (a TID range there would be a full scan per
range; such a table is read whole, with a log note).
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import psycopg
from psycopg import sql

log = logging.getLogger("dumpcodec.dump")

#: default of ``split_larger_than``: tables above this many bytes are split (with -j > 1)
DEFAULT_SPLIT_LARGER_THAN = 256 << 20
#: ranges per dump worker: more ranges than workers even out ranges that read slower
RANGES_PER_JOB = 4
#: the server version TID range scans appeared in
MIN_SERVER_VERSION = 140000


@dataclass
class Part:
    """One range of a split table: heap pages ``first`` to ``end`` (exclusive; None: to
    the end of the heap), read by ``query``."""
    number: int
    first: int
    end: Optional[int]
    query: sql.Composable


@dataclass
class Split:
    """How one table is read: its ranges, and the heap's pages when planned."""
    parts: List[Part]
    pages: int

    def extra(self) -> Dict[str, Any]:
        """``extra.split`` of the table's header (docs/FORMAT.md 5.2)."""
        return {"method": "ctid", "pages": self.pages,
                "ranges": [[p.first, p.end] for p in self.parts]}


def _tid(page: int) -> sql.Composable:
    return sql.SQL("{}::pg_catalog.tid").format(sql.Literal(f"({page},0)"))


def range_query(plan: Any, first: int, end: Optional[int]) -> sql.Composable:
    """``COPY (SELECT columns FROM ONLY table WHERE ctid range [AND (where)])``."""
    conds = []
    if first > 0:
        conds.append(sql.SQL("ctid >= {}").format(_tid(first)))
    if end is not None:
        conds.append(sql.SQL("ctid < {}").format(_tid(end)))
    if plan.where is not None:
        # the user's own condition (text, run with the user's credentials, as unsplit)
        conds.append(sql.SQL("({})").format(sql.SQL(plan.where)))
    select = sql.SQL("SELECT {} FROM ONLY {}").format(
        sql.SQL(", ").join(sql.Identifier(c) for c in plan.columns),
        sql.Identifier(plan.schema, plan.name))
    if conds:
        select = sql.SQL("{} WHERE {}").format(select, sql.SQL(" AND ").join(conds))
    return sql.SQL("COPY ({}) TO STDOUT (FORMAT binary)").format(select)


def page_bounds(pages: int, n: int) -> List[Tuple[int, Optional[int]]]:
    """``n`` contiguous ranges ``(first, end)`` over ``pages`` heap pages: the first
    from page 0, the last without an end."""
    n = max(1, min(n, pages))
    cuts = [pages * k // n for k in range(1, n)]
    starts = [0] + cuts
    ends: List[Optional[int]] = list(cuts) + [None]
    return list(zip(starts, ends))


def _eligible(plan: Any) -> bool:
    return (plan.query is not None and plan.format == "binary" and not plan.via_root
            and not plan.as_text)


def plan_splits(conn: psycopg.Connection, plans: Sequence[Any], jobs: int,
                larger_than: int) -> Dict[int, Split]:
    """The tables of ``plans`` (by position) to read as ranges, and their ranges.

    Asks the server only about tables whose total size (``estimated_bytes``, indexes
    included) is above the threshold, so small tables cost no round trip.
    """
    if jobs < 2 or larger_than <= 0:
        return {}
    big = [i for i, p in enumerate(plans)
           if _eligible(p) and (p.estimated_bytes or 0) > larger_than]
    if not big:
        return {}
    if conn.info.server_version < MIN_SERVER_VERSION:
        log.info("not splitting %s: TID range scans need PostgreSQL 14 or later "
                 "(server %s); each is read by one connection",
                 ", ".join(plans[i].table_id for i in big), conn.info.server_version)
        return {}
    out: Dict[int, Split] = {}
    block = int(conn.execute("SELECT pg_catalog.current_setting('block_size')").fetchone()[0])
    for i in big:
        p = plans[i]
        ident = sql.Identifier(p.schema, p.name).as_string(conn)
        size, heap = conn.execute(
            "SELECT pg_catalog.pg_table_size(%s::regclass), "
            "pg_catalog.pg_relation_size(%s::regclass)", (ident, ident)).fetchone()
        pages = heap // block
        if size <= larger_than or pages < 2:
            continue
        bounds = page_bounds(pages, jobs * RANGES_PER_JOB)
        parts = [Part(k, a, b, range_query(p, a, b)) for k, (a, b) in enumerate(bounds)]
        out[i] = Split(parts, pages)
        log.info("%s: %d bytes, read as %d ranges of its %d heap pages", p.table_id, size,
                 len(parts), pages)
    return out


def data_item(part: int, data: bytes) -> Tuple[str, int, bytes]:
    """What a worker queues for a block of range ``part``."""
    return ("data", part, data)


def end_item(part: int, rows: int, nbytes: int, t0: float) -> Tuple[Any, ...]:
    """What a worker queues when range ``part`` is read."""
    return ("end", part, rows, nbytes, t0, time.perf_counter())


def write_split(tw: Any, split: Split, get: Callable[[], Any], advance: Callable[[int], None]
                ) -> Tuple[int, int, float]:
    """The writer's side: take the ranges' blocks from ``get()`` as they come until every
    range has ended; return ``(rows, nbytes, seconds)`` (seconds: first range's start to
    last range's end)."""
    open_ = {p.number for p in split.parts}
    rows = nbytes = 0
    t_first: Optional[float] = None
    t_last = 0.0
    while open_:
        item = get()
        kind = item[0]
        if kind == "data":
            tw.write_part(item[1], item[2])
            advance(len(item[2]))
        elif kind == "end":
            _, k, r, n, t0, t1 = item
            tw.close_part(k)
            open_.discard(k)
            rows += r
            nbytes += n
            t_first = t0 if t_first is None else min(t_first, t0)
            t_last = max(t_last, t1)
        elif kind == "error":
            raise item[1]
        else:  # pragma: no cover - a programming error
            raise RuntimeError(f"unexpected item {kind!r} from a dump worker")
    return rows, nbytes, t_last - (t_first or t_last)


__all__ = ["DEFAULT_SPLIT_LARGER_THAN", "Part", "Split", "plan_splits", "page_bounds",
           "range_query", "write_split"]
