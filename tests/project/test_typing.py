"""The public API is typed: ``mypy --strict`` passes on a small program that uses
create_dump, restore_dump, open_dump, codec.Decoder and pump.copy_out_rows
(tests/typing/api_example.py), and the types are real (a wrong use is caught)."""
from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).parents[1] / "typing"


def _mypy(tmp_path, *files):
    if importlib.util.find_spec("mypy") is None:
        pytest.fail("mypy is not installed (it is in the test extra: pip install '.[test]')")
    # --follow-imports=silent: the imported packages (ours, psycopg) give their types;
    # errors are reported for the files named here
    cmd = [sys.executable, "-m", "mypy", "--strict", "--follow-imports=silent",
           "--cache-dir", str(tmp_path / "mypy-cache"), "--no-error-summary",
           *map(str, files)]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600,
                          env=dict(os.environ, MYPYPATH=""))


def test_py_typed_is_shipped():
    import dumpcodec
    assert (Path(dumpcodec.__file__).parent / "py.typed").exists()
    assert (Path(dumpcodec.__file__).parent / "_fastcopy.pyi").exists()


def test_mypy_strict_on_the_example_and_a_wrong_use(tmp_path):
    wrong = tmp_path / "wrong_use.py"
    wrong.write_text(
        "from dumpcodec import create_dump, open_dump\n"
        "from dumpcodec import copy as codec\n"
        "summary = create_dump('', None, 'x.dcz')\n"
        "rows: str = summary.rows\n"
        "dec = codec.Decoder(['int4'])\n"
        "n: bytes = dec.feed(b'')\n"
        "with open_dump('x.dcz', 'w') as w:\n"
        "    w.tables()\n")
    p = _mypy(tmp_path, HERE / "api_example.py", wrong)
    lines = [l for l in p.stdout.splitlines() if l.strip()]
    assert not [l for l in lines if "api_example.py" in l], p.stdout
    # the wrong program: each misuse is found (the names are not Any)
    assert any("wrong_use.py:4:" in l and "int" in l for l in lines), p.stdout
    assert any("wrong_use.py:6:" in l for l in lines), p.stdout
    assert any("wrong_use.py:8:" in l and "tables" in l for l in lines), p.stdout
