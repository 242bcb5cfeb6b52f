"""Text COPY members: the rows a load sends are exactly the rows verify and cat count.

PostgreSQL (15 and 16, checked here against the real servers) ends a text COPY at a
``\\.`` before a line end and drops the rest without an error, takes a LF after a
backslash into the value, and in SJIS-like encodings reads a 0x5C inside a
character as part of it.  Members holding such data are refused by every reader path
(read_raw, the one pass, verify, cat), naming the member and the line; honest data,
escaped backslashes and dots included, reads and loads row for row.
"""
import io
import tarfile

import pytest

from dumpcodec import restore_dump
from dumpcodec.archive import open_dump
from dumpcodec.archive import writer as writer_mod
from dumpcodec.cli import main
from dumpcodec.errors import ArchiveError

HONEST = (b"1\tplain\n"
          b"2\tends in a backslash and a dot \\\\.\n"   # the value  ...\.  escaped
          b"3\t\\\\\n"                                  # a lone backslash
          b"4\t.\n"
          b"5\ta\\r\\nb\n"                              # CR LF inside, escaped
          b"6\t\\N\n")
HOSTILE = {
    # name: (data, line the reader names, rows the server loads of 3 lines)
    "dot line": (b"1\tx\n\\.\n3\tz\n", 2, 1),
    "field ends in dot": (b"1\tx\n2\tabc\\.\n3\tz\n", 2, 2),
    "backslash before line end": (b"1\tx\n2\tab\\\ncd\n", 2, 2),
}


class _NoCheck:
    def __init__(self, *a, **k):
        pass

    def chunk(self, data):
        pass


def archive(data: bytes, encoding="UTF8", backend="tar", chunk_size=1 << 20) -> bytes:
    """One text table public.t (a int, b text); the writer's own check switched off
    when ``data`` is hostile (an attacker's writer has none)."""
    buf = io.BytesIO()
    saved = writer_mod.TextCopyCheck
    writer_mod.TextCopyCheck = _NoCheck
    try:
        with open_dump(buf, "w", backend=backend, chunk_size=chunk_size) as w:
            w.set_info(client_encoding=encoding)
            with w.add_table("public.t", None, ["a", "b"], ["integer", "text"],
                             format="text") as tw:
                tw.write(data)
    finally:
        writer_mod.TextCopyCheck = saved
    return buf.getvalue()


def dachs(data: bytes) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for name, body in (("table_000.textdump", data), ("index.txt",
                                                          b"table_000.textdump q#t\n")):
            ti = tarfile.TarInfo(name)
            ti.size = len(body)
            tf.addfile(ti, io.BytesIO(body))
    return buf.getvalue()


def server_rows(conn, data: bytes, encoding="UTF8"):
    """What PostgreSQL itself loads of ``data`` with COPY FROM (text)."""
    conn.execute("CREATE TEMP TABLE IF NOT EXISTS t (a int, b text)")
    conn.execute("TRUNCATE t")
    conn.execute(f"SET client_encoding TO '{encoding}'")
    with conn.cursor().copy("COPY t (a, b) FROM STDIN") as cp:
        cp.write(data)
    conn.execute("SET client_encoding TO 'UTF8'")
    return conn.execute("SELECT a, b FROM t ORDER BY a").fetchall()


def test_honest_text_reads_and_loads_row_for_row(any_db):
    with open_dump(io.BytesIO(archive(HONEST))) as r:
        assert r.verify().ok
        rows = list(r.read_rows("public.t"))
        chunks = b"".join(bytes(c) for c in r.read_raw("public.t"))
    assert len(rows) == 6 and rows[1][1] == "ends in a backslash and a dot \\."
    with any_db.connect() as c:
        loaded = server_rows(c, chunks)
    assert [(str(a), b) for a, b in loaded] == [tuple(r) for r in rows]


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_the_server_really_loads_other_rows(any_db, case):
    # the reason for the refusal, on each server version: fewer rows than lines,
    # and no error
    data, _line, loaded = HOSTILE[case]
    with any_db.connect() as c:
        assert len(server_rows(c, data)) == loaded < data.count(b"\n")


@pytest.mark.parametrize("case", sorted(HOSTILE))
@pytest.mark.parametrize("seekable", [True, False])
def test_hostile_member_refused_by_every_reader_path(case, seekable):
    data, line, _ = HOSTILE[case]
    name = "member 'table_000.00000.textdump' (table 'public.t') line %d" % line
    blob = archive(data)
    with open_dump(io.BytesIO(blob), seekable=seekable) as r:
        with pytest.raises(ArchiveError, match=name.replace("(", r"\(").replace(")", r"\)")):
            list(r.read_raw("public.t"))
    with open_dump(io.BytesIO(blob), seekable=seekable) as r:
        with pytest.raises(ArchiveError, match="text COPY data"):
            list(r.read_rows("public.t"))
    with open_dump(io.BytesIO(blob), seekable=seekable) as r:
        report = r.verify()
    assert not report.ok and any(p.startswith(name) for p in report.problems), \
        report.problems


def test_hostile_member_refused_in_a_later_chunk_names_the_line():
    # the check runs per chunk member; lines are counted within the member
    data = b"".join(b"%d\tvalue %d\n" % (i, i) for i in range(100)) + b"100\tx\\.\n"
    blob = archive(data, chunk_size=256)
    with open_dump(io.BytesIO(blob)) as r:
        members = r.table("public.t").members
        assert len(members) > 3
        with pytest.raises(ArchiveError, match=r"member '%s' \(table 'public.t'\) line "
                                               r"\d+: text COPY data holds \\\." %
                           members[-1].name):
            list(r.read_raw("public.t"))


@pytest.mark.parametrize("seekable", [True, False])
def test_dachs_textdump_with_end_marker_refused(seekable, tmp_path):
    blob = dachs(b"1\tx\n2\ty\n\\.\n4\tafter the marker\n")
    if not seekable:
        with open_dump(io.BytesIO(blob), seekable=False) as r:
            report = r.verify()
        assert any("table_000.textdump" in p and "line 3" in p for p in report.problems)
        return
    with open_dump(io.BytesIO(blob)) as r:
        with pytest.raises(ArchiveError, match=r"member 'table_000.textdump' \(table "
                                               r"'q#t'\) line 3: text COPY data holds"):
            list(r.read_rows("q#t"))
        report = r.verify()
    assert any("line 3" in p for p in report.problems)


def test_sjis_hides_a_marker_from_a_byte_wise_scan(any_db):
    # 0x95 0x5C is one SJIS character; the 0x5C after it starts an escape of its own,
    # so the server sees "\." and stops.  The archive's client encoding says SJIS,
    # and restore would set it: the reader follows the server's reading.
    data = b"1\t\x95\x5c\x5c.\n2\tx\n"
    with any_db.connect() as c:
        assert len(server_rows(c, data, "SJIS")) == 1
    with open_dump(io.BytesIO(archive(data, encoding="SJIS"))) as r:
        with pytest.raises(ArchiveError, match="line 1: text COPY data holds"):
            list(r.read_raw("public.t"))
    # the same bytes in UTF8 hold an escaped backslash and a dot: nothing hidden
    with open_dump(io.BytesIO(archive(b"1\tab\\\\.\n2\tx\n"))) as r:
        assert len(list(r.read_raw("public.t"))) == 1


def test_writer_refuses_hostile_text():
    w = open_dump(io.BytesIO(), "w", backend="tar")
    tw = w.add_table("public.t", None, ["a", "b"], ["integer", "text"], format="text")
    with pytest.raises(ArchiveError, match=r"table 'public.t' line 2: text COPY data "
                                           r"holds \\\."):
        tw.write(b"1\tx\n\\.\n")
        tw.close()
    assert w._failed


def test_cat_refuses_and_load_restores_nothing(db, tmp_path, capsys):
    path = tmp_path / "hostile.dump"
    path.write_bytes(archive(HOSTILE["field ends in dot"][0], backend="zstd"))
    code = main(["cat", str(path), "public.t"])
    out, err = capsys.readouterr()
    assert code != 0 and "line 2: text COPY data holds \\." in err
    assert out.count("\n") <= 1              # at most the CSV header, no rows
    db.execute("CREATE TABLE t (a int, b text)")
    # no definition in the archive: restored only where the user maps it
    summary = restore_dump(db.dsn, str(path), if_exists="append",
                           definitions={"public.t": "public.t"})
    assert len(summary.failed) == 1 and "text COPY data holds" in summary.failed[0][1]
    assert db.execute("SELECT count(*) FROM t") == [(0,)]
    # the honest archive restores every row
    path.write_bytes(archive(HONEST, backend="zstd"))
    summary = restore_dump(db.dsn, str(path), if_exists="append",
                           definitions={"public.t": "public.t"})
    assert summary.failed == [] and db.execute("SELECT count(*) FROM t") == [(6,)]
