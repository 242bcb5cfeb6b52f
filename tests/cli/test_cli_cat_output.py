"""``dumpcodec cat`` output of hostile values: CSV that any reader splits into the
archive's rows (a CR is quoted), and on a terminal no control character reaches it."""
import csv
import io
import json
import os
import pty
import select
import subprocess
import sys

import pytest

from dumpcodec.archive import open_dump
from dumpcodec.cli import main
from dumpcodec.codec import Encoder

VALUES = ["plain", "carriage\rreturn", "line\nfeed", "crlf\r\nboth", "comma, quote \"",
          "\x1b[31mred\x1b[0m", "csi \x9b31m", "bidi \u202eevil", "tab\there", "é ü ✓",
          "", None]


@pytest.fixture
def archive(tmp_path):
    p = tmp_path / "v.dump"
    enc = Encoder(["int4", "text"])
    rows = [(i, v) for i, v in enumerate(VALUES)]
    with open_dump(str(p), "w") as w:
        w.set_info(client_encoding="UTF8")
        with w.add_table("public.v", None, ["id", "val\x1b[2J"], ["int4", "text"]) as tw:
            tw.write(enc.header() + enc.encode(rows) + enc.trailer())
    return str(p)


def test_csv_quotes_cr_and_reads_back_row_for_row(capsys, archive):
    assert main(["cat", archive, "public.v"]) == 0
    out = capsys.readouterr().out
    got = list(csv.reader(io.StringIO(out, newline="")))
    assert got[0] == ["id", "val\x1b[2J"]           # not a terminal: data as it is
    assert got[1:] == [[str(i), "" if v is None else v] for i, v in enumerate(VALUES)]
    assert '"carriage\rreturn"' in out


def test_jsonl_reads_back(capsys, archive):
    assert main(["cat", "--format", "jsonl", archive, "public.v"]) == 0
    docs = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [d["val\x1b[2J"] for d in docs] == VALUES


def on_a_terminal(*argv) -> bytes:
    """What ``dumpcodec argv`` writes to a terminal (a pseudo-terminal)."""
    master, slave = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "dumpcodec", *argv], stdout=slave,
                            stderr=subprocess.PIPE)
    os.close(slave)
    out = b""
    while True:
        ready, _, _ = select.select([master], [], [], 30)
        if not ready:
            break
        try:
            piece = os.read(master, 65536)
        except OSError:         # EIO: the child closed the terminal
            break
        if not piece:
            break
        out += piece
    os.close(master)
    assert proc.wait(30) == 0, proc.stderr.read()
    proc.stderr.close()
    return out


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_no_control_character_reaches_a_terminal(archive, fmt):
    out = on_a_terminal("cat", "--format", fmt, archive, "public.v")
    # the terminal turns the line ends it is sent into CR LF; nothing else may be a
    # control character: no ESC, no CSI (U+009B), no bidi override, no lone CR
    text = out.decode("utf-8").replace("\r\n", "\n")
    bad = [c for c in text if c != "\n" and not c.isprintable()]
    assert bad == []
    lines = text.splitlines()
    assert len(lines) == len(VALUES) + (1 if fmt == "csv" else 0)
    if fmt == "csv":
        assert lines[0] == "id,val\\x1b[2J"
        assert "\\x1b[31mred\\x1b[0m" in text and "carriage\\rreturn" in text
        assert "bidi \\u202eevil" in text
    else:
        # still JSON, and it reads back to the archive's values
        assert [json.loads(line)["val\x1b[2J"] for line in lines] == VALUES
