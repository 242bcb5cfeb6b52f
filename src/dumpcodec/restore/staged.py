"""Big tables: several connections load one table, and an interrupted restore resumes.

A table with several chunks (at least ``stage_larger_than`` bytes of data) from a
seekable archive is restored in three steps:

1. a *staging table* is created and committed in the target schema, under a name the
   archive cannot choose (``dumpcodec_stage_`` and a hash of the target and of the
   data's checksums): the table's columns, generated columns and CHECKs, without
   defaults, keys or indexes (so that nothing of it can bind to the table it may
   replace), after the same checks as any table (:mod:`dumpcodec.schema.safety`);
2. its chunks are copied in by up to ``jobs`` connections, each chunk in a transaction
   of its own that also records the chunk, with its SHA-256 and row count, in the
   schema's ``dumpcodec_restore_state`` table;
3. one final transaction puts it in the table's place: the old table is dropped
   (``replace``), the staging table renamed, the owned sequences, defaults and
   identities added, then keys and indexes built (with ``max_parallel_maintenance_
   workers`` set to ``jobs``), sequences set, comments, policies, triggers and grants
   added, other tables' foreign keys put back, and the table recorded as done.

Nothing half-done is visible under the table's name: until step 3 commits, the old
table (or none) is there.  A restore that stops anywhere (killed, server restarted,
connection lost) leaves the staging table and the state behind; ``resume=True``
(``load --resume``) then loads only the chunks not recorded (a chunk is recorded in
the transaction that loaded it, so it is there exactly when its rows are), skips
tables recorded as done, and gives the same result as a restore that never stopped.
Without ``resume`` a leftover staging table is dropped and the table loaded afresh.
Tables restored in one transaction are recorded as done too (in that transaction), so
``--resume`` after a crash skips them.  A restore that ends (with or without failed
tables) drops its state tables, except in a schema where a staging table is left (a
big table whose load failed part way): that one is kept for ``--resume``.

Not staged (restored in one transaction as before): partitions and inheritance
children (a staging table attached to the parent would show its rows), tables loaded
into an existing table (``append``, ``truncate``), tables whose columns travel as
text, DaCHS tables, and any table read from a pipe.
"""
from __future__ import annotations

import hashlib
import queue
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Set, Tuple

import psycopg
from psycopg import sql

from .. import pump, schema
from ..errors import RestoreError
from ..schema import catalog
from ..schema.safety import Allowed
from .pool import rollback
from .results import TableRestoreResult
from .select import Item
from .table import ALREADY_THERE, run_batch

if TYPE_CHECKING:   # pragma: no cover
    from .context import RunContext

STATE_TABLE = "dumpcodec_restore_state"
STAGE_PREFIX = "dumpcodec_stage_"
_DONE = -1        # the chunk number of the row saying "this table is restored"


class NotStaged(Exception):
    """No state table can be made in the schema: the table takes the usual path."""


def reserved_name(name: str) -> bool:
    """Names a restore keeps for itself (an archive's table may not take one)."""
    return name == STATE_TABLE or name.startswith(STAGE_PREFIX)


def data_key(item: Item) -> str:
    """What identifies one table's data in an archive: its id, columns and chunks'
    checksums (an archive with other data for the table gets another key)."""
    h = hashlib.sha256()
    h.update(item.table_id.encode("utf-8", "surrogatepass"))
    for c in item.columns or ():
        h.update(b"\0c" + c.encode("utf-8", "surrogatepass"))
    for m in item.info.members:
        h.update(b"\0m" + (m.sha256 or m.name).encode())
    return h.hexdigest()[:32]


def stage_name(schema_: str, name: str, key: str) -> str:
    return STAGE_PREFIX + hashlib.sha256(
        f"{schema_}\0{name}\0{key}".encode("utf-8", "surrogatepass")).hexdigest()[:20]


def applies(run: "RunContext", item: Item, tdef: Any) -> bool:
    """Whether ``item`` goes through a staging table."""
    opts = run.opts
    members = item.info.members
    # at -j1 a staging table only costs (a commit per chunk, a second table): a
    # table is staged when several connections can load it, or to resume
    return (run.seekable and opts.data and opts.stage_larger_than > 0
            and (opts.jobs > 1 or opts.resume)
            and tdef is not None and tdef.kind == "table" and not tdef.inherits
            and item.info.layout != "dachs" and item.info.has_data
            and not item.info.as_text and opts.if_exists in ("error", "replace", "skip")
            and len(members) >= 2
            and sum(m.size for m in members) >= opts.stage_larger_than)


# -- the state table ----------------------------------------------------------------------

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

    def done(self, schema_: str, name: str, item: Item) -> List[sql.Composed]:
        """The statements recording a table restored in one transaction as done."""
        if schema_ not in self.schemas:
            return []
        target = _target_name(schema_, name)
        return [self.forget(schema_, target),
                self.record(schema_, target, data_key(item), _DONE, None, 0)]

    def chunks(self, conn: psycopg.Connection, schema_: str, target: str,
               key: str) -> Dict[int, Tuple[Optional[str], int]]:
        """Chunk number -> (sha256, rows) of what is recorded (``-1``: done)."""
        return {k: (sha, rows) for k, sha, rows in conn.execute(
            sql.SQL("SELECT chunk, sha256, rows FROM {} WHERE target = %s AND key = %s")
            .format(self.table(schema_)), (target, key)).fetchall()}

    def record(self, schema_: str, target: str, key: str, chunk: int,
               sha: Optional[str], rows: int) -> sql.Composed:
        return sql.SQL("INSERT INTO {} VALUES ({}, {}, {}, {}, {}) ON CONFLICT "
                       "(target, key, chunk) DO UPDATE SET sha256 = EXCLUDED.sha256, "
                       "rows = EXCLUDED.rows").format(
            self.table(schema_), sql.Literal(target), sql.Literal(key), sql.Literal(chunk),
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

def restore(run: "RunContext", item: Item, reader_for_thread: Any) -> Optional[
        TableRestoreResult]:
    """Restore ``item`` through a staging table (see the module docstring); None when
    skipped (``if_exists='skip'``)."""
    opts = run.opts
    t0 = time.perf_counter()
    schema_, name, tdef = run.target(item)
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
            return TableRestoreResult(item.table_id, f"{schema_}.{name}", "resumed",
                                      notes=["restored by the restore that was resumed"])
        exists = catalog.relation_exists(conn, schema_, name)
        if exists and opts.if_exists == "error":
            raise RestoreError(f"table {schema_}.{name} already exists "
                               f"(--if-exists replace|append|truncate|skip)")
        if exists and opts.if_exists == "skip":
            return None
        if not (opts.resume and catalog.relation_exists(conn, schema_, stage)):
            recorded = {}
            _create_stage(run, conn, item, schema_, tdef, stage, target)
    except BaseException:
        rollback(conn)
        raise
    finally:
        run.pool.put(conn)
    todo = [k for k, m in enumerate(item.info.members)
            if recorded.get(k, (None,))[0] != m.sha256 or m.sha256 is None]
    _load_chunks(run, item, schema_, stage, target, key, todo, reader_for_thread)
    return _swap(run, item, schema_, name, tdef, stage, target, key, exists, t0)


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


def _load_chunks(run: "RunContext", item: Item, schema_: str, stage: str, target: str,
                 key: str, todo: List[int], reader_for_thread: Any) -> None:
    """Step 2: each chunk in a transaction of its own, recorded with it; up to
    ``jobs`` connections at once (each with its own reader of the archive)."""
    if not todo:
        return
    opts = run.opts
    columns = item.columns or schema.copy_columns(item.definition)
    fmt = sql.SQL(" (FORMAT binary)") if item.format == "binary" else sql.SQL("")
    query = sql.SQL("COPY {} ({}) FROM STDIN{}").format(
        sql.Identifier(schema_, stage), sql.SQL(", ").join(map(sql.Identifier, columns)),
        fmt)
    members = item.info.members
    work: "queue.Queue[int]" = queue.Queue()
    for k in todo:
        work.put(k)
    failed: List[BaseException] = []

    def worker() -> None:
        conn = run.pool.get()
        try:
            reader = reader_for_thread()
            while not failed:
                try:
                    k = work.get_nowait()
                except queue.Empty:
                    return
                for _, data in reader.read_members(item.table_id, [k]):
                    conn.execute("BEGIN")
                    with pump.CopyIn(conn, query) as cp:
                        cp.write(data)
                    rows = cp.rows
                    if members[k].rows is not None and rows != members[k].rows:
                        raise RestoreError(f"{item.table_id}: chunk {k} loaded {rows} rows "
                                           f"but the archive says {members[k].rows}")
                    conn.execute(run.state.record(schema_, target, key, k,
                                                  members[k].sha256, rows))
                    conn.execute("COMMIT")
                    opts.progress.advance(item.table_id, len(data), rows)
                    run.log_chunk(item.table_id, k)
        except BaseException as exc:
            failed.append(exc)
            rollback(conn)
        finally:
            run.pool.put(conn)

    n = min(opts.jobs, len(todo))
    if n == 1:
        worker()
    else:
        with ThreadPoolExecutor(max_workers=n, thread_name_prefix="dumpcodec-chunk") as ex:
            for f in [ex.submit(worker) for _ in range(n)]:
                f.result()
    if failed:
        raise failed[0]


def _swap(run: "RunContext", item: Item, schema_: str, name: str, tdef: Any,
          stage: str, target: str, key: str, existed: bool,
          t0: float) -> TableRestoreResult:
    """Step 3: one transaction puts the staging table in the table's place."""
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
        run_batch(conn, [
            sql.SQL("ALTER TABLE {} RENAME TO {}").format(sql.Identifier(schema_, stage),
                                                          sql.Identifier(name)),
            *plan.setup, *plan.serials])
        # the table's expressions, resolved before anything evaluates them (index
        # expressions are folded when an index is built)
        before, check, after = guard.probe(schema_, plan.probes, allowed, item.table_id)
        run_batch(conn, before + ([check] if check else []) + after)
        steps: List[Any] = [
            *schema.column_defaults(tdef, schema_),
            *[s for s in plan.table if s is not plan.create_table],
            sql.SQL("SET LOCAL max_parallel_maintenance_workers = {}").format(
                sql.Literal(max(0, opts.jobs - 1)))]
        if opts.indexes and _needs_trial(tdef):
            steps += [sql.SQL("SAVEPOINT dumpcodec_trial"), *plan.post_data,
                      guard.table_check(allowed, item.table_id),
                      sql.SQL("ROLLBACK TO SAVEPOINT dumpcodec_trial"),
                      sql.SQL("RELEASE SAVEPOINT dumpcodec_trial")]
        else:
            steps.append(guard.table_check(allowed, item.table_id))
        steps.append(guard.column_opclass_check(allowed, item.table_id))
        run_batch(conn, steps)
        run_batch(conn, (list(plan.post_data) if opts.indexes else []) + list(
            plan.sequences))
        notes = list(plan.notes)
        for phase in ("comments", "policies", "triggers") + (
                ("privileges",) if opts.privileges else ()):
            notes += schema.run_steps(conn, getattr(plan, phase), f"{schema_}.{name}")
        if not opts.privileges and schema.privileges_note(plan):
            notes.append(schema.privileges_note(plan))
        run_batch(conn, [sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} {}").format(
            sql.Identifier(fk[0], fk[1]), sql.Identifier(fk[2]), sql.SQL(fk[3]))
            for fk in readd] + [
            run.state.forget(schema_, target),
            run.state.record(schema_, target, key, _DONE, None, rows),
            sql.SQL("COMMIT")])
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
