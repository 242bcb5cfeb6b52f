"""The public reading calls the CLI and verify are built on: ``open_table`` (one
table's info first, then its chunks or rows), ``incomplete_reason``, ``walk``."""
import io

import pytest

from dumpcodec.archive import open_dump
from dumpcodec.codec import Encoder, scan
from dumpcodec.errors import ArchiveError, IncompleteArchiveError

ROWS = [(i, "row %d" % i) for i in range(40)]


def archive(backend="zstd") -> bytes:
    enc = Encoder(["int4", "text"])
    buf = io.BytesIO()
    with open_dump(buf, "w", backend=backend, chunk_size=100) as w:
        w.set_info(client_encoding="UTF8")
        with w.add_table("public.a", None, ["i", "v"], ["int4", "text"]) as tw:
            tw.write(enc.header() + enc.encode(ROWS) + enc.trailer())
        with w.add_table("public.b", None, ["i", "v"], ["int4", "text"],
                         format="text") as tw:
            tw.write(b"".join(b"%d\tt%d\n" % (i, i) for i in range(7)))
    return buf.getvalue()


@pytest.fixture(params=["file", "pipe"])
def reader(request):
    r = open_dump(io.BytesIO(archive()), seekable=request.param == "file")
    yield r
    r.close()


def test_open_table_gives_the_info_before_any_data(reader):
    with reader.open_table("public.a") as t:
        assert t.info.table_id == "public.a" and t.info.columns == ["i", "v"]
        assert list(t.rows()) == ROWS
        assert t.info.rows == 40            # the footer was read once the rows ended
        with pytest.raises(ArchiveError, match="already read"):
            t.chunks()


def test_open_table_chunks_and_text_rows(reader):
    with reader.open_table("public.b") as t:
        assert t.info.format == "text"
        assert list(t.rows()) == [(str(i), "t%d" % i) for i in range(7)]
    if reader.seekable:
        with reader.open_table("public.a") as t:
            chunks = [bytes(c) for c in t.chunks()]
        assert len(chunks) > 3 and sum(scan(c)[0] for c in chunks) == 40


def test_open_table_raw_fields(reader):
    with reader.open_table("public.a") as t:
        first = next(iter(t.rows(decode=False)))
    assert first == ((0).to_bytes(4, "big"), b"row 0")


def test_open_table_unknown(reader):
    with pytest.raises(ArchiveError, match="no table 'public.zz'"):
        reader.open_table("public.zz")


def test_closing_a_table_on_a_pipe_ends_the_pass():
    r = open_dump(io.BytesIO(archive()), seekable=False)
    with r.open_table("public.a") as t:
        next(iter(t.rows()))
    with pytest.raises(ArchiveError, match="already read"):
        r.open_table("public.b")


def test_incomplete_reason():
    data = archive()
    with open_dump(io.BytesIO(data)) as r:
        r.tables()
        assert r.complete is True and r.incomplete_reason is None
    cut = data[:len(data) * 2 // 3]
    with open_dump(io.BytesIO(cut)) as r:
        assert r.incomplete_reason is None                  # not read yet
        tables = r.tables(allow_incomplete=True)
        assert r.complete is False and tables
        assert "archive ends" in r.incomplete_reason or "ends early" in r.incomplete_reason
        with pytest.raises(IncompleteArchiveError) as e:
            r.tables()
        assert str(e.value) == r.incomplete_reason


def test_walk_and_record_walk():
    with open_dump(io.BytesIO(archive())) as r:
        walker = r.walk()
        kinds = [ev[0] for ev in walker.events()]
        r.record_walk(walker)
        assert kinds[0] == "info" and kinds[-1] == "end" and kinds.count("header") == 2
        assert r.layout == "dumpcodec" and r.info["client_encoding"] == "UTF8"
