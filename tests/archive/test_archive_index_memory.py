"""The table index of a reader, and the tables of a restore, hold bounded memory per
table (issue 19: restoring 10,000 tables peaked over 300 MB): definitions are kept as
JSON text until asked for, the manifest is parsed an entry at a time, and a restore
holds a table's ``TableDef`` only while that table is restored.  Archives written by the
real dump from a real server; memory counted with tracemalloc (no timing)."""
from __future__ import annotations

import gc
import io
import json
import tarfile
import tracemalloc

import pytest

from archive_helpers import NonSeekable
from dumpcodec import create_dump
from dumpcodec.archive import manifest as mf
from dumpcodec.archive import open_dump
from dumpcodec.errors import ArchiveError
from dumpcodec.restore import select
from dumpcodec.schema.model import TableDef

SMALL, LARGE = 100, 600


@pytest.fixture(scope="module")
def archives(tmp_path_factory, pg_server):
    """Two archives of one database: ``SMALL`` tables (schema s1), and those plus
    ``LARGE - SMALL`` more (s2); both zstd (with a locator) and plain tar."""
    import psycopg
    from conftest import _create_db, _drop_db
    db = _create_db(pg_server)
    try:
        with psycopg.connect(db.dsn, autocommit=True) as c:
            c.execute("CREATE SCHEMA s1; CREATE SCHEMA s2")
            for schema_, lo, hi in (("s1", 0, SMALL), ("s2", SMALL, LARGE)):
                c.execute("; ".join(
                    f"CREATE TABLE {schema_}.e{i:04d} (id int PRIMARY KEY, v text "
                    f"DEFAULT 'x', CHECK (id > 0))" for i in range(lo, hi)))
            # a foreign key: its definition is needed again after all tables
            c.execute("ALTER TABLE s1.e0001 ADD FOREIGN KEY (id) REFERENCES s1.e0000")
        out = tmp_path_factory.mktemp("index_memory")
        paths = {}
        for label, selectors in (("small", ["s1"]), ("large", ["s1", "s2"])):
            for backend in ("zstd", "tar"):
                path = out / f"{label}.{backend}"
                create_dump(db.dsn, selectors, str(path), backend=backend)
                paths[label, backend] = str(path)
        yield paths
    finally:
        _drop_db(db)


def _index_memory(path):
    """(bytes still held after reading the index, peak while reading it)."""
    gc.collect()
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        with open_dump(path) as r:
            tables = r.tables()
            current, peak = tracemalloc.get_traced_memory()
        assert tables
    finally:
        tracemalloc.stop()
    return current - base, peak - base


@pytest.mark.parametrize("backend", ["zstd", "tar"])
def test_index_memory_per_table_is_bounded(archives, backend):
    # zstd: the manifest from the locator; tar: the whole pass (the headers, then the
    # manifest's entries beside them).  Measured: about 4.4 KB held per table (the
    # definition's text 1.3 KB), a peak of about 4.3 KB (zstd) and 11 KB (tar) per
    # table; before, the parsed definitions alone took about 10 KB per table, and
    # reading the index peaked at over 22 KB per table
    small = _index_memory(archives["small", backend])
    large = _index_memory(archives["large", backend])
    held = (large[0] - small[0]) / (LARGE - SMALL)
    peak = (large[1] - small[1]) / (LARGE - SMALL)
    assert held < 7000, f"{held:.0f} bytes held per table"
    assert peak < (8000 if backend == "zstd" else 16000), f"{peak:.0f} bytes peak per table"


@pytest.mark.parametrize("backend", ["zstd", "tar"])
def test_reader_holds_definitions_as_text(archives, backend):
    path = archives["small", backend]
    with open_dump(path) as r:
        tables = r.tables()
        assert all(isinstance(t.stored_definition, mf.JSONText) for t in tables)
        # no definition was parsed to list the tables: no dict holds a table's columns
        gc.collect()
        assert not [o for o in gc.get_objects()
                    if type(o) is dict and o.get("schema") == "s1" and "columns" in o]
        first = r.table("s1.e0000")
        d = first.definition
        assert d["schema"] == "s1" and d["name"] == "e0000"
        assert first.has_definition
        assert first.definition is not d and first.definition == d   # parsed afresh
        d["name"] = "changed"                  # a caller's copy: the index keeps its own
        assert first.definition["name"] == "e0000"
    # the one-pass reader of a pipe, from the headers: the same definitions
    with open(path, "rb") as f, open_dump(io.BufferedReader(NonSeekable(f))) as r:
        seen = {}
        for info, chunks in r.iter_tables():
            assert isinstance(info.stored_definition, mf.JSONText)
            seen[info.table_id] = info.definition
            for _ in chunks:
                pass
    assert seen == {t.table_id: t.definition for t in tables}
    assert [t.to_json() for t in tables] == [t.to_json() for t in open_dump(path).tables()]


def test_restore_items_hold_no_definitions(archives):
    with open_dump(archives["small", "zstd"]) as r:
        items = [select.item_from(t) for t in r.tables()]
    gc.collect()
    assert not [o for o in gc.get_objects() if isinstance(o, TableDef)]
    assert {it.source for it in items} == {("s1", f"e{i:04d}") for i in range(SMALL)}
    it = items[1]
    tdef = it.definition
    assert it.definition is tdef            # one object while something holds it
    assert [c.kind for c in tdef.constraints if c.kind == "foreign_key"] == ["foreign_key"]
    assert it.parents == [] and it.qualified == "s1.e0001"
    del tdef
    gc.collect()
    assert not [o for o in gc.get_objects() if isinstance(o, TableDef)]
    assert it.definition.name == "e0001"    # built again from the archive's text


def _manifest_of(path):
    with tarfile.open(path) as tf:
        return tf.extractfile(mf.MANIFEST_MEMBER).read()


def _old_way(data):
    """What the reader did before: the whole document, then check_manifest."""
    return mf.check_manifest(mf.MANIFEST_MEMBER, mf.load_json(mf.MANIFEST_MEMBER, data))


def _outcome(fn, data):
    try:
        doc = fn(data)
    except ArchiveError as exc:
        return "error", str(exc)
    tables = [{k: (v.parse() if isinstance(v, mf.JSONText) else v) for k, v in t.items()}
              for t in doc["tables"]]
    return "ok", dict(doc, tables=tables)


def test_manifest_parse_gives_the_checks_and_errors_of_the_whole_document(archives):
    data = _manifest_of(archives["small", "tar"])
    doc = json.loads(data)
    new = lambda d: mf.load_manifest(mf.MANIFEST_MEMBER, d)  # noqa: E731

    def variants():
        yield data
        yield data.replace(b"\n", b"\r\n \t")                     # other whitespace
        yield json.dumps(doc, separators=(",", ":")).encode()
        for cut in (1, 2, len(data) // 2, len(data) - 3):
            yield data[:cut]                                        # truncated
        yield data + b"x"
        yield b"\xef\xbb\xbf" + data                                # a BOM
        yield b"[" + data + b"]"
        yield data.replace(b'"tables": [', b'"tables": [1, ', 1)   # an entry not an object
        bad = json.loads(data)
        bad["tables"][3]["rows"] = -1                               # a bad entry ...
        yield json.dumps(bad).encode()
        bad["format_version"] = 99                                  # ... and a bad archive field
        yield json.dumps(bad).encode()
        bad = json.loads(data)
        bad["tables"][5]["definition"] = [1]
        yield json.dumps(bad).encode()
        bad = json.loads(data)
        del bad["tables"]
        yield json.dumps(bad).encode()
        bad["tables"] = {"a": 1}
        yield json.dumps(bad).encode()
        # duplicate keys: the last wins, as json.loads has it
        yield data.replace(b'"tables": [', b'"tables": 7, "tables": [', 1)
        yield data.replace(b'"tables": [', b'"tables": [], "tables": [', 1)
        yield data[:-2] + b', "tables": []}\n'

    for variant in variants():
        assert _outcome(new, variant) == _outcome(_old_way, variant), variant[:80]
    assert _outcome(new, data)[0] == "ok"
