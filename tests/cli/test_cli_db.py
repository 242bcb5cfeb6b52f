"""``dumpcodec create`` / ``dumpcodec load`` as a user runs them: subprocesses, pipes."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from dumpcodec.cli import main
from dumpcodec.cli.db_cmds import parse_size

PY = [sys.executable, "-m", "dumpcodec"]


def _setup(db):
    db.execute("""
        CREATE TABLE a (id serial PRIMARY KEY, v text);
        CREATE TABLE b (id int PRIMARY KEY REFERENCES a(id), w numeric);
        INSERT INTO a (v) SELECT 'v' || g FROM generate_series(1, 2000) g;
        INSERT INTO b SELECT g, g / 3.0 FROM generate_series(1, 1000) g;
    """)


def _digest(db, table):
    return db.execute(f"SELECT count(*), md5(string_agg(t::text, ',' ORDER BY t::text)) "
                      f"FROM {table} t")[0]


def test_parse_size():
    assert parse_size("64M") == 64 << 20
    assert parse_size("1GiB") == 1 << 30
    assert parse_size("4096") == 4096
    with pytest.raises(Exception):
        parse_size("lots")


def test_pipe_create_to_load(db, make_db):
    _setup(db)
    target = make_db()
    cmd = (f"{' '.join(PY)} create --dsn '{db.dsn}' -o - -q | "
           f"{' '.join(PY)} load - --dsn '{target.dsn}' -j 2")
    p = subprocess.run(cmd, shell=True, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    assert "restored 2 tables, 3000 rows" in p.stderr
    for t in ("a", "b"):
        assert _digest(db, t) == _digest(target, t)
    # the foreign key came along
    assert target.execute("SELECT count(*) FROM pg_constraint WHERE contype = 'f'")[0][0] == 1


def test_libpq_environment_and_exit_status(db, make_db, tmp_path):
    import psycopg.conninfo
    _setup(db)
    params = psycopg.conninfo.conninfo_to_dict(db.dsn)
    env = dict(os.environ)
    for key, var in (("host", "PGHOST"), ("port", "PGPORT"), ("user", "PGUSER"),
                     ("dbname", "PGDATABASE"), ("password", "PGPASSWORD")):
        if key in params:
            env[var] = str(params[key])
    out = tmp_path / "e.dcz"
    p = subprocess.run(PY + ["create", "-t", "public.a", "-t", "b", "-o", str(out),
                             "--compress", "gzip", "--chunk-size", "16K"],
                       env=env, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    assert "dumped 2 tables, 3000 rows" in p.stderr
    target = make_db()
    target.execute("CREATE TABLE b (x int)")          # conflicts: b fails, a restores
    p = subprocess.run(PY + ["load", str(out), "--dsn", target.dsn],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 1, p.stderr
    assert "FAILED (1)" in p.stderr and "public.b" in p.stderr
    assert _digest(db, "a") == _digest(target, "a")
    # a bad selector: usage/input error, nothing written
    bad = tmp_path / "bad.dcz"
    p = subprocess.run(PY + ["create", "--dsn", db.dsn, "-t", "nope", "-o", str(bad)],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 2 and "nope" in p.stderr and "Traceback" not in p.stderr
    assert not bad.exists()


def test_cli_in_process_options(db, make_db, tmp_path, capsys):
    _setup(db)
    out = str(tmp_path / "w.dcz")
    rc = main(["create", "--dsn", db.dsn, "-t", "a", "-o", out, "--where", "a=id <= 5",
               "--columns", "a=id,v", "--compress", "none"])
    assert rc == 0
    target = make_db()
    rc = main(["load", out, "--dsn", target.dsn, "--target-schema", "x", "--no-indexes"])
    assert rc == 0
    assert target.execute("SELECT count(*) FROM x.a")[0][0] == 5
    assert target.execute("SELECT count(*) FROM pg_indexes WHERE schemaname = 'x'")[0][0] == 0
    with pytest.raises(SystemExit) as exc:
        main(["load", out, "--if-exists", "bogus"])
    assert exc.value.code == 2


def test_help_has_examples(capsys):
    for cmd in ("create", "load", "demo"):
        with pytest.raises(SystemExit):
            main([cmd, "--help"])
        assert "examples:" in capsys.readouterr().out
