"""One big table: a whole move with dumpcodec against pg_dump/pg_restore and pgcopydb.

Run by hand, from the repository root, on an otherwise idle machine::

    python -m benchmarks big-table                      # local server 127.0.0.1:5432
    python -m benchmarks big-table --dsn 'host=... user=...' --rounds 5
    python -m benchmarks big-table --rows 300000 --rounds 1           # smoke run

The database (``dumpcodec_bench_big``, schema ``bigt``, built once and kept; another
``--rows`` gets ``dumpcodec_bench_big_ROWS``): one table
``big`` of ``--rows`` rows (default 3.2 million, about 430 MB of binary COPY data) with a
primary key and one more index, and two small tables (``orders``, ``notes``) with a
foreign key to it.  Every case is a child process timed from outside with its peak
RSS from ``wait4`` (``benchmarks.run.run_measured``; for a pipeline or a tool that
forks, the largest process in it), each restore into a fresh database checked for its
rows and indexes afterwards:

* ``dumpcodec create`` at ``-j 1`` and ``-j 2`` (zstd; ``-j 2`` splits ``big`` into
  heap ranges), ``dumpcodec load`` of that archive at ``-j 1`` and ``-j 2`` (staged:
  chunks over the connections, then keys and indexes);
* the whole move at ``-j 2``: through a file (``create -o F && load F``) and through a
  pipe (``create -o - | load -``);
* ``pg_dump -Fd -j 2`` then ``pg_restore -j 2`` (each, and together), with
  ``-Z zstd`` where that pg_dump has it (16+), else its default gzip;
* ``pgcopydb clone --table-jobs 2 --index-jobs 2 --split-tables-larger-than``
  (skipped with a note when pgcopydb is not installed or cannot talk to the server).

``--rounds`` defaults to 3 (each case takes well over 10 s at full size); the rounds
are interleaved (every case once, then every case again), so that a machine whose
load changes during the run weighs on all cases alike.  At full size one round of all
cases takes about 5 minutes on 2 idle cores (a 3-round run ~15 minutes, plus ~1 minute
to build the data the first time).  Results:
a Markdown table with medians and min-max, ratios (median of the ratio's figures, and
its range from the worst to the best round), printed and written to
``benchmarks/results/<date>-<host>-big-table.{json,md}``.
"""
from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import shlex
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

if __package__ in (None, ""):  # run as a script
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    __package__ = "benchmarks"

import psycopg  # noqa: E402
import psycopg.conninfo  # noqa: E402

from benchmarks.run import RESULTS_DIR, find_tools, pg_dump_has_zstd, run_measured  # noqa: E402

DBNAME = "dumpcodec_bench_big"
TARGET = "dumpcodec_bench_big_target"
SCHEMA = "bigt"
DEFAULT_ROWS = 3_200_000
DEFAULT_DSN = "host=127.0.0.1 port=5432 user=postgres dbname=postgres"
SPLIT = "256MB"
MB = 1_000_000
PY = sys.executable


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _dsn(admin: str, dbname: str) -> str:
    return psycopg.conninfo.make_conninfo(admin, dbname=dbname)


# -- the data ---------------------------------------------------------------------------

_BUILD = f"""
DROP SCHEMA IF EXISTS {SCHEMA} CASCADE;
CREATE SCHEMA {SCHEMA};
CREATE TABLE {SCHEMA}.big (
    id bigint PRIMARY KEY, account int NOT NULL, created timestamptz NOT NULL,
    amount numeric(12,2), status text NOT NULL, note text);
INSERT INTO {SCHEMA}.big
SELECT g, (g::bigint * 7919) % 100000, timestamptz '2020-01-01' + g * interval '7 s',
       (g % 1000003) / 100.0, (ARRAY['new','paid','shipped','void'])[g % 4 + 1],
       md5(g::text) || md5((g + 1)::text) || ' ' || (g % 997)
FROM generate_series(1, %(rows)s) g;
CREATE INDEX big_account_created ON {SCHEMA}.big (account, created);
CREATE TABLE {SCHEMA}.orders (id int PRIMARY KEY, big_id bigint NOT NULL
    REFERENCES {SCHEMA}.big (id), qty int NOT NULL);
INSERT INTO {SCHEMA}.orders SELECT g, g * 37 %% %(rows)s + 1, g %% 9 FROM
    generate_series(1, 50000) g;
CREATE TABLE {SCHEMA}.notes (id int PRIMARY KEY, big_id bigint REFERENCES {SCHEMA}.big (id),
    body text);
INSERT INTO {SCHEMA}.notes SELECT g, g * 101 %% %(rows)s + 1, repeat('n', g %% 50) FROM
    generate_series(1, 20000) g;
CREATE TABLE {SCHEMA}.built (rows bigint, copy_bytes bigint);
"""


def _copy_bytes(conn: psycopg.Connection, table: str) -> int:
    n = 0
    with conn.cursor().copy(f"COPY {SCHEMA}.{table} TO STDOUT (FORMAT binary)") as cp:
        for block in cp:
            n += len(block)
    return n


def dbname(rows: int) -> str:
    """The source database: one per size, so that a smoke run with ``--rows`` never
    rebuilds (or changes under a running benchmark) the full-size one."""
    return DBNAME if rows == DEFAULT_ROWS else f"{DBNAME}_{rows}"


def ensure_data(admin: str, rows: int) -> Dict[str, int]:
    """Build the database once; return its rows and binary COPY bytes of ``big``."""
    DBNAME = dbname(rows)   # noqa: N806
    with psycopg.connect(admin, autocommit=True) as c:
        if not c.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DBNAME,)).fetchone():
            c.execute(f'CREATE DATABASE "{DBNAME}"')
    with psycopg.connect(_dsn(admin, DBNAME), autocommit=True) as c:
        try:
            got = c.execute(f"SELECT rows, copy_bytes FROM {SCHEMA}.built").fetchone()
        except psycopg.errors.UndefinedTable:
            got = None
        if got and got[0] == rows:
            return {"rows": got[0], "copy_bytes": got[1]}
        _log(f"building {DBNAME}: {rows} rows ...")
        t0 = time.perf_counter()
        c.execute(_BUILD.replace("%(rows)s", str(rows)).replace("%%", "%"))
        c.execute("VACUUM (ANALYZE, FREEZE)")
        n = _copy_bytes(c, "big")
        c.execute(f"INSERT INTO {SCHEMA}.built VALUES (%s, %s)", (rows, n))
        _log(f"built in {time.perf_counter() - t0:.0f} s; big: {n / MB:.0f} MB of COPY data")
        return {"rows": rows, "copy_bytes": n}


def fresh_target(admin: str) -> str:
    with psycopg.connect(admin, autocommit=True) as c:
        c.execute(f'DROP DATABASE IF EXISTS "{TARGET}" WITH (FORCE)')
        c.execute(f'CREATE DATABASE "{TARGET}"')
    return _dsn(admin, TARGET)


def check_target(admin: str, rows: int) -> None:
    with psycopg.connect(_dsn(admin, TARGET), autocommit=True) as c:
        n = c.execute(f"SELECT count(*) FROM {SCHEMA}.big").fetchone()[0]
        idx = c.execute("SELECT count(*) FROM pg_indexes WHERE schemaname = %s AND "
                        "tablename = 'big'", (SCHEMA,)).fetchone()[0]
        fks = c.execute("SELECT count(*) FROM pg_constraint WHERE contype = 'f' AND "
                        "connamespace = %s::regnamespace", (SCHEMA,)).fetchone()[0]
    if (n, idx, fks) != (rows, 2, 2):
        raise RuntimeError(f"target has {n} rows, {idx} indexes on big, {fks} foreign keys; "
                           f"expected {rows}, 2, 2")


# -- cases ------------------------------------------------------------------------------

class Case:
    def __init__(self, cid: str, tool: str, cmd: str, setup: Callable[[], None],
                 check: Optional[Callable[[], None]] = None, ours: bool = False):
        self.id, self.tool, self.cmd, self.setup, self.check = cid, tool, cmd, setup, check
        self.ours = ours


def _q(s: str) -> str:
    return shlex.quote(s)


def cases(admin: str, work: str, rows: int, bins: Dict[str, Optional[str]],
          zstd_dump: bool, pgcopydb: Optional[str]) -> Tuple[List[Case], List[str]]:
    src = _dsn(admin, dbname(rows))
    dst = _dsn(admin, TARGET)
    arc = os.path.join(work, "big.dcz")
    keep = os.path.join(work, "kept.dcz")    # the -j2 archive the loads read
    pgdir = os.path.join(work, "pgdump.d")
    keepdir = os.path.join(work, "pgdump-kept.d")
    dc = f"{_q(PY)} -m dumpcodec"
    notes: List[str] = []

    def rm(*paths: str) -> Callable[[], None]:
        def f() -> None:
            for p in paths:
                if os.path.isdir(p):
                    shutil.rmtree(p)
                elif os.path.exists(p):
                    os.unlink(p)
        return f

    def target_and(*paths: str) -> Callable[[], None]:
        def f() -> None:
            rm(*paths)()
            fresh_target(admin)
        return f

    def checked() -> None:
        check_target(admin, rows)

    def ensure_keep() -> None:
        if not os.path.exists(keep):
            subprocess.run(f"{dc} create --dsn {_q(src)} -n {SCHEMA} -j 2 -q -o {_q(keep)}",
                           shell=True, check=True)
        fresh_target(admin)

    def ensure_keepdir() -> None:
        if not os.path.exists(keepdir):
            subprocess.run(f"{_q(bins['pg_dump'])} -d {_q(src)} -n {SCHEMA} -Fd -j 2 "
                           f"{zopt} -f {_q(keepdir)}", shell=True, check=True)
        fresh_target(admin)

    create = f"{dc} create --dsn {_q(src)} -n {SCHEMA} -q"
    load = f"{dc} load --dsn {_q(dst)} -q"
    out = [
        Case("dc-create-j1", "dumpcodec create -j1 (zstd)", f"{create} -j 1 -o {_q(arc)}",
             rm(arc), ours=True),
        Case("dc-create-j2", "dumpcodec create -j2 (zstd, split)",
             f"{create} -j 2 -o {_q(arc)}", rm(arc), ours=True),
        Case("dc-load-j1", "dumpcodec load -j1", f"{load} -j 1 {_q(keep)}", ensure_keep,
             checked, ours=True),
        Case("dc-load-j2", "dumpcodec load -j2", f"{load} -j 2 {_q(keep)}", ensure_keep,
             checked, ours=True),
        Case("dc-move-file-j2", "dumpcodec create -j2 -o F && load F -j2",
             f"{create} -j 2 -o {_q(arc)} && {load} -j 2 {_q(arc)}", target_and(arc),
             checked, ours=True),
        Case("dc-move-pipe-j2", "dumpcodec create -j2 -o - | load - -j2",
             f"set -o pipefail; {create} -j 2 -o - | {load} -j 2 -", target_and(),
             checked, ours=True),
    ]
    if bins.get("pg_dump") and bins.get("pg_restore"):
        zopt = "-Z zstd" if zstd_dump else ""
        zname = "zstd" if zstd_dump else "gzip"
        pgd = f"{_q(bins['pg_dump'])} -d {_q(src)} -n {SCHEMA} -Fd -j 2 {zopt}"
        pgr = f"{_q(bins['pg_restore'])} -d {_q(dst)} -j 2"
        out += [
            Case("pg_dump-Fd-j2", f"pg_dump -Fd -j2 ({zname})", f"{pgd} -f {_q(pgdir)}",
                 rm(pgdir)),
            Case("pg_restore-j2", "pg_restore -j2", f"{pgr} {_q(keepdir)}", ensure_keepdir,
                 checked),
            Case("pg-move-j2", f"pg_dump -Fd -j2 ({zname}) && pg_restore -j2",
                 f"{pgd} -f {_q(pgdir)} && {pgr} {_q(pgdir)}", target_and(pgdir), checked),
        ]
    else:
        notes.append("no pg_dump/pg_restore for this server: their cases skipped")
    if pgcopydb:
        cdir = os.path.join(work, "pgcopydb")
        env = f"PATH={_q(os.path.dirname(bins['pg_dump'] or '/usr/bin/pg_dump'))}:$PATH "
        out.append(Case(
            "pgcopydb-clone", f"pgcopydb clone --table-jobs 2 --index-jobs 2 "
            f"--split-tables-larger-than {SPLIT}",
            f"{env}{_q(pgcopydb)} clone --source {_q(src)} --target {_q(dst)} "
            f"--table-jobs 2 --index-jobs 2 --split-tables-larger-than {SPLIT} "
            f"--dir {_q(cdir)} --notice >/dev/null 2>&1", target_and(cdir), checked))
    return out, notes


def _pgcopydb(admin: str) -> Tuple[Optional[str], Optional[str]]:
    """pgcopydb's path, or None and why not."""
    path = shutil.which("pgcopydb")
    if not path:
        return None, ("pgcopydb is not installed (apt-get install pgcopydb): its case "
                      "skipped")
    text = subprocess.run([path, "--version"], capture_output=True, text=True).stderr + \
        subprocess.run([path, "--version"], capture_output=True, text=True).stdout
    with psycopg.connect(admin) as c:
        major = c.info.server_version // 10000
    compat = text.split("compatible with Postgres", 1)[-1] if "compatible with" in text else ""
    if compat and str(major) not in compat.replace(",", " ").split():
        return None, f"this pgcopydb is not for PostgreSQL {major} ({compat.strip()}): skipped"
    return path, None


# -- running and reporting --------------------------------------------------------------

def run_round(case: Case, timeout: float) -> Tuple[float, float]:
    """One round of ``case``: its setup (untimed), the command, its check."""
    case.setup()
    r = run_measured(["bash", "-c", case.cmd], timeout=timeout)
    if r["rc"] != 0:
        raise RuntimeError(f"{case.id}: exit {r['rc']}: {r['stderr'][-2000:]}")
    if case.check:
        case.check()
    return r["wall"], r["rss_kb"] / 1024


def summary(case: Case, secs: List[float], rss: List[float]) -> Dict[str, Any]:
    return {"id": case.id, "tool": case.tool, "ours": case.ours, "seconds": secs,
            "median_s": statistics.median(secs), "min_s": min(secs), "max_s": max(secs),
            "peak_rss_mb": max(rss)}


RATIOS = [
    # (label, slower case, faster case, target)
    ("whole move, file: pg_dump+pg_restore / dumpcodec", "pg-move-j2", "dc-move-file-j2", 1.5),
    ("whole move, pipe: pg_dump+pg_restore / dumpcodec", "pg-move-j2", "dc-move-pipe-j2", 1.5),
    ("whole move, file: pgcopydb / dumpcodec", "pgcopydb-clone", "dc-move-file-j2", 1.25),
    ("whole move, pipe: pgcopydb / dumpcodec", "pgcopydb-clone", "dc-move-pipe-j2", 1.25),
    ("dump: -j1 / -j2", "dc-create-j1", "dc-create-j2", 1.3),
    ("restore: -j1 / -j2", "dc-load-j1", "dc-load-j2", 1.3),
    ("dump: pg_dump -Fd -j2 / dumpcodec -j2", "pg_dump-Fd-j2", "dc-create-j2", None),
    ("restore: pg_restore -j2 / dumpcodec -j2", "pg_restore-j2", "dc-load-j2", None),
]


def ratios(results: Dict[str, Dict[str, Any]]) -> List[Dict[str, Any]]:
    out = []
    for label, slow, fast, target in RATIOS:
        if slow not in results or fast not in results:
            continue
        a, b = results[slow], results[fast]
        med = a["median_s"] / b["median_s"]
        out.append({"label": label, "ratio": med, "low": a["min_s"] / b["max_s"],
                    "high": a["max_s"] / b["min_s"], "target": target,
                    "met": None if target is None else med >= target})
    return out


def to_markdown(doc: Dict[str, Any]) -> str:
    m = doc["meta"]
    lines = [f"# One big table: {m['rows']:,} rows, {m['copy_bytes'] / MB:.0f} MB of binary "
             f"COPY data in `big` (+ 2 small tables with a FK)",
             "",
             f"PostgreSQL {m['server_version']}, {m['cpus']} CPUs, {m['rounds']} rounds per "
             f"case, load average {m['load_before']:.2f} at the start; run took "
             f"{m['seconds'] / 60:.1f} min.", ""]
    for n in doc["notes"]:
        lines.append(f"- note: {n}")
    lines += ["", "| case | tool | median s | min-max s | MB/s | peak RSS MB |",
              "|---|---|---:|---:|---:|---:|"]
    for r in doc["results"]:
        lines.append(f"| {r['id']} | {r['tool']} | {r['median_s']:.2f} | {r['min_s']:.2f}-"
                     f"{r['max_s']:.2f} | {m['copy_bytes'] / MB / r['median_s']:.0f} | "
                     f"{r['peak_rss_mb']:.0f} |")
    lines += ["", "| ratio | median | range (worst-best round) | target |", "|---|---:|---:|---|"]
    for r in doc["ratios"]:
        t = "" if r["target"] is None else f">= {r['target']} {'met' if r['met'] else 'NOT met'}"
        lines.append(f"| {r['label']} | {r['ratio']:.2f}x | {r['low']:.2f}-{r['high']:.2f}x "
                     f"| {t} |")
    ours = [r["peak_rss_mb"] for r in doc["results"] if r["ours"]]
    if ours:
        lines.append(f"\ndumpcodec peak client RSS (largest process): {max(ours):.0f} MB "
                     f"(target < 200 MB)")
    return "\n".join(lines)


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks big-table",
                                description=__doc__.split("\n\n")[0])
    p.add_argument("--dsn", default=DEFAULT_DSN,
                   help="a database of the server to use (it creates dumpcodec_bench_big "
                        f"and {TARGET} there; default: {DEFAULT_DSN!r})")
    p.add_argument("--rows", type=int, default=DEFAULT_ROWS, help="rows of big")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--match", help="only cases whose id contains this")
    p.add_argument("--timeout", type=float, default=1800)
    p.add_argument("--workdir", help="scratch directory (default: a temp dir)")
    p.add_argument("--no-save", action="store_true")
    args = p.parse_args(argv)
    t0 = time.perf_counter()
    load_before = os.getloadavg()[0]
    data = ensure_data(args.dsn, args.rows)
    with psycopg.connect(args.dsn) as c:
        vnum = c.info.server_version
        vtext = c.execute("SHOW server_version").fetchone()[0].split()[0]
    bins = find_tools(vnum // 10000, embedded=False)
    notes: List[str] = []
    if load_before > 1.0:
        notes.append(f"the machine was busy at the start (load {load_before:.2f} on "
                     f"{os.cpu_count()} CPUs): figures are noisier than on an idle machine")
    pgcopydb, why = _pgcopydb(args.dsn)
    if why:
        notes.append(why)
        _log(why)
    zstd_dump = pg_dump_has_zstd(bins.get("pg_dump"), args.dsn)
    work_obj = None
    work = args.workdir
    if not work:
        work_obj = tempfile.TemporaryDirectory(prefix="dumpcodec-big-")
        work = work_obj.name
    case_list, more = cases(args.dsn, work, data["rows"], bins, zstd_dump, pgcopydb)
    notes += more
    if args.match:
        case_list = [c for c in case_list if args.match in c.id]
    # rounds interleaved (every case once, then again): a machine whose load changes
    # during the run then weighs on every case alike, not on whichever ran last
    figures: Dict[str, Tuple[List[float], List[float]]] = {c.id: ([], []) for c in case_list}
    live = list(case_list)
    try:
        for rnd in range(args.rounds):
            for case in list(live):
                _log(f"[big-table] round {rnd + 1}/{args.rounds} {case.id}: {case.tool}")
                try:
                    wall, rss = run_round(case, args.timeout)
                except (RuntimeError, TimeoutError, subprocess.CalledProcessError) as exc:
                    notes.append(f"{case.id} failed: {exc}")
                    _log(f"    failed: {exc}")
                    live.remove(case)
                    continue
                figures[case.id][0].append(wall)
                figures[case.id][1].append(rss)
                _log(f"    {wall:.2f} s, peak RSS {rss:.0f} MB")
    finally:
        with psycopg.connect(args.dsn, autocommit=True) as c:
            c.execute(f'DROP DATABASE IF EXISTS "{TARGET}" WITH (FORCE)')
        if work_obj is not None:
            work_obj.cleanup()
    results = {c.id: summary(c, *figures[c.id]) for c in live if figures[c.id][0]}
    doc = {"meta": {"date": _dt.date.today().isoformat(), "host": socket.gethostname(),
                    "server_version": vtext, "cpus": os.cpu_count(), "rounds": args.rounds,
                    "rows": data["rows"], "copy_bytes": data["copy_bytes"],
                    "load_before": load_before, "seconds": time.perf_counter() - t0,
                    "argv": argv},
           "notes": notes, "results": list(results.values()), "ratios": ratios(results)}
    md = to_markdown(doc)
    print(md)
    if not args.no_save:
        RESULTS_DIR.mkdir(parents=True, exist_ok=True)
        stem = RESULTS_DIR / f"{doc['meta']['date']}-{doc['meta']['host']}-big-table"
        Path(f"{stem}.json").write_text(json.dumps(doc, indent=1) + "\n")
        Path(f"{stem}.md").write_text(md + "\n")
        _log(f"wrote {stem}.json and {stem}.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
