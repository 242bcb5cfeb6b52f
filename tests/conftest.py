"""Test harness: real PostgreSQL servers, a fresh database per test, no mocks.

Servers, in order of preference for the primary one:
1. ``DUMPCODEC_TEST_DSN`` if set;
2. the local server (libpq defaults, then 127.0.0.1:5432, user postgres) if it answers;
3. an embedded server started with pgserver.
Every server found is available to cross-version tests; the embedded server is
started as well whenever pgserver is installed (``DUMPCODEC_TEST_EMBEDDED=0`` turns
that off), so that a machine with a local 15 also tests against 16.
"""
from __future__ import annotations

import os
import uuid
from dataclasses import dataclass
from typing import List, Optional

import psycopg
import psycopg.conninfo
import pytest

import dumpcodec
from dumpcodec.codec import IMPL


@dataclass
class Server:
    name: str            # where it came from: env, local, embedded
    dsn: str             # conninfo of its maintenance database
    version_num: int     # server_version_num, e.g. 150020
    version: str         # e.g. "15.20"

    @property
    def major(self) -> int:
        return self.version_num // 10000

    def dsn_for(self, dbname: str) -> str:
        return psycopg.conninfo.make_conninfo(self.dsn, dbname=dbname)

    @property
    def id(self) -> str:
        return f"pg{self.major}"


@dataclass
class TestDB:
    server: Server
    name: str
    dsn: str

    def connect(self, **kw) -> psycopg.Connection:
        kw.setdefault("autocommit", True)
        return psycopg.connect(self.dsn, **kw)

    def execute(self, sql, params=None):
        """Run one statement in autocommit; return all rows (or None)."""
        with self.connect() as conn:
            cur = conn.execute(sql, params)
            return cur.fetchall() if cur.description else None


def _probe(dsn: str, name: str) -> Optional[Server]:
    try:
        with psycopg.connect(dsn, connect_timeout=3, autocommit=True) as conn:
            num = int(conn.execute("show server_version_num").fetchone()[0])
            ver = conn.execute("show server_version").fetchone()[0].split()[0]
            dbname = conn.info.dbname
    except psycopg.Error:
        return None
    dsn = psycopg.conninfo.make_conninfo(dsn, dbname=dbname)
    return Server(name, dsn, num, ver)


_SERVERS: Optional[List[Server]] = None


def discover_servers() -> List[Server]:
    """All usable servers, the primary first; started once per test session."""
    global _SERVERS
    if _SERVERS is not None:
        return _SERVERS
    found: List[Server] = []
    env_dsn = os.environ.get("DUMPCODEC_TEST_DSN")
    if env_dsn:
        srv = _probe(env_dsn, "env")
        if srv is None:
            raise pytest.UsageError(f"DUMPCODEC_TEST_DSN={env_dsn!r} does not answer")
        found.append(srv)
    else:
        for dsn in ("dbname=postgres", "host=127.0.0.1 port=5432 user=postgres dbname=postgres"):
            srv = _probe(dsn, "local")
            if srv is not None:
                found.append(srv)
                break
    if os.environ.get("DUMPCODEC_TEST_EMBEDDED", "1") != "0" or not found:
        try:
            from dumpcodec.embedded import start_embedded
            srv = _probe(start_embedded(), "embedded")
        except RuntimeError:
            srv = None
        if srv is not None and all(s.version_num != srv.version_num for s in found):
            found.append(srv)
    if not found:
        raise pytest.UsageError("no PostgreSQL server: set DUMPCODEC_TEST_DSN, run one "
                                "locally, or install pgserver")
    _SERVERS = found
    return found


def copy_via_psycopg(conn, query) -> bytes:
    """A ``COPY ... TO STDOUT``'s bytes as psycopg's own Copy reads them: the reference
    the pump's blocks are compared with."""
    out = bytearray()
    with conn.cursor().copy(query) as cp:
        for data in cp:
            out += data
    return bytes(out)


def failing_writer(after: int):
    """A COPY ``write`` callback that keeps the blocks (``.seen``) and raises
    ``OSError("disk full")`` on block number ``after``."""
    seen: list = []

    def write(block):
        seen.append(block)
        if len(seen) == after:
            raise OSError("disk full")
    write.seen = seen
    return write


def pytest_report_header(config):
    from dumpcodec import pump
    lines = [f"dumpcodec codec implementation: {IMPL} (DUMPCODEC_IMPL="
             f"{os.environ.get('DUMPCODEC_IMPL', 'unset')})",
             f"psycopg implementation: {psycopg.pq.__impl__} (PSYCOPG_IMPL="
             f"{os.environ.get('PSYCOPG_IMPL', 'unset')}), pump: {pump.PUMP} "
             f"({pump.PUMP_DETAIL})"]
    for srv in discover_servers():
        lines.append(f"dumpcodec test server: PostgreSQL {srv.version} ({srv.name}: {srv.dsn})")
    return lines


def _create_db(server: Server) -> TestDB:
    name = f"dct_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server.dsn, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return TestDB(server, name, server.dsn_for(name))


def _drop_db(db: TestDB) -> None:
    with psycopg.connect(db.server.dsn, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{db.name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def pg_servers() -> List[Server]:
    """Every server version available, the primary first."""
    return discover_servers()


@pytest.fixture(scope="session")
def pg_server(pg_servers) -> Server:
    return pg_servers[0]


@pytest.fixture
def make_db(pg_server):
    """Factory: ``make_db(server=None)`` gives a fresh database, dropped after the test."""
    made: List[TestDB] = []

    def make(server: Optional[Server] = None) -> TestDB:
        db = _create_db(server or pg_server)
        made.append(db)
        return db

    yield make
    for db in made:
        _drop_db(db)


@pytest.fixture
def db(make_db) -> TestDB:
    """A fresh database on the primary server."""
    return make_db()


@pytest.fixture
def conn(db):
    """An autocommit connection to ``db``."""
    with db.connect() as c:
        yield c


def pytest_generate_tests(metafunc):
    # ``any_db``: the test runs once per available server version.
    if "any_db_server" in metafunc.fixturenames:
        servers = discover_servers()
        metafunc.parametrize("any_db_server", servers, ids=[s.id for s in servers],
                             scope="session")


@pytest.fixture
def narrow(conn):
    """A table of 50,000 (bigint, int) rows in the test's database."""
    conn.execute("CREATE TABLE narrow AS SELECT g::bigint AS a, (g % 1000)::int AS b "
                 "FROM generate_series(1, 50000) g")
    return conn


@pytest.fixture
def any_db(any_db_server, make_db) -> TestDB:
    """A fresh database on each available server version in turn."""
    return make_db(any_db_server)


@pytest.fixture
def two_servers(pg_servers):
    """Two different server major versions (source, target), or a skip that says why."""
    majors = {}
    for s in pg_servers:
        majors.setdefault(s.major, s)
    if len(majors) < 2:
        pytest.skip("cross-version test needs two PostgreSQL major versions; only "
                    f"{[s.version for s in pg_servers]} available")
    a, b = sorted(majors.values(), key=lambda s: s.version_num)[:2]
    return a, b


# Hypothesis: "ci" keeps the suite inside CI's time; "dev" (default) is a bit larger.
try:
    from hypothesis import HealthCheck, settings

    settings.register_profile("ci", max_examples=60, deadline=None,
                              suppress_health_check=[HealthCheck.too_slow])
    settings.register_profile("dev", max_examples=150, deadline=None,
                              suppress_health_check=[HealthCheck.too_slow])
    settings.register_profile("long", max_examples=5000, deadline=None,
                              suppress_health_check=[HealthCheck.too_slow])
    settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))
except ImportError:  # pragma: no cover
    pass
