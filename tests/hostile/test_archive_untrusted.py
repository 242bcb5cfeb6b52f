"""Untrusted archives at the archive layer: duplicate table ids, per-table cost of a
one-pass read, text COPY members whose rows the server would count differently, and
one corrupt table in a pipe."""
import io
import os
import sys
import tarfile

import pytest

import dumpcodec.archive
from dumpcodec.archive import open_dump
from dumpcodec.codec import Encoder
from dumpcodec.errors import ArchiveError, ChecksumError, IncompleteArchiveError

BACKENDS = ["tar", "gzip", "zstd"]


def stream(rows):
    enc = Encoder(["int4"])
    return enc.header() + enc.encode([(i,) for i in rows]) + enc.trailer()


# ------------------------------------------------------------------ duplicate ids

def duplicated(backend) -> bytes:
    """Tables public.a, public.b, public.a (the writer's own check switched off)."""
    buf = io.BytesIO()
    with open_dump(buf, "w", backend=backend, chunk_size=200) as w:
        for tid, rows in (("public.a", range(3)), ("public.b", range(10, 12)),
                          ("public.a", range(100, 105))):
            w._ids.clear()
            with w.add_table(tid, None, ["i"], ["int4"]) as tw:
                tw.write(stream(rows))
    return buf.getvalue()


@pytest.mark.parametrize("backend", BACKENDS)
def test_duplicate_ids_refused_before_any_data_from_a_file(backend):
    data = duplicated(backend)
    for action in ("tables", "read_raw", "open_table", "iter_tables"):
        with open_dump(io.BytesIO(data)) as r:
            handed_out = []
            with pytest.raises(ArchiveError, match="table id 'public.a' appears twice"):
                if action == "tables":
                    r.tables()
                elif action == "read_raw":
                    handed_out += list(r.read_raw("public.a"))
                elif action == "open_table":
                    handed_out += list(r.open_table("public.b").rows())
                else:
                    for info, chunks in r.iter_tables():
                        handed_out += list(chunks)
            assert handed_out == []


@pytest.mark.parametrize("backend", BACKENDS)
def test_duplicate_ids_refused_at_the_second_occurrence_on_a_pipe(backend):
    seen = []
    with open_dump(io.BytesIO(duplicated(backend)), seekable=False) as r:
        with pytest.raises(ArchiveError, match="table_002.header.json: table id "
                                               "'public.a' appears twice"):
            for info, chunks in r.iter_tables():
                seen.append((info.table_id, sum(1 for _ in chunks)))
    assert [tid for tid, _ in seen] == ["public.a", "public.b"]


@pytest.mark.parametrize("seekable", [True, False])
def test_verify_flags_duplicate_ids(seekable):
    with open_dump(io.BytesIO(duplicated("zstd")), seekable=seekable) as r:
        report = r.verify()
    assert not report.ok
    assert any("'public.a' appears twice" in p for p in report.problems)


# ------------------------------------------------------------------ linear in tables

def many_tables(n, backend="tar") -> bytes:
    buf = io.BytesIO()
    data = stream([1])
    with open_dump(buf, "w", backend=backend) as w:
        for i in range(n):
            with w.add_table(f"public.t{i}", None, ["i"], ["int4"]) as tw:
                tw.write(data)
    return buf.getvalue()


def dachs_tables(n) -> bytes:
    buf = io.BytesIO()
    data = stream([1])
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for i in range(n):
            ti = tarfile.TarInfo(f"table_{i:03d}.dump")
            ti.size = len(data)
            tf.addfile(ti, io.BytesIO(data))
        index = "".join(f"table_{i:03d}.dump q#t{i}\n" for i in range(n)).encode()
        ti = tarfile.TarInfo("index.txt")
        ti.size = len(index)
        tf.addfile(ti, io.BytesIO(index))
    return buf.getvalue()


ARCHIVE_DIR = os.path.dirname(dumpcodec.archive.__file__)


def steps_during(fn) -> int:
    """Operations while ``fn`` runs (a count, not a time): every Python call, and
    every line executed in the archive package, each turn of a loop included (a
    loop inside a generator expression is one call but many lines)."""
    count = [0]

    def in_archive(frame, event, arg):
        count[0] += 1
        return in_archive

    def on_call(frame, event, arg):
        count[0] += 1
        return in_archive if frame.f_code.co_filename.startswith(ARCHIVE_DIR) else None

    sys.settrace(on_call)
    try:
        fn()
    finally:
        sys.settrace(None)
    return count[0]


def one_pass(data, seekable=False):
    def run():
        with open_dump(io.BytesIO(data), seekable=seekable) as r:
            for _info, chunks in r.iter_tables():
                for _ in chunks:
                    pass
    return run


def verify_pipe(data):
    def run():
        with open_dump(io.BytesIO(data), seekable=False) as r:
            assert r.verify().ok
    return run


def every_table_by_id(data):
    def run():
        with open_dump(io.BytesIO(data)) as r:
            for t in r.tables():
                r.table(t.table_id)
    return run


@pytest.mark.parametrize("what", ["iter_tables", "verify", "table_by_id", "dachs"])
def test_per_table_work_is_constant(what):
    # Doubling the tables must about double the work (2.0x here).  The old checks
    # compared each new id with every earlier one: 3.0x for 1,000 -> 2,000 tables
    # (and 12 minutes for a verify of 100,000).  The bound, 2.4, leaves room for a
    # few steps per table more or less but not for anything quadratic.
    counts = []
    for n in (1000, 2000):
        if what == "dachs":
            run = one_pass(dachs_tables(n), seekable=True)
        else:
            data = many_tables(n)
            run = {"iter_tables": one_pass, "verify": verify_pipe,
                   "table_by_id": every_table_by_id}[what](data)
        counts.append(steps_during(run))
    assert counts[1] / counts[0] < 2.4, counts


# ------------------------------------------------------------------ one pass, one bad table

def three_tables(backend="tar") -> bytes:
    buf = io.BytesIO()
    with open_dump(buf, "w", backend=backend, chunk_size=120) as w:
        for t in range(3):
            with w.add_table(f"public.t{t}", None, ["i"], ["int4"]) as tw:
                tw.write(stream(range(t * 100, t * 100 + 40)))
    return buf.getvalue()


def replaced(data: bytes, member: str, change) -> bytes:
    """The plain tar ``data`` with ``member``'s content changed in place (same size,
    so every offset stays)."""
    with tarfile.open(fileobj=io.BytesIO(data)) as tf:
        m = tf.getmember(member)
        start, size = m.offset_data, m.size
    body = change(data[start:start + size])
    assert len(body) == size
    return data[:start] + body + data[start + size:]


def read_pass(data: bytes, seekable: bool = False):
    """Every table of one pass: (id, its rows per its checked footer, or the error
    its chunks raised), then what the outer iterator raised at the end (or None),
    and the reader."""
    seen, end_error = [], None
    r = open_dump(io.BytesIO(data), seekable=seekable)
    try:
        for info, chunks in r.iter_tables():
            try:
                for _ in chunks:
                    pass
                assert info.verified
                seen.append((info.table_id, info.rows))
            except ArchiveError as exc:
                seen.append((info.table_id, exc))
    except ArchiveError as exc:
        end_error = exc
    return seen, end_error, r


def test_a_corrupt_chunk_fails_its_table_only():
    def flip(body):
        return body[:30] + bytes([body[30] ^ 0xFF]) + body[31:]
    data = replaced(three_tables(), "table_001.00001.dump", flip)
    seen, end_error, r = read_pass(data)
    assert [tid for tid, _ in seen] == ["public.t0", "public.t1", "public.t2"]
    assert seen[0][1] == 40 and seen[2][1] == 40
    err = seen[1][1]
    assert isinstance(err, ChecksumError) and "table_001.00001.dump" in str(err)
    assert end_error is None
    assert r.complete is True and r.incomplete_reason is None
    assert r.problems == [err]


def test_a_corrupt_footer_fails_its_table_only():
    data = replaced(three_tables(), "table_001.footer.json",
                    lambda body: b"{" + b"x" * (len(body) - 1))
    seen, end_error, r = read_pass(data)
    assert [tid for tid, _ in seen] == ["public.t0", "public.t1", "public.t2"]
    assert "table_001.footer.json: not valid JSON" in str(seen[1][1])
    assert seen[2][1] == 40 and end_error is None and r.complete is True


def test_the_manifest_verdict_after_the_last_table():
    # a manifest that disagrees (its rows for t2) and so fails the end marker's hash:
    # every table is read, then the outer iterator raises
    def more_rows(body):
        at = body.rindex(b'"rows":40,', 0, body.index(b'"table_id":"public.t2"'))
        return body[:at] + b'"rows":41,' + body[at + 10:]
    data = replaced(three_tables(), "manifest.json", more_rows)
    seen, end_error, r = read_pass(data)
    assert [n for _, n in seen] == [40, 40, 40]
    assert isinstance(end_error, ArchiveError) and "manifest.json" in str(end_error)
    assert r.complete is False and r.problems == [end_error]


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_cut_archive_raises_after_the_tables_it_holds(backend):
    data = three_tables(backend)
    with open_dump(io.BytesIO(data)) as r:
        cut = r.tables()[2].header.offset + 10       # inside table 2's header
    seen, end_error, r = read_pass(data[:cut])
    assert [(tid, n) for tid, n in seen] == [("public.t0", 40), ("public.t1", 40)]
    assert isinstance(end_error, IncompleteArchiveError)
    assert r.complete is False and r.incomplete_reason == str(end_error)


def test_a_broken_stream_inside_a_table_ends_the_pass():
    # corrupt compression cannot be read past: the table's chunks raise, and so does
    # the outer iterator (not a silent end)
    data = bytearray(three_tables("zstd"))
    with open_dump(io.BytesIO(bytes(data))) as r:
        m = r.tables()[1].members[1]
    data[m.offset + m.compressed_size // 2] ^= 0xFF
    seen, end_error, r = read_pass(bytes(data))
    assert [tid for tid, _ in seen] == ["public.t0", "public.t1"]
    assert isinstance(seen[1][1], ArchiveError) and end_error is not None
    assert r.complete is False


def test_restore_from_a_pipe_goes_on_after_a_corrupt_table(make_db, tmp_path):
    # what the one-pass change gives restore: the bad table fails, the next one loads
    from dumpcodec import create_dump, restore_dump
    src, dst = make_db(), make_db()
    for t in range(3):
        src.execute(f"CREATE TABLE t{t} AS SELECT g AS i FROM generate_series(1, 500) g")
    path = tmp_path / "three.tar"
    create_dump(src.dsn, ["public.t0", "public.t1", "public.t2"], str(path), backend=None,
                chunk_size=1024)
    with open_dump(str(path)) as r:
        victim = r.table("public.t1").members[1].name

    def flip(body):
        return body[:40] + bytes([body[40] ^ 0x01]) + body[41:]
    data = replaced(path.read_bytes(), victim, flip)
    summary = restore_dump(dst.dsn, io.BytesIO(data))       # a pipe: one pass
    assert [tid for tid, _ in summary.failed] == ["public.t1"]
    assert victim in summary.failed[0][1] and "SHA-256" in summary.failed[0][1]
    assert sorted(r.table_id for r in summary.ok) == ["public.t0", "public.t2"]
    assert dst.execute("SELECT count(*) FROM t2") == [(500,)]
    assert dst.execute("SELECT to_regclass('public.t1')") == [(None,)]


def test_tables_after_a_broken_one_pass_on_a_file():
    # the structure (read from the locator) is fine, the data is not: after the pass
    # failed, tables() still answers from the manifest
    data = bytearray(three_tables("zstd"))
    with open_dump(io.BytesIO(bytes(data))) as r:
        m = r.tables()[1].members[1]
    data[m.offset + m.compressed_size // 2] ^= 0xFF
    seen, end_error, r = read_pass(bytes(data), seekable=True)
    assert [tid for tid, _ in seen] == ["public.t0", "public.t1"]
    assert "corrupt" in str(end_error) and r.problems[-1] is end_error
    assert r.complete is False and r.incomplete_reason is None
    assert [t.table_id for t in r.tables()] == ["public.t0", "public.t1", "public.t2"]
    r.close()
