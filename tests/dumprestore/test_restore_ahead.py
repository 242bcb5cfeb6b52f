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

import pytest

from dumpcodec import create_dump, open_dump, restore_dump
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
        try:
            got = {it.table_id: prep.take(it) for it in items}
        finally:
            prep.close()
    # taken in order, each after the helper began it or before: every one is either
    # prepared whole or not at all (the restore then does it)
    prepared = {t: r for t, r in got.items() if r is not None}
    assert prepared, "the helper prepared nothing"
    for table_id, ready in prepared.items():
        schema_, name, tdef = ready.target
        assert (schema_, name) == tuple(table_id.split("."))
        assert ready.plan is not None and ready.plan_for(tdef, schema_) is ready.plan
        assert ready.plan_for(tdef, "elsewhere") is None
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
