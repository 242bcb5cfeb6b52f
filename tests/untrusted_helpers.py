"""Fixtures and tools for the untrusted-archive tests (issue 17): a real source dump to
craft archives from, a target database prepared like a real one, the ways of
restoring (superuser, ``role=``, direct login as an ordinary role), and a snapshot of
everything a restore must leave alone.

The target (one template database per test session, copied for every test):

* ``public.canary`` (rows, a grant to a reader role), ``public.canary_seq`` (at 7);
* ``public.evil()`` and ``app.evil()``: each call advances ``public.evil_trace`` (a
  sequence: the trace survives the rollback of a failed table) and logs a row; the
  falsely IMMUTABLE ``app.evil_imm(int)``/``app.evil_text(text)``, the SECURITY
  DEFINER ``app.evil_def(int)`` and ``app.evil_diff(float8, float8)`` call it;
* user code that resolution can reach without naming it: ``app.=`` on the enum
  ``app.mood``; ``app.=`` on ``app.mood_ce`` that sets ``client_encoding``; an
  assignment cast text -> ``app.mood_cast``; a default btree operator class with a
  user compare function for ``app.mood_opc``; a domain ``app.posdom`` whose CHECK
  calls ``app.evil_imm`` and a composite ``app.pair`` using it;
* the application's own tables: ``app.events`` (partitioned), ``app.tparent`` with an
  inheritance child ``app.tchild``, ``app.dtab`` (a DaCHS target), all owned by the
  restorer role, which owns schema ``app`` and nothing else.
"""
from __future__ import annotations

import copy
import os
import queue
import threading
import uuid
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence, Tuple

import psycopg
import psycopg.conninfo
import pytest
from psycopg import sql

from dumpcodec.archive import open_dump

TAG = f"rt{os.getpid() % 100000}_{uuid.uuid4().hex[:6]}"
RESTORER = f"{TAG}_restorer"      # NOSUPERUSER, owns schema app of the target
READER = f"{TAG}_reader"          # has SELECT on public.canary
EVIL_ROLE = f"{TAG}_evil"         # what a crafted pg_authid row would create
SLOT = f"{TAG}_slot"              # what a crafted expression would create

MODES = ("superuser", "role", "login")


# ===================================================================== the source

SOURCE_SQL = """
CREATE SCHEMA app;
CREATE TYPE app.mood AS ENUM ('a', 'b', 'c');
CREATE TYPE app.mood_ce AS ENUM ('a', 'b', 'c');
CREATE TYPE app.mood_cast AS ENUM ('a', 'b', 'c');
CREATE TYPE app.mood_opc AS ENUM ('a', 'b', 'c');
CREATE DOMAIN app.small AS int CHECK (VALUE < 1000);
CREATE DOMAIN app.posdom AS int CHECK (VALUE > 0);
CREATE TYPE app.pair AS (a int, d app.posdom);
CREATE TYPE app.frange AS RANGE (subtype = float8, subtype_diff = float8mi);
CREATE TABLE app.t (
    id serial PRIMARY KEY,
    v text DEFAULT 'x' CHECK (length(v) < 10),
    m app.mood,
    s app.small,
    g int GENERATED ALWAYS AS (id * 2) STORED,
    CONSTRAINT t_v_key UNIQUE (v));
CREATE INDEX t_lower_idx ON app.t (lower(v)) WHERE id > 0;
INSERT INTO app.t (v, m, s) VALUES ('a', 'a', 1), ('b', 'b', 2), ('c', NULL, NULL);
CREATE TABLE app.t_ce (id int PRIMARY KEY, m app.mood_ce CHECK (m IS NOT NULL));
INSERT INTO app.t_ce VALUES (1, 'a'), (2, 'b');
CREATE TABLE app.t_cast (id int PRIMARY KEY, m app.mood_cast);
INSERT INTO app.t_cast VALUES (1, 'a'), (2, 'b');
CREATE TABLE app.t_opc (id int PRIMARY KEY, m app.mood_opc UNIQUE);
INSERT INTO app.t_opc VALUES (1, 'a'), (2, 'b'), (3, 'c');
CREATE TABLE app.tc (id int PRIMARY KEY, p app.pair);
INSERT INTO app.tc VALUES (1, ROW(1, 5)), (2, ROW(2, 6));
CREATE TABLE app.rt (id int PRIMARY KEY, r app.frange);
INSERT INTO app.rt SELECT g, app.frange(g, g + 0.5) FROM generate_series(1, 1500) g;
CREATE INDEX rt_r_idx ON app.rt USING gist (r);
CREATE TABLE app.honest (id int PRIMARY KEY, txt text NOT NULL);
INSERT INTO app.honest VALUES (1, 'héllo ✓'), (2, 'Grüße'), (3, '日本語');
CREATE TABLE app.events (id int, ts date NOT NULL, v text) PARTITION BY RANGE (ts);
CREATE TABLE app.events_2024 PARTITION OF app.events
    FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
CREATE TABLE app.evpart PARTITION OF app.events DEFAULT;
INSERT INTO app.events VALUES (1, '2030-01-01', 'from the archive');
CREATE TABLE public.canary (x int PRIMARY KEY, note text);
INSERT INTO public.canary VALUES (666, 'pwned'), (667, 'pwned');
CREATE TABLE app.pg_authid (LIKE pg_catalog.pg_authid);
INSERT INTO app.pg_authid VALUES ({evil_oid}, '{evil_role}', true, true, true, true, true,
                                  true, true, -1, NULL, NULL);
CREATE TABLE app.sql_features (LIKE information_schema.sql_features);
INSERT INTO app.sql_features VALUES ('X999', 'evil', '', '', 'YES', NULL, 'evil');
CREATE TABLE app.tparent (id int, v text);
INSERT INTO app.tparent VALUES (100, 'archive');
CREATE TABLE app.fkt (id int PRIMARY KEY, c int REFERENCES public.canary (x));
INSERT INTO app.fkt VALUES (1, NULL), (2, NULL);
CREATE TABLE app.dtab (id int, v text);
INSERT INTO app.dtab VALUES (1, 'dachs'), (2, 'dachs');
CREATE TABLE app.tj (id int PRIMARY KEY, j json[], jj json);
INSERT INTO app.tj VALUES (1, ARRAY['{{"a": 1}}']::json[], '{{"a": 1}}'),
                          (2, ARRAY['{{"b": 2}}']::json[], '{{"b": 2}}'),
                          (3, ARRAY['{{"c": 3}}']::json[], '{{"c": 3}}');
"""

SOURCE_TABLES = ["app.t", "app.t_ce", "app.t_cast", "app.t_opc", "app.tc", "app.rt",
                 "app.honest", "app.events", "public.canary", "app.pg_authid",
                 "app.sql_features", "app.tparent", "app.fkt", "app.dtab", "app.tj"]

HONEST_TXT = [(1, "héllo ✓"), (2, "Grüße"), (3, "日本語")]


@dataclass
class Source:
    """The source dump's tables, as [table_id, definition, columns, types, format,
    data] lists (deep-copied before each use), and raw COPY data for DaCHS."""
    tables: Dict[str, list]
    dachs_binary: bytes        # app.dtab, binary COPY
    authid_text: bytes         # app.pg_authid, text COPY


def read_tables(path) -> Dict[str, list]:
    out = {}
    with open_dump(str(path)) as r:
        for info, chunks in r.iter_tables():
            pieces = [bytes(c) for c in chunks]
            assert len(pieces) == 1, "test tables are small: one chunk each"
            out[info.table_id] = [info.table_id, info.definition, info.columns,
                                  info.types, info.format, pieces[0]]
    return out


def _copy_out(conn, query) -> bytes:
    out = bytearray()
    with conn.cursor().copy(query) as cp:
        for data in cp:
            out += data
    return bytes(out)


@pytest.fixture(scope="session")
def source(pg_server, tmp_path_factory) -> Source:
    from conftest import _create_db, _drop_db
    from dumpcodec.dump import create_dump
    db = _create_db(pg_server)
    try:
        with db.connect() as c:
            c.execute(SOURCE_SQL.format(evil_oid=3900000000 + os.getpid() % 100000,
                                        evil_role=EVIL_ROLE))
            dachs = _copy_out(c, "COPY app.dtab TO STDOUT (FORMAT binary)")
            authid = _copy_out(c, "COPY app.pg_authid TO STDOUT")
        path = tmp_path_factory.mktemp("untrusted") / "source.dump"
        create_dump(db.dsn, SOURCE_TABLES, str(path), backend="tar")
        return Source(read_tables(path), dachs, authid)
    finally:
        _drop_db(db)


def write_archive(path, tables: Sequence[list], **info) -> str:
    """Write ``tables`` with the library's own writer (checksums, offsets and end
    marker consistent: the attacker knows the format)."""
    with open_dump(str(path), "w", backend="tar") as w:
        w.set_info(server_version="15", client_encoding="UTF8", **info)
        for table_id, definition, columns, types, fmt, data in tables:
            with w.add_table(table_id, definition, columns, types, format=fmt) as t:
                t.write(data)
    return str(path)


# ===================================================================== the target

TARGET_SQL = """
CREATE SCHEMA app AUTHORIZATION {restorer};
CREATE TABLE public.canary (x int PRIMARY KEY, note text);
INSERT INTO public.canary VALUES (42, 'alive'), (43, 'alive');
GRANT SELECT ON public.canary TO {reader};
CREATE SEQUENCE public.canary_seq;
SELECT pg_catalog.setval('public.canary_seq', 7);
CREATE TABLE public.bystander (id int, v text);
INSERT INTO public.bystander VALUES (1, 'untouched');

-- the trace: a sequence is not transactional, so a call inside a table that is then
-- rolled back still shows
CREATE SEQUENCE public.evil_trace;
GRANT ALL ON SEQUENCE public.evil_trace TO PUBLIC;
CREATE TABLE public.evil_log (who text DEFAULT current_user, what text);
GRANT INSERT ON public.evil_log TO PUBLIC;
CREATE FUNCTION public.evil() RETURNS int LANGUAGE plpgsql VOLATILE AS $$
BEGIN
  PERFORM pg_catalog.nextval('public.evil_trace');
  INSERT INTO public.evil_log (what) VALUES ('evil');
  RAISE NOTICE 'public.evil() was called';
  RETURN 1;
END $$;
CREATE FUNCTION app.evil() RETURNS int LANGUAGE sql VOLATILE AS 'SELECT public.evil()';
CREATE FUNCTION app.evil_imm(int) RETURNS int LANGUAGE plpgsql IMMUTABLE AS
  'BEGIN PERFORM public.evil(); RETURN $1; END';
CREATE FUNCTION app.evil_text(text) RETURNS text LANGUAGE plpgsql IMMUTABLE AS
  'BEGIN PERFORM public.evil(); RETURN $1; END';
CREATE FUNCTION app.evil_def(int) RETURNS int LANGUAGE plpgsql IMMUTABLE
  SECURITY DEFINER AS 'BEGIN PERFORM public.evil(); RETURN $1; END';
CREATE FUNCTION app.evil_diff(float8, float8) RETURNS float8 LANGUAGE plpgsql IMMUTABLE AS
  'BEGIN PERFORM public.evil(); RETURN $1 - $2; END';

-- an exact-match = on an enum beats pg_catalog's anyenum one
CREATE TYPE app.mood AS ENUM ('a', 'b', 'c');
CREATE FUNCTION app.mood_eq(app.mood, app.mood) RETURNS bool LANGUAGE plpgsql IMMUTABLE AS
  'BEGIN PERFORM public.evil(); RETURN pg_catalog.enum_eq($1, $2); END';
CREATE OPERATOR app.= (LEFTARG = app.mood, RIGHTARG = app.mood, FUNCTION = app.mood_eq);

-- the same, changing the connection's client_encoding
CREATE TYPE app.mood_ce AS ENUM ('a', 'b', 'c');
CREATE FUNCTION app.mood_ce_eq(app.mood_ce, app.mood_ce) RETURNS bool LANGUAGE plpgsql
  IMMUTABLE AS $$BEGIN
    PERFORM pg_catalog.set_config('client_encoding', 'LATIN1', false);
    RETURN pg_catalog.enum_eq($1, $2); END$$;
CREATE OPERATOR app.= (LEFTARG = app.mood_ce, RIGHTARG = app.mood_ce,
                       FUNCTION = app.mood_ce_eq);

-- an assignment cast
CREATE TYPE app.mood_cast AS ENUM ('a', 'b', 'c');
CREATE FUNCTION app.text_to_mood(text) RETURNS app.mood_cast LANGUAGE plpgsql IMMUTABLE AS
  $$BEGIN PERFORM public.evil();
    RETURN (SELECT e FROM pg_catalog.unnest(pg_catalog.enum_range(NULL::app.mood_cast)) e
            WHERE e::text = $1); END$$;
CREATE CAST (text AS app.mood_cast) WITH FUNCTION app.text_to_mood(text) AS ASSIGNMENT;

-- a default btree operator class with a user compare function
CREATE TYPE app.mood_opc AS ENUM ('a', 'b', 'c');
CREATE FUNCTION app.mood_opc_cmp(app.mood_opc, app.mood_opc) RETURNS int LANGUAGE plpgsql
  IMMUTABLE AS 'BEGIN PERFORM public.evil(); RETURN pg_catalog.enum_cmp($1, $2); END';
CREATE FUNCTION app.mood_opc_lt(app.mood_opc, app.mood_opc) RETURNS bool LANGUAGE sql
  IMMUTABLE AS 'SELECT pg_catalog.enum_lt($1, $2)';
CREATE OPERATOR app.< (LEFTARG = app.mood_opc, RIGHTARG = app.mood_opc,
  FUNCTION = app.mood_opc_lt);
CREATE FUNCTION app.mood_opc_le(app.mood_opc, app.mood_opc) RETURNS bool LANGUAGE sql
  IMMUTABLE AS 'SELECT pg_catalog.enum_le($1, $2)';
CREATE OPERATOR app.<= (LEFTARG = app.mood_opc, RIGHTARG = app.mood_opc,
  FUNCTION = app.mood_opc_le);
CREATE FUNCTION app.mood_opc_eq(app.mood_opc, app.mood_opc) RETURNS bool LANGUAGE sql
  IMMUTABLE AS 'SELECT pg_catalog.enum_eq($1, $2)';
CREATE OPERATOR app.= (LEFTARG = app.mood_opc, RIGHTARG = app.mood_opc,
  FUNCTION = app.mood_opc_eq);
CREATE FUNCTION app.mood_opc_ge(app.mood_opc, app.mood_opc) RETURNS bool LANGUAGE sql
  IMMUTABLE AS 'SELECT pg_catalog.enum_ge($1, $2)';
CREATE OPERATOR app.>= (LEFTARG = app.mood_opc, RIGHTARG = app.mood_opc,
  FUNCTION = app.mood_opc_ge);
CREATE FUNCTION app.mood_opc_gt(app.mood_opc, app.mood_opc) RETURNS bool LANGUAGE sql
  IMMUTABLE AS 'SELECT pg_catalog.enum_gt($1, $2)';
CREATE OPERATOR app.> (LEFTARG = app.mood_opc, RIGHTARG = app.mood_opc,
  FUNCTION = app.mood_opc_gt);
CREATE OPERATOR CLASS app.mood_opc_ops DEFAULT FOR TYPE app.mood_opc USING btree AS
  OPERATOR 1 app.<, OPERATOR 2 app.<=, OPERATOR 3 app.=, OPERATOR 4 app.>=,
  OPERATOR 5 app.>, FUNCTION 1 app.mood_opc_cmp(app.mood_opc, app.mood_opc);

-- a domain with a CHECK calling user code, and a composite of it
CREATE DOMAIN app.posdom AS int CHECK (app.evil_imm(VALUE) > 0);
CREATE TYPE app.pair AS (a int, d app.posdom);

-- the application's tables, owned by the restorer role
CREATE TABLE app.events (id int, ts date NOT NULL, v text) PARTITION BY RANGE (ts);
CREATE TABLE app.events_2024 PARTITION OF app.events
    FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
INSERT INTO app.events VALUES (10, '2024-05-01', 'mine');
CREATE TABLE app.tparent (id int, v text);
CREATE TABLE app.tchild () INHERITS (app.tparent);
INSERT INTO app.tparent VALUES (1, 'mine');
INSERT INTO app.tchild VALUES (2, 'child row');
CREATE TABLE app.dtab (id int, v text);
INSERT INTO app.dtab VALUES (0, 'mine');
ALTER TABLE app.events OWNER TO {restorer};
ALTER TABLE app.events_2024 OWNER TO {restorer};
ALTER TABLE app.tparent OWNER TO {restorer};
ALTER TABLE app.tchild OWNER TO {restorer};
ALTER TABLE app.dtab OWNER TO {restorer};
"""


@dataclass
class Target:
    """A fresh copy of the prepared target database."""
    server: Any
    name: str
    dsn: str

    def connect(self, **kw) -> psycopg.Connection:
        kw.setdefault("autocommit", True)
        return psycopg.connect(self.dsn, **kw)

    def execute(self, query, params=None):
        with self.connect() as conn:
            cur = conn.execute(query, params)
            return cur.fetchall() if cur.description else None

    def dsn_for(self, user: str) -> str:
        return psycopg.conninfo.make_conninfo(self.dsn, user=user)


def _admin(server):
    return psycopg.connect(server.dsn, autocommit=True)


@pytest.fixture(scope="session")
def roles(pg_server):
    """The restorer and reader roles (cluster-wide), dropped at the end with whatever
    a crafted archive made (on code without the defence)."""
    with _admin(pg_server) as c:
        c.execute(sql.SQL("CREATE ROLE {} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE")
                  .format(sql.Identifier(RESTORER)))
        c.execute(sql.SQL("CREATE ROLE {} NOLOGIN").format(sql.Identifier(READER)))
    yield RESTORER, READER
    with _admin(pg_server) as c:
        for r in (EVIL_ROLE, READER, RESTORER):
            c.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(r)))


@pytest.fixture(scope="session")
def template(pg_server, roles):
    """The prepared target, once per session, as a template database."""
    name = f"dct_{TAG}_tmpl"
    with _admin(pg_server) as c:
        c.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        with psycopg.connect(pg_server.dsn_for(name), autocommit=True) as c:
            c.execute(TARGET_SQL.format(restorer=sql.Identifier(RESTORER).as_string(c),
                                        reader=sql.Identifier(READER).as_string(c)))
        yield name
    finally:
        with _admin(pg_server) as c:
            c.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)")
                      .format(sql.Identifier(name)))


def cleanup_cluster(server) -> None:
    """Undo what an attack may have left cluster-wide (only on code without the
    defence): the crafted superuser role, the crafted replication slot."""
    with _admin(server) as c:
        left = c.execute(
            "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = %s), "
            "EXISTS (SELECT 1 FROM pg_catalog.pg_replication_slots "
            "        WHERE slot_name LIKE %s)", (EVIL_ROLE, TAG + "%")).fetchone()
        if left[0]:
            c.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(EVIL_ROLE)))
        if left[1]:
            c.execute("SELECT pg_catalog.pg_drop_replication_slot(slot_name) FROM "
                      "pg_catalog.pg_replication_slots WHERE slot_name LIKE %s",
                      (TAG + "%",))


class _Dropper:
    """Drops the used copies in a background thread (a DROP DATABASE takes about a
    second, and the next test need not wait for it)."""

    def __init__(self):
        self.jobs: "queue.Queue" = queue.Queue()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while True:
            job = self.jobs.get()
            if job is None:
                return
            server, name = job
            try:
                with _admin(server) as c:
                    c.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)")
                              .format(sql.Identifier(name)))
            except psycopg.Error:
                pass

    def close(self):
        self.jobs.put(None)
        self.thread.join()


@pytest.fixture(scope="session")
def _dropper():
    d = _Dropper()
    yield d
    d.close()


def _copy(pg_server, template, dropper, create_schemas: bool):
    name = f"dct_{uuid.uuid4().hex[:12]}"
    with _admin(pg_server) as c:
        c.execute(sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
            sql.Identifier(name), sql.Identifier(template)))
        if create_schemas:
            # restore runs CREATE SCHEMA IF NOT EXISTS, which needs this even for a
            # schema that exists (see test_role_owning_only_its_schema)
            c.execute(sql.SQL("GRANT CREATE ON DATABASE {} TO {}").format(
                sql.Identifier(name), sql.Identifier(RESTORER)))
    try:
        yield Target(pg_server, name, pg_server.dsn_for(name))
    finally:
        cleanup_cluster(pg_server)
        dropper.jobs.put((pg_server, name))


@pytest.fixture
def target(pg_server, template, _dropper):
    """A fresh copy of the prepared target (one CREATE DATABASE ... TEMPLATE), in
    which the restorer role may also create schemas."""
    yield from _copy(pg_server, template, _dropper, True)


@pytest.fixture
def target_schema_owner_only(pg_server, template, _dropper):
    """The same, where the restorer role owns schema app and has no other right."""
    yield from _copy(pg_server, template, _dropper, False)


def restore(target: Target, path, mode: str, **kw):
    """restore_dump as the superuser, as the superuser with ``role=`` the restorer, or
    logged in as the restorer."""
    from dumpcodec.restore import restore_dump
    if mode == "superuser":
        return restore_dump(target.dsn, str(path), **kw)
    if mode == "role":
        return restore_dump(target.dsn, str(path), role=RESTORER, **kw)
    if mode == "login":
        return restore_dump(target.dsn_for(RESTORER), str(path), **kw)
    raise ValueError(mode)


# ===================================================================== what must not change

_STATE_SQL = {
    "canary": "SELECT x, note FROM public.canary ORDER BY x",
    "canary grant": "SELECT relacl::text, relowner FROM pg_catalog.pg_class "
                    "WHERE oid = 'public.canary'::regclass",
    "canary_seq": "SELECT last_value, is_called FROM public.canary_seq",
    "evil trace": "SELECT last_value, is_called FROM public.evil_trace",
    "evil log": "SELECT count(*) FROM public.evil_log",
    "roles": "SELECT rolname, rolsuper, rolcanlogin, rolreplication, rolcreaterole "
             "FROM pg_catalog.pg_roles ORDER BY 1",
    "role grants": "SELECT roleid, member FROM pg_catalog.pg_auth_members ORDER BY 1, 2",
    "large objects": "SELECT count(*) FROM pg_catalog.pg_largeobject_metadata",
    "replication slots": "SELECT slot_name FROM pg_catalog.pg_replication_slots ORDER BY 1",
    "publications": "SELECT pubname FROM pg_catalog.pg_publication ORDER BY 1",
    "event triggers": "SELECT evtname FROM pg_catalog.pg_event_trigger ORDER BY 1",
    "functions": "SELECT p.oid::regprocedure::text, pg_catalog.md5(p.prosrc), "
                 "p.provolatile, p.prosecdef, p.proowner FROM pg_catalog.pg_proc p "
                 "WHERE p.oid >= 16384 ORDER BY 1",
    "operators": "SELECT oid::regoperator::text, oprcode::text FROM pg_catalog.pg_operator "
                 "WHERE oid >= 16384 ORDER BY 1",
    "casts": "SELECT castsource::regtype::text, casttarget::regtype::text, "
             "castfunc::regprocedure::text, castcontext FROM pg_catalog.pg_cast "
             "WHERE oid >= 16384 ORDER BY 1, 2",
    "types in pg_catalog": "SELECT typname FROM pg_catalog.pg_type WHERE oid >= 16384 AND "
                           "typnamespace = 'pg_catalog'::regnamespace ORDER BY 1",
    "db settings": "SELECT setdatabase, setrole, setconfig::text "
                   "FROM pg_catalog.pg_db_role_setting ORDER BY 1, 2",
    "schemas": "SELECT nspname, nspowner FROM pg_catalog.pg_namespace ORDER BY 1",
    "sql_features": "SELECT count(*), pg_catalog.md5(pg_catalog.string_agg(f::text, ',' "
                    "ORDER BY f::text)) FROM information_schema.sql_features f",
}

# every table and sequence that is not one the restore was asked for: contents,
# triggers, partitions and inheritance children, owner
_RELATIONS_SQL = """
SELECT c.oid, n.nspname, c.relname, c.relkind, c.relowner, c.relacl::text,
       (SELECT pg_catalog.array_agg(t.tgname ORDER BY t.tgname) FROM pg_catalog.pg_trigger t
        WHERE t.tgrelid = c.oid),
       (SELECT pg_catalog.array_agg(i.inhrelid::regclass::text ORDER BY 1)
        FROM pg_catalog.pg_inherits i WHERE i.inhparent = c.oid)
FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p', 'S') AND n.nspname NOT IN ('pg_catalog', 'pg_toast',
                                                          'information_schema')
"""


def snapshot(target: Target, restored: Sequence[str] = ()) -> Dict[str, Any]:
    """Everything a restore of ``restored`` (``schema.name``) must leave as it is."""
    skip = set(restored)
    out: Dict[str, Any] = {}
    with target.connect() as c:
        for key, q in _STATE_SQL.items():
            out[key] = c.execute(q).fetchall()
        rels = {}
        for oid, nsp, name, kind, owner, acl, trig, children in c.execute(
                _RELATIONS_SQL).fetchall():
            qual = f"{nsp}.{name}"
            if qual in skip:
                continue
            ident = sql.Identifier(nsp, name)
            if kind == "S":
                content = c.execute(sql.SQL("SELECT last_value, is_called FROM {}")
                                    .format(ident)).fetchall()
            else:
                content = c.execute(sql.SQL(
                    "SELECT count(*), pg_catalog.md5(pg_catalog.string_agg(x::text, ',' "
                    "ORDER BY x::text)) FROM ONLY {} x").format(ident)).fetchall()
            rels[qual] = (kind, owner, acl, trig, children, content)
        out["relations"] = rels
    return out


def assert_unchanged(before: Dict[str, Any], after: Dict[str, Any],
                     new_ok: Sequence[str] = (), new_schemas: Sequence[str] = ()) -> None:
    """Every key equal; for relations, those that existed are equal and new ones are
    only those in ``new_ok`` (the restored tables, their own sequences); rows of the
    catalog lists that name one of ``new_schemas`` (created by the restore, with the
    functions and casts of its range types) may be new."""
    problems = []

    def ours(row) -> bool:
        return any(str(v) == nsp or str(v).startswith(nsp + ".")
                   for v in row for nsp in new_schemas)
    for key in before:
        if key == "relations":
            continue
        if before[key] != [r for r in after[key] if r in before[key] or not ours(r)]:
            problems.append(f"{key}: {before[key]!r} -> {after[key]!r}")
    b, a = before["relations"], after["relations"]
    for qual in sorted(set(b) | set(a)):
        if qual not in a:
            problems.append(f"{qual} disappeared")
        elif qual not in b:
            if not any(qual == ok or qual.startswith(ok + "_") for ok in new_ok):
                problems.append(f"{qual} appeared")
        elif b[qual] != a[qual]:
            problems.append(f"{qual}: {b[qual]!r} -> {a[qual]!r}")
    assert not problems, "the restore changed what it must not:\n" + "\n".join(problems)


def honest_rows(target: Target) -> List[Tuple[int, str]]:
    return target.execute("SELECT id, txt FROM app.honest ORDER BY id")


# ===================================================================== crafting

def entry(src: Source, table_id: str) -> list:
    return copy.deepcopy(src.tables[table_id])


def constraint(d: dict, kind: str, name: Optional[str] = None) -> dict:
    return next(c for c in d["constraints"]
                if c["kind"] == kind and (name is None or c["name"] == name))


def column(d: dict, name: str) -> dict:
    return next(c for c in d["columns"] if c["name"] == name)


def add_column(t: list, name: str, *, like: str, default: Optional[str] = None,
               generated: Optional[str] = None, **changes) -> None:
    """Add a column to the definition, like an existing one; it stays out of the
    header's column list and of the data, so COPY computes it for every row."""
    d = t[1]
    col = copy.deepcopy(column(d, like))
    col.update(name=name, default=default, generated=generated, identity=None,
               not_null=False, position=len(d["columns"]) + 1, **changes)
    d["columns"].append(col)


def set_type(t: list, name: str) -> dict:
    return next(ty for ty in t[1]["types"] if ty["name"] == name)


def as_pipe(path):
    """The archive at ``path`` as a pipe (one pass through it, nothing seekable); a
    thread feeds it."""
    r, w = os.pipe()
    with open(path, "rb") as f:
        data = f.read()

    def feed():
        with os.fdopen(w, "wb") as out:
            try:
                out.write(data)
            except BrokenPipeError:
                pass
    threading.Thread(target=feed, daemon=True).start()
    return os.fdopen(r, "rb")
