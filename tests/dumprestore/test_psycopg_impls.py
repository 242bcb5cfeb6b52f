"""The libpq pump and the command line with each psycopg implementation installed:
``python`` (psycopg's ctypes binding of the system libpq), ``binary`` (psycopg[binary],
its own libpq bundled: what ``dumpcodec[binary]`` installs) and ``c`` (psycopg[c],
built against the system libpq) when present.  Each runs in a subprocess with
``PSYCOPG_IMPL`` set, as a user's process would."""
from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys

import pytest

PY = [sys.executable, "-m", "dumpcodec"]

# where the pump must find libpq for each implementation (dumpcodec/pump.py)
EXPECTED = {"python": "psycopg ctypes libpq", "binary": "libpq linked by psycopg_binary.pq",
            "c": "libpq linked by psycopg_c.pq"}
INSTALLED = ["python"] + [impl for impl, mod in (("binary", "psycopg_binary"),
                                                 ("c", "psycopg_c"))
                          if importlib.util.find_spec(mod) is not None]


def test_binary_is_installed_with_the_test_extra():
    # psycopg[binary] is what dumpcodec[binary] brings; the test extra has it so that
    # this path is tested wherever the suite runs
    assert "binary" in INSTALLED


@pytest.mark.parametrize("impl", INSTALLED)
def test_pump_finds_libpq_and_cli_round_trip(impl, db, make_db, tmp_path):
    env = dict(os.environ, PSYCOPG_IMPL=impl)
    env.pop("DUMPCODEC_PUMP", None)
    probe = subprocess.run(
        [sys.executable, "-c", "import json, psycopg, dumpcodec.pump as p; print(json.dumps("
         "[psycopg.pq.__impl__, p.PUMP, p.PUMP_DETAIL]))"],
        env=env, capture_output=True, text=True, timeout=60)
    assert probe.returncode == 0, probe.stderr
    assert json.loads(probe.stdout) == [impl, "libpq", EXPECTED[impl]]

    db.execute("CREATE TABLE t (id bigint PRIMARY KEY, v text, n numeric);"
               "INSERT INTO t SELECT g, repeat('x', g % 50), g / 7.0 "
               "FROM generate_series(1, 20000) g")
    target = make_db()
    cmd = (f"{' '.join(PY)} create --dsn '{db.dsn}' -o - -q -j 2 | "
           f"{' '.join(PY)} load - --dsn '{target.dsn}' --json")
    p = subprocess.run(cmd, shell=True, env=env, capture_output=True, text=True,
                       timeout=180)
    assert p.returncode == 0, p.stderr
    report = json.loads(p.stdout)
    assert report["pump"] == "libpq" and report["totals"]["rows"] == 20000
    digest = "SELECT md5(string_agg(t::text, ',' ORDER BY id)) FROM t"
    assert db.execute(digest) == target.execute(digest)
