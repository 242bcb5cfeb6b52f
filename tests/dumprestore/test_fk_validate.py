"""Foreign keys after all tables: each added NOT VALID and checked in a transaction of
its own, then validated on up to ``jobs`` connections at once.

A key whose validation fails is dropped again (it is reported, the table stays
restored), whatever the other keys do; a restore resumed after a stop between a key's
ADD and its validation validates it.
"""
from __future__ import annotations

from dumpcodec import create_dump, open_dump, restore_dump
from dumpcodec.restore.select import item_from
from dumpcodec.restore.staged import STATE_TABLE, data_key

SOURCE = """
CREATE TABLE parent (id int PRIMARY KEY);
CREATE TABLE good (id int PRIMARY KEY, parent_id int REFERENCES parent (id));
CREATE TABLE bad (id int PRIMARY KEY, parent_id int
    CONSTRAINT bad_parent_fkey REFERENCES parent (id));
INSERT INTO parent SELECT generate_series(1, 10);
INSERT INTO good SELECT g, g FROM generate_series(1, 10) g;
INSERT INTO bad SELECT g, g FROM generate_series(1, 10) g;
"""


def _fks(db):
    return sorted(db.execute("SELECT conname, convalidated FROM pg_constraint WHERE "
                             "contype = 'f'"))


def _archive(make_db, tmp_path, sql=SOURCE):
    src = make_db()
    src.execute(sql)
    path = tmp_path / "fk.dcz"
    create_dump(src.dsn, ["public"], str(path))
    return path


def test_a_failing_validation_drops_its_key_and_leaves_the_other(make_db, tmp_path):
    """Two keys onto an existing parent (``allow_external_fks``), validated side by
    side at -j 2: good's holds; bad's row 11 has no parent there, so bad's key is
    dropped again and reported, and bad's rows stay."""
    path = _archive(make_db, tmp_path, SOURCE.replace(
        "generate_series(1, 10);\nINSERT INTO good", "generate_series(1, 11);\n"
        "INSERT INTO good") + "INSERT INTO bad VALUES (11, 11);")
    dst = make_db()
    dst.execute("CREATE TABLE parent (id int PRIMARY KEY); "
                "INSERT INTO parent SELECT generate_series(1, 10)")
    s = restore_dump(dst.dsn, str(path), jobs=2, tables=["public.good", "public.bad"],
                     allow_external_fks=True)
    failed = dict(s.failed)
    assert set(failed) == {"public.bad"}, s.failed
    assert "foreign key bad_parent_fkey" in failed["public.bad"]
    assert "violates foreign key constraint" in failed["public.bad"]
    assert _fks(dst) == [("good_parent_id_fkey", True)]     # none left NOT VALID
    assert {r.table_id for r in s.ok} == {"public.good", "public.bad"}
    assert dst.execute("SELECT count(*) FROM bad") == [(11,)]


def test_resume_validates_a_key_left_not_valid(make_db, tmp_path):
    path = _archive(make_db, tmp_path)
    dst = make_db()
    assert restore_dump(dst.dsn, str(path), jobs=2).success
    # as a restore stopped between a key's ADD (committed) and its validation leaves
    # it: every table recorded as done, the key NOT VALID
    dst.execute("ALTER TABLE bad DROP CONSTRAINT bad_parent_fkey; ALTER TABLE bad ADD "
                "CONSTRAINT bad_parent_fkey FOREIGN KEY (parent_id) REFERENCES parent (id) "
                "NOT VALID")
    dst.execute(f"CREATE TABLE {STATE_TABLE} (target text NOT NULL, key text NOT NULL, "
                f"chunk integer NOT NULL, sha256 text, rows bigint, "
                f"PRIMARY KEY (target, key, chunk))")
    with open_dump(str(path)) as r:
        for t in r.tables():
            item = item_from(t)
            dst.execute(f"INSERT INTO {STATE_TABLE} VALUES (%s, %s, -1, NULL, 10)",
                        (f'"public"."{item.definition.name}"', data_key(item)))
    assert _fks(dst) == [("bad_parent_fkey", False), ("good_parent_id_fkey", True)]
    # (skip: with every table there, "error" would refuse the restore up front)
    s = restore_dump(dst.dsn, str(path), jobs=2, resume=True, if_exists="skip")
    assert s.success, s.failed
    assert {r.action for r in s.ok} == {"resumed"}
    assert _fks(dst) == [("bad_parent_fkey", True), ("good_parent_id_fkey", True)]
