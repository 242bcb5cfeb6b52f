"""``dumpcodec demo`` runs end to end (on the embedded server when there is one)."""
from __future__ import annotations

import subprocess
import sys


def test_demo_runs(pg_servers):
    embedded = [s for s in pg_servers if s.name == "embedded"]
    cmd = [sys.executable, "-m", "dumpcodec", "demo", "--rows", "3000", "-q"]
    if not embedded:
        # no pgserver here: the demo runs against the test server instead
        cmd += ["--dsn", pg_servers[0].dsn]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stdout + p.stderr
    out = p.stdout
    assert "demo OK" in out
    assert "verified:" in out
    assert "DIFFERENT" not in out
    for table in ("customers", "orders", "events", "readings_h1"):
        assert f"public.{table}" in out and "equal" in out
    assert "sequence invoice_no" in out
