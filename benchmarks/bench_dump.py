"""Dump and restore benchmark: ``dumpcodec create/load`` against pg_dump/pg_restore.

Run by hand (the machine should be otherwise idle)::

    python benchmarks/bench_dump.py                       # embedded PostgreSQL 16
    python benchmarks/bench_dump.py --dsn postgresql://postgres@localhost/postgres
    python benchmarks/bench_dump.py --mixed 20000 --narrow 100000 --rounds 1   # smoke

On the same tables in one run (benchmarks/datasets.py: a mixed 12-column table with a
primary key and a narrow (bigint, int) table with one index, 1 M and 5 M rows by
default), every case is a child process timed from outside, with its peak RSS taken
from ``wait4`` (for a shell pipeline: the largest process in it), median of
``--rounds``:

dump
  ``dumpcodec create`` with zstd (default), gzip, none, and zstd with ``-j 2``;
  ``pg_dump -Fc`` (its default gzip), ``pg_dump -Fc -Z zstd`` where that pg_dump has
  zstd, ``pg_dump -Fc -Z0``, ``pg_dump -Fc -Z0 | zstd -3``, ``pg_dump -Fd -j 2``;
  the server's own limit: ``psql -c "\\copy ... to /dev/null (format binary)"`` per
  table.
restore
  ``dumpcodec load`` ``-j 1`` and ``-j 2`` of the zstd archive, with ``--no-analyze``
  (the same work as pg_restore, which runs no ANALYZE) and as by default (ANALYZE of
  each table); ``pg_restore -j 1`` and ``-j 2`` of the ``pg_dump -Fc`` archive; each
  into a fresh database.

pg_dump/pg_restore/psql are taken to match the server's major version: pgserver's own
binaries for the embedded server, else ``/usr/lib/postgresql/MAJOR/bin``, else PATH
(``--bindir`` overrides).  Results are printed as a table with ratios against
``pg_dump -Fc`` / ``pg_restore`` and written as JSON with ``--json FILE``.  dumpcodec's
modules are compiled to bytecode first, as an installed dumpcodec has them.
"""
from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from typing import Any, Dict, List, Optional, Tuple

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import psycopg  # noqa: E402
import psycopg.conninfo  # noqa: E402

from benchmarks import datasets  # noqa: E402
from benchmarks.run import ensure_bytecode  # noqa: E402

PY = shlex.quote(sys.executable)


# -- measuring ------------------------------------------------------------------------

def run_measured(cmd: str, timeout: float = 3600) -> Tuple[float, Optional[int], str]:
    """Run ``cmd`` in a shell; return (seconds, peak RSS in bytes or None, stderr tail).

    A child forked from this (large) Python process starts with our pages counted in
    its ru_maxrss, and exec keeps that high-water mark; GNU time forks the shell from a
    small process instead and reports the largest process of the pipeline (%M, in
    KiB).  Without /usr/bin/time no RSS is reported rather than a wrong one.
    """
    gnu_time = "/usr/bin/time" if os.path.exists("/usr/bin/time") else None
    with tempfile.NamedTemporaryFile("r") as usage:
        argv = ["/bin/sh", "-c", cmd]
        if gnu_time:
            argv = [gnu_time, "-f", "%M", "-o", usage.name] + argv
        t0 = time.perf_counter()
        p = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                           timeout=timeout)
        dt = time.perf_counter() - t0
        err = p.stderr.decode(errors="replace")
        if p.returncode != 0:
            raise RuntimeError(f"command failed ({p.returncode}): {cmd}\n{err[-2000:]}")
        peak = None
        if gnu_time:
            text = usage.read().strip().splitlines()
            if text and text[-1].strip().isdigit():
                peak = int(text[-1].strip()) * 1024
    return dt, peak, err[-500:]


def size_of(path: str) -> int:
    if os.path.isdir(path):
        return sum(os.path.getsize(os.path.join(d, f))
                   for d, _, files in os.walk(path) for f in files)
    return os.path.getsize(path) if os.path.exists(path) else 0


def remove(path: str) -> None:
    if os.path.isdir(path):
        shutil.rmtree(path, ignore_errors=True)
    elif os.path.exists(path):
        os.unlink(path)


# -- tools ----------------------------------------------------------------------------

def find_bindir(major: int, embedded: bool, bindir: Optional[str]) -> Optional[str]:
    if bindir:
        return bindir
    if embedded:
        from dumpcodec.embedded import embedded_bin
        p = embedded_bin("pg_dump")
        if p:
            return os.path.dirname(p)
    d = f"/usr/lib/postgresql/{major}/bin"
    if os.path.exists(os.path.join(d, "pg_dump")):
        return d
    p = shutil.which("pg_dump")
    return os.path.dirname(p) if p else None


def tool(bindir: Optional[str], name: str) -> str:
    return shlex.quote(os.path.join(bindir, name)) if bindir else name


def pg_dump_has_zstd(pg_dump: str, dsn: str, tables: str, tmp: str) -> bool:
    out = os.path.join(tmp, "probe.dump")
    try:
        p = subprocess.run(f"{pg_dump} -Fc -Z zstd -s {tables} -d {shlex.quote(dsn)} "
                           f"-f {shlex.quote(out)}", shell=True, capture_output=True,
                           timeout=120)
        return p.returncode == 0
    finally:
        remove(out)


def fresh_db(admin_dsn: str) -> Tuple[str, str]:
    name = f"dumpcodec_bench_restore_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin_dsn, autocommit=True) as c:
        c.execute(f'CREATE DATABASE "{name}"')
    return name, psycopg.conninfo.make_conninfo(admin_dsn, dbname=name)


def drop_db(admin_dsn: str, name: str) -> None:
    with psycopg.connect(admin_dsn, autocommit=True) as c:
        c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def check_restored(src_dsn: str, dst_dsn: str, tables: List[str]) -> None:
    with psycopg.connect(src_dsn) as a, psycopg.connect(dst_dsn) as b:
        for t in tables:
            q = f"SELECT count(*), sum(id) FROM {datasets.SCHEMA}.{t}"
            if a.execute(q).fetchone() != b.execute(q).fetchone():
                raise RuntimeError(f"restored {t} differs from the source")
            n = b.execute("SELECT count(*) FROM pg_indexes WHERE schemaname = %s AND "
                          "tablename = %s", (datasets.SCHEMA, t)).fetchone()[0]
            if n < 1:
                raise RuntimeError(f"restored {t} has no index")


# -- the run --------------------------------------------------------------------------

def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dsn", help="admin conninfo of the server (default: embedded 16)")
    ap.add_argument("--mixed", type=int, default=1_000_000, help="rows of the mixed table")
    ap.add_argument("--narrow", type=int, default=5_000_000, help="rows of the narrow table")
    ap.add_argument("--rounds", type=int, default=3, help="median of N runs per case")
    ap.add_argument("--bindir", help="directory of pg_dump/pg_restore/psql")
    ap.add_argument("--workdir", help="where archives go (default: a temp dir)")
    ap.add_argument("--json", help="write the results here")
    ap.add_argument("--only", choices=("dump", "restore"), help="one half only")
    args = ap.parse_args(argv)

    if args.dsn:
        admin = args.dsn
    else:
        import warnings
        from dumpcodec.embedded import start_embedded
        with warnings.catch_warnings():      # platformdirs: XDG_RUNTIME_DIR
            warnings.simplefilter("ignore")
            admin = start_embedded()
    results = run(admin, mixed=args.mixed, narrow=args.narrow, rounds=args.rounds,
                  bindir=args.bindir, workdir=args.workdir, only=args.only,
                  embedded=not args.dsn)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
        print(f"\nresults written to {args.json}")
    return 0


def run(admin: str, *, mixed: int = 1_000_000, narrow: int = 5_000_000, rounds: int = 3,
        bindir: Optional[str] = None, workdir: Optional[str] = None,
        only: Optional[str] = None, dbname: str = datasets.DEFAULT_DBNAME,
        embedded: bool = False, timeout: float = 3600) -> Dict[str, Any]:
    """Measure every dump and restore case on the tables of ``dbname`` (set up there
    if missing) on the server ``admin`` (an admin conninfo); print the table; return
    the results as ``--json`` writes them (``{"dump": {case: {...}}, "restore": ...}``).
    ``only``: "dump" or "restore"; ``workdir`` is kept when given, else a temp dir."""
    ensure_bytecode()
    with psycopg.connect(admin, autocommit=True) as c:
        version_num = int(c.execute("SHOW server_version_num").fetchone()[0])
        version = c.execute("SHOW server_version").fetchone()[0]
    major = version_num // 10000
    bindir = find_bindir(major, embedded, bindir)
    pg_dump, pg_restore, psql = (tool(bindir, n) for n in ("pg_dump", "pg_restore", "psql"))
    zstd_cli = shutil.which("zstd")

    sizes = {"mixed": mixed, "narrow": narrow}
    sizes = {k: v for k, v in sizes.items() if v > 0}
    dsn = datasets.ensure_database(admin, dbname)
    print(f"PostgreSQL {version}; tools from {bindir or 'PATH'}; setting up {sizes} ...",
          flush=True)
    stats = datasets.setup(dsn, sizes)
    copy_bytes = sum(s["copy_bytes"] for s in stats.values())
    total_rows = sum(s["rows"] for s in stats.values())
    names = list(sizes)
    sel_dc = " ".join(f"-t {datasets.SCHEMA}.{t}" for t in names)
    sel_pg = " ".join(f"-t {datasets.SCHEMA}.{t}" for t in names)
    q = shlex.quote
    tmp = workdir or tempfile.mkdtemp(prefix="dumpcodec-bench-")
    os.makedirs(tmp, exist_ok=True)
    has_zstd = pg_dump_has_zstd(pg_dump, dsn, sel_pg, tmp)

    def dc_create(extra: str, out: str) -> str:
        return f"{PY} -m dumpcodec create --dsn {q(dsn)} {sel_dc} -o {q(out)} -q {extra}"

    dumps: List[Tuple[str, str, str]] = [
        ("dumpcodec zstd", dc_create("", f"{tmp}/dc.zstd"), f"{tmp}/dc.zstd"),
        ("dumpcodec zstd -j2", dc_create("-j 2", f"{tmp}/dc.j2"), f"{tmp}/dc.j2"),
        ("dumpcodec gzip", dc_create("--compress gzip", f"{tmp}/dc.gz"), f"{tmp}/dc.gz"),
        ("dumpcodec none", dc_create("--compress none", f"{tmp}/dc.tar"), f"{tmp}/dc.tar"),
        ("pg_dump -Fc", f"{pg_dump} -Fc {sel_pg} -d {q(dsn)} -f {q(tmp + '/pg.fc')}",
         f"{tmp}/pg.fc"),
        ("pg_dump -Fc -Z0", f"{pg_dump} -Fc -Z0 {sel_pg} -d {q(dsn)} -f {q(tmp + '/pg.z0')}",
         f"{tmp}/pg.z0"),
        ("pg_dump -Fd -j2", f"rm -rf {q(tmp + '/pg.dir')} && {pg_dump} -Fd -j 2 {sel_pg} "
         f"-d {q(dsn)} -f {q(tmp + '/pg.dir')}", f"{tmp}/pg.dir"),
    ]
    if has_zstd:
        dumps.append(("pg_dump -Fc -Z zstd", f"{pg_dump} -Fc -Z zstd {sel_pg} -d {q(dsn)} "
                      f"-f {q(tmp + '/pg.zst')}", f"{tmp}/pg.zst"))
    if zstd_cli:
        dumps.append(("pg_dump -Fc -Z0 | zstd -3",
                      f"{pg_dump} -Fc -Z0 {sel_pg} -d {q(dsn)} | {q(zstd_cli)} -3 -q -o "
                      f"{q(tmp + '/pg.z0.zst')}", f"{tmp}/pg.z0.zst"))
    for t in names:
        dumps.append((f"server limit: \\copy {t} binary",
                      f"{psql} -X -q -d {q(dsn)} -c "
                      f"{q(chr(92) + f'copy {datasets.SCHEMA}.{t} to /dev/null (format binary)')}",
                      ""))

    results: Dict[str, Any] = {"server": version, "sizes": sizes, "rows": total_rows,
                               "copy_bytes": copy_bytes, "dump": {}, "restore": {}}

    def measure(cmd: str, out: str, before=None, after=None) -> Dict[str, Any]:
        times, rss, size = [], [], 0
        for _ in range(rounds):
            if out:
                remove(out)
            ctx = before() if before else None
            # the previous round's (or group's) writes go to disk first: a round does
            # not pay for the writeback of another
            os.sync()
            dt, peak, _err = run_measured(cmd, timeout)
            times.append(dt)
            rss.append(peak or 0)
            size = size_of(out) if out else 0
            if after:
                after(ctx)
        return {"seconds": statistics.median(times), "all": times, "bytes": size,
                "peak_rss": max(rss), "cmd": cmd.replace(dsn, "$DSN")}

    if only != "restore":
        print(f"\ndump of {total_rows} rows, {copy_bytes / 1e6:.0f} MB of COPY BINARY "
              f"(median of {rounds}):", flush=True)
        print(f"  {'case':<32} {'seconds':>8} {'size MB':>9} {'MB/s':>8} {'peak RSS':>9}")
        for name, cmd, out in dumps:
            r = measure(cmd, out)
            results["dump"][name] = r
            mbs = copy_bytes / 1e6 / r["seconds"]
            print(f"  {name:<32} {r['seconds']:8.2f} {r['bytes'] / 1e6:9.1f} {mbs:8.0f} "
                  f"{r['peak_rss'] / 2**20:7.0f}MB", flush=True)
        base = results["dump"].get("pg_dump -Fc")
        if base:
            print("  ratios (time, size) against pg_dump -Fc:")
            for name, r in results["dump"].items():
                if name.startswith("dumpcodec"):
                    print(f"    {name:<30} {base['seconds'] / r['seconds']:5.2f}x faster, "
                          f"size {r['bytes'] / max(base['bytes'], 1):5.2f}x")

    if only != "dump":
        if not os.path.exists(f"{tmp}/dc.zstd"):
            run_measured(dc_create("", f"{tmp}/dc.zstd"))
        if not os.path.exists(f"{tmp}/pg.fc"):
            run_measured(f"{pg_dump} -Fc {sel_pg} -d {q(dsn)} -f {q(tmp + '/pg.fc')}")
        print(f"\nrestore into a fresh database (median of {rounds}):", flush=True)
        print(f"  {'case':<32} {'seconds':>8} {'MB/s':>8} {'peak RSS':>9}")
        state: Dict[str, str] = {}

        def make(cmd_tpl: str):
            def before():
                name, target = fresh_db(admin)
                state["name"], state["dsn"] = name, target
                return name

            def after(_ctx):
                check_restored(dsn, state["dsn"], names)
                drop_db(admin, state["name"])
            return before, after

        load = f"{PY} -m dumpcodec load {q(tmp + '/dc.zstd')} -q --dsn {{dsn}}"
        # pg_restore runs no ANALYZE: --no-analyze is the same work; the default (with
        # ANALYZE of each table, as a user gets it) is measured too
        cases = [
            ("dumpcodec load -j1 --no-analyze", f"{load} -j 1 --no-analyze"),
            ("dumpcodec load -j2 --no-analyze", f"{load} -j 2 --no-analyze"),
            ("dumpcodec load -j1", f"{load} -j 1"),
            ("dumpcodec load -j2", f"{load} -j 2"),
            ("pg_restore -j1", f"{pg_restore} -d {{dsn}} -j 1 {q(tmp + '/pg.fc')}"),
            ("pg_restore -j2", f"{pg_restore} -d {{dsn}} -j 2 {q(tmp + '/pg.fc')}"),
        ]
        for name, tpl in cases:
            before, after = make(tpl)
            times, rss = [], []
            for _ in range(rounds):
                before()
                cmd = tpl.replace("{dsn}", q(state["dsn"]))
                # pg_restore needs the schema; dumpcodec creates it itself
                if name.startswith("pg_restore"):
                    with psycopg.connect(state["dsn"], autocommit=True) as c:
                        c.execute(f'CREATE SCHEMA IF NOT EXISTS "{datasets.SCHEMA}"')
                dt, peak, _ = run_measured(cmd, timeout)
                times.append(dt)
                rss.append(peak or 0)
                after(None)
            r = {"seconds": statistics.median(times), "all": times, "peak_rss": max(rss)}
            results["restore"][name] = r
            print(f"  {name:<32} {r['seconds']:8.2f} {copy_bytes / 1e6 / r['seconds']:8.0f} "
                  f"{r['peak_rss'] / 2**20:7.0f}MB", flush=True)
        for j in ("1", "2"):
            a, b = results["restore"].get(f"dumpcodec load -j{j} --no-analyze"), \
                results["restore"].get(f"pg_restore -j{j}")
            if a and b:
                print(f"  -j{j}: dumpcodec load {b['seconds'] / a['seconds']:.2f}x "
                      f"pg_restore's speed")

    if not workdir:
        shutil.rmtree(tmp, ignore_errors=True)
    return results


if __name__ == "__main__":
    sys.exit(main())
