"""Load: dumping tables that are being written to, restoring a thousand tables.

* A writer thread commits transactions as fast as it can (several hundred per
  second here) into a ledger, a running total and parent/child tables while a dump
  runs -- also with ``-j 2``.  The dump is held mid-COPY (its pipe is not read for a
  while) so that the writers demonstrably go on meanwhile, and the dump's sessions
  are checked to hold nothing stronger than ACCESS SHARE on any relation and no
  transaction id (read only).  The archive must be one snapshot: the total equals
  the ledger's sum, and every child's parent is in the dump.
* A restore with ``-j 2`` of a dump of 1,000 small tables (each with a key) completes
  with every table and row, using no more connections than it was given.
"""
from __future__ import annotations

import subprocess
import sys
import threading
import time

import psycopg
import pytest

from dumpcodec.archive import open_dump


class Writer(threading.Thread):
    """Commits transactions in a loop until stopped; counts them."""

    def __init__(self, dsn: str):
        super().__init__(daemon=True)
        self.conn = psycopg.connect(dsn, autocommit=True)
        # the writer measures the dump, not the disk's fsync rate
        self.conn.execute("SET synchronous_commit = off")
        self.pid = self.conn.info.backend_pid
        self.commits = 0
        self.error = None
        self._stop_evt = threading.Event()

    def run(self):
        try:
            i = 0
            while not self._stop_evt.is_set():
                i += 1
                # one statement, one transaction: ledger, total, parent and child
                self.conn.execute(
                    "WITH l AS (INSERT INTO public.ledger (amount) VALUES (%(a)s)), "
                    "t AS (UPDATE public.total SET n = n + 1, s = s + %(a)s), "
                    "p AS (INSERT INTO public.parent DEFAULT VALUES RETURNING id) "
                    "INSERT INTO public.child (parent_id) SELECT id FROM p", {"a": i % 7 + 1})
                self.commits += 1
        except Exception as exc:  # noqa: BLE001 - reported by the test
            self.error = exc
        finally:
            self.conn.close()

    def stop(self):
        self._stop_evt.set()
        self.join(30)


def _schema(db):
    db.execute("CREATE TABLE public.ledger (id bigserial PRIMARY KEY, amount int NOT NULL)")
    db.execute("CREATE TABLE public.total (n bigint NOT NULL, s bigint NOT NULL)")
    db.execute("INSERT INTO public.total VALUES (0, 0)")
    db.execute("CREATE TABLE public.parent (id bigserial PRIMARY KEY, "
               "filler text DEFAULT repeat('p', 200))")
    db.execute("CREATE TABLE public.child (id bigserial PRIMARY KEY, "
               "parent_id bigint NOT NULL REFERENCES public.parent)")
    # enough data that the dump's COPY of parent outlasts the pipe and socket buffers
    db.execute("INSERT INTO public.parent (filler) SELECT repeat(md5(i::text), 8) "
               "FROM generate_series(1, 100000) i")


def _dump_locks(db, exclude):
    return db.execute(
        "SELECT a.pid, l.locktype, l.mode, l.relation::regclass::text "
        "FROM pg_catalog.pg_locks l JOIN pg_catalog.pg_stat_activity a ON a.pid = l.pid "
        "WHERE a.datname = %s AND a.backend_type = 'client backend' "
        "AND NOT (a.pid = ANY(%s)) AND a.pid <> pg_backend_pid()", (db.name, list(exclude)))


@pytest.mark.parametrize("jobs", [1, 2])
def test_dump_under_write_load_is_one_snapshot_and_blocks_nobody(db, tmp_path, jobs):
    _schema(db)
    writer = Writer(db.dsn)
    writer.start()
    try:
        time.sleep(0.5)
        proc = subprocess.Popen(
            [sys.executable, "-m", "dumpcodec", "create", "--dsn", db.dsn, "-j", str(jobs),
             "--compress", "none", "--chunk-size", "64K", "-q", "-o", "-",
             "-t", "public.total", "-t", "public.ledger", "-t", "public.parent",
             "-t", "public.child"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        head = proc.stdout.read(32 * 1024)
        # The dump is now stalled on its pipe, inside its snapshot.  Writers go on.
        samples = []
        before = writer.commits
        t0 = time.monotonic()
        for _ in range(10):
            time.sleep(0.1)
            samples += _dump_locks(db, {writer.pid})
        stalled_commits = writer.commits - before
        stalled_secs = time.monotonic() - t0
        rest = proc.stdout.read()
        err = proc.stderr.read().decode()
        assert proc.wait(120) == 0, err
    finally:
        writer.stop()
    assert writer.error is None, writer.error
    rate = stalled_commits / stalled_secs
    print(f"\nwriter: {writer.commits} commits, {rate:.0f} tx/s while the dump was held")
    assert stalled_commits >= 20, f"writers stalled during the dump ({stalled_commits})"
    rel_modes = {m for _pid, kind, m, _rel in samples if kind == "relation"}
    assert samples and rel_modes <= {"AccessShareLock"}, samples
    assert not [s for s in samples if s[1] == "transactionid"], "the dump wrote something"

    path = tmp_path / "load.tar"
    path.write_bytes(head + rest)
    with open_dump(str(path)) as r:
        assert r.verify().ok
        (n, s), = list(r.read_rows("public.total"))
        amounts = [a for _id, a in r.read_rows("public.ledger")]
        parents = {p for p, _f in r.read_rows("public.parent")}
        children = [p for _id, p in r.read_rows("public.child")]
    assert n == len(amounts) and s == sum(amounts), "total and ledger from different moments"
    assert n > 0 and len(children) == n
    assert set(children) <= parents, "a child without its parent: not one snapshot"


N_TABLES = 1000


@pytest.mark.slow      # 40-60 s on a quiet machine, more on a loaded one
def test_restore_thousand_tables_with_two_jobs(make_db, tmp_path):
    from dumpcodec.dump import create_dump
    from dumpcodec.restore import restore_dump
    src = make_db()
    src.execute(f"""
        DO $$
        BEGIN
          FOR i IN 1..{N_TABLES} LOOP
            EXECUTE format('CREATE TABLE public.t%s (id int PRIMARY KEY, v text)', i);
            EXECUTE format('INSERT INTO public.t%s SELECT g, %L FROM generate_series(1, %s) g',
                           i, 'v' || i, i % 5 + 1);
          END LOOP;
        END $$""")
    path = tmp_path / "many.dump"
    create_dump(src.dsn, ["public.*"], str(path))
    with open_dump(str(path)) as r:
        assert len(r.tables()) == N_TABLES

    target = make_db()
    max_seen = [0]
    done = threading.Event()

    def watch():
        with psycopg.connect(target.server.dsn, autocommit=True) as c:
            while not done.is_set():
                n = c.execute("SELECT count(*) FROM pg_catalog.pg_stat_activity "
                              "WHERE datname = %s", (target.name,)).fetchone()[0]
                max_seen[0] = max(max_seen[0], n)
                time.sleep(0.05)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        summary = restore_dump(target.dsn, str(path), jobs=2)
    finally:
        done.set()
        watcher.join(10)
    assert not summary.failed, summary.failed[:3]
    counts = target.execute(
        "SELECT count(*), sum((xpath('/row/c/text()', query_to_xml("
        "format('SELECT count(*) AS c FROM %I.%I', schemaname, tablename), false, true, "
        "'')))[1]::text::int) FROM pg_catalog.pg_tables WHERE schemaname = 'public'")
    expected_rows = sum(i % 5 + 1 for i in range(1, N_TABLES + 1))
    assert counts == [(N_TABLES, expected_rows)]
    pks = target.execute("SELECT count(*) FROM pg_catalog.pg_constraint c JOIN "
                         "pg_catalog.pg_namespace n ON n.oid = c.connamespace "
                         "WHERE n.nspname = 'public' AND c.contype = 'p'")
    assert pks == [(N_TABLES,)]
    # two workers, plus at most one coordinating connection
    assert 1 <= max_seen[0] <= 3, max_seen[0]
