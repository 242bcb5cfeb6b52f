"""``dumpcodec create -o s3://...`` and ``load | ls | verify | cat s3://...`` as a user
runs them (subprocesses configured by the AWS environment, AWS_ENDPOINT_URL
included), against moto's S3 server on loopback: the same results as through a local
file, a failed download that leaves the old table intact, bounded client memory,
no credentials in any output."""
from __future__ import annotations

import json
import subprocess
import sys
import uuid

import pytest

import s3fs  # noqa: E402,F401  (the test extra brings it: a missing one fails, never skips)
import moto  # noqa: E402,F401

from objstore_helpers import SECRET_KEY, S3Server, clean_env, free_port  # noqa: E402

PY = [sys.executable, "-m", "dumpcodec"]


@pytest.fixture(scope="module")
def s3():
    server = S3Server().start()
    server.client().create_bucket(Bucket="cli")
    yield server
    server.stop()


def run(s3, *args, check=True, extra_env=None, timeout=300):
    env = clean_env(s3)
    env.update(extra_env or {})
    env = {k: v for k, v in env.items() if v is not None}
    p = subprocess.run([*PY, *args], capture_output=True, text=True, env=env,
                       timeout=timeout)
    if check:
        assert p.returncode == 0, p.stderr
    assert SECRET_KEY not in p.stdout + p.stderr
    return p


def _digest(db, table):
    return db.execute(f"SELECT count(*), md5(string_agg(t::text, ',' ORDER BY t::text)) "
                      f"FROM {table} t")[0]


def _setup(db):
    db.execute("""
        CREATE TABLE a (id serial PRIMARY KEY, v text, n numeric);
        CREATE TABLE b (id int PRIMARY KEY REFERENCES a(id), w text);
        INSERT INTO a (v, n) SELECT md5(g::text) || repeat('x', g % 50), g / 7.0
            FROM generate_series(1, 20000) g;
        INSERT INTO b SELECT g, 'w' || g FROM generate_series(1, 500) g;
    """)


def _key():
    return f"k/{uuid.uuid4().hex[:10]}.dcz"


def test_create_ls_verify_cat_load_equal_to_local(s3, db, make_db, tmp_path):
    _setup(db)
    url = f"s3://cli/{_key()}"
    local = str(tmp_path / "local.dcz")
    for out in (url, local):
        run(s3, "create", "--dsn", db.dsn, "-o", out, "--chunk-size", "64K", "-j", "2",
            "-q")
    # ls: the same tables, rows and chunks
    ls = [json.loads(run(s3, "ls", "--json", src).stdout) for src in (url, local)]
    shape = [[(t["table_id"], t["rows"], len(t["members"])) for t in doc["tables"]]
             for doc in ls]
    assert shape[0] == shape[1]
    assert dict((t, n) for t, _, n in shape[0])["public.a"] > 4     # several chunks
    plain = [run(s3, "ls", src).stdout.splitlines()[1:-1] for src in (url, local)]
    assert [r.split()[:3] for r in plain[0]] == [r.split()[:3] for r in plain[1]]
    # verify, cat
    for src in (url, local):
        assert run(s3, "verify", src).stdout.startswith("OK: 2 tables")
    cats = [run(s3, "cat", src, "public.a").stdout for src in (url, local)]
    assert cats[0] == cats[1] and len(cats[0].splitlines()) == 20001
    # load -j 2 from the bucket, and through the staging path (members read by two
    # workers in parallel, one reader each)
    for stage in ("32M", "64K"):
        target = make_db()
        p = run(s3, "load", url, "--dsn", target.dsn, "-j", "2",
                "--stage-larger-than", stage)
        assert "restored 2 tables, 20500 rows" in p.stderr
        for t in ("a", "b"):
            assert _digest(target, t) == _digest(db, t)
    # load --list from the bucket: no database needed
    assert "public.a" in run(s3, "load", url, "--list").stdout


def test_storage_option_instead_of_environment(s3, db, tmp_path):
    db.execute("CREATE TABLE t AS SELECT g AS id FROM generate_series(1, 100) g")
    url = f"s3://cli/{_key()}"
    env = {"AWS_ENDPOINT_URL": None}
    opts = ["--storage-option", f"endpoint_url={s3.endpoint}"]
    run(s3, "create", "--dsn", db.dsn, "-o", url, "-q", *opts, extra_env=env)
    assert "public.t" in run(s3, "ls", url, *opts, extra_env=env).stdout
    # AWS_ENDPOINT_URL is what botocore reads: another port, nothing there
    p = run(s3, "ls", url, *opts[:0], check=False,
            extra_env={"AWS_ENDPOINT_URL": f"http://127.0.0.1:{free_port()}",
                       "AWS_MAX_ATTEMPTS": "1"})
    assert p.returncode == 2
    assert len(p.stderr.strip().splitlines()) == 1 and url in p.stderr


def test_failed_download_keeps_old_table(s3, db, make_db):
    _setup(db)
    url = f"s3://cli/{_key()}"
    run(s3, "create", "--dsn", db.dsn, "-t", "a", "-o", url, "--chunk-size", "64K", "-q")
    target = make_db()
    target.execute("CREATE TABLE a (id int PRIMARY KEY, v text, n numeric); "
                   "INSERT INTO a VALUES (1, 'old', 1)")
    before = _digest(target, "a")
    size = s3.client().head_object(Bucket="cli", Key=url[len("s3://cli/"):])[
        "ContentLength"]

    def fail_data(environ):
        # the structure (locator, manifest) reads near the end succeed; data from the
        # middle of the object fails, for good
        rng = environ.get("HTTP_RANGE", "")
        if environ["REQUEST_METHOD"] == "GET" and rng:
            start = int(rng.split("=")[1].split("-")[0])
            if 4096 < start < size // 2:
                return "500"
        return None
    s3.fail = fail_data
    try:
        p = run(s3, "load", url, "--dsn", target.dsn, "--if-exists", "replace",
                "--storage-option", 'config_kwargs={"retries": {"max_attempts": 2}}',
                check=False, timeout=600)
    finally:
        s3.fail = None
    assert p.returncode != 0
    assert url in p.stderr
    assert _digest(target, "a") == before


def test_errors_and_debug_log_hold_no_secret(s3, tmp_path):
    # a missing object, a missing bucket: one line naming the URL, also with --debug
    for url in ("s3://cli/k/missing.dcz", "s3://no-such-bucket/x.dcz"):
        p = run(s3, "ls", url, check=False)
        assert p.returncode == 2
        lines = p.stderr.strip().splitlines()
        assert len(lines) == 1 and url in lines[0], p.stderr
        p = run(s3, "--debug", "verify", url, check=False,
                extra_env={"AWS_SECRET_ACCESS_KEY": SECRET_KEY})
        assert p.returncode != 0 and url in p.stderr
    # a secret passed as an option, a URL with user info
    p = run(s3, "ls", "s3://AKIAXX:hunter2secret@no-such-bucket/x.dcz",
            "--storage-option", "secret=hunter2secret", check=False)
    assert "hunter2secret" not in p.stderr + p.stdout
    assert "s3://no-such-bucket/x.dcz" in p.stderr


def test_archive_holds_no_credentials(s3, db):
    db.execute("CREATE TABLE t AS SELECT g AS id FROM generate_series(1, 10) g")
    url = f"s3://cli/{_key()}"
    run(s3, "create", "--dsn", db.dsn, "-o", url, "-q", "--compress", "none")
    body = s3.client().get_object(Bucket="cli", Key=url[len("s3://cli/"):])["Body"].read()
    assert SECRET_KEY.encode() not in body and b"AKIATEST" not in body
    assert s3.endpoint.encode() not in body


_RSS = ("import resource, subprocess, sys\n"
        "p = subprocess.run(sys.argv[1:])\n"
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
        "sys.exit(p.returncode)\n")


def test_dump_memory_does_not_grow_with_archive_size(s3, db):
    """Peak RSS of ``create -o s3://`` for ~40 MB and ~320 MB archives: the same
    within a few parts (the upload holds a few parts, never the archive)."""
    db.execute("CREATE TABLE small AS SELECT g AS id, repeat(md5(g::text), 64) AS v "
               "FROM generate_series(1, 20000) g")
    db.execute("CREATE TABLE big AS SELECT g AS id, repeat(md5(g::text), 64) AS v "
               "FROM generate_series(1, 160000) g")
    peaks = {}
    for table in ("small", "big"):
        url = f"s3://cli/{_key()}"
        env = clean_env(s3)
        p = subprocess.run([sys.executable, "-c", _RSS, *PY, "create", "--dsn", db.dsn,
                            "-t", table, "-o", url, "--compress", "none", "-q"],
                           capture_output=True, text=True, env=env, timeout=300)
        assert p.returncode == 0, p.stderr
        peaks[table] = int(p.stdout.split()[-1]) * 1024
        size = s3.client().head_object(Bucket="cli", Key=url[len("s3://cli/"):])[
            "ContentLength"]
        assert size > (30 << 20 if table == "small" else 300 << 20)
    # 8x the data; the peak may differ by noise (a part or two), not by the archive
    assert peaks["big"] - peaks["small"] < 48 << 20, peaks
    assert peaks["big"] < 250 << 20, peaks


def test_interrupted_dump_leaves_no_object(s3, db):
    """SIGTERM while the parts go up: the upload is aborted, no object appears."""
    import signal
    import time
    db.execute("CREATE TABLE big AS SELECT g AS id, repeat(md5(g::text), 64) AS v "
               "FROM generate_series(1, 60000) g")
    key = _key()
    uploads = {"parts": 0}

    def count(environ):
        if "partNumber=" in environ.get("QUERY_STRING", ""):
            uploads["parts"] += 1
        return None
    s3.fail = count
    try:
        p = subprocess.Popen([*PY, "create", "--dsn", db.dsn, "-o", f"s3://cli/{key}",
                              "--compress", "none", "-q"], env=clean_env(s3),
                             stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 120
        while uploads["parts"] < 2 and p.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert p.poll() is None, "the dump ended before it could be interrupted"
        p.send_signal(signal.SIGTERM)
        _, err = p.communicate(timeout=120)
    finally:
        s3.fail = None
    assert p.returncode == 128 + signal.SIGTERM, err
    assert "terminated" in err and SECRET_KEY not in err
    client = s3.client()
    assert client.list_objects_v2(Bucket="cli", Prefix=key).get("KeyCount", 0) == 0
    ups = client.list_multipart_uploads(Bucket="cli").get("Uploads", [])
    assert [u for u in ups if u["Key"] == key] == []
