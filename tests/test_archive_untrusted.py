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
from dumpcodec.errors import ArchiveError

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
