"""Restore an archive into a live database: :func:`restore_dump`.

Each table is restored in its own transaction on a connection from a bounded pool:

1. the user-defined types it needs (each in a savepoint: a type that already exists,
   or that a parallel table created first, is left as it is);
2. the table itself (``if_exists``: ``error`` refuses an existing table, ``skip``
   leaves it alone, ``replace`` drops and recreates it *in the same transaction*, so a
   failure keeps the old table and its data, ``truncate`` empties it, ``append`` loads
   into it as it is);
3. the data: ``COPY ... FROM STDIN (FORMAT binary)`` with the dump's explicit column
   list, fed by :mod:`dumpcodec.pump` in large writes; the chunk members of a table are
   joined into one COPY stream (headers and trailers between chunks dropped);
4. the row count from the server is checked against the archive's footer (and the
   archive checks every member's checksum as it is read) *before* commit;
5. primary key, unique and other constraints, indexes, owned sequences (``setval``
   with ``is_called``), comments; then COMMIT;
6. after the commit, ANALYZE (unless ``analyze=False``; pg_restore runs none).

A table that fails is rolled back and reported with its reason; the others go on.
After all tables: foreign keys whose referenced table exists (each in its own
transaction, failures reported).  A target schema that does not exist is created
(committed) before the table's transaction, so that parallel tables do not wait on
each other's uncommitted ``CREATE SCHEMA``; one that ends up empty is dropped again.

The archive's chunks are read (decompressed, checksummed) by a helper thread one
chunk ahead of the COPY that sends them, so reading and the server's work overlap.
Client memory is about ``jobs * (READ_AHEAD + 1)`` chunks of the archive's chunk size
(8 MiB by default) at most: 81 MB peak RSS with ``-j 1``, 115 MB with ``-j 2`` on the
benchmark tables.

Schema drift: when the target table exists (``append``/``truncate``), its live
definition is compared with the dump's (:func:`dumpcodec.schema.compare`).  Column order
and extra live columns that can take their default need nothing (COPY names its
columns); lossless widenings (int4 -> int8, varchar(10) -> text, ...) are loaded by
decoding the dump's rows with the dump's types and encoding them with the live types;
a narrowing or missing column refuses the table up front with the differences listed.

DaCHS dumps (no definitions): the table must exist (or be described by the caller
through ``definitions``); its live definition gives the column list, and a decode test
of the first chunk with the live column types checks that the data fits before
loading it as it is.

Parallelism (``jobs``): from a seekable file, tables are restored by ``jobs`` threads,
each with its own connection and its own reader of the archive (a partition waits for
its parent table).  From a pipe (one pass through the archive), the data of one table
after the other is read by the calling thread, and each table's post-data phase
(indexes, constraints, sequences, commit) is handed to one of ``jobs - 1`` background
threads while the next table's data loads, so index builds overlap; at most ``jobs``
connections are open in either case.
"""
from __future__ import annotations

import fnmatch
import os
import sys
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import (IO, Any, Callable, Dict, Iterable, Iterator, List, Optional, Sequence,
                    Tuple, Union)

import psycopg
from psycopg import sql

from . import codec, pump, schema
# the COPY BINARY framing constants, defined once in the reference codec (codec.py
# re-exports its classes, not these)
from .codec import HEADER_SIZE, SIGNATURE, TRAILER
from .archive import TableInfo, open_dump
from .errors import (ArchiveError, CopyFormatError, DumpcodecError, RestoreError,
                     SelectorError)
from .progress import Progress

IF_EXISTS = ("error", "replace", "append", "truncate", "skip")


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
    """The result of :func:`restore_dump`."""
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


# -- archive access -------------------------------------------------------------------

@dataclass
class _Item:
    """One table of the archive, as restore needs it."""
    table_id: str
    format: str
    columns: Optional[List[str]]
    definition: Any               # schema.TableDef or None (DaCHS)
    extra: Dict[str, Any]
    info: TableInfo


def _item_from(info: TableInfo) -> _Item:
    definition = info.definition
    if definition is not None:
        definition = schema.TableDef.from_json(definition)
    return _Item(table_id=info.table_id, format=info.format,
                 columns=list(info.columns) if info.columns else None,
                 definition=definition, extra=info.extra, info=info)


def _header_size(buf: bytes) -> int:
    if len(buf) < HEADER_SIZE or buf[:len(SIGNATURE)] != SIGNATURE:
        raise ArchiveError("a chunk does not start with the COPY BINARY signature")
    return HEADER_SIZE + int.from_bytes(buf[HEADER_SIZE - 4:HEADER_SIZE], "big")


class _Joiner:
    """Joins chunk streams (each header + tuples + trailer) into one COPY stream.

    ``feed(piece, chunk_no)`` returns the buffers to send (views into ``piece``: a
    chunk is not copied); pieces may split anywhere.  The first chunk's header
    is kept, every later one dropped; each chunk's 2-byte trailer is held back and
    only the last one is sent (``close()``).
    """

    def __init__(self, binary: bool = True):
        self.binary = binary
        self.chunk = -1
        self.head = b""        # the start of a chunk, until its header is complete
        self.tail = b""        # the last (up to) two bytes seen: a trailer candidate
        self.in_header = False

    def feed(self, piece, chunk: int) -> List[Any]:
        view = memoryview(piece).cast("B")
        if not self.binary:
            return [view]
        if chunk != self.chunk:
            self.chunk = chunk
            self.tail = b""       # the previous chunk's trailer: dropped
            self.in_header = True
            self.head = b""
        if self.in_header:
            before = len(self.head)          # this chunk's bytes seen in earlier pieces
            self.head += bytes(view[:max(0, 4096 - before)])
            if len(self.head) < HEADER_SIZE:
                return []
            hs = _header_size(self.head)
            if len(self.head) < hs:
                if len(self.head) >= 4096:
                    raise ArchiveError("a chunk's COPY header extension is too long")
                return []
            start_in_piece = hs - before     # > 0: the header was incomplete before
            self.in_header = False
            out: List[Any] = []
            if chunk == 0:
                out.append(self.head[:hs])
            self.head = b""
            view = view[start_in_piece:]
            return out + self._body(view)
        return self._body(view)

    def _body(self, view) -> List[Any]:
        out: List[Any] = []
        n = len(view)
        if n >= 2:
            if self.tail:
                out.append(self.tail)
            out.append(view[:n - 2])
            self.tail = bytes(view[n - 2:])
        else:
            data = self.tail + bytes(view)
            if len(data) > 2:
                out.append(data[:len(data) - 2])
            self.tail = data[-2:]
        return out

    def close(self) -> bytes:
        if not self.binary or self.chunk < 0:
            return b""
        if self.tail != TRAILER:
            raise ArchiveError("a chunk does not end with the COPY BINARY trailer")
        return self.tail


# -- connections ----------------------------------------------------------------------

class _Pool:
    """At most ``size`` autocommit connections, handed out one thread at a time."""

    def __init__(self, conninfo: str, size: int, encoding: Callable[[], Optional[str]]):
        self.conninfo = conninfo
        self.size = size
        # asked when a connection is handed out: a reader knows the archive's
        # client_encoding only once it has read the archive's first member
        self.encoding = encoding
        self._encoded: set = set()     # ids of connections whose encoding is set
        self._free: List[psycopg.Connection] = []
        self._all: List[psycopg.Connection] = []
        self._cond = threading.Condition()

    def get(self) -> psycopg.Connection:
        with self._cond:
            while True:
                while self._free:
                    c = self._free.pop()
                    if not c.closed:
                        return self._with_encoding(c)
                    self._all.remove(c)
                    self._encoded.discard(id(c))
                if len(self._all) < self.size:
                    break
                self._cond.wait()
            conn = psycopg.connect(self.conninfo, autocommit=True)
            self._all.append(conn)
        return self._with_encoding(conn)

    def _with_encoding(self, conn: psycopg.Connection) -> psycopg.Connection:
        if id(conn) not in self._encoded:
            encoding = self.encoding()
            if encoding:
                # text values in the dump travel in this encoding (binary COPY too)
                conn.execute(sql.SQL("SET client_encoding TO {}").format(
                    sql.Literal(encoding)))
                self._encoded.add(id(conn))
        return conn

    def put(self, conn: psycopg.Connection) -> None:
        with self._cond:
            self._free.append(conn)
            self._cond.notify()

    def close(self) -> None:
        with self._cond:
            for c in self._all:
                try:
                    c.close()
                except Exception:
                    pass
            self._all.clear()
            self._free.clear()


def _rollback(conn: psycopg.Connection) -> None:
    try:
        if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
            conn.execute("ROLLBACK")
    except psycopg.Error:
        try:
            conn.close()
        except Exception:
            pass


def _reason(exc: BaseException) -> str:
    if isinstance(exc, psycopg.Error):
        text = str(exc).strip()
        msg = (exc.diag.message_primary or
               (text.splitlines()[0] if text else type(exc).__name__))
        return f"{type(exc).__name__}: {msg}"
    text = str(exc).strip()
    return text if text else type(exc).__name__


# -- the per-table work ---------------------------------------------------------------

@dataclass
class _Options:
    target_schema: Optional[str]
    if_exists: str
    data: bool
    indexes: bool
    definitions: Dict[str, Any]
    progress: Progress
    analyze: bool = True
    privileges: bool = False
    # schemas this restore created (before the tables, see _ensure_schema)
    new_schemas: set = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)


def _target_of(item: _Item, opts: _Options) -> Tuple[str, str, Any]:
    """(schema, name, definition or None) the table goes to."""
    described = opts.definitions.get(item.table_id)
    tdef = item.definition
    if described is not None:
        if isinstance(described, str):
            schema_, _, name = described.rpartition(".")
            if not schema_:
                schema_ = "public"
            return opts.target_schema or schema_, name, tdef
        tdef = described
    if tdef is not None:
        return opts.target_schema or tdef.schema, tdef.name, tdef
    schema_, dot, name = item.table_id.rpartition(".")
    if not dot or "#" in item.table_id or "/" in item.table_id:
        raise RestoreError(
            f"{item.table_id}: the archive has no definition for this table (a DaCHS "
            f"dump?); name an existing table for it (definitions={{id: 'schema.table'}}"
            f" or --table-map)")
    return opts.target_schema or schema_, name, None


def _ensure_schema(conn, schema_: str, opts: _Options) -> None:
    """Create the target schema, committed, before the table's transaction.

    Created inside each table's transaction instead, the schema would serialise the
    parallel jobs: a second ``CREATE SCHEMA IF NOT EXISTS`` waits for the first
    transaction to end.  Schemas created here that hold nothing at the end are
    dropped again (:func:`_drop_empty_schemas`).
    """
    if conn.execute("SELECT pg_catalog.to_regnamespace(%s)",
                    (sql.Identifier(schema_).as_string(conn),)).fetchone()[0] is not None:
        return
    try:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema_)))
    except psycopg.Error as exc:
        if exc.sqlstate not in _ALREADY_THERE:   # a parallel job was first
            raise
        return
    with opts.lock:
        opts.new_schemas.add(schema_)


def _drop_empty_schemas(conn, opts: _Options) -> None:
    for schema_ in sorted(opts.new_schemas):
        # asked first: a DROP of a schema with tables in it would wait for (and cancel)
        # an autovacuum of them before it fails
        used = conn.execute(
            "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_depend WHERE refclassid = "
            "'pg_catalog.pg_namespace'::pg_catalog.regclass AND refobjid = "
            "pg_catalog.to_regnamespace(%s))",
            (sql.Identifier(schema_).as_string(conn),)).fetchone()[0]
        if used is False:
            try:
                conn.execute(sql.SQL("DROP SCHEMA {} RESTRICT").format(
                    sql.Identifier(schema_)))
            except psycopg.Error:
                pass


def _run_all(conn, statements, savepoint_ignore: Tuple[str, ...] = ()) -> None:
    for stmt in statements:
        if savepoint_ignore:
            conn.execute("SAVEPOINT dumpcodec_sp")
            try:
                conn.execute(stmt)
            except psycopg.Error as exc:
                if exc.sqlstate in savepoint_ignore:
                    conn.execute("ROLLBACK TO SAVEPOINT dumpcodec_sp")
                    continue
                raise
            conn.execute("RELEASE SAVEPOINT dumpcodec_sp")
        else:
            conn.execute(stmt)


# SQLSTATEs of "it is already there": duplicate_object, duplicate_table,
# duplicate_schema, unique_violation (a concurrent CREATE TYPE of the same name)
_ALREADY_THERE = ("42710", "42P07", "42P06", "23505")


def _referencing_fks(conn, schema_: str, name: str):
    return conn.execute(
        """SELECT cn.nspname, cr.relname, c.conname, pg_catalog.pg_get_constraintdef(c.oid)
           FROM pg_catalog.pg_constraint c
           JOIN pg_catalog.pg_class cr ON cr.oid = c.conrelid
           JOIN pg_catalog.pg_namespace cn ON cn.oid = cr.relnamespace
           WHERE c.contype = 'f' AND c.confrelid = (
               SELECT t.oid FROM pg_catalog.pg_class t JOIN pg_catalog.pg_namespace n
               ON n.oid = t.relnamespace WHERE n.nspname = %s AND t.relname = %s)
             AND c.conrelid <> c.confrelid AND c.conparentid = 0""",
        (schema_, name)).fetchall()


@dataclass
class _Prepared:
    """A table whose transaction is open and whose data is loaded."""
    item: _Item
    conn: psycopg.Connection
    schema: str
    name: str
    tdef: Any                     # schema.TableDef or None
    plan: Any                     # schema.DDLPlan, None when the table was there
    action: str
    rows: int
    nbytes: int
    t0: float
    reencoded: bool
    readd_fks: List[Tuple[str, str, str, str]]


def _load_table(conn, item: _Item, chunks: Callable[[], Iterable[bytes]],
                opts: _Options) -> Optional[_Prepared]:
    """Phases 1-4 in an open transaction on ``conn``; None when skipped."""
    t0 = time.perf_counter()
    schema_, name, tdef = _target_of(item, opts)
    if tdef is not None:
        _ensure_schema(conn, schema_, opts)
    conn.execute("BEGIN")
    live = schema.capture_live_if_exists(conn, schema_, name)
    action = "created"
    plan = None
    readd_fks = []
    if live is not None:
        mode = opts.if_exists
        if mode == "error":
            raise RestoreError(f"table {schema_}.{name} already exists "
                               f"(--if-exists replace|append|truncate|skip)")
        if mode == "skip":
            conn.execute("ROLLBACK")
            return None
        if mode == "replace" and tdef is not None:
            readd_fks = _referencing_fks(conn, schema_, name)
            for fk in readd_fks:
                # other tables' keys on this one block the DROP: they come off here and
                # back in _finish_table, all in this transaction
                conn.execute(sql.SQL("ALTER TABLE {} DROP CONSTRAINT {}").format(
                    sql.Identifier(fk[0], fk[1]), sql.Identifier(fk[2])))
            conn.execute(sql.SQL("DROP TABLE {}").format(sql.Identifier(schema_, name)))
            live = None
            action = "replaced"
        elif mode == "replace":
            raise RestoreError(f"{item.table_id}: cannot replace {schema_}.{name}: the "
                               f"archive has no definition to recreate it from")
        else:
            action = "truncated" if mode == "truncate" else "appended"
    if live is None and tdef is not None and tdef.kind == "partitioned" \
            and item.extra.get("via_root"):
        # dumped through its root (--partitions root) and no table there: the rows
        # go into a plain table of the same columns, since no partitions come along
        import dataclasses
        tdef = dataclasses.replace(tdef, kind="table", partition_key=None,
                                   indexes=list(tdef.indexes),
                                   constraints=list(tdef.constraints))
    if live is None:
        if tdef is None:
            raise RestoreError(f"{item.table_id}: table {schema_}.{name} does not exist "
                               f"and the archive has no definition for it (a DaCHS dump "
                               f"loads into an existing table)")
        # existing_types: types already in the target (and equal) are not created again
        plan = schema.ddl_plan(tdef, schema_, existing_types=conn)
        _run_all(conn, plan.setup)
        _run_all(conn, [sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(
            sql.Identifier(schema_))], _ALREADY_THERE)
        _run_all(conn, plan.types, _ALREADY_THERE)
        _run_all(conn, plan.table)
    elif opts.if_exists == "truncate":
        conn.execute(sql.SQL("TRUNCATE {}").format(sql.Identifier(schema_, name)))

    rows = nbytes = 0
    reencoded = False
    if opts.data and item.extra.get("data", True) is not False:
        rows, nbytes, reencoded = _copy_in(conn, item, chunks, schema_, name, tdef, live,
                                           opts)
    return _Prepared(item, conn, schema_, name, tdef, plan, action, rows, nbytes, t0,
                     reencoded, readd_fks)


def _copy_in(conn, item, chunks, schema_, name, tdef, live, opts) -> Tuple[int, int, bool]:
    fmt = item.format
    columns = item.columns
    reencode = None
    if live is not None:
        if tdef is not None:
            cmp = schema.compare(tdef, live)
            if not cmp.copy_compatible:
                if not cmp.can_map_by_name:
                    raise RestoreError(
                        f"{item.table_id}: the live table {schema_}.{name} differs in ways "
                        f"that cannot be loaded: " + "; ".join(
                            str(d) for d in cmp.differences if d.blocks_copy))
                if fmt != "binary":
                    raise RestoreError(f"{item.table_id}: text-format data cannot be "
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
                raise RestoreError(f"{item.table_id}: live table {schema_}.{name} has no "
                                   f"column(s) {', '.join(missing)}")
    if columns is None and tdef is not None:
        columns = schema.copy_columns(tdef)
    target = sql.Identifier(schema_, name)
    stage = None
    if item.extra.get("as_text") and tdef is not None:
        # OID-alias (by name) and vector columns travel as text: staged, then cast
        stage = schema.stage_plan(tdef, schema_, name, columns, item.extra["as_text"])
        conn.execute(stage.create)
        target, reencode = stage.table, None
    collist = sql.SQL("")
    if columns:
        collist = sql.SQL(" ({})").format(sql.SQL(", ").join(map(sql.Identifier, columns)))
    opt = sql.SQL(" (FORMAT binary)") if fmt == "binary" else sql.SQL("")
    query = sql.SQL("COPY {}{} FROM STDIN{}").format(target, collist, opt)
    joiner = _Joiner(binary=fmt == "binary")
    progress = opts.progress
    tid = item.table_id
    decode_test = live is not None and tdef is None and fmt == "binary"
    nbytes = 0
    if reencode is not None:
        src_types, dst_types = reencode
        encoder = codec.Encoder(dst_types)
        with pump.CopyIn(conn, query) as cp:
            cp.write(encoder.header())
            for chunk in chunks():
                # each chunk is a complete COPY stream: a decoder of its own
                dec = codec.Decoder(src_types, names=columns)
                rows_ = dec.feed(chunk)
                if rows_:
                    cp.write(encoder.encode(rows_))
                nbytes += len(chunk)
                progress.advance(tid, len(chunk))
                dec.close()
            cp.write(encoder.trailer())
        rows = cp.rows
    else:
        ahead = _read_ahead(chunks())
        try:
            with pump.CopyIn(conn, query) as cp:
                for k, chunk in enumerate(ahead):
                    if decode_test:
                        _decode_test(chunk, live, columns, item.table_id)
                        decode_test = False
                    for buf in joiner.feed(chunk, k):
                        cp.write(buf)
                    nbytes += len(chunk)
                    progress.advance(tid, len(chunk))
                cp.write(joiner.close())
        finally:
            # before anything else reads the archive (a one-pass reader skips on)
            ahead.close()
        rows = cp.rows
    if stage is not None:
        rows = stage.move(conn, item.table_id)
    # the footer's row count: a seekable reader has it from the manifest, a streaming
    # one once the table's data was read; None for DaCHS dumps
    expected = item.info.rows
    if expected is not None and rows >= 0 and rows != expected:
        raise RestoreError(f"{item.table_id}: loaded {rows} rows but the archive says "
                           f"{expected}")
    return rows, nbytes, reencode is not None


#: chunks a table's reader thread may hold ahead of the COPY (one being sent, one
#: ready): memory is about READ_AHEAD chunks of the archive's chunk size
READ_AHEAD = 2


def _read_ahead(source: Iterable[Any], depth: int = READ_AHEAD) -> Iterator[Any]:
    """Iterate ``source`` in a helper thread (:func:`dumpcodec.pump.run_ahead`): the
    next chunk is read (decompression, checksum; both release the GIL) while the
    previous one is sent, at most ``depth`` chunks at a time.  Closed early, the
    thread is gone before this returns, so ``source`` may be resumed (a one-pass
    reader skipping the rest)."""
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


def _finish_table(p: _Prepared, opts: _Options) -> TableRestoreResult:
    """Phase 5 and COMMIT."""
    conn = p.conn
    notes: List[str] = []
    if p.plan is not None:
        if opts.indexes:
            _run_all(conn, p.plan.post_data)
        _run_all(conn, p.plan.sequences)
        # in this transaction: a table with RLS never commits without it (a policy
        # that fails raises); triggers after the data; privileges only on request
        where = f"{p.schema}.{p.name}"
        notes += p.plan.notes
        notes += schema.run_steps(conn, p.plan.comments, where)
        notes += schema.run_steps(conn, p.plan.policies, where)
        notes += schema.run_steps(conn, p.plan.triggers, where)
        if opts.privileges:
            notes += schema.run_steps(conn, p.plan.privileges, where)
        elif schema.privileges_note(p.plan):
            notes.append(schema.privileges_note(p.plan))
    elif p.tdef is not None and p.action in ("appended", "truncated") and p.tdef.sequences:
        # loading into an existing table: move its sequences on as the dump had them
        _set_sequences(conn, p.tdef, p.schema)
    for fk in p.readd_fks:
        # foreign keys of other tables that pointed at the replaced table: back on the
        # new one (after its keys exist); if the new rows break one, the whole
        # replacement rolls back and the old table stays
        conn.execute(sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} {}").format(
            sql.Identifier(fk[0], fk[1]), sql.Identifier(fk[2]), sql.SQL(fk[3])))
    conn.execute("COMMIT")
    result = TableRestoreResult(p.item.table_id, f"{p.schema}.{p.name}", p.action, p.rows,
                                p.nbytes, time.perf_counter() - p.t0, p.reencoded,
                                notes=notes)
    if opts.analyze and opts.data:
        # here, after the commit, so that parallel jobs analyze in parallel too
        try:
            conn.execute(sql.SQL("ANALYZE {}").format(sql.Identifier(p.schema, p.name)))
        except psycopg.Error as exc:
            result.warning = f"{p.item.table_id}: ANALYZE failed: {_reason(exc)}"
    return result


def _set_sequences(conn, tdef, target_schema: str) -> None:
    for s in tdef.sequences:
        if s.last_value is None:
            continue
        seq_schema = target_schema if s.schema == tdef.schema else s.schema
        qual = sql.Identifier(seq_schema, s.name).as_string(conn)
        if conn.execute("SELECT pg_catalog.to_regclass(%s)", (qual,)).fetchone()[0]:
            conn.execute("SELECT pg_catalog.setval(%s::regclass, %s, %s)",
                         (qual, s.last_value, s.is_called))


# -- foreign keys and analyze ---------------------------------------------------------

def _relation_exists(conn, schema_: str, name: str) -> bool:
    return conn.execute(
        "SELECT 1 FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n "
        "ON n.oid = c.relnamespace WHERE n.nspname = %s AND c.relname = %s",
        (schema_, name)).fetchone() is not None


def _foreign_keys(conn, done: List[Tuple[_Item, str, str, Any]],
                  summary: RestoreSummary) -> None:
    for item, schema_, name, tdef in done:
        if tdef is None:
            continue
        fks = [c for c in tdef.constraints if c.kind == "foreign_key" and not c.inherited]
        if not fks:
            continue
        plan = schema.ddl_plan(tdef, schema_)
        _run_all(conn, plan.setup)
        for con, stmt in _match_fk_statements(fks, plan.foreign_keys):
            ref_schema = schema_ if con.ref_schema == tdef.schema else con.ref_schema
            if not _relation_exists(conn, ref_schema, con.ref_table):
                summary.warnings.append(
                    f"{item.table_id}: foreign key {con.name} not created: referenced "
                    f"table {ref_schema}.{con.ref_table} does not exist")
                continue
            exists = conn.execute(
                "SELECT 1 FROM pg_catalog.pg_constraint c JOIN pg_catalog.pg_class t "
                "ON t.oid = c.conrelid JOIN pg_catalog.pg_namespace n ON n.oid = "
                "t.relnamespace WHERE n.nspname = %s AND t.relname = %s AND c.conname = %s",
                (schema_, name, con.name)).fetchone()
            if exists:
                continue
            try:
                conn.execute("BEGIN")
                conn.execute(stmt)
                for comment in _fk_comments(con, plan.foreign_keys):
                    conn.execute(comment)
                conn.execute("COMMIT")
            except psycopg.Error as exc:
                _rollback(conn)
                summary.failed.append((item.table_id,
                                       f"foreign key {con.name}: {_reason(exc)}"))


def _fk_comments(con, stmts):
    """The COMMENT ON CONSTRAINT statements of ``con`` in the foreign_keys phase."""
    head = f"COMMENT ON CONSTRAINT {sql.Identifier(con.name).as_string(None)} "
    return [st for st in stmts if st.as_string(None).startswith(head)]


def _match_fk_statements(fks, stmts):
    """Each FK (sorted by name) with the ddl_plan statement naming it."""
    texts = [(st.as_string(None), st) for st in stmts
             if not st.as_string(None).startswith("COMMENT ")]
    for con in sorted(fks, key=lambda c: c.name):
        quoted = sql.Identifier(con.name).as_string(None)
        yield con, next((st for text, st in texts if quoted in text), None)


_SEQ_TYPES = ("smallint", "integer", "bigint")


def _free_sequences(conn, reader, opts: _Options, tables, summary: RestoreSummary) -> None:
    """Sequences the archive recorded on their own (owned by no column)."""
    # create_dump records them with writer.set_info(sequences=...): under "info"
    seqs = (reader.info.get("info") or {}).get("sequences") or []
    if not isinstance(seqs, list):
        return
    for seq in seqs:
        try:
            schema_, name = str(seq["schema"]), str(seq["name"])
            qual = f"{schema_}.{name}"
            if tables and not any(fnmatch.fnmatchcase(n, p) for p in tables
                                  for n in (qual, name)):
                continue
            dtype = seq["data_type"]
            if dtype not in _SEQ_TYPES:
                raise RestoreError(f"bad data type {dtype!r}")
            nums = {k: int(seq[k]) for k in ("start", "increment", "min_value",
                                             "max_value", "cache")}
            target = opts.target_schema or schema_
            ident = sql.Identifier(target, name)
            exists = _relation_exists(conn, target, name)
            if exists and opts.if_exists == "error":
                raise RestoreError(f"sequence {target}.{name} already exists")
            if exists and opts.if_exists == "skip":
                summary.skipped.append(qual)
                continue
            conn.execute("BEGIN")
            conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(
                sql.Identifier(target)))
            if not exists:
                conn.execute(sql.SQL(
                    "CREATE SEQUENCE {} AS {} INCREMENT BY {} MINVALUE {} MAXVALUE {} "
                    "START WITH {} CACHE {} {}").format(
                    ident, sql.SQL(dtype), sql.Literal(nums["increment"]),
                    sql.Literal(nums["min_value"]), sql.Literal(nums["max_value"]),
                    sql.Literal(nums["start"]), sql.Literal(nums["cache"]),
                    sql.SQL("CYCLE" if seq.get("cycle") else "NO CYCLE")))
            if isinstance(seq.get("comment"), str):
                conn.execute(sql.SQL("COMMENT ON SEQUENCE {} IS {}").format(
                    ident, sql.Literal(seq["comment"])))
            if seq.get("last_value") is not None:
                conn.execute("SELECT pg_catalog.setval(%s::regclass, %s, %s)",
                             (ident.as_string(conn), int(seq["last_value"]),
                              bool(seq.get("is_called"))))
            conn.execute("COMMIT")
        except (psycopg.Error, DumpcodecError, KeyError, TypeError, ValueError) as exc:
            _rollback(conn)
            summary.failed.append((f"sequence {seq.get('schema')}.{seq.get('name')}"
                                   if isinstance(seq, dict) else "sequence", _reason(exc)))


# -- the entry point ------------------------------------------------------------------

def _names(it: _Item) -> set:
    """What a ``tables`` pattern is matched against: the table id, and the schema
    and table name of its definition."""
    names = {it.table_id}
    if it.definition is not None:
        names.add(f"{it.definition.schema}.{it.definition.name}")
        names.add(it.definition.name)
    return names


def _matching(it: _Item, tables: Sequence[str]) -> List[str]:
    names = _names(it)
    return [pat for pat in tables if any(fnmatch.fnmatchcase(n, pat) for n in names)]


def _select(items: List[_Item], tables: Optional[Sequence[str]]) -> List[_Item]:
    """The items some pattern matches; a pattern that matches nothing is an error."""
    if not tables:
        return items
    out = []
    used = set()
    for it in items:
        hits = _matching(it, tables)
        if hits:
            used.update(hits)
            out.append(it)
    unknown = [p for p in tables if p not in used]
    if unknown:
        raise SelectorError(f"no table in the archive matches {', '.join(unknown)}")
    return out


def _wanted(item: _Item, tables: Optional[Sequence[str]]) -> bool:
    """One-pass (pipe) restores decide table by table: does any pattern match?"""
    return not tables or bool(_matching(item, tables))


def restore_dump(conninfo: str,
                 source: Union[str, os.PathLike, IO[bytes]],
                 *,
                 tables: Optional[Sequence[str]] = None,
                 target_schema: Optional[str] = None,
                 if_exists: str = "error",
                 jobs: int = 1,
                 data: bool = True,
                 indexes: bool = True,
                 definitions: Optional[Dict[str, Any]] = None,
                 analyze: bool = True,
                 privileges: bool = False,
                 progress: Optional[Progress] = None) -> RestoreSummary:
    """Restore the archive ``source`` (path, binary file object, or ``'-'`` for stdin).

    ``tables``: table ids or shell patterns (also matched against ``schema.name``) to
    restore, all when None.  ``target_schema``: restore every table into this schema.
    ``if_exists``: one of ``error``, ``replace``, ``append``, ``truncate``, ``skip``.
    ``jobs``: connections used in parallel (see the module docstring).  ``data=False``
    creates the tables only; ``indexes=False`` skips keys and indexes.
    ``definitions``: ``{table_id: TableDef or 'schema.table'}`` for archives without
    definitions (DaCHS) or to redirect a table.  ``privileges``: set each created
    table's owner and grants as dumped (roles must exist; off by default, as
    ``pg_restore --no-owner --no-privileges``).  What a table left out (a trigger whose
    function is missing, grants without ``privileges``, ...) is in its result's
    ``notes``.  Returns a :class:`RestoreSummary`; per
    table failures are in ``failed``, not raised.  Errors that stop everything (an
    unreadable archive, no connection, a bad option) raise.
    """
    if if_exists not in IF_EXISTS:
        raise ValueError(f"if_exists must be one of {', '.join(IF_EXISTS)}, not {if_exists!r}")
    if jobs < 1:
        raise ValueError(f"jobs must be at least 1, not {jobs}")
    t_start = time.perf_counter()
    progress = progress or Progress()
    opts = _Options(target_schema, if_exists, data, indexes, dict(definitions or {}),
                    progress, analyze, privileges)
    summary = RestoreSummary()
    if isinstance(source, (str, os.PathLike)) and os.fspath(source) == "-":
        source = sys.stdin.buffer
    seekable = isinstance(source, (str, os.PathLike)) or _is_seekable(source)
    reader = open_dump(source, "r")
    pool = _Pool(conninfo, jobs, lambda: reader.info.get("client_encoding") or None)
    done: List[Tuple[_Item, str, str, Any]] = []
    try:
        if seekable:
            _restore_seekable(reader, source, pool, jobs, opts, tables, summary, done)
        else:
            _restore_stream(reader, pool, jobs, opts, tables, summary, done)
        conn = pool.get()
        try:
            _free_sequences(conn, reader, opts, tables, summary)
            if indexes:
                _foreign_keys(conn, done, summary)
            elif any(c.kind == "foreign_key" for _, _, _, d in done if d is not None
                     for c in d.constraints):
                # a foreign key needs the referenced table's key, which was left out
                summary.warnings.append("foreign keys not created (indexes and keys "
                                        "were left out)")
            _drop_empty_schemas(conn, opts)
        finally:
            pool.put(conn)
    finally:
        pool.close()
        try:
            reader.close()
        except Exception:
            pass
        progress.finish()
    summary.seconds = time.perf_counter() - t_start
    return summary


def _is_seekable(f) -> bool:
    try:
        return bool(f.seekable()) and hasattr(f, "name")
    except (AttributeError, ValueError, OSError):
        return False


def _record(result_or_exc, item: _Item, target, summary: RestoreSummary, done, opts,
            lock: threading.Lock) -> None:
    with lock:
        if isinstance(result_or_exc, BaseException):
            reason = _reason(result_or_exc)
            summary.failed.append((item.table_id, reason))
            opts.progress.table_done(item.table_id, 0, 0, 0.0, reason)
        elif result_or_exc is None:
            summary.skipped.append(item.table_id)
            opts.progress.table_done(item.table_id, 0, 0, 0.0, None)
        else:
            r = result_or_exc
            summary.ok.append(r)
            if r.warning:
                summary.warnings.append(r.warning)
            done.append((item,) + target)
            opts.progress.table_done(item.table_id, r.rows, r.nbytes, r.seconds)


def _parent_id(item: _Item, items: List[_Item]) -> Optional[str]:
    d = item.definition
    if d is None:
        return None
    # a partition's parent, or an INHERITS child's parents (restored first: the
    # dump writes parents before children)
    parents = [(d.parent_schema, d.parent_name)] if d.parent_name else []
    parents += [(p.schema, p.name) for p in d.inherits]
    for other in items:
        od = other.definition
        if od is not None and (od.schema, od.name) in parents:
            return other.table_id
    return None


def _restore_one(conn, item, chunks, opts) -> Tuple[Optional[TableRestoreResult], Tuple]:
    schema_, name, tdef = _target_of(item, opts)
    prepared = _load_table(conn, item, chunks, opts)
    if prepared is None:
        return None, (schema_, name, tdef)
    return _finish_table(prepared, opts), (schema_, name, tdef)


def _restore_seekable(reader, source, pool, jobs, opts, tables, summary, done) -> None:
    items = _select([_item_from(t) for t in reader.tables()], tables)
    opts.progress.start("restore", len(items))
    lock = threading.Lock()
    events = {it.table_id: threading.Event() for it in items}
    ok_ids = set()
    local = threading.local()
    readers = []

    def my_reader():
        if jobs == 1:
            return reader
        r = getattr(local, "reader", None)
        if r is None:
            r = open_dump(source if not hasattr(source, "name") else source.name, "r")
            local.reader = r
            with lock:
                readers.append(r)
        return r

    def task(item: _Item):
        try:
            parent = _parent_id(item, items)
            if parent is not None:
                events[parent].wait()
                if parent not in ok_ids:
                    raise RestoreError(f"its parent table {parent} was not restored")
            opts.progress.table_start(item.table_id)
            for attempt in (1, 2):
                conn = pool.get()
                try:
                    result, target = _restore_one(
                        conn, item, lambda: my_reader().read_raw(item.table_id), opts)
                    break
                except psycopg.errors.DeadlockDetected:
                    # parallel replaces of tables linked by foreign keys can deadlock;
                    # the server aborted this one: it runs once more
                    _rollback(conn)
                    if attempt == 2:
                        raise
                except BaseException:
                    _rollback(conn)
                    raise
                finally:
                    pool.put(conn)
            if result is not None:
                with lock:
                    ok_ids.add(item.table_id)
            _record(result, item, target, summary, done, opts, lock)
        except Exception as exc:
            _record(exc, item, None, summary, done, opts, lock)
        finally:
            events[item.table_id].set()

    try:
        if jobs == 1:
            for it in items:
                task(it)
        else:
            with ThreadPoolExecutor(max_workers=jobs,
                                    thread_name_prefix="dumpcodec-restore") as ex:
                list(ex.map(task, items))
    finally:
        for r in readers:
            try:
                r.close()
            except Exception:
                pass
    order = {it.table_id: i for i, it in enumerate(items)}
    summary.ok.sort(key=lambda r: order[r.table_id])
    done.sort(key=lambda d: order[d[0].table_id])


def _restore_stream(reader, pool, jobs, opts, tables, summary, done) -> None:
    lock = threading.Lock()
    opts.progress.start("restore", 0)
    finishing: List[Future] = []
    ex = ThreadPoolExecutor(max_workers=max(1, jobs - 1),
                            thread_name_prefix="dumpcodec-finish") if jobs > 1 else None
    failed_ids = set()
    matched: set = set()
    try:
        for info, data in reader.iter_tables():
            item = _item_from(info)
            if tables:
                matched.update(_matching(item, tables))
            if not _wanted(item, tables):
                for _ in data:   # one pass: skip over its data
                    pass
                continue
            d = item.definition
            if d is not None and d.inherits:
                for f in list(finishing):   # INHERITS parents: committed first
                    f.result()
            if d is not None and d.parent_name:
                pid = f"{d.parent_schema}.{d.parent_name}"
                # wait for the parent's commit (it was earlier in the stream)
                for f in list(finishing):
                    f.result()
                if pid in failed_ids:
                    for _ in data:
                        pass
                    _record(RestoreError(f"its parent table {pid} was not restored"),
                            item, None, summary, done, opts, lock)
                    continue
            conn = pool.get()
            opts.progress.table_start(item.table_id)
            try:
                target = _target_of(item, opts)
                prepared = _load_table(conn, item, lambda: data, opts)
            except Exception as exc:
                _rollback(conn)
                pool.put(conn)
                for _ in data:   # keep the one-pass reader in step
                    pass
                failed_ids.add(_qual(item))
                _record(exc, item, None, summary, done, opts, lock)
                continue
            if prepared is None:
                pool.put(conn)
                _record(None, item, target, summary, done, opts, lock)
                continue

            def finish(prepared=prepared, item=item, target=target, conn=conn):
                try:
                    result = _finish_table(prepared, opts)
                    _record(result, item, target, summary, done, opts, lock)
                except Exception as exc:
                    _rollback(conn)
                    failed_ids.add(_qual(item))
                    _record(exc, item, None, summary, done, opts, lock)
                finally:
                    pool.put(conn)

            if ex is None:
                finish()
            else:
                finishing.append(ex.submit(finish))
                finishing = [f for f in finishing if not f.done()]
        for f in finishing:
            f.result()
        unknown = [p for p in tables or () if p not in matched]
        if unknown:
            # one pass: nothing could be checked before the data went by
            summary.warnings.append(f"no table in the archive matches {', '.join(unknown)}")
    finally:
        if ex is not None:
            ex.shutdown(wait=True)


def _qual(item: _Item) -> str:
    d = item.definition
    return f"{d.schema}.{d.name}" if d is not None else item.table_id
