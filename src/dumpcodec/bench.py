"""Measure dump and restore settings on a user's own tables: ``dumpcodec bench``.

Operators choose compression, chunk size and parallelism for a migration by
measuring on their real data.  :func:`run_bench` does that within a time budget:

1. resolve the selectors (as ``create_dump`` does) and read each table's heap size;
2. a short probe of raw binary COPY gives the server's pace and the COPY bytes per
   heap byte; from these it sizes a *sample*: the first pages of each table
   (``WHERE ctid < '(N,0)'``, a TID range scan on PostgreSQL 14+), as large as the
   budget allows for all planned runs;
3. raw COPY throughput of the sample (the ceiling for any dump);
4. dumps of the sample into a temporary file (deleted) with each compression
   method and level (zstd 1/3/9, gzip 1/6, none), a couple of chunk sizes and
   ``-j`` values;
5. with ``scratch_restore``, restores into a scratch database
   ``dumpcodec_bench_<random>`` that is always dropped at the end, even on error;
6. recommendations: the fastest setting, the smallest archive, and a balance (the
   best compression among settings at least half as fast as the fastest).

Runs are ordered by importance and skipped once the budget is spent (recorded as
skipped, never silently).  Nothing is written to the user's tables: dumps run in a
read-only transaction, restores go only into the scratch database.
"""
from __future__ import annotations

import math
import os
import secrets
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import psycopg
import psycopg.conninfo
from psycopg import sql

from .errors import DumpcodecError, SelectorError

#: heap bytes read by the calibration probe (spread over the tables)
PROBE_BYTES = 4 << 20
#: smallest sample worth measuring (COPY bytes), unless the tables are smaller
MIN_SAMPLE_BYTES = 1 << 20
#: share of the budget kept free for the unexpected (slow scratch databases, ...)
SAFETY = 0.15
SCRATCH_PREFIX = "dumpcodec_bench_"


@dataclass(frozen=True)
class Setting:
    """One way of running a dump (and restoring its archive)."""
    backend: str                      # 'zstd', 'gzip' or 'tar' (no compression)
    level: Optional[int] = None
    chunk_size: Optional[int] = None  # None: the archive's default
    jobs: int = 1

    @property
    def label(self) -> str:
        comp = "none" if self.backend == "tar" else f"{self.backend}-{self.level}"
        parts = [comp]
        if self.chunk_size:
            parts.append(f"chunk {_size_text(self.chunk_size)}")
        if self.jobs != 1:
            parts.append(f"-j{self.jobs}")
        return ", ".join(parts)

    def cli_args(self, kind: str = "dump") -> str:
        """The ``dumpcodec create`` (or, for a restore, ``load``) options for this."""
        comp = "none" if self.backend == "tar" else self.backend
        if kind == "restore":
            return f"dumpcodec load -j {self.jobs}  (archive made with --compress {comp})"
        args = ["dumpcodec create", f"--compress {comp}"]
        if self.level is not None and self.backend != "tar":
            args.append(f"--level {self.level}")
        if self.chunk_size:
            args.append(f"--chunk-size {_size_text(self.chunk_size).replace('iB', '')}")
        if self.jobs != 1:
            args.append(f"-j {self.jobs}")
        return " ".join(args)


@dataclass
class Measurement:
    """One measured run."""
    kind: str                         # 'copy', 'dump' or 'restore'
    label: str
    setting: Optional[Setting] = None
    seconds: Optional[float] = None
    rows: int = 0
    copy_bytes: int = 0               # raw COPY bytes moved (before compression)
    archive_bytes: Optional[int] = None
    error: Optional[str] = None
    skipped: Optional[str] = None     # why it did not run

    @property
    def ok(self) -> bool:
        return self.error is None and self.skipped is None and bool(self.seconds)

    @property
    def mb_per_s(self) -> Optional[float]:
        return self.copy_bytes / self.seconds / 1e6 if self.ok else None

    @property
    def rows_per_s(self) -> Optional[float]:
        return self.rows / self.seconds if self.ok else None

    @property
    def ratio(self) -> Optional[float]:
        """Compression ratio: raw COPY bytes per archive byte."""
        if self.ok and self.archive_bytes:
            return self.copy_bytes / self.archive_bytes
        return None


@dataclass
class SampledTable:
    schema: str
    name: str
    heap_bytes: int
    pages: int                        # heap pages of the table
    sample_pages: Optional[int] = None  # None: the whole table

    @property
    def qualified(self) -> str:
        return f"{self.schema}.{self.name}"

    @property
    def selector(self) -> str:
        return ".".join('"' + p.replace('"', '""') + '"' for p in (self.schema, self.name))

    def where(self) -> Optional[str]:
        if self.sample_pages is None:
            return None
        return f"ctid < '({int(self.sample_pages)},0)'::pg_catalog.tid"


@dataclass
class Recommendation:
    goal: str                         # 'speed', 'size', 'balance', 'restore'
    setting: Setting
    mb_per_s: float
    ratio: Optional[float]
    why: str

    @property
    def cli(self) -> str:
        return self.setting.cli_args("restore" if self.goal == "restore" else "dump")


@dataclass
class BenchReport:
    """What :func:`run_bench` measured and recommends."""
    tables: List[SampledTable]
    sample_fraction: float
    measurements: List[Measurement]
    recommendations: List[Recommendation]
    seconds: float
    budget: float
    server_version: str
    scratch_database: Optional[str] = None   # the name used (always dropped)
    scratch_dropped: Optional[bool] = None
    notes: List[str] = field(default_factory=list)

    def to_dict(self) -> Dict[str, Any]:
        def meas(m: Measurement) -> Dict[str, Any]:
            d = asdict(m)
            d["setting"] = asdict(m.setting) if m.setting else None
            d.update(mb_per_s=m.mb_per_s, rows_per_s=m.rows_per_s, ratio=m.ratio)
            return d
        return {
            "tables": [asdict(t) for t in self.tables],
            "sample_fraction": self.sample_fraction,
            "measurements": [meas(m) for m in self.measurements],
            "recommendations": [{**asdict(r), "cli": r.cli,
                                 "label": r.setting.label} for r in self.recommendations],
            "seconds": self.seconds, "budget": self.budget,
            "server_version": self.server_version,
            "scratch_database": self.scratch_database,
            "scratch_dropped": self.scratch_dropped, "notes": list(self.notes),
        }

    def format_table(self) -> str:
        """The measurements and recommendations as a plain-text table."""
        head = ("what", "setting", "seconds", "MB/s", "rows/s", "archive MB", "ratio")
        rows: List[Tuple[str, ...]] = []
        for m in self.measurements:
            if not m.ok:
                reason = m.skipped and f"skipped: {m.skipped}" or f"error: {m.error}"
                rows.append((m.kind, m.label, "", "", "", "", reason[:70]))
                continue
            rows.append((m.kind, m.label, f"{m.seconds:.2f}", f"{m.mb_per_s:.1f}",
                         f"{m.rows_per_s:,.0f}",
                         f"{m.archive_bytes / 1e6:.2f}" if m.archive_bytes else "",
                         f"{m.ratio:.2f}" if m.ratio else ""))
        widths = [max(len(r[i]) for r in rows + [head]) for i in range(len(head))]
        lines = ["  ".join(h.ljust(w) for h, w in zip(head, widths)),
                 "  ".join("-" * w for w in widths)]
        for r in rows:
            lines.append("  ".join(c.ljust(w) if i < 2 else c.rjust(w)
                                   for i, (c, w) in enumerate(zip(r, widths))))
        sample_mb = sum(m.copy_bytes for m in self.measurements if m.kind == "copy"
                        and m.ok) / 1e6
        out = [f"sample: {self.sample_fraction:.1%} of {len(self.tables)} table(s), "
               f"{sample_mb:.1f} MB of COPY data; PostgreSQL {self.server_version}; "
               f"{self.seconds:.1f} s of a {self.budget:.0f} s budget", ""] + lines
        if self.recommendations:
            out += ["", "recommended:"]
            for r in self.recommendations:
                ratio = f", ratio {r.ratio:.2f}" if r.ratio else ""
                out.append(f"  {r.goal:<8} {r.cli:<56} "
                           f"({r.mb_per_s:.1f} MB/s{ratio}; {r.why})")
        for n in self.notes:
            out.append(f"note: {n}")
        return "\n".join(out)


# -- planning -------------------------------------------------------------------------

#: cost of each run relative to a raw COPY of the same sample (rough, conservative;
#: they only size the sample, the budget check uses measured times)
_DUMP_WEIGHT = {("tar", None): 1.3, ("zstd", 1): 1.5, ("zstd", 3): 2.0, ("zstd", 9): 6.0,
                ("gzip", 1): 4.0, ("gzip", 6): 8.0}
_RESTORE_WEIGHT = 5.0
_RESTORE_OVERHEAD_S = 1.0   # creating and dropping a scratch database


def default_plan(ntables: int, scratch_restore: bool,
                 cpus: Optional[int] = None) -> List[Tuple[str, Setting]]:
    """The runs, most important first: ``[(kind, setting)]``."""
    cpus = cpus or os.cpu_count() or 1
    base = Setting("zstd", 3)
    plan: List[Tuple[str, Setting]] = [("dump", base), ("dump", Setting("tar")),
                                       ("dump", Setting("zstd", 1)),
                                       ("dump", Setting("gzip", 6)),
                                       ("dump", Setting("gzip", 1)),
                                       ("dump", Setting("zstd", 9))]
    if scratch_restore:
        plan.append(("restore", base))
    for size in (1 << 20, 32 << 20):
        plan.append(("dump", Setting("zstd", 3, chunk_size=size)))
    jobs = [j for j in (2, 4) if j <= max(2, cpus)] if ntables > 1 else []
    for j in jobs:
        plan.append(("dump", Setting("zstd", 3, jobs=j)))
    if scratch_restore:
        if ntables > 1:
            plan.append(("restore", Setting("zstd", 3, jobs=2)))
        plan.append(("restore", Setting("tar")))
    return plan


def _weight(kind: str, s: Setting) -> float:
    if kind == "restore":
        return _RESTORE_WEIGHT
    w = _DUMP_WEIGHT.get((s.backend, s.level if s.backend != "tar" else None), 3.0)
    return w / min(s.jobs, 2) ** 0.5


def _size_text(n: int) -> str:
    for unit, factor in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= factor and n % factor == 0:
            return f"{n // factor}{unit}"
    return str(n)


# -- helpers on the live database -------------------------------------------------------

def _resolve_tables(conn: psycopg.Connection, selectors: Sequence[str]) -> List[SampledTable]:
    from . import schema
    refs = schema.resolve_selectors(conn, list(selectors))
    if not refs:
        raise SelectorError(f"no table matches {', '.join(selectors) or '(nothing)'}")
    out: List[SampledTable] = []
    seen = set()
    block = int(conn.execute("SELECT current_setting('block_size')").fetchone()[0])
    for ref in refs:
        kind = conn.execute(
            "SELECT c.relkind FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n "
            "ON n.oid = c.relnamespace WHERE n.nspname = %s AND c.relname = %s",
            (ref.schema, ref.name)).fetchone()
        leaves = schema.partition_leaves(conn, ref.schema, ref.name) \
            if kind and kind[0] == "p" else [ref]
        for leaf in leaves:
            if (leaf.schema, leaf.name) in seen:
                continue
            seen.add((leaf.schema, leaf.name))
            heap = conn.execute(
                "SELECT pg_catalog.pg_relation_size(c.oid, 'main') FROM pg_catalog.pg_class c "
                "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname = %s AND c.relname = %s", (leaf.schema, leaf.name)).fetchone()
            heap_bytes = int(heap[0]) if heap else 0
            out.append(SampledTable(leaf.schema, leaf.name, heap_bytes,
                                    max(1, math.ceil(heap_bytes / block))))
    return out


def _set_fraction(tables: List[SampledTable], fraction: float) -> None:
    for t in tables:
        pages = math.ceil(t.pages * fraction)
        t.sample_pages = None if fraction >= 1 or pages >= t.pages else max(1, pages)


def _raw_copy(conn: psycopg.Connection, tables: List[SampledTable]) -> Tuple[int, int, float]:
    """COPY each table's sample to a sink that drops it: (rows, bytes, seconds)."""
    from . import pump
    rows = nbytes = 0
    t0 = time.perf_counter()
    for t in tables:
        where = t.where()
        ident = sql.Identifier(t.schema, t.name)
        if where is None:
            query = sql.SQL("COPY {} TO STDOUT (FORMAT binary)").format(ident)
        else:
            query = sql.SQL("COPY (SELECT * FROM {} WHERE {}) TO STDOUT (FORMAT binary)"
                            ).format(ident, sql.SQL(where))
        r, b = pump.copy_out(conn, query, lambda data: None)
        rows += max(r, 0)
        nbytes += b
    return rows, nbytes, time.perf_counter() - t0


def _admin_execute(conninfo: str, query: sql.Composable) -> None:
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(query)


def _drop_database(conninfo: str, name: str) -> bool:
    """Drop the scratch database; True when it is gone."""
    ident = sql.Identifier(name)
    with psycopg.connect(conninfo, autocommit=True) as conn:
        if conn.info.server_version >= 130000:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(ident))
        else:  # no FORCE before 13: end the sessions first
            conn.execute("SELECT pg_catalog.pg_terminate_backend(pid) FROM "
                         "pg_catalog.pg_stat_activity WHERE datname = %s", (name,))
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(ident))
        gone = conn.execute("SELECT NOT EXISTS (SELECT 1 FROM pg_catalog.pg_database "
                            "WHERE datname = %s)", (name,)).fetchone()[0]
    return bool(gone)


def _restore_failures(summary: Any) -> List[str]:
    """The tables a restore summary reports as failed, with the reason."""
    out = []
    for f in getattr(summary, "failed", None) or []:   # [(table_id, reason)]
        out.append(f"{f[0]} ({f[1]})" if isinstance(f, tuple) and len(f) == 2 else str(f))
    return out


# -- the entry point --------------------------------------------------------------------

def run_bench(conninfo: str, selectors: Sequence[str], *, seconds: float = 60.0,
              scratch_restore: bool = False, plan: Optional[List[Tuple[str, Setting]]] = None,
              sample_bytes: Optional[int] = None, tmpdir: Optional[str] = None,
              log: Optional[Callable[[str], None]] = None) -> BenchReport:
    """Measure dump (and restore) settings on a sample of the selected tables.

    ``seconds`` bounds the whole run (the first dump always runs, so a tiny budget
    still gives one figure).  ``scratch_restore`` allows restores into a scratch
    database ``dumpcodec_bench_<random>`` (needs CREATEDB), dropped at the end
    whatever happens.  ``plan``: the runs as ``[(kind, Setting)]`` (default
    :func:`default_plan`).  ``sample_bytes``: a fixed sample size in COPY bytes
    instead of one sized from the budget.  ``log``: called with a line of text
    before each step (the CLI prints it); the library itself never prints.
    """
    if seconds <= 0:
        raise ValueError(f"seconds must be positive, not {seconds}")
    run = _BenchRun(conninfo, time.perf_counter() + seconds, log or (lambda msg: None))
    t_start = time.perf_counter()
    workdir = tempfile.mkdtemp(prefix="dumpcodec-bench-", dir=tmpdir)
    try:
        with psycopg.connect(conninfo, autocommit=True) as conn:
            server_version = conn.execute("SHOW server_version").fetchone()[0].split()[0]
            tables = _resolve_tables(conn, selectors)
            if conn.info.server_version < 140000:
                run.notes.append("PostgreSQL before 14 has no TID range scan: sampling "
                                 "reads each table in full")
            plan = plan if plan is not None else default_plan(len(tables), scratch_restore)
            if not scratch_restore:
                plan = [p for p in plan if p[0] != "restore"]
            fraction = run.sample(conn, tables, plan, sample_bytes)
        run.warm_up(tables, fraction, workdir)
        run.measure(plan, tables, workdir)
    finally:
        run.drop_scratch()
        shutil.rmtree(workdir, ignore_errors=True)
    return BenchReport(tables, fraction, run.measurements, recommend(run.measurements),
                       time.perf_counter() - t_start, seconds, server_version,
                       run.scratch, run.scratch_dropped, run.notes)


class _BenchRun:
    """The steps of :func:`run_bench` and what they share."""

    def __init__(self, conninfo: str, deadline: float, log: Callable[[str], None]):
        self.conninfo = conninfo
        self.deadline = deadline
        self.log = log
        self.notes: List[str] = []
        self.measurements: List[Measurement] = []
        self.scratch: Optional[str] = None
        self.scratch_dropped: Optional[bool] = None
        self.nbytes = 0           # COPY bytes of the sample
        self.rate = 50e6          # raw COPY bytes per second

    def sample(self, conn: psycopg.Connection, tables: List[SampledTable], plan,
               sample_bytes: Optional[int]) -> float:
        """Size the sample from a small probe of raw COPY (unless ``sample_bytes``), then
        measure raw COPY of the sample: the server's limit.  Returns the fraction."""
        total_heap = sum(t.heap_bytes for t in tables) or 1
        _set_fraction(tables, min(1.0, PROBE_BYTES / total_heap))
        self.log(f"probing raw COPY on {len(tables)} table(s) ...")
        p_rows, p_bytes, p_secs = _raw_copy_in_snapshot(conn, tables)
        probe_heap = sum(min(t.pages, t.sample_pages or t.pages) for t in tables) \
            / max(1, sum(t.pages for t in tables)) * total_heap
        expansion = p_bytes / probe_heap if probe_heap else 1.0
        self.rate = p_bytes / p_secs if p_secs > 0 and p_bytes else 50e6
        total_copy = max(1.0, total_heap * expansion)
        if sample_bytes is None:
            overhead = sum(_RESTORE_OVERHEAD_S for k, _ in plan if k == "restore")
            remaining = (self.deadline - time.perf_counter()) * (1 - SAFETY) - overhead
            work = 1.0 + sum(_weight(k, s) for k, s in plan)  # +1: the raw COPY
            target = max(MIN_SAMPLE_BYTES, self.rate * max(remaining, 0.0) / work)
        else:
            target = float(sample_bytes)
        fraction = min(1.0, target / total_copy)
        _set_fraction(tables, fraction)
        self.log(f"sample {fraction:.1%} (~{min(target, total_copy) / 1e6:.1f} MB of COPY "
                 "data): raw COPY ...")
        rows, self.nbytes, secs = _raw_copy_in_snapshot(conn, tables)
        self.measurements.append(Measurement("copy", "raw binary COPY (server limit)",
                                             seconds=secs, rows=rows,
                                             copy_bytes=self.nbytes))
        return fraction

    def warm_up(self, tables: List[SampledTable], fraction: float, workdir: str) -> None:
        """An untimed small dump: the first dump of a process pays for imports and for
        the server's catalog caches, which would make the first setting look slow."""
        from .dump import create_dump
        warm = os.path.join(workdir, "warm-up.dcz")
        total_heap = sum(t.heap_bytes for t in tables) or 1
        _set_fraction(tables, min(1.0, PROBE_BYTES / total_heap) / 4)
        try:
            _dump_to(create_dump, self.conninfo, [t.selector for t in tables],
                     {t.qualified: t.where() for t in tables if t.where()},
                     Setting("zstd", 3), warm)
        finally:
            _unlink(warm)
            _set_fraction(tables, fraction)

    def measure(self, plan, tables: List[SampledTable], workdir: str) -> None:
        """Each setting of the plan that fits in the time left (the first always runs)."""
        from .dump import create_dump
        where = {t.qualified: t.where() for t in tables if t.where()}
        sels = [t.selector for t in tables]
        archives: Dict[Setting, Tuple[str, int, int]] = {}
        per_byte: Dict[str, float] = {}   # measured seconds per COPY byte and weight unit
        first = True
        for kind, setting in plan:
            est = _estimate(kind, setting, self.nbytes, per_byte, self.rate)
            if not first and time.perf_counter() + est > self.deadline:
                self.measurements.append(Measurement(kind, setting.label, setting,
                                                     skipped="time budget"))
                continue
            first = False
            if kind == "dump":
                self.log(f"dump {setting.label} ...")
                m = _measure_dump(create_dump, self.conninfo, sels, where, setting, workdir,
                                  archives)
            else:
                if self.scratch is None:
                    self.scratch = SCRATCH_PREFIX + secrets.token_hex(4)
                self.log(f"restore {setting.label} into scratch database {self.scratch} ...")
                m = _measure_restore(self.conninfo, self.scratch, setting, workdir, archives,
                                     tables, where, sels, create_dump)
            self.measurements.append(m)
            if m.ok:
                per_byte[kind] = m.seconds / max(1, m.copy_bytes) / _weight(kind, setting)

    def drop_scratch(self) -> None:
        if self.scratch is None:
            return
        try:
            self.scratch_dropped = _drop_database(self.conninfo, self.scratch)
        except psycopg.Error as exc:
            self.scratch_dropped = False
            self.notes.append(f"could not drop the scratch database {self.scratch}: {exc}")


def _raw_copy_in_snapshot(conn: psycopg.Connection, tables: List[SampledTable]):
    conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
    try:
        return _raw_copy(conn, tables)
    finally:
        conn.execute("ROLLBACK")


def _estimate(kind: str, setting: Setting, nbytes: int, per_byte: Dict[str, float],
              rate: float) -> float:
    unit = per_byte.get(kind) or per_byte.get("dump") or 1.0 / max(rate, 1.0)
    est = unit * nbytes * _weight(kind, setting)
    return est + (_RESTORE_OVERHEAD_S if kind == "restore" else 0.0)


def _dump_to(create_dump, conninfo: str, sels: List[str], where: Dict[str, str],
             setting: Setting, path: str):
    return create_dump(conninfo, sels, path, backend=setting.backend,
                       level=setting.level if setting.backend != "tar" else None,
                       chunk_size=setting.chunk_size, jobs=setting.jobs,
                       where=where or None)


def _measure_dump(create_dump, conninfo: str, sels: List[str], where: Dict[str, str],
                  setting: Setting, workdir: str,
                  archives: Dict[Setting, Tuple[str, int, int]]) -> Measurement:
    path = os.path.join(workdir, f"dump-{len(os.listdir(workdir))}.dcz")
    m = Measurement("dump", setting.label, setting)
    try:
        t0 = time.perf_counter()
        summary = _dump_to(create_dump, conninfo, sels, where, setting, path)
        m.seconds = time.perf_counter() - t0
    except (DumpcodecError, psycopg.Error, OSError, ValueError) as exc:
        m.error = f"{type(exc).__name__}: {exc}"
        _unlink(path)
        return m
    m.rows, m.copy_bytes = summary.rows, summary.nbytes
    m.archive_bytes = os.path.getsize(path)
    # keep one archive per compression for the restores; the rest go at once
    key = Setting(setting.backend, setting.level)
    if key not in archives and setting.chunk_size is None:
        archives[key] = (path, m.rows, m.copy_bytes)
    else:
        _unlink(path)
    return m


def _measure_restore(conninfo: str, scratch: str, setting: Setting, workdir: str,
                     archives: Dict[Setting, Tuple[str, int, int]], tables: List[SampledTable],
                     where: Dict[str, str], sels: List[str], create_dump) -> Measurement:
    from .restore import restore_dump
    m = Measurement("restore", setting.label, setting)
    key = Setting(setting.backend, setting.level)
    try:
        if key not in archives:  # its dump was skipped or failed: make it now (untimed)
            path = os.path.join(workdir, f"restore-{len(archives)}.dcz")
            s = _dump_to(create_dump, conninfo, sels, where, key, path)
            archives[key] = (path, s.rows, s.nbytes)
        path, dump_rows, dump_bytes = archives[key]
        _drop_database(conninfo, scratch)
        _admin_execute(conninfo, sql.SQL("CREATE DATABASE {}").format(sql.Identifier(scratch)))
        target = psycopg.conninfo.make_conninfo(conninfo, dbname=scratch)
        with psycopg.connect(target, autocommit=True) as tconn:
            for s in sorted({t.schema for t in tables}):
                tconn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(
                    sql.Identifier(s)))
        t0 = time.perf_counter()
        summary = restore_dump(target, path, jobs=setting.jobs)
        m.seconds = time.perf_counter() - t0
        failed = _restore_failures(summary)
        if failed:
            m.error = f"{len(failed)} table(s) failed: {', '.join(failed)[:200]}"
        m.rows = int(getattr(summary, "rows", 0) or dump_rows)
        m.copy_bytes = int(getattr(summary, "nbytes", 0) or dump_bytes)
        m.archive_bytes = os.path.getsize(path)
    except (DumpcodecError, psycopg.Error, OSError, ValueError) as exc:
        m.error = f"{type(exc).__name__}: {exc}"
    return m


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


#: throughput differences below this share are taken as noise: the simpler setting wins
TOLERANCE = 0.10


def _knobs(s: Setting) -> int:
    """How many options differ from the defaults (fewer is simpler)."""
    return int(s.chunk_size is not None) + int(s.jobs != 1)


def _pick_fast(ms: Sequence[Measurement]) -> Measurement:
    """The fastest, where everything within TOLERANCE of it counts as fastest and the
    simplest setting (then the better ratio) wins among those."""
    top = max(m.mb_per_s for m in ms)
    near = [m for m in ms if m.mb_per_s >= (1 - TOLERANCE) * top]
    return min(near, key=lambda m: (_knobs(m.setting), -(m.ratio or 0), -m.mb_per_s))


def _pick_small(ms: Sequence[Measurement], slack: float) -> Measurement:
    """The best ratio, where ratios within ``slack`` of it count as equal and the
    faster of those wins."""
    best = max(m.ratio for m in ms)
    return _pick_fast([m for m in ms if m.ratio >= (1 - slack) * best])


def recommend(measurements: Sequence[Measurement]) -> List[Recommendation]:
    """Settings for speed, for size, and a balance; plus the fastest restore ``-j``.

    Throughputs within ``TOLERANCE`` of the best count as equal (one sample of a
    shared machine cannot tell them apart); among those the setting with the fewest
    non-default options, then the better compression, is recommended.  The balance
    is the best compression (within 2%) among settings at least half as fast as the
    fastest.
    """
    dumps = [m for m in measurements if m.kind == "dump" and m.ok and m.setting]
    out: List[Recommendation] = []
    if dumps:
        fastest = _pick_fast(dumps)
        out.append(Recommendation("speed", fastest.setting, fastest.mb_per_s, fastest.ratio,
                                  "highest dump throughput"))
        sized = [m for m in dumps if m.ratio]
        if sized:
            smallest = _pick_small(sized, 0.005)
            out.append(Recommendation("size", smallest.setting, smallest.mb_per_s,
                                      smallest.ratio, "smallest archive"))
            top = max(m.mb_per_s for m in dumps)
            quick = [m for m in sized if m.mb_per_s >= 0.5 * top]
            if quick:
                bal = _pick_small(quick, 0.02)
                out.append(Recommendation(
                    "balance", bal.setting, bal.mb_per_s, bal.ratio,
                    "best compression at >= half the fastest throughput"))
    restores = [m for m in measurements if m.kind == "restore" and m.ok and m.setting]
    if restores:
        best = _pick_fast(restores)
        out.append(Recommendation("restore", best.setting, best.mb_per_s, best.ratio,
                                  "fastest restore"))
    return out


__all__ = ["Setting", "Measurement", "SampledTable", "Recommendation", "BenchReport",
           "run_bench", "default_plan", "recommend"]
