"""The terminal progress display: drawn on a terminal, silent otherwise."""
from __future__ import annotations

import io

from dumpcodec.progress import Progress, TerminalProgress, human_bytes, human_rate


class Tty(io.StringIO):
    def isatty(self):
        return True


def _drive(p: Progress) -> None:
    p.start("dump", 2)
    p.table_start("public.a", 4 << 20)
    p.advance("public.a", 1 << 20)
    p.table_done("public.a", 10, 2 << 20, 0.5)
    p.table_start("public.b")
    p.message("building index b_pkey")
    p.table_done("public.b", 0, 0, 0.1, error="duplicate key")
    p.finish()


def test_terminal_progress_draws_on_a_tty():
    out = Tty()
    _drive(TerminalProgress(out, interval=0))
    text = out.getvalue()
    assert "public.a: 10 rows, 2.0 MiB" in text
    assert "public.b: FAILED: duplicate key" in text
    assert "building index b_pkey" in text
    assert "dump 1/2 tables" in text
    assert "25%" in text                      # 1 MiB of an estimated 4 MiB


def test_terminal_progress_silent_when_not_a_tty_or_quiet():
    out = io.StringIO()
    _drive(TerminalProgress(out))
    assert out.getvalue() == ""
    out = Tty()
    _drive(TerminalProgress(out, quiet=True))
    assert out.getvalue() == ""


def test_human_units():
    assert human_bytes(512) == "512 B"
    assert human_bytes(1536) == "1.5 KiB"
    assert human_bytes(3 << 30) == "3.0 GiB"
    assert human_rate(2_500_000, 1.0) == "2.50 M rows/s"
    assert human_rate(1500, 1.0, "MiB") == "1.5 k MiB/s"
    assert human_rate(5, 0) == "- rows/s"
