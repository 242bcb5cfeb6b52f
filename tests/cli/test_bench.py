"""The benchmark runner's output and ``dumpcodec bench`` on a real database.

No timing assertions: these check that the runner produces a well-formed results
file from real measurements, and that ``dumpcodec bench`` reports what it measured,
leaves the user's tables alone and drops its scratch database, also on error.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from dumpcodec.bench import (BenchReport, Measurement, Setting, default_plan, recommend,
                             run_bench)
from dumpcodec.cli import main as cli_main

REPO = Path(__file__).resolve().parents[2]


def _scratch_dbs(db) -> list:
    with psycopg.connect(db.server.dsn, autocommit=True) as conn:
        return [r[0] for r in conn.execute(
            "SELECT datname FROM pg_database WHERE datname LIKE 'dumpcodec\\_bench\\_%'")]


def _make_user_tables(db) -> None:
    db.execute("CREATE TABLE public.orders (id bigint PRIMARY KEY, customer text, "
               "amount numeric(10,2), at timestamptz, tags int[], doc jsonb)")
    db.execute("INSERT INTO public.orders SELECT g, 'c' || (g % 97), g * 1.25, "
               "timestamptz '2024-01-01' + g * interval '1 minute', ARRAY[g % 5, g % 7], "
               "jsonb_build_object('n', g) FROM generate_series(1, 20000) g")
    db.execute("CREATE TABLE public.items (order_id bigint, sku int, qty int)")
    db.execute("INSERT INTO public.items SELECT g / 3, g % 1000, g % 9 "
               "FROM generate_series(1, 40000) g")


def _fingerprint(db) -> dict:
    """Contents and shape of the user's database, to prove bench changed nothing."""
    out = {}
    for t in ("orders", "items"):
        out[t] = db.execute(f"SELECT count(*), md5(string_agg(x::text, ',' ORDER BY x::text)) "
                            f"FROM public.{t} x")[0]
    out["tables"] = db.execute("SELECT schemaname, tablename FROM pg_tables WHERE "
                               "schemaname NOT IN ('pg_catalog', 'information_schema') "
                               "ORDER BY 1, 2")
    return out


# -- the benchmark runner ------------------------------------------------------------

def test_runner_quick_writes_wellformed_results(db, tmp_path):
    """``python -m benchmarks --quick`` on a test database: JSON and Markdown out."""
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--quick", "--dsn", db.dsn,
         "--mixed-rows", "2000", "--narrow-rows", "10000", "--codec-share", "0.5",
         "--output-dir", str(tmp_path), "--name", "smoke"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    doc = json.loads((tmp_path / "smoke.json").read_text())
    md = (tmp_path / "smoke.md").read_text()
    assert md.strip() in proc.stdout

    meta = doc["meta"]
    assert meta["server_version_num"] == db.server.version_num
    assert meta["rounds"] == 1 and meta["machine"]["nproc"] >= 1
    assert doc["datasets"]["mixed"]["rows"] == 2000
    assert doc["datasets"]["narrow"]["rows"] == 10000
    assert doc["datasets"]["mixed"]["copy_bytes"] > 2000 * 100

    results = {r["id"]: r for r in doc["results"]}
    # every comparison has both sides, on both tables (from the suites or the runner)
    for table in ("mixed", "narrow"):
        for case in ("server/{}/psql-copy-out", "server/{}/psql-copy-in",
                     "decode/{}/psycopg", "decode/{}/dumpcodec",
                     "decode-offline/{}/psycopg", "decode-offline/{}/dumpcodec",
                     "encode/{}/psycopg", "encode/{}/dumpcodec",
                     "scan/{}/memcpy", "scan/{}/dumpcodec-scanner"):
            r = results[case.format(table)]
            assert "error" not in r, r
            assert len(r["seconds"]) >= 1 and r["median_s"] > 0 and r["mb_per_s"] > 0
            if r["group"] == "server" or "source" not in r:   # measured alone: its RSS
                assert r["peak_rss_mb"] > 0
        # the codec groups ran on the first half of each table, the rest on all of it
        half = doc["datasets"][table]["rows"] // 2
        assert doc["datasets_codec"][table]["rows"] == half
        assert results[f"decode/{table}/psycopg"]["rows"] == half
        assert results[f"decode/{table}/dumpcodec"]["rows"] == half
        assert results[f"server/{table}/psql-copy-out"]["rows"] == doc["datasets"][table]["rows"]
        assert results[f"decode/{table}/psycopg"]["vs_dumpcodec"] > 0
    # optional peers may be missing from an environment, but must not fail otherwise
    for r in doc["results"]:
        if "error" in r:
            assert "ModuleNotFoundError" in r["error"] or r["ours"], r
    if doc["meta"]["tools"]["pg_dump"]:
        for case in ("dump/all/pg_dump-Fc", "dump/all/dumpcodec-zstd",
                     "dump/all/dumpcodec-none", "dump/all/pg_dump-Fc-Z0"):
            assert results[case]["size_bytes"] > 0 and results[case]["peak_rss_mb"] > 0
        for case in ("restore/all/pg_restore-j1", "restore/all/dumpcodec-j1",
                     "restore/all/dumpcodec-j2"):
            assert results[case]["median_s"] > 0
        assert results["dump/all/pg_dump-Fc"]["vs_dumpcodec"] > 0
    assert {t["issue"] for t in doc["targets"]} == {3, 6}
    for t in doc["targets"]:
        assert t["status"] in ("met", "not met", "not measured")
    assert "## Targets (issues 3 and 6)" in md
    # the runner cleans up after itself: no load tables, no restore database
    left = db.execute("SELECT schemaname, tablename FROM pg_tables WHERE schemaname "
                      "LIKE 'bench%' ORDER BY 1, 2")
    assert [tuple(r) for r in left] == [("bench", "mixed"), ("bench", "narrow"),
                                        ("bench_part", "mixed"), ("bench_part", "narrow")]
    assert not [d for d in _scratch_dbs(db) if d.startswith("dumpcodec_bench_restore")]


# -- dumpcodec bench ---------------------------------------------------------------------

def test_cli_bench_measures_and_leaves_user_tables_alone(db, capsys):
    _make_user_tables(db)
    before = _fingerprint(db)
    rc = cli_main(["bench", "--dsn", db.dsn, "public.orders", "public.items",
                   "--seconds", "4", "--scratch-restore", "--json"])
    out = capsys.readouterr().out
    assert rc == 0
    rep = json.loads(out)
    kinds = [m["kind"] for m in rep["measurements"]]
    assert kinds[0] == "copy" and "dump" in kinds and "restore" in kinds
    copy = rep["measurements"][0]
    assert copy["rows"] > 0 and copy["copy_bytes"] > 0 and copy["mb_per_s"] > 0
    ran = [m for m in rep["measurements"] if m["kind"] == "dump" and not m["skipped"]]
    assert ran and all(m["error"] is None for m in ran), ran
    first = ran[0]
    assert first["setting"]["backend"] == "zstd" and first["setting"]["level"] == 3
    assert first["rows"] == copy["rows"] and first["copy_bytes"] == copy["copy_bytes"]
    assert first["ratio"] > 1.0          # zstd on these tables compresses
    for m in rep["measurements"]:
        assert m["skipped"] in (None, "time budget")
    goals = {r["goal"] for r in rep["recommendations"]}
    assert {"speed", "size", "balance"} <= goals
    assert all(r["cli"].startswith("dumpcodec ") for r in rep["recommendations"])
    assert {t["name"] for t in rep["tables"]} == {"orders", "items"}
    assert rep["scratch_database"].startswith("dumpcodec_bench_")
    assert rep["scratch_dropped"] is True
    assert rep["scratch_database"] not in _scratch_dbs(db)
    assert _fingerprint(db) == before


def test_bench_text_output_and_no_scratch_without_flag(db, capsys):
    _make_user_tables(db)
    rc = cli_main(["bench", "--dsn", db.dsn, "public.items", "--seconds", "2"])
    out = capsys.readouterr().out
    assert rc == 0
    assert "raw binary COPY" in out and "recommended:" in out
    assert "restore" not in out.split("recommended:")[0].split("\n", 3)[-1]
    assert "speed" in out and "balance" in out


def test_bench_drops_scratch_database_on_error(db):
    """An error after the scratch database exists still drops it."""
    _make_user_tables(db)
    before = _fingerprint(db)
    restores = []

    def log(msg: str) -> None:
        if msg.startswith("restore"):
            restores.append(msg)
            if len(restores) == 2:
                # the first restore has created and filled the scratch database
                name = msg.split("scratch database ")[1].split()[0]
                assert name in _scratch_dbs(db)
                raise RuntimeError("stop here")

    plan = [("dump", Setting("zstd", 3)), ("restore", Setting("zstd", 3)),
            ("restore", Setting("tar"))]
    with pytest.raises(RuntimeError, match="stop here"):
        run_bench(db.dsn, ["public.orders"], seconds=60, scratch_restore=True, plan=plan,
                  log=log)
    assert len(restores) == 2
    name = restores[0].split("scratch database ")[1].split()[0]
    assert name.startswith("dumpcodec_bench_") and name not in _scratch_dbs(db)
    assert _fingerprint(db) == before


def test_bench_bad_selector_is_an_error(db):
    from dumpcodec.errors import SelectorError
    with pytest.raises(SelectorError):
        run_bench(db.dsn, ["public.no_such_table"], seconds=2)
    rc = cli_main(["bench", "--dsn", db.dsn, "public.no_such_table", "--seconds", "2"])
    assert rc == 2


def test_bench_tiny_budget_skips_but_runs_the_first_dump(db):
    _make_user_tables(db)
    rep = run_bench(db.dsn, ["public.orders", "public.items"], seconds=0.05,
                    scratch_restore=True)
    dumps = [m for m in rep.measurements if m.kind == "dump"]
    assert dumps[0].ok and dumps[0].setting == Setting("zstd", 3)
    assert any(m.skipped == "time budget" for m in rep.measurements)
    assert rep.scratch_database is None          # no restore ran: none was made
    assert isinstance(rep, BenchReport) and "skipped: time budget" in rep.format_table()


# -- pure logic ----------------------------------------------------------------------

def _m(kind, setting, seconds, copy_bytes, archive_bytes):
    return Measurement(kind, setting.label, setting, seconds=seconds, rows=1000,
                       copy_bytes=copy_bytes, archive_bytes=archive_bytes)


def test_recommend_speed_size_balance():
    ms = [
        _m("dump", Setting("tar"), 1.0, 100_000_000, 100_000_000),       # 100 MB/s, 1.0
        _m("dump", Setting("zstd", 1), 1.25, 100_000_000, 30_000_000),   # 80 MB/s, 3.33
        _m("dump", Setting("zstd", 9), 5.0, 100_000_000, 25_000_000),    # 20 MB/s, 4.0
        _m("dump", Setting("gzip", 6), 4.0, 100_000_000, 33_000_000),
        _m("restore", Setting("zstd", 3, jobs=2), 2.0, 100_000_000, 30_000_000),
        Measurement("dump", "zstd-3, -j4", Setting("zstd", 3, jobs=4), skipped="time budget"),
    ]
    rec = {r.goal: r for r in recommend(ms)}
    assert rec["speed"].setting == Setting("tar")
    assert rec["size"].setting == Setting("zstd", 9)
    assert rec["balance"].setting == Setting("zstd", 1)   # best ratio at >= 50 MB/s
    assert rec["restore"].setting.jobs == 2
    assert rec["restore"].cli.startswith("dumpcodec load -j 2")
    assert rec["size"].cli == "dumpcodec create --compress zstd --level 9"
    assert Setting("zstd", 3, chunk_size=16 << 20, jobs=2).cli_args() == \
        "dumpcodec create --compress zstd --level 3 --chunk-size 16M -j 2"


def test_default_plan_orders_and_filters():
    plan = default_plan(ntables=1, scratch_restore=False, cpus=2)
    assert plan[0] == ("dump", Setting("zstd", 3))
    assert all(k == "dump" for k, _ in plan)
    assert all(s.jobs == 1 for _, s in plan)          # one table: -j cannot help
    levels = {(s.backend, s.level) for _, s in plan}
    assert {("zstd", 1), ("zstd", 3), ("zstd", 9), ("gzip", 1), ("gzip", 6),
            ("tar", None)} <= levels
    plan2 = default_plan(ntables=3, scratch_restore=True, cpus=2)
    assert ("restore", Setting("zstd", 3)) in plan2
    assert any(s.jobs == 2 for _, s in plan2)


def test_recommend_treats_near_equal_speeds_as_equal():
    """Within 10% the simpler setting wins: no -j or chunk size recommended on noise."""
    ms = [
        _m("dump", Setting("zstd", 3), 1.05, 100_000_000, 30_000_000),               # 95 MB/s
        _m("dump", Setting("zstd", 3, jobs=2), 1.0, 100_000_000, 30_000_000),        # 100 MB/s
        _m("dump", Setting("zstd", 3, chunk_size=1 << 20), 0.98, 100_000_000, 30_500_000),
    ]
    rec = {r.goal: r for r in recommend(ms)}
    assert rec["speed"].setting == Setting("zstd", 3)
    assert rec["balance"].setting == Setting("zstd", 3)
    ms.append(_m("dump", Setting("zstd", 3, jobs=2), 0.5, 100_000_000, 30_000_000))  # 2x
    rec = {r.goal: r for r in recommend(ms)}
    assert rec["speed"].setting == Setting("zstd", 3, jobs=2)
