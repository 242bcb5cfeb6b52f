"""The harness itself: implementation switch and fresh databases on real servers."""
import os
import subprocess
import sys

import dumpcodec
from dumpcodec import codec, copy


def test_impl_matches_request():
    requested = os.environ.get("DUMPCODEC_IMPL", "auto")
    if requested in ("c", "python"):
        assert dumpcodec.IMPL == requested
    assert codec.IMPL == copy.IMPL == dumpcodec.IMPL
    assert copy._impl.__name__ == {"c": "dumpcodec._fastcopy",
                                   "python": "dumpcodec.copy.pure"}[dumpcodec.IMPL]


def test_bad_impl_is_an_import_error():
    env = dict(os.environ, DUMPCODEC_IMPL="fortran")
    proc = subprocess.run([sys.executable, "-c", "import dumpcodec"], env=env,
                          capture_output=True, text=True)
    assert proc.returncode != 0
    assert "DUMPCODEC_IMPL must be" in proc.stderr


def test_fresh_database_is_empty_and_private(db, make_db):
    other = make_db()
    assert other.name != db.name
    db.execute("CREATE TABLE t (a int)")
    rows = other.execute("SELECT count(*) FROM pg_class WHERE relname = 't' "
                         "AND relnamespace = 'public'::regnamespace")
    assert rows == [(0,)]


def test_every_server_answers(any_db):
    (num,), = any_db.execute("SELECT current_setting('server_version_num')::int")
    assert num // 10000 == any_db.server.major


def test_two_versions_differ(two_servers):
    a, b = two_servers
    assert a.major != b.major
