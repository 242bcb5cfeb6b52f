"""What a host application sees: per-table events and warnings on the ``dumpcodec``
logger (never printed), progress through the caller's callback, and text COPY
members on request (``binary=False`` / ``--format text``)."""
from __future__ import annotations

import logging

from dumpcodec import Selection, create_dump, open_dump, restore_dump
from dumpcodec.cli import main
from dumpcodec.progress import Progress


def _setup(db):
    db.execute("""
        CREATE TABLE a (id serial PRIMARY KEY, v text, n numeric(12,2), d date[],
                        j jsonb, b bytea);
        CREATE TABLE b (id int PRIMARY KEY REFERENCES a(id), w float8);
        INSERT INTO a (v, n, d, j, b) SELECT 'v' || g || E'\\t\\n\\\\', g / 7.0,
            ARRAY['2024-01-01'::date, NULL], jsonb_build_object('g', g), '\\x00ff'
            FROM generate_series(1, 500) g;
        INSERT INTO b SELECT g, g / 3.0 FROM generate_series(1, 100) g;
    """)


def _digest(db, table):
    return db.execute(f"SELECT count(*), md5(string_agg(t::text, ',' ORDER BY t::text)) "
                      f"FROM {table} t")[0]


class Recorder(Progress):
    def __init__(self):
        self.calls = []

    def start(self, operation, tables):
        self.calls.append(("start", operation, tables))

    def table_start(self, table_id, estimated_bytes=None):
        self.calls.append(("table_start", table_id))

    def table_done(self, table_id, rows, nbytes, seconds, error=None):
        self.calls.append(("table_done", table_id, rows, error))

    def finish(self):
        self.calls.append(("finish",))


def test_events_on_the_logger_and_progress_callback_nothing_printed(
        db, make_db, tmp_path, caplog, capsys):
    _setup(db)
    path = str(tmp_path / "e.dcz")
    rec = Recorder()
    with caplog.at_level(logging.INFO, logger="dumpcodec"):
        create_dump(db.dsn, Selection(tables=["a", "b", "nosuch"]), path, progress=rec)
    dumped = [r for r in caplog.records if r.name == "dumpcodec.dump"]
    assert [r.getMessage().split(":")[0] for r in dumped
            if r.getMessage().startswith("dumped public")] == ["dumped public.a",
                                                               "dumped public.b"]
    warned = [r for r in dumped if r.levelno == logging.WARNING]
    assert [r.getMessage() for r in warned] == ["no matching tables were found for "
                                                "-t nosuch"]
    assert rec.calls[0] == ("start", "dump", 2) and rec.calls[-1] == ("finish",)
    assert ("table_done", "public.a", 500, None) in rec.calls

    caplog.clear()
    target = make_db()
    target.execute("CREATE TABLE b (x int)")
    rec = Recorder()
    with caplog.at_level(logging.INFO, logger="dumpcodec"):
        summary = restore_dump(target.dsn, path, progress=rec)
    msgs = [(r.name, r.levelname, r.getMessage()) for r in caplog.records]
    assert any(n == "dumpcodec.restore" and lvl == "INFO" and
               m.startswith("created public.a into public.a: 500 rows")
               for n, lvl, m in msgs)
    assert any(n == "dumpcodec.restore" and lvl == "ERROR" and
               m.startswith("failed public.b: table public.b already exists")
               for n, lvl, m in msgs)
    assert [w for w in summary.warnings] == [m for n, lvl, m in msgs if lvl == "WARNING"]
    assert ("table_done", "public.b", 0, summary.failed[0][1]) in rec.calls
    # the library printed nothing: a NullHandler on "dumpcodec" keeps Python's
    # last-resort handler from writing warnings to stderr
    out = capsys.readouterr()
    assert out.out == "" and out.err == ""
    assert any(isinstance(h, logging.NullHandler)
               for h in logging.getLogger("dumpcodec").handlers)


def test_debug_shows_the_log(db, tmp_path, capsys):
    _setup(db)
    assert main(["--debug", "create", "--dsn", db.dsn, "-t", "a", "-q",
                 "-o", str(tmp_path / "d.dcz")]) == 0
    assert "dumpcodec.dump: INFO: dumped public.a: 500 rows" in capsys.readouterr().err


def test_format_text_writes_text_members_that_restore(db, make_db, tmp_path):
    _setup(db)
    path = tmp_path / "t.dcz"
    assert main(["create", "--dsn", db.dsn, "-q", "-o", str(path), "--format", "text"]) == 0
    with open_dump(str(path)) as r:
        tables = r.tables()
        assert {t.table_id: t.format for t in tables} == {"public.a": "text",
                                                          "public.b": "text"}
        first = next(iter(r.read_rows("public.a")))
        assert first[1] == "v1\t\n\\"
    target = make_db()
    assert main(["load", str(path), "--dsn", target.dsn, "-q"]) == 0
    for t in ("a", "b"):
        assert _digest(db, t) == _digest(target, t)
    # binary by default, and binary=False in the library
    create_dump(db.dsn, ["a"], str(tmp_path / "b.dcz"))
    with open_dump(str(tmp_path / "b.dcz")) as r:
        assert [t.format for t in r.tables()] == ["binary"]
    create_dump(db.dsn, ["a"], str(tmp_path / "c.dcz"), binary=False)
    with open_dump(str(tmp_path / "c.dcz")) as r:
        assert [t.format for t in r.tables()] == ["text"]
