"""One restore: its options, connections, allow-list, schedulers and results.

:class:`RestoreRun` holds everything the tables of one restore share; the per-table
work is in :mod:`.table`, the archive-wide and per-table rules in :mod:`.select`.
"""
from __future__ import annotations

import contextlib
import logging
import os
import sys
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from typing import IO, Any, Callable, Dict, Iterable, List, Optional, Set, Tuple, Union

import psycopg
from psycopg import sql

from .. import schema
from ..archive import is_random_access, open_dump
from ..errors import ArchiveError, DumpcodecError, RestoreError
from ..schema import catalog
from ..schema.safety import Allowed, Guard
from . import ahead, choose, select, staged, table
from .pool import Pool, reason, rollback
from .results import RestoreSummary, TableRestoreResult
from .context import RestoreOptions
from .sequences import restore_free_sequences

log = logging.getLogger("dumpcodec.restore")


class Restored:
    """A table restored by this run: where it went, ``source`` (schema, name) as the
    archive names it (None without definition), and ``tdef`` only when the table has
    foreign keys (added after all tables; else None: a restore of 10,000 tables held
    every definition to its end)."""
    __slots__ = ("item", "schema", "name", "source", "tdef")

    def __init__(self, item: select.Item, schema_: str, name: str, tdef: Any):
        self.item, self.schema, self.name = item, schema_, name
        self.source = (tdef.schema, tdef.name) if tdef is not None else None
        self.tdef = tdef if tdef is not None and any(
            c.kind == "foreign_key" for c in tdef.constraints) else None


class RestoreRun:
    """The state one restore shares between its tables and threads."""

    def __init__(self, conninfo: str, source: Union[str, os.PathLike, IO[bytes]],
                 opts: RestoreOptions):
        opts.check()
        self.conninfo = conninfo
        self.opts = opts
        if isinstance(source, (str, os.PathLike)) and os.fspath(source) == "-":
            source = sys.stdin.buffer
        self.source = source
        # random access, and a path a worker thread can open again
        self.seekable = is_random_access(source) and (
            isinstance(source, (str, os.PathLike)) or hasattr(source, "name"))
        self.summary = RestoreSummary()
        self.lock = threading.Lock()
        self.done: List[Restored] = []
        self.ok_ids: Set[str] = set()
        self.actions: Dict[str, str] = {}      # table id -> what its restore did
        self.failed_ids: Set[str] = set()
        self.new_schemas: Set[str] = set()     # created by this restore (ensure_schema)
        self.known_schemas: Set[str] = set()   # known to exist
        # (schema, name) as the archive names them, of the tables this run restores
        self.restoring: Set[Tuple[str, str]] = set()
        self._guard: Optional[Guard] = None
        self.state = staged.State()
        self.reader: Any = None
        self.pool: Optional[Pool] = None

    # -- shared helpers ---------------------------------------------------------------

    def guard(self, conn: psycopg.Connection) -> Guard:
        """The target's allow-list, loaded by the first table that needs it."""
        with self.lock:
            if self._guard is None:
                self._guard = Guard(conn, trust_extensions=self.opts.trust_extensions)
            return self._guard

    def target(self, item: select.Item) -> Tuple[str, str, Any]:
        return select.target_of(item, self.opts.target_schema, self.opts.definitions)

    def check(self, item: select.Item, schema_: str, name: str, tdef: Any) -> None:
        select.check_item(item, schema_, name, tdef, restored=self.restoring,
                          allow_attach=self.opts.allow_attach)

    def ensure_schema(self, conn: psycopg.Connection, schema_: str) -> None:
        """Create the target schema, committed, before the table's transaction.

        Created inside each table's transaction instead, the schema would serialise
        the parallel jobs: a second ``CREATE SCHEMA IF NOT EXISTS`` waits for the first
        transaction to end.  Schemas created here that hold nothing at the end are
        dropped again (:meth:`drop_empty_schemas`).
        """
        if schema_ in self.known_schemas:
            return
        if catalog.namespace_oids(conn, [schema_]):
            self.known_schemas.add(schema_)
            return
        try:
            conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema_)))
        except psycopg.Error as exc:
            if exc.sqlstate not in table.ALREADY_THERE:   # a parallel job was first
                raise
            return
        with self.lock:
            self.new_schemas.add(schema_)
            self.known_schemas.add(schema_)

    def drop_empty_schemas(self, conn: psycopg.Connection) -> None:
        for schema_ in sorted(self.new_schemas):
            # asked first: a DROP of a schema with tables in it would wait for (and
            # cancel) an autovacuum of them before it fails
            used = conn.execute(
                "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_depend WHERE refclassid = "
                "'pg_catalog.pg_namespace'::regclass AND refobjid = "
                "pg_catalog.to_regnamespace(%s))",
                (sql.Identifier(schema_).as_string(conn),)).fetchone()[0]
            if used is False:
                try:
                    conn.execute(sql.SQL("DROP SCHEMA {} RESTRICT").format(
                        sql.Identifier(schema_)))
                except psycopg.Error:
                    pass

    def log_chunk(self, table_id: str, chunk: int) -> None:
        """A chunk of a staged table was loaded and committed."""
        log.debug("%s: chunk %d loaded", table_id, chunk)

    def resumed(self, conn: psycopg.Connection, item: select.Item) -> Optional[
            TableRestoreResult]:
        """With ``resume``: the result of a table the stopped restore finished."""
        if not self.opts.resume:
            return None
        try:
            schema_, name, _ = self.target(item)
        except RestoreError:
            return None
        if staged.already_done(self, conn, item, schema_, name):
            return TableRestoreResult(item.table_id, f"{schema_}.{name}", "resumed",
                                      notes=["restored by the restore that was resumed"])
        return None

    def record(self, outcome: Any, item: select.Item,
               target: Optional[Tuple[str, str, Any]] = None) -> None:
        """A table's outcome: a result, None (skipped) or the exception that failed it."""
        progress = self.opts.progress
        with self.lock:
            if isinstance(outcome, select.Unmapped):
                self.summary.skipped.append(item.table_id)
                self.summary.warnings.append(str(outcome))
                log.info("skipped %s: %s", item.table_id, outcome)
                progress.table_done(item.table_id, 0, 0, 0.0, None)
            elif isinstance(outcome, BaseException):
                why = reason(outcome)
                if target is None:
                    try:
                        target = self.target(item)
                    except RestoreError:
                        pass
                names = [item.qualified] + (["{}.{}".format(*target[:2])] if target else [])
                self.summary.add_failure(item.table_id, why, names)
                self.failed_ids.add(item.table_id)
                log.error("failed %s: %s", item.table_id, why)
                progress.table_done(item.table_id, 0, 0, 0.0, why)
            elif outcome is None:
                self.summary.skipped.append(item.table_id)
                log.info("skipped %s: it exists (if_exists=skip)", item.table_id)
                progress.table_done(item.table_id, 0, 0, 0.0, None)
            else:
                r: TableRestoreResult = outcome
                self.summary.ok.append(r)
                self.ok_ids.add(item.table_id)
                self.actions[item.table_id] = r.action
                if r.warning:
                    self.summary.warnings.append(r.warning)
                if target is not None:
                    self.done.append(Restored(item, *target))
                log.info("%s %s into %s: %d rows, %d bytes, %.3f s", r.action,
                         item.table_id, r.target, r.rows, r.nbytes, r.seconds)
                progress.table_done(item.table_id, r.rows, r.nbytes, r.seconds)

    # -- the whole run -------------------------------------------------------------------

    def run(self) -> RestoreSummary:
        t_start = time.perf_counter()
        self.reader = open_dump(self.source, "r",
                                storage_options=self.opts.storage_options)
        self.pool = Pool(self.conninfo, self.opts.jobs,
                         lambda: self.reader.info.get("client_encoding") or None,
                         self.opts.role)
        try:
            if self.seekable:
                self._restore_seekable()
            else:
                self._restore_stream()
            conn = self.pool.get()
            try:
                restore_free_sequences(self, conn)
                if self.opts.indexes:
                    self._foreign_keys(conn)
                elif any(c.kind == "foreign_key" for d in self.done if d.tdef is not None
                         for c in d.tdef.constraints):
                    # a foreign key needs the referenced table's key, which was left out
                    self.summary.warnings.append("foreign keys not created (indexes and "
                                                 "keys were left out)")
                self.state.drop_unneeded(conn)
                self.drop_empty_schemas(conn)
            finally:
                self.pool.put(conn)
        finally:
            self.pool.close()
            try:
                self.reader.close()
            except Exception:
                pass
            self.opts.progress.finish()
        self.summary.seconds = time.perf_counter() - t_start
        for w in self.summary.warnings:
            log.warning("%s", w)
        return self.summary

    def _restore_one(self, conn, item: select.Item,
                     chunks: Callable[[], Iterable[bytes]],
                     ready: Optional[ahead.Ready] = None) -> Any:
        prepared = table.load(self, conn, item, chunks, ready)
        if prepared is None:
            return None
        return table.finish(self, prepared)

    # -- from a seekable file: every table known up front ------------------------------

    def _restore_seekable(self) -> None:
        opts = self.opts
        every = [select.item_from(t) for t in self.reader.tables()]
        # the archive's own rules hold for all of it, whatever is selected
        select.check_archive(every, opts.target_schema, opts.definitions)
        items, unmatched = choose.choose(every, opts.tables, opts.selection)
        self.summary.warnings += [f"no matching tables were found for {u}"
                                  for u in unmatched]
        self._conflicts_up_front(items)
        expect = getattr(opts.progress, "expect", None)
        if expect is not None:
            expect(sum(m.size for it in items for m in it.info.members))
        self.restoring = {it.source for it in items if it.source is not None}
        by_name = {it.source: it.table_id for it in items if it.source is not None}
        opts.progress.start("restore", len(items))
        events = {it.table_id: threading.Event() for it in items}
        local = threading.local()
        readers: List[Any] = []

        def open_own_reader():
            src = self.source if not hasattr(self.source, "name") else self.source.name
            r = open_dump(src, "r", storage_options=opts.storage_options)
            r.share_index(self.reader)
            return r

        def my_reader():
            if opts.jobs == 1:
                return self.reader
            r = getattr(local, "reader", None)
            if r is None:
                r = local.reader = open_own_reader()
                with self.lock:
                    readers.append(r)
            return r

        # the next tables' definitions, DDL and data prepared while the server works
        # (a reader of its own: the restore's are read by the tables meanwhile)
        prep = ahead.Ahead(items, self.target, open_own_reader, opts.data,
                           depth=opts.jobs + 1) if len(items) > 1 else None

        def task(item: select.Item) -> None:
            try:
                # taken first, so that a table that fails before its restore holds
                # nothing prepared until the end
                ready = prep.take(item) if prep is not None else None
                for parent in filter(None, map(by_name.get, item.parents)):
                    events[parent].wait()
                    self.check_parent(item, parent)
                target = ready.target if ready is not None else self.target(item)
                opts.progress.table_start(item.table_id,
                                          sum(m.size for m in item.info.members))
                if staged.applies(self, item, target[2]):
                    try:
                        self.record(staged.restore(self, item, my_reader), item, target)
                        return
                    except staged.NotStaged:
                        pass
                for attempt in (1, 2):
                    conn = self.pool.get()
                    try:
                        result = self.resumed(conn, item) or self._restore_one(
                            conn, item, lambda: my_reader().read_raw(item.table_id),
                            ready)
                        break
                    except psycopg.errors.DeadlockDetected:
                        # parallel replaces of tables linked by foreign keys can
                        # deadlock; the server aborted this one: it runs once more
                        rollback(conn)
                        if attempt == 2:
                            raise
                    except BaseException:
                        rollback(conn)
                        raise
                    finally:
                        self.pool.put(conn)
                self.record(result, item, target)
            except Exception as exc:
                self.record(exc, item)
            finally:
                events[item.table_id].set()

        try:
            with ahead.short_switch_interval() if prep is not None \
                    else contextlib.nullcontext():
                if opts.jobs == 1:
                    for it in items:
                        task(it)
                else:
                    with ThreadPoolExecutor(max_workers=opts.jobs,
                                            thread_name_prefix="dumpcodec-restore") as ex:
                        list(ex.map(task, items))
        finally:
            if prep is not None:
                prep.close()
            for r in readers:
                try:
                    r.close()
                except Exception:
                    pass
        order = {it.table_id: i for i, it in enumerate(items)}
        self.summary.ok.sort(key=lambda r: order[r.table_id])
        self.done.sort(key=lambda d: order[d.item.table_id])

    def _conflicts_up_front(self, items: List[select.Item]) -> None:
        """With ``if_exists='error'``, a restore in which every table already exists
        would fail table by table: say so before any work (one query)."""
        if self.opts.if_exists != "error" or not items:
            return
        targets = []
        for it in items:
            try:
                targets.append(select.target_name(it, self.opts.target_schema,
                                                  self.opts.definitions))
            except RestoreError:
                return
        conn = self.pool.get()
        try:
            there = catalog.existing_relations(conn, targets)
        finally:
            self.pool.put(conn)
        if len(there) == len(set(targets)):
            names = sorted("{}.{}".format(*t) for t in there)
            shown = ", ".join(names) if len(names) <= 4 else \
                f"{names[0]}, {names[1]} ... {names[-1]}"
            raise RestoreError(
                f"all {len(names)} tables of this restore already exist in the target "
                f"({shown}); nothing was done: choose --if-exists replace, append, "
                f"truncate or skip, or another --target-schema")

    # -- from a pipe: one pass, table after table ----------------------------------------

    def _restore_stream(self) -> None:
        opts = self.opts
        opts.progress.start("restore", 0)
        finishing: List[Future] = []
        ex = ThreadPoolExecutor(max_workers=max(1, opts.jobs - 1),
                                thread_name_prefix="dumpcodec-finish") \
            if opts.jobs > 1 else None
        matched: Set[str] = set()
        seen_ids: Set[str] = set()
        targets: Dict[Tuple[str, str], str] = {}
        last = None
        try:
            for info, data in self.reader.iter_tables():
                item = select.item_from(info)
                last = item.table_id
                if opts.tables:
                    matched.update(select.matching(item, opts.tables))
                try:
                    # the archive-wide rules, one table at a time, selected or not
                    if item.table_id in seen_ids:
                        raise RestoreError(f"the archive lists table id {item.table_id!r} "
                                           f"twice; the second is refused")
                    seen_ids.add(item.table_id)
                    select.check_archive([item], opts.target_schema, opts.definitions)
                except RestoreError as exc:
                    _drain(data)
                    self.record(exc, item)
                    continue
                if not choose.wanted(item, opts.tables, opts.selection):
                    _drain(data)    # one pass: skip over its data
                    continue
                try:
                    target = self.target(item)
                    if target[:2] in targets:
                        raise RestoreError(f"{targets[target[:2]]!r} of the archive "
                                           f"already went to {target[0]}.{target[1]}")
                    targets[target[:2]] = item.table_id
                    if item.definition is not None:
                        self.restoring.add((item.definition.schema, item.definition.name))
                    if item.parents:
                        # wait for the parents' commits (they were earlier in the stream)
                        for f in list(finishing):
                            f.result()
                        # (a parent not in the archive: check_item says what to do)
                        for pid in ("{}.{}".format(*p) for p in item.parents
                                    if p in self.restoring):
                            self.check_parent(item, pid)
                except Exception as exc:
                    _drain(data)
                    self.record(exc, item)
                    continue
                conn = self.pool.get()
                opts.progress.table_start(item.table_id)
                done = self.resumed(conn, item)
                if done is not None:
                    self.pool.put(conn)
                    _drain(data)
                    self.record(done, item, target)
                    continue
                if staged.applies(self, item, target[2]):
                    # a big table: its chunks over the -j connections as they arrive
                    self.pool.put(conn)
                    try:
                        staging = staged.from_stream(self, item, target[2], data)
                    except Exception as exc:
                        _drain(data)
                        self.record(exc, item)
                        continue
                    if not isinstance(staging, staged.Unstaged):
                        def swap(staging=staging, item=item, target=target):
                            try:
                                self.record(staging(), item, target)
                            except Exception as exc:
                                self.record(exc, item)
                        if ex is None:
                            swap()
                        else:
                            finishing.append(ex.submit(swap))
                        continue
                    data = staging.chunks
                    conn = self.pool.get()
                try:
                    prepared = table.load(self, conn, item, lambda: data)
                except Exception as exc:
                    rollback(conn)
                    self.pool.put(conn)
                    _drain(data)     # keep the one-pass reader in step
                    self.record(exc, item)
                    continue
                if prepared is None:
                    self.pool.put(conn)
                    self.record(None, item, target)
                    continue

                def finish(prepared=prepared, item=item, target=target, conn=conn):
                    try:
                        self.record(table.finish(self, prepared), item, target)
                    except Exception as exc:
                        rollback(conn)
                        self.record(exc, item)
                    finally:
                        self.pool.put(conn)

                if ex is None:
                    finish()
                else:
                    finishing.append(ex.submit(finish))
                    finishing = [f for f in finishing if not f.done()]
        except ArchiveError as exc:
            # the stream is broken (nothing after this point can be read), or the
            # manifest and end marker, checked after the last table, do not hold
            after = f" after table {last}" if last else " before its first table"
            self.summary.failed.append(
                ("archive", f"the archive's verdict{after}: {exc}; a table after that "
                            f"point, if any, was not reached"))
        else:
            if self.reader.complete is False:
                self.summary.failed.append(
                    ("archive", f"the archive is incomplete: "
                                f"{self.reader.incomplete_reason or 'no end marker'}"))
        finally:
            for f in finishing:
                f.result()
            if ex is not None:
                ex.shutdown(wait=True)
        unknown = [p for p in opts.tables or () if p not in matched]
        if unknown:
            # one pass: nothing could be checked before the data went by
            self.summary.warnings.append(
                f"no table in the archive matches {', '.join(unknown)}")

    def check_parent(self, item: select.Item, parent: str) -> None:
        """A partition or child may attach only to a parent this restore created
        (or replaced): one it loaded into is the user's table (``allow_attach``)."""
        with self.lock:
            action = self.actions.get(parent)
        if action is None:
            raise RestoreError(f"its parent table {parent} was not restored")
        if action not in ("created", "replaced", "resumed") and not self.opts.allow_attach:
            raise RestoreError(
                f"{item.table_id}: not restored: it would attach to {parent}, which this "
                f"restore did not create ({action} into an existing table); attaching to "
                f"an existing table needs --allow-attach")

    # -- after all tables ------------------------------------------------------------------

    def _foreign_keys(self, conn: psycopg.Connection) -> None:
        """Each foreign key in its own transaction: added NOT VALID and its dependency
        records checked; then the validations (each a scan of both tables, which the
        ADD's locks would make one at a time) on up to ``jobs`` connections at once,
        a key whose validation fails dropped again.  Only onto tables this restore
        restored, unless ``allow_external_fks``.  With ``resume``, a key of the
        archive found NOT VALID (the restore stopped before its validation) is
        validated."""
        restored = {d.source for d in self.done if d.source is not None}
        guard = None
        validate: List[Tuple[str, str, str, str, Any, bool]] = []
        for d in self.done:
            tdef = d.tdef
            if tdef is None:
                continue
            fks = sorted((c for c in tdef.constraints
                          if c.kind == "foreign_key" and not c.inherited),
                         key=lambda c: c.name)
            if not fks:
                continue
            plan = schema.ddl_plan(tdef, d.schema)
            table.run_all(conn, plan.setup)
            for con in fks:
                ref_schema = d.schema if con.ref_schema == tdef.schema else con.ref_schema
                ref = f"{ref_schema}.{con.ref_table}"
                if (con.ref_schema, con.ref_table) not in restored \
                        and not self.opts.allow_external_fks:
                    self.summary.warnings.append(
                        f"{d.item.table_id}: foreign key {con.name} not created: it "
                        f"references {ref}, which this restore did not restore "
                        f"(--allow-fk-to-existing creates it)")
                    continue
                if catalog.reserved_schema(ref_schema):
                    self.summary.failed.append((d.item.table_id, f"foreign key {con.name}: "
                                                f"refused: it references {ref}"))
                    continue
                ref_oid = catalog.relation_oid(conn, ref_schema, con.ref_table)
                if ref_oid is None:
                    self.summary.warnings.append(
                        f"{d.item.table_id}: foreign key {con.name} not created: "
                        f"referenced table {ref} does not exist")
                    continue
                steps = plan.foreign_key_steps[con.name]
                valid = conn.execute(
                    "SELECT c.convalidated FROM pg_catalog.pg_constraint c WHERE "
                    "c.conrelid = %s::pg_catalog.regclass AND c.conname = %s",
                    (sql.Identifier(d.schema, d.name).as_string(None), con.name)
                ).fetchone() if catalog.relation_exists(conn, d.schema, d.name) else None
                if valid is not None:
                    if not valid[0] and steps.validate is not None and self.opts.resume:
                        validate.append((d.item.table_id, d.schema, d.name, con.name,
                                         steps.validate, False))
                    continue
                try:
                    conn.execute("BEGIN")
                    conn.execute(steps.add)
                    guard = guard or self.guard(conn)
                    relid = catalog.relation_oid(conn, d.schema, d.name)
                    conoid = conn.execute(
                        "SELECT oid FROM pg_catalog.pg_constraint WHERE conrelid = %s "
                        "AND conname = %s", (relid, con.name)).fetchone()[0]
                    guard.objects_check(
                        [("pg_constraint", conoid, "constraint", f"foreign key {con.name}")],
                        Allowed(table=sql.Identifier(d.schema, d.name).as_string(None),
                                relations=[sql.Identifier(ref_schema, con.ref_table)
                                           .as_string(None)]),
                        d.item.table_id).run(conn)
                    if steps.comment is not None:
                        conn.execute(steps.comment)
                    conn.execute("COMMIT")
                except (psycopg.Error, DumpcodecError) as exc:
                    rollback(conn)
                    self.summary.failed.append((d.item.table_id,
                                                f"foreign key {con.name}: {reason(exc)}"))
                    continue
                if steps.validate is not None:
                    validate.append((d.item.table_id, d.schema, d.name, con.name,
                                     steps.validate, True))
        self._validate_fks(conn, validate)

    def _validate_fks(self, conn: psycopg.Connection,
                      todo: List[Tuple[str, str, str, str, Any, bool]]) -> None:
        """VALIDATE CONSTRAINT of each (table id, schema, table, key, statement, added
        by this run), on ``conn`` and up to ``jobs - 1`` more connections of the pool;
        a key that fails is dropped when this run added it, and the table reported."""
        pending = list(todo)
        lock = threading.Lock()

        def work(c: Optional[psycopg.Connection]) -> None:
            mine = c is None
            try:
                if mine:
                    c = self.pool.get()
            except Exception:
                return          # the other connections do the rest
            try:
                while True:
                    with lock:
                        if not pending:
                            return
                        table_id, schema_, name, key, stmt, added = pending.pop(0)
                    try:
                        c.execute(stmt)
                    except psycopg.Error as exc:
                        rollback(c)
                        why = reason(exc)
                        if added:
                            try:
                                c.execute(sql.SQL("ALTER TABLE {} DROP CONSTRAINT {}")
                                          .format(sql.Identifier(schema_, name),
                                                  sql.Identifier(key)))
                            except psycopg.Error as exc2:
                                rollback(c)
                                why += f" (and it could not be dropped: {reason(exc2)})"
                        else:
                            why += " (left NOT VALID)"
                        with lock:
                            self.summary.failed.append((table_id, f"foreign key {key}: "
                                                        f"{why}"))
            finally:
                if mine:
                    self.pool.put(c)

        threads = [threading.Thread(target=work, args=(None,), daemon=True,
                                    name=f"dumpcodec-fk-{i}")
                   for i in range(1, min(self.opts.jobs, len(pending)))]
        for t in threads:
            t.start()
        work(conn)
        for t in threads:
            t.join()


def _drain(data: Iterable[Any]) -> None:
    for _ in data:
        pass


