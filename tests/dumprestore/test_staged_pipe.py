"""Big tables read from a pipe: staged in the stream's one pass.

A table with several chunks read from a pipe (``load -``) at ``-j 2`` is loaded into
a staging table by two connections as its chunks arrive, through a queue of a few
chunks; killed part way, ``load - --resume`` with the archive piped again loads only
the chunks not committed, and the old table stays until the swap commits.  A chunk
whose checksum fails fails its table alone; the stream goes on with the next.
"""
from __future__ import annotations

import io
import logging
import os
import re
import subprocess
import sys
import threading

import pytest

from archive_helpers import NonSeekable
from dumpcodec import create_dump, open_dump, restore_dump
from test_staged import (CHUNK, CHUNK_RE, ROWS, STAGE, _after_chunks, _committed, _content,
                         _fill, _kill, _leftovers, _terminate_clients,
                         _wait_backends_gone)

BACKEND_RE = re.compile(r"public\.big: backend (?P<pid>\d+) committed chunk (?P<k>\d+)")
PEAK_RE = re.compile(r"public\.big: staged from the stream by up to (\d+) connections, "
                     r"at most (\d+) chunks in flight")


@pytest.fixture(scope="module")
def archive(tmp_path_factory, pg_server):
    """The big table and a small one referencing it, as a plain tar (so that a test
    can find a chunk's bytes by its offset)."""
    from conftest import _create_db, _drop_db
    src = _create_db(pg_server)
    try:
        _fill(src)
        path = tmp_path_factory.mktemp("staged_pipe") / "big.tar"
        create_dump(src.dsn, ["public"], str(path), backend="tar", chunk_size=CHUNK)
        with open_dump(str(path)) as r:
            chunks = len(r.table("public.big").members)
        assert chunks >= 8
        yield path, _content(src), chunks
    finally:
        _drop_db(src)


def _pipe(path):
    return io.BufferedReader(NonSeekable(open(path, "rb")))


def _load_pipe(path, dsn, *extra):
    """``dumpcodec --debug load -`` reading the archive from a real pipe (fed by a
    thread of the test, so that ``communicate`` leaves it alone)."""
    rfd, wfd = os.pipe()
    proc = subprocess.Popen([sys.executable, "-m", "dumpcodec", "--debug", "load", "-",
                             "--dsn", dsn, "-j", "2", "--stage-larger-than", STAGE, "-q",
                             *extra], stdin=rfd, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    os.close(rfd)

    def feed():
        try:
            with open(path, "rb") as f, open(wfd, "wb") as out:
                while True:
                    block = f.read(64 << 10)
                    if not block:
                        break
                    out.write(block)
        except OSError:      # the reader was killed
            pass

    threading.Thread(target=feed, daemon=True).start()
    return proc


def test_pipe_staged_by_two_connections_equals_the_source(archive, make_db, caplog):
    path, want, total = archive
    dst = make_db()
    with caplog.at_level(logging.DEBUG, logger="dumpcodec.restore"):
        with _pipe(path) as src:
            s = restore_dump(dst.dsn, src, jobs=2, stage_larger_than=int(STAGE))
    assert s.success, s.failed
    assert {r.table_id: (r.action, r.rows) for r in s.ok} == {
        "public.big": ("created", ROWS), "public.small": ("created", 50)}
    assert _content(dst) == want
    assert _leftovers(dst) in (None, [])
    committed = [(int(k), int(pid)) for pid, k in BACKEND_RE.findall(caplog.text)]
    # every chunk once, by two server backends
    assert sorted(k for k, _ in committed) == list(range(total))
    assert len({pid for _, pid in committed}) == 2
    (workers, peak), = [tuple(map(int, m)) for m in PEAK_RE.findall(caplog.text)]
    # a queue of 2, 2 being copied, 1 waiting for a place: never more, whatever the
    # table's size (here 8 or more chunks)
    assert workers == 2 and 1 <= peak <= 5


def test_pipe_small_tables_and_j1_take_the_one_transaction_path(archive, make_db, caplog):
    path, want, total = archive
    for jobs, stage in ((2, 1 << 40), (1, int(STAGE))):
        dst = make_db()
        with caplog.at_level(logging.DEBUG, logger="dumpcodec.restore"):
            caplog.clear()
            with _pipe(path) as src:
                s = restore_dump(dst.dsn, src, jobs=jobs, stage_larger_than=stage)
        assert s.success, s.failed
        assert _content(dst) == want
        assert BACKEND_RE.findall(caplog.text) == []      # not staged


def test_pipe_resume_at_j1_stages_on_one_connection(archive, make_db, caplog):
    """``--resume`` stages from a pipe at -j1 too (so that a later resume can go on):
    one connection, the reading thread one chunk ahead."""
    path, want, total = archive
    dst = make_db()
    with caplog.at_level(logging.DEBUG, logger="dumpcodec.restore"):
        with _pipe(path) as src:
            s = restore_dump(dst.dsn, src, jobs=1, stage_larger_than=int(STAGE),
                             resume=True)
    assert s.success, s.failed
    assert _content(dst) == want
    committed = BACKEND_RE.findall(caplog.text)
    assert sorted(int(k) for _, k in committed) == list(range(total))
    assert len({pid for pid, _ in committed}) == 1
    (workers, peak), = [tuple(map(int, m)) for m in PEAK_RE.findall(caplog.text)]
    assert workers == 1 and peak <= 3


def test_pipe_killed_then_resumed_keeps_the_old_table(archive, make_db):
    """SIGKILL of the client reading stdin while chunks load: the old table is intact,
    and ``load - --resume`` loads exactly the chunks not committed before."""
    path, want, total = archive
    dst = make_db()
    dst.execute("CREATE TABLE big (id int PRIMARY KEY, v int, name text, "
                "created timestamptz); INSERT INTO big VALUES (1, -1, 'old', now())")
    proc = _load_pipe(path, dst.dsn, "--if-exists", "replace")
    assert _after_chunks(proc, 3) == 3  # with -j 2, another chunk is mid-COPY now
    _kill(proc)
    _wait_backends_gone(dst)
    committed = _committed(dst)
    assert 3 <= committed < total
    assert dst.execute("SELECT id, v, name FROM big") == [(1, -1, "old")]   # intact
    proc = _load_pipe(path, dst.dsn, "--resume", "--if-exists", "replace")
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err[-3000:]
    loaded = [int(k) for k in CHUNK_RE.findall(err)]
    assert len(loaded) == len(set(loaded)) == total - committed, (committed, loaded)
    assert _content(dst) == want
    assert _leftovers(dst) in (None, [])


def test_pipe_killed_then_resumed_from_the_file(archive, make_db):
    """The state is keyed by the table's header: a restore from a pipe that stopped
    goes on from the same archive as a file, without loading a chunk twice."""
    path, want, total = archive
    dst = make_db()
    proc = _load_pipe(path, dst.dsn)
    _after_chunks(proc, 4)
    _kill(proc)
    _wait_backends_gone(dst)
    committed = _committed(dst)
    assert 4 <= committed < total
    proc = subprocess.run([sys.executable, "-m", "dumpcodec", "--debug", "load", str(path),
                           "--dsn", dst.dsn, "-j", "2", "--stage-larger-than", STAGE, "-q",
                           "--resume"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    loaded = [int(k) for k in CHUNK_RE.findall(proc.stderr)]
    assert len(loaded) == len(set(loaded)) == total - committed, (committed, loaded)
    assert _content(dst) == want


def test_pipe_terminated_connections_reported_then_resumed(archive, make_db):
    path, want, total = archive
    dst = make_db()
    proc = _load_pipe(path, dst.dsn)
    _after_chunks(proc, 2)
    _terminate_clients(dst)
    rest = proc.stderr.read()
    proc.wait(120)
    assert proc.returncode == 1, rest[-2000:]
    # one clear line: which table, which chunk, what to do
    assert re.search(r"public\.big: chunk \d+: the connection to the server was lost "
                     r"\(.*\); the chunks committed before it are kept in the staging "
                     r"table: load --resume goes on from them", rest), rest[-2000:]
    assert dst.execute("SELECT to_regclass('public.big')") == [(None,)]
    _wait_backends_gone(dst)
    committed = _committed(dst)
    proc = _load_pipe(path, dst.dsn, "--resume", "--if-exists", "skip")
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err[-3000:]
    loaded = [int(k) for k in CHUNK_RE.findall(err)]
    assert len(loaded) == len(set(loaded)) == total - committed, (committed, loaded)
    assert _content(dst)[:6] == want[:6]


def test_pipe_corrupt_chunk_fails_its_table_only(archive, make_db, tmp_path):
    """A chunk whose bytes are not the dumped ones (its SHA-256 fails at the footer,
    after the chunks were copied): the big table fails, the old one stays, the staging
    table is dropped (its rows came from the bad chunk), and the next table loads."""
    path, want, total = archive
    with open_dump(str(path)) as r:
        m = r.table("public.big").members[5]
    data = bytearray(path.read_bytes())
    at = m.offset + 512 + m.size // 2          # a byte inside the chunk's data
    window = data[at:at + 64]
    # inside an md5 text value: still valid COPY data, rows unchanged
    pos = next(i for i in range(64) if chr(window[i]) in "0123456789abcdef"
               and all(chr(c) in "0123456789abcdef" for c in window[max(0, i - 2):i + 3]))
    data[at + pos] = ord("g") if data[at + pos] != ord("g") else ord("h")
    bad = tmp_path / "bad.tar"
    bad.write_bytes(bytes(data))
    dst = make_db()
    dst.execute("CREATE TABLE big (id int PRIMARY KEY, v int, name text, "
                "created timestamptz); INSERT INTO big VALUES (1, -1, 'old', now())")
    with _pipe(bad) as src:
        s = restore_dump(dst.dsn, src, jobs=2, stage_larger_than=int(STAGE),
                         if_exists="replace")
    failed = dict(s.failed)
    assert "SHA-256" in failed["public.big"], s.failed
    assert dst.execute("SELECT id, v, name FROM big") == [(1, -1, "old")]
    assert dst.execute("SELECT count(*) FROM small") == [(50,)]    # the stream went on
    assert _leftovers(dst) in (None, [])
    # the good archive, piped: loaded afresh
    with _pipe(path) as src:
        s = restore_dump(dst.dsn, src, jobs=2, stage_larger_than=int(STAGE),
                         if_exists="replace", resume=True)
    assert s.success, s.failed
    assert _content(dst)[0] == want[0]


def test_cli_create_pipe_load_stages_the_big_table(make_db, pg_server):
    """``dumpcodec create -j2 -o - | dumpcodec load - -j2``."""
    src, dst = make_db(), make_db()
    _fill(src)
    shell = (f"{sys.executable} -m dumpcodec create --dsn '{src.dsn}' -n public -j 2 "
             f"--chunk-size {CHUNK} --split-larger-than 1M -o - | "
             f"{sys.executable} -m dumpcodec --debug load - "
             f"--dsn '{dst.dsn}' -j 2 --stage-larger-than {STAGE} -q")
    proc = subprocess.run(shell, shell=True, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    committed = BACKEND_RE.findall(proc.stderr)
    assert len(committed) >= 8 and len({pid for pid, _ in committed}) == 2
    assert PEAK_RE.search(proc.stderr)
    assert _content(dst) == _content(src)
