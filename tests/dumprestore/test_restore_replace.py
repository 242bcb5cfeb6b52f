"""--if-exists replace of a table that other tables reference."""
from dumpcodec import create_dump, restore_dump


def _fks(db):
    return db.execute("SELECT conrelid::regclass::text, conname FROM pg_constraint "
                      "WHERE contype = 'f' ORDER BY 1, 2")


def test_replace_a_referenced_table_keeps_the_other_tables_keys(db, make_db, tmp_path):
    db.execute("CREATE TABLE items (id int PRIMARY KEY, sku text);"
               "INSERT INTO items SELECT g, 's' || g FROM generate_series(1, 10) g")
    path = tmp_path / "items.dcz"
    create_dump(db.dsn, ["public.items"], str(path))

    dst = make_db()
    dst.execute("CREATE TABLE items (id int PRIMARY KEY, sku text);"
                "INSERT INTO items SELECT g, 'old' FROM generate_series(1, 5) g;"
                "CREATE TABLE orders (id int, item int REFERENCES items (id));"
                "INSERT INTO orders VALUES (1, 3), (2, 5)")
    summary = restore_dump(dst.dsn, str(path), if_exists="replace")
    assert summary.failed == []
    assert dst.execute("SELECT count(*), min(sku) FROM items") == [(10, "s1")]
    assert _fks(dst) == [("orders", "orders_item_fkey")]
    # the key is really back: it refuses an order for a missing item
    with dst.connect() as c:
        try:
            c.execute("INSERT INTO orders VALUES (3, 99)")
        except Exception as exc:
            assert "orders_item_fkey" in str(exc)
        else:
            raise AssertionError("the foreign key was not re-added")


def test_replace_that_breaks_a_reference_keeps_the_old_table(db, make_db, tmp_path):
    db.execute("CREATE TABLE items (id int PRIMARY KEY, sku text);"
               "INSERT INTO items VALUES (1, 'new')")
    path = tmp_path / "items.dcz"
    create_dump(db.dsn, ["public.items"], str(path))

    dst = make_db()
    dst.execute("CREATE TABLE items (id int PRIMARY KEY, sku text);"
                "INSERT INTO items VALUES (1, 'old'), (2, 'old');"
                "CREATE TABLE orders (id int, item int REFERENCES items (id));"
                "INSERT INTO orders VALUES (1, 2)")          # item 2 is not in the dump
    summary = restore_dump(dst.dsn, str(path), if_exists="replace")
    assert [f[0] for f in summary.failed] == ["public.items"]
    assert dst.execute("SELECT id, sku FROM items ORDER BY id") == [(1, "old"), (2, "old")]
    assert _fks(dst) == [("orders", "orders_item_fkey")]


def test_cli_error_for_an_unreachable_server_is_one_line(db, tmp_path):
    import subprocess
    import sys
    db.execute("CREATE TABLE t (a int)")
    path = tmp_path / "t.dcz"
    create_dump(db.dsn, ["public.t"], str(path))
    proc = subprocess.run([sys.executable, "-m", "dumpcodec", "load", str(path), "--dsn",
                           f"host={tmp_path} dbname=none connect_timeout=2"],
                          capture_output=True)
    err = proc.stderr.decode()
    assert proc.returncode != 0
    # libpq's message has two lines; the CLI prints one
    assert "connection" in err and "Is the server running" in err, err
    assert err.count("\n") == 1 and err.startswith("dumpcodec load: error:"), err
    assert "Traceback" not in err


def test_load_no_analyze(db, make_db, tmp_path):
    import subprocess
    import sys
    db.execute("CREATE TABLE t (a int); INSERT INTO t SELECT generate_series(1, 100)")
    path = tmp_path / "t.dcz"
    create_dump(db.dsn, ["public.t"], str(path))
    for flag, expect_analyzed in (["--no-analyze"], False), ([], True):
        dst = make_db()
        proc = subprocess.run([sys.executable, "-m", "dumpcodec", "load", str(path),
                               "--dsn", dst.dsn, "-q", *flag], capture_output=True)
        assert proc.returncode == 0, proc.stderr
        # pg_class.reltuples stays -1 (never analyzed) without ANALYZE
        (reltuples,), = dst.execute("SELECT reltuples FROM pg_class WHERE relname = 't'")
        assert (reltuples == 100) == expect_analyzed, (flag, reltuples)
