"""The archive: round trips for every backend, chunking, pipes, random access, DaCHS.

COPY streams come from the codec's Encoder and, where it matters, from a real server
(``COPY ... TO STDOUT (FORMAT binary)``), and go back into one.
"""
import datetime
import decimal
import io
import os
import random
import subprocess
import tarfile
import threading

import pytest

from archive_helpers import NonSeekable as _NonSeekable
from codec_helpers import encoded_stream
from dumpcodec.archive import (DEFAULT_CHUNK_SIZE, DumpReader, TableInfo, backends,
                               format_index_line, iter_table_infos, open_dump,
                               parse_index_file, register_backend)
from dumpcodec.archive.tarball import ZstdReader, ZstdWriter
from dumpcodec.codec import scan
from dumpcodec.errors import ArchiveError, IncompleteArchiveError

BACKENDS = ["tar", "gzip", "zstd"]
TYPES = ["int4", "text", "numeric", "date", "bytea"]


def typed_rows(n, seed=1):
    rnd = random.Random(seed)
    return [(i, "row %d %s" % (i, "x" * rnd.randrange(40)),
             decimal.Decimal(rnd.randrange(-10**6, 10**6)).scaleb(-2),
             datetime.date(2000, 1, 1) + datetime.timedelta(days=rnd.randrange(9000)),
             None if i % 7 == 0 else bytes(rnd.randrange(256) for _ in range(5)))
            for i in range(n)]


def feed_in_pieces(tw, data, rnd):
    pos = 0
    while pos < len(data):
        n = rnd.choice([1, 2, 3, 19, 100, 777, 5000])
        tw.write(data[pos:pos + n])
        pos += n


def write_sample(dest, backend, chunk_size=300, *, big_tuple=20000, seed=0):
    """Four tables: typed binary (many chunks), a huge single tuple, text, empty."""
    rnd = random.Random(seed)
    rows = typed_rows(300, seed)
    big = [(1, "y" * big_tuple, decimal.Decimal("1.10"), datetime.date(1999, 12, 31), b"")]
    text = b"".join(b"%d\tname %d\t\\N\n" % (i, i) for i in range(200))
    with open_dump(dest, "w", backend=backend, chunk_size=chunk_size) as w:
        w.set_info(server_version="16.2", client_encoding="UTF8", note="test")
        with w.add_table("public.typed", {"version": 1, "name": "typed"},
                         ["i", "t", "n", "d", "b"], TYPES) as tw:
            feed_in_pieces(tw, encoded_stream(rows, TYPES), rnd)
        with w.add_table("public.big", None, ["i", "t", "n", "d", "b"], TYPES,
                         extra={"why": "huge tuple"}) as tw:
            feed_in_pieces(tw, encoded_stream(big + rows[:5], TYPES), rnd)
        with w.add_table("s p a c e.t\u00e9xt", None, ["a", "b", "c"],
                         ["int4", "text", "text"], format="text") as tw:
            feed_in_pieces(tw, text, rnd)
        with w.add_table("public.empty", {"version": 1}, ["i"], ["int4"]) as tw:
            tw.write(encoded_stream([], ["int4"]))
    return {"public.typed": rows, "public.big": big + rows[:5],
            "s p a c e.t\u00e9xt": [(str(i), "name %d" % i, None) for i in range(200)],
            "public.empty": []}


@pytest.mark.parametrize("backend", BACKENDS)
def test_round_trip_many_chunks(tmp_path, backend):
    path = tmp_path / f"a.{backend}"
    expected = write_sample(str(path), backend)
    with open_dump(str(path)) as r:
        assert r.backend_name == backend
        assert r.layout == "dumpcodec" or r.layout is None
        tables = r.tables()
        assert [t.table_id for t in tables] == list(expected)
        assert r.info["server_version"] == "16.2"
        assert r.info["client_encoding"] == "UTF8"
        assert r.info["info"] == {"note": "test"}
        by_id = {t.table_id: t for t in tables}
        typed = by_id["public.typed"]
        assert typed.rows == 300 and len(typed.members) > 10
        assert typed.definition == {"version": 1, "name": "typed"}
        assert typed.columns == ["i", "t", "n", "d", "b"] and typed.types == TYPES
        assert typed.raw_size == sum(m.size for m in typed.members)
        assert all(m.size <= 300 for m in typed.members)
        assert by_id["public.big"].extra == {"why": "huge tuple"}
        assert by_id["public.empty"].rows == 0
        for tid, rows in expected.items():
            info = by_id[tid]
            chunks = list(r.read_raw(tid))
            assert len(chunks) == len(info.members)
            if info.format == "binary":
                counts = [scan(bytes(c))[0] for c in chunks]   # each a complete stream
                assert counts == [m.rows for m in info.members]
            assert list(r.read_rows(tid)) == rows
        # the huge tuple is alone in a member larger than chunk_size
        big = by_id["public.big"].members
        assert big[0].rows == 1 and big[0].size > 20000
        report = r.verify()
        assert report.ok, report.problems
        assert report.rows == 300 + 6 + 200 + 0


@pytest.mark.parametrize("backend", BACKENDS)
def test_standard_tools_read_it(tmp_path, backend):
    path = tmp_path / "a"
    write_sample(str(path), backend, chunk_size=4096)
    flag = {"tar": [], "gzip": ["-z"], "zstd": ["--zstd"]}[backend]
    out = subprocess.run(["tar", "-t", *flag, "-f", str(path)], capture_output=True,
                         check=True, text=True)
    names = out.stdout.split()
    assert names[0] == "dumpcodec.json" and names[1] == "table_000.header.json"
    assert names[-3:] == ["manifest.json", "index.txt", "dumpcodec.end"]
    assert out.stderr == ""
    extract = subprocess.run(["tar", "-xO", *flag, "-f", str(path), "index.txt"],
                             capture_output=True, check=True)
    entries = parse_index_file(extract.stdout)
    assert entries[0] == ("table_000.00000.dump", "public.typed")
    assert ("table_002.00000.textdump", "s p a c e.t\u00e9xt") in entries


def test_default_backend_is_zstd_and_magic_detection(tmp_path):
    p = tmp_path / "d"
    with open_dump(str(p), "w") as w:
        with w.add_table("t", None, ["i"], ["int4"]) as tw:
            tw.write(encoded_stream([(1,)], ["int4"]))
    assert p.read_bytes()[:4] == b"\x28\xb5\x2f\xfd"
    for name in BACKENDS:
        q = tmp_path / name
        with open_dump(str(q), "w", backend=name) as w:
            w.add_table("t", None, ["i"], ["int4"]).write(encoded_stream([(1,)], ["int4"]))
        with open(q, "rb") as f:
            with open_dump(f) as r:
                assert r.backend_name == name
                assert [t.rows for t in r.tables()] == [1]
            assert not f.closed           # a caller's file object is not closed by us


def test_reader_does_not_close_callers_file(tmp_path):
    p = tmp_path / "a"
    write_sample(str(p), "zstd")
    with open(p, "rb") as f:
        with open_dump(f) as r:
            r.tables()
        assert not f.closed
    buf = io.BytesIO()
    with open_dump(buf, "w", backend="gzip") as w:
        w.add_table("t", None, None, None).write(encoded_stream([(b"x",)]))
    assert not buf.closed and buf.getvalue()[:2] == b"\x1f\x8b"


def test_empty_archive_and_table_without_data(tmp_path):
    p = tmp_path / "e"
    with open_dump(str(p), "w", backend="gzip"):
        pass
    with open_dump(str(p)) as r:
        assert r.tables() == [] and r.verify().ok
    q = tmp_path / "f"
    with open_dump(str(q), "w", backend="zstd") as w:
        w.add_table("nodata", None, ["i"], ["int4"]).close()
    with open_dump(str(q)) as r:
        (t,) = r.tables()
        assert t.rows == 0 and t.members == [] and list(r.read_rows("nodata")) == []


class CountingFile(io.RawIOBase):
    """A seekable file that counts the bytes read through it."""

    def __init__(self, data):
        self._f = io.BytesIO(data)
        self.read_bytes = 0

    def readable(self):
        return True

    def seekable(self):
        return True

    def seek(self, pos, whence=0):
        return self._f.seek(pos, whence)

    def tell(self):
        return self._f.tell()

    def readinto(self, b):
        n = self._f.readinto(b)
        self.read_bytes += n
        return n


@pytest.mark.parametrize("backend", BACKENDS)
def test_random_access_reads_only_that_table(backend):
    buf = io.BytesIO()
    size = 2_000_000
    noise = random.Random(5).randbytes(size)   # incompressible: sizes stay honest
    rows = [(noise[i:i + 10_000],) for i in range(0, size, 10_000)]
    with open_dump(buf, "w", backend=backend, chunk_size=500_000) as w:
        for name in ("a", "b", "c"):
            with w.add_table(name, None, None, None) as tw:
                tw.write(encoded_stream(rows))
    data = buf.getvalue()
    f = CountingFile(data)
    with open_dump(f) as r:
        tables = r.tables()
        # listing reads headers and the manifest, not the data (read-ahead aside)
        assert f.read_bytes < 1_100_000 if backend == "zstd" else f.read_bytes < 300_000
        f.read_bytes = 0
        got = list(r.read_rows("b", decode=False))
        assert got == rows
        read = f.read_bytes
        # one table's data (a third of the file) plus read-ahead, never the whole file
        assert tables[1].raw_size <= read < len(data) * 0.55, (read, len(data))


@pytest.mark.parametrize("backend", BACKENDS)
def test_pipe_out_and_in(tmp_path, backend):
    """Write into a pipe to a subprocess, read from a subprocess's stdout, one pass."""
    path = tmp_path / "piped"
    with open(path, "wb") as sink:
        proc = subprocess.Popen(["cat"], stdin=subprocess.PIPE, stdout=sink)
        expected = write_sample(proc.stdin, backend)
        proc.stdin.close()
        assert proc.wait() == 0
    proc = subprocess.Popen(["cat", str(path)], stdout=subprocess.PIPE)
    try:
        with open_dump(proc.stdout) as r:
            assert not r.seekable
            seen = []
            for info, chunks in r.iter_tables():
                assert r.info["client_encoding"] == "UTF8"   # known before the data
                assert not info.complete
                data = [bytes(c) for c in chunks]
                assert info.complete and info.verified
                assert info.rows == len(expected[info.table_id])
                assert len(data) == len(info.members)
                seen.append(info.table_id)
            assert seen == list(expected)
            assert r.complete
            with pytest.raises(ArchiveError, match="not seekable"):
                r._open()
    finally:
        proc.stdout.close()
        proc.wait()


def test_pipe_with_os_pipe_and_thread():
    rfd, wfd = os.pipe()
    rows = typed_rows(500)
    errors = []

    def produce():
        try:
            with os.fdopen(wfd, "wb") as out:
                with open_dump(out, "w", backend="zstd", chunk_size=1000) as w:
                    with w.add_table("t", None, ["i", "t", "n", "d", "b"], TYPES) as tw:
                        tw.write(encoded_stream(rows, TYPES))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    t = threading.Thread(target=produce)
    t.start()
    with os.fdopen(rfd, "rb") as inp, open_dump(inp) as r:
        got = list(r.read_rows("t"))
    t.join()
    assert not errors
    assert got == rows


def test_iter_tables_skip_and_partial_consumption(tmp_path):
    p = tmp_path / "a"
    expected = write_sample(str(p), "gzip")
    with open(p, "rb") as f:
        r = open_dump(io.BufferedReader(_NonSeekable(f)))
        out = {}
        for info, chunks in r.iter_tables():
            if info.table_id == "public.typed":
                next(iter(chunks))      # one chunk, then abandon the rest
            elif info.table_id == "public.big":
                out[info.table_id] = [bytes(c) for c in chunks]
        assert r.complete
    assert scan(out["public.big"][0])[0] == 1
    assert len(expected) == 4


def test_writer_exception_leaves_incomplete_archive(tmp_path):
    p = tmp_path / "died"
    with pytest.raises(RuntimeError):
        with open_dump(str(p), "w", backend="zstd", chunk_size=500) as w:
            with w.add_table("t", None, ["i"], ["int4"]) as tw:
                tw.write(encoded_stream([(i,) for i in range(1000)], ["int4"])[:3000])
                raise RuntimeError("connection lost")
    assert p.stat().st_size > 0
    with open_dump(str(p)) as r:
        with pytest.raises(IncompleteArchiveError, match="did not finish|truncated"):
            r.tables()
        partial = r.tables(allow_incomplete=True)
        assert [t.table_id for t in partial] == ["t"] and not partial[0].complete
        assert r.complete is False
    with open_dump(str(p)) as r:
        report = r.verify()
    assert not report.ok and not report.complete


def test_writer_abort_and_usage_errors():
    buf = io.BytesIO()
    w = open_dump(buf, "w", backend="tar")
    tw = w.add_table("t", None, ["i"], ["int4"])
    with pytest.raises(ArchiveError, match="still open"):
        w.add_table("u", None, None, None)
    tw.close()
    with pytest.raises(ArchiveError, match="already in the archive"):
        w.add_table("t", None, None, None)
    with pytest.raises(ValueError, match="2 types for 1 columns"):
        w.add_table("v", None, ["i"], ["int4", "int4"])
    with pytest.raises(ValueError, match="format"):
        w.add_table("v", None, None, None, format="csv")
    w.abort()
    with pytest.raises(ArchiveError, match="aborted"):
        w.add_table("w", None, None, None)
    with pytest.raises(IncompleteArchiveError):
        open_dump(io.BytesIO(buf.getvalue())).tables()
    with pytest.raises(ArchiveError, match="unknown archive backend 'rar'"):
        open_dump(io.BytesIO(), "w", backend="rar")


def test_text_table_chunks_cut_at_lines():
    buf = io.BytesIO()
    lines = [b"%d\t%s\n" % (i, b"v" * (i % 90)) for i in range(400)]
    with open_dump(buf, "w", backend="tar", chunk_size=256) as w:
        tw = w.add_table("t", None, ["a", "b"], ["int4", "text"], format="text")
        data = b"".join(lines)
        for i in range(0, len(data), 33):
            tw.write(data[i:i + 33])
        tw.close()
    buf.seek(0)
    with open_dump(buf) as r:
        chunks = [bytes(c) for c in r.read_raw("t")]
        assert all(c.endswith(b"\n") for c in chunks) and len(chunks) > 10
        assert b"".join(chunks) == data
        assert r.tables()[0].rows == 400
        assert list(r.read_rows("t", decode=False))[5] == (b"5", b"v" * 5)


def _latin2_archive(encoding="LATIN2"):
    """A text-format table whose archive says its text is in ``encoding``: 0xb1 is
    'ą' in LATIN2 (and '±' in LATIN1)."""
    buf = io.BytesIO()
    with open_dump(buf, "w", backend="tar") as w:
        w.set_info(server_version="16.2", client_encoding=encoding)
        with w.add_table("public.words", None, ["id", "w"], ["int4", "text"],
                         format="text") as tw:
            tw.write(b"1\tz\xb1b\n2\t\\N\n3\tb\\t\xb1\n")
    return buf.getvalue()


def test_text_table_decodes_in_the_archives_client_encoding():
    data = _latin2_archive()
    expected = [("1", "z\u0105b"), ("2", None), ("3", "b\t\u0105")]
    with open_dump(io.BytesIO(data)) as r:                       # seekable
        assert list(r.read_rows("public.words")) == expected
        assert list(r.read_rows("public.words", decode=False))[0] == (b"1", b"z\xb1b")
    with open_dump(io.BufferedReader(_NonSeekable(io.BytesIO(data)))) as r:   # a pipe
        assert list(r.read_rows("public.words")) == expected


def test_text_table_in_an_unknown_encoding_is_refused_not_guessed():
    data = _latin2_archive("KLINGON")
    with open_dump(io.BytesIO(data)) as r:
        with pytest.raises(ArchiveError, match="no Python codec for the client encoding "
                                               "'KLINGON'"):
            list(r.read_rows("public.words"))
        # undecoded bytes need no codec
        assert list(r.read_rows("public.words", decode=False))[0] == (b"1", b"z\xb1b")


def test_index_escaping_round_trip():
    odd = ["plain", "with space", "new\nline", "per%cent", "tab\there",
           "caf\u00e9", "bad\udcffbyte", "rd/id#table"]
    data = b"".join(format_index_line(f"m{i}", t) for i, t in enumerate(odd))
    assert data.count(b"\n") == len(odd)
    assert all(32 <= b < 127 or b == 10 for b in data)
    assert all(line.count(b" ") == 1 for line in data.splitlines())
    assert parse_index_file(data) == [(f"m{i}", t) for i, t in enumerate(odd)]
    # DaCHS's plain form reads as is
    assert parse_index_file(io.BytesIO(b"table_000.dump data/q#main\r\n\n")) == \
        [("table_000.dump", "data/q#main")]
    with pytest.raises(ArchiveError, match="index.txt line 2"):
        parse_index_file(b"a b\nnospace\n")


# ----------------------------------------------------------------------- DaCHS

def dachs_dump(path, tables, *, text=()):
    """Write a dump exactly as DaCHS's createDump: tarfile w:gz, table_NNN.dump
    members in order, index.txt added last."""
    index = []
    with tarfile.open(path, "w:gz") as tf:
        for n, (table_id, data) in enumerate(tables):
            name = "table_%03d.%s" % (n, "textdump" if table_id in text else "dump")
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mtime = 1_700_000_000 + n
            tf.addfile(info, io.BytesIO(data))
            index.append("%s %s\n" % (name, table_id))
        idx = "".join(index).encode("utf-8")
        info = tarfile.TarInfo("index.txt")
        info.size = len(idx)
        tf.addfile(info, io.BytesIO(idx))


def test_dachs_dump_lists_verifies_reads(tmp_path):
    p = tmp_path / "dachs.tar.gz"
    rows = [(b"%d" % i, b"v" * (i % 30)) for i in range(2000)]
    dachs_dump(str(p), [("data/q#main", encoded_stream(rows)),
                        ("data/q#aux", encoded_stream([])),
                        ("data/q#txt", b"1\ta\n2\t\\N\n")], text={"data/q#txt"})
    with open_dump(str(p), chunk_size=4096) as r:     # gzip by magic, DaCHS layout
        tables = r.tables()
        assert r.layout == "dachs"
        assert [(t.table_id, t.format, t.has_definition, t.rows) for t in tables] == \
            [("data/q#main", "binary", False, None), ("data/q#aux", "binary", False, None),
             ("data/q#txt", "text", False, None)]
        assert tables[0].dump_time == 1_700_000_000
        infos = list(iter_table_infos(r))
        assert infos[0] == ("table_000.dump", "data/q#main", False, 1_700_000_000,
                            len(encoded_stream(rows)))
        chunks = list(r.read_raw("data/q#main"))
        assert len(chunks) > 3                  # a whole-table member re-cut into chunks
        assert sum(scan(bytes(c))[0] for c in chunks) == 2000
        assert list(r.read_rows("data/q#main", decode=False)) == rows
        assert list(r.read_rows("data/q#txt")) == [("1", "a"), ("2", None)]
        report = r.verify()
        assert report.ok, report.problems
        assert [t.rows for t in report.tables] == [2000, 0, 2]
    with open_dump(str(p), backend="dachs") as r:
        assert [t.table_id for t in r.tables()][0] == "data/q#main"
        # a seekable DaCHS dump also streams table by table
        got = [(i.table_id, sum(scan(bytes(c))[0] for c in ch))
               for i, ch in r.iter_tables() if i.format == "binary"]
        assert got == [("data/q#main", 2000), ("data/q#aux", 0)]


def test_dachs_dump_from_a_pipe(tmp_path):
    p = tmp_path / "dachs.tgz"
    dachs_dump(str(p), [("x#t", encoded_stream([(b"1",)]))])
    for action in ("tables", "verify"):
        with open(p, "rb") as f, open_dump(io.BufferedReader(_NonSeekable(f))) as r:
            if action == "tables":
                assert [t.table_id for t in r.tables()] == ["x#t"]
            else:
                assert r.verify().ok
    with open(p, "rb") as f, open_dump(io.BufferedReader(_NonSeekable(f))) as r:
        with pytest.raises(ArchiveError, match="seekable"):
            list(r.iter_tables())


def test_dachs_dump_missing_index_is_incomplete(tmp_path):
    p = tmp_path / "noindex.tgz"
    with tarfile.open(p, "w:gz") as tf:
        data = encoded_stream([(b"1",)])
        info = tarfile.TarInfo("table_000.dump")
        info.size = len(data)
        tf.addfile(info, io.BytesIO(data))
    with open_dump(str(p)) as r:
        with pytest.raises(IncompleteArchiveError, match="without index.txt"):
            r.tables()


# ----------------------------------------------------------------------- registry

def test_register_backend_and_magic():
    class LoudZstdReader(ZstdReader):
        backend_name = "loud"
    register_backend("loud", LoudZstdReader, ZstdWriter)
    try:
        buf = io.BytesIO()
        with open_dump(buf, "w", backend="loud") as w:
            w.add_table("t", None, None, None).write(encoded_stream([(b"1",)]))
        assert open_dump(io.BytesIO(buf.getvalue()), backend="loud").backend_name == "loud"
        # detection still finds zstd first (registered earlier, same magic)
        assert open_dump(io.BytesIO(buf.getvalue())).backend_name == "zstd"
    finally:
        del backends["loud"]
    with pytest.raises(ArchiveError, match="not a recognised archive"):
        open_dump(io.BytesIO(b"PK\x03\x04" + bytes(600)))
    with pytest.raises(ArchiveError, match="empty input"):
        open_dump(io.BytesIO(b""))
    assert issubclass(backends["dachs"].reader, DumpReader)
    assert DEFAULT_CHUNK_SIZE == 8 << 20
    assert TableInfo("x", 0).has_definition is False


# ----------------------------------------------------------------------- real server

def test_real_server_copy_round_trip(db, tmp_path):
    """COPY TO STDOUT (binary and text) into the archive, chunked; back with COPY FROM."""
    with db.connect() as conn:
        conn.execute("CREATE TABLE src (id int8 PRIMARY KEY, t text, n numeric(12,3), "
                     "ts timestamptz, a int4[], j jsonb)")
        conn.execute("INSERT INTO src SELECT g, 'row ' || g || repeat('z', g % 50), "
                     "g / 7.0, '2020-01-01'::timestamptz + g * interval '1 hour', "
                     "ARRAY[g, NULL, -g], jsonb_build_object('g', g) "
                     "FROM generate_series(1, 3000) g")
        conn.execute("INSERT INTO src VALUES (0, repeat('B', 100000), NULL, 'infinity', "
                     "'{}', 'null')")
        p = tmp_path / "server.dump"
        with open_dump(str(p), "w", chunk_size=16 * 1024) as w:
            w.set_info(server_version=conn.info.parameter_status("server_version"),
                       client_encoding="UTF8")
            for fmt in ("binary", "text"):
                with w.add_table(f"public.src.{fmt}", None, ["id", "t", "n", "ts", "a", "j"],
                                 ["int8", "text", "numeric(12,3)", "timestamptz", "int4[]",
                                  "jsonb"], format=fmt) as tw:
                    with conn.cursor().copy(
                            f"COPY src TO STDOUT (FORMAT {fmt})") as copy:
                        for block in copy:
                            tw.write(block)
        conn.execute("CREATE TABLE dst_binary (LIKE src)")
        conn.execute("CREATE TABLE dst_text (LIKE src)")
        with open_dump(str(p)) as r:
            for info in r.tables():
                assert info.rows == 3001 and len(info.members) > 10
                fmt = info.format
                # each chunk is a complete COPY stream: one COPY per chunk
                for chunk in r.read_raw(info.table_id):
                    with conn.cursor().copy(
                            f"COPY dst_{fmt} FROM STDIN (FORMAT {fmt})") as copy:
                        copy.write(chunk)
            assert r.verify().ok
            decoded = {row[0]: row for row in r.read_rows("public.src.binary")}
        assert decoded[0][3] is not None and decoded[5][4] == [5, None, -5]
        for fmt in ("binary", "text"):
            diff = conn.execute(f"SELECT count(*) FROM (SELECT * FROM src EXCEPT ALL "
                                f"SELECT * FROM dst_{fmt}) d").fetchone()[0]
            assert diff == 0
            assert conn.execute(f"SELECT count(*) FROM dst_{fmt}").fetchone()[0] == 3001


@pytest.mark.parametrize("backend", BACKENDS)
def test_interleaved_reads_on_one_reader(tmp_path, backend):
    p = tmp_path / "a"
    expected = write_sample(str(p), backend, chunk_size=200)
    with open_dump(str(p)) as r:
        a = r.read_rows("public.typed")
        b = r.read_rows("s p a c e.t\u00e9xt")
        got_a, got_b = [], []
        for _ in range(400):
            for it, out in ((a, got_a), (b, got_b)):
                row = next(it, None)
                if row is not None:
                    out.append(row)
            if len(got_a) == 50:
                assert r.verify().ok        # a whole pass in between, too
        assert got_a == expected["public.typed"]
        assert got_b == expected["s p a c e.t\u00e9xt"]


def test_interleaved_reads_of_dachs_members_are_refused(tmp_path):
    p = tmp_path / "d.tgz"
    dachs_dump(str(p), [("x#a", encoded_stream([(b"%d" % i,) for i in range(150_000)])),
                        ("x#b", encoded_stream([(b"1",)]))])
    with open_dump(str(p), chunk_size=1000) as r:
        a = r.read_raw("x#a")
        next(a)
        assert len(list(r.read_raw("x#b"))) == 1
        with pytest.raises(ArchiveError, match="member 'table_000.dump': another read "
                           "used this reader"):
            list(a)
    with open_dump(str(p)) as r:
        tables = r.iter_tables()
        next(tables)
        list(r.read_raw("x#b"))
        with pytest.raises(ArchiveError, match=r"iter_tables\(\): another read"):
            next(tables)


def test_malformed_copy_data_aborts_the_archive_naming_the_table():
    from dumpcodec.errors import CopyFormatError
    buf = io.BytesIO()
    w = open_dump(buf, "w", backend="tar", chunk_size=100)
    tw = w.add_table("public.bad", None, ["i"], ["int4"])
    good = encoded_stream([(1,), (2,)], ["int4"])
    with pytest.raises(CopyFormatError, match="table 'public.bad': .*byte"):
        tw.write(good[:19] + b"\x00\x05" + good[21:])     # 5 fields declared, 1 column
    with pytest.raises(ArchiveError, match="aborted"):
        tw.write(b"more")
    w.close()
    with pytest.raises(IncompleteArchiveError):
        open_dump(io.BytesIO(buf.getvalue())).tables()
    # text data must end with a newline
    w = open_dump(io.BytesIO(), "w", backend="tar")
    tw = w.add_table("t", None, None, None, format="text")
    tw.write(b"a\nb")
    with pytest.raises(ArchiveError, match="table 't': text COPY data does not end"):
        tw.close()


# ----------------------------------------------------------------------- property

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_field = st.one_of(st.none(), st.binary(max_size=300))


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(tables=st.lists(st.lists(st.tuples(_field, _field), max_size=40), min_size=0,
                       max_size=4),
       chunk_size=st.integers(min_value=64, max_value=3000),
       backend=st.sampled_from(BACKENDS), seed=st.integers(0, 1000),
       pipe=st.booleans())
def test_property_round_trip(tables, chunk_size, backend, seed, pipe):
    rnd = random.Random(seed)
    buf = io.BytesIO()
    with open_dump(buf, "w", backend=backend, chunk_size=chunk_size) as w:
        for n, rows in enumerate(tables):
            with w.add_table(f"t{n}", None, ["a", "b"], ["bytea", "bytea"]) as tw:
                feed_in_pieces(tw, encoded_stream(rows), rnd)
    data = buf.getvalue()
    if pipe:
        with open_dump(io.BufferedReader(_NonSeekable(io.BytesIO(data)))) as r:
            got = []
            for info, chunks in r.iter_tables():
                got.append([row for c in chunks for row in _raw_rows(c)])
                assert info.verified and info.rows == len(got[-1])
        assert got == [list(t) for t in tables]
        return
    with open_dump(io.BytesIO(data)) as r:
        infos = r.tables()
        assert [i.rows for i in infos] == [len(t) for t in tables]
        for n, rows in enumerate(tables):
            assert list(r.read_rows(f"t{n}", decode=False)) == rows
            for m in infos[n].members:
                assert m.size <= chunk_size or m.rows == 1
        assert r.verify().ok


def _raw_rows(chunk):
    from dumpcodec.codec import Decoder
    dec = Decoder(None, raw=True)
    rows = dec.feed(chunk)
    dec.close()
    return rows


def test_dachs_layout_in_a_plain_tar_seeks_to_the_member():
    buf = io.BytesIO()
    big = encoded_stream([(random.Random(1).randbytes(1000),) for _ in range(500)])
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for name, data in (("table_000.dump", big), ("table_001.dump", encoded_stream([(b"z",)])),
                           ("index.txt", b"table_000.dump a#big\ntable_001.dump a#small\n")):
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            tf.addfile(ti, io.BytesIO(data))
    f = CountingFile(buf.getvalue())
    with open_dump(f) as r:
        assert r.backend_name == "tar"
        assert [t.table_id for t in r.tables()] == ["a#big", "a#small"]
        assert f.read_bytes < 20_000          # headers and index only: data was skipped
        f.read_bytes = 0
        assert list(r.read_rows("a#small", decode=False)) == [(b"z",)]
        assert f.read_bytes < 5_000


def test_named_pipe_path_is_read_once_and_closed(tmp_path):
    src = tmp_path / "a"
    expected = write_sample(str(src), "zstd")
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    feeder = threading.Thread(target=lambda: fifo.write_bytes(src.read_bytes()))
    feeder.start()
    r = open_dump(str(fifo))
    assert not r.seekable
    assert [t.table_id for t in r.tables()] == list(expected)
    raw = r._raw
    r.close()
    feeder.join()
    assert raw.closed and raw._raw.closed


class _FailingFile(io.RawIOBase):
    """A sink whose write fails once ``limit`` bytes went through."""

    def __init__(self, limit):
        self.limit = limit
        self.n = 0

    def writable(self):
        return True

    def write(self, b):
        if self.n + len(b) > self.limit:
            raise OSError(28, "No space left on device")
        self.n += len(b)
        return len(b)


@pytest.mark.parametrize("backend", BACKENDS)
def test_write_error_in_the_chunk_thread_reaches_the_caller(backend):
    # chunks are written by the archive's helper thread: its OSError must come out of
    # a write() or close() of the table, abort the archive, and leave no thread
    rows = typed_rows(2000)
    data = encoded_stream(rows, TYPES)
    sink = _FailingFile(4000)
    w = open_dump(sink, "w", backend=backend, chunk_size=1000)
    with pytest.raises(OSError, match="No space left"):
        with w.add_table("public.t", None, ["i", "t", "n", "d", "b"], TYPES) as tw:
            for i in range(0, len(data), 500):
                tw.write(data[i:i + 500])
    assert w._failed
    written = sink.n
    with pytest.raises(ArchiveError):
        w.add_table("public.u", None, ["i"], ["int4"])
    w.close()
    assert sink.n == written          # nothing after the failure, no manifest
    assert not [t for t in threading.enumerate() if t.name == "dumpcodec-archive-writer"
                and t.is_alive()]


def test_chunk_thread_of_a_writer_never_closed_ends(monkeypatch):
    # a writer dropped without close(): its helper thread ends once idle and does not
    # keep the writer (and its file) alive
    import gc
    import time
    import weakref

    from dumpcodec.archive import writer as base
    monkeypatch.setattr(base._ChunkThread, "IDLE", 0.05)
    sink = io.BytesIO()
    w = open_dump(sink, "w", backend="zstd", chunk_size=1000)
    tw = w.add_table("public.t", None, ["i", "t", "n", "d", "b"], TYPES)
    tw.write(encoded_stream(typed_rows(500), TYPES))       # several chunks written
    assert len(tw.members) > 2
    ref = weakref.ref(w)
    del w, tw
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and [
            t for t in threading.enumerate() if t.name == "dumpcodec-archive-writer"]:
        time.sleep(0.02)
    gc.collect()
    assert ref() is None
    assert not [t for t in threading.enumerate() if t.name == "dumpcodec-archive-writer"]


def test_zstd_members_are_single_frames_small_and_large(tmp_path):
    # Members up to a chunk's size are compressed in one call (the frame records its
    # content size); a member larger than chunk_size + 1 MiB (one 3 MB tuple here)
    # streams in pieces.  Either way each member is exactly one frame holding its
    # tar header, data and padding, starting at the offset the manifest records.
    import hashlib
    import zstandard
    path = tmp_path / "a.zst"
    expected = write_sample(str(path), "zstd", chunk_size=4096, big_tuple=3_000_000)
    data = path.read_bytes()
    with open_dump(str(path)) as r:
        tables = {t.table_id: t for t in r.tables()}
        for tid, rows in expected.items():
            assert list(r.read_rows(tid)) == rows
        assert r.verify().ok
    sizes = {}
    for t in tables.values():
        for m in t.members:
            frame = data[m.offset:m.offset + m.compressed_size]
            params = zstandard.get_frame_parameters(frame)
            d = zstandard.ZstdDecompressor().decompressobj()
            tar_member = d.decompress(frame)
            assert d.eof and d.unused_data == b""          # exactly one frame
            assert tar_member[:len(m.name)] == m.name.encode()
            assert hashlib.sha256(tar_member[512:512 + m.size]).hexdigest() == m.sha256
            sizes[m.name] = (m.size, params.content_size)
    big = tables["public.big"].members[0]
    assert big.size > 3_000_000
    assert sizes[big.name][1] == zstandard.CONTENTSIZE_UNKNOWN      # streamed
    small = [s for name, s in sizes.items() if name != big.name]
    assert len(small) >= 5
    assert all(cs != zstandard.CONTENTSIZE_UNKNOWN for _, cs in small)   # one call
