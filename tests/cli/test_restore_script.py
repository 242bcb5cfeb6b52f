"""``load --schema-only -f FILE`` and ``load --list``: what a restore would do, with no
database.  The script, fed to psql on an empty database, must create the same tables as
``load --no-data`` does (compared through ``pg_dump --schema-only`` of both)."""
from __future__ import annotations

import os
import re
import subprocess
import sys

import psycopg
import psycopg.conninfo
import pytest

from dumpcodec import create_dump
from dumpcodec.cli import main
from dumpcodec.embedded import embedded_bin
from dumpcodec.restore.script import SCRIPT_HEADER, build_plan

PY = [sys.executable, "-m", "dumpcodec"]

RICH = """
CREATE SCHEMA app;
CREATE TYPE app.mood AS ENUM ('sad', 'ok', 'happy');
CREATE DOMAIN app.posint AS int CHECK (VALUE > 0);
CREATE TYPE app.pair AS (a int, b text);
CREATE TABLE app.people (
    id serial PRIMARY KEY, name text NOT NULL DEFAULT 'x', mood app.mood,
    n app.posint, p app.pair, created timestamptz DEFAULT now(),
    CHECK (length(name) < 100), UNIQUE (name));
COMMENT ON TABLE app.people IS 'people';
COMMENT ON COLUMN app.people.name IS 'the name';
CREATE INDEX people_lower ON app.people (lower(name)) WHERE n > 1;
CREATE TABLE app.visits (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    person int REFERENCES app.people (id) ON DELETE CASCADE, at date, mood app.mood);
CREATE TABLE public.events (k int, v text, total numeric(12,2) GENERATED ALWAYS AS (k * 2)
    STORED) PARTITION BY RANGE (k);
CREATE TABLE public.events_1 PARTITION OF public.events FOR VALUES FROM (0) TO (100);
CREATE TABLE public.events_2 PARTITION OF public.events FOR VALUES FROM (100) TO (200);
CREATE INDEX ON public.events (k);
CREATE SEQUENCE public.free_seq START 7;
INSERT INTO app.people (name, mood, n) VALUES ('a', 'ok', 2), ('b', 'sad', 3);
INSERT INTO app.visits (person, at, mood) VALUES (1, '2024-01-01', 'happy');
INSERT INTO public.events (k, v) VALUES (1, 'one'), (150, 'x');
"""


def _tool(name: str, major: int = 0) -> str:
    """The system's tool of the server's major version, else pgserver's (16)."""
    for path in (f"/usr/lib/postgresql/{major}/bin/{name}", embedded_bin(name)):
        if path and os.path.exists(path):
            return path
    pytest.skip(f"no {name} for PostgreSQL {major} here")


def _dsn(db) -> str:
    """The test database's conninfo with host and port spelled out: the tools'
    libpq may have another default socket directory than psycopg's."""
    with db.connect() as conn:
        return psycopg.conninfo.make_conninfo(db.dsn, host=conn.info.host,
                                              port=str(conn.info.port))


def _schema_of(db) -> str:
    out = subprocess.run([_tool("pg_dump", db.server.major), "--schema-only",
                          "--no-owner", "--no-privileges", "-d", _dsn(db)],
                         capture_output=True,
                         text=True, check=True, timeout=120).stdout
    # the header names versions and the database; \restrict keys are random (16.10+)
    return "\n".join(line for line in out.splitlines()
                     if not line.startswith("--") and not re.match(r"\\(un)?restrict", line)
                     and line.strip())


@pytest.fixture
def archive(db, tmp_path):
    db.execute(RICH)
    path = tmp_path / "rich.dcz"
    create_dump(db.dsn, None, str(path))
    return path


def test_script_creates_what_no_data_restore_creates(archive, make_db, tmp_path):
    restored, scripted = make_db(), make_db()
    assert main(["load", str(archive), "--dsn", restored.dsn, "--no-data", "-q"]) == 0
    p = subprocess.run(
        f"{' '.join(PY)} load {archive} --schema-only -f - | "
        f"{_tool('psql', scripted.server.major)} -X -q -v ON_ERROR_STOP=1 "
        f"-d '{_dsn(scripted)}'",
        shell=True, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    assert "ERROR" not in p.stderr
    theirs, ours = _schema_of(restored), _schema_of(scripted)
    assert "CREATE TABLE app.people" in ours and "people_lower" in ours
    assert "FOREIGN KEY (person) REFERENCES app.people(id)" in ours
    assert theirs == ours
    # no rows in either
    assert scripted.execute("SELECT count(*) FROM app.people")[0][0] == 0
    assert scripted.execute("SELECT last_value FROM public.free_seq")[0][0] == \
        restored.execute("SELECT last_value FROM public.free_seq")[0][0]


def test_script_says_it_was_not_checked_on_a_server(archive, tmp_path, capsys):
    out = tmp_path / "s.sql"
    assert main(["load", str(archive), "--schema-only", "-f", str(out)]) == 0
    text = out.read_text()
    assert text.startswith(SCRIPT_HEADER.format(source=str(archive)))
    assert "NOT CHECKED ON A SERVER" in text
    # one transaction per table, foreign keys after every table
    assert text.count("BEGIN;") == 5 and text.index("FOREIGN KEY") > text.rindex("COMMIT;")
    # -f without --schema-only: a usage error, nothing written
    assert main(["load", str(archive), "-f", str(tmp_path / "t.sql")]) == 2
    assert "add --schema-only" in capsys.readouterr().err
    assert not (tmp_path / "t.sql").exists()


def test_script_still_runs_the_static_checks(db, tmp_path, capsys):
    import dumpcodec.archive as A
    from dumpcodec.schema import capture_table
    db.execute("CREATE TABLE t (a int DEFAULT 1, b int)")
    with db.connect() as conn:
        tdef = capture_table(conn, "public", "t")
    doc = tdef.to_json()
    for col in doc["columns"]:
        if col["name"] == "a":
            col["default"] = "pg_catalog.pg_read_file('/etc/passwd')::int"
    path = tmp_path / "hostile.dcz"
    with A.open_dump(str(path), "w") as w:
        w.set_info(server_version="15", client_encoding="UTF8")
        with w.add_table("public.t", doc, ["a", "b"], ["integer", "integer"]) as tw:
            tw.write(b"PGCOPY\n\xff\r\n\x00" + b"\x00" * 8 + b"\xff\xff")
    plan = build_plan(str(path))
    assert plan.tables == [] and plan.refused[0][0] == "public.t"
    assert "pg_read_file" in plan.refused[0][1]
    assert main(["load", str(path), "--schema-only", "-f", str(tmp_path / "h.sql")]) == 1
    assert "not included: public.t" in capsys.readouterr().err
    assert "pg_read_file" in (tmp_path / "h.sql").read_text().split("NOT INCLUDED")[1]
    assert "CREATE TABLE" not in (tmp_path / "h.sql").read_text()


def test_list_in_restore_order(archive, capsys):
    assert main(["load", str(archive), "--list", "-n", "app"]) == 0
    out = capsys.readouterr().out
    lines = [l for l in out.splitlines() if not l.startswith(";")]
    assert lines[0] == "1; TABLE app.people (app.people)"
    assert "2; TABLE DATA app.people (2 rows)" in lines
    assert any(l.endswith("CONSTRAINT/INDEX app.people (3)") for l in lines)
    assert lines.index("2; TABLE DATA app.people (2 rows)") < \
        next(i for i, l in enumerate(lines) if "TABLE app.visits" in l)
    assert lines[-1].endswith("FK CONSTRAINT app.visits")
    assert not any("events" in l for l in lines)
    assert "; Tables: 2" in out
    # from a pipe too
    p = subprocess.run(f"cat {archive} | {' '.join(PY)} load - --list",
                       shell=True, capture_output=True, text=True, timeout=60)
    assert p.returncode == 0 and "TABLE public.events_2 (public.events_2)" in \
        p.stdout.replace("PARTITION public.events_2", "TABLE public.events_2")
