"""Hostile input: crafted archives must not run SQL, escape the reader, or blow up.

Two halves:

* SQL injection through a crafted manifest.  A real dump is made, then rewritten
  with the library's own writer (so that every checksum, offset and end marker is
  consistent: the attacker knows the format) with injected SQL in the table-id,
  schema, table, column, constraint and index names, type names, defaults, CHECKs,
  domain CHECKs, index expressions and predicates, sequence names, collations,
  comments.  It is restored into a database holding a canary table and a canary
  sequence; afterwards the canary rows and the sequence state must be unchanged, no
  large object, role, function or schema must have appeared, and every new relation
  must be the restored table or one of its own indexes/sequences.
* Hostile archives read without a database: path traversal and absolute member
  names, symlink/hardlink/device/FIFO/directory members, decompression bombs, huge
  declared sizes, and table-ids/member names with spaces, newlines, control
  characters and non-UTF-8 bytes.
"""
from __future__ import annotations

import copy
import io
import json
import os
import subprocess
import sys
import tarfile

import psycopg
import pytest

from archive_helpers import read_tables, write_archive
from codec_helpers import HEADER, stream, tup
from dumpcodec.archive import open_dump
from dumpcodec.errors import DumpcodecError

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
INJECT = "; DROP TABLE public.canary; SELECT nextval('public.canary_seq'); --"


# ===================================================================== helpers

def rename_column(t, old, new):
    """Rename a column everywhere the definition names it as a column (not in text)."""
    d = t[1]
    for c in d["columns"]:
        if c["name"] == old:
            c["name"] = new
    for con in d["constraints"]:
        con["columns"] = [new if x == old else x for x in con["columns"]]
    for idx in d["indexes"]:
        for e in idx["elements"]:
            if e.get("column") == old:
                e["column"] = new
    for s in d.get("sequences", []):
        if s.get("column") == old:
            s["column"] = new
    t[2] = [new if x == old else x for x in t[2]]


def constraint(d, kind):
    return next(c for c in d["constraints"] if c["kind"] == kind)


STATE_SQL = {
    "canary": "SELECT x FROM public.canary ORDER BY x",
    "canary_seq": "SELECT last_value, is_called FROM public.canary_seq",
    "large_objects": "SELECT count(*) FROM pg_catalog.pg_largeobject_metadata",
    "roles": "SELECT rolname FROM pg_catalog.pg_roles ORDER BY 1",
    "functions": "SELECT p.oid::regprocedure::text FROM pg_catalog.pg_proc p JOIN "
                 "pg_catalog.pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname "
                 "NOT IN ('pg_catalog', 'information_schema') ORDER BY 1",
    "db_settings": "SELECT setconfig::text FROM pg_catalog.pg_db_role_setting ORDER BY 1",
}


def state(tdb):
    return {k: tdb.execute(q) for k, q in STATE_SQL.items()}


def relations(tdb):
    return {r[0]: r[1:] for r in tdb.execute(
        "SELECT c.oid, n.nspname, c.relname, c.relkind FROM pg_catalog.pg_class c "
        "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')")}


def schemas(tdb):
    return {r[0] for r in tdb.execute("SELECT nspname FROM pg_catalog.pg_namespace")}


def foreign_new_relations(tdb, before):
    """New relations that are neither a table nor owned by / indexing a new table."""
    after = relations(tdb)
    new = {oid: v for oid, v in after.items() if oid not in before}
    tables = {oid for oid, v in new.items() if v[2] in ("r", "p")}
    bad = []
    for oid, (nsp, name, kind) in new.items():
        if oid in tables:
            continue
        owner = tdb.execute(
            "SELECT indrelid FROM pg_catalog.pg_index WHERE indexrelid = %s "
            "UNION ALL SELECT refobjid FROM pg_catalog.pg_depend WHERE objid = %s "
            "AND classid = 'pg_class'::regclass AND refclassid = 'pg_class'::regclass "
            "AND deptype IN ('a', 'i')", (oid, oid))
        if not any(o[0] in tables for o in owner or []):
            bad.append(f"{nsp}.{name} ({kind})")
    return bad


# ============================================================ SQL injection

@pytest.fixture(scope="module")
def source_archive(pg_server, tmp_path_factory):
    """A real dump of a table with a serial, a default, a CHECK, a domain column, a
    unique and a partial expression index, and a comment."""
    from dumpcodec.dump import create_dump
    name = "dct_hostile_src_%d" % os.getpid()
    with psycopg.connect(pg_server.dsn, autocommit=True) as c:
        c.execute(f'DROP DATABASE IF EXISTS "{name}"')
        c.execute(f'CREATE DATABASE "{name}"')
    dsn = pg_server.dsn_for(name)
    try:
        with psycopg.connect(dsn, autocommit=True) as c:
            c.execute("""
                CREATE DOMAIN public.small AS int CHECK (VALUE < 1000);
                CREATE TABLE public.t (
                    id serial PRIMARY KEY,
                    v text DEFAULT 'x' CHECK (length(v) < 10),
                    n numeric(12,2),
                    s public.small,
                    CONSTRAINT t_v_key UNIQUE (v));
                CREATE INDEX t_lower_idx ON public.t (lower(v)) WHERE n > 0;
                COMMENT ON TABLE public.t IS 'a table';
                INSERT INTO public.t (v, n, s) VALUES ('a', 1.5, 1), ('b', NULL, 2),
                                                      ('c', 2, NULL);""")
        path = tmp_path_factory.mktemp("hostile") / "source.dump"
        create_dump(dsn, ["public.t"], str(path), backend="tar")
        yield path
    finally:
        with psycopg.connect(pg_server.dsn, autocommit=True) as c:
            c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


RESET_SQL = r"""
DO $$
DECLARE r record;
BEGIN
  FOR r IN SELECT nspname FROM pg_catalog.pg_namespace
           WHERE nspname NOT IN ('public', 'information_schema')
             AND nspname NOT LIKE 'pg\_%' LOOP
    EXECUTE format('DROP SCHEMA %I CASCADE', r.nspname);
  END LOOP;
  FOR r IN SELECT c.relname, c.relkind FROM pg_catalog.pg_class c
           JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
           WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p', 'S')
             AND c.relname NOT IN ('canary', 'canary_seq') LOOP
    EXECUTE format(CASE WHEN r.relkind = 'S' THEN 'DROP SEQUENCE IF EXISTS public.%I CASCADE'
                        ELSE 'DROP TABLE IF EXISTS public.%I CASCADE' END, r.relname);
  END LOOP;
  FOR r IN SELECT t.typname FROM pg_catalog.pg_type t
           JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace
           WHERE n.nspname = 'public' AND t.typtype IN ('d', 'e', 'c', 'r')
             AND t.typrelid = 0 LOOP
    EXECUTE format('DROP TYPE IF EXISTS public.%I CASCADE', r.typname);
  END LOOP;
  PERFORM pg_catalog.lo_unlink(oid) FROM pg_catalog.pg_largeobject_metadata;
  DROP TABLE IF EXISTS public.canary;
  DROP SEQUENCE IF EXISTS public.canary_seq;
  CREATE TABLE public.canary (x int);
  INSERT INTO public.canary VALUES (42), (43);
  CREATE SEQUENCE public.canary_seq;
  PERFORM pg_catalog.setval('public.canary_seq', 7);
END $$"""


@pytest.fixture(scope="module")
def _target_db(pg_server):
    from conftest import _create_db, _drop_db
    tdb = _create_db(pg_server)
    yield tdb
    _drop_db(tdb)


@pytest.fixture
def target(_target_db):
    """The target database with only the canary table and sequence (one database for
    the module, reset before each test: creating one per case costs seconds)."""
    _target_db.execute(RESET_SQL)
    return _target_db


def _set(path, value):
    """A mutator setting definition[path...] = value (path of keys and indexes)."""
    def mutate(t):
        obj = t[1]
        for key in path[:-1]:
            obj = obj[key](obj) if callable(key) else obj[key]
        obj[path[-1]] = value
    return mutate


def _check_expr(expr):
    def mutate(t):
        constraint(t[1], "check")["expression"] = expr
    return mutate


def _domain_check(expr):
    def mutate(t):
        dom = next(ty for ty in t[1]["types"] if ty["kind"] == "domain")
        dom["checks"][0]["expression"] = expr
    return mutate


def _index_expr(expr):
    def mutate(t):
        idx = next(i for i in t[1]["indexes"] if i["name"] == "t_lower_idx")
        idx["elements"][0]["expression"] = expr
    return mutate


def _index_pred(expr):
    def mutate(t):
        idx = next(i for i in t[1]["indexes"] if i["name"] == "t_lower_idx")
        idx["predicate"] = expr
    return mutate


def _table_id(t):
    t[0] = "public.t" + INJECT


def _col_type(t):
    t[1]["columns"][2]["type"] = "numeric(12,2))" + INJECT
    t[3][2] = t[1]["columns"][2]["type"]


def _col_type_user(t):
    col = t[1]["columns"][1]
    col.update(builtin=False, type_schema='public"' + INJECT, type_elem='text"' + INJECT,
               type_kind="b", type_oid=99999)


def _seq_name(t):
    t[1]["sequences"][0]["name"] = 'canary_seq'
    t[1]["sequences"][0]["last_value"] = 99999
    t[1]["sequences"][0]["is_called"] = True


def _seq_type(t):
    t[1]["sequences"][0]["data_type"] = "bigint" + INJECT


def _fk(t):
    t[1]["constraints"].append({
        "columns": ["s"], "deferrable": False, "deferred": False, "elements": [],
        "expression": None, "include": [], "inherited": False, "kind": "foreign_key",
        "match": "s", "method": None, "name": "t_fk" + INJECT, "no_inherit": False,
        "nulls_not_distinct": False, "on_delete": "c" + INJECT, "on_update": "a",
        "predicate": None, "ref_columns": ["x"], "ref_schema": "public",
        "ref_table": "canary", "validated": True})


CASES = {
    # names: quoted as identifiers, so they only make odd names (or fail)
    "table-id": _table_id,
    "schema name": _set(["schema"], 'public"' + INJECT),
    "table name": _set(["name"], 't"' + INJECT),
    "column name": lambda t: rename_column(t, "id", 'id"' + INJECT),
    "constraint name": lambda t: constraint(t[1], "check").update(name='c"' + INJECT),
    "index name": lambda t: t[1]["indexes"][0].update(name='i"' + INJECT),
    "collation": lambda t: t[1]["columns"][1].update(collation='C"' + INJECT,
                                                     collation_schema="pg_catalog"),
    "opclass": lambda t: t[1]["indexes"][0]["elements"][0].update(
        opclass='text_ops"' + INJECT, opclass_schema="pg_catalog"),
    "index method": lambda t: t[1]["indexes"][0].update(method="btree" + INJECT),
    "comment": _set(["comment"], "x'" + INJECT),
    "builtin type text": _col_type,
    "user type name": _col_type_user,
    "sequence data type": _seq_type,
    "foreign key": _fk,
    # text expressions: more than one expression must be refused
    "default statement": lambda t: t[1]["columns"][1].update(default="'x'::text)" + INJECT),
    "check statement": _check_expr("length(v) < 10)" + INJECT),
    "check comment": _check_expr("length(v) < 10 -- ) " + INJECT),
    "index expression statement": _index_expr("lower(v))" + INJECT),
    "index predicate statement": _index_pred("n > 0)" + INJECT),
    "domain check statement": _domain_check("VALUE < 1000)" + INJECT),
    "index expression volatile": _index_expr("nextval('public.canary_seq')"),
    # single expressions with side effects, evaluated while the data loads
    "default volatile": lambda t: t[1]["columns"][1].update(
        default="nextval('public.canary_seq')::text"),
    "check volatile nextval": _check_expr("nextval('public.canary_seq') > 0"),
    "check volatile large object": _check_expr("lo_from_bytea(0, '\\x00'::bytea) > 0"),
    "check volatile setval": _check_expr("setval('public.canary_seq', 1000) > 0"),
    "check volatile lo_creat": _check_expr("lo_creat(-1) > 0"),
    "check volatile lo_import": _check_expr("lo_import('/etc/hostname') > 0"),
    "check query_to_xml": _check_expr(
        "query_to_xml('SELECT pg_catalog.nextval(''public.canary_seq'')', true, true, '')"
        " IS NOT NULL"),
    "check qualified and quoted": _check_expr('"pg_catalog"."nextval"(\'public.canary_seq\') > 0'),
    "domain check volatile": _domain_check("nextval('public.canary_seq') > 0"),
    "index predicate volatile": _index_pred("nextval('public.canary_seq') > 0"),
    # an owned sequence that is really someone else's
    "sequence name": _seq_name,
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_crafted_manifest_runs_nothing_else(case, source_archive, target, tmp_path):
    from dumpcodec.restore import restore_dump
    tables = read_tables(source_archive)
    crafted = copy.deepcopy(tables)
    CASES[case](crafted[0])
    path = tmp_path / "crafted.dump"
    write_archive(path, crafted)

    before_state = state(target)
    before_rel = relations(target)
    before_schemas = schemas(target)
    summary = None
    try:
        summary = restore_dump(target.dsn, str(path), if_exists="error")
    except DumpcodecError:
        pass        # refusing the whole archive is fine
    assert state(target) == before_state, f"{case}: something outside the restore ran"
    assert foreign_new_relations(target, before_rel) == [], case
    new_schemas = schemas(target) - before_schemas
    assert new_schemas <= {crafted[0][1]["schema"]}, new_schemas
    if summary is not None and not summary.failed:
        # restored: it is the table the archive describes, with its rows
        d = crafted[0][1]
        rows = target.execute(psycopg.sql.SQL("SELECT count(*) FROM {}").format(
            psycopg.sql.Identifier(d["schema"], d["name"])))
        assert rows == [(3,)]


def test_existing_sequence_not_moved_on_append(source_archive, target, tmp_path):
    # Loading into an existing table (append) moves the table's own sequences on; a
    # crafted definition naming another sequence must not move that one.
    from dumpcodec.restore import restore_dump
    tables = read_tables(source_archive)
    clean = tmp_path / "clean.dump"
    write_archive(clean, tables)
    first = restore_dump(target.dsn, str(clean))
    assert not first.failed
    crafted = copy.deepcopy(tables)
    _seq_name(crafted[0])
    path = tmp_path / "crafted.dump"
    write_archive(path, crafted)
    before = state(target)
    try:
        restore_dump(target.dsn, str(path), if_exists="append")
    except DumpcodecError:
        pass
    assert state(target)["canary_seq"] == before["canary_seq"]
    assert state(target)["canary"] == before["canary"]


# ============================================================ hostile archives

def _member(name, data=b"", kind=tarfile.REGTYPE, linkname="", size=None):
    ti = tarfile.TarInfo(name)
    ti.type = kind
    ti.linkname = linkname
    ti.mtime = 0
    ti.size = len(data) if size is None else size
    if kind in (tarfile.CHRTYPE, tarfile.BLKTYPE):
        ti.devmajor, ti.devminor = 1, 3
    if kind != tarfile.REGTYPE:
        ti.size = 0
        data = b""
    head = ti.tobuf(tarfile.GNU_FORMAT, "utf-8", "surrogateescape")
    return head + data + bytes(-len(data) % 512)


def _tar(*members, end=True):
    return b"".join(members) + (bytes(1024) if end else b"")


COPY_2ROWS = stream(tup(b"\x00\x00\x00\x01"), tup(b"\x00\x00\x00\x02"))


def _dachs(members, index_lines):
    index = "".join(index_lines).encode("utf-8", "surrogateescape") \
        if isinstance(index_lines[0], str) else b"".join(index_lines)
    return _tar(*members, _member("index.txt", index))


def run_cli(*args, cwd=None, timeout=120):
    proc = subprocess.run([sys.executable, "-m", "dumpcodec", *args], capture_output=True,
                          cwd=cwd, timeout=timeout)
    return proc.returncode, proc.stdout.decode("utf-8", "replace"), \
        proc.stderr.decode("utf-8", "replace")


UNSAFE_NAMES = ["../../evil.dump", "/tmp/evil.dump", "a/../../evil.dump", "..\\evil.dump",
                "C:evil.dump", "ok\x00.dump"]


def _check_refused(path, tmp_path):
    """Library: verify says not ok, reading raises a DumpcodecError; CLI: a clear
    one-line error, a non-zero exit, and nothing written anywhere."""
    before = sorted(os.listdir(tmp_path.parent))
    with open_dump(str(path)) as r:
        report = r.verify()
        assert not report.ok
    with open_dump(str(path)) as r:
        with pytest.raises(DumpcodecError):
            for t in r.tables():
                list(r.read_rows(t.table_id))
    work = tmp_path / "cwd"
    work.mkdir(exist_ok=True)
    for cmd in (["verify", str(path)], ["ls", str(path)], ["cat", str(path), "public.t"]):
        code, out, err = run_cli(*cmd, cwd=work)
        assert code != 0, (cmd, out, err)
        assert "Traceback" not in err and err.strip().count("\n") < 5, err
    assert os.listdir(work) == []
    assert sorted(os.listdir(tmp_path.parent)) == before


@pytest.mark.parametrize("name", UNSAFE_NAMES)
def test_path_traversal_member_names_refused(name, tmp_path):
    path = tmp_path / "evil.tar"
    path.write_bytes(_dachs([_member(name, COPY_2ROWS)], [f"{name} public.t\n"]))
    _check_refused(path, tmp_path)
    assert not os.path.exists("/tmp/evil.dump")


@pytest.mark.parametrize("kind, linkname", [
    (tarfile.SYMTYPE, "/etc/passwd"), (tarfile.LNKTYPE, "/etc/passwd"),
    (tarfile.CHRTYPE, ""), (tarfile.BLKTYPE, ""), (tarfile.FIFOTYPE, ""),
    (tarfile.DIRTYPE, ""),
])
def test_link_device_and_directory_members_refused(kind, linkname, tmp_path):
    path = tmp_path / "links.tar"
    path.write_bytes(_dachs([_member("table_000.dump", kind=kind, linkname=linkname)],
                            ["table_000.dump public.t\n"]))
    _check_refused(path, tmp_path)


def test_link_member_inside_our_layout_refused(tmp_path):
    # Our own archive with its data member swapped for a symlink of the same name.
    src = tmp_path / "ok.tar"
    write_archive(src, [["public.t", None, ["a"], ["int4"], "binary", COPY_2ROWS]])
    blocks = src.read_bytes()
    out = io.BytesIO()
    pos = 0
    while pos < len(blocks):
        head = blocks[pos:pos + 512]
        if head == bytes(512):
            out.write(blocks[pos:])
            break
        ti = tarfile.TarInfo.frombuf(head, "utf-8", "surrogateescape")
        size = ti.size + (-ti.size % 512)
        if ti.name.endswith(".dump"):
            out.write(_member(ti.name, kind=tarfile.SYMTYPE, linkname="/etc/passwd"))
        else:
            out.write(blocks[pos:pos + 512 + size])
        pos += 512 + size
    path = tmp_path / "link.tar"
    path.write_bytes(out.getvalue())
    _check_refused(path, tmp_path)


def test_huge_declared_member_sizes(tmp_path):
    # Tar headers declaring 8 GB (octal) and 2**80 bytes (GNU base-256) over 1 KB of data.
    octal = bytearray(_member("table_000.dump", COPY_2ROWS))
    octal[124:136] = b"77777777777\0"
    octal[148:156] = b"        "
    octal[148:156] = b"%06o\0 " % sum(octal[:512])
    base256 = bytearray(_member("table_000.dump", COPY_2ROWS))
    base256[124:136] = b"\x80" + (1 << 80).to_bytes(11, "big")
    base256[148:156] = b"        "
    base256[148:156] = b"%06o\0 " % sum(base256[:512])
    for i, head in enumerate((octal, base256)):
        path = tmp_path / f"huge{i}.tar"
        path.write_bytes(bytes(head) + bytes(1024))
        with open_dump(str(path)) as r:
            assert not r.verify().ok
        with pytest.raises(DumpcodecError):
            with open_dump(str(path)) as r:
                r.tables()


def _bomb_script(path, backend):
    return f"""
import sys, time
from dumpcodec.archive import open_dump
t0 = time.monotonic()
with open_dump({str(path)!r}, backend={backend!r}) as r:
    report = r.verify()
# VmHWM, not ru_maxrss: ru_maxrss keeps the forked pytest process's peak across exec
hwm = [l for l in open("/proc/self/status") if l.startswith("VmHWM:")][0].split()[1]
print(report.ok, len(report.problems), int(hwm) // 1024, round(time.monotonic() - t0, 1))
"""


def _write_bomb(path, compressor, size):
    """A DaCHS-layout archive whose data member is ``size`` zero bytes, compressed."""
    zeros = bytes(1 << 20)
    with open(path, "wb") as f:
        with compressor(f) as z:
            z.write(_member("table_000.dump", size=size)[:512])
            for _ in range(size >> 20):
                z.write(zeros)
            index = b"table_000.dump public.bomb\n"
            z.write(_member("index.txt", index))
            z.write(bytes(1024))


@pytest.mark.parametrize("kind", ["zstd", "gzip"])
def test_decompression_bomb_bounded(kind, tmp_path):
    # ~1 GB of zeros in a few hundred KB: verify streams through it in bounded memory
    # (and says what is wrong with it) instead of holding it.
    import gzip as gz
    import zstandard
    size = (1 << 30) if kind == "zstd" else (256 << 20)
    path = tmp_path / f"bomb.{kind}"
    if kind == "zstd":
        _write_bomb(path, lambda f: zstandard.ZstdCompressor(level=1).stream_writer(f),
                    size)
    else:
        _write_bomb(path, lambda f: gz.GzipFile(fileobj=f, mode="wb", compresslevel=9),
                    size)
    assert path.stat().st_size < size // 200
    proc = subprocess.run([sys.executable, "-c", _bomb_script(path, kind)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    ok, problems, rss_mb, _secs = proc.stdout.split()
    assert ok == "False" and int(problems) >= 1
    assert int(rss_mb) < 300, f"verify of a {size >> 20} MB bomb peaked at {rss_mb} MB"


def test_metadata_bomb_refused_without_reading(tmp_path):
    # A manifest-sized member of 200 MB: refused by its declared size.
    import zstandard
    path = tmp_path / "meta.zst"
    with open(path, "wb") as f:
        with zstandard.ZstdCompressor(level=1).stream_writer(f) as z:
            z.write(_member("dumpcodec.json", size=200 << 20)[:512])
            for _ in range(200):
                z.write(b" " * (1 << 20))
            z.write(bytes(1024))
    proc = subprocess.run([sys.executable, "-c", _bomb_script(path, "zstd")],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    ok, problems, rss_mb, _ = proc.stdout.split()
    assert ok == "False" and int(rss_mb) < 300


HOSTILE_IDS = ["public.with space", "public.new\nline", "public.tab\there",
               "public.café ☃", "public.\x1b[31mred\x1b[0m", "public.100%41",
               "public.t; DROP TABLE x", "  leading", "x" * 300]


def test_hostile_table_ids_round_trip(tmp_path):
    path = tmp_path / "ids.dump"
    tables = [[tid, None, ["a"], ["int4"], "binary", COPY_2ROWS] for tid in HOSTILE_IDS]
    write_archive(path, tables, backend="zstd")
    with open_dump(str(path)) as r:
        assert r.verify().ok
        assert [t.table_id for t in r.tables()] == HOSTILE_IDS
        for tid in HOSTILE_IDS:
            assert list(r.read_rows(tid)) == [(1,), (2,)]
    # A table-id that is not valid text (only a DaCHS index.txt can hold one) is
    # refused by the writer with a clear error.
    with open_dump(str(tmp_path / "bad.dump"), "w") as w:
        with pytest.raises(ValueError):
            w.add_table("public.caf\udce9", None, ["a"], ["int4"])
    code, out, err = run_cli("ls", str(path))
    assert code == 0, err
    assert "\x1b" not in out, "ls printed a raw terminal escape from a table-id"
    assert "new\nline" not in out, "ls broke a table's line at a newline in its id"
    assert "Traceback" not in err
    code, out, err = run_cli("ls", "--json", str(path))
    assert code == 0, err
    listed = json.loads(out)
    ids = [t["table_id"] for t in (listed["tables"] if isinstance(listed, dict) else listed)]
    assert len(ids) == len(HOSTILE_IDS)


def test_index_txt_with_hostile_lines(tmp_path):
    # DaCHS index.txt lines with spaces in ids, non-UTF-8 bytes, CRLF, blank lines, a
    # line without a table-id, and a member listed twice: a clear result, no crash.
    members = [_member(f"table_00{i}.dump", COPY_2ROWS) for i in range(3)]
    variants = {
        "spaces": [b"table_000.dump my table id with spaces\n"],
        "latin1": [b"table_000.dump caf\xe9\n"],
        "crlf": [b"table_000.dump public.a\r\n", b"\r\n"],
        "no id": [b"table_000.dump\n"],
        "duplicate": [b"table_000.dump public.a\n", b"table_000.dump public.b\n"],
        "missing member": [b"table_009.dump public.a\n"],
        "control": [b"table_000.dump \x1b]0;pwned\x07\n"],
    }
    for label, lines in variants.items():
        path = tmp_path / f"index-{label.replace(' ', '_')}.tar"
        path.write_bytes(_dachs(members, lines))
        with open_dump(str(path)) as r:
            report = r.verify()
        try:
            with open_dump(str(path)) as r:
                for t in r.tables():
                    rows = list(r.read_rows(t.table_id))
                    assert rows == [(b"\x00\x00\x00\x01",), (b"\x00\x00\x00\x02",)]
        except DumpcodecError:
            assert not report.ok, label
        code, out, err = run_cli("ls", str(path))
        assert "Traceback" not in err, (label, err)
        assert "\x1b" not in out and "\x07" not in out, label


# ============================================================ huge declared lengths

def _impls():
    import importlib
    mods = [importlib.import_module("dumpcodec.copy.pure")]
    try:
        mods.append(importlib.import_module("dumpcodec._fastcopy"))
    except ImportError:
        pass
    return mods


@pytest.mark.parametrize("mod", _impls(), ids=lambda m: m.__name__.split("_")[-1])
@pytest.mark.parametrize("length", [0x3FFFFFFF, 0x40000001, 0x7FFFFFFF])
def test_huge_declared_field_length_allocates_nothing(mod, length):
    # A tuple declaring a field of ~1 GiB (the limit) and one just over it, followed by
    # 10 bytes: over the limit is refused at once by feed(); at the limit the decoder
    # waits for data and close() reports the truncation -- neither allocates the length.
    import tracemalloc
    from dumpcodec.errors import CopyFormatError
    data = HEADER + b"\x00\x01" + length.to_bytes(4, "big") + b"x" * 10
    for cls in ("Decoder", "Scanner"):
        obj = getattr(mod, cls)()
        tracemalloc.start()
        try:
            with pytest.raises(CopyFormatError) as exc:
                obj.feed(data)
                assert length <= mod.MAX_FIELD_SIZE, "over the limit must fail in feed()"
                obj.close()
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert peak < 1 << 20, f"{cls} allocated {peak} bytes for a declared {length}"
        if length > mod.MAX_FIELD_SIZE:
            assert exc.value.offset == 21 and "limit" in str(exc.value)
        else:
            assert "ends at byte 35" in str(exc.value)


@pytest.mark.parametrize("member", ["table 000.dump", "table\n000.dump", "caf\udce9.dump",
                                    "table%20000.dump"])
def test_member_names_with_spaces_newlines_and_bytes(member, tmp_path):
    # DaCHS-layout members whose names hold a space, a newline or a non-UTF-8 byte,
    # listed in index.txt as written (DaCHS has no escaping) and percent-encoded (as
    # our index.txt grammar escapes them): rows or a clear error, never a crash.
    from urllib.parse import quote
    for line in (f"{member} public.a\n", f"{quote(member, errors='surrogateescape')} public.a\n"):
        path = tmp_path / "m.tar"
        path.write_bytes(_tar(_member(member, COPY_2ROWS),
                              _member("index.txt", line.encode("utf-8", "surrogateescape"))))
        with open_dump(str(path)) as r:
            report = r.verify()
        try:
            with open_dump(str(path)) as r:
                rows = [list(r.read_rows(t.table_id)) for t in r.tables()]
            assert rows == [[(b"\x00\x00\x00\x01",), (b"\x00\x00\x00\x02",)]], rows
        except DumpcodecError as exc:
            assert not report.ok, (line, exc)
        if line.startswith(member):      # the CLI once per name (it costs a process)
            code, out, err = run_cli("verify", str(path))
            assert "Traceback" not in err, err
            assert (code == 0) == report.ok
