"""The ``extra`` (per table) and ``info`` (per archive) keys restore relies on:
written by a real dump, read through typed accessors, type-checked by the reader and
never written with another type by the writer (docs/FORMAT.md, 5.1 and 5.2)."""
import io

import pytest

from dumpcodec import create_dump
from dumpcodec.archive import manifest as mf
from dumpcodec.archive import open_dump
from dumpcodec.codec import Encoder
from dumpcodec.errors import ArchiveError


def test_a_real_dump_reads_through_the_accessors(db, tmp_path):
    db.execute("""
        CREATE TABLE events (id int, day date) PARTITION BY RANGE (day);
        CREATE TABLE events_a PARTITION OF events FOR VALUES FROM ('2020-01-01') TO ('2021-01-01');
        INSERT INTO events VALUES (1, '2020-05-05'), (2, '2020-06-06');
        CREATE TABLE t (id serial PRIMARY KEY, v text);
        INSERT INTO t (v) SELECT 'x' || i FROM generate_series(1, 5) i;
        CREATE SEQUENCE free_seq AS integer INCREMENT BY 3 START 10;
        SELECT nextval('free_seq'), nextval('free_seq');
    """)
    leaves, root = tmp_path / "leaves.dump", tmp_path / "root.dump"
    create_dump(db.dsn, ["public.*"], str(leaves), where={"public.t": "id > 2"},
                sequences=["public"])
    create_dump(db.dsn, ["public.events"], str(root), partitions="root")
    with open_dump(str(leaves)) as r:
        tables = {t.table_id: t for t in r.tables()}
        assert tables["public.events"].has_data is False      # the root: definition only
        assert tables["public.events_a"].has_data is True
        assert tables["public.events_a"].via_root is False
        t = tables["public.t"]
        assert t.where == "id > 2" and t.rows == 3 and t.has_data
        assert tables["public.events_a"].where is None
        (seq,) = t.sequence_values
        assert (seq.schema, seq.name, seq.last_value, seq.is_called) == \
            ("public", "t_id_seq", 5, True)
        (free,) = r.free_sequences
        assert (free.schema, free.name, free.data_type, free.start, free.increment,
                free.last_value, free.is_called, free.cycle) == \
            ("public", "free_seq", "integer", 10, 3, 13, True, False)
    with open_dump(str(root)) as r:
        (events,) = r.tables()
        assert events.via_root is True and events.has_data and events.rows == 2


@pytest.mark.parametrize("extra, what", [
    ({"data": "no"}, "'data' must be true or false"),
    ({"via_root": 1}, "'via_root' must be true or false"),
    ({"where": ["id > 1"]}, "'where' must be a string"),
    ({"sequences": {"a": 1}}, "'sequences' must be a list"),
    ({"sequences": [{"schema": "s", "name": "n", "last_value": "9", "is_called": True}]},
     "sequences\\[0\\]: 'last_value' must be an integer"),
    ({"sequences": [{"schema": "s", "name": "n"}]}, "lacks 'last_value', 'is_called'"),
])
def test_writer_refuses_known_extra_keys_of_another_type(extra, what):
    w = open_dump(io.BytesIO(), "w", backend="tar")
    with pytest.raises(ValueError, match=what):
        w.add_table("public.t", None, ["i"], ["int4"], extra=extra)
    w.add_table("public.t", None, ["i"], ["int4"], extra={"data": False, "other": [1]})
    w.close()


def test_writer_refuses_info_keys_of_another_type():
    w = open_dump(io.BytesIO(), "w", backend="tar")
    with pytest.raises(ValueError, match="'snapshot' must be a string"):
        w.set_info(snapshot=5)
    with pytest.raises(ValueError, match="'cycle' must be true or false"):
        w.set_info(sequences=[{"schema": "s", "name": "n", "data_type": "bigint",
                               "start": 1, "increment": 1, "min_value": 1,
                               "max_value": 9, "cache": 1, "cycle": "no",
                               "last_value": 1, "is_called": False}])
    w.set_info(snapshot=None, anything={"goes": "here"})
    w.close()


def crafted(monkeypatch, *, extra=None, info=None) -> bytes:
    """An archive written with the writer's type checks switched off (an attacker
    writes what they like; checksums and offsets stay consistent)."""
    monkeypatch.setattr(mf, "check_table_extra", lambda *a, **k: None)
    monkeypatch.setattr(mf, "check_archive_info", lambda *a, **k: None)
    buf = io.BytesIO()
    enc = Encoder(["int4"])
    with open_dump(buf, "w", backend="tar") as w:
        w.set_info(**(info or {}))
        with w.add_table("public.t", None, ["i"], ["int4"], extra=extra) as tw:
            tw.write(enc.header() + enc.encode([(1,)]) + enc.trailer())
    monkeypatch.undo()
    return buf.getvalue()


@pytest.mark.parametrize("pipe", [False, True])
def test_reader_refuses_a_known_extra_key_of_another_type(monkeypatch, pipe):
    data = crafted(monkeypatch, extra={"via_root": "yes"})
    src = io.BytesIO(data)
    with open_dump(src, seekable=not pipe) if pipe else open_dump(src) as r:
        with pytest.raises(ArchiveError, match="table_000.header.json: field 'extra': "
                                               "'via_root' must be true or false"):
            if pipe:
                list(r.iter_tables())
            else:
                r.tables()
    with open_dump(io.BytesIO(data)) as r:
        report = r.verify()
    assert not report.ok and any("'via_root' must be" in p for p in report.problems)


def test_reader_refuses_an_info_key_of_another_type(monkeypatch):
    data = crafted(monkeypatch, info={"sequences": "all of them"})
    with open_dump(io.BytesIO(data)) as r:
        with pytest.raises(ArchiveError, match="dumpcodec.json: field 'info': "
                                               "'sequences' must be a list"):
            r.tables()


def test_accessors_on_plain_dicts():
    assert mf.table_has_data({}) is True and mf.table_has_data({"data": False}) is False
    assert mf.table_via_root({}) is False and mf.table_where({}) is None
    assert mf.table_sequences({}) == [] and mf.free_sequences({}) == []
    with pytest.raises(ArchiveError, match="'data' must be"):
        mf.table_has_data({"data": 0})
