"""``dumpcodec ls | verify | cat``: output, exit codes, pipes."""
import csv
import datetime
import decimal
import io
import json
import os
import subprocess
import sys
import tarfile

import pytest

from codec_helpers import encoded_stream
from dumpcodec.archive import open_dump
from dumpcodec.cli import main

TYPES = ["int4", "text", "numeric", "date", "bytea", "float8"]
ROWS = [(1, "one", decimal.Decimal("1.10"), datetime.date(2024, 2, 29), b"\x00\xff", 1.5),
        (2, None, None, None, None, float("nan")),
        (3, 'quote " and, comma', decimal.Decimal("-0.001"), datetime.date(1, 1, 1), b"",
         float("-inf"))]


@pytest.fixture
def archive(tmp_path):
    p = tmp_path / "a.dump"
    with open_dump(str(p), "w", chunk_size=128) as w:
        w.set_info(server_version="16.2", client_encoding="UTF8")
        with w.add_table("public.things", {"version": 1}, ["id", "name", "price", "day",
                                                           "blob", "f"], TYPES) as tw:
            tw.write(encoded_stream(ROWS * 20, TYPES))
        with w.add_table("public.words", None, ["w"], ["text"], format="text") as tw:
            tw.write(b"alpha\nbe\\ttab\n\\N\n")
    return str(p)


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_ls(capsys, archive):
    code, out, err = run(capsys, "ls", archive)
    assert code == 0 and err == ""
    lines = out.splitlines()
    assert lines[0].split()[:3] == ["TABLE", "ROWS", "RAW"]
    things = lines[1].split()
    assert things[0] == "public.things" and things[1] == "60"
    assert "yes" in things and "binary" in things
    words = lines[2].split()
    assert words[0] == "public.words" and words[1] == "3" and "no" in words and "text" in words
    assert "2 tables" in lines[-1] and "server 16.2" in lines[-1]


def test_ls_json(capsys, archive):
    code, out, _ = run(capsys, "ls", "--json", archive)
    assert code == 0
    doc = json.loads(out)
    assert doc["complete"] is True and doc["backend"] == "zstd"
    assert doc["info"]["client_encoding"] == "UTF8"
    t = doc["tables"][0]
    assert t["table_id"] == "public.things" and t["rows"] == 60
    assert t["has_definition"] is True and t["definition"] == {"version": 1}
    assert len(t["members"]) > 3 and all(len(m["sha256"]) == 64 for m in t["members"])


def test_ls_incomplete_exits_2(capsys, tmp_path):
    p = tmp_path / "died.dump"
    with pytest.raises(RuntimeError):
        with open_dump(str(p), "w", backend="gzip") as w:
            w.add_table("t", None, ["i"], ["int4"]).write(encoded_stream([(1,)], ["int4"]))
            raise RuntimeError
    code, out, err = run(capsys, "ls", str(p))
    assert code == 2
    assert "INCOMPLETE" in err and "did not finish" in err
    assert "t" in out.split()       # what is there is still listed
    code, out, err = run(capsys, "ls", "--json", str(p))
    assert code == 2 and json.loads(out)["complete"] is False


def test_verify_ok_bad_incomplete(capsys, archive, tmp_path):
    code, out, err = run(capsys, "verify", archive)
    assert code == 0, err
    assert out.startswith("OK: 2 tables") and "63 rows" in out
    # a bit flip inside a data member of a plain tar
    p = tmp_path / "plain.dump"
    with open_dump(str(p), "w", backend="tar", chunk_size=128) as w:
        w.add_table("public.things", None, None, TYPES).write(encoded_stream(ROWS * 5, TYPES))
    data = bytearray(p.read_bytes())
    with tarfile.open(fileobj=io.BytesIO(bytes(data))) as tf:
        off = tf.getmember("table_000.00001.dump").offset_data
    data[off + 30] ^= 0x20
    p.write_bytes(bytes(data))
    code, out, err = run(capsys, "verify", str(p))
    assert code == 1
    assert out.startswith("BAD: ")
    lines = err.splitlines()
    assert lines and all("table_000.00001.dump" in line and "public.things" in line
                         for line in lines)
    assert any("SHA-256" in line for line in lines)
    # truncated
    p.write_bytes(bytes(data[:len(data) // 2]))
    code, out, err = run(capsys, "verify", str(p))
    assert code == 2 and out.startswith("INCOMPLETE") and "incomplete:" in err


def test_cat_csv_and_jsonl(capsys, archive):
    code, out, err = run(capsys, "cat", archive, "public.things", "--limit", "3")
    assert code == 0, err
    rows = list(csv.reader(io.StringIO(out)))
    assert rows[0] == ["id", "name", "price", "day", "blob", "f"]
    assert rows[1] == ["1", "one", "1.10", "2024-02-29", "\\x00ff", "1.5"]
    assert rows[2] == ["2", "", "", "", "", "NaN"]
    assert rows[3] == ["3", 'quote " and, comma', "-0.001", "0001-01-01", "\\x", "-Infinity"]
    assert len(rows) == 4
    code, out, _ = run(capsys, "cat", "--format", "jsonl", archive, "public.things",
                       "--limit", "2")
    docs = [json.loads(line) for line in out.splitlines()]
    assert docs[0] == {"id": 1, "name": "one", "price": "1.10", "day": "2024-02-29",
                       "blob": "\\x00ff", "f": 1.5}
    assert docs[1]["name"] is None and docs[1]["f"] == "NaN"
    code, out, _ = run(capsys, "cat", archive, "public.words", "--no-header")
    assert out == "alpha\nbe\ttab\n\"\"\n" or out.splitlines()[:2] == ["alpha", "be\ttab"]
    code, out, _ = run(capsys, "cat", "--raw", archive, "public.things", "--limit", "1",
                       "--no-header")
    assert out.split(",")[0] == "\\x00000001"


def test_cat_text_table_in_the_archives_client_encoding(capsys, tmp_path):
    p = tmp_path / "latin2.dump"
    with open_dump(str(p), "w") as w:
        w.set_info(server_version="16.2", client_encoding="LATIN2")
        with w.add_table("public.words", None, ["w"], ["text"], format="text") as tw:
            tw.write(b"z\xb1b\n\xa1\n")
    code, out, err = run(capsys, "cat", str(p), "public.words", "--no-header")
    assert code == 0, err
    assert out == "z\u0105b\n\u0104\n"
    with open(p, "rb") as f:                                 # through a pipe
        res = subprocess.run([sys.executable, "-m", "dumpcodec", "cat", "-", "public.words",
                              "--format", "jsonl"], stdin=f, capture_output=True, check=True)
    assert [json.loads(line) for line in res.stdout.splitlines()] == \
        [{"w": "z\u0105b"}, {"w": "\u0104"}]


def test_cat_unknown_table(capsys, archive):
    code, _, err = run(capsys, "cat", archive, "public.nope")
    assert code == 2
    assert "no table 'public.nope'" in err and "public.things" in err


def test_pipe_through_stdin(archive):
    env = dict(os.environ)
    cmd = [sys.executable, "-m", "dumpcodec"]
    with open(archive, "rb") as f:
        out = subprocess.run(cmd + ["cat", "-", "public.things", "--limit", "1",
                                    "--format", "jsonl"], stdin=f, capture_output=True,
                             env=env, check=True)
    assert json.loads(out.stdout)["name"] == "one"
    with open(archive, "rb") as f:
        res = subprocess.run(cmd + ["verify", "-"], stdin=f, capture_output=True, env=env)
    assert res.returncode == 0 and res.stdout.startswith(b"OK: 2 tables")
    with open(archive, "rb") as f:
        res = subprocess.run(cmd + ["ls", "-"], stdin=f, capture_output=True, env=env)
    assert res.returncode == 0 and b"public.words" in res.stdout


@pytest.mark.parametrize("command", ["ls", "verify", "cat"])
def test_help_has_examples(capsys, command):
    with pytest.raises(SystemExit) as exc:
        main([command, "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert "examples:" in out and f"dumpcodec {command} " in out
