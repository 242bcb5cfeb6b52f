"""Restore speaks the archive's client encoding, and pipe restores honour every -t."""
import os
import subprocess
import sys
import threading

import psycopg

from dumpcodec import create_dump, open_dump, restore_dump


def _latin1_db(make_db, pg_server):
    db = make_db()
    # a LATIN1 database next to the UTF8 test databases
    with psycopg.connect(pg_server.dsn, autocommit=True) as c:
        c.execute(f'DROP DATABASE "{db.name}"')
        c.execute(f"CREATE DATABASE \"{db.name}\" ENCODING 'LATIN1' LC_COLLATE 'C' "
                  "LC_CTYPE 'C' TEMPLATE template0")
    return db


def test_restore_sets_the_archives_client_encoding(make_db, pg_server, tmp_path):
    src = _latin1_db(make_db, pg_server)
    with psycopg.connect(src.dsn, autocommit=True) as c:
        c.execute("CREATE TABLE words (id int PRIMARY KEY, w text)")
        c.execute("INSERT INTO words VALUES (1, 'café'), (2, 'Ærø'), (3, NULL)")
    path = tmp_path / "latin1.dcz"
    # the dump session speaks LATIN1: the archive's text bytes are LATIN1
    create_dump(src.dsn + " options='-c client_encoding=LATIN1'", ["public.words"],
                str(path))
    with open_dump(str(path)) as r:
        r.tables()
        assert r.info["client_encoding"] == "LATIN1"
    dst = make_db()   # UTF8
    for source in (str(path), _pipe(path.read_bytes())):  # seekable, then one pass
        summary = restore_dump(dst.dsn, source, if_exists="replace")
        assert summary.failed == []
        assert dst.execute("SELECT id, w FROM words ORDER BY id") == [
            (1, "café"), (2, "Ærø"), (3, None)]


def _pipe(data: bytes):
    """A non-seekable binary file giving ``data``, fed by a thread."""
    r, w = os.pipe()

    def feed():
        with os.fdopen(w, "wb") as f:
            f.write(data)

    threading.Thread(target=feed, daemon=True).start()
    return os.fdopen(r, "rb")


def test_pipe_restore_honours_every_table_pattern(db, make_db, tmp_path):
    db.execute("CREATE TABLE a (x int); CREATE TABLE b (x int); CREATE TABLE c (x int);"
               "INSERT INTO a VALUES (1); INSERT INTO b VALUES (2); INSERT INTO c VALUES (3)")
    path = tmp_path / "abc.dcz"
    create_dump(db.dsn, ["public.*"], str(path))
    dst = make_db()
    cat = subprocess.Popen(["cat", str(path)], stdout=subprocess.PIPE)
    proc = subprocess.run(
        [sys.executable, "-m", "dumpcodec", "load", "-", "--dsn", dst.dsn,
         "-t", "public.a", "-t", "public.c", "-t", "public.nothing"],
        stdin=cat.stdout, capture_output=True, text=True)
    cat.wait()
    assert proc.returncode == 0, proc.stderr
    # one pass: a pattern that matched nothing can only be told at the end
    assert "no table in the archive matches public.nothing" in proc.stderr
    tables = dst.execute("SELECT relname FROM pg_class WHERE relkind = 'r' AND "
                         "relnamespace = 'public'::regnamespace ORDER BY 1")
    assert tables == [("a",), ("c",)]
    assert dst.execute("SELECT x FROM a") == [(1,)]
    assert dst.execute("SELECT x FROM c") == [(3,)]
