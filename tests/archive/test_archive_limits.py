"""Resource limits on untrusted archives, and a writer that stays within them.

JSON members nested too deeply are an ArchiveError (not a RecursionError); the
limits on footers, the manifest and the index grow with what the reader has seen, so
that 100,000 chunks (or tables) read while a bloated member is still refused before
it is read; a writer never writes what its reader would refuse.
"""
import io
import json
import tarfile

import pytest

from dumpcodec.archive import open_dump
from dumpcodec.archive._tar import END_OF_ARCHIVE, member_header, pad
from dumpcodec.archive.limits import MAX_JSON_DEPTH, MAX_SMALL_META_SIZE
from dumpcodec.codec import Encoder
from dumpcodec.errors import ArchiveError, DumpcodecError


def stream(rows):
    enc = Encoder(["int4"])
    return enc.header() + enc.encode([(i,) for i in range(rows)]) + enc.trailer()


def plain_archive(tables=2, rows=30, chunk_size=100) -> bytes:
    buf = io.BytesIO()
    with open_dump(buf, "w", backend="tar", chunk_size=chunk_size) as w:
        w.set_info(server_version="16", client_encoding="UTF8")
        for t in range(tables):
            with w.add_table(f"public.t{t}", {"v": 1}, ["i"], ["int4"]) as tw:
                tw.write(stream(rows))
    return buf.getvalue()


def members_of(data: bytes):
    with tarfile.open(fileobj=io.BytesIO(data)) as tf:
        return [(m.name, tf.extractfile(m).read()) for m in tf.getmembers()]


def build(members) -> bytes:
    return b"".join(member_header(n, len(d), 0) + d + bytes(pad(len(d)))
                    for n, d in members) + END_OF_ARCHIVE


def with_field(data: bytes, member: str, field: bytes) -> bytes:
    """The archive with ``"field"`` text added to the JSON object of ``member``."""
    out = []
    for name, body in members_of(data):
        if name == member:
            assert body.endswith(b"}\n")
            body = body[:-2] + b', ' + field + b'}\n'
        out.append((name, body))
    return build(out)


def every_read_path(data: bytes):
    """The errors of tables(), a one-pass iteration and verify() (never raises)."""
    errors = []
    for pipe in (False, True):
        with open_dump(io.BytesIO(data), seekable=not pipe) as r:
            try:
                if pipe:
                    for _info, chunks in r.iter_tables():
                        for _ in chunks:
                            pass
                else:
                    r.tables()
            except DumpcodecError as exc:
                errors.append(str(exc))
    with open_dump(io.BytesIO(data)) as r:
        report = r.verify()
    assert not report.ok
    errors.append("; ".join(report.problems))
    return errors


DEEP = b'"deep": ' + b"[" * 1100 + b"]" * 1100


@pytest.mark.parametrize("member", ["dumpcodec.json", "table_000.header.json",
                                    "table_001.footer.json", "manifest.json",
                                    "dumpcodec.end"])
def test_json_nested_1100_deep_is_an_archive_error(member):
    data = with_field(plain_archive(), member, DEEP)
    for error in every_read_path(data):
        assert f"{member}: JSON nested more than {MAX_JSON_DEPTH} levels deep" in error


def test_json_depth_limit_is_exact():
    # 64 levels read (the document itself is level 1), 65 do not
    ok = b'"x": ' + b"[" * (MAX_JSON_DEPTH - 1) + b"]" * (MAX_JSON_DEPTH - 1)
    bad = b'"x": ' + b"[" * MAX_JSON_DEPTH + b"]" * MAX_JSON_DEPTH
    with open_dump(io.BytesIO(with_field(plain_archive(), "dumpcodec.json", ok))) as r:
        assert len(r.tables()) == 2
    with open_dump(io.BytesIO(with_field(plain_archive(), "dumpcodec.json", bad))) as r:
        with pytest.raises(ArchiveError, match="nested more than 64"):
            r.tables()


def test_writer_refuses_what_readers_refuse():
    w = open_dump(io.BytesIO(), "w", backend="zstd")
    deep = []
    for _ in range(2000):
        deep = [deep]
    with pytest.raises(ValueError, match="nested too deeply"):
        w.add_table("public.a", {"d": deep}, ["i"], ["int4"])
    # a header stays two levels below the limit: the manifest holds it two deeper
    nested = 0
    for _ in range(MAX_JSON_DEPTH - 3):
        nested = [nested]
    with pytest.raises(ValueError, match="nested more than 62 levels"):
        w.add_table("public.a", {"d": nested}, ["i"], ["int4"])
    with pytest.raises(ValueError, match="more than the 8388608 bytes readers accept"):
        w.add_table("public.a", {"d": "x" * MAX_SMALL_META_SIZE}, ["i"], ["int4"])
    with pytest.raises(ValueError, match="dumpcodec.json: .* more than the 8388608"):
        w.set_info(notes="y" * MAX_SMALL_META_SIZE)
    with pytest.raises(ValueError, match="nested more than 64"):
        w.set_info(notes=[[nested]], more=[[1]])
    # none of that was written or kept: the archive goes on and verifies
    with w.add_table("public.a", {"d": nested[0]}, ["i"], ["int4"]) as tw:
        tw.write(stream(5))
    w.close()
    with open_dump(io.BytesIO(w._raw.getvalue())) as r:
        report = r.verify()
        assert report.ok, report.problems
        assert "notes" not in r.info["info"]
        assert list(r.read_rows("public.a")) == [(i,) for i in range(5)]


@pytest.mark.parametrize("backend", ["tar", "zstd"])
def test_manifest_and_index_limits_grow_with_the_tables(backend):
    # 300 tables make a manifest of about 230 kB: with a fixed part of 64 KiB it
    # reads, since the limit grows with the headers and footers seen before it
    buf = io.BytesIO()
    with open_dump(buf, "w", backend=backend) as w:
        for t in range(300):
            with w.add_table(f"public.table_with_a_long_name_{t:05d}", None, ["i"],
                             ["int4"]) as tw:
                tw.write(stream(2))
    data = buf.getvalue()
    sizes = dict((n, len(d)) for n, d in members_of(data)) if backend == "tar" else {}
    if sizes:
        assert sizes["manifest.json"] > 3 * 65536
    for seekable in (True, False):
        with open_dump(io.BytesIO(data), seekable=seekable, max_meta_size=65536) as r:
            assert len(r.tables()) == 300 and r.complete
    with open_dump(io.BytesIO(data), max_meta_size=65536) as r:
        assert r.verify().ok


def test_a_bloated_manifest_is_still_refused_before_it_is_read():
    data = plain_archive(tables=1)
    out = []
    for name, body in members_of(data):
        if name == "manifest.json":
            body = body[:-2] + b" " * 300_000 + b"}\n"     # whitespace: valid JSON
        out.append((name, body))
    with open_dump(io.BytesIO(build(out)), max_meta_size=65536) as r:
        with pytest.raises(ArchiveError, match=r"member 'manifest.json' declares \d+ "
                                               r"bytes, more than the \d+-byte limit"):
            r.tables()


def test_a_bloated_footer_is_refused_before_it_is_read():
    data = plain_archive(tables=1)
    out = []
    for name, body in members_of(data):
        if name == "table_000.footer.json":
            body = body[:-2] + b" " * (MAX_SMALL_META_SIZE + 100_000) + b"}\n"
        out.append((name, body))
    with open_dump(io.BytesIO(build(out))) as r:
        with pytest.raises(ArchiveError, match="member 'table_000.footer.json' declares"):
            r.tables()


@pytest.mark.slow      # about a minute: 100,000 members written, verified and read
def test_100000_chunks_write_verify_and_read():
    # one table of 100,000 chunk members: its footer (about 23 MB) is far over the
    # fixed 8 MiB, which the old reader refused as incomplete although its own writer
    # wrote it
    n_rows = 400_000                    # 4 rows of 10 bytes per 64-byte chunk
    buf = io.BytesIO()
    with open_dump(buf, "w", backend="zstd", chunk_size=64) as w:
        with w.add_table("public.many", None, ["i"], ["int4"]) as tw:
            tw.write(stream(n_rows))
    assert len(tw.members) == 100_000
    data = buf.getvalue()
    with open_dump(io.BytesIO(data), seekable=False) as r:
        report = r.verify()
    assert report.ok, report.problems[:3]
    assert report.members == 100_000 and report.rows == n_rows
    with open_dump(io.BytesIO(data)) as r:
        (t,) = r.tables()
        assert t.rows == n_rows and len(t.members) == 100_000
        assert sum(1 for _ in r.read_rows("public.many")) == n_rows
