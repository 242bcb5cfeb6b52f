"""Faults: a dump or restore whose connection dies, a full disk, a killed client.

Every fault is injected for real: the server connection is ended with
``pg_terminate_backend`` from another session while the dump or restore is inside
its work (held there by a lock another session keeps, or by a reader that stops
reading the pipe), the disk fills up through RLIMIT_FSIZE (and a 1 MB tmpfs where
the test may mount one), and the client is killed with SIGKILL/SIGTERM/SIGINT.

The promises: the command fails with one clear line; no file ever appears under
the final name; a partial archive written to a pipe is called incomplete by
``verify``; a table whose restore died is rolled back (a table it was replacing
keeps its old rows), the tables restored before it stay, and running the restore
again completes the job.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from dumpcodec.archive import open_dump

WAIT = 60          # seconds to wait for the dump/restore to reach the fault point


# ===================================================================== helpers

def _default_sigint():
    # A process started with SIGINT ignored (a background job of a non-interactive
    # shell, as CI may be) passes that on, and Python then installs no handler: give
    # the child the default disposition, as an interactive user's dumpcodec has.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def cli(*args, **kw):
    return subprocess.Popen([sys.executable, "-m", "dumpcodec", *args],
                            stdout=kw.pop("stdout", subprocess.PIPE),
                            stderr=subprocess.PIPE, preexec_fn=_default_sigint, **kw)


def finish(proc, timeout=120):
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out, err.decode("utf-8", "replace")


def wait_for(cond, what, timeout=WAIT, proc=None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = cond()
        if got:
            return got
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"process ended (rc {proc.returncode}) before {what}: "
                                 f"{proc.stderr.read().decode('utf-8', 'replace')[-2000:]}")
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def blocked_pids(db, exclude=()):
    """Backends of ``db`` waiting on a lock (our dump/restore held by the blocker)."""
    rows = db.execute(
        "SELECT pid FROM pg_catalog.pg_stat_activity WHERE datname = %s "
        "AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()", (db.name,))
    return [r[0] for r in rows or [] if r[0] not in exclude]


def copy_pids(db):
    rows = db.execute(
        "SELECT pid FROM pg_catalog.pg_stat_activity WHERE datname = %s AND state = 'active' "
        "AND query ILIKE '%%COPY%%' AND pid <> pg_backend_pid()", (db.name,))
    return [r[0] for r in rows or []]


def terminate(db, pids):
    for pid in pids:
        db.execute("SELECT pg_catalog.pg_terminate_backend(%s)", (pid,))


def one_clear_line(err: str):
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    assert "Traceback" not in err, err[-3000:]
    assert 1 <= len(lines) <= 3, err[-3000:]


def make_tables(db, big_rows=200_000, width=3):
    db.execute("CREATE TABLE public.a (id int PRIMARY KEY, v text)")
    db.execute("INSERT INTO public.a SELECT i, 'a' || i FROM generate_series(1, 1000) i")
    db.execute("CREATE TABLE public.b (id int PRIMARY KEY, v text)")
    db.execute(f"INSERT INTO public.b SELECT i, repeat(md5(i::text), {width}) "
               f"FROM generate_series(1, {big_rows}) i")
    db.execute("CREATE TABLE public.c (id int PRIMARY KEY, v text)")
    db.execute("INSERT INTO public.c SELECT i, 'c' || i FROM generate_series(1, 500) i")


def dsn_args(db):
    return ["--dsn", db.dsn]


# ======================================================================= dump

@pytest.mark.parametrize("compress", ["none", "zstd", "gzip"])
def test_dump_connection_killed_mid_copy_to_pipe(db, tmp_path, compress):
    # The dump writes to a pipe nobody reads: the server's COPY of b stalls on full
    # buffers; its backend is terminated; the partial archive must say incomplete.
    make_tables(db)
    # small chunks: the client writes (and blocks on the pipe) as it goes, instead of
    # holding a whole 64 MB chunk while the server finishes
    proc = cli("create", *dsn_args(db), "-t", "public.b", "--compress", compress,
               "--chunk-size", "64K", "-q", "-o", "-")
    first = proc.stdout.read(64 * 1024)           # started, then stop reading
    pids = wait_for(lambda: copy_pids(db), "the dump's COPY", proc=proc)
    terminate(db, pids)
    rest = proc.stdout.read()
    code, _, err = finish(proc)
    assert code != 0
    one_clear_line(err)
    assert "terminat" in err.lower() or "connection" in err.lower(), err
    partial = tmp_path / f"partial.{compress}"
    partial.write_bytes(first + rest)
    with open_dump(str(partial)) as r:
        report = r.verify()
    assert not report.ok and not report.complete
    vproc = cli("verify", str(partial))
    vcode, vout, verr = finish(vproc)
    assert vcode != 0
    assert "incomplete" in (vout.decode() + verr).lower()


SLOW_B = dict(big_rows=4000, width=32)    # 4 MB in rows of about 1 KB


def start_slow_dump(db, out, jobs=1):
    """A dump to ``out`` that is inside the COPY of b with part of the archive already
    in its temporary file: b (rows of 1 KB, see SLOW_B) is read through a ``--where``
    that sleeps 2 ms a row, and the client writes each 1 MiB block it gets in 64 KiB
    chunks, so the file grows for seconds.  Returns the process once the temporary
    file holds data."""
    proc = cli("create", *dsn_args(db), "-j", str(jobs), "--chunk-size", "64K",
               "--compress", "none",
               "--where", "public.b=pg_catalog.pg_sleep(0.002) IS NOT NULL", "-q",
               "-o", str(out))

    def partial_with_data():
        for name in os.listdir(out.parent):
            path = out.parent / name
            if name.endswith(".partial") and path.stat().st_size > 64 * 1024:
                return name
        return None

    wait_for(partial_with_data, "the temporary archive to hold data", proc=proc)
    assert copy_pids(db), "the dump should be inside a COPY"
    return proc


@pytest.mark.parametrize("jobs", [1, 2])
def test_dump_connection_killed_leaves_no_file(db, tmp_path, jobs):
    # The dump's backend is terminated inside the COPY of b (with -j 2: the worker
    # doing b; the other connection stays).  Nothing may appear under the final name,
    # and the temporary file is removed.
    make_tables(db, **SLOW_B)
    out = tmp_path / "out" / "db.dump"
    out.parent.mkdir()
    proc = start_slow_dump(db, out, jobs)
    terminate(db, copy_pids(db)[:1])
    code, _, err = finish(proc)
    assert code != 0
    one_clear_line(err)
    assert not out.exists()
    assert os.listdir(out.parent) == [], "temporary file left behind"


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM, signal.SIGINT])
def test_client_killed_mid_dump_leaves_no_final_file(db, tmp_path, sig):
    make_tables(db, **SLOW_B)
    out = tmp_path / "out" / "db.dump"
    out.parent.mkdir()
    proc = start_slow_dump(db, out)
    proc.send_signal(sig)
    code, _, err = finish(proc)
    assert code != 0
    assert not out.exists()
    left = os.listdir(out.parent)
    if sig in (signal.SIGINT, signal.SIGTERM):
        # Ctrl-C and SIGTERM run the clean-up: no temporary file either
        assert left == [], left
        one_clear_line(err)
    else:
        # a killed process cannot clean up: at most the hidden temporary file stays
        assert all(n.startswith(".db.dump.") and n.endswith(".partial") for n in left), left


# ================================================================ disk full

FSIZE_RUNNER = """
import resource, signal, sys
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)   # EFBIG from write(), not a core dump
limit = int(sys.argv[1])
resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
from dumpcodec.cli import main
sys.exit(main(sys.argv[2:]))
"""


def _assert_disk_full_clean(code, err, out):
    assert code != 0
    one_clear_line(err)
    assert not out.exists()
    assert os.listdir(out.parent) == [], "temporary file left behind"


@pytest.mark.parametrize("compress", ["none", "zstd"])
def test_disk_full_rlimit(db, tmp_path, compress):
    make_tables(db, big_rows=50_000)
    out = tmp_path / "out" / "db.dump"
    out.parent.mkdir()
    proc = subprocess.run(
        [sys.executable, "-c", FSIZE_RUNNER, str(512 * 1024), "create", *dsn_args(db),
         "--compress", compress, "-q", "-o", str(out)],
        capture_output=True, timeout=300)
    err = proc.stderr.decode("utf-8", "replace")
    _assert_disk_full_clean(proc.returncode, err, out)
    assert "too large" in err.lower() or "no space" in err.lower() or "errno" in err.lower(), err


@pytest.fixture
def small_tmpfs(tmp_path):
    mnt = tmp_path / "tmpfs"
    mnt.mkdir()
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root (the RLIMIT_FSIZE test covers disk full)")
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mnt)],
                       capture_output=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({r.stderr.decode().strip()}); the "
                    "RLIMIT_FSIZE test covers disk full")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", str(mnt)], capture_output=True)


def test_disk_full_tmpfs(db, small_tmpfs):
    make_tables(db, big_rows=50_000)
    out = small_tmpfs / "db.dump"
    proc = cli("create", *dsn_args(db), "--compress", "none", "-q", "-o", str(out))
    code, _, err = finish(proc)
    _assert_disk_full_clean(code, err, out)
    assert "space" in err.lower(), err


# ==================================================================== restore

@pytest.fixture
def abc_dump(db, tmp_path):
    make_tables(db, big_rows=2000)
    path = tmp_path / "abc.dump"
    from dumpcodec.dump import create_dump
    create_dump(db.dsn, ["public.a", "public.b", "public.c"], str(path))
    return path


def _contents(db, table):
    return db.execute(f"SELECT count(*), coalesce(sum(id), 0) FROM public.{table}")[0]


def _exists(db, table):
    return db.execute("SELECT to_regclass(%s) IS NOT NULL", (f"public.{table}",))[0][0]


def test_restore_killed_creating_a_table_then_rerun_with_skip(abc_dump, make_db):
    # Another session is creating public.b (uncommitted): the restore's CREATE TABLE b
    # waits inside b's transaction; its backend is terminated there.
    target = make_db()
    with target.connect(autocommit=False) as other:
        other.execute("CREATE TABLE public.b (id int)")
        proc = cli("load", str(abc_dump), "--dsn", target.dsn, "-q")
        pids = wait_for(lambda: blocked_pids(target), "the restore to wait on b", proc=proc)
        terminate(target, pids)
        code, _, err = finish(proc)
        other.rollback()
    assert code != 0
    assert "Traceback" not in err
    assert "public.b" in err or "b" in err
    assert _contents(target, "a") == (1000, 500500)      # restored before: stays
    assert not _exists(target, "b")                       # rolled back
    # The same restore again, skipping what is there, completes the job.
    proc = cli("load", str(abc_dump), "--dsn", target.dsn, "--if-exists", "skip", "-q")
    code, out, err = finish(proc)
    assert code == 0, err
    assert _contents(target, "a") == (1000, 500500)
    assert _contents(target, "b") == (2000, 2001000)
    assert _contents(target, "c") == (500, 125250)


def test_restore_killed_mid_copy_rolls_back_the_table(abc_dump, make_db):
    # Appending into an existing b: another session has inserted key 1500
    # (uncommitted), so the restore's COPY into b blocks half-way on the unique
    # check; its backend is terminated there.  b keeps exactly its old rows.
    target = make_db()
    target.execute("CREATE TABLE public.b (id int PRIMARY KEY, v text)")
    target.execute("INSERT INTO public.b SELECT i, 'old' FROM generate_series(5001, 5010) i")
    old_b = _contents(target, "b")
    with target.connect(autocommit=False) as other:
        other.execute("INSERT INTO public.b VALUES (1500, 'in the way')")
        proc = cli("load", str(abc_dump), "--dsn", target.dsn, "--if-exists", "append", "-q")
        pids = wait_for(lambda: blocked_pids(target), "the COPY into b to block", proc=proc)
        in_copy = target.execute(
            "SELECT query FROM pg_catalog.pg_stat_activity WHERE pid = %s", (pids[0],))
        terminate(target, pids)
        code, _, err = finish(proc)
        other.rollback()
    assert "COPY" in in_copy[0][0].upper()
    assert code != 0
    assert "Traceback" not in err
    assert _contents(target, "b") == old_b                # nothing of the COPY stayed
    assert _contents(target, "a") == (1000, 500500)


def test_restore_killed_replacing_keeps_old_table(abc_dump, make_db):
    # --if-exists replace: b exists with old rows and another session reads it, so
    # the restore's DROP waits inside b's transaction; killed there, old b stays.
    target = make_db()
    target.execute("CREATE TABLE public.b (id int PRIMARY KEY, v text)")
    target.execute("INSERT INTO public.b SELECT i, 'old' FROM generate_series(1, 7) i")
    with target.connect(autocommit=False) as reader:
        reader.execute("SELECT count(*) FROM public.b")
        proc = cli("load", str(abc_dump), "--dsn", target.dsn, "--if-exists", "replace",
                   "-q")
        pids = wait_for(lambda: blocked_pids(target), "the restore to wait on b", proc=proc)
        terminate(target, pids)
        code, _, err = finish(proc)
        reader.rollback()
    assert code != 0
    assert "Traceback" not in err
    assert _contents(target, "b") == (7, 28)
    assert target.execute("SELECT DISTINCT v FROM public.b") == [("old",)]
    # and a second run replaces it for real
    proc = cli("load", str(abc_dump), "--dsn", target.dsn, "--if-exists", "replace", "-q")
    code, _, err = finish(proc)
    assert code == 0, err
    assert _contents(target, "b") == (2000, 2001000)
    assert _contents(target, "c") == (500, 125250)
