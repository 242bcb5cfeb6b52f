"""Dump to and restore from S3 (moto's server on loopback) against a local file and
against ``pg_dump -Fc | streamed put``.

    python -m benchmarks objstore                       # ~500 MB of COPY data, 5 rounds
    python -m benchmarks objstore --size 100 --rounds 5 # quicker
    python -m benchmarks objstore --memory-only --memory-size 2000   # the 2 GB RSS check

Cases, each round, each in its own child process (wall time and peak RSS from
``os.wait4``, children of a pipeline included):

``dump local``      ``dumpcodec create -o FILE``
``dump s3``         ``dumpcodec create -o s3://bench/KEY`` (multipart upload while dumping)
``pg_dump -Fc + put`` ``pg_dump -Fc | python -c 'boto3 upload_fileobj(stdin)'`` (boto3's
                    managed streamed multipart upload), the same endpoint
``load local``      ``dumpcodec load FILE`` into a fresh database
``load s3``         ``dumpcodec load s3://bench/KEY -j 2`` (ranged reads) into a fresh one
``get + pg_restore`` ``python -c 'boto3 download to stdout' | pg_restore -d DB``

The S3 endpoint is moto's standalone server (``python -m moto.server``) in its own
process on 127.0.0.1, so the client's figures include HTTP and the server's Python
work competes for the same cores: the ratios say what the upload path costs here,
not what a real S3 would do.  moto also answers each ranged GET by copying the
whole object (``FakeKey.value``), so every range request of ``load s3`` costs the
server the object's size: the load figures on moto are pessimistic.  Reported: median seconds with min-max over
``--rounds`` (at least 5 by default), MB/s of COPY data, peak RSS, and the ratios
s3/local and dumpcodec/pg_dump.  ``--memory-size`` MB of data are dumped to S3 once
(``--compress none``: the archive is as large as the data) and its peak RSS is
checked against 250 MB.

Needs ``pip install -e '.[test]'`` (moto, s3fs, boto3) and pg_dump/pg_restore of the
server's major version on PATH (or ``--pg-bin``).  Connection: ``--dsn`` (default
the PG* environment).  The data is made in a database ``dumpcodec_bench_objstore``,
created on first use and kept.
"""
from __future__ import annotations

import argparse
import json
import os
import shlex
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from typing import Dict, List, Optional

DBNAME = "dumpcodec_bench_objstore"
BUCKET = "bench"
PY = sys.executable
MEMORY_LIMIT = 250 << 20

_PUT = ("import sys, boto3; boto3.client('s3').upload_fileobj(sys.stdin.buffer, "
        "sys.argv[1], sys.argv[2])")
_GET = ("import sys, boto3; boto3.client('s3').download_fileobj(sys.argv[1], "
        "sys.argv[2], sys.stdout.buffer)")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _dsn_for(dsn: str, dbname: str) -> str:
    import psycopg.conninfo
    return psycopg.conninfo.make_conninfo(dsn, dbname=dbname)


def setup_data(dsn: str, size_mb: int, table: str) -> int:
    """A table of about ``size_mb`` MB of COPY data (ints, text, numeric, timestamps);
    its row count.  Kept between runs."""
    import psycopg
    with psycopg.connect(dsn, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s",
                            (DBNAME,)).fetchone():
            conn.execute(f"CREATE DATABASE {DBNAME}")
    rows = size_mb * 1_000_000 // 160
    with psycopg.connect(_dsn_for(dsn, DBNAME), autocommit=True) as conn:
        have = conn.execute("SELECT n_live_tup FROM pg_stat_user_tables WHERE relname = %s",
                            (table,)).fetchone()
        exists = conn.execute("SELECT to_regclass(%s)", (table,)).fetchone()[0]
        if exists and have and abs(have[0] - rows) < rows // 100:
            return rows
        conn.execute(f"DROP TABLE IF EXISTS {table}")
        conn.execute(f"""CREATE TABLE {table} (id bigint PRIMARY KEY, a int, t text,
                         n numeric(12,2), ts timestamptz)""")
        conn.execute(f"""INSERT INTO {table} SELECT g, ((g::bigint * 7919) % 100000)::int,
                         md5(g::text) || md5((g::bigint * 3)::text) || md5((g::bigint * 5)::text),
                         (g % 1000000) / 100.0, '2020-01-01'::timestamptz + g * interval '1 s'
                         FROM generate_series(1, {rows}) g""")
        conn.execute(f"VACUUM ANALYZE {table}")
    return rows


def _run(cmd: str, env: Dict[str, str], timeout: float) -> Dict[str, float]:
    """Run ``cmd`` (a shell pipeline) in a child; seconds and peak RSS (wait4)."""
    t0 = time.perf_counter()
    p = subprocess.Popen(["bash", "-o", "pipefail", "-c", cmd], env=env,
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(p.pid, 0)
    dt = time.perf_counter() - t0
    err = p.stderr.read().decode(errors="replace") if p.stderr else ""
    p.returncode = os.waitstatus_to_exitcode(status)
    if p.returncode != 0:
        raise RuntimeError(f"{cmd!r} failed ({p.returncode}): {err.strip()[-800:]}")
    return {"seconds": dt, "rss": usage.ru_maxrss * 1024}


def _fresh_db(dsn: str) -> str:
    import psycopg
    name = f"dcbench_os_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    return name


def _drop_db(dsn: str, name: str) -> None:
    import psycopg
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


class Moto:
    def __init__(self) -> None:
        self.port = _free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen([PY, "-m", "moto.server", "-H", "127.0.0.1", "-p",
                                      str(self.port)], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        for _ in range(200):
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.2).close()
                break
            except OSError:
                time.sleep(0.05)
        else:
            raise RuntimeError("moto's server did not start")

    def env(self) -> Dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env.update(AWS_ENDPOINT_URL=self.endpoint, AWS_ACCESS_KEY_ID="bench",
                   AWS_SECRET_ACCESS_KEY="bench", AWS_DEFAULT_REGION="us-east-1",
                   AWS_EC2_METADATA_DISABLED="true")
        return env

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


def _summary(values: List[float]) -> Dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def run(args: argparse.Namespace) -> Dict[str, object]:
    import boto3
    dsn = args.dsn or ""
    pg_bin = args.pg_bin
    pg_dump = os.path.join(pg_bin, "pg_dump") if pg_bin else "pg_dump"
    pg_restore = os.path.join(pg_bin, "pg_restore") if pg_bin else "pg_restore"
    moto = Moto()
    env = moto.env()
    out: Dict[str, object] = {"rounds": args.rounds, "size_mb": args.size}
    try:
        s3 = boto3.client("s3", endpoint_url=moto.endpoint, aws_access_key_id="bench",
                          aws_secret_access_key="bench", region_name="us-east-1")
        s3.create_bucket(Bucket=BUCKET)
        src = _dsn_for(dsn, DBNAME)
        q = shlex.quote
        dc = f"{q(PY)} -m dumpcodec"
        if not args.memory_only:
            t0 = time.perf_counter()
            rows = setup_data(dsn, args.size, "t")
            print(f"data: {rows} rows (~{args.size} MB) ready in "
                  f"{time.perf_counter() - t0:.1f} s", file=sys.stderr)
            import psycopg
            with psycopg.connect(src) as conn:
                nbytes = conn.execute("SELECT pg_relation_size('t')").fetchone()[0]
            results: Dict[str, List[Dict[str, float]]] = {}
            with tempfile.TemporaryDirectory(prefix="dcbench-objstore-") as tmp:
                local = os.path.join(tmp, "local.dcz")
                pgdump_key = "pgdump.fc"
                for r in range(args.rounds):
                    cases = {
                        "dump local": f"{dc} create --dsn {q(src)} -t t -o {q(local)} -q",
                        "dump s3": f"{dc} create --dsn {q(src)} -t t -o "
                                   f"s3://{BUCKET}/dc.dcz -q",
                        "pg_dump -Fc + put": f"{q(pg_dump)} -Fc -t t -d {q(src)} | {q(PY)} -c "
                                         f"{q(_PUT)} {BUCKET} {pgdump_key}",
                    }
                    for name, cmd in cases.items():
                        results.setdefault(name, []).append(_run(cmd, env, args.timeout))
                    for name, make in (
                            ("load local", lambda d: f"{dc} load {q(local)} --dsn "
                                                     f"{q(d)} -j 2 -q"),
                            ("load s3", lambda d: f"{dc} load s3://{BUCKET}/dc.dcz --dsn "
                                                  f"{q(d)} -j 2 -q"),
                            ("get + pg_restore", lambda d: f"{q(PY)} -c {q(_GET)} {BUCKET} "
                                                           f"{pgdump_key} | {q(pg_restore)} "
                                                           f"-d {q(d)}")):
                        db = _fresh_db(dsn)
                        try:
                            results.setdefault(name, []).append(
                                _run(make(_dsn_for(dsn, db)), env, args.timeout))
                        finally:
                            _drop_db(dsn, db)
                    print(f"round {r + 1}/{args.rounds}: " + ", ".join(
                        f"{k} {v[-1]['seconds']:.2f} s" for k, v in results.items()),
                        file=sys.stderr)
            table = {}
            for name, rs in results.items():
                secs = _summary([x["seconds"] for x in rs])
                table[name] = {"seconds": secs,
                               "rss_mb": _summary([x["rss"] / 2**20 for x in rs]),
                               "mb_per_s": nbytes / 1e6 / secs["median"]}
            med = {k: v["seconds"]["median"] for k, v in table.items()}
            out["cases"] = table
            out["table_bytes"] = nbytes
            out["ratios"] = {
                "dump s3 / dump local": med["dump s3"] / med["dump local"],
                "dump s3 / pg_dump -Fc + put": med["dump s3"] / med["pg_dump -Fc + put"],
                "load s3 / load local": med["load s3"] / med["load local"],
                "load s3 / get + pg_restore": med["load s3"] / med["get + pg_restore"],
            }
        if args.memory_size:
            t0 = time.perf_counter()
            rows = args.memory_size * 1_000_000 // 2060
            import psycopg
            with psycopg.connect(src, autocommit=True) as conn:
                have = conn.execute("SELECT count(*) FROM pg_class WHERE relname = 'm' "
                                    "AND reltuples = %s", (rows,)).fetchone()[0]
                if not have:
                    # 2 KB of text a row that TOAST compresses: little disk, full size
                    # as COPY data
                    conn.execute("DROP TABLE IF EXISTS m")
                    conn.execute("CREATE TABLE m AS SELECT g AS id, repeat(md5(g::text), "
                                 f"64) AS v FROM generate_series(1, {rows}) g")
                    conn.execute("ANALYZE m")
            print(f"memory data ready in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
            m = _run(f"{dc} create --dsn {q(src)} -t m -o s3://{BUCKET}/m.dcz "
                     "--compress none -q", env, args.timeout * 4)
            size = s3.head_object(Bucket=BUCKET, Key="m.dcz")["ContentLength"]
            out["memory"] = {"archive_bytes": size, "seconds": m["seconds"],
                             "peak_rss_mb": m["rss"] / 2**20,
                             "under_250_mb": m["rss"] < MEMORY_LIMIT}
            s3.delete_object(Bucket=BUCKET, Key="m.dcz")
    finally:
        moto.stop()
    return out


def report(out: Dict[str, object]) -> str:
    lines = [f"# dumpcodec to/from S3 (moto on loopback), {out['rounds']} rounds", ""]
    cases = out.get("cases")
    if cases:
        lines += [f"table: {out['table_bytes'] / 1e6:.0f} MB on disk (~{out['size_mb']} MB)",
                  "", "| case | median s | min-max s | MB/s | peak RSS MB |",
                  "|---|---:|---:|---:|---:|"]
        for name, c in cases.items():   # type: ignore[union-attr]
            s = c["seconds"]
            lines.append(f"| {name} | {s['median']:.2f} | {s['min']:.2f}-{s['max']:.2f} | "
                         f"{c['mb_per_s']:.0f} | {c['rss_mb']['median']:.0f} |")
        lines += ["", "| ratio (median time) | |", "|---|---:|"]
        for k, v in out["ratios"].items():   # type: ignore[union-attr]
            lines.append(f"| {k} | {v:.2f} |")
    mem = out.get("memory")
    if mem:
        lines += ["", f"dump of {mem['archive_bytes'] / 1e9:.2f} GB to S3 "  # type: ignore
                  f"(--compress none): {mem['seconds']:.1f} s, peak RSS "     # type: ignore
                  f"{mem['peak_rss_mb']:.0f} MB "                            # type: ignore
                  f"({'under' if mem['under_250_mb'] else 'OVER'} 250 MB)"]   # type: ignore
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m benchmarks objstore",
                                description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dsn", help="server to use (default: the PG* environment)")
    p.add_argument("--size", type=int, default=500, help="MB of data (default 500)")
    p.add_argument("--rounds", type=int, default=5, help="rounds (default 5)")
    p.add_argument("--memory-size", type=int, default=2000,
                   help="MB dumped once to S3 for the peak-RSS check (default 2000; 0: "
                        "skip)")
    p.add_argument("--memory-only", action="store_true",
                   help="only the peak-RSS check")
    p.add_argument("--pg-bin", help="directory of pg_dump/pg_restore")
    p.add_argument("--timeout", type=float, default=900)
    p.add_argument("--json", help="also write the results to this file")
    return p


def main(argv: Optional[List[str]] = None) -> int:
    import signal
    args = build_parser().parse_args(argv)
    # SIGTERM as an exception: the finally clauses stop moto and drop the databases
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    t0 = time.perf_counter()
    out = run(args)
    out["runtime_s"] = time.perf_counter() - t0
    print(report(out))
    print(f"\n(ran {out['runtime_s']:.0f} s)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=1)
    mem = out.get("memory")
    return 0 if not mem or mem["under_250_mb"] else 1  # type: ignore[index]


if __name__ == "__main__":
    sys.exit(main())
