"""Phase 3 of a table's restore: its chunks into one ``COPY ... FROM STDIN``.

The chunk members of a table are joined into one COPY stream (headers and trailers
between chunks dropped) and fed to :mod:`dumpcodec.pump` in large writes, read one
chunk ahead by a helper thread when there are several; a table without rows sends no
COPY at all (:func:`_copy_joined`).  Schema drift (a live table with widened types) loads
by decoding the dump's rows and encoding them with the live types; a DaCHS table gets
a decode test of its first chunk with the live column types.
"""
from __future__ import annotations

import contextlib
from typing import Any, Callable, Iterable, Iterator, List, Optional, Sequence, Tuple

from psycopg import sql

from .. import copy as codec
from .. import pump, schema
from ..copy.joiner import ChunkJoiner
from ..copy.pure import SIGNATURE
from ..errors import CopyFormatError, RestoreError
from ..progress import Progress


#: chunks a table's reader thread may hold ahead of the COPY (one being sent, one
#: ready): memory is about READ_AHEAD chunks of the archive's chunk size
READ_AHEAD = 2


def _read_ahead(source: Iterable[Any], depth: int = READ_AHEAD) -> Iterator[Any]:
    """Iterate ``source`` in a helper thread (:func:`dumpcodec.pump.run_ahead`): the
    next chunk is read (decompression, checksum; both release the GIL) while the
    previous one is sent, at most ``depth`` chunks at a time.  Closed early, the
    thread is gone before this returns, so ``source`` may be resumed (a one-pass
    reader skipping the rest).  ``depth`` 0: no thread, ``source`` read in turn."""
    if depth <= 0:
        return (item for item in source)   # closing it leaves ``source`` open, as below
    def produce(put) -> None:
        for item in source:
            put(item)
    # the item the producer holds while it waits for a slot counts as one
    return pump.run_ahead(produce, depth - 1, "dumpcodec-read-ahead")


def _decode_test(chunk, live, columns, table_id) -> None:
    """DaCHS dumps carry no types: decode the first rows with the live types."""
    dec = codec.Decoder(schema.type_specs(live, columns), names=columns)
    try:
        dec.feed(bytes(memoryview(chunk)[:1 << 20]))
    except (CopyFormatError, ValueError) as exc:
        raise RestoreError(f"{table_id}: the dump's data does not fit the live table's "
                           f"columns ({', '.join(columns)}): {exc}") from None



def copy_in(conn, table_id: str, fmt: str, columns: Optional[List[str]],
            chunks: Callable[[], Iterable[bytes]], schema_: str, name: str, tdef: Any,
            live: Any, expected_rows: Optional[int], progress: Progress,
            as_text: Optional[Sequence[str]] = None,
            read_ahead: int = READ_AHEAD) -> Tuple[int, int, bool]:
    """Load the table's data; returns (rows, bytes, re-encoded).

    ``read_ahead``: chunks read ahead by a helper thread; 0 (a table of one chunk,
    which has nothing to overlap) reads them in this thread, without a thread's
    start and hand-offs.

    ``as_text``: columns that travel as text (OID-alias types by name, vectors): the
    rows go into a staging table and then into the table through casts
    (:func:`dumpcodec.schema.stage_plan`)."""
    reencode = None
    if live is not None:
        if tdef is not None:
            cmp = schema.compare(tdef, live)
            if not cmp.copy_compatible:
                if not cmp.can_map_by_name:
                    raise RestoreError(
                        f"{table_id}: the live table {schema_}.{name} differs in ways "
                        f"that cannot be loaded: " + "; ".join(
                            str(d) for d in cmp.differences if d.blocks_copy))
                if fmt != "binary":
                    raise RestoreError(f"{table_id}: text-format data cannot be "
                                       f"re-encoded for the live table's types")
                # the dump's types with the source's OIDs, the live ones with the
                # target's (arrays and composites carry element OIDs on the wire)
                reencode = (schema.type_specs(tdef, columns),
                            schema.type_specs(live, columns))
        else:
            live_cols = schema.copy_columns(live)
            if columns is None:
                columns = live_cols
            missing = [c for c in columns if c not in live_cols]
            if missing:
                raise RestoreError(f"{table_id}: live table {schema_}.{name} has no "
                                   f"column(s) {', '.join(missing)}")
    if columns is None and tdef is not None:
        columns = schema.copy_columns(tdef)
    target = sql.Identifier(schema_, name)
    stage = None
    if as_text and tdef is not None:
        stage = schema.stage_plan(tdef, schema_, name, columns, as_text)
        conn.execute(stage.create)
        target, reencode = stage.table, None
    collist = sql.SQL("")
    if columns:
        collist = sql.SQL(" ({})").format(sql.SQL(", ").join(map(sql.Identifier, columns)))
    opt = sql.SQL(" (FORMAT binary)") if fmt == "binary" else sql.SQL("")
    query = sql.SQL("COPY {}{} FROM STDIN{}").format(target, collist, opt)
    if reencode is not None:
        rows, nbytes = _copy_reencoded(conn, query, chunks, reencode, columns, table_id,
                                       progress)
    else:
        rows, nbytes = _copy_joined(conn, query, chunks, fmt, table_id, progress,
                                    read_ahead, decode_test=(live, columns) if live is not None
                                    and tdef is None and fmt == "binary" else None)
    if stage is not None:
        rows = stage.move(conn, table_id)
    # the footer's row count: a seekable reader has it from the manifest, a streaming
    # one once the table's data was read; None for DaCHS dumps
    if expected_rows is not None and rows >= 0 and rows != expected_rows:
        raise RestoreError(f"{table_id}: loaded {rows} rows but the archive says "
                           f"{expected_rows}")
    return rows, nbytes, reencode is not None


def _copy_reencoded(conn, query, chunks, reencode, columns, table_id,
                    progress: Progress) -> Tuple[int, int]:
    src_types, dst_types = reencode
    encoder = codec.Encoder(dst_types)
    nbytes = 0
    with pump.CopyIn(conn, query) as cp:
        cp.write(encoder.header())
        for chunk in chunks():
            # each chunk is a complete COPY stream: a decoder of its own
            dec = codec.Decoder(src_types, names=columns)
            rows_ = dec.feed(chunk)
            if rows_:
                cp.write(encoder.encode(rows_))
            nbytes += len(chunk)
            progress.advance(table_id, len(chunk))
            dec.close()
        cp.write(encoder.trailer())
    return cp.rows, nbytes


#: the header dumpcodec writes (no flags, no extension): with the trailer alone after
#: it, a stream of no rows that the server would take
_PLAIN_HEADER = SIGNATURE + bytes(8)


def _copy_joined(conn, query, chunks, fmt: str, table_id: str, progress: Progress,
                 read_ahead: int,
                 decode_test: Optional[Tuple[Any, Sequence[str]]]) -> Tuple[int, int]:
    """The chunks as one COPY.  A table without rows sends none (a COPY is two round
    trips, most of an empty table's restore): what comes before the first row's bytes
    (the header) is held back until they come, and a stream that ends without any is
    checked here as the server would (the plain header, the trailer)."""
    joiner = ChunkJoiner(binary=fmt == "binary")
    nbytes = 0
    held: List[Any] = []
    cp = None
    ahead = _read_ahead(chunks(), read_ahead)
    try:
        with contextlib.ExitStack() as stack:
            def start() -> pump.CopyIn:
                c = stack.enter_context(pump.CopyIn(conn, query))
                for b in held:
                    c.write(b)
                held.clear()
                return c
            for k, chunk in enumerate(ahead):
                if decode_test is not None:
                    _decode_test(chunk, decode_test[0], decode_test[1], table_id)
                    decode_test = None
                for buf in joiner.feed(chunk, k):
                    if cp is not None:
                        cp.write(buf)
                        continue
                    held.append(buf)
                    if len(buf) and (not joiner.binary or len(held) > 1):
                        cp = start()         # a row's bytes (after the header)
                nbytes += len(chunk)
                progress.advance(table_id, len(chunk))
            last = joiner.close()
            if cp is None:
                if not joiner.binary or (held and bytes(held[0]) == _PLAIN_HEADER
                                         and not any(len(b) for b in held[1:])):
                    return 0, nbytes
                cp = start()
            cp.write(last)
    finally:
        # before anything else reads the archive (a one-pass reader skips on)
        ahead.close()
    return cp.rows, nbytes
