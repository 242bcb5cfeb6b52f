"""Many tables: ``dumpcodec create/load`` against ``pg_dump -Fc``/``pg_restore`` (issue 19).

One command, from the repository root::

    python -m benchmarks.bench_many_tables                 # embedded PostgreSQL 16
    python -m benchmarks.bench_many_tables --dsn postgresql://postgres@127.0.0.1/postgres
    python -m benchmarks.bench_many_tables --quick         # 50 + 300 tables, 2 rounds (a smoke test)

Also the ``many-tables`` group of ``python -m benchmarks``, run only when named:
``python -m benchmarks --only many-tables`` (it is not in the default run).

Two databases, built once and kept (``dumpcodec_bench_many``, ``dumpcodec_bench_empty``):

``small``  1,000 tables of 100 rows, each ``(id serial PRIMARY KEY, v int, name text)``
           with an index on ``v``;
``empty``  10,000 empty tables ``(id int PRIMARY KEY)``.

Per database, side by side in the same run: ``pg_dump -Fc`` against ``dumpcodec create``
at ``-j 1`` and ``-j 2`` (pg_dump's custom format has no ``-j``: both are compared with
it), then ``pg_restore -j 1/-j 2`` of that archive against ``dumpcodec load -j 1/-j 2
--no-analyze`` (the same work: pg_restore runs no ANALYZE), each restore into a fresh
database.  Every case is a child process timed from outside (interpreter start-up
included, as a user sees it), its peak RSS from ``wait4``/GNU time
(:func:`benchmarks.run.run_measured`).  Reported: median and min-max of ``--rounds``
(default 5; the 10,000-table database ``--rounds-empty``, default 3, because each of
its rounds takes over 10 s) and the ratio peer time / dumpcodec time (>= 1.0: dumpcodec
takes at most the peer's time).
"""
from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import sys
import tempfile
import time
from typing import Any, Dict, List, Optional

if __package__ in (None, ""):  # run as a script
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
    __package__ = "benchmarks"

import psycopg  # noqa: E402
import psycopg.conninfo  # noqa: E402

GROUP = "many-tables"
#: name -> (database, tables, rows per table)
DATASETS = {"small": ("dumpcodec_bench_many", 1000, 100),
            "empty": ("dumpcodec_bench_empty", 10000, 0)}
QUICK = {"small": ("dumpcodec_bench_many_quick", 50, 100),
         "empty": ("dumpcodec_bench_empty_quick", 300, 0)}


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _dsn(admin: str, dbname: str) -> str:
    return psycopg.conninfo.make_conninfo(admin, dbname=dbname)


def ensure_dataset(admin: str, dbname: str, tables: int, rows: int) -> str:
    """The database with its tables (built when missing or incomplete)."""
    with psycopg.connect(admin, autocommit=True) as c:
        exists = c.execute("SELECT 1 FROM pg_database WHERE datname = %s",
                           (dbname,)).fetchone()
        if not exists:
            c.execute(f'CREATE DATABASE "{dbname}"')
    dsn = _dsn(admin, dbname)
    prefix = "t" if rows else "e"
    with psycopg.connect(dsn, autocommit=True) as c:
        have = c.execute("SELECT count(*) FROM pg_class WHERE relkind = 'r' AND "
                         "relnamespace = 'public'::regnamespace").fetchone()[0]
        if have == tables:
            return dsn
        _log(f"building {dbname}: {tables} tables of {rows} rows ...")
        c.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
        for lo in range(0, tables, 200):
            stmts = []
            for i in range(lo, min(tables, lo + 200)):
                t = f"{prefix}{i:05d}"
                if rows:
                    stmts.append(f"CREATE TABLE {t} (id serial PRIMARY KEY, v int, name text);"
                                 f"CREATE INDEX ON {t} (v);"
                                 f"INSERT INTO {t} (v, name) SELECT g, 'n' || g "
                                 f"FROM generate_series(1, {rows}) g")
                else:
                    stmts.append(f"CREATE TABLE {t} (id int PRIMARY KEY)")
            c.execute(";".join(stmts))
        c.execute("VACUUM ANALYZE")
    return dsn


def _fresh_db(admin: str, name: str) -> str:
    with psycopg.connect(admin, autocommit=True) as c:
        c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        c.execute(f'CREATE DATABASE "{name}"')
    return _dsn(admin, name)


def _drop_db(admin: str, name: str) -> None:
    with psycopg.connect(admin, autocommit=True) as c:
        c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _restored_tables(dsn: str) -> int:
    with psycopg.connect(dsn) as c:
        return c.execute("SELECT count(*) FROM pg_class WHERE relkind = 'r' AND "
                         "relnamespace = 'public'::regnamespace").fetchone()[0]


def _measure(argv: List[str], timeout: float) -> Dict[str, Any]:
    from benchmarks.run import run_measured
    r = run_measured(argv, timeout=timeout)
    if r["rc"] != 0:
        raise RuntimeError(f"{' '.join(map(shlex.quote, argv))} failed ({r['rc']}): "
                           f"{r['stderr'][-800:]}")
    return r


def _record(dataset: str, kind: str, tool: str, ours: bool, jobs: int,
            runs: List[Dict[str, Any]], argv: List[str], tables: int) -> Dict[str, Any]:
    secs = [r["wall"] for r in runs]
    return {"id": f"{GROUP}/{dataset}/{kind}/{tool.split()[0]}-j{jobs}",
            "group": GROUP, "table": dataset, "kind": kind, "tool": tool, "ours": ours,
            "jobs": jobs, "tables": tables, "seconds": secs,
            "median_s": statistics.median(secs), "min_s": min(secs), "max_s": max(secs),
            "peak_rss_mb": max(r["rss_kb"] for r in runs) / 1024,
            "command": " ".join(map(shlex.quote, argv)), "rounds": len(secs)}


def bench_dataset(admin: str, dataset: str, dbname: str, tables: int, rows: int,
                  rounds: int, workdir: str, bins: Dict[str, Optional[str]],
                  timeout: float) -> List[Dict[str, Any]]:
    """Every case on one database; the records of :func:`run`."""
    dsn = ensure_dataset(admin, dbname, tables, rows)
    py = sys.executable
    pg_file = os.path.join(workdir, f"{dataset}.pgdump")
    dc_file = os.path.join(workdir, f"{dataset}.dcz")
    target = f"{dbname}_restore_{os.getpid()}"
    target_dsn = _dsn(admin, target)
    dumps = [("pg_dump -Fc", False, 1, [bins["pg_dump"], "-Fc", "-f", pg_file, "-d", dsn])]
    for j in (1, 2):
        dumps.append((f"dumpcodec create -j{j}", True, j,
                      [py, "-m", "dumpcodec", "create", "--dsn", dsn, "-o", dc_file,
                       "-j", str(j), "-q"]))
    restores = []
    for j in (1, 2):
        restores.append((f"pg_restore -j{j}", False, j,
                         [bins["pg_restore"], "-j", str(j), "-d", target_dsn, pg_file]))
    for j in (1, 2):
        restores.append((f"dumpcodec load -j{j} --no-analyze", True, j,
                         [py, "-m", "dumpcodec", "load", "--dsn", target_dsn, "-j", str(j),
                          "--no-analyze", "-q", dc_file]))
    out = []
    for name, ours, j, argv in dumps:
        runs = []
        for k in range(rounds):
            runs.append(_measure(argv, timeout))
            _log(f"  {dataset} {name} round {k + 1}: {runs[-1]['wall']:.2f} s, "
                 f"{runs[-1]['rss_kb'] / 1024:.0f} MB")
        rec = _record(dataset, "dump", name, ours, j, runs, argv, tables)
        rec["size_bytes"] = os.path.getsize(pg_file if not ours else dc_file)
        out.append(rec)
    try:
        for name, ours, j, argv in restores:
            runs = []
            for k in range(rounds):
                _fresh_db(admin, target)
                runs.append(_measure(argv, timeout))
                got = _restored_tables(target_dsn)
                if got != tables:
                    raise RuntimeError(f"{name}: {got} tables restored, not {tables}")
                _log(f"  {dataset} {name} round {k + 1}: {runs[-1]['wall']:.2f} s, "
                     f"{runs[-1]['rss_kb'] / 1024:.0f} MB")
            out.append(_record(dataset, "restore", name, ours, j, runs, argv, tables))
    finally:
        _drop_db(admin, target)
        for f in (pg_file, dc_file):
            if os.path.exists(f):
                os.unlink(f)
    _add_ratios(out)
    return out


def _add_ratios(recs: List[Dict[str, Any]]) -> None:
    """``ratio``: the peer's median / ours (dumps: pg_dump -Fc; restores: pg_restore at
    the same -j)."""
    by = {(r["kind"], r["ours"], r["jobs"]): r for r in recs}
    for r in recs:
        if not r["ours"]:
            continue
        peer = by.get((r["kind"], False, 1 if r["kind"] == "dump" else r["jobs"]))
        if peer and r["median_s"] > 0:
            r["ratio"] = peer["median_s"] / r["median_s"]
            r["peer"] = peer["tool"]


def run(admin: str, rounds: int = 5, rounds_empty: int = 3, quick: bool = False,
        workdir: Optional[str] = None, bins: Optional[Dict[str, Optional[str]]] = None,
        timeout: float = 1800, only: Optional[List[str]] = None) -> Dict[str, Any]:
    """Both databases' cases; ``{"results": [...], "notes": [...]}``."""
    from benchmarks.run import find_tools
    with psycopg.connect(admin) as c:
        vnum = int(c.execute("SHOW server_version_num").fetchone()[0])
        version = c.execute("SHOW server_version").fetchone()[0].split()[0]
    if bins is None:
        bins = find_tools(vnum // 10000, embedded=False)
    if not bins.get("pg_dump") or not bins.get("pg_restore"):
        raise SystemExit(f"no pg_dump/pg_restore for PostgreSQL {version}")
    notes = [f"PostgreSQL {version}; {os.cpu_count()} cores; load average at start "
             f"{os.getloadavg()[0]:.2f}",
             "each case a child process timed from outside (start-up included); "
             "ratio = peer median / dumpcodec median (>= 1.0: dumpcodec at most the "
             "peer's time); dumps compared with pg_dump -Fc (no -j for that format)"]
    sets = QUICK if quick else DATASETS
    results = []
    own_tmp = workdir is None
    workdir = workdir or tempfile.mkdtemp(prefix="dumpcodec-many-")
    try:
        for dataset, (dbname, tables, rows) in sets.items():
            if only and dataset not in only:
                continue
            n = rounds_empty if dataset == "empty" else rounds
            if dataset == "empty" and n < rounds:
                notes.append(f"the {tables:,}-table database ran {n} rounds (each over "
                             f"10 s), the other {rounds}")
            _log(f"[{GROUP}] {dataset}: {tables} tables x {rows} rows, {n} rounds")
            t0 = time.perf_counter()
            results += bench_dataset(admin, dataset, dbname, tables, rows, n, workdir,
                                     bins, timeout)
            _log(f"  done in {time.perf_counter() - t0:.0f} s")
    finally:
        if own_tmp:
            import shutil
            shutil.rmtree(workdir, ignore_errors=True)
    return {"results": results, "notes": notes}


def for_runner(recs: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
    """The records as ``python -m benchmarks`` reports them: per data set and step,
    ``dumpcodec ... -j1`` is the case the peers are compared with."""
    out = []
    for r in recs:
        r = dict(r, table=f"{r['table']} {r['kind']}",
                 primary=r["ours"] and r["jobs"] == 1, source="bench_many_tables.py")
        if r["ours"] and "ratio" in r:
            r["note"] = f"{r['ratio']:.2f}x the speed of {r['peer']}"
        out.append(r)
    return out


def markdown(data: Dict[str, Any]) -> str:
    lines = ["| data | step | tool | median s | min-max s | peak RSS MB | ratio |",
             "|---|---|---|--:|--:|--:|--:|"]
    for r in data["results"]:
        ratio = f"{r['ratio']:.2f}x vs {r['peer']}" if "ratio" in r else ""
        lines.append(f"| {r['table']} ({r['tables']:,} tables) | {r['kind']} | {r['tool']} "
                     f"| {r['median_s']:.2f} | {r['min_s']:.2f}-{r['max_s']:.2f} "
                     f"| {r['peak_rss_mb']:.0f} | {ratio} |")
    return "\n".join(lines + [""] + [f"- {n}" for n in data["notes"]]) + "\n"


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--dsn", help="a database to create the benchmark databases from "
                   "(default: the embedded PostgreSQL 16)")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--rounds-empty", type=int, default=3,
                   help="rounds of the 10,000-table database (default 3)")
    p.add_argument("--quick", action="store_true", help="50 and 300 tables, 2 rounds")
    p.add_argument("--only", help="small or empty")
    p.add_argument("--json", help="write the results here")
    args = p.parse_args(argv)
    admin = args.dsn
    if not admin:
        from benchmarks.run import DEFAULT_PGDATA
        from dumpcodec.embedded import start_embedded
        admin = start_embedded(DEFAULT_PGDATA)
    rounds, rounds_empty = (2, 2) if args.quick else (args.rounds, args.rounds_empty)
    t0 = time.perf_counter()
    data = run(admin, rounds, rounds_empty, args.quick,
               only=args.only.split(",") if args.only else None)
    data["notes"].append(f"whole run {time.perf_counter() - t0:.0f} s")
    print(markdown(data))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(data, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
