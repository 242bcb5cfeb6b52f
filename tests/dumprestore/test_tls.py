"""The libpq pump over a TLS connection, against a server this module starts itself.

No configured test server has SSL on, so the module starts a PostgreSQL of its own
with a throw-away self-signed certificate and ``ssl=on``, and connects with
``sslmode=require``.  The embedded (pgserver) binaries are used when they were built
with OpenSSL; pgserver's are not (its server says "SSL is not supported by this
build"), so otherwise an installed build that is (e.g. Debian's
/usr/lib/postgresql/*/bin) runs.  The server takes TCP connections over TLS only
(hostssl), so no check can pass over a plain connection.

Checked over TLS: copy_out gives psycopg's bytes, the row count and the length (default
and 4 kB blocks; text blocks end with whole lines); copy_out_rows gives the rows a
SELECT gives; a write that fails after 3 blocks leaves the connection usable;
create_dump writes an archive that verifies and reads back whole.
"""
from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile

import psycopg
import pytest
from conftest import copy_via_psycopg, failing_writer

from dumpcodec import pump
from dumpcodec.archive import open_dump
from dumpcodec.dump import create_dump
from dumpcodec.embedded import embedded_bin

ROWS = 200_000
BIG = (100_000, 1_000_000, 3_000_000)      # a few rows far larger than any block


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _bindirs():
    """Directories holding PostgreSQL server binaries: the embedded ones first."""
    embedded = embedded_bin("postgres")
    if embedded:
        yield os.path.dirname(embedded)
    pg_config = shutil.which("pg_config")
    if pg_config:
        try:
            yield subprocess.run([pg_config, "--bindir"], capture_output=True, text=True,
                                 check=True, timeout=30).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            pass
    yield from sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)


def _with_ssl(bindir: str) -> bool:
    """Whether the build in ``bindir`` was configured with OpenSSL."""
    try:
        out = subprocess.run([os.path.join(bindir, "pg_config"), "--configure"],
                             capture_output=True, text=True, check=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return False
    return "--with-openssl" in out or "--with-ssl=openssl" in out


def _ssl_bins():
    for bindir in _bindirs():
        bins = {name: os.path.join(bindir, name) for name in ("initdb", "pg_ctl", "postgres")}
        if all(os.access(b, os.X_OK) for b in bins.values()) and _with_ssl(bindir):
            return bins
    return None


@pytest.fixture(scope="module")
def tls_server():
    """Start a PostgreSQL with ssl=on on 127.0.0.1; yield its port."""
    bins = _ssl_bins()
    if bins is None:
        pytest.skip("no PostgreSQL server build with SSL support (the embedded pgserver "
                    "one has none; install e.g. Debian's postgresql)")
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("needs the openssl command to make a server certificate")
    # PostgreSQL refuses to run as root: run it as the user pgserver made for itself
    # (or the distribution's postgres user)
    as_user = {}
    if os.geteuid() == 0:
        import pwd
        for name in ("pgserver", "postgres"):
            try:
                pw = pwd.getpwnam(name)
            except KeyError:
                continue
            as_user = {"user": pw.pw_uid, "group": pw.pw_gid}
            break
        else:
            pytest.skip("running as root and no 'pgserver' or 'postgres' user to run "
                        "the server as")
    # pytest's tmp_path is mode 700 under root's directory: the server could not reach it
    base = tempfile.mkdtemp(prefix="dumpcodec-tls-")
    os.chmod(base, 0o755)
    pgdata = os.path.join(base, "data")
    log = os.path.join(base, "server.log")
    started = False

    def run(*args):
        return subprocess.run(args, check=True, capture_output=True, cwd=base,
                              timeout=120, **as_user)

    try:
        if as_user:
            os.chown(base, as_user["user"], as_user["group"])
        run(bins["initdb"], "-D", pgdata, "--auth=trust", "-U", "postgres",
            "-E", "UTF8", "--no-sync")
        # TCP connections only over TLS: nothing below can pass by falling back to plain
        with open(os.path.join(pgdata, "pg_hba.conf"), "w") as f:
            f.write("local all all trust\nhostssl all all 127.0.0.1/32 trust\n")
        # a self-signed certificate in the data directory, key readable by its owner only
        subprocess.run([openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes",
                        "-days", "1", "-subj", "/CN=localhost",
                        "-keyout", os.path.join(pgdata, "server.key"),
                        "-out", os.path.join(pgdata, "server.crt")],
                       check=True, capture_output=True, timeout=60)
        for name, mode in (("server.key", 0o600), ("server.crt", 0o644)):
            path = os.path.join(pgdata, name)
            os.chmod(path, mode)
            if as_user:
                os.chown(path, as_user["user"], as_user["group"])
        port = _free_port()
        opts = (f"-c ssl=on -c listen_addresses=127.0.0.1 -c port={port} "
                f"-c unix_socket_directories={pgdata} -c fsync=off")
        try:
            started = True
            run(bins["pg_ctl"], "-D", pgdata, "-l", log, "-w", "-t", "60",
                "-o", opts, "start")
        except subprocess.CalledProcessError as exc:
            with open(log) as f:
                pytest.fail(f"PostgreSQL with ssl=on did not start: {exc.stderr!r}\n"
                            f"{f.read()}")
        yield port
    finally:
        if started:
            subprocess.run([bins["pg_ctl"], "-D", pgdata, "-m", "fast", "-w", "stop"],
                           capture_output=True, cwd=base, timeout=120, **as_user)
        shutil.rmtree(base, ignore_errors=True)


def _conninfo(port: int) -> str:
    return f"host=127.0.0.1 port={port} user=postgres dbname=postgres sslmode=require"


@pytest.fixture(scope="module")
def tls_conn(tls_server):
    with psycopg.connect(_conninfo(tls_server), autocommit=True) as conn:
        # mixed row sizes, and a few rows far larger than a block
        conn.execute("CREATE TABLE t AS SELECT g AS i, repeat(md5(g::text), 1 + g % 40) "
                     f"AS s FROM generate_series(1, {ROWS}) g")
        for k, n in enumerate(BIG):
            conn.execute("INSERT INTO t VALUES (%s, repeat('x', %s))", (-1 - k, n))
        yield conn


def test_connection_uses_tls(tls_conn):
    assert tls_conn.pgconn.ssl_in_use
    assert tls_conn.execute("SELECT ssl FROM pg_stat_ssl "
                            "WHERE pid = pg_backend_pid()").fetchone()[0] is True


def test_server_refuses_plain_connections(tls_server):
    with pytest.raises(psycopg.OperationalError, match="no encryption"):
        psycopg.connect(f"host=127.0.0.1 port={tls_server} user=postgres dbname=postgres "
                        "sslmode=disable", connect_timeout=10)


def test_pump_path_is_libpq():
    if os.environ.get("DUMPCODEC_PUMP", "").lower() == "python":
        pytest.skip("python pump forced by DUMPCODEC_PUMP=python")
    assert pump.PUMP == "libpq", pump.PUMP_DETAIL


@pytest.mark.parametrize("fmt", ["binary", "text"])
def test_copy_out_over_tls_matches_psycopg(tls_conn, fmt):
    q = f"COPY t TO STDOUT (FORMAT {fmt})"
    expected = copy_via_psycopg(tls_conn, q)
    for block_size in (pump.DEFAULT_BLOCK_SIZE, 4096):
        blocks = []
        rows, nbytes = pump.copy_out(tls_conn, q, blocks.append, block_size=block_size)
        assert rows == ROWS + len(BIG)
        assert nbytes == len(expected)
        assert b"".join(blocks) == expected
        assert all(len(b) >= block_size for b in blocks[:-1])
        if fmt == "text":                # a text COPY message is one line
            assert all(b.endswith(b"\n") for b in blocks)


def test_copy_out_rows_over_tls(tls_conn):
    q = "COPY (SELECT i, s FROM t ORDER BY i) TO STDOUT (FORMAT binary)"
    got = []
    for batch in pump.copy_out_rows(tls_conn, q, ["int4", "text"]):
        got.extend(tuple(r) for r in batch)
    expected = tls_conn.execute("SELECT i, s FROM t ORDER BY i").fetchall()
    assert len(got) == ROWS + len(BIG)
    assert got == expected


def test_write_error_over_tls_leaves_connection_usable(tls_conn):
    failing = failing_writer(3)
    with pytest.raises(OSError, match="disk full"):
        pump.copy_out(tls_conn, "COPY t TO STDOUT (FORMAT binary)", failing,
                      block_size=4096)
    assert len(failing.seen) == 3
    # cancelled and drained: the same TLS connection answers the next query
    assert tls_conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
    assert tls_conn.execute("SELECT count(*) FROM t").fetchone()[0] == ROWS + len(BIG)


def test_create_dump_over_tls(tls_server, tls_conn, tmp_path):
    path = str(tmp_path / "t.dcz")
    summary = create_dump(_conninfo(tls_server), ["public.t"], path)
    assert summary.pump == pump.PUMP
    assert summary.rows == ROWS + len(BIG)
    with open_dump(path) as r:
        assert r.verify().ok
        rows = r.read_rows("public.t")
        assert sum(1 for _ in rows) == ROWS + len(BIG)
    with open_dump(path) as r:
        big = sorted(len(s) for i, s in r.read_rows("public.t") if i < 0)
    assert big == sorted(BIG)
