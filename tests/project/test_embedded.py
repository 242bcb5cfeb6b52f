"""The embedded server helper stops only a server it started itself."""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import pytest

from dumpcodec.embedded import server_running

pytest.importorskip("pgserver")


def _start(pgdata: str, cleanup: bool) -> None:
    code = ("import sys; from dumpcodec.embedded import start_embedded; "
            "start_embedded(sys.argv[1], cleanup=sys.argv[2] == '1')")
    subprocess.run([sys.executable, "-c", code, pgdata, "1" if cleanup else "0"],
                   check=True, capture_output=True, timeout=120)


def _stop(pgdata: str) -> None:
    if not server_running(pgdata):
        return
    with open(os.path.join(pgdata, "postmaster.pid")) as f:
        pid = int(f.readline())
    os.kill(pid, signal.SIGINT)                    # fast shutdown
    deadline = time.monotonic() + 60
    while server_running(pgdata) and time.monotonic() < deadline:
        time.sleep(0.1)


@pytest.fixture
def parent():
    # pgserver runs PostgreSQL as its own user when we are root: the directory must be
    # reachable for it (pytest's tmp_path is not)
    d = tempfile.mkdtemp(prefix="dumpcodec-embedded-")
    os.chmod(d, 0o755)
    dirs = []
    yield d, dirs
    for pgdata in dirs:
        _stop(pgdata)
    shutil.rmtree(d, ignore_errors=True)


def test_a_server_already_running_is_left_running(parent):
    base, dirs = parent
    pgdata = os.path.join(base, "shared")
    dirs.append(pgdata)
    _start(pgdata, cleanup=False)          # someone starts it and leaves it running
    assert server_running(pgdata)
    _start(pgdata, cleanup=True)           # a benchmark run reuses it, then exits
    assert server_running(pgdata)


def test_a_server_it_started_is_stopped_at_exit(parent):
    base, dirs = parent
    pgdata = os.path.join(base, "own")
    dirs.append(pgdata)
    _start(pgdata, cleanup=True)
    assert not server_running(pgdata)
    assert os.path.exists(os.path.join(pgdata, "PG_VERSION"))   # it did run here


def test_server_running_reads_the_pid_file(tmp_path):
    assert not server_running(str(tmp_path))                     # no pid file
    (tmp_path / "postmaster.pid").write_text("not a pid\n")
    assert not server_running(str(tmp_path))
    (tmp_path / "postmaster.pid").write_text(f"{os.getpid()}\n/data\n")
    assert server_running(str(tmp_path))
