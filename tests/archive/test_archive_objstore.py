"""Archives at URLs (dumpcodec.archive.remote): memory:// and s3:// against moto's
S3 server on loopback (tests/objstore_helpers.py): ranged reads, atomic uploads,
retries, failures that leave no object, errors without credentials."""
from __future__ import annotations

import os
import uuid

import pytest

import s3fs  # noqa: E402,F401  (the test extra brings it: a missing one fails, never skips)
import moto  # noqa: E402,F401

from dumpcodec.archive import open_dump                          # noqa: E402
from dumpcodec.archive import remote                             # noqa: E402
from dumpcodec.copy import Encoder                               # noqa: E402
from dumpcodec.errors import StorageError                        # noqa: E402
from objstore_helpers import SECRET_KEY, S3Server                # noqa: E402

# a quick failure where a test wants one: 2 attempts, not the default 5
FAST_FAIL = {"config_kwargs": {"retries": {"max_attempts": 2, "mode": "standard"},
                               "connect_timeout": 2, "read_timeout": 10}}


@pytest.fixture(scope="module")
def s3():
    server = S3Server().start()
    saved = {k: v for k, v in os.environ.items() if k.startswith("AWS_")}
    for k in saved:
        del os.environ[k]
    os.environ.update(server.env())
    server.client().create_bucket(Bucket="arch")
    yield server
    server.stop()
    for k in server.env():
        os.environ.pop(k, None)
    os.environ.update(saved)


@pytest.fixture(autouse=True)
def _no_faults(request):
    yield
    if "s3" in request.fixturenames:
        server = request.getfixturevalue("s3")
        server.fail = None


def _key() -> str:
    return f"t/{uuid.uuid4().hex[:10]}.dcz"


def _objects(server, prefix="t/"):
    out = server.client().list_objects_v2(Bucket="arch", Prefix=prefix)
    return [o["Key"] for o in out.get("Contents", [])]


def _write(url, tables, chunk_size=1 << 16, backend="zstd", **kw):
    """An archive at ``url``: ``tables`` {table_id: rows of (int, bytes)}."""
    with open_dump(url, "w", backend=backend, chunk_size=chunk_size, **kw) as w:
        w.set_info(server_version="16.0", client_encoding="UTF8")
        for tid, rows in tables.items():
            with w.add_table(tid, None, ["id", "b"], ["int4", "bytea"]) as t:
                enc = Encoder(["int4", "bytea"])
                t.write(enc.header())
                for i in range(0, len(rows), 100):
                    t.write(enc.encode(rows[i:i + 100]))
                t.write(enc.trailer())


def _rows(n, size=1000, seed=0):
    rnd = __import__("random").Random(seed)
    return [(i, rnd.randbytes(size)) for i in range(n)]


# -- URLs, options, secrets --------------------------------------------------------------

def test_url_recognition_and_options():
    assert remote.is_url("s3://b/k") and remote.is_url("memory://x/y")
    assert not remote.is_url("backup.dcz") and not remote.is_url("-")
    assert not remote.is_url("/tmp/a://b") and not remote.is_url(b"plain")
    assert remote.local_path("file:///tmp/x.dcz") == "/tmp/x.dcz"
    assert remote.local_path("s3://b/k") is None
    assert remote.shown_url("s3://AKIA:sekrit@bucket/k?X-Amz-Signature=abc") == \
        "s3://bucket/k"
    opts = remote.storage_options_from(["anon=false", "client_kwargs.region_name=eu-1",
                                        "endpoint_url=http://127.0.0.1:9"])
    assert opts == {"anon": False, "client_kwargs": {"region_name": "eu-1"},
                    "endpoint_url": "http://127.0.0.1:9"}
    with pytest.raises(ValueError, match="KEY=VALUE") as ei:
        remote.parse_storage_option("hunter22")      # a secret typed without its key
    assert "hunter22" not in str(ei.value)
    assert "hunter22" not in remote.scrub("x hunter22 y", {"secret": "hunter22"})
    assert "hunter22" not in remote.scrub("x hunter22", {"client_kwargs": {
        "aws_secret_access_key": "hunter22"}})


def test_plain_path_does_not_import_fsspec(tmp_path):
    import subprocess
    import sys
    code = ("import sys, dumpcodec.archive as a, dumpcodec.dump, dumpcodec.restore\n"
            "from dumpcodec.cli import build_parser; build_parser()\n"
            f"w = a.open_dump({str(tmp_path / 'x.dcz')!r}, 'w'); w.close()\n"
            f"r = a.open_dump({str(tmp_path / 'x.dcz')!r}); r.tables(); r.close()\n"
            "assert 'fsspec' not in sys.modules, 'fsspec imported'\n"
            "assert 'dumpcodec.archive.remote' not in sys.modules\n")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr


def test_missing_filesystem_names_the_extra():
    with pytest.raises(StorageError, match=r"nosuchfs://b/k: .*not installed|"
                                           r"nosuchfs://b/k: .*nosuchfs"):
        open_dump("nosuchfs://b/k")


# -- memory:// ------------------------------------------------------------------------------

def test_memory_round_trip_and_failed_write_leaves_nothing():
    import fsspec
    fs = fsspec.filesystem("memory")
    url = f"memory://arch/{uuid.uuid4().hex}.dcz"
    tables = {"public.a": _rows(300), "public.b": _rows(50, seed=1)}
    _write(url, tables)
    with open_dump(url) as r:
        assert [t.table_id for t in r.tables()] == ["public.a", "public.b"]
        assert len(r.table("public.a").members) > 3
        got = [(i, bytes(b)) for i, b in r.read_rows("public.a")]
        assert got == tables["public.a"]
        assert r.verify().ok
    before = fs.cat(url)
    # a failing writer: the old object stays as it was, nothing else appears
    with pytest.raises(RuntimeError):
        with open_dump(url, "w") as w:
            w.set_info(server_version="16.0", client_encoding="UTF8")
            with w.add_table("public.a", None, ["id"], ["int4"]) as t:
                t.write(Encoder(["int4"]).header())
                raise RuntimeError("the dump failed")
    assert fs.cat(url) == before
    assert [p for p in fs.ls(os.path.dirname(url[len("memory:/"):]), detail=False)
            if "partial" in p] == []


# -- s3:// against moto ---------------------------------------------------------------------

def test_s3_round_trip_ranged_reads(s3):
    url = f"s3://arch/{_key()}"
    tables = {"public.small": _rows(20), "public.big": _rows(3000, size=4000, seed=2)}
    _write(url, tables, chunk_size=1 << 20)
    size = s3.client().head_object(Bucket="arch", Key=url[len("s3://arch/"):])[
        "ContentLength"]
    assert size > 10 << 20
    # ls: the locator and the manifest, not the data
    s3.sent = 0
    with open_dump(url) as r:
        infos = r.tables()
        assert [t.table_id for t in infos] == ["public.small", "public.big"]
        assert r.complete
        ls_bytes = s3.sent
        assert ls_bytes < size // 100, (ls_bytes, size)
        # one small table: its members only
        s3.sent = 0
        assert [(i, bytes(b)) for i, b in r.read_rows("public.small")] == \
            tables["public.small"]
        assert s3.sent < size // 100
        # a whole table streams in large requests
        s3.sent = 0
        n = sum(1 for _ in r.read_rows("public.big"))
        assert n == 3000 and s3.sent >= 0.9 * r.table("public.big").compressed_size
        assert r._raw.requests < 60
    # members in parallel: one reader each, both complete
    import threading
    results = {}

    def part(k):
        with open_dump(url) as r2:
            m = r2.table("public.big").members
            results[k] = [i for i, _ in r2.read_members("public.big",
                                                         range(k, len(m), 2))]
    threads = [threading.Thread(target=part, args=(k,)) for k in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with open_dump(url) as r:
        total = len(r.table("public.big").members)
    assert sorted(results[0] + results[1]) == list(range(total))


def test_s3_writer_failure_aborts_upload(s3):
    key = _key()
    url = f"s3://arch/{key}"
    with pytest.raises(RuntimeError):
        with open_dump(url, "w", storage_options={"part_size": 5 << 20}) as w:
            w.set_info(server_version="16.0", client_encoding="UTF8")
            with w.add_table("public.a", None, ["id", "b"], ["int4", "bytea"]) as t:
                enc = Encoder(["int4", "bytea"])
                t.write(enc.header())
                for i in range(0, 12000, 100):   # > 2 parts of random data
                    t.write(enc.encode(_rows(100, size=1000, seed=i)))
                raise RuntimeError("interrupted")
    assert key not in _objects(s3)
    ups = s3.client().list_multipart_uploads(Bucket="arch").get("Uploads", [])
    assert [u for u in ups if u["Key"] == key] == []


def test_s3_transient_500_is_retried(s3):
    key = _key()
    seen = {"n": 0}

    def flaky(environ):
        if "partNumber=2" in environ.get("QUERY_STRING", "") and seen["n"] < 2:
            seen["n"] += 1
            return "500"
        return None
    s3.fail = flaky
    tables = {"public.a": _rows(12000, size=1000, seed=5)}
    _write(f"s3://arch/{key}", tables, storage_options={"part_size": 5 << 20})
    assert seen["n"] == 2
    s3.fail = None
    with open_dump(f"s3://arch/{key}") as r:
        assert r.verify().ok


def test_s3_persistent_500_fails_cleanly_without_object(s3):
    key = _key()
    s3.fail = lambda env: "500" if "partNumber=2" in env.get("QUERY_STRING", "") else None
    with pytest.raises(StorageError) as ei:
        _write(f"s3://arch/{key}", {"public.a": _rows(12000, size=1000, seed=6)},
               storage_options=dict(FAST_FAIL, part_size=5 << 20))
    msg = str(ei.value)
    assert "\n" not in msg and f"s3://arch/{key}" in msg and "upload" in msg
    assert SECRET_KEY not in msg
    s3.fail = None
    assert key not in _objects(s3)


def test_s3_server_killed_mid_upload(s3):
    key = _key()
    port = s3.port
    s3.fail = lambda env: "kill" if "partNumber=2" in env.get("QUERY_STRING", "") else None
    try:
        with pytest.raises(StorageError) as ei:
            _write(f"s3://arch/{key}", {"public.a": _rows(12000, size=1000, seed=7)},
                   storage_options=dict(FAST_FAIL, part_size=5 << 20))
        assert f"s3://arch/{key}" in str(ei.value)
    finally:
        s3.fail = None
        s3.stop()
        s3.port = port
        s3.start()          # moto's state lives in this process: the same buckets
    assert key not in _objects(s3)


def test_s3_download_cut_is_retried(s3):
    key = _key()
    tables = {"public.a": _rows(2000, size=1000, seed=8)}
    _write(f"s3://arch/{key}", tables)
    cuts = {"n": 0}

    def cut(environ):
        if environ["REQUEST_METHOD"] == "GET" and environ.get("HTTP_RANGE") \
                and cuts["n"] < 1 and not environ["HTTP_RANGE"].endswith("-"):
            start = int(environ["HTTP_RANGE"].split("=")[1].split("-")[0])
            if start == 0:
                return None
            cuts["n"] += 1
            return "cut"
        return None
    with open_dump(f"s3://arch/{key}") as r:
        r.tables()
        s3.fail = cut
        got = [(i, bytes(b)) for i, b in r.read_rows("public.a")]
    assert cuts["n"] == 1
    assert got == tables["public.a"]


def test_errors_name_url_in_one_line_without_secret(s3):
    with pytest.raises(StorageError) as ei:
        open_dump("s3://arch/t/no-such-object.dcz")
    msg = str(ei.value)
    assert msg.startswith("s3://arch/t/no-such-object.dcz: ") and "not found" in msg
    with pytest.raises(StorageError) as ei:
        open_dump("s3://no-such-bucket-x/k.dcz", "w").close()
    msg = str(ei.value)
    assert "\n" not in msg and "s3://no-such-bucket-x/k.dcz" in msg
    assert SECRET_KEY not in msg and "bucket does not exist" in msg
    # a secret given as a storage option is masked too
    sec = "opt-SECRET-value-987"
    with pytest.raises(StorageError) as ei:
        open_dump("s3://no-such-bucket-x/k.dcz",
                  storage_options={"secret": sec, "key": "AKIAOTHERKEY00000000",
                                   "endpoint_url": s3.endpoint + "/" + sec})
    assert sec not in str(ei.value)


def test_upload_thread_failure_reaches_the_writer(monkeypatch):
    """The upload thread fails while the queue is full (or while the end is being
    queued): the writer's next write or commit raises it, never waits forever."""
    import time

    class File:
        def write(self, b):
            time.sleep(0.2)
            raise OSError("injected 503 Slow Down")

        def discard(self):
            pass

    class FS:
        protocol = ("s3", "s3a")

        def open(self, *a, **k):
            return File()

    monkeypatch.setattr(remote, "filesystem", lambda url, opts=None: (FS(), "b/k"))
    for blocks in (1, 40):
        d = remote.RemoteDestination("s3://b/k", {"part_size": 5 << 20})
        d.open()
        with pytest.raises(StorageError, match=r"^s3://b/k: upload failed: OSError: "
                                               r"injected 503"):
            for _ in range(blocks):
                d.write(b"x" * (1 << 20))
            d.commit()
        d.discard()
        assert not d._thread.is_alive()


def test_writer_dropped_without_close_leaves_nothing():
    import gc
    import fsspec
    url = f"memory://arch/{uuid.uuid4().hex}.dcz"
    w = open_dump(url, "w")
    w.set_info(server_version="16.0", client_encoding="UTF8")
    del w
    gc.collect()
    assert not fsspec.filesystem("memory").exists(url)
