"""dumpcodec.pump: COPY bytes and rows to and from real servers (libpq and Python paths)."""
from __future__ import annotations

import os
import threading

import psycopg
import pytest
from conftest import copy_via_psycopg, failing_writer

from dumpcodec import pump


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
