"""Dump live PostgreSQL tables into an archive: :func:`create_dump`.

What happens, in order:

1. One connection opens a ``REPEATABLE READ, READ ONLY`` transaction (on the caller's
   exported snapshot with ``snapshot=``), resolves every selector, captures every
   table definition and checks every option (``where``, ``columns``) *before* any
   output is written.
2. Each table's data moves as raw COPY bytes through :mod:`dumpcodec.pump` (no Python
   call per row, no decoding) straight into the archive's ``TableWriter.write``, which
   cuts it into chunk members.  Tables whose column types lack binary send/receive
   functions use text COPY, recorded as the table's ``format`` in the manifest.
3. Reading and writing overlap: reader threads stream tables into bounded queues
   (``QUEUE_BLOCKS`` blocks of about a megabyte each) and the calling thread, the
   single archive writer, drains them in table order and compresses, so the archive's
   layout does not depend on timing; the readers hold at most ``jobs * QUEUE_BLOCKS``
   MiB ahead of the table being written (:mod:`.dump_queues`).  With
   ``jobs == 1`` the one reader uses the snapshot connection itself; with ``jobs > 1``
   each worker has its own connection joined to the same snapshot.
4. A file destination is written under a temporary name in the same directory and
   renamed at the end; on any failure the temporary file is removed, so no partial
   archive is ever left under the requested name.  ``'-'`` writes to stdout.

Table ids default to ``schema.name``; ``id_map`` maps opaque ids (DaCHS-style
``rd-id#table``) to ``(schema, name)``, and a selector naming such an id keeps it as the
table id.  Sequences owned by a table are stored in its
definition with ``last_value`` and ``is_called``.
"""
from __future__ import annotations

import logging
import os
import queue
import threading
import time
from dataclasses import dataclass, field
from typing import IO, Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

import psycopg
import psycopg.conninfo
from psycopg import sql

from . import dump_split, pump, schema
from ._version import __version__
from .copy import HEADER, TRAILER
from .archive import open_dump
from .archive.manifest import EncodedJSON
from .errors import DumpError, SchemaError, SelectorError
from .destination import open_destination
from .dump_queues import TableQueues
from .progress import Progress
from .schema.catalog import free_sequences, partition_trees, size_estimates, type_facts
from .schema.text_columns import EMPTY_SEARCH_PATH, dump_select_list, text_columns

log = logging.getLogger(__name__)

#: blocks of about pump.DEFAULT_BLOCK_SIZE a worker may buffer ahead of the writer
QUEUE_BLOCKS = 8

_END = object()

# header + trailer: the COPY BINARY stream of no rows, written for tables dumped as
# definitions only (the archive's chunker wants a well-formed stream)
_EMPTY_BINARY = HEADER + TRAILER

_TEXT_OID = 25


@dataclass
class TableDumpStats:
    """What was dumped for one table."""
    table_id: str
    schema: str
    name: str
    rows: int
    nbytes: int                  # raw COPY bytes, before compression
    seconds: float
    format: str                  # 'binary' or 'text'
    where: Optional[str] = None
    columns: List[str] = field(default_factory=list)

    def to_dict(self) -> Dict[str, Any]:
        """This table as a row of the JSON report (docs/JSON.md)."""
        return {"table_id": self.table_id, "schema": self.schema, "name": self.name,
                "status": "ok", "reason": None, "rows": self.rows, "bytes": self.nbytes,
                "seconds": round(self.seconds, 6), "format": self.format,
                "where": self.where, "columns": list(self.columns)}


@dataclass
class DumpSummary:
    """The result of :func:`create_dump`."""
    tables: List[TableDumpStats]
    seconds: float
    archive_bytes: Optional[int]   # size of the archive file (None for a stream)
    path: Optional[str]
    snapshot: Optional[str]
    pump: str                      # 'libpq' or 'python' (see dumpcodec.pump)
    server_version: str = ""
    #: what did not stop the dump (patterns that matched nothing)
    warnings: List[str] = field(default_factory=list)

    @property
    def rows(self) -> int:
        return sum(t.rows for t in self.tables)

    @property
    def nbytes(self) -> int:
        return sum(t.nbytes for t in self.tables)

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else 0.0

    @property
    def bytes_per_second(self) -> float:
        return self.nbytes / self.seconds if self.seconds > 0 else 0.0

    def to_dict(self) -> Dict[str, Any]:
        """The JSON report of ``dumpcodec create --json`` (docs/JSON.md)."""
        from .report import report
        return report("create", ok=True, tables=[t.to_dict() for t in self.tables],
                      seconds=self.seconds, warnings=self.warnings, pump=self.pump,
                      extra={"archive": self.path, "archive_bytes": self.archive_bytes,
                             "snapshot": self.snapshot,
                             "server_version": self.server_version})


# -- connections and snapshot ---------------------------------------------------------

def _connect(conninfo: str) -> psycopg.Connection:
    return psycopg.connect(conninfo, autocommit=True)


def _begin_snapshot(conn: psycopg.Connection, snapshot: Optional[str]) -> None:
    conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
    if snapshot:
        # SET TRANSACTION SNAPSHOT takes a literal only, not a parameter
        conn.execute(sql.SQL("SET TRANSACTION SNAPSHOT {}").format(sql.Literal(snapshot)))


# -- binary capability ----------------------------------------------------------------

def binary_capable(conn: psycopg.Connection, type_oids: Sequence[int],
                   cache: Optional[Dict[int, bool]] = None,
                   facts: Optional[Dict[int, Any]] = None) -> bool:
    """Whether every type (and every type inside it) has binary send and receive.

    Follows domains to their base type, arrays to their element, composites to their
    attributes and ranges/multiranges to their subtype: binary COPY of a container fails
    when any part has no send/receive function (aclitem, some extension types).
    ``cache`` (answers) and ``facts`` (:func:`dumpcodec.schema.catalog.type_facts`) may
    be shared between calls: the types not seen before are read in one query.
    """
    cache = {} if cache is None else cache
    facts = type_facts(conn, [o for o in type_oids if o not in cache], facts)

    def ok(oid: int, depth: int = 0) -> bool:
        if oid in cache:
            return cache[oid]
        if depth > 30:
            return False
        cache[oid] = True    # provisional: breaks cycles through composites
        f = facts.get(oid)
        good = f is not None and f.binary
        if good:
            parts = [p for p in (f.base, f.elem, f.sub, f.range) if p]
            if f.typtype == "c" and f.relid:
                parts += f.attributes
            good = all(ok(p, depth + 1) for p in parts)
        cache[oid] = good
        return good

    return all(ok(o) for o in type_oids)


# -- planning -------------------------------------------------------------------------

@dataclass
class _TablePlan:
    table_id: str
    schema: str
    name: str
    definition: Any              # schema.TableDef
    columns: List[str]
    types: List[Any]
    format: str
    query: Optional[sql.Composable]   # None: the definition only (a partitioned parent)
    where: Optional[str]
    estimated_bytes: Optional[int]
    via_root: bool = False
    as_text: List[str] = field(default_factory=list)   # OID-alias and vector columns, as text


def _type_texts(tdef, columns: List[str]) -> List[str]:
    """The archive's type of each column: format_type() text, e.g. 'numeric(12,2)'."""
    return [tdef.column(c).type for c in columns]


Selectors = Union[None, Sequence[str], schema.Selection]


def _select(conn: psycopg.Connection, selectors: Selectors,
            id_map: Optional[Dict[str, Tuple[str, str]]]) -> "schema.Resolved":
    """The tables to dump: every user table (None), pg_dump's switches (a
    :class:`~dumpcodec.schema.Selection`) or a list of selectors (each must match)."""
    if isinstance(selectors, (str, bytes)):
        raise TypeError(f"selectors must be a list of selectors, a Selection or None, "
                        f"not the string {selectors!r}")
    if selectors is None or isinstance(selectors, schema.Selection):
        return schema.resolve_selection(conn, selectors, id_map)
    refs = schema.resolve_selectors(conn, list(selectors), id_map=id_map)
    if not refs:
        raise SelectorError(f"no table matches {', '.join(map(str, selectors)) or '(nothing)'}")
    return schema.Resolved(refs)


def _resolve(conn: psycopg.Connection, chosen: "schema.Resolved", partitions: str):
    """``(ref, with_data)`` of every table to dump, partitioned ones expanded."""
    if partitions not in ("leaves", "root"):
        raise ValueError(f"partitions must be 'leaves' or 'root', not {partitions!r}")
    refs = chosen.tables
    if partitions == "root":
        return [(ref, (ref.schema, ref.name) not in chosen.no_data) for ref in refs]
    # leaves: each leaf with its data; the partitioned tables above it (root and
    # intermediate levels) as definitions without data, parents first, so that a
    # restore can create them before the leaves that attach to them
    out, seen = [], set()
    for ref, tree in zip(refs, partition_trees(conn, [(r.schema, r.name) for r in refs])):
        if len(tree) <= 1:
            subs = [(ref, True)]
        else:
            subs = []
            for s_, n_, kind, level in tree:
                if level > 0 and (s_, n_) in chosen.excluded:
                    continue
                sub = ref if level == 0 else schema.TableRef(f"{s_}.{n_}", s_, n_)
                subs.append((sub, kind == "r"))
        for sub, with_data in subs:
            if (sub.schema, sub.name) not in seen:
                seen.add((sub.schema, sub.name))
                out.append((sub, with_data and (sub.schema, sub.name) not in chosen.no_data))
    return out


def _lookup_option(opts: Optional[Dict[str, Any]], ref, table_id: str, used: set):
    if not opts:
        return None
    for key in (table_id, f"{ref.schema}.{ref.name}", ref.name):
        if key in opts:
            used.add(key)
            return opts[key]
    return None


class _TypeAnswers:
    """Per dump, what each column type needs (binary COPY? travels as text?), each
    type looked up once; the types of a table not seen before in one query."""

    def __init__(self, conn: psycopg.Connection, binary: bool):
        self.conn, self.binary = conn, binary
        self.facts: Dict[int, Any] = {}
        self.binary_ok: Dict[int, bool] = {}
        self.alias: Dict[int, bool] = {}

    def prefetch(self, tdefs) -> None:
        type_facts(self.conn, {c.type_oid for t in tdefs for c in t.columns}, self.facts)

    def text_columns(self, tdef, cols: List[str]) -> List[str]:
        return text_columns(self.conn, tdef, cols, self.alias, self.facts)

    def format(self, col_oids: List[int]) -> str:
        return ("binary" if self.binary and binary_capable(self.conn, col_oids,
                                                           self.binary_ok, self.facts)
                else "text")


def _columns_to_dump(tdef, ref, table_id: str, columns, used: set) -> List[str]:
    """The table's COPY columns, or the ones ``columns`` names for it (checked)."""
    cols = schema.copy_columns(tdef)
    wanted = _lookup_option(columns, ref, table_id, used)
    if wanted is not None:
        if isinstance(wanted, str):
            wanted = [c.strip() for c in wanted.split(",") if c.strip()]
        unknown = [c for c in wanted if c not in cols]
        if unknown:
            raise SchemaError(
                f"{table_id}: no column(s) {', '.join(map(repr, unknown))} to dump "
                f"(columns: {', '.join(cols)})")
        if len(set(wanted)) != len(wanted):
            raise SchemaError(f"{table_id}: a column is named twice in {wanted}")
        cols = list(wanted)
    if not cols:
        raise SchemaError(f"{table_id}: no columns to dump")
    return cols


def _quote_ident(name: str) -> str:
    """``name`` as a quoted SQL identifier (what ``sql.Identifier`` renders)."""
    return '"' + name.replace('"', '""') + '"'


def _copy_query(ref, tdef, cols: List[str], as_text: List[str], fmt: str, cond,
                via_root: bool, table_id: str) -> sql.Composable:
    """``COPY table (cols) TO STDOUT``, or ``COPY (SELECT ...)`` when a filter, a
    partitioned root or columns read as text need one."""
    if cond is None and not via_root and not as_text:
        # the common case as one text (thousands of tables: composing and rendering
        # psycopg's objects cost more than the rest of a small table's plan)
        return sql.SQL("COPY %s.%s (%s) TO STDOUT%s" % (
            _quote_ident(ref.schema), _quote_ident(ref.name),
            ", ".join(map(_quote_ident, cols)),
            " (FORMAT binary)" if fmt == "binary" else ""))
    ident = sql.Identifier(ref.schema, ref.name)
    collist = sql.SQL(", ").join(sql.Identifier(c) for c in cols)
    if as_text:
        collist = dump_select_list(tdef, cols, as_text)
    opts = sql.SQL(" (FORMAT binary)") if fmt == "binary" else sql.SQL("")
    # A partitioned table (PostgreSQL < 17) and a filter need a query; ONLY keeps
    # inheritance children out, as plain COPY of a table does.
    only = sql.SQL("" if via_root else "ONLY ")
    select = sql.SQL("SELECT {} FROM {}{}").format(collist, only, ident)
    if cond is not None:
        if not str(cond).strip():
            raise ValueError(f"{table_id}: empty WHERE condition")
        # the user's own condition, run with the user's own credentials: text
        select = sql.SQL("{} WHERE {}").format(select, sql.SQL(str(cond)))
    return sql.SQL("COPY ({}) TO STDOUT{}").format(select, opts)


def _check_where(conn: psycopg.Connection, plans: List[_TablePlan]) -> None:
    """Plan each filtered query now, so that a bad WHERE fails before any output."""
    for p in plans:
        if p.where is None:
            continue
        try:
            conn.execute("SAVEPOINT dumpcodec_check")
            conn.execute(sql.SQL("EXPLAIN {}").format(
                sql.SQL("SELECT 1 FROM {} WHERE {}").format(
                    sql.Identifier(p.schema, p.name), sql.SQL(p.where))))
            conn.execute("RELEASE SAVEPOINT dumpcodec_check")
        except psycopg.Error as exc:
            conn.execute("ROLLBACK TO SAVEPOINT dumpcodec_check")
            raise DumpError(f"{p.table_id}: bad WHERE condition {p.where!r}: "
                            f"{getattr(exc.diag, 'message_primary', None) or exc}") from None


def _plan_tables(conn, refs, where, columns, binary: bool = True) -> List[_TablePlan]:
    """A plan per ``(ref, with_data)``: definitions, sizes and column types read for all
    tables at once (a handful of queries, not a few per table)."""
    seen_ids = set()
    for ref, _ in refs:
        if ref.table_id in seen_ids:
            raise SelectorError(f"two tables would get the same id {ref.table_id!r}")
        seen_ids.add(ref.table_id)
    tdefs = schema.capture_tables(conn, [(ref.schema, ref.name) for ref, _ in refs])
    # from the statistics where there are some (dump_split measures the big ones)
    sizes = [size or None for size in size_estimates(
        conn, [(ref.schema, ref.name) for ref, _ in refs])]
    answers = _TypeAnswers(conn, binary)
    answers.prefetch(tdefs)
    plans: List[_TablePlan] = []
    used_where: set = set()
    used_cols: set = set()
    for (ref, with_data), tdef, est in zip(refs, tdefs, sizes):
        table_id = ref.table_id
        cols = _columns_to_dump(tdef, ref, table_id, columns, used_cols)
        cond = _lookup_option(where, ref, table_id, used_where)
        # OID-alias (reg*) and int2vector/oidvector columns travel as text (by name;
        # see schema.text_columns)
        as_text = answers.text_columns(tdef, cols)
        fmt = answers.format([_TEXT_OID if c in as_text else tdef.column(c).type_oid
                              for c in cols])
        via_root = tdef.kind == "partitioned" and with_data
        query = _copy_query(ref, tdef, cols, as_text, fmt, cond, via_root, table_id)
        types = ["text[]" if c in as_text and tdef.column(c).is_array
                 else "text" if c in as_text else t
                 for c, t in zip(cols, _type_texts(tdef, cols))]
        plans.append(_TablePlan(table_id, ref.schema, ref.name, tdef, cols, types, fmt,
                                query if with_data else None,
                                None if cond is None else str(cond), est, via_root,
                                as_text))
    for opts_, used, what in ((where, used_where, "--where"), (columns, used_cols, "--columns")):
        extra = sorted(set(opts_ or {}) - used)
        if extra:
            raise SelectorError(f"{what} names table(s) not in the dump: {', '.join(extra)}")
    _check_where(conn, plans)
    return plans


def _parents_first(plans: List[_TablePlan]) -> List[_TablePlan]:
    """The plans, each INHERITS parent (and partitioned parent) of the dump before its
    children, otherwise in the order given: a restore creates them in archive order."""
    as_text = {(p.schema, p.name): p for p in plans}
    depth: Dict[Tuple[str, str], int] = {}

    def level(key, seen=()) -> int:
        if key not in depth:
            d = as_text[key].definition
            parents = [(x.schema, x.name) for x in d.inherits]
            if d.parent_name:
                parents.append((d.parent_schema, d.parent_name))
            depth[key] = 1 + max([level(k, seen + (key,)) for k in parents
                                  if k in as_text and k not in seen] or [-1])
        return depth[key]
    return sorted(plans, key=lambda p: level((p.schema, p.name)))


# -- data movement --------------------------------------------------------------------

def _extra(plan: _TablePlan) -> Dict[str, Any]:
    extra: Dict[str, Any] = {}
    if plan.where is not None:
        extra["where"] = plan.where
    if plan.via_root:
        extra["via_root"] = True
    if plan.query is None:
        extra["data"] = False
    if plan.as_text:
        extra["as_text"] = list(plan.as_text)
    if plan.definition.sequences:
        extra["sequences"] = [
            {"schema": s.schema, "name": s.name, "last_value": s.last_value,
             "is_called": s.is_called} for s in plan.definition.sequences]
    return extra


def _add_table(writer, p: _TablePlan, split: Optional[dump_split.Split] = None):
    extra = _extra(p)
    if split is not None:
        extra["split"] = split.extra()
    # encoded straight from the dataclasses (thousands of tables: no dicts first)
    return writer.add_table(p.table_id, EncodedJSON(p.definition.to_json_text()),
                            p.columns, p.types, p.format, extra)


def _worker(conninfo: Optional[str], snapshot: Optional[str], jobs_q: "queue.Queue",
            outs: Dict[int, "queue.Queue"], errors: list, stop: threading.Event,
            conn: Optional[psycopg.Connection] = None) -> None:
    """Dump tables from ``jobs_q`` into their queues (``conn``: an open one to use).

    A job is ``(index, plan, part)``: ``part`` None for the whole table, else one range
    of a split table (:mod:`dumpcodec.dump_split`), whose blocks are queued tagged."""
    own = conn is None
    try:
        if own:
            conn = _connect(conninfo)
            _begin_snapshot(conn, snapshot)
        while not stop.is_set():
            try:
                idx, plan, part = jobs_q.get_nowait()
            except queue.Empty:
                break
            out = outs[idx]

            def put(item, out=out, idx=idx):
                outs.take(idx, item, stop)
                # never block for good: the writer may have given up (stop is set)
                while True:
                    if stop.is_set():
                        raise DumpError("dump aborted")
                    try:
                        out.put(item, timeout=0.5)
                        return
                    except queue.Full:
                        continue

            t0 = time.perf_counter()
            if part is not None:
                try:
                    rows, nbytes = pump.copy_out(
                        conn, part.query,
                        lambda data, k=part.number, put=put: put(dump_split.data_item(k, data)))
                except BaseException as exc:
                    try:
                        out.put_nowait(("error", exc))
                    except queue.Full:
                        pass
                    raise
                put(dump_split.end_item(part.number, rows, nbytes, t0))
                continue
            held: list = []     # the last block, sent with the end: a small table is one item

            def hold(block, held=held, put=put):
                if held:
                    put(held.pop())
                held.append(block)
            try:
                if plan.query is not None and plan.as_text:
                    # names of OID-alias values come out schema-qualified (as pg_dump's)
                    old = conn.execute("SELECT pg_catalog.current_setting('search_path')"
                                       ).fetchone()[0]
                    conn.execute(EMPTY_SEARCH_PATH)
                    try:
                        rows, nbytes = pump.copy_out(conn, plan.query, hold)
                    finally:
                        try:
                            conn.execute("SELECT pg_catalog.set_config('search_path', "
                                         "%s, false)", (old,))
                        except psycopg.Error:
                            pass      # the COPY's own error is the one to report
                elif plan.query is not None:
                    rows, nbytes = pump.copy_out(conn, plan.query, hold)
                else:
                    rows, nbytes = 0, 0
                    if plan.format == "binary":
                        held.append(_EMPTY_BINARY)
            except BaseException as exc:
                try:
                    out.put_nowait(("error", exc))
                except queue.Full:
                    pass          # the writer finds it in ``errors``
                raise
            put((_END, rows, nbytes, time.perf_counter() - t0, held[0] if held else None))
    except BaseException as exc:  # reported to the main thread through ``errors``
        errors.append(exc)
        stop.set()
    finally:
        if own and conn is not None:
            try:
                conn.close()
            except Exception:
                pass


def _write_whole(tw, get: Callable[[], Any], advance: Callable[[int], None]
                 ) -> Tuple[int, int, float]:
    """One worker's blocks of a whole table into its TableWriter, until its end."""
    while True:
        item = get()
        if isinstance(item, bytes):
            tw.write(item)
            advance(len(item))
            continue
        if item[0] == "error":
            raise item[1]
        _, rows, nbytes, dt, last = item
        if last is not None:
            tw.write(last)
            advance(len(last))
        return rows, nbytes, dt


def _dump_parallel(conninfo, snapshot, plans, writer, jobs, progress: Progress,
                   conn: Optional[psycopg.Connection] = None,
                   splits: Optional[Dict[int, dump_split.Split]] = None
                   ) -> List[TableDumpStats]:
    """Workers read tables into bounded queues; this thread writes them in order.

    With ``conn`` (and ``jobs == 1``) the one worker uses that connection, already in
    the snapshot: reading from the server then overlaps with compression here.
    ``splits``: tables (by position) read as several ranges at once, whose blocks this
    thread takes as they come (:mod:`dumpcodec.dump_split`).
    """
    splits = splits or {}
    jobs_q: "queue.Queue" = queue.Queue()
    # the readers hold at most QUEUE_BLOCKS blocks each ahead of the table being written
    outs = TableQueues(shared=conn is not None and not splits,
                       budget=jobs * QUEUE_BLOCKS << 20, maxsize=QUEUE_BLOCKS)
    for i, p in enumerate(plans):
        parts = splits[i].parts if i in splits else [None]
        for part in parts:
            jobs_q.put((i, p, part))
        if len(parts) > 1:
            # QUEUE_BLOCKS per worker that may read this table at once
            outs[i] = queue.Queue(maxsize=QUEUE_BLOCKS * min(jobs, len(parts)))
    errors: list = []
    stop = threading.Event()
    if conn is not None:
        threads = [threading.Thread(target=_worker, name="dumpcodec-dump-0",
                                    args=(None, None, jobs_q, outs, errors, stop, conn),
                                    daemon=True)]
    else:
        threads = [threading.Thread(target=_worker, name=f"dumpcodec-dump-{k}",
                                    args=(conninfo, snapshot, jobs_q, outs, errors, stop),
                                    daemon=True)
                   for k in range(min(jobs, jobs_q.qsize()))]
    for t in threads:
        t.start()
    stats = []
    try:
        for i, p in enumerate(plans):
            outs.write_next(i)
            tw = _add_table(writer, p, splits.get(i))
            # the archive holds it now, encoded: at 10,000 tables the definitions are
            # a good part of the dump's memory (the worker needs only the query)
            p.definition = None
            progress.table_start(p.table_id, p.estimated_bytes)
            out = outs[i]

            def get(out=out, p=p):
                while True:
                    try:
                        item = out.get(timeout=0.5)
                    except queue.Empty:
                        if errors:
                            raise errors[0]
                        if not any(t.is_alive() for t in threads) and out.empty():
                            raise DumpError(f"{p.table_id}: dump worker ended without data")
                        continue
                    if type(item) is not tuple or item[0] != "error":   # errors: not put()
                        outs.give(item)
                    return item

            advance = (lambda n, t=p.table_id: progress.advance(t, n))
            if i in splits:
                rows, nbytes, dt = dump_split.write_split(tw, splits[i], get, advance)
            else:
                rows, nbytes, dt = _write_whole(tw, get, advance)
            tw.close()
            progress.table_done(p.table_id, rows, nbytes, dt)
            log.info("dumped %s: %d rows, %d bytes, %.3f s (%s COPY%s)", p.table_id, rows,
                     nbytes, dt, p.format,
                     f", {len(splits[i].parts)} ranges" if i in splits else "")
            stats.append(TableDumpStats(p.table_id, p.schema, p.name, rows, nbytes, dt,
                                        p.format, p.where, p.columns))
            outs.pop(i, None)
    finally:
        stop.set()
        for t in threads:
            t.join()
    return stats


# -- the entry point ------------------------------------------------------------------

def create_dump(conninfo_or_conn: Union[str, psycopg.Connection],
                selectors: Selectors,
                dest: Union[str, os.PathLike, IO[bytes]],
                *,
                backend: Optional[str] = "zstd",
                level: Optional[int] = None,
                chunk_size: Optional[int] = None,
                jobs: int = 1,
                snapshot: Optional[str] = None,
                where: Optional[Dict[str, str]] = None,
                columns: Optional[Dict[str, Sequence[str]]] = None,
                id_map: Optional[Dict[str, Tuple[str, str]]] = None,
                partitions: str = "leaves",
                sequences: Optional[Sequence[str]] = None,
                progress: Optional[Progress] = None,
                binary: bool = True,
                split_larger_than: int = dump_split.DEFAULT_SPLIT_LARGER_THAN,
                split_method: str = "auto",
                storage_options: Optional[Dict[str, Any]] = None) -> DumpSummary:
    """Dump the tables ``selectors`` name into an archive at ``dest``.

    ``selectors``: None for every user table (as pg_dump without switches: outside
    the system schemas, no table of an extension); a
    :class:`~dumpcodec.schema.Selection` for pg_dump's switches (``-t``, ``-n``,
    ``-N``, ``-T``, ``--exclude-table-data``, ``--filter``, ``--strict-names``: see
    :mod:`dumpcodec.schema.selection`; patterns that match nothing are logged and listed
    in ``DumpSummary.warnings``); or a list of selectors (``schema.table``, patterns,
    schema names, ``id_map`` ids), each of which must match.

    ``conninfo_or_conn``: a conninfo string (URI or ``key=value``; empty for the libpq
    environment) or an open psycopg connection that is not inside a transaction (it is
    used for the snapshot and left open).  ``dest``: a path (written atomically), a
    URL (``s3://bucket/key`` or any fsspec URL, with ``storage_options``: uploaded as
    a multipart upload while the dump runs, the object appearing only when the dump
    succeeded; see :mod:`dumpcodec.archive.remote`), a binary file object, or ``'-'``
    for stdout.  ``backend`` ``'zstd'`` (default), ``'gzip'``
    or None/``'tar'`` (uncompressed); ``level`` (the backend's default when None) and
    ``chunk_size`` go to :func:`dumpcodec.archive.open_dump`.  ``jobs``: parallel
    connections (with a connection object, workers connect with its conninfo).
    ``snapshot``: an exported snapshot id to dump from.  ``where``: ``{table: condition}``
    (SQL text, run with your credentials).  ``columns``: ``{table: [names]}``.  Table keys
    may be the table id, ``schema.name`` or the bare name.  ``partitions``: ``'leaves'``
    dumps each partition, ``'root'`` dumps a partitioned table through its root.
    ``sequences``: schema names whose free-standing sequences (owned by no column) are
    recorded too, with their state, in the archive info (owned sequences always
    travel with their table); by default, with ``selectors`` None or a Selection, the
    schemas the selection takes whole, and none for a list.  ``binary=False`` writes
    text COPY members for every table (DaCHS's ``createDump(binary=False)``; restore
    and ``cat`` read them the same way), instead of binary COPY wherever the column
    types allow it.  ``progress``: an object with the methods of
    :class:`dumpcodec.progress.Progress`, called as tables start, move and finish.
    Per-table events and warnings are logged to the ``dumpcodec.dump`` logger.
    ``split_larger_than``: with ``jobs > 1``, a table of more bytes than this (heap and
    TOAST) is read as ranges at once in one snapshot (0: never): heap pages or key values
    as ``split_method`` (``'auto'``, ``'ctid'``, ``'key'``) says, :mod:`dumpcodec.dump_split`.

    Raises SelectorError/SchemaError/DumpError (nothing written) or psycopg errors.
    """
    _check_arguments(jobs, id_map)
    dump_split.check_method(split_method)
    progress = progress or Progress()
    t_start = time.perf_counter()
    source = _Source(conninfo_or_conn)
    destination = open_destination(dest, storage_options)
    writer = None
    try:
        conn = source.open()
        exported = _open_snapshot(conn, snapshot, jobs)
        chosen, warnings = _choose(conn, selectors, id_map)
        plans = _parents_first(_plan_tables(conn, _resolve(conn, chosen, partitions),
                                            where, columns, binary))
        server_version, info = _archive_info(conn, exported,
                                             _sequence_schemas(sequences, selectors, chosen))
        splits = dump_split.plan_splits(conn, plans, jobs, split_larger_than, split_method)
        # with jobs > 1, as many members compressed at once as there are readers
        writer = _open_writer(destination, backend, level, chunk_size, workers=jobs)
        writer.set_info(**info)
        stats = _write_tables(source, exported, plans, writer, jobs, progress, splits)
        writer.close()
        writer = None
        conn.execute("COMMIT")
        size = destination.commit()
        progress.finish()
        summary = DumpSummary(stats, time.perf_counter() - t_start, size,
                              destination.path, exported, pump.PUMP, server_version,
                              warnings)
        log.info("dumped %d tables, %d rows, %d bytes of COPY data in %.2f s",
                 len(stats), summary.rows, summary.nbytes, summary.seconds)
        return summary
    except BaseException:
        _abandon(progress, writer, destination, source.conn)
        raise
    finally:
        source.close()


# -- the steps of create_dump, in order ------------------------------------------------

def _check_arguments(jobs: int, id_map: Optional[Dict[str, Tuple[str, str]]]) -> None:
    if jobs < 1:
        raise ValueError(f"jobs must be at least 1, not {jobs}")
    bad = [k for k in id_map or () if "#" not in k]
    if bad:
        # an id that reads as a table name must be that table's name (restore
        # refuses an archive where it is not: docs/FORMAT.md)
        raise ValueError(f"id_map ids must hold a '#' (like DaCHS's 'rd#table'), "
                         f"not {', '.join(map(repr, bad))}")


class _Source:
    """The dump's own connection: opened from a conninfo (and closed at the end), or
    the caller's, switched to autocommit while the dump uses it and then put back."""

    def __init__(self, conninfo_or_conn: Union[str, psycopg.Connection]):
        self.own = not isinstance(conninfo_or_conn, psycopg.Connection)
        self.conninfo = conninfo_or_conn if self.own else None
        self.conn: Optional[psycopg.Connection] = None if self.own else conninfo_or_conn
        self._old_autocommit: Optional[bool] = None

    def open(self) -> psycopg.Connection:
        if self.own:
            self.conn = _connect(self.conninfo)
            return self.conn
        conn = self.conn
        if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
            raise DumpError("create_dump needs a connection that is not inside a "
                            "transaction (it opens its own snapshot)")
        self._old_autocommit = conn.autocommit
        conn.autocommit = True
        return conn

    def worker_conninfo(self) -> str:
        """What the workers of ``jobs > 1`` connect with."""
        return self.conninfo if self.own else _conninfo_of(self.conn)

    def close(self) -> None:
        if self.conn is None:
            return
        if self.own:
            self.conn.close()
        elif self._old_autocommit is not None and not self.conn.closed:
            try:
                self.conn.autocommit = self._old_autocommit
            except psycopg.Error:
                pass


def _open_snapshot(conn: psycopg.Connection, snapshot: Optional[str],
                   jobs: int) -> Optional[str]:
    """Start the dump's transaction; the snapshot id the workers join (exported here
    when ``jobs > 1`` and the caller gave none)."""
    _begin_snapshot(conn, snapshot)
    if jobs > 1 and not snapshot:
        return conn.execute("SELECT pg_catalog.pg_export_snapshot()").fetchone()[0]
    return snapshot


def _choose(conn: psycopg.Connection, selectors: Selectors,
            id_map: Optional[Dict[str, Tuple[str, str]]]):
    """The selection, and a warning for each pattern that matched nothing."""
    chosen = _select(conn, selectors, id_map)
    warnings = []
    for label in chosen.unmatched:
        warnings.append(f"no matching tables were found for {label}")
        log.warning("no matching tables were found for %s", label)
    return chosen, warnings


def _sequence_schemas(sequences: Optional[Sequence[str]], selectors: Selectors,
                      chosen) -> List[str]:
    """Schemas whose free-standing sequences travel too (see create_dump)."""
    if sequences is None and (selectors is None or isinstance(selectors, schema.Selection)):
        sequences = chosen.whole_schemas
    return list(sequences or ())


def _archive_info(conn: psycopg.Connection, exported: Optional[str],
                  sequence_schemas: List[str]) -> Tuple[str, Dict[str, Any]]:
    """The server version and what ``DumpWriter.set_info`` records."""
    server_version = conn.execute("SHOW server_version").fetchone()[0]
    encoding = conn.execute("SHOW client_encoding").fetchone()[0]
    free = free_sequences(conn, sequence_schemas) if sequence_schemas else []
    info: Dict[str, Any] = {"server_version": server_version, "client_encoding": encoding,
                            "snapshot": exported, "created_by": f"dumpcodec {__version__}"}
    if free:
        info["sequences"] = free
    return server_version, info


def _open_writer(destination: Any, backend: Optional[str], level: Optional[int],
                 chunk_size: Optional[int], workers: int = 1):
    """The archive writer on the destination (opened now: nothing is written before
    every table is planned)."""
    fileobj = destination.open()
    opts: Dict[str, Any] = {}
    if backend in (None, "none", "tar"):
        backend = "tar"       # no compression: a plain tar
    elif level is not None:
        opts["level"] = level
    if chunk_size is not None:
        opts["chunk_size"] = chunk_size
    if workers > 1:
        opts["workers"] = workers
    return open_dump(fileobj, "w", backend=backend, **opts)


def _write_tables(source: _Source, exported: Optional[str], plans: List[_TablePlan],
                  writer, jobs: int, progress: Progress,
                  splits: Dict[int, Any]) -> List[TableDumpStats]:
    """Every table's data into the archive, read by ``jobs`` connections (a table of
    ``splits`` as several ranges at once)."""
    progress.start("dump", len(plans))
    if jobs > 1 and (len(plans) > 1 or splits):
        return _dump_parallel(source.worker_conninfo(), exported, plans, writer, jobs,
                              progress, splits=splits)
    # one reader thread on our own connection, compression in this one
    return _dump_parallel(None, None, plans, writer, 1, progress, conn=source.conn)


def _abandon(progress: Progress, writer, destination: Any,
             conn: Optional[psycopg.Connection]) -> None:
    """After a failure: no archive left under the requested name, the transaction
    rolled back."""
    progress.finish()
    if writer is not None:
        try:
            writer.abort()
        except Exception:
            pass
    destination.discard()
    try:
        if conn is not None and not conn.closed and conn.info.transaction_status != \
                psycopg.pq.TransactionStatus.IDLE:
            conn.execute("ROLLBACK")
    except psycopg.Error:
        pass


def _conninfo_of(conn: psycopg.Connection) -> str:
    """A conninfo reaching the same database (password included when one was used)."""
    params = conn.info.get_parameters()
    pw = conn.info.password
    if pw:
        params["password"] = pw
    return psycopg.conninfo.make_conninfo(**params)
