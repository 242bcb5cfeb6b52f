"""``--json`` on create, load and verify: real output validated against the documented
JSON Schema (docs/report.schema.json, described in docs/JSON.md)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest

from dumpcodec import create_dump, restore_dump
from dumpcodec.cli import main
from dumpcodec.report import REPORT_VERSION

SCHEMA = json.loads((Path(__file__).parents[2] / "docs" / "report.schema.json")
                    .read_text())
PY = [sys.executable, "-m", "dumpcodec"]


def _valid(doc: dict) -> dict:
    jsonschema.validate(doc, SCHEMA, cls=jsonschema.Draft202012Validator)
    return doc


def _run(*argv, code=None):
    p = subprocess.run(PY + list(argv), capture_output=True, text=True, timeout=120)
    if code is not None:
        assert p.returncode == code, p.stderr
    return p.returncode, json.loads(p.stdout), p.stderr


def _setup(db):
    db.execute("""
        CREATE TABLE a (id serial PRIMARY KEY, v text);
        CREATE TABLE b (id int PRIMARY KEY REFERENCES a(id), w numeric);
        INSERT INTO a (v) SELECT 'v' || g FROM generate_series(1, 300) g;
        INSERT INTO b SELECT g, g / 3.0 FROM generate_series(1, 100) g;
    """)


def test_the_schema_is_a_valid_schema_and_catches_a_wrong_document():
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    assert SCHEMA["properties"]["version"]["const"] == REPORT_VERSION
    bad = {"report": "dumpcodec", "version": 1, "command": "load", "ok": True,
           "error": None, "seconds": 1.0, "pump": "libpq",
           "totals": {"tables": 1, "ok": 1, "failed": 0, "skipped": 0, "rows": 1,
                      "bytes": 1},
           "tables": [{"table_id": "t", "status": "done", "reason": None, "rows": 1,
                       "bytes": 1, "seconds": 0.1}], "warnings": []}
    with pytest.raises(jsonschema.ValidationError, match="'done' is not one of"):
        _valid(bad)


def test_create_load_verify_json(db, make_db, tmp_path):
    _setup(db)
    out = tmp_path / "j.dcz"
    rc, doc, err = _run("create", "--dsn", db.dsn, "-o", str(out), "--json", code=0)
    _valid(doc)
    assert err == ""                         # no progress, no summary, no warnings
    assert doc["command"] == "create" and doc["ok"] and doc["error"] is None
    assert {t["table_id"]: t["rows"] for t in doc["tables"]} == {"public.a": 300,
                                                                   "public.b": 100}
    assert doc["totals"]["rows"] == 400 and doc["archive"] == str(out.resolve())
    assert doc["archive_bytes"] == out.stat().st_size

    rc, doc, _ = _run("verify", str(out), "--json", code=0)
    _valid(doc)
    assert doc["ok"] and doc["verify"]["rows"] == 400 and doc["verify"]["complete"]
    assert [t["status"] for t in doc["tables"]] == ["ok", "ok"]

    target = make_db()
    target.execute("CREATE TABLE b (x int)")           # b fails, a restores
    rc, doc, _ = _run("load", str(out), "--dsn", target.dsn, "--json", code=1)
    _valid(doc)
    rows = {t["table_id"]: t for t in doc["tables"]}
    assert not doc["ok"] and doc["error"] is None
    assert rows["public.a"]["status"] == "ok" and rows["public.a"]["rows"] == 300
    assert rows["public.a"]["action"] == "created"
    assert rows["public.b"]["status"] == "failed"
    assert "already exists" in rows["public.b"]["reason"]
    assert doc["totals"] == {"tables": 2, "ok": 1, "failed": 1, "skipped": 0,
                             "rows": 300, "bytes": rows["public.a"]["bytes"]}

    # skipped, with the reason
    rc, doc, _ = _run("load", str(out), "--dsn", target.dsn, "--json",
                      "--if-exists", "skip", "-t", "public.a", code=0)
    _valid(doc)
    assert [(t["table_id"], t["status"]) for t in doc["tables"]] == [("public.a",
                                                                      "skipped")]


def test_bad_archive_and_errors_are_reports_too(db, tmp_path):
    _setup(db)
    out = tmp_path / "j.dcz"
    create_dump(db.dsn, None, str(out), backend=None)    # a plain tar: easy to corrupt
    data = bytearray(out.read_bytes())
    at = data.index(b"PGCOPY\n\xff\r\n\x00") + 40
    data[at] ^= 0xFF
    bad = tmp_path / "bad.dcz"
    bad.write_bytes(bytes(data))
    rc, doc, _ = _run("verify", str(bad), "--json", code=1)
    _valid(doc)
    failed = [t for t in doc["tables"] if t["status"] == "failed"]
    assert len(failed) == 1 and "sha-256" in failed[0]["reason"].lower()
    assert doc["verify"]["problems"] and not doc["ok"]

    cut = tmp_path / "cut.dcz"
    cut.write_bytes(bytes(data[:len(data) // 2]))
    rc, doc, _ = _run("verify", str(cut), "--json", code=2)
    _valid(doc)
    assert not doc["verify"]["complete"] and doc["error"]

    # an error before any table: a report with the one-line message
    rc, doc, err = _run("create", "--dsn", db.dsn, "-t", "nope", "-o",
                        str(tmp_path / "x.dcz"), "--json", code=2)
    _valid(doc)
    assert not doc["ok"] and "nope" in doc["error"] and doc["tables"] == []
    rc, doc, _ = _run("load", str(tmp_path / "missing.dcz"), "--json", code=2)
    _valid(doc)
    assert doc["command"] == "load" and "missing.dcz" in doc["error"]


def test_library_to_dict(db, make_db, tmp_path):
    _setup(db)
    out = str(tmp_path / "l.dcz")
    dumped = create_dump(db.dsn, ["a"], out)
    assert _valid(dumped.to_dict())["tables"][0]["table_id"] == "public.a"
    restored = restore_dump(make_db().dsn, out)
    doc = _valid(restored.to_dict())
    assert doc["ok"] and doc["tables"][0]["target"] == "public.a"
    assert json.loads(json.dumps(doc)) == doc
    # -o - writes the archive on stdout: no room for the report there
    rc = main(["create", "--dsn", db.dsn, "-o", "-", "--json"])
    assert rc == 2
