"""Many tables: a restore of 1,000 tables at -j 2 with failures injected into some.

The others must restore, the failures come back grouped by reason (one line each in
the CLI's summary), at most two server connections are used, and a restore in which
every table already exists says so before doing anything.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys

import psycopg
import pytest

from dumpcodec import create_dump, open_dump, restore_dump
from dumpcodec.errors import RestoreError
from dumpcodec.progress import Progress
from dumpcodec.restore.results import TABLE

N = 1000


def _make_tables(db, n: int) -> None:
    with db.connect() as c:
        for lo in range(0, n, 100):
            c.execute("; ".join(
                f"CREATE TABLE t{i:04d} (id serial PRIMARY KEY, v int, name text); "
                f"CREATE INDEX ON t{i:04d} (v); "
                f"INSERT INTO t{i:04d} (v, name) SELECT g, 'n' || g "
                f"FROM generate_series(1, 100) g"
                for i in range(lo, min(n, lo + 100))))


class _Sampler(Progress):
    """Counts the target database's server connections each time a table ends."""

    def __init__(self, dsn: str, dbname: str):
        self.conn = psycopg.connect(dsn, autocommit=True)
        self.dbname = dbname
        self.most = 0

    def table_done(self, table_id, rows, nbytes, seconds, error=None) -> None:
        n = self.conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND pid <> "
            "pg_backend_pid() AND backend_type = 'client backend'",
            (self.dbname,)).fetchone()[0]
        self.most = max(self.most, n)


def _rewrite(src, dst, refuse):
    """Copy archive ``src`` to ``dst``, giving the tables in ``refuse`` a CHECK that
    the allow-list refuses."""
    with open_dump(str(src)) as r:
        tables = [(info, [bytes(c) for c in chunks]) for info, chunks in r.iter_tables()]
        info_doc = dict(r.info)
    with open_dump(str(dst), "w") as w:
        w.set_info(server_version=info_doc.get("server_version"),
                   client_encoding=info_doc.get("client_encoding"))
        for info, chunks in tables:
            d = json.loads(json.dumps(info.definition))
            if info.table_id in refuse:
                d["constraints"].append({"name": "slow", "kind": "check",
                                         "expression": "pg_sleep(1) IS NOT NULL"})
            with w.add_table(info.table_id, d, info.columns, info.types,
                             format=info.format, extra=info.extra) as t:
                for c in chunks:
                    t.write(c)


@pytest.mark.slow
def test_thousand_tables_with_failures(make_db, tmp_path):
    src, dst = make_db(), make_db()
    _make_tables(src, N)
    plain, crafted = tmp_path / "many.dcz", tmp_path / "crafted.dcz"
    create_dump(src.dsn, ["public"], str(plain), jobs=2)
    refused = {f"public.t{i:04d}" for i in range(7, N, 97)}          # 11 tables
    exist = {f"public.t{i:04d}" for i in range(3, N, 50)}              # 20 tables
    _rewrite(plain, crafted, refused)
    with dst.connect() as c:
        c.execute("; ".join(f"CREATE TABLE {t} (x int)" for t in sorted(exist)))

    sampler = _Sampler(dst.server.dsn, dst.name)
    summary = restore_dump(dst.dsn, str(crafted), jobs=2, progress=sampler)
    sampler.conn.close()

    failed = {t for t, _ in summary.failed}
    assert failed == refused | exist
    assert {r.table_id for r in summary.ok} == \
        {f"public.t{i:04d}" for i in range(N)} - refused - exist
    assert 1 <= sampler.most <= 2
    groups = dict((reason, set(ids)) for reason, ids in summary.grouped_failures())
    assert len(groups) == 2, groups
    exists_reason = next(r for r in groups if "already exists" in r)
    assert groups[exists_reason] == exist and TABLE in exists_reason
    refused_reason = next(r for r in groups if "pg_sleep" in r)
    assert groups[refused_reason] == refused
    # the restored ones are whole: rows and keys
    with dst.connect() as c:
        assert c.execute("SELECT count(*) FROM t0001").fetchone()[0] == 100
        assert c.execute("SELECT count(*) FROM pg_indexes WHERE tablename = 't0001'"
                         ).fetchone()[0] == 2


def test_grouped_failures_in_the_cli_and_all_existing_up_front(make_db, tmp_path):
    src, dst = make_db(), make_db()
    _make_tables(src, 12)
    path = tmp_path / "few.dcz"
    create_dump(src.dsn, ["public"], str(path))
    with dst.connect() as c:
        c.execute("; ".join(f"CREATE TABLE t{i:04d} (x int)" for i in range(8)))
    env = dict(os.environ)
    proc = subprocess.run([sys.executable, "-m", "dumpcodec", "load", str(path),
                           "--dsn", dst.dsn, "-q"], capture_output=True, text=True, env=env)
    assert proc.returncode == 1
    lines = [l for l in proc.stderr.splitlines() if l.startswith("  ")]
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("  8 tables: ") and "already exists" in lines[0]
    assert "public.t0000" in lines[0] and "public.t0007" in lines[0]
    # every table there already (the load above restored the other four): said
    # before anything is done
    with dst.connect() as c:
        before = c.execute("SELECT count(*) FROM pg_class").fetchone()[0]
    with pytest.raises(RestoreError, match=r"all 12 tables .* already exist .*"
                                           r"nothing was done"):
        restore_dump(dst.dsn, str(path))
    with dst.connect() as c:
        assert c.execute("SELECT count(*) FROM pg_class").fetchone()[0] == before
