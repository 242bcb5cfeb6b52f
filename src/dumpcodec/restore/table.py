"""One table's restore, in its own transaction on one connection.

:func:`load` does phases 1-4 and leaves the transaction open; :func:`finish` does
phase 5 and commits (see the package docstring for the phases).  Before any row is
written, everything the archive made the server create is checked against the
allow-list (:mod:`dumpcodec.schema.safety`): the types, then every expression
resolved in a view that is rolled back, then the table with its keys and indexes
built on it while it is still empty (in a savepoint, rolled back).
"""
from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Iterable, List, Optional, Sequence, Tuple, Union

import psycopg
from psycopg import sql

from .. import schema
from ..errors import RestoreError, UnsafeExpressionError
from ..schema import catalog
from ..schema.safety import Allowed, Check, probe_needed, run_probe
from .data import READ_AHEAD, copy_in
from .pool import reason
from .results import TableRestoreResult
from .select import Item

if TYPE_CHECKING:   # pragma: no cover
    from .ahead import Ready
    from .context import RunContext

# SQLSTATEs of "it is already there": duplicate_object, duplicate_table,
# duplicate_schema, unique_violation (a concurrent CREATE TYPE of the same name)
ALREADY_THERE = ("42710", "42P07", "42P06", "23505")

_LOCK_MODE = {"replace": "ACCESS EXCLUSIVE", "truncate": "ACCESS EXCLUSIVE"}


@dataclass
class Prepared:
    """A table whose transaction is open and whose data is loaded."""
    item: Item
    conn: psycopg.Connection
    schema: str
    name: str
    tdef: Any                     # schema.TableDef or None
    plan: Any                     # schema.DDLPlan, None when the table was there
    action: str
    t0: float
    rows: int = 0
    nbytes: int = 0
    reencoded: bool = False
    readd_fks: List[Tuple[str, str, str, str]] = field(default_factory=list)


def run_all(conn: psycopg.Connection, statements: Iterable[Any],
            savepoint_ignore: Tuple[str, ...] = ()) -> None:
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


def run_batch(conn: psycopg.Connection, steps: Sequence[Union[Any, Check]]) -> None:
    """Statements and checks in one round trip (psycopg's pipeline mode): the server
    runs them in order and stops at the first error; each check's rows are judged
    after all came back (a refusal raises, and the caller rolls back)."""
    if not steps:
        return
    if len(steps) == 1 and not isinstance(steps[0], Check):
        conn.execute(steps[0])
        return
    # the checks' statements first: the first one on a connection prepares its query
    queued = []
    for step in steps:
        if isinstance(step, Check):
            queued += [(step if result else None, query, params)
                       for query, params, result in step.statements(conn)]
        else:
            queued.append((None, step, None))
    cursors = []
    plain = conn.cursor()       # one for the statements whose rows nobody reads
    with conn.pipeline():
        for check, query, params in queued:
            if check is None:
                plain.execute(query, params)
            else:
                cursors.append((check, conn.execute(query, params)))
    for check, cur in cursors:
        check.judge(cur.fetchall())


def load(run: "RunContext", conn: psycopg.Connection, item: Item,
         chunks: Callable[[], Iterable[bytes]],
         ready: Optional["Ready"] = None) -> Optional[Prepared]:
    """Phases 1-4 in an open transaction on ``conn``; None when skipped.

    ``ready``: what :mod:`.ahead` prepared for the table (its target, DDL plan, data),
    used instead of making them here; checked here all the same."""
    opts = run.opts
    t0 = time.perf_counter()
    schema_, name, tdef = ready.target if ready is not None else run.target(item)
    if ready is not None and ready.data is not None:
        data = ready.data
        chunks = lambda: iter(data)   # noqa: E731  (read and checked ahead)
    run.check(item, schema_, name, tdef)
    if tdef is not None:
        run.ensure_schema(conn, schema_)
    run.state.ensure(conn, schema_)
    relid = catalog.lock_if_exists(conn, schema_, name,
                                   _LOCK_MODE.get(opts.if_exists, "ROW EXCLUSIVE"),
                                   begin=True)
    live = schema.capture_live_if_exists(conn, schema_, name) if relid else None
    p = Prepared(item, conn, schema_, name, tdef, None, "created", t0)
    if live is not None:
        mode = opts.if_exists
        if mode == "error":
            raise RestoreError(f"table {schema_}.{name} already exists "
                               f"(--if-exists replace|append|truncate|skip)")
        if mode == "skip":
            conn.execute("ROLLBACK")
            return None
        if mode == "replace" and tdef is not None:
            p.readd_fks = catalog.referencing_fks(conn, schema_, name)
            # other tables' keys on this one block the DROP: they come off here and
            # back in finish(), all in this transaction
            run_batch(conn, [sql.SQL("ALTER TABLE {} DROP CONSTRAINT {}").format(
                sql.Identifier(fk[0], fk[1]), sql.Identifier(fk[2]))
                for fk in p.readd_fks] + [
                sql.SQL("DROP TABLE {}").format(sql.Identifier(schema_, name))])
            live = None
            p.action = "replaced"
        elif mode == "replace":
            raise RestoreError(f"{item.table_id}: cannot replace {schema_}.{name}: the "
                               f"archive has no definition to recreate it from")
        else:
            p.action = "truncated" if mode == "truncate" else "appended"
    if live is None and tdef is not None and tdef.kind == "partitioned" \
            and item.info.via_root:
        # dumped through its root (--partitions root) and no table there: the rows
        # go into a plain table of the same columns, since no partitions come along
        tdef = p.tdef = dataclasses.replace(tdef, kind="table", partition_key=None,
                                            indexes=list(tdef.indexes),
                                            constraints=list(tdef.constraints))
    if live is None:
        if tdef is None:
            raise RestoreError(f"{item.table_id}: table {schema_}.{name} does not exist "
                               f"and the archive has no definition for it (a DaCHS dump "
                               f"loads into an existing table)")
        p.plan = _create(run, conn, item, schema_, tdef,
                         ready.plan_for(tdef, schema_) if ready is not None else None)
    elif opts.if_exists == "truncate":
        # ONLY: inheritance children of the live table are not the archive's
        conn.execute(sql.SQL("TRUNCATE ONLY {}").format(sql.Identifier(schema_, name)))

    if opts.data and item.info.has_data:
        p.rows, p.nbytes, p.reencoded = copy_in(
            conn, item.table_id, item.format, item.columns, chunks, schema_, name, tdef,
            live, item.info.rows, opts.progress, item.info.as_text,
            read_ahead=0 if len(item.info.members) == 1 else READ_AHEAD)
    return p


def _qualified(schema_: str, name: str) -> str:
    return sql.Identifier(schema_, name).as_string(None)


def _create(run: "RunContext", conn: psycopg.Connection, item: Item, schema_: str,
            tdef: Any, plan: Any = None):
    """Create the table (types, sequences, table; keys and indexes come after the
    data), checking each step against the allow-list before anything runs.  ``plan``:
    ``tdef``'s DDL plan in ``schema_`` made ahead (only without types)."""
    where = f"{item.table_id}"
    guard = run.guard(conn)
    if plan is None or tdef.types:
        # existing_types: types already in the target (and equal) are not created again
        plan = schema.ddl_plan(tdef, schema_, existing_types=conn if tdef.types else None)
    mapped = [(schema_ if ty.schema == tdef.schema else ty.schema, ty) for ty in tdef.types]
    for ty_schema, ty in mapped:
        key = f"{ty_schema}.{ty.name}"
        if key in plan.skipped_types or ty.kind in ("base", "extension"):
            continue
        if ty_schema != schema_:
            raise RestoreError(f"{where}: refused: type {key} would be created outside "
                               f"the table's schema {schema_} (only types there are "
                               f"created; others must exist and be equal)")
        if ty.name in guard.catalog_types:
            raise RestoreError(f"{where}: refused: type {key} would shadow the built-in "
                               f"type pg_catalog.{ty.name}")
    allowed = Allowed(
        table=_qualified(schema_, tdef.name),
        relations=[_qualified(schema_ if ps == tdef.schema else ps, pn)
                   for ps, pn in item.parents],
        own_sequences=[_qualified(schema_ if s.schema == tdef.schema else s.schema, s.name)
                       for s in tdef.sequences if not s.identity],
        types=[_qualified(s, ty.name) for s, ty in mapped],
        schemas=plan.schemas)
    # setup (search_path) goes first, in the next batch that runs (one round trip less)
    steps: List[Any] = list(plan.setup)
    if plan.types:
        run_batch(conn, steps)
        steps = []
        run_all(conn, plan.types, ALREADY_THERE)
    if mapped:
        run_batch(conn, steps + guard.types_check(
            [_qualified(s, ty.name) for s, ty in mapped
             if ty.kind not in ("base", "extension")], allowed, where))
        steps = []
    steps += plan.serials
    if probe_needed(plan.probes):
        # every expression resolved before the table exists (some DDL evaluates them)
        before, check, after = guard.probe(schema_, plan.probes, allowed, where)
        try:
            run_batch(conn, steps + before + ([check] if check else []) + after)
        except UnsafeExpressionError:
            # the pipeline rolled the views back; again, one view per expression, to
            # name exactly the ones refused
            run_probe(conn, guard, schema_, plan.probes, allowed, where)
            raise
        steps = []
    steps += plan.table
    if run.opts.indexes and _needs_trial(tdef):
        # keys and indexes once on the empty table, to see what they resolve to
        # (operator classes, collations, operators) before the data makes building
        # them run anything; rolled back
        steps += [sql.SQL("SAVEPOINT dumpcodec_trial"), *plan.post_data,
                  guard.table_check(allowed, where),
                  sql.SQL("ROLLBACK TO SAVEPOINT dumpcodec_trial"),
                  sql.SQL("RELEASE SAVEPOINT dumpcodec_trial")]
    else:
        steps.append(guard.table_check(allowed, where))
    steps.append(guard.column_opclass_check(allowed, where))
    run_batch(conn, steps)
    return plan


#: index methods that are built in (others come from extensions: looked at on trial)
_BUILTIN_METHODS = frozenset({"btree", "hash", "gist", "gin", "spgist", "brin"})


def _needs_trial(tdef: Any) -> bool:
    """Whether keys and indexes may resolve to anything not known safe already.

    A plain column of a built-in type or of the archive's own types has a default
    operator class that is built in (one default per type and method, and the
    built-in one exists) or was checked with the types; expressions and predicates
    were probed.  Named operator classes, collations, exclusion operators and
    methods that are not built in are resolved only by the server."""
    for ix in list(tdef.indexes) + [c for c in tdef.constraints if c.kind == "exclusion"]:
        if ix.method not in _BUILTIN_METHODS:
            return True
        if any(e.opclass or e.collation or e.operator for e in ix.elements):
            return True
    return any(c.kind == "exclusion" for c in tdef.constraints)


def finish(run: "RunContext", p: Prepared) -> TableRestoreResult:
    """Phase 5 and COMMIT, then ANALYZE."""
    conn = p.conn
    steps: List[Any] = []
    notes: List[str] = []
    if p.plan is not None:
        if run.opts.indexes:
            steps += p.plan.post_data
        steps += p.plan.sequences
    elif p.tdef is not None and p.action in ("appended", "truncated"):
        # loading into an existing table: move its own sequences on as the dump had
        # them, found through its columns (never by a name the archive gives)
        steps += schema.ddl_plan(p.tdef, p.schema).sequences
    # foreign keys of other tables that pointed at the replaced table (their
    # definitions from the target's own catalog): back on the new one, after its
    # keys exist; if the new rows break one, the whole replacement rolls back
    steps += [sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} {}").format(
        sql.Identifier(fk[0], fk[1]), sql.Identifier(fk[2]), sql.SQL(fk[3]))
        for fk in p.readd_fks]
    # recorded as done in its own transaction, for a resumed restore
    steps += run.state.done(conn, p.schema, p.name, p.item)
    # in this transaction: a table with RLS never commits without it (a policy that
    # fails raises); triggers after the data; privileges only on request
    later = [] if p.plan is None else [
        phase for phase in ("comments", "policies", "triggers") + (
            ("privileges",) if run.opts.privileges else ()) if getattr(p.plan, phase)]
    # the COMMIT in the same round trip when nothing comes between
    run_batch(conn, steps + ([] if later else [sql.SQL("COMMIT")]))
    if p.plan is not None:
        where = f"{p.schema}.{p.name}"
        notes += p.plan.notes
        for phase in later:
            notes += schema.run_steps(conn, getattr(p.plan, phase), where)
        if not run.opts.privileges and schema.privileges_note(p.plan):
            notes.append(schema.privileges_note(p.plan))
        if later:
            conn.execute("COMMIT")
    result = TableRestoreResult(p.item.table_id, f"{p.schema}.{p.name}", p.action, p.rows,
                                p.nbytes, time.perf_counter() - p.t0, p.reencoded,
                                notes=notes)
    if run.opts.analyze and run.opts.data:
        # here, after the commit, so that parallel jobs analyze in parallel too
        try:
            conn.execute(sql.SQL("ANALYZE {}").format(sql.Identifier(p.schema, p.name)))
        except psycopg.Error as exc:
            result.warning = f"{p.item.table_id}: ANALYZE failed: {reason(exc)}"
    return result
