"""Split dumps: a big table read as several heap ranges at once (dumpcodec.dump_split).

A split dump holds the same rows as an unsplit one (order aside) on every server
version, also while other sessions update, delete and insert rows during the dump (the
snapshot holds); the recorded ranges cover the heap without gap or overlap and every
chunk names its range; the archive verifies and restores (through the staged path
at -j 2) to the source table.
"""
from __future__ import annotations

import collections
import logging

import psycopg
import pytest

from dumpcodec import create_dump, open_dump, restore_dump
from dumpcodec.cli import main as cli_main
from dumpcodec.dump_split import RANGES_PER_JOB, page_bounds
from dumpcodec.errors import ArchiveError
from dumpcodec.progress import Progress

ROWS = 40_000
CHUNK = 64 << 10


def _fill(db, rows: int = ROWS, key: str = "int", ids: str = "g") -> None:
    """``big`` of ``rows`` rows, keyed ``key`` (the primary key's type) with the values
    ``ids`` (SQL in ``g`` = 1..rows), less the deleted ones; ``small`` refers to its
    first 12 keys."""
    db.execute(
        f"CREATE TABLE big (id {key} PRIMARY KEY, v int NOT NULL, name text, "
        "amount numeric(12,2), payload bytea, at timestamptz);"
        "CREATE INDEX big_v ON big (v);"
        f"INSERT INTO big SELECT {ids}, g % 1000, md5(g::text), g / 7.0, "
        f"decode(md5(g::text), 'hex'), '2024-01-01'::timestamptz + g * interval '1 min' "
        f"FROM generate_series(1, {rows}) g;"
        # a few rows TOASTed, holes in the heap, and rows moved by an update
        "UPDATE big SET name = repeat(md5(id::text), 400) WHERE id % 5000 = 0;"
        "DELETE FROM big WHERE id % 13 = 0;"
        "UPDATE big SET v = -v WHERE id % 17 = 0;"
        f"CREATE TABLE small (id int PRIMARY KEY, big_id {key} REFERENCES big (id));"
        "INSERT INTO small SELECT row_number() OVER (ORDER BY id), id "
        "FROM (SELECT id FROM big ORDER BY id LIMIT 12) b")


def _rows(path, table_id="public.big"):
    with open_dump(path) as r:
        return collections.Counter(r.read_rows(table_id))


def _table(path, table_id="public.big"):
    with open_dump(path) as r:
        return r.table(table_id)


def _live(db):
    with db.connect() as c:
        return collections.Counter(
            c.execute("SELECT id, v, name, amount, payload, at FROM big").fetchall())


def _check_ranges(info, jobs: int) -> list:
    split = info.extra["split"]
    assert split["method"] == "ctid"
    ranges = split["ranges"]
    assert len(ranges) == min(jobs * RANGES_PER_JOB, split["pages"]) >= jobs
    # from page 0, each range ending where the next starts, the last without an end
    assert ranges[0][0] == 0 and ranges[-1][1] is None
    for (a, b), (c, _) in zip(ranges, ranges[1:]):
        assert a < b == c
    # every chunk names one range; every range has its chunks
    assert {m.range for m in info.members} == set(range(len(ranges)))
    assert sum(m.rows for m in info.members) == info.rows
    return ranges


def test_split_equals_unsplit(any_db, tmp_path):
    """Both server versions: the same rows split (at -j 2 and 3) and unsplit."""
    _fill(any_db)
    whole = tmp_path / "whole.dcz"
    s0 = create_dump(any_db.dsn, None, whole, jobs=2, chunk_size=CHUNK, split_larger_than=0)
    assert "split" not in _table(whole).extra
    assert all(m.range is None for m in _table(whole).members)
    expected = _rows(whole)
    assert expected == _live(any_db) and sum(expected.values()) == s0.tables[0].rows
    for jobs in (2, 3):
        path = tmp_path / f"split{jobs}.dcz"
        s = create_dump(any_db.dsn, None, path, jobs=jobs, chunk_size=CHUNK,
                        split_larger_than=1)
        info = _table(path)
        _check_ranges(info, jobs)
        assert _rows(path) == expected
        assert s.tables[0].rows == info.rows == sum(expected.values())
        assert _rows(path, "public.small") == _rows(whole, "public.small")
        with open_dump(path) as r:
            report = r.verify()
        assert report.ok, report


def test_split_ranges_cover_the_heap(db, tmp_path):
    """The pages recorded are the heap's; the rows of each range lie in it."""
    _fill(db)
    path = tmp_path / "s.dcz"
    create_dump(db.dsn, ["public.big"], path, jobs=2, chunk_size=CHUNK, split_larger_than=1)
    info = _table(path)
    ranges = _check_ranges(info, 2)
    with db.connect() as c:
        pages = c.execute("SELECT pg_relation_size('big') / "
                          "current_setting('block_size')::int").fetchone()[0]
        assert info.extra["split"]["pages"] == pages
        # rows per range, counted by the server from the ctids, equal the chunks' rows
        per_range = collections.Counter()
        for m in info.members:
            per_range[m.range] += m.rows
        for k, (a, b) in enumerate(ranges):
            n = c.execute("SELECT count(*) FROM big WHERE (ctid::text::point)[0] >= %s "
                          "AND (%s::int IS NULL OR (ctid::text::point)[0] < %s)",
                          (a, b, b)).fetchone()[0]
            assert per_range[k] == n, (k, a, b)


class _Meddler(Progress):
    """Changes the table from another session once the dump's data starts moving."""

    def __init__(self, dsn: str):
        self.dsn = dsn
        self.done = False

    def advance(self, table_id, nbytes=0, rows=None):
        if table_id == "public.big" and not self.done:
            self.done = True
            with psycopg.connect(self.dsn, autocommit=True) as c:
                c.execute("UPDATE big SET v = v + 1000000, name = 'changed' "
                          "WHERE id % 3 = 0")
                c.execute("DELETE FROM big WHERE id % 7 = 0 AND id > 100")
                # new keys above the largest (40001.. with _fill's keys)
                c.execute("INSERT INTO big SELECT m + g, 1, 'new', 0, NULL, NULL "
                          "FROM generate_series(1, 5000) g, "
                          "(SELECT max(id) AS m FROM big) b")


def test_split_under_concurrent_changes(any_db_server, make_db, tmp_path):
    """Rows updated, deleted and inserted during a split dump: the archive holds the
    table as it was when the dump's snapshot was taken, and restores to it."""
    src = make_db(any_db_server)
    _fill(src)
    before = _live(src)
    meddler = _Meddler(src.dsn)
    path = tmp_path / "s.dcz"
    create_dump(src.dsn, None, path, jobs=2, chunk_size=CHUNK, split_larger_than=1,
                progress=meddler)
    assert meddler.done
    assert _live(src) != before            # the changes happened, and committed
    _check_ranges(_table(path), 2)
    assert _rows(path) == before
    dst = make_db(any_db_server)
    assert restore_dump(dst.dsn, str(path), jobs=2, stage_larger_than=1).ok
    assert _live(dst) == before


def test_split_restores_through_staging(make_db, tmp_path, caplog):
    """A split archive restores at -j 2 through the staging table, its chunks loaded by
    two connections (threads), equal to the source."""
    src = make_db()
    _fill(src)
    path = tmp_path / "s.dcz"
    create_dump(src.dsn, None, path, jobs=2, chunk_size=CHUNK, split_larger_than=1)
    dst = make_db()
    with caplog.at_level(logging.DEBUG, logger="dumpcodec"):
        summary = restore_dump(dst.dsn, str(path), jobs=2, stage_larger_than=1)
    assert summary.ok, summary
    loaders = {r.threadName for r in caplog.records
               if "public.big: chunk" in r.getMessage() and "loaded" in r.getMessage()}
    assert len(loaders) == 2, loaders
    loaded = [r for r in caplog.records if "public.big: chunk" in r.getMessage()]
    assert len(loaded) == len(_table(path).members)
    assert _live(dst) == _live(src)
    with dst.connect() as c:
        assert c.execute("SELECT count(*) FROM small").fetchone()[0] == 12
        assert c.execute("SELECT count(*) FROM pg_indexes WHERE tablename = 'big'"
                         ).fetchone()[0] == 2


def test_not_split(db, tmp_path):
    """-j 1, threshold 0, a table below the threshold and text COPY are read whole."""
    _fill(db, 5000)
    cases = [dict(jobs=1, split_larger_than=1), dict(jobs=2, split_larger_than=0),
             dict(jobs=2, split_larger_than=1 << 40),
             dict(jobs=2, split_larger_than=1, binary=False)]
    for i, kw in enumerate(cases):
        path = tmp_path / f"n{i}.dcz"
        create_dump(db.dsn, ["public.big"], path, chunk_size=CHUNK, **kw)
        info = _table(path)
        assert "split" not in info.extra, kw
        assert info.rows == 5000 - 5000 // 13


def test_one_big_table_alone_is_split(db, tmp_path):
    """A dump of just one table at -j 2 still reads it over two connections."""
    _fill(db, 20_000)
    path = tmp_path / "one.dcz"
    create_dump(db.dsn, ["public.big"], path, jobs=2, chunk_size=CHUNK, split_larger_than=1)
    info = _table(path)
    _check_ranges(info, 2)
    assert _rows(path) == _live(db)


def test_cli_split_larger_than(db, tmp_path, capsys):
    _fill(db, 20_000)
    path = tmp_path / "cli.dcz"
    assert cli_main(["create", "--dsn", db.dsn, "-t", "public.big", "-j", "2", "-q",
                     "--chunk-size", "64k", "--split-larger-than", "16k", "-o",
                     str(path)]) == 0
    _check_ranges(_table(path), 2)
    assert cli_main(["create", "--dsn", db.dsn, "-t", "public.big", "-j", "2", "-q",
                     "--split-larger-than", "0", "-o", str(path)]) == 0
    assert "split" not in _table(path).extra
    assert "--split-larger-than" in _help(capsys)


def _help(capsys) -> str:
    with pytest.raises(SystemExit):
        cli_main(["create", "--help"])
    return capsys.readouterr().out


def test_page_bounds():
    for pages in (1, 2, 7, 8, 100, 12345):
        for n in (1, 2, 3, 8, 200):
            b = page_bounds(pages, n)
            assert len(b) == min(n, pages)
            assert b[0][0] == 0 and b[-1][1] is None
            for (a, e), (c, _) in zip(b, b[1:]):
                assert a < e == c


@pytest.mark.parametrize("split, message", [
    ("ctid", "'split' must be an object"),
    ({"method": "key", "ranges": [[0, None]]}, "'split.column' must be a string"),
    ({"method": "ctid", "ranges": []}, "non-empty list"),
    ({"method": "ctid", "ranges": [[0, "x"]]}, "split.ranges[0]"),
    ({"method": "ctid", "ranges": [[-1, None]]}, "split.ranges[0]"),
    # a key split (dump_split's method for servers before 14)
    ({"method": "key", "ranges": [[None, 5], [5, None]]}, "'split.column' must be"),
    ({"method": "key", "column": 3, "ranges": [[None, None]]}, "'split.column' must be"),
    ({"method": "key", "column": "id", "ranges": []}, "non-empty list"),
    ({"method": "key", "column": "id", "ranges": [[None, True]]}, "split.ranges[0]"),
    ({"method": "key", "column": "id", "ranges": [[None, 1.5]]}, "split.ranges[0]"),
    ({"method": "key", "column": "id", "ranges": [[None, 5, 7]]}, "split.ranges[0]"),
    ({"method": "rows", "column": "id", "ranges": [[None, None]]}, "method 'ctid' or 'key'"),
])
def test_bad_split_record_refused(tmp_path, split, message):
    """A reader type-checks extra.split (a writer refuses to write a wrong one)."""
    with open_dump(tmp_path / "x.dcz", "w") as w:
        with pytest.raises(ValueError) as exc:
            w.add_table("public.t", None, ["a"], ["integer"], extra={"split": split})
    assert message in str(exc.value)
    from dumpcodec.archive import manifest as mf
    with pytest.raises(ArchiveError):
        mf.check_table_extra({"split": split})


def test_write_part_rules(tmp_path):
    """write_part: binary only, not after write(), not into a closed range."""
    from dumpcodec.copy import Encoder
    enc = Encoder(["int4"])
    stream = enc.header() + enc.encode([(1,), (2,)]) + enc.trailer()
    with open_dump(tmp_path / "x.dcz", "w", chunk_size=64) as w:
        tw = w.add_table("public.t", None, ["a"], ["integer"])
        tw.write_part(1, stream[:10])
        tw.write_part(0, stream)
        tw.write_part(1, stream[10:])
        tw.close_part(0)
        tw.close()
        assert [m.range for m in tw.members] == [0, 1]
        assert tw.rows == 4
    with open_dump(tmp_path / "x.dcz") as r:
        assert sorted(r.read_rows("public.t")) == [(1,), (1,), (2,), (2,)]
        assert [m.range for m in r.table("public.t").members] == [0, 1]
    with open_dump(tmp_path / "y.dcz", "w") as w:
        tw = w.add_table("public.t", None, ["a"], ["integer"])
        tw.write_part(0, stream)
        tw.close_part(0)
        with pytest.raises(ArchiveError, match="range 0 is closed"):
            tw.write_part(0, stream)
    with open_dump(tmp_path / "z.dcz", "w") as w:
        tw = w.add_table("public.t", None, ["a"], ["integer"])
        tw.write(stream)
        with pytest.raises(ArchiveError, match="write_part needs"):
            tw.write_part(0, stream)


@pytest.mark.parametrize("backend", ["zstd", "gzip", "tar"])
def test_writer_workers_same_archive(tmp_path, backend):
    """workers > 1 (members compressed by several threads, written in order) writes
    the same members as one worker: same data, checksums and member sizes, and the
    archive verifies and reads back."""
    from dumpcodec.copy import Encoder
    enc = Encoder(["int4", "text"])
    rows = [(i, f"row {i} " * (i % 7)) for i in range(20_000)]
    stream = enc.header() + enc.encode(rows) + enc.trailer()
    members = {}
    for workers in (1, 3):
        path = tmp_path / f"w{workers}.{backend}"
        with open_dump(path, "w", backend=backend, chunk_size=4096, workers=workers) as w:
            w.set_info(server_version="16", client_encoding="UTF8")
            for t in ("public.a", "public.b"):
                with w.add_table(t, None, ["i", "s"], ["integer", "text"]) as tw:
                    for k in range(0, len(stream), 1000):
                        tw.write(stream[k:k + 1000])
        with open_dump(path) as r:
            assert r.verify().ok
            assert list(r.read_rows("public.b")) == rows
            members[workers] = [(m.name, m.size, m.rows, m.sha256)
                                for t in r.tables() for m in t.members]
    assert members[1] == members[3] and len(members[1]) > 20


def test_writer_workers_checked():
    import io
    with pytest.raises(ValueError, match="workers must be"):
        open_dump(io.BytesIO(), "w", workers=0)


def test_split_with_where_and_columns(db, tmp_path):
    """--where and --columns hold in every range of a split table."""
    _fill(db, 20_000)
    got = {}
    for split in (0, 1):
        path = tmp_path / f"w{split}.dcz"
        create_dump(db.dsn, ["public.big"], path, jobs=2, chunk_size=CHUNK,
                    split_larger_than=split, where={"big": "v < 100 OR name IS NULL"},
                    columns={"big": ["id", "v"]})
        info = _table(path)
        assert ("split" in info.extra) == bool(split)
        assert info.columns == ["id", "v"]
        got[split] = _rows(path)
    with db.connect() as c:
        expected = collections.Counter(c.execute(
            "SELECT id, v FROM big WHERE v < 100 OR name IS NULL").fetchall())
    assert got[0] == got[1] == expected and len(expected) > 1000
