"""Big tables in a dump: one table read as several ranges at once.

With ``jobs > 1`` a table larger than ``split_larger_than`` bytes (heap and TOAST,
``pg_table_size``) is read as ``jobs * RANGES_PER_JOB`` ranges, each by whichever dump
worker is free, all in the dump's one exported snapshot.  Two ways to cut it
(``split_method``):

``ctid`` (the default from PostgreSQL 14): ranges of its heap pages (``WHERE ctid >=
'(a,0)' AND ctid < '(b,0)'``: a TID range scan).  The first range starts at page 0 and
the last has no end, so together they cover the whole heap, pages the table gained
after planning included (rows there are not in the snapshot anyway); no two overlap.

``key`` (the default before 14, where a TID range would scan the whole table for every
range): ranges of the values of a single-column ``smallint``/``integer``/``bigint``
primary key (``WHERE key >= a AND key < b``), cut evenly between the key's minimum and
maximum as the dump's snapshot sees them.  The first range has no lower bound and the
last no upper bound, so together they cover every value (a primary key is never NULL);
no two overlap.  Even cuts of the values are even ranges of rows only where the keys
are spread evenly; a key range with few rows gives ranges that are mostly empty, which
costs an index probe each.  The ranges are cheap when the key follows the heap's order
(a serial key: index scans, each reading its part of the heap) and dear when it does
not (bitmap heap scans, each reading most of the heap): on PostgreSQL 15, the 8 ranges
of a 17,046-page table read 21,178 buffers in all with the key in heap order, 141,322
with the same rows in random order (a ctid split: 17,046).  A big table without such a
key is read whole (logged).

Each range is a complete COPY stream of its own.  The workers put its blocks, tagged
with the range's number, in the table's one bounded queue (``QUEUE_BLOCKS`` blocks per
worker reading the table); the single archive writer takes them in the order they
arrive, from whichever range has one ready, and cuts each range into chunk members of
its own (:meth:`TableWriter.write_part`).  So no reader waits for another range, memory
stays at the queue plus one chunk being cut per range being read, and the archive is
still one stream in which the table has more chunks.  The order of the chunks within
the table depends on timing (each member records its ``range``); the set of rows does
not.  The header's ``extra.split`` records the ranges (docs/FORMAT.md 5.2).

Not split: tables dumped as text COPY, with columns as text, or through a partitioned
root; with ``ctid`` on a server older than 14, or ``key`` on a table without such a key
(read whole, with a log note naming why).
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
#: ``split_method`` values: ``auto`` is ``ctid`` from PostgreSQL 14, ``key`` before
SPLIT_METHODS = ("auto", "ctid", "key")
#: the primary key types a table can be split by (type OID: name)
KEY_TYPES = {21: "smallint", 23: "integer", 20: "bigint"}


@dataclass
class Part:
    """One range of a split table, read by ``query``: heap pages (``ctid``) or key values
    (``key``) from ``first`` (None: no lower bound) to ``end`` (exclusive; None: no
    upper bound)."""
    number: int
    first: Optional[int]
    end: Optional[int]
    query: sql.Composable


@dataclass
class Split:
    """How one table is read: its ranges; the heap's pages when planned (``ctid``) or the
    key column (``key``)."""
    parts: List[Part]
    pages: Optional[int] = None
    column: Optional[str] = None

    def extra(self) -> Dict[str, Any]:
        """``extra.split`` of the table's header (docs/FORMAT.md 5.2)."""
        ranges = [[p.first, p.end] for p in self.parts]
        if self.column is None:
            return {"method": "ctid", "pages": self.pages, "ranges": ranges}
        return {"method": "key", "column": self.column, "ranges": ranges}


def _tid(page: int) -> sql.Composable:
    return sql.SQL("{}::pg_catalog.tid").format(sql.Literal(f"({page},0)"))


def range_query(plan: Any, first: Optional[int], end: Optional[int],
                key: Optional[str] = None) -> sql.Composable:
    """``COPY (SELECT columns FROM ONLY table WHERE range [AND (where)])``: a ctid range of
    heap pages, or with ``key`` a range of that column's values."""
    conds = []
    if key is None:
        col: sql.Composable = sql.SQL("ctid")
        low, high = (None if not first else _tid(first)), (None if end is None else _tid(end))
    else:
        col = sql.Identifier(key)
        # plain integer literals: the comparison with an int2/int4/int8 column stays in
        # the btree operator family of integers, so the primary key's index serves it
        low, high = (None if first is None else sql.Literal(first)), \
            (None if end is None else sql.Literal(end))
    if low is not None:
        conds.append(sql.SQL("{} >= {}").format(col, low))
    if high is not None:
        conds.append(sql.SQL("{} < {}").format(col, high))
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


def key_bounds(low: int, high: int, n: int) -> List[Tuple[Optional[int], Optional[int]]]:
    """``n`` contiguous ranges ``(first, end)`` of key values cut evenly between ``low``
    and ``high`` (the key's minimum and maximum, ``low <= high``): the first without a
    lower bound, the last without an upper bound, fewer when there are fewer values."""
    span = high - low + 1
    n = max(1, min(n, span))
    cuts = [low + span * k // n for k in range(1, n)]
    starts: List[Optional[int]] = [None] + cuts
    ends: List[Optional[int]] = list(cuts) + [None]
    return list(zip(starts, ends))


def split_key(plan: Any) -> Optional[str]:
    """The column of ``plan``'s table's primary key when it is one column of type
    smallint, integer or bigint, else None."""
    d = plan.definition
    for c in d.constraints:
        if c.kind == "primary_key":
            if len(c.columns) != 1:
                return None
            col = d.column(c.columns[0])
            return col.name if col.type_oid in KEY_TYPES and not col.is_array else None
    return None


def _key_range(conn: psycopg.Connection, plan: Any, key: str
               ) -> Optional[Tuple[Optional[int], Optional[int]]]:
    """The key's minimum and maximum in the dump's snapshot (two probes of the primary
    key's index); None when the server refuses (e.g. no SELECT on the column)."""
    query = sql.SQL("SELECT pg_catalog.min({k}), pg_catalog.max({k}) FROM ONLY {t}").format(
        k=sql.Identifier(key), t=sql.Identifier(plan.schema, plan.name))
    conn.execute("SAVEPOINT dumpcodec_split")
    try:
        low, high = conn.execute(query).fetchone()
        conn.execute("RELEASE SAVEPOINT dumpcodec_split")
    except psycopg.Error as exc:
        conn.execute("ROLLBACK TO SAVEPOINT dumpcodec_split")
        log.info("not splitting %s: reading the bounds of its key %s failed: %s",
                 plan.table_id, key, getattr(exc.diag, "message_primary", None) or exc)
        return None
    return low, high


def _eligible(plan: Any) -> bool:
    return (plan.query is not None and plan.format == "binary" and not plan.via_root
            and not plan.as_text)


def check_method(method: str) -> None:
    """ValueError unless ``method`` is one of :data:`SPLIT_METHODS`."""
    if method not in SPLIT_METHODS:
        raise ValueError(f"split_method must be one of {', '.join(SPLIT_METHODS)}, "
                         f"not {method!r}")


def choose_method(method: str, server_version: int) -> str:
    """``method`` itself, or for ``'auto'``: ``'ctid'`` on a server with TID range scans
    (PostgreSQL 14+), ``'key'`` before."""
    if method != "auto":
        return method
    return "ctid" if server_version >= MIN_SERVER_VERSION else "key"


def plan_splits(conn: psycopg.Connection, plans: Sequence[Any], jobs: int,
                larger_than: int, method: str = "auto") -> Dict[int, Split]:
    """The tables of ``plans`` (by position) to read as ranges, and their ranges.

    ``conn`` is in the dump's snapshot (the key's bounds are read there).  ``method``:
    ``'ctid'``, ``'key'``, or ``'auto'`` (``ctid`` from PostgreSQL 14, ``key`` before).
    Asks the server only about tables whose total size (``estimated_bytes``, indexes
    included) is above the threshold, so small tables cost no round trip.
    """
    check_method(method)
    if jobs < 2 or larger_than <= 0:
        return {}
    big = [i for i, p in enumerate(plans)
           if _eligible(p) and (p.estimated_bytes or 0) > larger_than]
    if not big:
        return {}
    version = conn.info.server_version
    tid_ok = version >= MIN_SERVER_VERSION
    method = choose_method(method, version)
    if method == "ctid" and not tid_ok:
        log.info("not splitting %s: TID range scans need PostgreSQL 14 or later "
                 "(server %s); each is read by one connection",
                 ", ".join(plans[i].table_id for i in big), version)
        return {}
    out: Dict[int, Split] = {}
    block = int(conn.execute("SELECT pg_catalog.current_setting('block_size')").fetchone()[0])
    n = jobs * RANGES_PER_JOB
    for i in big:
        p = plans[i]
        ident = sql.Identifier(p.schema, p.name).as_string(conn)
        size, heap = conn.execute(
            "SELECT pg_catalog.pg_table_size(%s::regclass), "
            "pg_catalog.pg_relation_size(%s::regclass)", (ident, ident)).fetchone()
        pages = heap // block
        if size <= larger_than:
            continue
        if method == "ctid":
            if pages < 2:
                continue
            bounds = page_bounds(pages, n)
            parts = [Part(k, a, b, range_query(p, a, b)) for k, (a, b) in enumerate(bounds)]
            out[i] = Split(parts, pages=pages)
            log.info("%s: %d bytes, read as %d ranges of its %d heap pages", p.table_id,
                     size, len(parts), pages)
            continue
        key = split_key(p)
        if key is None:
            log.info("not splitting %s (%d bytes): no single-column smallint, integer or "
                     "bigint primary key to cut into ranges%s; read by one connection",
                     p.table_id, size, "" if tid_ok else
                     f", and TID range scans need PostgreSQL 14 (server {version})")
            continue
        low_high = _key_range(conn, p, key)
        if low_high is None:
            continue
        low, high = low_high
        if low is None or low == high:
            log.info("not splitting %s: its key %s has %s in the snapshot", p.table_id,
                     key, "no rows" if low is None else "one value")
            continue
        bounds = key_bounds(low, high, n)
        parts = [Part(k, a, b, range_query(p, a, b, key)) for k, (a, b) in enumerate(bounds)]
        out[i] = Split(parts, column=key)
        log.info("%s: %d bytes, read as %d ranges of its key %s (%d to %d)", p.table_id,
                 size, len(parts), key, low, high)
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


__all__ = ["DEFAULT_SPLIT_LARGER_THAN", "SPLIT_METHODS", "Part", "Split", "plan_splits",
           "page_bounds", "key_bounds", "split_key", "check_method", "choose_method",
           "range_query", "write_split"]
