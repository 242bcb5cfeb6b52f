"""create_dump against real servers."""
from __future__ import annotations

import os
import threading
import time

import pytest

from dumpcodec import pump
from dumpcodec.archive import open_dump
from dumpcodec.dump import binary_capable, create_dump
from dumpcodec.errors import DumpError, SchemaError, SelectorError


# -- create_dump ----------------------------------------------------------------------

def _setup_small(conn):
    conn.execute("""
        CREATE TABLE parent (id serial PRIMARY KEY, name text NOT NULL);
        CREATE TABLE child (id serial PRIMARY KEY, parent_id int REFERENCES parent(id),
                            note text, twice int GENERATED ALWAYS AS (parent_id * 2) STORED);
        CREATE TABLE acl (id int, a aclitem);
        INSERT INTO parent (name) SELECT 'p' || g FROM generate_series(1, 300) g;
        INSERT INTO child (parent_id, note) SELECT g % 300 + 1, 'n' || g
            FROM generate_series(1, 1000) g;
        INSERT INTO acl VALUES (1, 'postgres=r/postgres');
    """)


def test_create_dump_basic(db, conn, tmp_path):
    _setup_small(conn)
    path = tmp_path / "d.dcz"
    summary = create_dump(db.dsn, ["public"], str(path))
    assert path.exists() and summary.archive_bytes == path.stat().st_size
    assert {t.table_id: t.rows for t in summary.tables} == {
        "public.acl": 1, "public.child": 1000, "public.parent": 300}
    assert summary.pump == pump.PUMP
    with open_dump(str(path)) as r:
        tables = {t.table_id: t for t in r.tables()}
        child = tables["public.child"]
        assert child.columns == ["id", "parent_id", "note"]     # generated column left out
        assert child.format == "binary" and child.rows == 1000
        assert tables["public.acl"].format == "text"            # aclitem: no binary I/O
        assert tables["public.parent"].definition["sequences"][0]["last_value"] == 300
        rows = list(r.read_rows("public.child", decode=False))
        assert len(rows) == 1000
    # nothing else left in the directory (no temporary files)
    assert os.listdir(tmp_path) == ["d.dcz"]


def test_names_that_need_quoting(db, conn, tmp_path):
    # the COPY of a plain table is written as text with the names quoted by hand
    conn.execute("""
        CREATE SCHEMA "Sch ""e"" ma";
        CREATE TABLE "Sch ""e"" ma"."T.a ""b"" é" ("i""d" int, "Two Words" text, plain int);
        INSERT INTO "Sch ""e"" ma"."T.a ""b"" é" VALUES (1, 'x', 2), (3, NULL, 4);
    """)
    path = tmp_path / "q.dcz"
    summary = create_dump(db.dsn, ['"Sch ""e"" ma"."T.a ""b"" é"'], str(path))
    assert [t.rows for t in summary.tables] == [2]
    with open_dump(str(path)) as r:
        (table,) = r.tables()
        assert (table.table_id, table.columns) == \
            ('Sch "e" ma.T.a "b" é', ['i"d', "Two Words", "plain"])
        assert sorted(r.read_rows(table.table_id)) == [(1, "x", 2), (3, None, 4)]


def test_early_writeback_keeps_the_file_whole(narrow, db, tmp_path, monkeypatch):
    # the archive file asks for writeback every WRITEBACK_STEP bytes: with a tiny step
    # (hundreds of requests) the archive must come out whole and verify
    import dumpcodec.destination as dump_mod
    import sys
    if sys.platform.startswith("linux"):
        assert dump_mod._sync_file_range is not None
    calls = []
    real = dump_mod._sync_file_range

    def counting(fd, offset, nbytes, flags):
        calls.append((offset, nbytes))
        return real(fd, offset, nbytes, flags) if real else 0
    monkeypatch.setattr(dump_mod, "_sync_file_range", counting)
    monkeypatch.setattr(dump_mod, "WRITEBACK_STEP", 4096)
    path = tmp_path / "n.dcz"
    create_dump(db.dsn, ["public.narrow"], str(path), backend="none", chunk_size=64 << 10)
    # the requested ranges follow each other from 0 without gaps, and cover all but
    # the last write (the file object hands the file 1 MiB at a time)
    assert calls[0][0] == 0 and all(a[0] + a[1] == b[0] for a, b in zip(calls, calls[1:]))
    covered = calls[-1][0] + calls[-1][1]
    assert path.stat().st_size - (1 << 20) <= covered <= path.stat().st_size
    with open_dump(str(path)) as r:
        assert r.verify().ok
        assert sum(1 for _ in r.read_rows("public.narrow", decode=False)) == 50000


def test_binary_capable(conn):
    conn.execute("CREATE DOMAIN d_int AS int; CREATE TYPE comp AS (a int, b aclitem)")
    oid = lambda t: conn.execute("SELECT %s::regtype::oid", (t,)).fetchone()[0]
    assert binary_capable(conn, [oid("int4"), oid("text[]"), oid("d_int"), oid("int4range")])
    assert not binary_capable(conn, [oid("aclitem")])
    assert not binary_capable(conn, [oid("aclitem[]")])
    assert not binary_capable(conn, [oid("comp")])


def test_selector_and_option_errors_write_nothing(db, conn, tmp_path):
    _setup_small(conn)
    path = tmp_path / "x.dcz"
    with pytest.raises(SelectorError):
        create_dump(db.dsn, ["public.parent", "no_such_table"], str(path))
    with pytest.raises(SchemaError, match="nope"):
        create_dump(db.dsn, ["public.parent"], str(path), columns={"public.parent": ["nope"]})
    with pytest.raises(DumpError, match="WHERE"):
        create_dump(db.dsn, ["public.parent"], str(path),
                    where={"public.parent": "no_such_column > 1"})
    with pytest.raises(SelectorError, match="child"):
        create_dump(db.dsn, ["public.parent"], str(path), where={"public.child": "true"})
    assert os.listdir(tmp_path) == []


def test_failure_midway_leaves_no_file(db, conn, tmp_path):
    _setup_small(conn)
    path = tmp_path / "x.dcz"

    class Boom(Exception):
        pass

    class Progress:
        def __getattr__(self, name):
            return lambda *a, **k: None

        def table_done(self, table_id, *a, **k):
            if table_id == "public.child":
                raise Boom()

    with pytest.raises(Boom):
        create_dump(db.dsn, ["public"], str(path), progress=Progress())
    assert os.listdir(tmp_path) == []


def test_where_and_columns(db, conn, tmp_path):
    _setup_small(conn)
    path = tmp_path / "w.dcz"
    s = create_dump(db.dsn, ["public.parent", "public.child"], str(path),
                    where={"public.parent": "id <= 10"},
                    columns={"child": ["note", "id"]})
    assert {t.table_id: t.rows for t in s.tables} == {"public.parent": 10,
                                                      "public.child": 1000}
    with open_dump(str(path)) as r:
        assert r.table("public.child").columns == ["note", "id"]
        rows = list(r.read_rows("public.child"))
        assert rows[0] == ("n1", 1)
        assert r.table("public.parent").extra["where"] == "id <= 10"


def test_snapshot_option(db, conn, tmp_path):
    _setup_small(conn)
    with db.connect(autocommit=False) as holder:
        holder.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        snap = holder.execute("SELECT pg_export_snapshot()").fetchone()[0]
        conn.execute("INSERT INTO parent (name) VALUES ('late')")
        s = create_dump(db.dsn, ["public.parent"], str(tmp_path / "s.dcz"), snapshot=snap)
        assert s.tables[0].rows == 300          # the row inserted later is not seen
    s = create_dump(db.dsn, ["public.parent"], str(tmp_path / "s2.dcz"))
    assert s.tables[0].rows == 301


def test_parallel_dump_is_consistent_under_writes(db, conn, tmp_path):
    conn.execute("""
        CREATE TABLE orders (id bigint PRIMARY KEY, filler text);
        CREATE TABLE lines (id bigserial PRIMARY KEY, order_id bigint NOT NULL
                            REFERENCES orders(id), filler text);
        CREATE TABLE other (id int);
        INSERT INTO orders SELECT g, repeat('x', 200) FROM generate_series(1, 20000) g;
        INSERT INTO lines (order_id, filler) SELECT g, repeat('y', 200)
            FROM generate_series(1, 20000) g;
    """)
    stop = threading.Event()
    inserted = [0]

    def writer():
        with db.connect() as w:
            n = 20000
            while not stop.is_set():
                n += 1
                with w.transaction():
                    w.execute("INSERT INTO orders VALUES (%s, 'o')", (n,))
                    w.execute("INSERT INTO lines (order_id, filler) VALUES (%s, 'l')", (n,))
                inserted[0] += 1

    t = threading.Thread(target=writer)
    t.start()
    try:
        while inserted[0] < 20:
            time.sleep(0.01)
        path = tmp_path / "c.dcz"
        # 'lines' first: it is read while more orders are committed
        s = create_dump(db.dsn, ["public.lines", "public.other", "public.orders"],
                        str(path), jobs=2, chunk_size=1 << 20)
    finally:
        stop.set()
        t.join()
    assert s.snapshot
    with open_dump(str(path)) as r:
        orders = {row[0] for row in r.read_rows("public.orders")}
        line_orders = [row[1] for row in r.read_rows("public.lines")]
    assert len(line_orders) >= 20000
    assert set(line_orders) <= orders          # every child's parent is in the dump
    assert len(orders) == len(line_orders)     # and the writer's pairs are all or none


@pytest.mark.parametrize("jobs", [1, 2])
def test_many_small_tables_readers_stay_bounded(db, conn, tmp_path, monkeypatch, jobs):
    """At -j1 the reader sends a small table's data with its end (one hand-off).  While
    the writer lags, the readers hold at most jobs x QUEUE_BLOCKS MiB ahead of the
    table being written, each queued item counted as at least ITEM_COST: 2 MiB here, so
    at most 4 items a reader (both used to run ahead through every table).  Every
    table's member is byte for byte what COPY gives, one of several blocks too."""
    from dumpcodec import dump as dump_mod
    from dumpcodec.dump_queues import TableQueues
    assert dump_mod.QUEUE_BLOCKS == 8
    monkeypatch.setattr(TableQueues, "ITEM_COST", 2 << 20)
    conn.execute("CREATE TABLE big (id int, t text); INSERT INTO big SELECT g, "
                 "repeat('x', 100) FROM generate_series(1, 30000) g")   # ~3.5 MB: 4 blocks
    conn.execute("; ".join(f"CREATE TABLE s{i:02d} (id int); INSERT INTO s{i:02d} "
                           f"SELECT generate_series(1, {i % 3})" for i in range(30)))
    conn.execute("CREATE TABLE part (id int) PARTITION BY RANGE (id); CREATE TABLE part_1 "
                 "PARTITION OF part FOR VALUES FROM (0) TO (10); INSERT INTO part VALUES (1)")
    copies, ahead = [], []
    real_copy, real_add = pump.copy_out, dump_mod._add_table

    def counting(conn_, query, write, *args, **kw):
        copies.append(query)
        return real_copy(conn_, query, write, *args, **kw)

    def lagging(writer, plan, split=None):
        ahead.append(len(copies) - len(ahead))
        time.sleep(0.01)
        return real_add(writer, plan, split)
    monkeypatch.setattr(pump, "copy_out", counting)
    monkeypatch.setattr(dump_mod, "_add_table", lagging)
    path = tmp_path / "m.dcz"
    summary = create_dump(db.dsn, ["public"], str(path), jobs=jobs,
                          split_larger_than=0)
    assert len(summary.tables) == 33 and len(copies) == 32      # part: no data of its own
    # queued (4 a reader), in each reader's hands, and the table being written
    assert max(ahead) <= 4 * jobs + jobs + 1, ahead
    with open_dump(str(path)) as r:
        for t in r.tables():
            if t.table_id == "public.part":
                continue
            expected = bytearray()
            with conn.cursor().copy(f"COPY {t.table_id} TO STDOUT (FORMAT binary)") as cp:
                for block in cp:
                    expected += block
            assert b"".join(r.read_raw(t.table_id)) == expected, t.table_id
