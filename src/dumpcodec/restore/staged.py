"""Big tables: several connections load one table, and an interrupted restore resumes.

A table with several chunks (at least ``stage_larger_than`` bytes of data) is restored
in four steps:

1. a *staging table* is created and committed in the target schema, under a name the
   archive cannot choose (``dumpcodec_stage_`` and a hash of the target and of the
   table's data key): the table's columns, generated columns and CHECKs, without
   defaults, keys or indexes (so that nothing of it can bind to the table it may
   replace), after the same checks as any table (:mod:`dumpcodec.schema.safety`);
2. its chunks are copied in by up to ``jobs`` connections (:class:`ChunkLoader`),
   each chunk in a transaction of its own that also records the chunk, with its
   SHA-256 and row count, in the schema's ``dumpcodec_restore_state`` table;
3. the table's keys, exclusion constraints and indexes are built on the staging
   table (:func:`build_indexes`), each in a transaction of its own on a connection of
   its own, up to ``jobs`` at once (each with ``max_parallel_maintenance_workers`` set
   to ``jobs - 1``), under names of the restore's (``<staging table>_<n>``), after
   they were judged as any table's are, with no row involved: their expressions
   resolved, and, when they name anything not known safe, built on the staging table
   emptied by a TRUNCATE in a transaction that is rolled back, then the dependencies
   checked.  A key the data breaks fails the table here; the old table is untouched;
4. one final transaction puts it in the table's place: the old table is dropped
   (``replace``), the staging table renamed and its keys and indexes given the
   archive's names (``RENAME CONSTRAINT``, ``ALTER INDEX ... RENAME``: a name another
   relation holds fails the table), the owned sequences, defaults and identities
   added, the table's dependencies checked again (its keys and indexes too), the rest
   of the post-data phase run (CHECKs added NOT VALID, index parameters, statistics,
   replica identity, comments), sequences set, policies, triggers and grants added,
   other tables' foreign keys put back, and the table recorded as done.  No index is
   built in it, so the old table is locked only for this short transaction.

From a seekable archive (:func:`restore`) each connection reads the chunks it loads
with its own reader.  From a pipe (:func:`from_stream`, the stream's one pass) the
size of a table shows only as its data goes by: its chunks are held until it has two
and ``min(stage_larger_than, STREAM_DECIDE_MAX)`` bytes (a table that ends before goes
the one-transaction way with them), then the reading thread hands each chunk, as it
arrives, to the same loader through a queue of ``jobs`` places, so that a few chunks
are in memory whatever the table's size; the reader checks every chunk's SHA-256
against the table's footer, which comes after the last chunk, and the swap happens only
after that (a chunk that fails it drops the staging table: what it holds came from the
bad chunk).  A failed chunk fails its table alone; a stream goes on with the next.

Nothing half-done is visible under the table's name: until step 4 commits, the old
table (or none) is there.  A restore that stops anywhere (killed, server restarted,
connection lost) leaves the staging table and the state behind; ``resume=True``
(``load --resume``) then loads only the chunks not recorded (a chunk is recorded in
the transaction that loaded it, so it is there exactly when its rows are) -- from a
pipe, the recorded ones are read past --, keeps the keys and indexes built on the
staging table (a build commits whole or not at all) and builds the others, skips
tables recorded as done, and gives the same result as a restore that never stopped.  The state is keyed by the table's
header (:func:`data_key`: the same from a file and from a pipe) and each recorded
chunk's SHA-256 is compared with the chunk it stands for: other data is refused, never
loaded on top.  Without ``resume`` a leftover staging table is dropped and the table
loaded afresh.  Tables restored in one transaction are recorded as done too (in that
transaction), so ``--resume`` after a crash skips them.  A restore that ends (with or
without failed tables) drops its state tables, except in a schema where a staging
table is left (a big table whose load failed part way): that one is kept for
``--resume``.

Not staged (restored in one transaction as before): partitions and inheritance
children (a staging table attached to the parent would show its rows), tables loaded
into an existing table (``append``, ``truncate``), tables whose columns travel as
text, and DaCHS tables.
"""
from __future__ import annotations

import hashlib
import logging
import queue
import threading
import time
import weakref
from dataclasses import dataclass, replace
from typing import (TYPE_CHECKING, Any, Callable, Dict, Iterable, Iterator, List, Optional,
                    Set, Tuple, Union)

import psycopg
from psycopg import sql

from .. import pump, schema
from ..errors import ChecksumError, RestoreError
from ..schema import catalog
from ..schema.safety import Allowed
from .pool import reason, rollback
from .results import TableRestoreResult
from .select import STAGE_PREFIX, STATE_TABLE, Item
from .table import ALREADY_THERE, run_batch

if TYPE_CHECKING:   # pragma: no cover
    from .context import RunContext

_DONE = -1        # the chunk number of the row saying "this table is restored"
#: from a pipe, the chunks read before a table is known to be big enough to stage are
#: held in memory: a ``stage_larger_than`` above this counts as this
STREAM_DECIDE_MAX = 64 << 20

log = logging.getLogger("dumpcodec.restore")


class NotStaged(Exception):
    """No state table can be made in the schema: the table takes the usual path."""


def data_key(item: Item) -> str:
    """What identifies one table's data in an archive: its id, columns and the SHA-256
    of its header member (which holds the dump's time), known before any of its data
    on a pipe too, and the same whether the archive is read from a file or a pipe;
    without a header (DaCHS) the chunks' checksums.  A recorded chunk is also checked
    against the chunk it stands for before it is skipped."""
    h = hashlib.sha256()
    h.update(item.table_id.encode("utf-8", "surrogatepass"))
    for c in item.columns or ():
        h.update(b"\0c" + c.encode("utf-8", "surrogatepass"))
    header = item.info.header
    if header is not None and header.sha256:
        h.update(b"\0h" + header.sha256.encode())
    else:
        for m in item.info.members:
            h.update(b"\0m" + (m.sha256 or m.name).encode())
    return h.hexdigest()[:32]


def stage_name(schema_: str, name: str, key: str) -> str:
    return STAGE_PREFIX + hashlib.sha256(
        f"{schema_}\0{name}\0{key}".encode("utf-8", "surrogatepass")).hexdigest()[:20]


def applies(run: "RunContext", item: Item, tdef: Any) -> bool:
    """Whether ``item`` goes through a staging table.  From a pipe, whether it may:
    its size is known only as its data goes by (:func:`from_stream` decides)."""
    opts = run.opts
    members = item.info.members
    # at -j1 a staging table only costs (a commit per chunk, a second table): a
    # table is staged when several connections can load it, or to resume
    if not (opts.data and opts.stage_larger_than > 0
            and (opts.jobs > 1 or opts.resume)
            and tdef is not None and tdef.kind == "table" and not tdef.inherits
            and item.info.layout != "dachs" and item.info.has_data
            and not item.info.as_text and opts.if_exists in ("error", "replace", "skip")):
        return False
    if not run.seekable:
        return True
    return len(members) >= 2 and sum(m.size for m in members) >= opts.stage_larger_than


# -- the state table ----------------------------------------------------------------------

def _value(v: Any) -> sql.Composable:
    """A text as a literal; SQL (a prepared statement's parameter) as it is."""
    return v if isinstance(v, sql.Composable) else sql.Literal(v)


#: the schemas whose done record (:meth:`State.done`) is prepared, per connection
_DONE_PREPARED: "weakref.WeakKeyDictionary[psycopg.Connection, Set[str]]" = \
    weakref.WeakKeyDictionary()


class State:
    """The restore's record in the target database, one table per target schema."""

    def __init__(self) -> None:
        self.schemas: Set[str] = set()      # where this run made sure one exists
        self.denied: Set[str] = set()       # where the role may not create one
        self.lock = threading.Lock()

    @staticmethod
    def table(schema_: str) -> sql.Identifier:
        return sql.Identifier(schema_, STATE_TABLE)

    def ensure(self, conn: psycopg.Connection, schema_: str) -> None:
        """Create the schema's state table (committed) unless this run did already."""
        with self.lock:
            if schema_ in self.schemas or schema_ in self.denied:
                return
        try:
            conn.execute(sql.SQL(
                "CREATE TABLE IF NOT EXISTS {} (target text NOT NULL, key text NOT NULL, "
                "chunk integer NOT NULL, sha256 text, rows bigint, "
                "PRIMARY KEY (target, key, chunk))").format(self.table(schema_)))
        except psycopg.errors.InsufficientPrivilege:
            # a role that may only load into existing tables: no record, no resume
            with self.lock:
                self.denied.add(schema_)
            return
        except psycopg.Error as exc:
            if exc.sqlstate not in ALREADY_THERE:   # a parallel job was first
                raise
        with self.lock:
            self.schemas.add(schema_)

    def done(self, conn: psycopg.Connection, schema_: str, name: str,
             item: Item) -> List[Any]:
        """The statements recording a table restored in one transaction as done (to
        queue in the table's transaction on ``conn``).  Once a table: :meth:`finished`
        prepared once per connection and schema, then only EXECUTEd (parsing and
        planning it took most of its 0.3 ms on the server)."""
        if schema_ not in self.schemas:
            return []
        target, key = _target_name(schema_, name), data_key(item)
        if conn.prepare_threshold is not None:      # psycopg's own preparing is on
            return [self.finished(schema_, target, key, 0)]
        stmt = "dumpcodec_done_" + hashlib.sha1(schema_.encode()).hexdigest()[:16]
        prepared = _DONE_PREPARED.setdefault(conn, set())
        if schema_ not in prepared:
            conn.execute(sql.SQL("PREPARE {}(pg_catalog.text, pg_catalog.text) AS ")
                         .format(sql.Identifier(stmt))
                         + self.finished(schema_, sql.SQL("$1"), sql.SQL("$2"), 0))
            prepared.add(schema_)
        return [sql.SQL("EXECUTE {}({}, {})").format(
            sql.Identifier(stmt), sql.Literal(target), sql.Literal(key))]

    def finished(self, schema_: str, target: Any, key: Any, rows: int) -> sql.Composed:
        """One statement: ``target`` restored from the data ``key`` (its done row), and
        nothing else of it kept (its chunks, an older data's rows).  The DELETE leaves
        the done row alone, so that no row is changed twice in the statement.
        ``target`` and ``key``: texts, or SQL (parameters of a prepared form)."""
        target, key = _value(target), _value(key)
        return sql.SQL("WITH gone AS (DELETE FROM {} WHERE target = {} AND "
                       "(key, chunk) <> ({}, {})) ").format(
            self.table(schema_), target, key,
            sql.Literal(_DONE)) + self.record(schema_, target, key, _DONE, None, rows)

    def chunks(self, conn: psycopg.Connection, schema_: str, target: str,
               key: str) -> Dict[int, Tuple[Optional[str], int]]:
        """Chunk number -> (sha256, rows) of what is recorded (``-1``: done)."""
        return {k: (sha, rows) for k, sha, rows in conn.execute(
            sql.SQL("SELECT chunk, sha256, rows FROM {} WHERE target = %s AND key = %s")
            .format(self.table(schema_)), (target, key)).fetchall()}

    def record(self, schema_: str, target: Any, key: Any, chunk: int,
               sha: Optional[str], rows: int) -> sql.Composed:
        return sql.SQL("INSERT INTO {} VALUES ({}, {}, {}, {}, {}) ON CONFLICT "
                       "(target, key, chunk) DO UPDATE SET sha256 = EXCLUDED.sha256, "
                       "rows = EXCLUDED.rows").format(
            self.table(schema_), _value(target), _value(key), sql.Literal(chunk),
            sql.Literal(sha), sql.Literal(rows))

    def forget(self, schema_: str, target: str) -> sql.Composed:
        """Every row of ``target`` (its chunks, an older data's done row)."""
        return sql.SQL("DELETE FROM {} WHERE target = {}").format(
            self.table(schema_), sql.Literal(target))

    def drop_unneeded(self, conn: psycopg.Connection) -> None:
        """At the end of a restore: the state of a schema where no staging table is
        left (nothing to resume there) is dropped; where one is left (a big table
        whose load failed part way), it is kept for ``--resume``."""
        for schema_ in sorted(self.schemas):
            try:
                left = conn.execute(
                    "SELECT 1 FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n "
                    "ON n.oid = c.relnamespace WHERE n.nspname = %s AND c.relname LIKE "
                    "'dumpcodec\\_stage\\_%%'", (schema_,)).fetchone()
                if not left:
                    conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(
                        self.table(schema_)))
            except psycopg.Error:
                pass


def _target_name(schema_: str, name: str) -> str:
    return sql.Identifier(schema_, name).as_string(None)


def already_done(run: "RunContext", conn: psycopg.Connection, item: Item,
                 schema_: str, name: str) -> bool:
    """With ``resume``: was the table restored by the run that stopped?"""
    if not catalog.relation_exists(conn, schema_, STATE_TABLE):
        return False
    done = run.state.chunks(conn, schema_, _target_name(schema_, name), data_key(item))
    return _DONE in done and catalog.relation_exists(conn, schema_, name)


# -- the three steps ----------------------------------------------------------------------

@dataclass
class _Stage:
    """One staged table: where it goes and what is recorded of it."""
    schema: str
    name: str
    tdef: Any
    target: str           # the table's quoted name, as the state table records it
    key: str
    stage: str            # the staging table's name (in ``schema``)
    recorded: Dict[int, Tuple[Optional[str], int]]
    existed: bool
    t0: float


def _prepare(run: "RunContext", item: Item, tdef: Any) -> Tuple[
        Optional[_Stage], Optional[TableRestoreResult]]:
    """Step 1 and the checks before it: ``(stage, None)`` to load, or ``(None, result)``
    when there is nothing to load (resumed, or None: skipped).  NotStaged when no
    state table can be made."""
    opts = run.opts
    t0 = time.perf_counter()
    schema_, name, _ = run.target(item)
    run.check(item, schema_, name, tdef)
    target = _target_name(schema_, name)
    key = data_key(item)
    stage = stage_name(schema_, name, key)
    conn = run.pool.get()
    try:
        run.ensure_schema(conn, schema_)
        run.state.ensure(conn, schema_)
        if schema_ in run.state.denied:
            raise NotStaged(schema_)
        recorded = run.state.chunks(conn, schema_, target, key)
        if opts.resume and _DONE in recorded and catalog.relation_exists(conn, schema_,
                                                                        name):
            return None, TableRestoreResult(
                item.table_id, f"{schema_}.{name}", "resumed",
                notes=["restored by the restore that was resumed"])
        exists = catalog.relation_exists(conn, schema_, name)
        if exists and opts.if_exists == "error":
            raise RestoreError(f"table {schema_}.{name} already exists "
                               f"(--if-exists replace|append|truncate|skip)")
        if exists and opts.if_exists == "skip":
            return None, None
        if not (opts.resume and catalog.relation_exists(conn, schema_, stage)):
            recorded = {}
            _create_stage(run, conn, item, schema_, tdef, stage, target)
    except BaseException:
        rollback(conn)
        raise
    finally:
        run.pool.put(conn)
    recorded.pop(_DONE, None)
    return _Stage(schema_, name, tdef, target, key, stage, recorded, exists, t0), None


def restore(run: "RunContext", item: Item, reader_for_thread: Any) -> Optional[
        TableRestoreResult]:
    """Restore ``item`` from a seekable archive through a staging table (see the
    module docstring); None when skipped (``if_exists='skip'``)."""
    st, result = _prepare(run, item, run.target(item)[2])
    if st is None:
        return result
    members = item.info.members
    for k, (sha, _) in st.recorded.items():
        # the key names the table's header, not every chunk: a recorded chunk must
        # be this archive's (loaded again, its rows would be there twice)
        if not 0 <= k < len(members) or sha is None or sha != members[k].sha256:
            raise _other_data(item, k)
    todo = [k for k in range(len(members)) if k not in st.recorded]
    if todo:
        loader = ChunkLoader(run, item, st, min(run.opts.jobs, len(todo)),
                             reader_for_thread=reader_for_thread)
        try:
            for k in todo:
                loader.put(k, None, members[k].sha256, members[k].rows)
        finally:
            loader.close()
    return _finish(run, item, st)


def _finish(run: "RunContext", item: Item, st: _Stage) -> TableRestoreResult:
    """Steps 3 and 4: the keys and indexes built on the staging table, then the swap."""
    t1 = time.perf_counter()
    built = build_indexes(run, item, st)
    t2 = time.perf_counter()
    result = _swap(run, item, st.schema, st.name, st.tdef, st.stage, st.target, st.key,
                   st.existed, st.t0, built)
    log.debug("%s: staged: chunks in %.2f s, %d keys and indexes built in %.2f s, "
              "swap %.2f s",
              item.table_id, t1 - st.t0, len(built), t2 - t1, time.perf_counter() - t2)
    return result


def _other_data(item: Item, k: int) -> RestoreError:
    return RestoreError(
        f"{item.table_id}: chunk {k} recorded in {STATE_TABLE} is not this archive's "
        f"chunk {k}: the staging table holds other data; load without --resume")


def _stage_def(tdef: Any, stage: str) -> Any:
    """The staging table: the columns (generated ones too) and validated CHECKs; no
    defaults, identities, sequences, keys, indexes or anything that names them."""
    return replace(
        tdef, name=stage,
        columns=[replace(c, default=None, identity=None, comment=None)
                 for c in tdef.columns],
        constraints=[replace(c, comment=None) for c in tdef.constraints
                     if c.kind == "check" and c.validated],
        indexes=[], sequences=[], comment=None, triggers=[], policies=[],
        rls_enabled=False, rls_forced=False, statistics=[], owner=None, acl=None,
        replica_identity="d", replica_identity_index=None, clustered_index=None)


def _create_stage(run: "RunContext", conn: psycopg.Connection, item: Item,
                  schema_: str, tdef: Any, stage: str, target: str) -> None:
    """Step 1, committed: the staging table, checked like any table."""
    from .table import _create
    conn.execute("BEGIN")
    run_batch(conn, [sql.SQL("DROP TABLE IF EXISTS {}").format(
        sql.Identifier(schema_, stage)), run.state.forget(schema_, target)])
    # its own expressions (generated columns, CHECKs) are probed and checked here;
    # the table's defaults and index expressions in the final transaction, before
    # they are added
    _create(run, conn, item, schema_, _stage_def(tdef, stage))
    conn.execute("COMMIT")


class Unstaged:
    """:func:`from_stream`'s answer for a table that takes the one-transaction path:
    its chunks (those read while deciding, then the rest of the stream's)."""

    def __init__(self, chunks: Iterator[Any]):
        self.chunks = chunks


def _chain(held: List[Any], rest: Iterator[Any]) -> Iterator[Any]:
    # hands the held chunks out and forgets them (memory), then the stream's
    while held:
        yield held.pop(0)
    yield from rest


def from_stream(run: "RunContext", item: Item, tdef: Any, data: Iterable[Any]) -> Union[
        Unstaged, Callable[[], Optional[TableRestoreResult]]]:
    """A table read from a pipe (:func:`applies` said it may be staged), in the
    stream's one pass.

    Its size shows only as its data goes by: the chunks are held until the table has
    two of them and ``min(stage_larger_than, STREAM_DECIDE_MAX)`` bytes; a table that
    ends before is :class:`Unstaged` (its chunks go to the one-transaction path).  A
    bigger one is staged: step 1, then each chunk, as it arrives, goes through a queue
    of ``jobs`` places to up to ``jobs`` connections (:class:`ChunkLoader`), a
    recorded chunk (``resume``) is read past; once the table's footer has been read
    and checked (when ``data`` ends), the chunks recorded are checked against it.
    Returns the final step (:func:`_swap`) to call, or a callable giving the result
    of a table with nothing to load.  Raises when the table fails; what is left of
    ``data`` is then the caller's to skip.
    """
    opts = run.opts
    it = iter(data)
    held: List[Any] = []
    size = 0
    limit = min(opts.stage_larger_than, STREAM_DECIDE_MAX)
    for chunk in it:
        held.append(chunk)
        size += len(chunk)
        if len(held) >= 2 and size >= limit:
            break
    else:
        return Unstaged(_chain(held, iter(())))    # all of it is held: it ended before
    del chunk
    try:
        st, result = _prepare(run, item, tdef)
    except NotStaged:
        return Unstaged(_chain(held, it))
    if st is None:
        held.clear()
        return lambda: result
    chunks = _chain(held, it)
    n = 0
    loader = ChunkLoader(run, item, st, opts.jobs, in_flight=opts.jobs)
    try:
        try:
            for k, chunk in enumerate(chunks):
                n += 1
                got = st.recorded.get(k)
                if got is None:
                    # its SHA-256 is taken by the connection's thread (off the thread
                    # that reads the stream: about 20 % of its time)
                    loader.put(k, chunk, None, None)
                elif got[0] != hashlib.sha256(chunk).hexdigest():
                    raise _other_data(item, k)
                del chunk
        finally:
            loader.close()
    except ChecksumError:
        # the footer says a chunk is not the one dumped: what the staging table
        # holds came (in part) from it, so nothing in it can be resumed from
        _drop_stage(run, st)
        raise
    # here the reader has read the footer and checked every chunk's SHA-256 against
    # it: the rows each connection counted must be the footer's too
    members = item.info.members
    conn = run.pool.get()
    try:
        recorded = run.state.chunks(conn, st.schema, st.target, st.key)
    finally:
        run.pool.put(conn)
    recorded.pop(_DONE, None)
    if len(members) != n:
        raise RestoreError(f"{item.table_id}: {n} chunks read but the footer "
                           f"lists {len(members)}")
    missing = sorted(set(range(n)) - set(recorded))
    if missing:
        raise RestoreError(f"{item.table_id}: chunk {missing[0]} is not recorded as loaded")
    for k, (sha, rows) in sorted(recorded.items()):
        if not 0 <= k < len(members) or sha != members[k].sha256:
            raise _other_data(item, k)
        if members[k].rows is not None and rows != members[k].rows:
            raise RestoreError(f"{item.table_id}: chunk {k} loaded {rows} rows but the "
                               f"archive says {members[k].rows}")
    log.debug("%s: staged from the stream by up to %d connections, at most %d chunks "
              "in flight", item.table_id, loader.workers, loader.peak)
    return lambda: _finish(run, item, st)


def _drop_stage(run: "RunContext", st: _Stage) -> None:
    conn = run.pool.get()
    try:
        conn.execute("BEGIN")
        run_batch(conn, [sql.SQL("DROP TABLE IF EXISTS {}").format(
            sql.Identifier(st.schema, st.stage)), run.state.forget(st.schema, st.target),
            sql.SQL("COMMIT")])
    except psycopg.Error:
        rollback(conn)
    finally:
        run.pool.put(conn)


class ChunkLoader:
    """Step 2, for both paths: chunks handed to :meth:`put` are copied by up to
    ``workers`` connections of the pool, each chunk in a transaction of its own
    that records it (SHA-256 and rows) in the state table.

    The queue holds at most ``in_flight`` chunks, so that at most ``in_flight +
    workers + 1`` chunks handed in are held at once (those queued, those being copied,
    the one :meth:`put` waits with; ``peak`` says how many were) however big the
    table; :meth:`put` waits for a place.  A chunk handed in as None is read
    by the worker from its own reader of the archive (``reader_for_thread``: random
    access); a chunk handed in without its SHA-256 gets it here.  The first failure stops the loading (the chunks queued after it are
    dropped), and :meth:`put` and :meth:`close` raise it; what was committed before
    stays, recorded, for ``resume``.
    """

    def __init__(self, run: "RunContext", item: Item, st: _Stage, workers: int, *,
                 in_flight: Optional[int] = None, reader_for_thread: Any = None):
        self.run, self.item, self.st = run, item, st
        self.workers = max(1, workers)
        self.reader_for_thread = reader_for_thread
        columns = item.columns or schema.copy_columns(item.definition)
        fmt = sql.SQL(" (FORMAT binary)") if item.format == "binary" else sql.SQL("")
        self.query = sql.SQL("COPY {} ({}) FROM STDIN{}").format(
            sql.Identifier(st.schema, st.stage),
            sql.SQL(", ").join(map(sql.Identifier, columns)), fmt)
        self.queue: "queue.Queue[Any]" = queue.Queue(maxsize=in_flight or 0)
        self.failed: List[BaseException] = []
        self.lock = threading.Lock()
        self.held = 0          # chunks handed in and not yet committed (or dropped)
        self.peak = 0
        self.threads = [threading.Thread(target=self._work, daemon=True,
                                         name=f"dumpcodec-chunk-{i}")
                        for i in range(self.workers)]
        for t in self.threads:
            t.start()

    def put(self, k: int, data: Any, sha: Optional[str], rows: Optional[int]) -> None:
        with self.lock:
            self.held += 1
            self.peak = max(self.peak, self.held)
        job = (k, data, sha, rows)
        while True:
            if self.failed:
                raise self.failed[0]
            try:
                self.queue.put(job, timeout=0.2)
                return
            except queue.Full:
                continue

    def close(self) -> None:
        """Wait for the chunks handed in; raise the first failure."""
        for _ in self.threads:
            self.queue.put(None)     # the workers drain the queue, also after a failure
        for t in self.threads:
            t.join()
        if self.failed:
            raise self.failed[0]

    def _work(self) -> None:
        conn = None
        reader = None
        try:
            conn = self.run.pool.get()
        except BaseException as exc:
            self.failed.append(exc)
        while True:
            job = self.queue.get()
            if job is None:
                break
            k, data, sha, rows = job
            job = None
            try:
                if not self.failed:
                    if data is None:
                        if reader is None:
                            reader = self.reader_for_thread()
                        for _, data in reader.read_members(self.item.table_id, [k]):
                            pass
                    elif sha is None:
                        sha = hashlib.sha256(data).hexdigest()
                    self._copy(conn, k, data, sha, rows)
            except BaseException as exc:
                self.failed.append(exc)
                rollback(conn)
            finally:
                data = None
                with self.lock:
                    self.held -= 1
        if conn is not None:
            self.run.pool.put(conn)

    def _copy(self, conn: psycopg.Connection, k: int, data: Any, sha: Optional[str],
              expect: Optional[int]) -> None:
        run, item, st = self.run, self.item, self.st
        try:
            conn.execute("BEGIN")
            with pump.CopyIn(conn, self.query) as cp:
                cp.write(data)
            rows = cp.rows
            if expect is not None and rows != expect:
                raise RestoreError(f"{item.table_id}: chunk {k} loaded {rows} rows "
                                   f"but the archive says {expect}")
            conn.execute(run.state.record(st.schema, st.target, st.key, k, sha, rows))
            conn.execute("COMMIT")
            log.debug("%s: backend %d committed chunk %d", item.table_id,
                      conn.info.backend_pid, k)
        except psycopg.OperationalError as exc:
            if conn.closed or conn.broken or isinstance(exc,
                                                        psycopg.errors.AdminShutdown):
                raise RestoreError(
                    f"chunk {k}: the connection to the server was lost "
                    f"({reason(exc)}); the chunks committed before it are kept in the "
                    f"staging table: load --resume goes on from them") from exc
            raise
        run.opts.progress.advance(item.table_id, len(data), rows)
        run.log_chunk(item.table_id, k)


_KEY_KINDS = ("primary_key", "unique", "exclusion")


def _build_def(tdef: Any, stage: str) -> Tuple[Any, Dict[str, Tuple[str, str]]]:
    """The staging table with the table's keys, exclusion constraints and indexes,
    each under a name of the restore's (``<staging table>_<n>``, never the archive's),
    without their storage parameters and comments (set in the final transaction, as
    for any table); and staging name -> (kind, the archive's name)."""
    names: Dict[str, Tuple[str, str]] = {}

    def rename(kind: str, real: str) -> str:
        s = f"{stage}_{len(names)}"
        names[s] = (kind, real)
        return s
    base = _stage_def(tdef, stage)
    keys = [replace(c, name=rename("constraint", c.name), comment=None, index_options=[])
            for c in tdef.constraints if c.kind in _KEY_KINDS]
    indexes = [replace(ix, name=rename("index", ix.name), comment=None, options=[])
               for ix in tdef.indexes]
    return replace(base, constraints=list(base.constraints) + keys, indexes=indexes), names


def build_indexes(run: "RunContext", item: Item, st: _Stage) -> Dict[str, Tuple[str, str]]:
    """Step 3: the table's keys, exclusion constraints and indexes built on the
    staging table, committed, each on a connection of its own (up to ``jobs`` at
    once, each with ``max_parallel_maintenance_workers`` set to ``jobs - 1``) under a
    name of the restore's; :func:`_swap` renames them.

    They are judged first, as any table's are, while no row is involved: their
    expressions resolved (:meth:`~dumpcodec.schema.safety.Guard.probe`), and when
    they may resolve to anything not known safe (:func:`.table._needs_trial`) built
    on the staging table emptied by a TRUNCATE in a transaction that is rolled back,
    then the table's dependencies checked.  Those already built on the staging
    table (by a restore that stopped, ``resume``) are kept (a build commits
    whole or not at all).  Returns what is built (staging name -> (kind, the
    archive's name)); raises when one fails (the old table is untouched)."""
    from .table import _needs_trial
    opts = run.opts
    if not opts.indexes:
        return {}
    bdef, names = _build_def(st.tdef, st.stage)
    if not names:
        return {}
    plan = schema.ddl_plan(bdef, st.schema, existing_types=None)
    tdef, schema_, where = st.tdef, st.schema, item.table_id
    conn = run.pool.get()
    try:
        guard = run.guard(conn)
        allowed = Allowed(
            table=_target_name(schema_, st.stage), schemas=plan.schemas,
            types=[sql.Identifier(schema_ if ty.schema == tdef.schema else ty.schema,
                                  ty.name).as_string(None) for ty in tdef.types])
        conn.execute("BEGIN")
        there = {r[0] for r in conn.execute(
            "SELECT i.relname FROM pg_catalog.pg_index x JOIN pg_catalog.pg_class i "
            "ON i.oid = x.indexrelid WHERE x.indrelid = %s::pg_catalog.regclass",
            (_target_name(schema_, st.stage),)).fetchall()}
        todo = [b for b in plan.builds if b[1] not in there]
        before, check, after = guard.probe(schema_, plan.probes, allowed, where)
        steps: List[Any] = [*plan.setup, *before, *([check] if check else []), *after]
        if todo and _needs_trial(tdef):
            steps += [sql.SQL("SAVEPOINT dumpcodec_trial"),
                      sql.SQL("TRUNCATE ONLY {}").format(sql.Identifier(schema_, st.stage)),
                      *[b[2] for b in todo], guard.table_check(allowed, where),
                      sql.SQL("ROLLBACK TO SAVEPOINT dumpcodec_trial")]
        else:
            steps.append(guard.table_check(allowed, where))
        steps.append(guard.column_opclass_check(allowed, where))
        run_batch(conn, steps)
        conn.execute("ROLLBACK")
    except BaseException:
        rollback(conn)
        raise
    finally:
        run.pool.put(conn)
    if todo:
        _run_builds(run, item, st, plan.setup, todo, names)
    return names


def _run_builds(run: "RunContext", item: Item, st: _Stage, setup: List[Any],
                todo: List[Tuple[str, str, Any]], names: Dict[str, Tuple[str, str]]) -> None:
    """Each build in a transaction of its own, on up to ``jobs`` connections."""
    jobs = run.opts.jobs
    pending = list(todo)
    failed: List[BaseException] = []
    lock = threading.Lock()
    maint = sql.SQL("SET LOCAL max_parallel_maintenance_workers = {}").format(
        sql.Literal(max(0, jobs - 1)))

    def work() -> None:
        try:
            conn = run.pool.get()
        except BaseException as exc:
            failed.append(exc)
            return
        try:
            while True:
                with lock:
                    if failed or not pending:
                        return
                _, sname, stmt = pending.pop(0)
                kind, real = names[sname]
                t = time.perf_counter()
                try:
                    conn.execute("BEGIN")
                    run_batch(conn, [*setup, maint, stmt, sql.SQL("COMMIT")])
                except BaseException as exc:
                    rollback(conn)
                    failed.append(_build_error(item, st, kind, real, exc))
                    return
                log.debug("%s: %s %s built on backend %d in %.2f s", item.table_id, kind,
                          real, conn.info.backend_pid, time.perf_counter() - t)
        finally:
            run.pool.put(conn)

    threads = [threading.Thread(target=work, daemon=True, name=f"dumpcodec-index-{i}")
               for i in range(1, min(jobs, len(pending)))]
    for t in threads:
        t.start()
    work()
    for t in threads:
        t.join()
    if failed:
        raise failed[0]


def _build_error(item: Item, st: _Stage, kind: str, real: str,
                 exc: BaseException) -> BaseException:
    if not isinstance(exc, psycopg.Error):
        return exc
    what = f"{item.table_id}: {'key' if kind == 'constraint' else 'index'} {real}"
    if isinstance(exc, psycopg.OperationalError) and (
            exc.sqlstate is None or isinstance(exc, psycopg.errors.AdminShutdown)):
        return RestoreError(
            f"{what}: the connection to the server was lost ({reason(exc)}) while it "
            f"was built on the staging table; load --resume goes on from there")
    return RestoreError(f"{what} could not be built ({reason(exc)}); "
                        f"{st.schema}.{st.name} is unchanged")


def _swap(run: "RunContext", item: Item, schema_: str, name: str, tdef: Any,
          stage: str, target: str, key: str, existed: bool,
          t0: float, built: Dict[str, Tuple[str, str]]) -> TableRestoreResult:
    """Step 4: one transaction puts the staging table in the table's place; ``built``
    (staging name -> (kind, the archive's name)) are the keys and indexes built on it
    (:func:`build_indexes`), renamed here."""
    from .table import _needs_trial
    opts = run.opts
    conn = run.pool.get()
    try:
        recorded = run.state.chunks(conn, schema_, target, key)
        rows = sum(r for k, (_, r) in recorded.items() if k != _DONE)
        if item.info.rows is not None and rows != item.info.rows:
            raise RestoreError(f"{item.table_id}: the staging table holds {rows} rows "
                               f"but the archive says {item.info.rows}")
        plan = schema.ddl_plan(tdef, schema_, existing_types=None)
        guard = run.guard(conn)
        conn.execute("BEGIN")
        readd: List[Tuple[str, str, str, str]] = []
        action = "created"
        if catalog.lock_if_exists(conn, schema_, name, "ACCESS EXCLUSIVE") is not None:
            if opts.if_exists != "replace":
                raise RestoreError(f"table {schema_}.{name} already exists "
                                   f"(--if-exists replace|append|truncate|skip)")
            readd = catalog.referencing_fks(conn, schema_, name)
            run_batch(conn, [sql.SQL("ALTER TABLE {} DROP CONSTRAINT {}").format(
                sql.Identifier(fk[0], fk[1]), sql.Identifier(fk[2])) for fk in readd] + [
                sql.SQL("DROP TABLE {}").format(sql.Identifier(schema_, name))])
            action = "replaced"
        allowed = Allowed(
            table=target, schemas=plan.schemas,
            types=[sql.Identifier(schema_ if ty.schema == tdef.schema else ty.schema,
                                  ty.name).as_string(None) for ty in tdef.types],
            own_sequences=[sql.Identifier(schema_ if s.schema == tdef.schema
                                          else s.schema, s.name).as_string(None)
                           for s in tdef.sequences if not s.identity])
        # the keys and indexes take the archive's names (a name taken by another
        # relation fails the table here: nothing is changed)
        renames = [sql.SQL("ALTER TABLE {} RENAME CONSTRAINT {} TO {}").format(
            sql.Identifier(schema_, name), sql.Identifier(s), sql.Identifier(real))
            if kind == "constraint" else sql.SQL("ALTER INDEX {} RENAME TO {}").format(
                sql.Identifier(schema_, s), sql.Identifier(real))
            for s, (kind, real) in sorted(built.items())]
        run_batch(conn, [
            sql.SQL("ALTER TABLE {} RENAME TO {}").format(sql.Identifier(schema_, stage),
                                                          sql.Identifier(name)),
            *renames, *plan.setup, *plan.serials])
        # the table's expressions, resolved before anything evaluates them (index
        # expressions are folded when an index is built)
        before, check, after = guard.probe(schema_, plan.probes, allowed, item.table_id)
        run_batch(conn, before + ([check] if check else []) + after)
        steps: List[Any] = [
            *schema.column_defaults(tdef, schema_),
            *[s for s in plan.table if s is not plan.create_table]]
        # what post_data holds besides the keys and indexes already built (CHECKs
        # added NOT VALID, index parameters, statistics, replica identity, CLUSTER
        # ON, comments); the table check judges the keys and indexes built too
        builds = {id(b[2]) for b in plan.builds}
        rest = [s for s in plan.post_data if id(s) not in builds] if opts.indexes else []
        if rest and _needs_trial(tdef):
            steps += [sql.SQL("SAVEPOINT dumpcodec_trial"), *rest,
                      guard.table_check(allowed, item.table_id),
                      sql.SQL("ROLLBACK TO SAVEPOINT dumpcodec_trial"),
                      sql.SQL("RELEASE SAVEPOINT dumpcodec_trial")]
        else:
            steps.append(guard.table_check(allowed, item.table_id))
        steps.append(guard.column_opclass_check(allowed, item.table_id))
        run_batch(conn, steps)
        run_batch(conn, rest + list(plan.sequences))
        notes = list(plan.notes)
        for phase in ("comments", "policies", "triggers") + (
                ("privileges",) if opts.privileges else ()):
            notes += schema.run_steps(conn, getattr(plan, phase), f"{schema_}.{name}")
        if not opts.privileges and schema.privileges_note(plan):
            notes.append(schema.privileges_note(plan))
        run_batch(conn, [sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} {}").format(
            sql.Identifier(fk[0], fk[1]), sql.Identifier(fk[2]), sql.SQL(fk[3]))
            for fk in readd] + [
            run.state.finished(schema_, target, key, rows), sql.SQL("COMMIT")])
        nbytes = sum(m.size for m in item.info.members)
        result = TableRestoreResult(item.table_id, f"{schema_}.{name}", action, rows,
                                    nbytes, time.perf_counter() - t0, notes=notes)
        if opts.analyze:
            try:
                conn.execute(sql.SQL("ANALYZE {}").format(sql.Identifier(schema_, name)))
            except psycopg.Error as exc:
                result.warning = f"{item.table_id}: ANALYZE failed: {exc}"
        return result
    except BaseException:
        rollback(conn)
        raise
    finally:
        run.pool.put(conn)
