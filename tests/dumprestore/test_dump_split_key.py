"""Split dumps by key: a big table read as ranges of its integer primary key
(``split_method='key'``, the default on servers older than 14, where TID range scans do
not exist; dumpcodec.dump_split).

No PostgreSQL 13 runs here, so the method is forced on the servers there are (15, 16).
A key split dump holds the same rows as an unsplit one (order aside) whatever the keys
(negative, with gaps, a huge range with few rows, the extremes of bigint, smallint),
also while other sessions change the table during the dump (the snapshot holds); the
ranges recorded cover every key without overlap and each chunk holds exactly the rows of
its range; a table without such a key, or whose key the dumping role may not read, is
read whole, saying why; the archive verifies and restores to the source table, also
when its informative ``extra.split`` was tampered with.
"""
from __future__ import annotations

import collections
import logging

import psycopg
import pytest

from dumpcodec import create_dump, open_dump, restore_dump
from dumpcodec.archive import manifest as mf
from dumpcodec.cli import main as cli_main
from dumpcodec.dump_split import RANGES_PER_JOB, choose_method, key_bounds
from test_dump_split import CHUNK, _fill, _help, _live, _Meddler, _rows, _table

# (primary key type, key values in g = 1..rows, rows); _fill deletes every key
# divisible by 13, TOASTs those divisible by 5000 and moves those divisible by 17
SHAPES = {
    "int": ("int", "g", 40_000),
    "negative-gaps": ("bigint", "(g - 20000) * 11", 40_000),
    "huge-sparse": ("bigint", "(g - 1000) * 4611686018427389", 2_000),
    "bigint-extremes": ("bigint", "CASE g WHEN 1 THEN -9223372036854775808 "
                                  "WHEN 2 THEN 9223372036854775807 ELSE g END", 2_000),
    "smallint": ("smallint", "g - 10000", 20_000),
}


def _dump(db, path, jobs=2, method="key", **kw):
    kw.setdefault("split_larger_than", 1)
    return create_dump(db.dsn, kw.pop("tables", None), path, jobs=jobs, chunk_size=CHUNK,
                       split_method=method, **kw)


def _check_key_ranges(db, info, jobs: int) -> list:
    """The recorded ranges: method key on ``id``, cut between the key's min and max as
    the table holds them now, contiguous, the ends open; each chunk's rows are exactly
    the rows of its range as the server counts them."""
    split = info.extra["split"]
    assert split["method"] == "key" and split["column"] == "id"
    ranges = split["ranges"]
    with db.connect() as c:
        low, high = c.execute("SELECT min(id), max(id) FROM big").fetchone()
        assert len(ranges) == min(jobs * RANGES_PER_JOB, high - low + 1) >= jobs
        assert ranges[0][0] is None and ranges[-1][1] is None
        assert low < ranges[0][1] and ranges[-1][0] <= high
        for (a, b), (c_, _) in zip(ranges, ranges[1:]):
            assert b == c_
            assert a is None or a < b
        assert {m.range for m in info.members} == set(range(len(ranges)))
        per_range = collections.Counter()
        for m in info.members:
            per_range[m.range] += m.rows
        for k, (a, b) in enumerate(ranges):
            n = c.execute("SELECT count(*) FROM big WHERE (%s::bigint IS NULL OR id >= %s) "
                          "AND (%s::bigint IS NULL OR id < %s)", (a, a, b, b)).fetchone()[0]
            assert per_range[k] == n, (k, a, b)
    assert sum(per_range.values()) == info.rows
    return ranges


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_key_split_equals_unsplit(any_db, tmp_path, shape):
    """Both server versions, every key shape: the same rows split by key (at -j 2 and 3)
    as unsplit and as the live table; the archive verifies."""
    key, ids, rows = SHAPES[shape]
    _fill(any_db, rows, key, ids)
    whole = tmp_path / "whole.dcz"
    _dump(any_db, whole, split_larger_than=0)
    assert "split" not in _table(whole).extra
    expected = _rows(whole)
    assert expected == _live(any_db) and len(expected) > rows // 2
    for jobs in (2, 3):
        path = tmp_path / f"key{jobs}.dcz"
        s = _dump(any_db, path, jobs=jobs)
        info = _table(path)
        _check_key_ranges(any_db, info, jobs)
        assert _rows(path) == expected
        assert s.tables[0].rows == info.rows == sum(expected.values())
        assert _rows(path, "public.small") == _rows(whole, "public.small")
        with open_dump(path) as r:
            report = r.verify()
        assert report.ok, report


def test_key_split_under_concurrent_changes(any_db_server, make_db, tmp_path):
    """Rows updated, deleted and inserted (above the largest key) during a key split
    dump: the archive holds the table as the snapshot saw it, and restores to it."""
    src = make_db(any_db_server)
    _fill(src, *SHAPES["negative-gaps"][2:], *SHAPES["negative-gaps"][:2])
    before = _live(src)
    meddler = _Meddler(src.dsn)
    path = tmp_path / "s.dcz"
    _dump(src, path, progress=meddler)
    assert meddler.done
    assert _live(src) != before            # the changes happened, and committed
    info = _table(path)
    assert info.extra["split"]["method"] == "key"
    assert _rows(path) == before and info.rows == sum(before.values())
    dst = make_db(any_db_server)
    assert restore_dump(dst.dsn, str(path), jobs=2, stage_larger_than=1).ok
    assert _live(dst) == before


@pytest.mark.parametrize("jobs", [1, 2])
def test_key_split_restores(make_db, tmp_path, jobs):
    """A key split archive restores (one connection, or the staged path at -j 2) to the
    source: rows, the small table's foreign key, the indexes."""
    src = make_db()
    _fill(src, *SHAPES["negative-gaps"][2:], *SHAPES["negative-gaps"][:2])
    path = tmp_path / "s.dcz"
    _dump(src, path)
    assert len(_table(path).extra["split"]["ranges"]) == 2 * RANGES_PER_JOB
    dst = make_db()
    summary = restore_dump(dst.dsn, str(path), jobs=jobs, stage_larger_than=1)
    assert summary.ok, summary
    assert _live(dst) == _live(src)
    with dst.connect() as c:
        assert c.execute("SELECT count(*) FROM small JOIN big ON big.id = small.big_id"
                         ).fetchone()[0] == 12
        assert c.execute("SELECT count(*) FROM pg_indexes WHERE tablename = 'big'"
                         ).fetchone()[0] == 2


NO_KEY = {
    "text key": "id text PRIMARY KEY, v int",
    "two-column key": "id int, v int, PRIMARY KEY (id, v)",
    "numeric key": "id numeric PRIMARY KEY, v int",
    "no key": "id int, v int",
    "unique, no primary key": "id int NOT NULL UNIQUE, v int",
    "integer array key": "id int[] PRIMARY KEY, v int",
}


def test_key_split_needs_an_integer_key(any_db, tmp_path, caplog):
    """Tables without a single-column smallint/integer/bigint primary key, or whose key
    has no rows or one value, are read whole with split_method='key', each with a log
    note saying why; an integer key table beside them is split."""
    ddl = [f"CREATE TABLE t{i} ({cols}); INSERT INTO t{i} (id, v) SELECT "
           f"{'ARRAY[g]' if '[]' in cols else 'g'}, g FROM generate_series(1, 3000) g;"
           for i, cols in enumerate(NO_KEY.values())]
    any_db.execute(" ".join(ddl) + """
        CREATE TABLE empty (id int PRIMARY KEY) WITH (autovacuum_enabled = false);
        INSERT INTO empty SELECT generate_series(1, 3000); DELETE FROM empty;
        CREATE TABLE one (id bigint PRIMARY KEY, pad text);
        INSERT INTO one VALUES (7, repeat('x', 100000));
        CREATE TABLE keyed (id int PRIMARY KEY);
        INSERT INTO keyed SELECT generate_series(1, 3000);""")
    path = tmp_path / "k.dcz"
    with caplog.at_level(logging.INFO, logger="dumpcodec"):
        _dump(any_db, path)
    notes = [r.getMessage() for r in caplog.records if "not splitting" in r.getMessage()]
    with open_dump(path) as r:
        for i in range(len(NO_KEY)):
            info = r.table(f"public.t{i}")
            assert "split" not in info.extra and info.rows == 3000
            assert [n for n in notes if f"public.t{i} " in n and "no single-column "
                    "smallint, integer or bigint primary key" in n], notes
        assert r.table("public.empty").rows == 0 and r.table("public.one").rows == 1
        for t, why in (("empty", "no rows"), ("one", "one value")):
            assert "split" not in r.table(f"public.{t}").extra
            assert [n for n in notes if f"public.{t}:" in n and why in n], notes
        keyed = r.table("public.keyed")
        assert keyed.extra["split"]["method"] == "key" and keyed.rows == 3000
        assert sorted(r.read_rows("public.keyed")) == [(g,) for g in range(1, 3001)]


def test_key_split_with_where_and_columns(db, tmp_path):
    """--where and --columns hold in every key range, the key itself left out of the
    columns included."""
    _fill(db, 20_000, "bigint", "(g - 10000) * 3")
    expected = {}
    with db.connect() as c:
        expected = collections.Counter(c.execute(
            "SELECT v, name FROM big WHERE v < 100 OR name IS NULL").fetchall())
    for split in (0, 1):
        path = tmp_path / f"w{split}.dcz"
        _dump(db, path, tables=["public.big"], split_larger_than=split,
              where={"big": "v < 100 OR name IS NULL"}, columns={"big": ["v", "name"]})
        info = _table(path)
        assert info.columns == ["v", "name"]
        assert (info.extra.get("split") or {}).get("method") == ("key" if split else None)
        assert _rows(path) == expected and len(expected) > 1000


def test_key_split_not_split(db, tmp_path):
    """With split_method='key' as with ctid: -j 1, threshold 0, a table below the
    threshold, text COPY and a partitioned table dumped through its root are read
    whole."""
    _fill(db, 5000)
    db.execute("CREATE TABLE p (id int PRIMARY KEY, v int) PARTITION BY RANGE (id);"
               "CREATE TABLE p1 PARTITION OF p FOR VALUES FROM (MINVALUE) TO (2500);"
               "CREATE TABLE p2 PARTITION OF p FOR VALUES FROM (2500) TO (MAXVALUE);"
               "INSERT INTO p SELECT g, g FROM generate_series(1, 5000) g")
    cases = [dict(jobs=1), dict(split_larger_than=0), dict(split_larger_than=1 << 40),
             dict(binary=False)]
    for i, kw in enumerate(cases):
        path = tmp_path / f"n{i}.dcz"
        _dump(db, path, tables=["public.big"], **kw)
        info = _table(path)
        assert "split" not in info.extra, kw
        assert info.rows == 5000 - 5000 // 13
    path = tmp_path / "root.dcz"
    _dump(db, path, tables=["public.p"], partitions="root")
    info = _table(path, "public.p")
    assert info.extra.get("via_root") is True and "split" not in info.extra
    assert info.rows == 5000
    # the leaves themselves are tables of their own with the key: split
    path = tmp_path / "leaves.dcz"
    _dump(db, path, tables=["public.p1", "public.p2"])
    for leaf in ("public.p1", "public.p2"):
        info = _table(path, leaf)
        assert info.extra["split"]["method"] == "key"
        assert info.rows == {"public.p1": 2499, "public.p2": 2501}[leaf]
        assert {m.range for m in info.members} == set(range(len(info.extra["split"]["ranges"])))


def test_choose_method():
    """auto: ctid from PostgreSQL 14, key before; a forced method stays."""
    assert choose_method("auto", 130012) == "key"
    assert choose_method("auto", 140000) == "ctid"
    assert choose_method("auto", 160002) == "ctid"
    for v in (120000, 130012, 150004):
        assert choose_method("key", v) == "key"
        assert choose_method("ctid", v) == "ctid"


def test_split_method_checked(db, tmp_path):
    with pytest.raises(ValueError, match="split_method must be one of auto, ctid, key"):
        create_dump(db.dsn, None, tmp_path / "x.dcz", jobs=2, split_method="heap")
    assert not (tmp_path / "x.dcz").exists()


def test_cli_split_method(db, tmp_path, capsys):
    _fill(db, 20_000)
    path = tmp_path / "cli.dcz"
    base = ["create", "--dsn", db.dsn, "-t", "public.big", "-j", "2", "-q",
            "--chunk-size", "64k", "--split-larger-than", "16k", "-o", str(path)]
    for method, expected in (("key", "key"), ("ctid", "ctid"), ("auto", "ctid")):
        assert cli_main(base + ["--split-method", method]) == 0
        assert _table(path).extra["split"]["method"] == expected
    assert _rows(path) == _live(db)
    with pytest.raises(SystemExit) as exc:
        cli_main(base + ["--split-method", "heap"])
    assert exc.value.code == 2
    assert "invalid choice: 'heap'" in capsys.readouterr().err
    assert "--split-method" in _help(capsys)


def test_key_bounds():
    """Cover every value without overlap: open ends, increasing cuts inside [low, high],
    as many ranges as asked for unless there are fewer values."""
    top = 2 ** 63 - 1
    for low, high in ((1, 1), (1, 2), (-5, 5), (0, 7), (1, 40_000), (-top - 1, top),
                      (-32768, 32767), (10 ** 12, 10 ** 12 + 3)):
        for n in (1, 2, 3, 8, 200):
            b = key_bounds(low, high, n)
            assert len(b) == min(n, high - low + 1)
            assert b[0][0] is None and b[-1][1] is None
            cuts = [a for a, _ in b[1:]]
            assert cuts == [e for _, e in b[:-1]]
            assert all(low < c <= high for c in cuts) and cuts == sorted(set(cuts))
            # every value in exactly one range
            for v in {low, high, (low + high) // 2, *cuts, *(c - 1 for c in cuts)}:
                assert sum(1 for a, e in b if (a is None or v >= a)
                           and (e is None or v < e)) == 1, (low, high, n, v)


def test_key_split_record_accepted():
    """Negative and huge key values are what a key split records."""
    mf.check_table_extra({"split": {"method": "key", "column": "id", "ranges": [
        [None, -2 ** 62], [-2 ** 62, 2 ** 62], [2 ** 62, None]]}})
    mf.check_table_extra({"split": {"method": "key", "column": "id",
                                    "ranges": [[None, None]]}})


def test_tampered_split_record_is_not_trusted(make_db, tmp_path):
    """extra.split is informative: an archive whose record lies (another column, SQL in
    its name, ranges that cover nothing) restores its rows as they are, runs nothing of
    it, and touches nothing else in the target."""
    src = make_db()
    _fill(src, 20_000, "bigint", "(g - 10000) * 3")
    honest = tmp_path / "honest.dcz"
    _dump(src, honest, tables=["public.big"])
    lie = {"method": "key", "column": 'v" >= 0; DROP TABLE canary; --',
           "ranges": [[10, -10], [None, None], [2 ** 70, 3]]}
    forged = tmp_path / "forged.dcz"
    with open_dump(honest) as r, open_dump(forged, "w", backend="tar") as w:
        w.set_info(server_version="15", client_encoding="UTF8")
        for info, chunks in r.iter_tables():
            extra = dict(info.extra, split=lie)
            with w.add_table(info.table_id, info.definition, info.columns, info.types,
                             info.format, extra) as tw:
                for k, chunk in enumerate(chunks):
                    tw.write_part(k, bytes(chunk))
                    tw.close_part(k)
    with open_dump(forged) as r:
        assert r.table("public.big").extra["split"] == lie and r.verify().ok
    for jobs in (1, 2):
        dst = make_db()
        dst.execute("CREATE TABLE canary (x int); INSERT INTO canary VALUES (42)")
        summary = restore_dump(dst.dsn, str(forged), jobs=jobs, stage_larger_than=1)
        assert summary.ok, summary
        assert _live(dst) == _live(src)
        with dst.connect() as c:
            assert c.execute("SELECT x FROM canary").fetchall() == [(42,)]


def test_key_split_reads_inside_the_snapshot(db, tmp_path):
    """The bounds come from the dump's snapshot: keys committed after it was taken
    (below the minimum and above the maximum) are neither read nor counted."""
    _fill(db, 20_000)
    with psycopg.connect(db.dsn) as snap:
        snap.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        snapshot = snap.execute("SELECT pg_export_snapshot()").fetchone()[0]
        before = _live(db)
        db.execute("INSERT INTO big (id, v) VALUES (-1000000, 1), (1000000, 1)")
        path = tmp_path / "s.dcz"
        _dump(db, path, tables=["public.big"], snapshot=snapshot)
    info = _table(path)
    ranges = info.extra["split"]["ranges"]
    assert ranges[0][1] > 1 and ranges[-1][0] <= 20_000    # cut in 1..20000
    assert _rows(path) == before


def test_key_not_readable_read_whole(db, tmp_path, caplog):
    """A role that may read some columns but not the key: its dump of those columns
    cannot use key ranges (WHERE id needs SELECT on id), so the table is read whole,
    the note naming the server's refusal, and the dump succeeds."""
    import uuid
    role = f"key14_{uuid.uuid4().hex[:8]}"
    _fill(db, 20_000)
    db.execute(f"CREATE ROLE {role} LOGIN; GRANT SELECT (v, name) ON big TO {role}; "
               f"GRANT USAGE ON SCHEMA public TO {role}")
    try:
        path = tmp_path / "cols.dcz"
        dsn = psycopg.conninfo.make_conninfo(db.dsn, user=role)
        with caplog.at_level(logging.INFO, logger="dumpcodec"):
            create_dump(dsn, ["public.big"], path, jobs=2, chunk_size=CHUNK,
                        split_larger_than=1, split_method="key",
                        columns={"big": ["v", "name"]})
        info = _table(path)
        assert "split" not in info.extra and info.columns == ["v", "name"]
        with db.connect() as c:
            assert _rows(path) == collections.Counter(
                c.execute("SELECT v, name FROM big").fetchall())
        assert [r for r in caplog.records if "not splitting public.big: reading the "
                "bounds of its key id failed: permission denied" in r.getMessage()]
    finally:
        db.execute(f"REVOKE ALL ON big FROM {role}; REVOKE ALL ON SCHEMA public FROM {role}")
        db.execute(f"DROP ROLE {role}")
