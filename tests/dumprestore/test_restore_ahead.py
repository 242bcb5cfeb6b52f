"""Tables prepared ahead (restore/ahead.py): the next tables' definitions, DDL plans
and data are made in a helper thread while the server works on the current one.

What must hold: a table that fails -- refused by the allow-list, or its data corrupt --
fails alone and with the same reason as without the helper; the others restore whole;
what the helper read is what the archive holds, checked; the interpreter's switch
interval is lowered only while the restore runs.
"""
from __future__ import annotations

import io
import sys
import tarfile
import time

import pytest
from psycopg import sql

from dumpcodec import create_dump, open_dump, restore_dump, schema
from dumpcodec.progress import Progress
from dumpcodec.restore import ahead, select

from archive_helpers import read_tables, write_archive

N = 12
REFUSED = "public.t0004"
CORRUPT = "public.t0007"


def _make_tables(db, n: int) -> None:
    with db.connect() as c:
        c.execute("; ".join(
            f"CREATE TABLE t{i:04d} (id serial PRIMARY KEY, v int, name text); "
            f"CREATE INDEX ON t{i:04d} (v); "
            f"INSERT INTO t{i:04d} (v, name) SELECT g, 'n' || g "
            f"FROM generate_series(1, 100) g" for i in range(n)))


@pytest.fixture
def crafted(make_db, tmp_path):
    """An uncompressed archive of N tables: REFUSED with a CHECK the allow-list
    refuses, CORRUPT with a bit flipped in its data member."""
    src = make_db()
    _make_tables(src, N)
    plain, out = tmp_path / "plain.dcz", tmp_path / "crafted.tar"
    create_dump(src.dsn, ["public"], str(plain))
    tables = read_tables(plain)
    for t in tables:
        if t[0] == REFUSED:
            t[1] = dict(t[1], constraints=list(t[1]["constraints"]) + [
                {"name": "slow", "kind": "check", "expression": "pg_sleep(1) IS NOT NULL"}])
    write_archive(out, tables, backend="tar")
    with open_dump(str(out)) as r:
        member = r.table(CORRUPT).members[0].name
    data = bytearray(out.read_bytes())
    with tarfile.open(fileobj=io.BytesIO(bytes(data))) as tf:
        off = tf.getmember(member).offset_data + 40          # inside the rows
    data[off] ^= 0x01
    out.write_bytes(bytes(data))
    return out, member


class _Interval(Progress):
    """The switch interval each time a table ends."""

    def __init__(self):
        self.seen = []

    def table_done(self, table_id, rows, nbytes, seconds, error=None) -> None:
        self.seen.append(sys.getswitchinterval())


@pytest.mark.parametrize("jobs", [1, 2])
def test_a_failing_table_fails_alone(make_db, crafted, jobs):
    path, member = crafted
    dst = make_db()
    before = sys.getswitchinterval()
    progress = _Interval()
    summary = restore_dump(dst.dsn, str(path), jobs=jobs, progress=progress)
    assert sys.getswitchinterval() == before
    assert len(progress.seen) == N
    assert progress.seen == [pytest.approx(min(before, ahead.SWITCH_INTERVAL))] * N
    reasons = dict(summary.failed)
    assert set(reasons) == {REFUSED, CORRUPT}
    assert "pg_sleep" in reasons[REFUSED]
    assert "SHA-256" in reasons[CORRUPT] and member in reasons[CORRUPT]
    ok = {r.table_id for r in summary.ok}
    assert ok == {f"public.t{i:04d}" for i in range(N)} - {REFUSED, CORRUPT}
    with dst.connect() as c:
        for table_id in sorted(ok):
            name = table_id.split(".")[1]
            assert c.execute(f"SELECT count(*), sum(v) FROM {name}").fetchone() == \
                (100, 5050)
            assert c.execute("SELECT count(*) FROM pg_indexes WHERE tablename = %s",
                             (name,)).fetchone()[0] == 2
            # the sequence moved on as dumped: the next id follows the rows
            assert c.execute(f"INSERT INTO {name} (v) VALUES (0) RETURNING id"
                             ).fetchone()[0] == 101
        for table_id in (REFUSED, CORRUPT):
            assert c.execute("SELECT to_regclass(%s)", (table_id,)).fetchone()[0] is None


def test_what_is_prepared(crafted):
    path, member = crafted
    with open_dump(str(path)) as r:
        items = [select.item_from(t) for t in r.tables()]
        expected = {it.table_id: [bytes(c) for c in r.read_raw(it.table_id)]
                    for it in items if it.table_id != CORRUPT}

        def target(item):
            return select.target_of(item, None, {})

        def own_reader():
            own = open_dump(str(path))
            own.share_index(r)
            return own

        prep = ahead.Ahead(items, target, own_reader, data=True, depth=2)
        got = {}
        try:
            for it in items:
                # each taken once the helper has had its turn at it
                deadline = time.monotonic() + 30
                while it.table_id not in prep._ready and time.monotonic() < deadline:
                    time.sleep(0.01)
                got[it.table_id] = prep.take(it)
        finally:
            prep.close()
    assert all(r is not None for r in got.values())
    for table_id, ready in got.items():
        schema_, name, tdef = ready.target
        assert (schema_, name) == tuple(table_id.split("."))
        if table_id == REFUSED:
            # planning refuses its CHECK: not prepared (the restore plans it again and
            # fails it with that reason, test_a_failing_table_fails_alone)
            assert ready.plan is None
        else:
            assert ready.plan is not None and ready.plan_for(tdef, schema_) is ready.plan
            assert ready.plan_for(tdef, "elsewhere") is None
            assert all(isinstance(s, bytes) for phase in ahead.PRERENDERED
                       for s in getattr(ready.plan, phase))
        if table_id == CORRUPT:
            assert ready.data is None        # the checksum failed: not prepared
        else:
            assert [bytes(c) for c in ready.data] == expected[table_id]


def test_a_table_taken_is_not_prepared_again(crafted):
    path, _ = crafted
    with open_dump(str(path)) as r:
        items = [select.item_from(t) for t in r.tables()]
    calls = []

    def target(item):
        calls.append(item.table_id)
        return select.target_of(item, None, {})

    prep = ahead.Ahead(items, target, None, data=False, depth=1)
    try:
        for it in reversed(items):      # each taken before its turn, or after it
            ready = prep.take(it)
            assert ready is None or ready.data is None
    finally:
        prep.close()
    assert len(calls) == len(set(calls))


def test_prerendered_statements_are_what_the_connection_renders(make_db, tmp_path):
    """Names and literals with quotes, backslashes and non-ASCII letters: what is
    rendered ahead is byte for byte what the connection renders; what could differ
    (non-ASCII, backslashes) is left to the connection."""
    src = make_db()
    with src.connect() as c:
        c.execute('CREATE SCHEMA "s ""q"""; CREATE SCHEMA "ü"')
        c.execute('CREATE TABLE "s ""q"""."t\'x" (id serial PRIMARY KEY, '
                  '"a""b" text DEFAULT \'it\'\'s\' CHECK ("a""b" <> \'\\x\'), '
                  "c int UNIQUE, d bigserial)")
        c.execute('CREATE INDEX "i ""1""" ON "s ""q"""."t\'x" (c, "a""b")')
        c.execute('CREATE TABLE "ü"."tä" (id serial PRIMARY KEY, "wört" text)')
        c.execute("CREATE TABLE public.plain (id int PRIMARY KEY, v text DEFAULT 'a\\b')")
        c.execute('CREATE TABLE public."q""t\'" (id int PRIMARY KEY, "x\'y" text '
                  "DEFAULT 'it''s' CHECK (\"x'y\" <> ''))")
        c.execute('INSERT INTO "s ""q"""."t\'x" (c) VALUES (1)')
    path = tmp_path / "names.dcz"
    create_dump(src.dsn, None, str(path))
    with open_dump(str(path)) as r:
        items = [select.item_from(t) for t in r.tables()]
    assert len(items) == 4
    rendered = kept = 0
    with src.connect() as conn:
        for it in items:
            schema_, _, tdef = select.target_of(it, None, {})
            plain = schema.ddl_plan(tdef, schema_)
            ahead_plan = ahead.prerender(schema.ddl_plan(tdef, schema_))
            for phase in ahead.PRERENDERED:
                mine, theirs = getattr(ahead_plan, phase), getattr(plain, phase)
                assert len(mine) == len(theirs)
                for a, b in zip(mine, theirs):
                    expected = b.as_bytes(conn) if isinstance(b, sql.Composable) else b
                    if isinstance(a, bytes):
                        assert a == expected
                        rendered += 1
                    else:
                        assert a.as_bytes(conn) == expected
                        kept += 1
            # with quotes, rendered; with a backslash or non-ASCII letters, kept
            assert any(ahead_plan.create_table is s for s in ahead_plan.table)
            assert isinstance(ahead_plan.create_table, bytes) == (tdef.name == 'q"t\'')
    assert rendered >= 10 and kept >= 3
    # and the tables restore from the prepared plans
    dst = make_db()
    summary = restore_dump(dst.dsn, str(path))
    assert not summary.failed and len(summary.ok) == 4
    with dst.connect() as c:
        assert c.execute('SELECT "a""b", c FROM "s ""q"""."t\'x"').fetchone() == \
            ("it's", 1)
