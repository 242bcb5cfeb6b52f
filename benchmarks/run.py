"""The benchmark runner: dumpcodec against the tools a user would otherwise pick.

Run it as ``python -m benchmarks`` (or ``python benchmarks/run.py``) from the
repository root.  It sets up its own data (``benchmarks/datasets.py``) on a server
(``--dsn``, or by default an embedded PostgreSQL 16 from pgserver, so that pg_dump
matches the server), runs every comparison side by side in one run, several
rounds each, and reports medians, throughput, archive sizes, peak client memory
and the ratios that the project's targets are stated in.

Every measured operation runs in its own child process: a fresh interpreter for
Python code (``--child``, timed inside the child so that interpreter start-up is
not counted) or the tool itself for pg_dump/pg_restore/psql.  The parent reaps
each child with ``os.wait4`` and reads its peak RSS (``ru_maxrss``, which includes
the child's own reaped children, e.g. both sides of a shell pipeline) and CPU time
from the kernel, so memory figures come from the OS, not from Python.

Groups of cases:

``server``  the server's own limit: ``psql \\copy ... to /dev/null (format binary)``,
            asyncpg ``copy_from_table`` into a null sink, and the ingest limit
            ``psql \\copy ... from FILE (format binary)``;
``decode``  COPY TO into Python rows: psycopg binary ``Copy.rows()`` with
            ``set_types``, asyncpg ``fetch`` through a cursor, dumpcodec;
``encode``  Python rows into the server: psycopg ``write_row`` (binary), asyncpg
            ``copy_records_to_table``, pgcopy ``CopyManager``, dumpcodec;
``scan``    offline codec figures (decode from bytes, scanner against a memory
            copy) supplied by ``benchmarks/bench_codec.py``;
``dump``    ``pg_dump -Fc`` (gzip, zstd where built in), ``-Fc -Z0``,
            ``-Fc -Z0 | zstd -3``, ``-Fd -j2``, and ``dumpcodec`` dumps;
``restore`` ``pg_restore -j1/-j2`` and dumpcodec restores, each into a fresh database.

The dumpcodec figures come first from the suites ``benchmarks/bench_codec.py``
(its measuring functions are imported and run in a child per table and part) and
``benchmarks/bench_dump.py`` (run as a subprocess with ``--json``), on the same
server, database and tables; the runner's own cases (dumpcodec through its public
API, and the peers above) measure whatever a suite does not provide, or everything
with ``--no-suites``.  Each result records its ``source``.

Results go to ``benchmarks/results/<YYYY-MM-DD>-<host>.json`` and ``.md``; the
Markdown is printed too.  ``--plot`` draws PNG charts when matplotlib is importable.
"""
from __future__ import annotations

import argparse
import asyncio
import datetime as _dt
import gc
import importlib
import itertools
import json
import os
import platform
import re
import shlex
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

if __package__ in (None, ""):  # run as a script: python benchmarks/run.py
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    __package__ = "benchmarks"

from benchmarks import datasets  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
RESULTS_DIR = REPO / "benchmarks" / "results"
DEFAULT_PGDATA = os.path.join(tempfile.gettempdir(), "dumpcodec-bench-pgserver")
RESULT_TAG = "BENCHJSON:"
#: codec groups measured on the whole tables all the same: the scanner and its
#: reference, a memory copy, need buffers larger than the CPU's cache (a copy of a
#: quarter of the narrow table, 28 MB, stayed in a 32 MB cache and ran at 12 GB/s)
FULL_SIZE_GROUPS = {"scan"}
#: schema of the smaller copies the codec groups run on (see --codec-share)
CODEC_SCHEMA = "bench_part"
CODEC_GROUPS = ("decode", "decode-streamed", "decode-offline", "decode-gc-off", "encode",
                "encode-offline", "scan")
GROUPS = ("server", "decode", "decode-streamed", "decode-offline", "decode-gc-off", "encode",
          "encode-offline", "scan", "dump", "restore", "many-tables")
MB = 1_000_000


# --------------------------------------------------------------------------
# Context and cases
# --------------------------------------------------------------------------

@dataclass
class Context:
    """Everything a case needs; serialisable so that children get it as JSON."""
    dsn: str                       # the benchmark database
    admin_dsn: str                 # a database to CREATE/DROP scratch databases from
    rounds: int
    workdir: str
    tables: List[str]              # benchmark tables in this run, e.g. ["mixed", "narrow"]
    stats: Dict[str, Dict[str, int]]
    bins: Dict[str, Optional[str]]  # psql, pg_dump, pg_restore, zstd
    server_version: str = ""
    server_version_num: int = 0
    pg_dump_zstd: bool = False
    schema: str = datasets.SCHEMA
    quick: bool = False
    restore_db: str = "dumpcodec_bench_restore"   # scratch database for restores
    extra: bool = False            # also the informative cases left out by default

    def to_json(self) -> Dict[str, Any]:
        return dict(self.__dict__)

    @classmethod
    def from_json(cls, data: Dict[str, Any]) -> "Context":
        return cls(**data)

    def qualified(self, table: str) -> str:
        return datasets.qualified(table, self.schema)

    def rows(self, table: str) -> int:
        if table == "all":
            return sum(self.stats[t]["rows"] for t in self.tables)
        return self.stats[table]["rows"]

    def copy_bytes(self, table: str) -> int:
        if table == "all":
            return sum(self.stats[t]["copy_bytes"] for t in self.tables)
        return self.stats[table]["copy_bytes"]

    def dsn_for(self, dbname: str) -> str:
        import psycopg.conninfo
        return psycopg.conninfo.make_conninfo(self.admin_dsn, dbname=dbname)

    def path(self, name: str) -> str:
        return os.path.join(self.workdir, name)


@dataclass
class Case:
    """One measured operation.

    Exactly one of ``func`` (``"module:function"``, called in a child interpreter
    as ``function(ctx, **params)`` and returning a dict with ``seconds`` per round)
    or ``command`` (``command(ctx) -> str``, a shell command run once per round and
    timed by the parent) is set.
    """
    id: str
    group: str
    table: str                     # mixed | narrow | all
    tool: str
    ours: bool = False             # a dumpcodec case (ratios are computed against it)
    primary: bool = False          # the dumpcodec case peers are compared with
    func: Optional[str] = None
    params: Dict[str, Any] = field(default_factory=dict)
    command: Optional[Callable[[Context], str]] = None
    prepare: Optional[Callable[[Context], None]] = None      # once, untimed
    before: Optional[Callable[[Context], None]] = None       # each round, untimed
    after: Optional[Callable[[Context], Dict[str, Any]]] = None  # each round, untimed
    output: Optional[str] = None   # file or directory (in workdir) whose size is reported
    keep_output: bool = False      # later cases read it (e.g. pg_restore)
    note: str = ""


# --------------------------------------------------------------------------
# Child processes: peak memory and CPU from the kernel
# --------------------------------------------------------------------------

_BYTECODE_DONE: List[bool] = []


def ensure_bytecode() -> None:
    """Compile dumpcodec's modules to bytecode (``__pycache__``) once, as ``pip
    install`` does, before any command is timed (every child's environment is made
    by :func:`_child_env`, which calls this).

    Run from a source checkout with ``PYTHONDONTWRITEBYTECODE`` set (as on this
    project's machines), every ``dumpcodec`` command would compile its modules again
    (0.13 to 0.45 s a command, measured there) that an installed dumpcodec does not
    spend.  Existing bytecode is still read with that variable set, so compiling
    once is enough."""
    if _BYTECODE_DONE:
        return
    import compileall

    import dumpcodec
    compileall.compile_dir(os.path.dirname(dumpcodec.__file__), quiet=1)
    _BYTECODE_DONE.append(True)


def _child_env(extra: Optional[Dict[str, str]] = None) -> Dict[str, str]:
    ensure_bytecode()
    env = dict(os.environ)
    env.update(extra or {})
    env["PYTHONPATH"] = os.pathsep.join(
        [str(REPO)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    env.setdefault("PYTHONWARNINGS", "ignore")
    return env


def run_measured(argv: Sequence[str], *, timeout: float, cwd: Optional[str] = None,
                 env: Optional[Dict[str, str]] = None) -> Dict[str, Any]:
    """Run ``argv``; return exit code, wall seconds, output, peak RSS and CPU.

    ``os.wait4`` gives the resource usage of exactly this child (with its own
    reaped children), unlike ``RUSAGE_CHILDREN`` which accumulates over all of
    them.  Output goes to temporary files, so that nothing but ``wait4`` reaps
    the child (``Popen.communicate`` would, and the usage would be lost).
    """
    import threading
    gnu_time = _gnu_time()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err, \
            tempfile.NamedTemporaryFile("r") as usage_file:
        full = list(argv)
        if gnu_time:
            # The child forked from us starts with our pages counted in its
            # ru_maxrss (exec keeps the pre-exec high-water mark); GNU time forks
            # the real command from its own tiny process and reports that one.
            full = [gnu_time, "-q", "-f", "%M %U %S", "-o", usage_file.name] + full
        t0 = time.perf_counter()
        proc = subprocess.Popen(full, stdout=out, stderr=err, env=_child_env(env),
                                cwd=cwd or str(REPO), start_new_session=True)
        timed_out = []

        def kill() -> None:
            timed_out.append(True)
            try:
                os.killpg(proc.pid, 9)
            except ProcessLookupError:
                pass
        timer = threading.Timer(timeout, kill)
        timer.start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        finally:
            timer.cancel()
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        rss_kb, cpu = usage.ru_maxrss, usage.ru_utime + usage.ru_stime
        if gnu_time:
            fields = usage_file.read().split()
            try:
                rss_kb, cpu = int(fields[-3]), float(fields[-2]) + float(fields[-1])
            except (IndexError, ValueError):
                pass
        out.seek(0)
        err.seek(0)
        stdout = out.read().decode(errors="replace")
        stderr = err.read().decode(errors="replace")
    if timed_out:
        raise TimeoutError(f"timed out after {timeout:.0f} s")
    return {"rc": proc.returncode, "wall": wall, "stdout": stdout, "stderr": stderr,
            "rss_kb": rss_kb, "cpu": cpu}


def _gnu_time() -> Optional[str]:
    path = "/usr/bin/time"
    return path if os.path.exists(path) and os.environ.get("DUMPCODEC_BENCH_NO_TIME") != "1" \
        else None


def _path_size(path: str) -> int:
    if os.path.isdir(path):
        return sum(os.path.getsize(os.path.join(d, f))
                   for d, _, files in os.walk(path) for f in files)
    return os.path.getsize(path) if os.path.exists(path) else 0


def _remove(path: str) -> None:
    if os.path.isdir(path):
        shutil.rmtree(path, ignore_errors=True)
    elif os.path.exists(path):
        os.unlink(path)


def run_case(ctx: Context, case: Case, timeout: float) -> Dict[str, Any]:
    """Run one case for ``ctx.rounds`` rounds; return its result record."""
    res: Dict[str, Any] = {
        "id": case.id, "group": case.group, "table": case.table, "tool": case.tool,
        "ours": case.ours, "primary": case.primary, "note": case.note,
        "rows": ctx.rows(case.table) if case.table in ctx.tables + ["all"] else None,
        "bytes": ctx.copy_bytes(case.table) if case.table in ctx.tables + ["all"] else None,
    }
    try:
        if case.prepare:
            case.prepare(ctx)
        if case.func:
            _run_func_case(ctx, case, res, timeout)
        else:
            _run_command_case(ctx, case, res, timeout)
    except Exception as exc:  # one failing case must not stop the run
        res["error"] = f"{type(exc).__name__}: {exc}"[:2000]
        return res
    secs = res.get("seconds") or []
    if secs:
        med = statistics.median(secs)
        res["median_s"] = med
        if res.get("rows") and med > 0:
            res["rows_per_s"] = res["rows"] / med
        if res.get("bytes") and med > 0:
            res["mb_per_s"] = res["bytes"] / med / MB
    return res


def _run_func_case(ctx: Context, case: Case, res: Dict[str, Any], timeout: float) -> None:
    payload = json.dumps({"func": case.func, "ctx": ctx.to_json(), "params": case.params})
    argv = [sys.executable, "-m", "benchmarks.run", "--child", payload]
    m = run_measured(argv, timeout=timeout)
    line = next((ln for ln in reversed(m["stdout"].splitlines())
                 if ln.startswith(RESULT_TAG)), None)
    if m["rc"] != 0 or line is None:
        tail = (m["stderr"].strip().splitlines() or ["(no output)"])[-1]
        raise RuntimeError(f"child exited with {m['rc']}: {tail}")
    out = json.loads(line[len(RESULT_TAG):])
    res.update({k: v for k, v in out.items() if v is not None})
    res["peak_rss_mb"] = m["rss_kb"] / 1024
    res["cpu_s"] = m["cpu"] / max(1, len(out.get("seconds") or [1]))


def _run_command_case(ctx: Context, case: Case, res: Dict[str, Any], timeout: float) -> None:
    assert case.command is not None
    cmd = case.command(ctx)
    res["command"] = _redact(cmd, ctx)
    secs, rss, cpu, extra = [], 0, [], {}
    for _ in range(ctx.rounds):
        if case.output:
            _remove(ctx.path(case.output))
        if case.before:
            case.before(ctx)
        m = run_measured(["bash", "-o", "pipefail", "-c", cmd], timeout=timeout)
        if m["rc"] != 0:
            tail = (m["stderr"].strip().splitlines() or ["(no output)"])[-1]
            raise RuntimeError(f"exit status {m['rc']}: {tail}")
        secs.append(m["wall"])
        rss = max(rss, m["rss_kb"])
        cpu.append(m["cpu"])
        if case.output:
            res["size_bytes"] = _path_size(ctx.path(case.output))
        if case.after:
            extra.update(case.after(ctx) or {})
    if case.output and not case.keep_output:
        _remove(ctx.path(case.output))
    res.update(extra)
    res["seconds"] = secs
    res["peak_rss_mb"] = rss / 1024
    res["cpu_s"] = statistics.median(cpu) if cpu else None


def _redact(cmd: str, ctx: Context) -> str:
    """The command as reported: connection strings shortened to a placeholder."""
    for dsn in (ctx.dsn, ctx.admin_dsn):
        cmd = cmd.replace(shlex.quote(dsn), "$DSN")
    return re.sub(r"postgresql://\S+", "$DSN", cmd)


def child_main(payload: str) -> int:
    """Entry point of a child interpreter: run one function, print its result."""
    spec = json.loads(payload)
    modname, _, funcname = spec["func"].partition(":")
    func = getattr(importlib.import_module(modname), funcname)
    ctx = Context.from_json(spec["ctx"])
    out = func(ctx, **spec.get("params", {}))
    sys.stdout.write("\n" + RESULT_TAG + json.dumps(out) + "\n")
    sys.stdout.flush()
    return 0


# --------------------------------------------------------------------------
# Peer baselines (run in child interpreters)
# --------------------------------------------------------------------------

def _copy_to(ctx: Context, table: str) -> str:
    return f"COPY {ctx.qualified(table)} TO STDOUT (FORMAT binary)"


def _load_table(table: str) -> str:
    return f"{table}_load"


def _asyncpg_kwargs(dsn: str) -> Dict[str, Any]:
    """asyncpg does not read libpq key=value strings: translate the conninfo."""
    import psycopg.conninfo
    info = psycopg.conninfo.conninfo_to_dict(dsn)
    kw: Dict[str, Any] = {}
    for src, dst in (("host", "host"), ("port", "port"), ("user", "user"),
                     ("password", "password"), ("dbname", "database")):
        if info.get(src):
            kw[dst] = int(info[src]) if dst == "port" else info[src]
    return kw


async def _asyncpg_connect(ctx: Context):
    import asyncpg
    conn = await asyncpg.connect(**_asyncpg_kwargs(ctx.dsn))
    # Same Python values as psycopg gives and takes: jsonb <-> dict.  asyncpg's
    # binary COPY needs a binary codec: version byte 1, then the JSON text.
    await conn.set_type_codec(
        "jsonb", schema="pg_catalog", format="binary",
        encoder=lambda v: b"\x01" + json.dumps(v).encode(),
        decoder=lambda b: json.loads(b[1:]))
    return conn


def peer_asyncpg_copy_out(ctx: Context, table: str) -> Dict[str, Any]:
    """Raw binary COPY TO into a sink that drops the bytes: the server's pace."""
    async def main() -> Dict[str, Any]:
        conn = await _asyncpg_connect(ctx)
        secs, total = [], 0
        try:
            for _ in range(ctx.rounds):
                total = 0

                async def sink(data: bytes) -> None:
                    nonlocal total
                    total += len(data)
                t0 = time.perf_counter()
                await conn.copy_from_table(table, schema_name=ctx.schema, output=sink,
                                           format="binary")
                secs.append(time.perf_counter() - t0)
        finally:
            await conn.close()
        return {"seconds": secs, "bytes": total}
    return asyncio.run(main())


def peer_psycopg_decode(ctx: Context, table: str, json_text: bool = False) -> Dict[str, Any]:
    """psycopg 3 binary COPY TO with ``set_types``, every row decoded by ``rows()``.

    ``json_text``: jsonb loaded as ``str`` (as dumpcodec gives it) instead of
    parsed into dicts, for a like-for-like comparison.
    """
    import psycopg
    import psycopg.types.json
    types = datasets.short_types(table)
    secs, n = [], 0
    with psycopg.connect(ctx.dsn, autocommit=True) as conn:
        if json_text:
            psycopg.types.json.set_json_loads(lambda data: bytes(data).decode(), conn)
        for _ in range(ctx.rounds):
            n = 0
            t0 = time.perf_counter()
            with conn.cursor() as cur:
                with cur.copy(_copy_to(ctx, table)) as copy:
                    copy.set_types(types)
                    for _row in copy.rows():
                        n += 1
            secs.append(time.perf_counter() - t0)
    return {"seconds": secs, "rows": n, "impl": psycopg.pq.__impl__}


def peer_asyncpg_decode(ctx: Context, table: str, batch: int = 10_000) -> Dict[str, Any]:
    """asyncpg cannot decode COPY output: rows come from a server-side cursor."""
    async def main() -> Dict[str, Any]:
        conn = await _asyncpg_connect(ctx)
        secs, n = [], 0
        try:
            for _ in range(ctx.rounds):
                n = 0
                t0 = time.perf_counter()
                async with conn.transaction():
                    cur = await conn.cursor(f"SELECT * FROM {ctx.qualified(table)}")
                    while True:
                        rows = await cur.fetch(batch)
                        if not rows:
                            break
                        n += len(rows)
                secs.append(time.perf_counter() - t0)
        finally:
            await conn.close()
        return {"seconds": secs, "rows": n}
    return asyncio.run(main())


def fetch_rows(ctx: Context, table: str) -> List[tuple]:
    """The table as Python rows (psycopg's values), frozen out of the GC's way.

    Every encode peer gets these same objects; ``gc.freeze`` keeps the collector
    from walking millions of tuples during the timed part (it would roughly
    double every peer's time, see NOTES-copy-binary.md).
    """
    import psycopg
    gc.disable()
    with psycopg.connect(ctx.dsn, autocommit=True) as conn:
        with conn.cursor() as cur:
            with cur.copy(_copy_to(ctx, table)) as copy:
                copy.set_types(datasets.short_types(table))
                rows = list(copy.rows())
    gc.freeze()
    gc.enable()
    return rows


def jsonb_as_text(rows: Sequence[tuple], table: str, encode: bool = False):
    """The rows with their jsonb values (dicts) serialised with ``json.dumps``.

    dumpcodec (jsonb is ``str``) and pgcopy (``bytes``) take jsonb as text, where
    psycopg and asyncpg call ``json.dumps`` inside; callers iterate this inside the
    timed part so that every tool pays for the serialisation once.
    """
    idx = [i for i, c in enumerate(datasets.COLUMNS[table]) if c.short == "jsonb"]
    if not idx:
        return rows
    if len(idx) > 1:
        raise ValueError("one jsonb column expected")
    j = idx[0]
    dumps = json.dumps
    if encode:
        return (r if r[j] is None else r[:j] + (dumps(r[j]).encode(),) + r[j + 1:]
                for r in rows)
    return (r if r[j] is None else r[:j] + (dumps(r[j]),) + r[j + 1:] for r in rows)


def reset_load_table(ctx: Context, table: str) -> None:
    """Empty the load target (its own committed transaction, untimed)."""
    import psycopg
    with psycopg.connect(ctx.dsn, autocommit=True) as conn:
        conn.execute(f"TRUNCATE {ctx.qualified(_load_table(table))}")


def _count_load_table(ctx: Context, table: str) -> int:
    import psycopg
    with psycopg.connect(ctx.dsn, autocommit=True) as conn:
        return conn.execute(
            f"SELECT count(*) FROM {ctx.qualified(_load_table(table))}").fetchone()[0]


def _check_loaded(ctx: Context, table: str, expected: int) -> None:
    got = _count_load_table(ctx, table)
    if got != expected:
        raise RuntimeError(f"loaded {got} rows into {_load_table(table)}, expected {expected}")


def peer_psycopg_encode(ctx: Context, table: str) -> Dict[str, Any]:
    """psycopg 3 binary COPY FROM with ``set_types`` and ``write_row`` per row."""
    import psycopg
    rows = fetch_rows(ctx, table)
    types = datasets.short_types(table)
    target = ctx.qualified(_load_table(table))
    secs = []
    with psycopg.connect(ctx.dsn) as conn:
        for _ in range(ctx.rounds):
            reset_load_table(ctx, table)
            t0 = time.perf_counter()
            with conn.cursor() as cur:
                with cur.copy(f"COPY {target} FROM STDIN (FORMAT binary)") as copy:
                    copy.set_types(types)
                    for row in rows:
                        copy.write_row(row)
            conn.commit()
            secs.append(time.perf_counter() - t0)
    _check_loaded(ctx, table, len(rows))
    return {"seconds": secs, "rows": len(rows)}


def peer_asyncpg_encode(ctx: Context, table: str) -> Dict[str, Any]:
    """asyncpg ``copy_records_to_table`` (binary COPY FROM, asyncpg's codecs)."""
    rows = fetch_rows(ctx, table)

    async def main() -> List[float]:
        conn = await _asyncpg_connect(ctx)
        secs = []
        try:
            for _ in range(ctx.rounds):
                reset_load_table(ctx, table)
                t0 = time.perf_counter()
                await conn.copy_records_to_table(_load_table(table), records=rows,
                                                 schema_name=ctx.schema)
                secs.append(time.perf_counter() - t0)
        finally:
            await conn.close()
        return secs
    secs = asyncio.run(main())
    _check_loaded(ctx, table, len(rows))
    return {"seconds": secs, "rows": len(rows)}


def peer_pgcopy_encode(ctx: Context, table: str) -> Dict[str, Any]:
    """pgcopy ``CopyManager.copy`` on psycopg2 (serialises to a temp file, then COPY).

    pgcopy wants jsonb as already-serialised bytes, so the timed part includes the
    ``json.dumps`` that a pgcopy user has to do (psycopg and asyncpg do it inside).
    """
    import psycopg2
    from pgcopy import CopyManager
    rows = fetch_rows(ctx, table)
    cols = datasets.column_names(table)
    secs = []
    conn = psycopg2.connect(ctx.dsn)
    try:
        mgr = CopyManager(conn, ctx.qualified(_load_table(table)), cols)
        for _ in range(ctx.rounds):
            reset_load_table(ctx, table)
            t0 = time.perf_counter()
            mgr.copy(jsonb_as_text(rows, table, encode=True))
            conn.commit()
            secs.append(time.perf_counter() - t0)
    finally:
        conn.close()
    _check_loaded(ctx, table, len(rows))
    return {"seconds": secs, "rows": len(rows)}


def _repeat_timed(fn: Callable[[], Any], rounds: int, min_time: float = 0.2) -> List[float]:
    """Seconds per call of ``fn``, one figure per round; a round repeats ``fn``
    until it has run ``min_time`` so that sub-millisecond operations are measurable."""
    secs = []
    for _ in range(max(3, rounds)):
        calls, t0 = 0, time.perf_counter()
        while True:
            fn()
            calls += 1
            elapsed = time.perf_counter() - t0
            if elapsed >= min_time:
                break
        secs.append(elapsed / calls)
    return secs


def peer_memcpy(ctx: Context, table: str) -> Dict[str, Any]:
    """Memory bandwidth reference: copy the table's COPY bytes once in memory."""
    import psycopg
    with psycopg.connect(ctx.dsn, autocommit=True) as conn:
        with conn.cursor() as cur:
            with cur.copy(_copy_to(ctx, table)) as copy:
                data = b"".join(bytes(b) for b in copy)
    # one full read and one full write of the buffer
    secs = _repeat_timed(lambda: bytearray(data), ctx.rounds)
    return {"seconds": secs, "bytes": len(data)}


# --------------------------------------------------------------------------
# Command-line peers (pg_dump, pg_restore, psql, zstd)
# --------------------------------------------------------------------------

def _q(s: str) -> str:
    return shlex.quote(s)


def _table_args(ctx: Context) -> str:
    return " ".join(f"-t {_q(ctx.qualified(t))}" for t in ctx.tables)


def _pg_dump(ctx: Context) -> str:
    return _q(ctx.bins["pg_dump"] or "pg_dump")


def fresh_restore_db(ctx: Context) -> str:
    """(Re)create the scratch database restores go into; return its conninfo."""
    import psycopg
    drop_restore_db(ctx)
    with psycopg.connect(ctx.admin_dsn, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{ctx.restore_db}"')
    dsn = ctx.dsn_for(ctx.restore_db)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{ctx.schema}"')
    return dsn


def drop_restore_db(ctx: Context) -> None:
    import psycopg
    with psycopg.connect(ctx.admin_dsn, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{ctx.restore_db}" WITH (FORCE)')


def check_restored(ctx: Context) -> Dict[str, Any]:
    """After a restore: every table is there with all its rows and its index."""
    import psycopg
    with psycopg.connect(ctx.dsn_for(ctx.restore_db), autocommit=True) as conn:
        for t in ctx.tables:
            n = conn.execute(f"SELECT count(*) FROM {ctx.qualified(t)}").fetchone()[0]
            if n != ctx.rows(t):
                raise RuntimeError(f"restored {t} has {n} rows, expected {ctx.rows(t)}")
            idx = conn.execute("SELECT count(*) FROM pg_indexes WHERE schemaname = %s "
                               "AND tablename = %s", (ctx.schema, t)).fetchone()[0]
            if idx < 1:
                raise RuntimeError(f"restored {t} has no index")
    return {}


def _prepare_ingest(ctx: Context, table: str) -> None:
    """A binary COPY file of ``table`` and an empty load table (untimed)."""
    path = ctx.path(f"{table}.copy")
    if not os.path.exists(path):
        import psycopg
        with psycopg.connect(ctx.dsn, autocommit=True) as conn, open(path, "wb") as f:
            with conn.cursor().copy(_copy_to(ctx, table)) as copy:
                for block in copy:
                    f.write(block)


def prepare_load_tables(ctx: Context) -> None:
    """``bench.<table>_load``: same columns as the source, no index, empty, UNLOGGED.

    Unlogged (as in bench_codec.py) so that loads measure the client and the
    server's COPY, not the WAL, and every tool loads into the same kind of table.
    """
    import psycopg
    from psycopg import sql
    with psycopg.connect(ctx.dsn, autocommit=True) as conn:
        for t in ctx.tables:
            load = sql.Identifier(ctx.schema, _load_table(t))
            conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(load))
            conn.execute(sql.SQL("CREATE UNLOGGED TABLE {} (LIKE {})").format(
                load, sql.Identifier(ctx.schema, t)))


def drop_load_tables(ctx: Context) -> None:
    import psycopg
    with psycopg.connect(ctx.dsn, autocommit=True) as conn:
        for t in ctx.tables:
            conn.execute(f"DROP TABLE IF EXISTS {ctx.qualified(_load_table(t))}")


PEER_ARCHIVE = "pg_dump-Fc.dump"   # the default pg_dump -Fc archive, kept for pg_restore


def _ensure_peer_archive(ctx: Context) -> None:
    path = ctx.path(PEER_ARCHIVE)
    if not os.path.exists(path):
        subprocess.run(f"{_pg_dump(ctx)} -d {_q(ctx.dsn)} -Fc {_table_args(ctx)} "
                       f"-f {_q(path)}", shell=True, check=True)


def peer_cases(ctx: Context) -> List[Case]:
    """Every baseline the runner measures by itself."""
    cases: List[Case] = []
    psql = _q(ctx.bins["psql"] or "psql")
    for t in ctx.tables:
        qt = ctx.qualified(t)
        cases.append(Case(
            f"server/{t}/psql-copy-out", "server", t, "server COPY TO (psql \\copy to /dev/null)",
            command=lambda c, qt=qt: (f"{psql} -X -q -d {_q(c.dsn)} -c "
                                      + _q(f"\\copy {qt} to '/dev/null' with (format binary)")),
            note="the server's COPY TO limit, binary"))
        cases.append(Case(
            f"server/{t}/asyncpg-copy-out", "server", t, "asyncpg copy_from_table (null sink)",
            func="benchmarks.run:peer_asyncpg_copy_out", params={"table": t}))
        load = ctx.qualified(_load_table(t))
        cases.append(Case(
            f"server/{t}/psql-copy-in", "server", t, "server COPY FROM (psql \\copy from file)",
            prepare=lambda c, t=t: (prepare_load_tables(c), _prepare_ingest(c, t)),
            before=lambda c, t=t: reset_load_table(c, t),
            command=lambda c, t=t, load=load: (
                f"{psql} -X -q -d {_q(c.dsn)} -c "
                + _q(f"\\copy {load} from '{c.path(t + '.copy')}' with (format binary)")),
            note="the server's ingest limit into an unindexed unlogged table"))
    for t in ctx.tables:
        cases.append(Case(f"decode/{t}/psycopg", "decode", t, "psycopg Copy.rows() (binary)",
                          func="benchmarks.run:peer_psycopg_decode", params={"table": t}))
        if any(c.short == "jsonb" for c in datasets.COLUMNS[t]):
            cases.append(Case(f"decode/{t}/psycopg-jsontext", "decode", t,
                              "psycopg Copy.rows() (binary, jsonb as text)",
                              func="benchmarks.run:peer_psycopg_decode",
                              params={"table": t, "json_text": True},
                              note="like for like: dumpcodec gives jsonb as text"))
        cases.append(Case(f"decode/{t}/asyncpg", "decode", t, "asyncpg cursor fetch",
                          func="benchmarks.run:peer_asyncpg_decode", params={"table": t},
                          note="asyncpg cannot decode COPY; SELECT through a cursor"))
    for t in ctx.tables:
        for tool, func in (("psycopg write_row (binary)", "peer_psycopg_encode"),
                           ("asyncpg copy_records_to_table", "peer_asyncpg_encode"),
                           ("pgcopy CopyManager", "peer_pgcopy_encode")):
            cases.append(Case(f"encode/{t}/{func.split('_')[1]}", "encode", t, tool,
                              func=f"benchmarks.run:{func}", params={"table": t},
                              prepare=prepare_load_tables,
                              note="rows from Python objects into an unindexed unlogged table"))
        cases.append(Case(f"scan/{t}/memcpy", "scan", t, "memory copy (bytearray(bytes))",
                          func="benchmarks.run:peer_memcpy", params={"table": t}))
    if ctx.bins.get("pg_dump"):
        dump = f"{_pg_dump(ctx)} -d {{dsn}} {_table_args(ctx)}"

        def dump_case(cid: str, tool: str, args: str, out: str, keep: bool = False,
                      pipe: str = "", note: str = "") -> Case:
            def command(c: Context) -> str:
                base = dump.format(dsn=_q(c.dsn))
                if pipe:
                    return f"{base} {args} | {pipe} > {_q(c.path(out))}"
                return f"{base} {args} -f {_q(c.path(out))}"
            return Case(cid, "dump", "all", tool, command=command, output=out,
                        keep_output=keep, note=note)

        cases.append(dump_case("dump/all/pg_dump-Fc", "pg_dump -Fc (gzip -6)", "-Fc",
                               PEER_ARCHIVE, keep=True))
        if ctx.pg_dump_zstd:
            cases.append(dump_case("dump/all/pg_dump-Fc-zstd", "pg_dump -Fc -Z zstd:3",
                                   "-Fc -Z zstd:3", "pg_dump-Fc-zstd.dump"))
        cases.append(dump_case("dump/all/pg_dump-Fc-Z0", "pg_dump -Fc -Z0", "-Fc -Z0",
                               "pg_dump-Fc-Z0.dump"))
        if ctx.bins.get("zstd"):
            cases.append(dump_case("dump/all/pg_dump-Fc-Z0-zstd3", "pg_dump -Fc -Z0 | zstd -3",
                                   "-Fc -Z0", "pg_dump-Fc-Z0.dump.zst",
                                   pipe=f"{_q(ctx.bins['zstd'])} -3 -q -c"))
        cases.append(dump_case("dump/all/pg_dump-Fd-j2", "pg_dump -Fd -j2 (gzip -6)",
                               "-Fd -j2", "pg_dump-Fd.dir"))
    if ctx.bins.get("pg_restore") and ctx.bins.get("pg_dump"):
        for j in (1, 2):
            cases.append(Case(
                f"restore/all/pg_restore-j{j}", "restore", "all",
                f"pg_restore -j{j} (from pg_dump -Fc)",
                prepare=_ensure_peer_archive, before=fresh_restore_db, after=check_restored,
                command=lambda c, j=j: (f"{_q(c.bins['pg_restore'])} -d "
                                        f"{_q(c.dsn_for(c.restore_db))} -j{j} "
                                        f"{_q(c.path(PEER_ARCHIVE))}"),
                note="data, then the index of each table"))
    return cases


# --------------------------------------------------------------------------
# Built-in dumpcodec cases: used for any id the external modules do not provide
# --------------------------------------------------------------------------

OUR_ARCHIVE = "dumpcodec-zstd.dcz"   # kept for the restore cases


def ours_decode(ctx: Context, table: str) -> Dict[str, Any]:
    """COPY TO through dumpcodec's pump (large blocks) into its Decoder."""
    import psycopg
    from dumpcodec import copy as codec, pump
    types = datasets.column_types(table)
    secs, n = [], 0
    with psycopg.connect(ctx.dsn, autocommit=True) as conn:
        for _ in range(ctx.rounds):
            n = 0
            dec = codec.Decoder(types)
            t0 = time.perf_counter()

            def write(block: bytes) -> None:
                nonlocal n
                n += len(dec.feed(block))
            pump.copy_out(conn, _copy_to(ctx, table), write)
            dec.close()
            secs.append(time.perf_counter() - t0)
    return {"seconds": secs, "rows": n, "impl": codec.IMPL, "pump": pump.PUMP}


def ours_encode(ctx: Context, table: str, batch: int = 10_000,
                json_ready: bool = False) -> Dict[str, Any]:
    """The same Python rows as the peers, through dumpcodec's Encoder and pump.

    jsonb values are serialised inside the timed part (as psycopg and asyncpg do
    internally), unless ``json_ready``: then they are text beforehand, which is
    the codec's own speed on its native values.
    """
    import psycopg
    from dumpcodec import copy as codec, pump
    rows = fetch_rows(ctx, table)
    if json_ready:
        gc.disable()
        rows = list(jsonb_as_text(rows, table))
        gc.freeze()
        gc.enable()
    types = datasets.column_types(table)
    target = ctx.qualified(_load_table(table))
    secs = []
    with psycopg.connect(ctx.dsn) as conn:
        for _ in range(ctx.rounds):
            reset_load_table(ctx, table)
            t0 = time.perf_counter()
            enc = codec.Encoder(types)
            source = rows if json_ready else jsonb_as_text(rows, table)
            it = iter(source)
            with pump.CopyIn(conn, f"COPY {target} FROM STDIN (FORMAT binary)") as cp:
                cp.write(enc.header())
                while True:
                    chunk = list(itertools.islice(it, batch))
                    if not chunk:
                        break
                    cp.write(enc.encode(chunk))
                cp.write(enc.trailer())
            conn.commit()
            secs.append(time.perf_counter() - t0)
    _check_loaded(ctx, table, len(rows))
    return {"seconds": secs, "rows": len(rows), "impl": codec.IMPL}


def _offline_bytes(ctx: Context, table: str) -> bytes:
    import psycopg
    from dumpcodec import pump
    blocks: List[bytes] = []
    with psycopg.connect(ctx.dsn, autocommit=True) as conn:
        pump.copy_out(conn, _copy_to(ctx, table), blocks.append)
    return b"".join(blocks)


def ours_offline_decode(ctx: Context, table: str, piece: int = 1 << 20) -> Dict[str, Any]:
    """Decode a COPY stream already in memory, fed in 1 MiB pieces, rows dropped."""
    from dumpcodec import copy as codec
    data = _offline_bytes(ctx, table)
    view = memoryview(data)
    types = datasets.column_types(table)
    secs, n = [], 0
    for _ in range(ctx.rounds):
        n = 0
        t0 = time.perf_counter()
        dec = codec.Decoder(types)
        for i in range(0, len(data), piece):
            n += len(dec.feed(view[i:i + piece]))
        dec.close()
        secs.append(time.perf_counter() - t0)
    return {"seconds": secs, "rows": n, "bytes": len(data), "impl": codec.IMPL}


def ours_scanner(ctx: Context, table: str) -> Dict[str, Any]:
    """The framing scanner over a COPY stream in memory (counts rows, no values)."""
    from dumpcodec import copy as codec
    data = _offline_bytes(ctx, table)
    counted = []

    def once() -> None:
        sc = codec.Scanner()
        counted.append(sc.feed(data))
        sc.close()
    secs = _repeat_timed(once, ctx.rounds)
    return {"seconds": secs, "rows": counted[-1], "bytes": len(data), "impl": codec.IMPL}


def peer_psycopg_offline_decode(ctx: Context, table: str,
                                json_text: bool = False) -> Dict[str, Any]:
    """psycopg's own row parser over the same bytes, one call per row as psycopg does.

    psycopg has no public offline decoder: its Copy hands each server message (one
    row) to ``parse_row_binary`` with a Transformer set to the column types.  The
    row boundaries are found beforehand (untimed), so only psycopg's work is timed.
    """
    import struct
    import psycopg
    from psycopg import adapt
    try:
        from psycopg._copy_base import parse_row_binary
    except ImportError as exc:  # the internal moved: report, do not guess
        raise RuntimeError(f"psycopg internals changed: {exc}") from None
    data = _offline_bytes(ctx, table)
    # cut the stream into per-row slices (what the server sends as one message each)
    pieces, pos = [], 19 + struct.unpack_from("!i", data, 15)[0]   # past the header
    while True:
        (nf,) = struct.unpack_from("!h", data, pos)
        if nf == -1:
            break
        start = pos
        pos += 2
        for _ in range(nf):
            (ln,) = struct.unpack_from("!i", data, pos)
            pos += 4 + max(ln, 0)
        pieces.append(data[start:pos])
    with psycopg.connect(ctx.dsn, autocommit=True) as conn:
        if json_text:
            import psycopg.types.json
            psycopg.types.json.set_json_loads(lambda b: bytes(b).decode(), conn)
        tx = adapt.Transformer(conn)
        oids = [conn.adapters.types[t].oid for t in datasets.short_types(table)]
        tx.set_loader_types(oids, psycopg.pq.Format.BINARY)
        secs, n = [], 0
        for _ in range(ctx.rounds):
            n = 0
            t0 = time.perf_counter()
            for p in pieces:
                parse_row_binary(p, tx)
                n += 1
            secs.append(time.perf_counter() - t0)
    return {"seconds": secs, "rows": n, "bytes": len(data), "impl": psycopg.pq.__impl__}


def ours_dump(ctx: Context, out: str, backend: str = "zstd", level: Optional[int] = None,
              jobs: int = 1) -> Dict[str, Any]:
    """``create_dump`` of all benchmark tables into one archive file."""
    from dumpcodec.dump import create_dump
    sels = [ctx.qualified(t) for t in ctx.tables]
    path = ctx.path(out)
    secs, summary = [], None
    for _ in range(ctx.rounds):
        _remove(path)
        t0 = time.perf_counter()
        summary = create_dump(ctx.dsn, sels, path, backend=backend, level=level, jobs=jobs)
        secs.append(time.perf_counter() - t0)
    size = os.path.getsize(path)
    if out != OUR_ARCHIVE:
        _remove(path)
    return {"seconds": secs, "size_bytes": size, "rows": summary.rows,
            "bytes": summary.nbytes, "pump": summary.pump}


def ours_restore(ctx: Context, jobs: int = 1, analyze: bool = False) -> Dict[str, Any]:
    """``restore_dump`` of the zstd archive into a fresh database per round (without
    ANALYZE by default: the same work as pg_restore)."""
    from dumpcodec.dump import create_dump
    from dumpcodec.restore import restore_dump
    path = ctx.path(OUR_ARCHIVE)
    if not os.path.exists(path):  # the dump cases did not run: make it (untimed)
        create_dump(ctx.dsn, [ctx.qualified(t) for t in ctx.tables], path)
    secs, summary = [], None
    for _ in range(ctx.rounds):
        target = fresh_restore_db(ctx)
        t0 = time.perf_counter()
        summary = restore_dump(target, path, jobs=jobs, analyze=analyze)
        secs.append(time.perf_counter() - t0)
        if summary.failed:
            raise RuntimeError(f"restore failed for {summary.failed}")
        check_restored(ctx)
    drop_restore_db(ctx)
    return {"seconds": secs, "rows": summary.rows, "bytes": summary.nbytes,
            "size_bytes": os.path.getsize(path)}


def builtin_cases(ctx: Context) -> List[Case]:
    """dumpcodec's side of every comparison, on its public API."""
    cases: List[Case] = []
    for t in ctx.tables:
        cases.append(Case(f"decode/{t}/dumpcodec", "decode", t, "dumpcodec Decoder + pump",
                          ours=True, primary=True, func="benchmarks.run:ours_decode",
                          params={"table": t}))
        cases.append(Case(f"encode/{t}/dumpcodec", "encode", t, "dumpcodec Encoder + pump",
                          ours=True, primary=True, func="benchmarks.run:ours_encode",
                          params={"table": t}, prepare=prepare_load_tables))
        if any(c.short == "jsonb" for c in datasets.COLUMNS[t]):
            cases.append(Case(f"encode/{t}/dumpcodec-jsontext", "encode", t,
                              "dumpcodec Encoder + pump (jsonb already text)", ours=True,
                              func="benchmarks.run:ours_encode",
                              params={"table": t, "json_ready": True},
                              prepare=prepare_load_tables,
                              note="the codec on its native values: no json.dumps timed"))
        cases.append(Case(f"decode-offline/{t}/dumpcodec", "decode-offline", t,
                          "dumpcodec Decoder (bytes in memory)", ours=True, primary=True,
                          func="benchmarks.run:ours_offline_decode", params={"table": t}))
        cases.append(Case(f"scan/{t}/dumpcodec-scanner", "scan", t,
                          "dumpcodec Scanner (framing only)", ours=True, primary=True,
                          func="benchmarks.run:ours_scanner", params={"table": t}))
        cases.append(Case(f"decode-offline/{t}/psycopg", "decode-offline", t,
                          "psycopg parse_row_binary (bytes in memory)",
                          func="benchmarks.run:peer_psycopg_offline_decode",
                          params={"table": t},
                          note="psycopg's internal per-row parser; rows pre-split, untimed"))
        if any(c.short == "jsonb" for c in datasets.COLUMNS[t]):
            cases.append(Case(f"decode-offline/{t}/psycopg-jsontext", "decode-offline", t,
                              "psycopg parse_row_binary (jsonb as text)",
                              func="benchmarks.run:peer_psycopg_offline_decode",
                              params={"table": t, "json_text": True}))
    dumps = [("dumpcodec-zstd", "dumpcodec create (zstd -3)", "zstd", 3, 1, OUR_ARCHIVE),
             ("dumpcodec-zstd-j2", "dumpcodec create -j2 (zstd -3)", "zstd", 3, 2,
              "dumpcodec-zstd-j2.dcz"),
             ("dumpcodec-none", "dumpcodec create (no compression)", "tar", None, 1,
              "dumpcodec-none.dcz")]
    if ctx.extra:
        dumps += [("dumpcodec-zstd1", "dumpcodec create (zstd -1)", "zstd", 1, 1,
                   "dumpcodec-zstd1.dcz"),
                  ("dumpcodec-gzip", "dumpcodec create (gzip -6)", "gzip", 6, 1,
                   "dumpcodec-gzip.dcz")]
    for cid, tool, backend, level, jobs, out in dumps:
        cases.append(Case(f"dump/all/{cid}", "dump", "all", tool, ours=True,
                          primary=cid == "dumpcodec-zstd", func="benchmarks.run:ours_dump",
                          params={"out": out, "backend": backend, "level": level,
                                  "jobs": jobs}))
    for j in (1, 2):
        cases.append(Case(f"restore/all/dumpcodec-j{j}-noanalyze", "restore", "all",
                          f"dumpcodec load -j{j} --no-analyze (zstd archive)", ours=True,
                          primary=j == 1, func="benchmarks.run:ours_restore",
                          params={"jobs": j},
                          note="without ANALYZE, like pg_restore"))
    return cases


#: which dumpcodec case a peer is compared with, when not the group's primary
COMPARE_TO = {
    "dump/all/pg_dump-Fc-Z0": "dump/all/dumpcodec-none",
    "dump/all/pg_dump-Fd-j2": "dump/all/dumpcodec-zstd-j2",
    "restore/all/pg_restore-j2": "restore/all/dumpcodec-j2-noanalyze",
}


# --------------------------------------------------------------------------
# Suites: the codec's and the dump's own benchmark modules
# --------------------------------------------------------------------------
#
# benchmarks/bench_codec.py (codec work) exposes bench_offline_decode, bench_e2e_decode,
# bench_encode and bench_scan(rep, ...), each measuring dumpcodec and its peers and
# reporting through ``Report.add(group, table, who, seconds, rows, nbytes, base)``:
# the runner calls them in a child interpreter per (table, part) with a Report that
# captures instead of printing.  benchmarks/bench_dump.py (dump work) has only a
# main() with ``--json FILE``: the runner runs it as a subprocess on the same server,
# database and sizes, and maps its JSON.  A suite that succeeds owns its groups for
# that table: the runner's own cases there are then skipped (they are the fallback
# when a suite is missing or fails, and are what ``--no-suites`` measures).

_CODEC_PARTS = {"decode": ("decode-offline", "decode-gc-off"),
                "e2e": ("decode", "decode-streamed"),
                "encode": ("encode-offline", "encode"), "scan": ("scan",)}
_CODEC_GROUP = {"decode offline": "decode-offline", "decode gc off": "decode-gc-off",
                "decode e2e": "decode", "decode e2e streamed": "decode-streamed",
                "encode offline": "encode-offline", "encode+load": "encode", "scan": "scan"}


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def _codec_id(group: str, table: str, who: str) -> Tuple[str, bool, bool]:
    """(id suffix, ours, primary) for a bench_codec result line."""
    w = who.lower()
    has_json = any(c.short == "jsonb" for c in datasets.COLUMNS.get(table, []))
    if w.startswith("dumpcodec c"):
        return ("dumpcodec-scanner" if group == "scan" else "dumpcodec"), True, True
    if w.startswith("dumpcodec pure python"):
        return ("dumpcodec-scanner-python" if group == "scan" else "dumpcodec-python"), \
            True, False
    if w.startswith("psycopg"):
        if "alone" in w:
            return _slug(who.replace("psycopg", "", 1)).join(("psycopg-", "")), False, False
        if "jsonb str" in w and has_json:
            return "psycopg-jsontext", False, False
        return "psycopg", False, False
    for prefix, suffix in (("asyncpg", "asyncpg"), ("pgcopy", "pgcopy"),
                           ("server ingest", "server-ingest"), ("bytes copy", "memcpy")):
        if w.startswith(prefix):
            return suffix, False, False
    return _slug(who), w.startswith("dumpcodec"), False


def suite_bench_codec(ctx: Context, table: str, part: str) -> Dict[str, Any]:
    """Run one part of bench_codec.py on the runner's table; return its result lines."""
    import psycopg
    from benchmarks import bench_codec as bc
    bc.SCHEMA = ctx.schema            # measure the runner's tables, not its own copy
    captured: List[Dict[str, Any]] = []

    class Capture(bc.Report):
        def add(self, group, table_, who, secs, rows, nbytes, base=None):  # noqa: D401
            captured.append({"group": group, "table": table_, "who": who,
                             "seconds": secs, "rows": rows, "nbytes": nbytes})
            return rows / secs if secs > 0 else float("inf")

    rep = Capture()
    types = datasets.short_types(table)
    with psycopg.connect(ctx.dsn, autocommit=True) as conn:
        data = bc.fetch_copy(conn, table)
        if part == "decode":
            bc.bench_offline_decode(rep, conn, table, data, types, ctx.rounds)
    if part == "e2e":
        bc.bench_e2e_decode(rep, ctx.dsn, table, len(data), types, ctx.rounds)
    elif part == "encode":
        bc.bench_encode(rep, ctx.dsn, table, data, types, ctx.rounds)
    elif part == "scan":
        bc.bench_scan(rep, table, data, ctx.rows(table), ctx.rounds)
    return {"results": captured}


def run_codec_suite(ctx: Context, table: str, part: str,
                    timeout: float) -> Tuple[List[Dict[str, Any]], Optional[str]]:
    case = Case(f"suite/{table}/bench_codec-{part}", "suite", table, "bench_codec",
                func="benchmarks.run:suite_bench_codec", params={"table": table, "part": part})
    raw = run_case(ctx, case, timeout)
    if "error" in raw:
        return [], f"bench_codec {part} on {table}: {raw['error']}"
    out, seen = [], set()
    for line in raw.get("results") or []:
        group = _CODEC_GROUP.get(line["group"], _slug(line["group"]))
        suffix, ours, primary = _codec_id(group, table, line["who"])
        rid = f"{group}/{table}/{suffix}"
        while rid in seen:
            rid += "+"
        seen.add(rid)
        secs = float(line["seconds"])
        rec = {"id": rid, "group": group, "table": table, "tool": line["who"], "ours": ours,
               "primary": primary, "seconds": [secs], "median_s": secs,
               "rows": line["rows"], "bytes": line["nbytes"], "source": "bench_codec.py",
               "note": f"bench_codec.py, median of {ctx.rounds}; peak RSS not per tool "
                       "(one process)"}
        if secs > 0:
            rec["rows_per_s"] = line["rows"] / secs
            rec["mb_per_s"] = line["nbytes"] / secs / MB
        out.append(rec)
    # the time the whole part took, with its child's peak memory, for the record
    return out, None


_DUMP_NAMES = {
    "dumpcodec zstd": ("dumpcodec-zstd", "dumpcodec create (zstd -3)"),
    "dumpcodec zstd -j2": ("dumpcodec-zstd-j2", "dumpcodec create -j2 (zstd -3)"),
    "dumpcodec gzip": ("dumpcodec-gzip", "dumpcodec create --compress gzip (-6)"),
    "dumpcodec none": ("dumpcodec-none", "dumpcodec create --compress none"),
    "pg_dump -Fc": ("pg_dump-Fc", "pg_dump -Fc (gzip -6)"),
    "pg_dump -Fc -Z0": ("pg_dump-Fc-Z0", "pg_dump -Fc -Z0"),
    "pg_dump -Fd -j2": ("pg_dump-Fd-j2", "pg_dump -Fd -j2 (gzip -6)"),
    "pg_dump -Fc -Z zstd": ("pg_dump-Fc-zstd", "pg_dump -Fc -Z zstd"),
    "pg_dump -Fc -Z0 | zstd -3": ("pg_dump-Fc-Z0-zstd3", "pg_dump -Fc -Z0 | zstd -3"),
    "dumpcodec load -j1 --no-analyze": ("dumpcodec-j1-noanalyze",
                                        "dumpcodec load -j1 --no-analyze (zstd archive)"),
    "dumpcodec load -j2 --no-analyze": ("dumpcodec-j2-noanalyze",
                                        "dumpcodec load -j2 --no-analyze (zstd archive)"),
    "dumpcodec load -j1": ("dumpcodec-j1", "dumpcodec load -j1 (zstd archive, ANALYZE)"),
    "dumpcodec load -j2": ("dumpcodec-j2", "dumpcodec load -j2 (zstd archive, ANALYZE)"),
    "pg_restore -j1": ("pg_restore-j1", "pg_restore -j1 (pg_dump -Fc archive)"),
    "pg_restore -j2": ("pg_restore-j2", "pg_restore -j2 (pg_dump -Fc archive)"),
}


def run_dump_suite(ctx: Context, groups: Sequence[str],
                   timeout: float) -> Tuple[List[Dict[str, Any]], Optional[str]]:
    """bench_dump.run() on the runner's server, database and sizes; its results mapped.

    Every case there is a command timed (and its memory taken) from outside, so it
    runs in this process."""
    import psycopg.conninfo
    from benchmarks import bench_dump
    only = None
    if "dump" not in groups:
        only = "restore"
    elif "restore" not in groups:
        only = "dump"
    # same database, hence the same (cached) tables: it creates none of its own
    dbname = psycopg.conninfo.conninfo_to_dict(ctx.dsn).get("dbname") or ""
    try:
        data = bench_dump.run(ctx.admin_dsn,
                              mixed=ctx.stats.get("mixed", {}).get("rows", 0),
                              narrow=ctx.stats.get("narrow", {}).get("rows", 0),
                              rounds=ctx.rounds, workdir=ctx.path("bench_dump"),
                              bindir=os.path.dirname(ctx.bins["pg_dump"] or "") or None,
                              only=only, dbname=dbname, timeout=timeout)
    except Exception as exc:
        return [], f"bench_dump.run failed: {type(exc).__name__}: {str(exc)[-500:]}"
    finally:
        _remove(ctx.path("bench_dump"))
    out = []
    for kind in ("dump", "restore"):
        for name, r in (data.get(kind) or {}).items():
            m_srv = re.match(r"server limit: \\copy (\w+)", name)
            if m_srv:
                table, rid = m_srv.group(1), f"server/{m_srv.group(1)}/psql-copy-out"
                group, tool = "server", "server COPY TO (psql \\copy to /dev/null)"
            else:
                suffix, tool = _DUMP_NAMES.get(name, (_slug(name), name))
                table, group, rid = "all", kind, f"{kind}/all/{suffix}"
            secs = list(r.get("all") or [r["seconds"]])
            rec = {"id": rid, "group": group, "table": table, "tool": tool,
                   "ours": name.startswith("dumpcodec"),
                   "primary": rid in ("dump/all/dumpcodec-zstd",
                                      "restore/all/dumpcodec-j1-noanalyze"),
                   "seconds": secs, "median_s": float(r["seconds"]),
                   "rows": ctx.rows(table), "bytes": ctx.copy_bytes(table),
                   "source": "bench_dump.py", "command": r.get("cmd"),
                   "note": "bench_dump.py: the command timed from outside (CLI start-up "
                           "included)"}
            if r.get("bytes"):
                rec["size_bytes"] = int(r["bytes"])
            if r.get("peak_rss"):
                rec["peak_rss_mb"] = r["peak_rss"] / 2**20
            if rec["median_s"] > 0:
                rec["rows_per_s"] = rec["rows"] / rec["median_s"]
                rec["mb_per_s"] = rec["bytes"] / rec["median_s"] / MB
            out.append(rec)
    return out, None


# --------------------------------------------------------------------------
# Targets (issues 3 and 6) and ratios
# --------------------------------------------------------------------------

@dataclass
class Target:
    issue: int
    name: str
    ours: str        # case id, or a list of candidates (first present wins)
    peer: str
    goal: float      # minimum of the ratio (speed: peer_time / our_time)
    kind: str = "speed"   # speed | size (peer_size / our_size) | rss_mb (absolute)


TARGETS: List[Target] = [
    Target(3, "decode end to end, mixed: >= 3x psycopg (default: jsonb to dict)",
           "decode/mixed/dumpcodec", "decode/mixed/psycopg", 3.0),
    Target(3, "decode end to end, mixed: >= 3x psycopg with jsonb as text (like for like)",
           "decode/mixed/dumpcodec", "decode/mixed/psycopg-jsontext", 3.0),
    Target(3, "decode end to end, narrow: >= 3x psycopg",
           "decode/narrow/dumpcodec", "decode/narrow/psycopg", 3.0),
    Target(3, "decode end to end streamed (rows not kept), mixed: >= 3x psycopg, jsonb as "
           "text", "decode-streamed/mixed/dumpcodec", "decode-streamed/mixed/psycopg-jsontext",
           3.0),
    Target(3, "decode end to end streamed (rows not kept), narrow: >= 3x psycopg",
           "decode-streamed/narrow/dumpcodec", "decode-streamed/narrow/psycopg", 3.0),
    Target(3, "decode offline, mixed: >= 3x psycopg (default: jsonb to dict)",
           "decode-offline/mixed/dumpcodec", "decode-offline/mixed/psycopg", 3.0),
    Target(3, "decode offline, mixed: >= 3x psycopg with jsonb as text (like for like)",
           "decode-offline/mixed/dumpcodec", "decode-offline/mixed/psycopg-jsontext", 3.0),
    Target(3, "decode offline, narrow: >= 3x psycopg",
           "decode-offline/narrow/dumpcodec", "decode-offline/narrow/psycopg", 3.0),
    Target(3, "encode+load, mixed: >= 2x psycopg write_row", "encode/mixed/dumpcodec",
           "encode/mixed/psycopg", 2.0),
    Target(3, "encode+load, narrow: >= 0.95x the server's ingest limit",
           "encode/narrow/dumpcodec", "encode/narrow/server-ingest|server/narrow/psql-copy-in",
           0.95),
    Target(3, "scanner, mixed: within 2x of a memory copy", "scan/mixed/dumpcodec-scanner",
           "scan/mixed/memcpy", 0.5),
    Target(3, "scanner, narrow: within 2x of a memory copy", "scan/narrow/dumpcodec-scanner",
           "scan/narrow/memcpy", 0.5),
    Target(6, "dump zstd: >= 4x faster than pg_dump -Fc", "dump/all/dumpcodec-zstd",
           "dump/all/pg_dump-Fc", 4.0),
    Target(6, "dump zstd: size <= pg_dump -Fc", "dump/all/dumpcodec-zstd",
           "dump/all/pg_dump-Fc", 1.0, kind="size"),
    Target(6, "dump zstd: no slower than pg_dump -Fc -Z0 | zstd -3", "dump/all/dumpcodec-zstd",
           "dump/all/pg_dump-Fc-Z0-zstd3", 1.0),
    Target(6, "dump uncompressed: within 1.1x of pg_dump -Fc -Z0", "dump/all/dumpcodec-none",
           "dump/all/pg_dump-Fc-Z0", 1 / 1.1),
    Target(6, "restore -j1: faster than pg_restore -j1 (both without ANALYZE)",
           "restore/all/dumpcodec-j1-noanalyze|restore/all/dumpcodec-j1",
           "restore/all/pg_restore-j1", 1.0),
    Target(6, "restore -j2: faster than pg_restore -j2 (both without ANALYZE)",
           "restore/all/dumpcodec-j2-noanalyze|restore/all/dumpcodec-j2",
           "restore/all/pg_restore-j2", 1.0),
    Target(6, "restore -j1 with ANALYZE (our default): faster than pg_restore -j1",
           "restore/all/dumpcodec-j1", "restore/all/pg_restore-j1", 1.0),
    Target(6, "dump peak client RSS < 200 MB", "dump/all/dumpcodec-zstd", "", 200.0,
           kind="rss_mb"),
    Target(6, "restore peak client RSS < 200 MB", "restore/all/dumpcodec-j1|"
           "restore/all/dumpcodec-j1-noanalyze", "", 200.0,
           kind="rss_mb"),
]


def _speed(r: Dict[str, Any]) -> Optional[float]:
    """Work per second: MB/s when bytes are known, else 1/time."""
    if r.get("mb_per_s"):
        return r["mb_per_s"]
    if r.get("median_s"):
        return 1.0 / r["median_s"]
    return None


def evaluate_targets(results: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
    by_id = {r["id"]: r for r in results if "error" not in r and r.get("median_s")}

    def pick(spec: str) -> Tuple[str, Optional[Dict[str, Any]]]:
        """``a|b``: the first of the candidate ids that was measured."""
        cands = [c for c in spec.split("|") if c]
        for c in cands:
            if c in by_id:
                return c, by_id[c]
        return (cands[0] if cands else ""), None

    out = []
    for t in TARGETS:
        ours_id, ours = pick(t.ours)
        peer_id, peer = pick(t.peer)
        rec: Dict[str, Any] = {"issue": t.issue, "target": t.name, "ours": ours_id,
                               "peer": peer_id or None, "goal": t.goal, "kind": t.kind}
        if ours is None or (t.peer and peer is None):
            rec["status"] = "not measured"
            rec["missing"] = [x for x, r in ((ours_id, ours), (peer_id, peer))
                              if x and r is None]
            out.append(rec)
            continue
        if t.kind == "speed":
            ratio = _speed(ours) / _speed(peer) if _speed(ours) and _speed(peer) else None
            if ours.get("mb_per_s") is None or peer.get("mb_per_s") is None:
                ratio = peer["median_s"] / ours["median_s"]
        elif t.kind == "size":
            ratio = (peer.get("size_bytes") or 0) / ours["size_bytes"] \
                if ours.get("size_bytes") else None
        else:
            ratio = ours.get("peak_rss_mb")
        rec["value"] = ratio
        if ratio is None:
            rec["status"] = "not measured"
        elif t.kind == "rss_mb":
            rec["status"] = "met" if ratio < t.goal else "not met"
        else:
            rec["status"] = "met" if ratio >= t.goal else "not met"
        out.append(rec)
    return out


def add_ratios(results: List[Dict[str, Any]]) -> None:
    """Each result gets ``vs_dumpcodec``: the primary dumpcodec case's speed over its own.

    Above 1 means dumpcodec is that many times faster than this row's tool on the
    same work (same group and table).
    """
    primaries = {(r["group"], r["table"]): r for r in results
                 if r.get("primary") and "error" not in r and r.get("median_s")}
    by_id = {r["id"]: r for r in results if "error" not in r and r.get("median_s")}
    for r in results:
        p = by_id.get(COMPARE_TO.get(r["id"], "")) or primaries.get((r["group"], r["table"]))
        if p is None or r.get("ours") or "error" in r or not r.get("median_s"):
            continue
        if r.get("mb_per_s") and p.get("mb_per_s"):
            r["vs_dumpcodec"] = p["mb_per_s"] / r["mb_per_s"]
        else:
            r["vs_dumpcodec"] = r["median_s"] / p["median_s"]
        if r.get("size_bytes") and p.get("size_bytes"):
            r["size_vs_dumpcodec"] = r["size_bytes"] / p["size_bytes"]
        r["compared_with"] = p["id"]


# --------------------------------------------------------------------------
# Environment
# --------------------------------------------------------------------------

def _cmd_out(argv: Sequence[str]) -> str:
    try:
        return subprocess.run(list(argv), capture_output=True, text=True,
                              timeout=20).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def _version_of(module: str) -> Optional[str]:
    try:
        from importlib.metadata import version
        return version(module)
    except Exception:
        return None


def _cli_startup() -> Optional[float]:
    """Median seconds for a fresh interpreter to import what ``dumpcodec create`` uses."""
    code = "import dumpcodec.cli, dumpcodec.dump, dumpcodec.restore, dumpcodec.archive"
    secs = []
    for _ in range(3):
        t0 = time.perf_counter()
        r = subprocess.run([sys.executable, "-c", code], env=_child_env(),
                           capture_output=True)
        if r.returncode != 0:
            return None
        secs.append(time.perf_counter() - t0)
    return statistics.median(secs)


def machine_info() -> Dict[str, Any]:
    mem_kb = 0
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    mem_kb = int(line.split()[1])
    except OSError:
        pass
    lscpu = _cmd_out(["lscpu"])
    model = next((ln.split(":", 1)[1].strip() for ln in lscpu.splitlines()
                  if ln.startswith("Model name")), platform.processor())
    return {
        "host": socket.gethostname(), "nproc": os.cpu_count(), "cpu": model,
        "lscpu_head": "\n".join(lscpu.splitlines()[:10]),
        "memory_gb": round(mem_kb / 1024 / 1024, 1), "os": platform.platform(),
        "python": platform.python_version(), "loadavg_start": list(os.getloadavg()),
    }


def find_tools(server_major: int, embedded: bool) -> Dict[str, Optional[str]]:
    """psql, pg_dump and pg_restore able to talk to a server of ``server_major``.

    pg_dump refuses servers newer than itself, so the candidates are tried in
    order: the embedded server's own binaries, the versioned Debian directory,
    then PATH; the first whose major version is at least the server's wins.
    """
    from dumpcodec.embedded import embedded_bin
    out: Dict[str, Optional[str]] = {}
    for name in ("pg_dump", "pg_restore", "psql"):
        candidates = []
        if embedded:
            candidates.append(embedded_bin(name))
        candidates.append(f"/usr/lib/postgresql/{server_major}/bin/{name}")
        candidates.append(shutil.which(name))
        if not embedded:
            candidates.append(embedded_bin(name))
        chosen = None
        for c in candidates:
            if not c or not os.path.exists(c):
                continue
            m = re.search(r"(\d+)(?:\.\d+)?", _cmd_out([c, "--version"]))
            if m and int(m.group(1)) >= server_major:
                chosen = c
                break
        out[name] = chosen
    out["zstd"] = shutil.which("zstd")
    return out


def pg_dump_has_zstd(pg_dump: Optional[str], dsn: str) -> bool:
    """Whether this pg_dump was built with zstd (16+ only, and optional there)."""
    if not pg_dump:
        return False
    r = subprocess.run([pg_dump, "-d", dsn, "-Fc", "-Z", "zstd:1", "--schema-only",
                        "-t", "pg_catalog.pg_class", "-f", os.devnull],
                       capture_output=True, text=True)
    return r.returncode == 0


# --------------------------------------------------------------------------
# Output: JSON, Markdown, plots
# --------------------------------------------------------------------------

def _fmt_rate(v: Optional[float]) -> str:
    if v is None:
        return ""
    if v >= 1e6:
        return f"{v / 1e6:.2f} M"
    if v >= 1e3:
        return f"{v / 1e3:.0f} k"
    return f"{v:.0f}"


def _fmt_secs(v: Optional[float]) -> str:
    if v is None:
        return ""
    return f"{v:.3f}" if v >= 0.01 else f"{v:.2g}"


def _spread(secs: Optional[List[float]]) -> str:
    """min-max of a case's rounds (the noise a ratio has to stand out of)."""
    if not secs or len(secs) < 2:
        return ""
    return f"{_fmt_secs(min(secs))}-{_fmt_secs(max(secs))}"


def _fmt(v: Optional[float], spec: str = ".2f") -> str:
    return "" if v is None else format(v, spec)


GROUP_TITLES = {
    "server": "Server limits (raw binary COPY, no decoding)",
    "decode": "Decode: binary COPY TO into Python rows (end to end, all rows kept)",
    "decode-streamed": "Decode streamed: binary COPY TO, each row looked at and dropped",
    "decode-offline": "Decode offline: a COPY BINARY stream in memory into Python rows",
    "decode-gc-off": "Decode offline with the garbage collector off (the decoding alone)",
    "encode": "Encode + load: Python rows into the server (binary COPY FROM)",
    "encode-offline": "Encode offline: Python rows into COPY BINARY bytes in memory",
    "scan": "Scanner (framing only, no values) against a memory copy",
    "dump": "Dump: both tables into one archive",
    "restore": "Restore: archive into a fresh database (data and indexes)",
    "many-tables": "Many tables: 1,000 tables of 100 rows, 10,000 empty tables "
                   "(benchmarks/bench_many_tables.py)",
}


def to_markdown(doc: Dict[str, Any]) -> str:
    meta, ds = doc["meta"], doc["datasets"]
    lines = [f"# dumpcodec benchmarks, {meta['date']} on {meta['machine']['host']}", ""]
    m = meta["machine"]
    lines += [
        f"- Machine: {m['nproc']} cores ({m['cpu']}), {m['memory_gb']} GB RAM, {m['os']}; "
        f"load average at start {', '.join(f'{x:.2f}' for x in m['loadavg_start'])}",
        f"- PostgreSQL {meta['server_version']} ({meta['server']}); pg_dump: "
        f"{meta['tools'].get('pg_dump_version') or 'n/a'}; zstd CLI: "
        f"{meta['tools'].get('zstd_version') or 'n/a'}",
        f"- Python {m['python']}; dumpcodec {meta['dumpcodec']} (codec: {meta['codec_impl']}); "
        + ", ".join(f"{k} {v}" for k, v in meta["peers"].items() if v),
        "- Data: " + "; ".join(
            f"`{t}` {d['rows']:,} rows, {d['copy_bytes'] / MB:.0f} MB of binary COPY, "
            f"{d['disk_bytes'] / MB:.0f} MB on disk" for t, d in ds.items()),
        (f"- The codec groups (decode, encode) use the first "
         f"{meta.get('codec_share', 1):.0%} of each table's rows ("
         + "; ".join(f"`{t}` {d['rows']:,} rows, {d['copy_bytes'] / MB:.0f} MB"
                     for t, d in (doc.get("datasets_codec") or {}).items())
         + "); the scanner (and its memory-copy reference), server limits, dump and "
           "restore the whole tables"
         if meta.get("codec_share", 1) < 1 else
         "- Every group uses the whole tables"),
        f"- {meta['rounds']} round(s) per case, median and min-max shown; memory is the peak RSS of "
        f"the client process (from the OS).",
        f"- Command: `{meta['command']}`",
        "",
    ]
    results = doc["results"]
    primary_of = {(r["group"], r["table"]): r["id"] for r in results if r.get("primary")}
    lines += ["Last column: dumpcodec's throughput over this tool's on the same work "
              "(above 1: dumpcodec is faster), and its archive size over this tool's "
              "(below 1: smaller); against the group's main dumpcodec case unless named.",
              ""]
    for group in GROUPS:
        rows = [r for r in results if r["group"] == group]
        if not rows:
            continue
        lines += [f"## {GROUP_TITLES[group]}", "",
                  "| tool | table | median s | min-max s | rows/s | MB/s | size MB "
                  "| peak RSS MB | dumpcodec vs this |",
                  "|---|---|--:|--:|--:|--:|--:|--:|--:|"]
        for r in rows:
            tool = r["tool"].replace("|", "\\|")
            name = f"**{tool}**" if r.get("ours") else tool
            if "error" in r:
                lines.append(f"| {name} | {r['table']} | error: {r['error'][:120]} "
                             "| | | | | | |")
                continue
            rel = ""
            if r.get("vs_dumpcodec"):
                rel = f"{r['vs_dumpcodec']:.2f}x speed"
                if r.get("size_vs_dumpcodec"):
                    rel += f", {1 / r['size_vs_dumpcodec']:.2f}x size"
                p = primary_of.get((r["group"], r["table"]))
                if r.get("compared_with") and r["compared_with"] != p:
                    rel += f" (vs {r['compared_with'].rsplit('/', 1)[1]})"
            lines.append(
                f"| {name} | {r['table']} | {_fmt_secs(r.get('median_s'))} | "
                f"{_spread(r.get('seconds'))} | {_fmt_rate(r.get('rows_per_s'))} | {_fmt(r.get('mb_per_s'), '.0f')} | "
                f"{_fmt((r.get('size_bytes') or 0) / MB if r.get('size_bytes') else None, '.1f')}"
                f" | {_fmt(r.get('peak_rss_mb'), '.0f')} | {rel} |")
        lines.append("")
    lines += ["## Targets (issues 3 and 6)", "",
              "| issue | target | measured | goal | status |", "|---|---|--:|--:|---|"]
    for t in doc["targets"]:
        if t["kind"] == "rss_mb":
            val = f"{t['value']:.0f} MB" if t.get("value") is not None else ""
            goal = f"< {t['goal']:.0f} MB"
        else:
            val = f"{t['value']:.2f}x" if t.get("value") is not None else ""
            goal = f">= {t['goal']:.2f}x"
        status = t["status"]
        if status == "not measured" and t.get("missing"):
            status += " (" + ", ".join(t["missing"]) + ")"
        target = t["target"].replace("|", "\\|")
        lines.append(f"| {t['issue']} | {target} | {val} | {goal} | {status} |")
    lines.append("")
    if doc.get("notes"):
        lines += ["## Notes", ""] + [f"- {n}" for n in doc["notes"]] + [""]
    return "\n".join(lines)


def plot(doc: Dict[str, Any], stem: Path) -> List[str]:
    """Throughput and archive-size charts as PNG; [] when matplotlib is missing."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return []
    ok = [r for r in doc["results"] if "error" not in r and r.get("median_s")]
    written = []
    groups = [g for g in GROUPS if any(r["group"] == g and r.get("mb_per_s") for r in ok)]
    if groups:
        fig, axes = plt.subplots(len(groups), 1, figsize=(10, 2.2 + 0.45 * len(ok)),
                                 squeeze=False)
        for ax, g in zip(axes[:, 0], groups):
            rs = [r for r in ok if r["group"] == g and r.get("mb_per_s")]
            labels = [f"{r['tool']} [{r['table']}]" for r in rs]
            vals = [r["mb_per_s"] for r in rs]
            colors = ["tab:orange" if r.get("ours") else "tab:blue" for r in rs]
            ax.barh(labels, vals, color=colors)
            ax.invert_yaxis()
            ax.set_title(GROUP_TITLES[g], fontsize=9)
            ax.set_xlabel("MB/s of binary COPY data (higher is better)", fontsize=8)
            ax.tick_params(labelsize=7)
        fig.tight_layout()
        path = str(stem) + "-throughput.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(path)
    sized = [r for r in ok if r.get("size_bytes")]
    if sized:
        fig, ax = plt.subplots(figsize=(9, 1.5 + 0.4 * len(sized)))
        labels = [r["tool"] for r in sized]
        ax.barh(labels, [r["size_bytes"] / MB for r in sized],
                color=["tab:orange" if r.get("ours") else "tab:blue" for r in sized])
        ax.invert_yaxis()
        copy_mb = sum(d["copy_bytes"] for d in doc["datasets"].values()) / MB
        ax.axvline(copy_mb, color="gray", linestyle="--", linewidth=1)
        ax.set_xlabel(f"archive size, MB (dashed: {copy_mb:.0f} MB of binary COPY data)")
        ax.set_title("Archive sizes (smaller is better)", fontsize=9)
        ax.tick_params(labelsize=7)
        fig.tight_layout()
        path = str(stem) + "-sizes.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(path)
    return written


# --------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------

def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Benchmark dumpcodec against psycopg, asyncpg, pgcopy, pg_dump and "
                    "pg_restore on generated tables, side by side in one run.",
        epilog="Examples:\n  python -m benchmarks                 # default sizes, embedded "
               "PostgreSQL 16\n  python -m benchmarks --quick --only decode,encode\n"
               "  python -m benchmarks --dsn postgresql://localhost/bench --plot",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dsn", help="benchmark database (tables go to schema 'bench'); "
                   "default: an embedded PostgreSQL (pgserver)")
    p.add_argument("--pgdata", default=DEFAULT_PGDATA,
                   help="data directory of the embedded server (default %(default)s)")
    p.add_argument("--rounds", type=int, default=None, help="rounds per case (default 5, "
                   "1 with --quick)")
    p.add_argument("--mixed-rows", type=int, default=None,
                   help=f"rows of the mixed table (default {datasets.DEFAULT_SIZES['mixed']:,}; "
                   "0 leaves it out)")
    p.add_argument("--narrow-rows", type=int, default=None,
                   help=f"rows of the narrow table (default "
                   f"{datasets.DEFAULT_SIZES['narrow']:,}; 0 leaves it out)")
    p.add_argument("--quick", action="store_true",
                   help="smoke run: tiny tables, one round (under a minute)")
    p.add_argument("--codec-share", type=float, default=None,
                   help="share of each table's rows the codec groups (decode, encode) "
                        "run on, from a copy of its first rows: their figures do "
                        "not depend on the size, and at full size they alone would take "
                        "over 15 minutes here (default 0.25; 1 with --quick)")
    p.add_argument("--extra", action="store_true",
                   help="also run informative extra cases (dumpcodec zstd -1 and gzip -6 "
                        "dumps), which the default run leaves out to stay short")
    p.add_argument("--only", help=f"comma-separated groups to run ({','.join(GROUPS)}; "
                   f"{', '.join(OPTIONAL_GROUPS)} only when named here)")
    p.add_argument("--skip", help="comma-separated groups to leave out")
    p.add_argument("--match", help="only the runner's own cases whose id contains this "
                   "text (no suites)")
    p.add_argument("--no-suites", action="store_true",
                   help="do not run bench_codec.py / bench_dump.py; measure dumpcodec with "
                        "the runner's own cases instead")
    p.add_argument("--output-dir", default=str(RESULTS_DIR),
                   help="where the .json and .md go (default benchmarks/results)")
    p.add_argument("--name", help="file stem of the results (default <YYYY-MM-DD>-<host>)")
    p.add_argument("--no-save", action="store_true", help="print only, write no files")
    p.add_argument("--plot", action="store_true",
                   help="also draw <stem>-throughput.png and <stem>-sizes.png (matplotlib)")
    p.add_argument("--timeout", type=float, default=600,
                   help="seconds allowed per case (default %(default)s)")
    p.add_argument("--workdir", help="scratch directory for archives (default: a temp dir)")
    p.add_argument("--child", help=argparse.SUPPRESS)
    return p


def _module_present(name: str) -> bool:
    return (REPO / "benchmarks" / f"{name}.py").exists()


#: groups run only when --only names them (many-tables: about 15 minutes of its own)
OPTIONAL_GROUPS = ("many-tables",)


def _select_groups(args: argparse.Namespace) -> List[str]:
    groups = [g for g in GROUPS if g not in OPTIONAL_GROUPS]
    if args.only:
        wanted = [g.strip() for g in args.only.split(",") if g.strip()]
        bad = [g for g in wanted if g not in GROUPS]
        if bad:
            raise SystemExit(f"unknown group(s) {bad}; choose from {','.join(GROUPS)}")
        groups = [g for g in GROUPS if g in wanted]
    if args.skip:
        skip = {g.strip() for g in args.skip.split(",")}
        groups = [g for g in groups if g not in skip]
    return groups


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def run(args: argparse.Namespace) -> Dict[str, Any]:
    import psycopg
    import dumpcodec
    from dumpcodec.copy import IMPL

    rounds = args.rounds or (1 if args.quick else 5)
    sizes = datasets.sizes_from_args(args.mixed_rows, args.narrow_rows, args.quick)
    groups = _select_groups(args)
    embedded = not args.dsn
    if embedded:
        from dumpcodec.embedded import start_embedded
        _log(f"starting the embedded PostgreSQL in {args.pgdata} ...")
        admin = start_embedded(args.pgdata)
        # Other sizes get their own database, so that a --quick or custom run does
        # not throw away the full-size tables (slow to build); the suites are given
        # the same database, so all measure the same tables.
        dbname = datasets.DEFAULT_DBNAME
        if sizes != datasets.DEFAULT_SIZES:
            dbname += "_quick" if args.quick else "_custom"
        dsn = datasets.ensure_database(admin, dbname)
    else:
        dsn = args.dsn
        admin = dsn
    with psycopg.connect(dsn, autocommit=True) as conn:
        vnum = int(conn.execute("SHOW server_version_num").fetchone()[0])
        vtext = conn.execute("SHOW server_version").fetchone()[0].split()[0]
        socket_kind = "unix socket" if (conn.info.host or "").startswith("/") else \
            f"TCP {conn.info.host}"
    _log(f"PostgreSQL {vtext}; setting up data {sizes} ...")
    t0 = time.perf_counter()
    stats = datasets.setup(dsn, sizes)
    share = args.codec_share if args.codec_share is not None else (1.0 if args.quick else 0.25)
    if not 0 < share <= 1:
        raise SystemExit("--codec-share must be in (0, 1]")
    codec_sizes = {t: max(1, int(n * share)) for t, n in sizes.items()}
    codec_schema = datasets.SCHEMA if share >= 1 else CODEC_SCHEMA
    codec_stats = stats if share >= 1 else datasets.setup(dsn, codec_sizes, schema=codec_schema)
    _log(f"data ready in {time.perf_counter() - t0:.1f} s: {stats}")
    bins = find_tools(vnum // 10000, embedded)
    workdir_obj = None
    if args.workdir:
        workdir = args.workdir
        os.makedirs(workdir, exist_ok=True)
    else:
        workdir_obj = tempfile.TemporaryDirectory(prefix="dumpcodec-bench-")
        workdir = workdir_obj.name
    ctx = Context(dsn=dsn, admin_dsn=admin, rounds=rounds, workdir=workdir,
                  tables=list(sizes), stats={t: {k: v for k, v in s.items() if k != "built"}
                                             for t, s in stats.items()},
                  bins=bins, server_version=vtext, server_version_num=vnum,
                  pg_dump_zstd=pg_dump_has_zstd(bins.get("pg_dump"), dsn), quick=args.quick,
                  restore_db=f"dumpcodec_bench_restore_{os.getpid()}", extra=args.extra)
    notes: List[str] = []
    load1 = os.getloadavg()[0]
    if load1 > 1.0:
        notes.append(f"the machine was busy when the run started (load average {load1:.2f} "
                     f"on {os.cpu_count()} cores): figures are noisier than on an idle machine")
    if not bins.get("pg_dump"):
        notes.append(f"no pg_dump able to dump PostgreSQL {vtext}: dump/restore peers skipped")
    if not ctx.pg_dump_zstd:
        notes.append("this pg_dump has no zstd support (-Z zstd): compared with "
                     "`pg_dump -Fc -Z0 | zstd -3` instead")
    if not bins.get("zstd"):
        notes.append("no zstd CLI (apt-get install zstd): `pg_dump | zstd` skipped")
    cases = [c for c in builtin_cases(ctx) + peer_cases(ctx) if c.group in groups]
    if args.match:
        cases = [c for c in cases if args.match in c.id]
    cases.sort(key=lambda c: (GROUPS.index(c.group), c.table, not c.ours))
    codec_groups = set(CODEC_GROUPS)
    import dataclasses
    ctx_codec = dataclasses.replace(
        ctx, schema=codec_schema,
        stats={t: {k: v for k, v in st.items() if k != "built"}
               for t, st in codec_stats.items()})
    use_codec = not args.no_suites and _module_present("bench_codec") and not args.match
    use_dump = not args.no_suites and _module_present("bench_dump") and not args.match \
        and ("dump" in groups or "restore" in groups) and bool(bins.get("pg_dump"))
    if not args.no_suites:
        for name, used in (("bench_codec", use_codec), ("bench_dump", use_dump)):
            if not _module_present(name):
                notes.append(f"benchmarks/{name}.py not present: the runner's own cases "
                             "stand in")
    results: List[Dict[str, Any]] = []
    owned: set = set()          # (group, table) measured by a suite
    started = time.perf_counter()

    def add(recs: List[Dict[str, Any]], own: bool) -> None:
        have = {r["id"] for r in results}
        for r in recs:
            if r["group"] not in groups or r["id"] in have:
                continue
            results.append(r)
            if own:
                owned.add((r["group"], r["table"]))

    def run_one(case: Case) -> None:
        if (case.group, case.table) in owned or case.id in {r["id"] for r in results}:
            return
        _log(f"[{case.group}] {case.id}: {case.tool} ...")
        t = time.perf_counter()
        r = run_case(ctx_codec if case.group in codec_groups - FULL_SIZE_GROUPS else ctx,
                     case, args.timeout)
        results.append(r)
        if "error" in r:
            _log(f"    error: {r['error']}")
        else:
            _log(f"    median {r.get('median_s', 0):.3f} s, "
                 f"{_fmt_rate(r.get('rows_per_s'))} rows/s, "
                 f"{_fmt(r.get('mb_per_s'), '.0f')} MB/s, peak RSS "
                 f"{_fmt(r.get('peak_rss_mb'), '.0f')} MB "
                 f"({time.perf_counter() - t:.1f} s)")

    try:
        for case in [c for c in cases if c.group == "server"]:
            run_one(case)
        if use_codec:
            for table in ctx.tables:
                for part, pgroups in _CODEC_PARTS.items():
                    if not set(pgroups) & set(groups):
                        continue
                    _log(f"[suite] bench_codec.py {part} on {table} ...")
                    t = time.perf_counter()
                    recs, err = run_codec_suite(ctx if part == "scan" else ctx_codec, table,
                                                part, args.timeout * 2)
                    if err:
                        notes.append(err)
                        _log(f"    error: {err}")
                    add(recs, own=True)
                    _log(f"    {len(recs)} results ({time.perf_counter() - t:.1f} s)")
        for case in [c for c in cases if c.group in codec_groups]:
            run_one(case)
        if use_dump:
            _log("[suite] bench_dump.py (dump and restore) ...")
            t = time.perf_counter()
            recs, err = run_dump_suite(ctx, groups, args.timeout * 4)
            if err:
                notes.append(err)
                _log(f"    error: {err}")
            add([r for r in recs if r["group"] != "server"], own=True)
            add([r for r in recs if r["group"] == "server"], own=False)
            _log(f"    {len(recs)} results ({time.perf_counter() - t:.1f} s)")
        for case in [c for c in cases if c.group in ("dump", "restore")]:
            run_one(case)
        if "many-tables" in groups and bins.get("pg_dump"):
            from benchmarks import bench_many_tables
            _log("[suite] bench_many_tables.py ...")
            data = bench_many_tables.run(admin, rounds=2 if args.quick else max(rounds, 5),
                                         rounds_empty=2 if args.quick else 3, quick=args.quick,
                                         bins=bins, timeout=args.timeout * 4)
            add(bench_many_tables.for_runner(data["results"]), own=True)
            notes += data["notes"]
    finally:
        try:
            drop_load_tables(ctx)
            drop_load_tables(ctx_codec)
            drop_restore_db(ctx)
        except Exception as exc:  # cleanup must not hide the results
            notes.append(f"cleanup failed: {exc}")
        if workdir_obj is not None:
            workdir_obj.cleanup()
    results.sort(key=lambda r: (GROUPS.index(r["group"]) if r["group"] in GROUPS else 99,
                                r["table"], not r.get("ours"), not r.get("primary")))
    add_ratios(results)
    now = _dt.datetime.now(_dt.timezone.utc)
    tools = {
        "pg_dump": bins.get("pg_dump"),
        "pg_dump_version": (_cmd_out([bins["pg_dump"], "--version"])
                            if bins.get("pg_dump") else None),
        "pg_dump_zstd": ctx.pg_dump_zstd,
        "zstd_version": _cmd_out([bins["zstd"], "-V"]).strip("* ") if bins.get("zstd") else None,
        "dumpcodec_cli_startup_s": _cli_startup(),
    }
    if tools["dumpcodec_cli_startup_s"] is not None and any(
            r.get("source") == "bench_dump.py" for r in results):
        notes.append(f"bench_dump.py times the dumpcodec CLI from outside: each dumpcodec "
                     f"figure there includes about {tools['dumpcodec_cli_startup_s']:.2f} s of "
                     "Python start-up and imports (measured separately), as a user sees it")
    doc = {
        "format": 1,
        "meta": {
            "date": now.strftime("%Y-%m-%d"), "time_utc": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "machine": machine_info(), "server_version": vtext, "server_version_num": vnum,
            "server": ("embedded (pgserver), " if embedded else "--dsn, ") + socket_kind,
            "dumpcodec": dumpcodec.__version__, "codec_impl": IMPL,
            "peers": {p: _version_of(p) for p in ("psycopg", "psycopg-c", "asyncpg", "pgcopy",
                                                  "psycopg2", "zstandard")},
            "tools": tools, "rounds": rounds, "sizes": sizes, "groups": groups,
            "codec_share": share, "codec_schema": codec_schema,
            "command": "python -m benchmarks " + " ".join(
                shlex.quote(a) for a in (args.argv or [])),
            "elapsed_s": round(time.perf_counter() - started, 1),
        },
        "datasets": ctx.stats,
        "datasets_codec": ctx_codec.stats,
        "results": results,
        "targets": evaluate_targets(results),
        "notes": notes,
    }
    return doc


#: groups with a runner of their own: ``python -m benchmarks NAME [options]``
OWN_RUNNER_GROUPS = {"big-table": "benchmarks.bench_big_table",
                     "objstore": "benchmarks.bench_objstore"}


def main(argv: Optional[List[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in OWN_RUNNER_GROUPS:
        return importlib.import_module(OWN_RUNNER_GROUPS[argv[0]]).main(argv[1:])
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.child:
        return child_main(args.child)
    args.argv = [a for a in argv if not a.startswith("--child")]
    doc = run(args)
    md = to_markdown(doc)
    print(md)
    if not args.no_save:
        out = Path(args.output_dir)
        out.mkdir(parents=True, exist_ok=True)
        stem = out / (args.name or f"{doc['meta']['date']}-{doc['meta']['machine']['host']}")
        Path(f"{stem}.json").write_text(json.dumps(doc, indent=1, default=str) + "\n")
        Path(f"{stem}.md").write_text(md + "\n")
        _log(f"wrote {stem}.json and {stem}.md")
        if args.plot:
            written = plot(doc, stem)
            _log("wrote " + ", ".join(written) if written else
                 "--plot: matplotlib is not installed (pip install 'dumpcodec[plot]')")
    return 0


if __name__ == "__main__":
    sys.exit(main())
