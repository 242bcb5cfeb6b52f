"""A small program of an embedding tool, type-checked with ``mypy --strict`` by
tests/project/test_typing.py: the public API's annotations must carry it without an ignore."""
from __future__ import annotations

import io
import logging
from typing import Dict, List, Optional, Sequence, Tuple

import psycopg

import dumpcodec
from dumpcodec import Selection, create_dump, open_dump, restore_dump
from dumpcodec import copy as codec
from dumpcodec import pump
from dumpcodec.progress import Progress


class Counter(Progress):
    def __init__(self) -> None:
        self.done: List[Tuple[str, int]] = []

    def table_done(self, table_id: str, rows: int, nbytes: int, seconds: float,
                   error: Optional[str] = None) -> None:
        self.done.append((table_id, rows))


def backup(dsn: str, path: str) -> int:
    summary = create_dump(dsn, None, path, jobs=2, progress=Counter())
    report: Dict[str, object] = summary.to_dict()
    assert report["version"] == 1
    picked = create_dump(dsn, Selection(schemas=["app"], exclude_tables=["app.log*"]),
                         io.BytesIO(), backend="gzip", binary=False)
    return summary.rows + picked.rows


def restore(dsn: str, path: str) -> List[str]:
    result = restore_dump(dsn, path, if_exists="replace", jobs=2)
    failed: List[str] = [f"{tid}: {why}" for tid, why in result.failed]
    rows: int = sum(t.rows for t in result.ok)
    logging.getLogger("dumpcodec").info("restored %d rows", rows)
    return failed


def look(path: str) -> Dict[str, Optional[int]]:
    out: Dict[str, Optional[int]] = {}
    with open_dump(path) as dump:
        for info in dump.tables():
            out[info.table_id] = info.rows
    return out


def decode(pieces: Sequence[bytes]) -> int:
    dec = codec.Decoder(["int8", "text", "numeric(12,2)"])
    n = 0
    for piece in pieces:
        rows = dec.feed(piece)
        n += len(rows)
    dec.close()
    return n


def copy_rows(conn: psycopg.Connection[Tuple[object, ...]]) -> int:
    total = 0
    query = "COPY public.orders (id, total) TO STDOUT (FORMAT binary)"
    for batch in pump.copy_out_rows(conn, query, ["int8", "numeric(12,2)"]):
        total += len(batch)
    return total


def tables_of(conn: psycopg.Connection[Tuple[object, ...]]) -> List[str]:
    checked = dumpcodec.get_tables_for_ids(conn, ["public.orders"])
    names = [f"{t.schema}.{t.name}" for t in checked]
    names += [t.name for t in dumpcodec.iter_db_tables(conn, "public")]
    names += sorted(dumpcodec.backends)
    return names
