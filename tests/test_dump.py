"""create_dump and the COPY pump, against real servers."""
from __future__ import annotations

import os
import threading
import time

import psycopg
import pytest
from conftest import copy_via_psycopg, failing_writer

from dumpcodec import pump
from dumpcodec.archive import open_dump
from dumpcodec.dump import binary_capable, create_dump
from dumpcodec.errors import DumpError, SchemaError, SelectorError


# -- the pump -------------------------------------------------------------------------

@pytest.fixture
def narrow(conn):
    conn.execute("CREATE TABLE narrow AS SELECT g::bigint AS a, (g % 1000)::int AS b "
                 "FROM generate_series(1, 50000) g")
    return conn


def test_pump_path_is_libpq_when_built():
    # The extension is built in this checkout: the fast path must be the one in use.
    from dumpcodec import _pgpump  # noqa: F401
    if os.environ.get("DUMPCODEC_PUMP") == "python":
        pytest.skip("python pump forced by DUMPCODEC_PUMP")
    assert pump.PUMP == "libpq", pump.PUMP_DETAIL


def test_copy_out_matches_psycopg_bytes(narrow):
    q = "COPY narrow TO STDOUT (FORMAT binary)"
    blocks = []
    rows, nbytes = pump.copy_out(narrow, q, blocks.append, block_size=4096)
    data = b"".join(blocks)
    assert rows == 50000
    assert nbytes == len(data)
    assert data == copy_via_psycopg(narrow, q)
    # every block but the last reaches the block size; blocks hold whole messages
    assert all(len(b) >= 4096 for b in blocks[:-1])
    assert len(blocks) > 10


@pytest.fixture
def wide_rows(conn):
    # rows of up to 20 kB and one of 3 MB: many are larger than the room left in a
    # 4-32 kB block, and libpq often holds them whole already, so the pump takes them
    # in parts (PQgetlineAsync) or as one oversized row (PQgetCopyData); it must still
    # hand out whole rows, in order
    conn.execute("CREATE TABLE wide (i int, t text)")
    conn.execute("INSERT INTO wide SELECT g, repeat(chr(65 + g % 26), "
                 "CASE WHEN g = 50 THEN 3000000 ELSE (g * 7919) % 20000 END) "
                 "FROM generate_series(1, 300) g")
    return conn


@pytest.mark.parametrize("fmt", ["binary", "text"])
def test_copy_out_rows_larger_than_the_block(wide_rows, fmt):
    q = f"COPY (SELECT * FROM wide ORDER BY i) TO STDOUT (FORMAT {fmt})"
    expected = copy_via_psycopg(wide_rows, q)
    for block_size in (4096, 8192, 16384, 32768):
        blocks = []
        rows, nbytes = pump.copy_out(wide_rows, q, blocks.append, block_size=block_size)
        assert rows == 300
        assert b"".join(blocks) == expected
        assert nbytes == len(expected)
        assert all(len(b) >= block_size for b in blocks[:-1])
        if fmt == "text":                # a text COPY message is one line
            assert all(b.endswith(b"\n") for b in blocks)
            assert sum(b.count(b"\n") for b in blocks) == 300


def test_copy_out_write_error_during_wide_rows_leaves_connection_usable(wide_rows):
    q = "COPY (SELECT * FROM wide ORDER BY i) TO STDOUT (FORMAT text)"
    failing = failing_writer(3)
    with pytest.raises(OSError, match="disk full"):
        pump.copy_out(wide_rows, q, failing, block_size=4096)
    assert all(b.endswith(b"\n") for b in failing.seen)
    blocks = []
    assert pump.copy_out(wide_rows, q, blocks.append)[0] == 300
    assert b"".join(blocks) == copy_via_psycopg(wide_rows, q)


def _wakeups() -> int:
    with open("/proc/thread-self/status") as f:
        return next(int(line.split(":")[1]) for line in f
                    if line.startswith("voluntary_ctxt_switches"))


@pytest.mark.skipif(not os.path.exists("/proc/thread-self/status"),
                    reason="counts wake-ups through Linux's /proc")
def test_copy_out_waits_for_data_in_bulk(conn):
    # The server writes a COPY in pieces of about 8 kB; a reader that woke for each
    # would sleep and wake ~2,000 times for these 17 MB.  The pump naps while the
    # socket is empty so that each wake-up finds far more (about 64 kB at the rate it
    # measures).  Few wake-ups, and every byte still there.
    if pump.PUMP != "libpq":
        pytest.skip(f"python pump: {pump.PUMP_DETAIL}")
    conn.execute("CREATE TABLE bulk AS SELECT g::bigint AS a, md5(g::text) AS b, "
                 "g % 1000 AS c FROM generate_series(1, 300000) g")
    q = "COPY bulk TO STDOUT (FORMAT binary)"
    expected = copy_via_psycopg(conn, q)
    assert len(expected) > 15_000_000
    blocks = []
    before = _wakeups()
    pump.copy_out(conn, q, blocks.append)
    woke = _wakeups() - before
    assert b"".join(blocks) == expected
    assert woke < len(expected) / 24576, woke     # under a third of one per write


def test_copy_out_write_error_leaves_connection_usable(narrow):
    calls = []

    def failing(block):
        calls.append(len(block))
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        pump.copy_out(narrow, "COPY narrow TO STDOUT (FORMAT binary)", failing,
                      block_size=4096)
    assert len(calls) == 1
    assert narrow.execute("SELECT count(*) FROM narrow").fetchone()[0] == 50000
    assert narrow.pgconn.nonblocking == 1     # psycopg's own mode restored


def test_copy_out_server_error_is_psycopg_error(conn):
    with pytest.raises(psycopg.errors.UndefinedTable, match="no_such_table"):
        pump.copy_out(conn, "COPY no_such_table TO STDOUT", lambda b: None)
    assert conn.execute("SELECT 1").fetchone() == (1,)


def test_copy_out_rows_matches_the_server(narrow):
    q = "COPY narrow TO STDOUT (FORMAT binary)"
    batches = list(pump.copy_out_rows(narrow, q, ["int8", "int4"], block_size=4096))
    assert len(batches) > 10
    rows = [r for b in batches for r in b]
    assert rows == narrow.execute("SELECT a, b FROM narrow").fetchall()
    # raw mode: bytes per field, as the codec gives them
    raw = [r for b in pump.copy_out_rows(narrow, q, raw=True) for r in b]
    assert raw[0] == ((1).to_bytes(8, "big"), (1).to_bytes(4, "big"))
    assert not [t for t in threading.enumerate() if t.name == "dumpcodec-copy-out"]


def test_copy_out_rows_stopped_early_or_failing_leaves_connection_usable(narrow):
    q = "COPY narrow TO STDOUT (FORMAT binary)"
    gen = pump.copy_out_rows(narrow, q, ["int8", "int4"], block_size=4096, ahead=2)
    first = next(gen)
    assert first[0] == (1, 1)
    gen.close()                           # the reader cancels its COPY
    assert not [t for t in threading.enumerate() if t.name == "dumpcodec-copy-out"]
    assert narrow.execute("SELECT count(*) FROM narrow").fetchone()[0] == 50000
    # wrong types: the decoder's error, named; the COPY is cancelled behind it
    from dumpcodec.errors import CopyFormatError
    with pytest.raises(CopyFormatError, match="row 1"):
        for _ in pump.copy_out_rows(narrow, q, ["int4", "int4"]):
            pass
    assert narrow.execute("SELECT 1").fetchone() == (1,)
    # a server error is psycopg's class, raised in the caller's thread
    with pytest.raises(psycopg.errors.UndefinedTable):
        for _ in pump.copy_out_rows(narrow, "COPY nothing_here TO STDOUT (FORMAT binary)"):
            pass
    assert narrow.execute("SELECT 1").fetchone() == (1,)


def test_copy_in_round_trip_and_errors(narrow):
    blocks = []
    pump.copy_out(narrow, "COPY narrow TO STDOUT (FORMAT binary)", blocks.append)
    narrow.execute("CREATE TABLE narrow2 (a bigint, b int)")
    with pump.CopyIn(narrow, "COPY narrow2 FROM STDIN (FORMAT binary)") as cp:
        data = b"".join(blocks)
        for i in range(0, len(data), 100_001):     # pieces that split rows anywhere
            cp.write(data[i:i + 100_001])
    assert cp.rows == 50000
    assert narrow.execute("SELECT sum(a), sum(b) FROM narrow2").fetchone() == \
        narrow.execute("SELECT sum(a), sum(b) FROM narrow").fetchone()
    # the server rejects bad data: its error, its class, and the connection is usable
    with pytest.raises(psycopg.errors.BadCopyFileFormat, match="signature"):
        with pump.CopyIn(narrow, "COPY narrow2 FROM STDIN (FORMAT binary)") as cp:
            cp.write(b"not a copy stream")
    # an exception in the caller aborts the COPY: nothing is loaded
    with pytest.raises(KeyError):
        with pump.CopyIn(narrow, "COPY narrow2 FROM STDIN (FORMAT binary)") as cp:
            cp.write(data)
            raise KeyError("stop")
    assert narrow.execute("SELECT count(*) FROM narrow2").fetchone()[0] == 50000


def test_copy_in_rows_round_trip_and_errors(narrow):
    narrow.execute("CREATE TABLE narrow3 (a bigint PRIMARY KEY, b int)")
    q = "COPY narrow3 FROM STDIN (FORMAT binary)"
    rows = narrow.execute("SELECT a, b FROM narrow ORDER BY a").fetchall()
    # a generator, small blocks: many of them go through the sender thread
    n = pump.copy_in_rows(narrow, q, (r for r in rows), ["int8", "int4"], block_size=1024)
    assert n == 50000
    assert narrow.execute("SELECT a, b FROM narrow3 ORDER BY a").fetchall() == rows
    narrow.execute("TRUNCATE narrow3")
    # a value that does not encode, late in the rows: its error, and nothing loaded
    bad = rows[:30000] + [(30001, 2**40)] + rows[30001:]
    with pytest.raises((ValueError, OverflowError), match="row 30001"):
        pump.copy_in_rows(narrow, q, bad, ["int8", "int4"], block_size=4096)
    assert narrow.execute("SELECT count(*) FROM narrow3").fetchone()[0] == 0

    # an exception from the rows themselves: the same
    def failing():
        yield from rows[:20000]
        raise KeyError("source gone")
    with pytest.raises(KeyError, match="source gone"):
        pump.copy_in_rows(narrow, q, failing(), ["int8", "int4"])
    assert narrow.execute("SELECT count(*) FROM narrow3").fetchone()[0] == 0
    # the server's error (a duplicate key), as psycopg's class
    with pytest.raises(psycopg.errors.UniqueViolation):
        pump.copy_in_rows(narrow, q, rows[:10] + rows[:10], ["int8", "int4"])
    assert narrow.execute("SELECT count(*) FROM narrow3").fetchone()[0] == 0
    assert not [t for t in threading.enumerate() if t.name == "dumpcodec-copy-in"]


def test_pump_inside_transaction_rolls_back(db):
    with db.connect(autocommit=False) as c:
        c.execute("CREATE TABLE t (a int)")
        with pytest.raises(psycopg.errors.BadCopyFileFormat):
            with pump.CopyIn(c, "COPY t FROM STDIN (FORMAT binary)") as cp:
                cp.write(b"garbage")
        assert c.info.transaction_status == psycopg.pq.TransactionStatus.INERROR
        c.rollback()
        assert c.execute("SELECT 1").fetchone() == (1,)


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


def test_copy_rows_with_a_codec_of_the_callers_choice(narrow):
    # either implementation's Decoder/Encoder may be handed in, whatever DUMPCODEC_IMPL
    from dumpcodec import _fastcopy
    from dumpcodec.copy import pure
    q = "COPY narrow TO STDOUT (FORMAT binary)"
    want = narrow.execute("SELECT a, b FROM narrow").fetchall()
    narrow.execute("CREATE TABLE narrow4 (a bigint, b int)")
    for mod in (_fastcopy, pure):
        got = [r for b in pump.copy_out_rows(narrow, q, decoder=mod.Decoder(["int8", "int4"]))
               for r in b]
        assert got == want, mod.__name__
        narrow.execute("TRUNCATE narrow4")
        assert pump.copy_in_rows(narrow, "COPY narrow4 FROM STDIN (FORMAT binary)", want[:5000],
                                 encoder=mod.Encoder(["int8", "int4"])) == 5000
        assert narrow.execute("SELECT a, b FROM narrow4 ORDER BY a").fetchall() == want[:5000]
