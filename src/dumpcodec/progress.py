"""Progress reporting for dumps and restores, and the human-readable summary.

``create_dump`` and ``restore_dump`` accept any object with the methods of
:class:`Progress` (all optional to override; the base class does nothing), so that an
embedding application can route progress into its own UI.  The library never prints:
:class:`TerminalProgress` is what the command line uses; it redraws one status line on
a terminal (per table and overall: bytes, rows, rate) and is silent when the stream is
not a terminal or when ``quiet`` is set.

Calls arrive from the thread that drives the archive (restore with ``-j`` also calls
from worker threads); :class:`TerminalProgress` serialises them with a lock.
"""
from __future__ import annotations

import sys
import threading
import time
from typing import IO, Optional


def human_bytes(n: float) -> str:
    """``1536`` -> ``'1.5 KiB'``."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"  # pragma: no cover


def human_rate(count: float, seconds: float, unit: str = "rows") -> str:
    """``(2e6, 1.0)`` -> ``'2.00 M rows/s'``."""
    if seconds <= 0:
        return f"- {unit}/s"
    r = count / seconds
    if r >= 1e6:
        return f"{r / 1e6:.2f} M {unit}/s"
    if r >= 1e3:
        return f"{r / 1e3:.1f} k {unit}/s"
    return f"{r:.0f} {unit}/s"


class Progress:
    """The progress protocol; every method is a no-op here."""

    def start(self, operation: str, tables: int) -> None:
        """An operation ('dump' or 'restore') over ``tables`` tables begins."""

    def table_start(self, table_id: str, estimated_bytes: Optional[int] = None) -> None:
        """Data for ``table_id`` starts moving."""

    def advance(self, table_id: str, nbytes: int, rows: int = 0) -> None:
        """``nbytes`` more bytes (and ``rows`` more rows, when known) moved."""

    def table_done(self, table_id: str, rows: int, nbytes: int, seconds: float,
                   error: Optional[str] = None) -> None:
        """A table finished (or failed, with ``error``)."""

    def message(self, text: str) -> None:
        """A one-line note (an index build, a foreign key...)."""

    def finish(self) -> None:
        """The operation ended; clear any status line."""


class TerminalProgress(Progress):
    """One redrawn status line on ``stream`` (stderr by default), when it is a tty."""

    def __init__(self, stream: Optional[IO[str]] = None, quiet: bool = False,
                 interval: float = 0.2):
        self.stream = stream if stream is not None else sys.stderr
        try:
            tty = self.stream.isatty()
        except (AttributeError, ValueError):
            tty = False
        self.enabled = tty and not quiet
        self.interval = interval
        self._lock = threading.Lock()
        self._op = ""
        self._tables = 0
        self._done = 0
        self._bytes = 0
        self._rows = 0
        self._current: dict = {}
        self._t0 = time.perf_counter()
        self._last = 0.0
        self._width = 0

    def start(self, operation: str, tables: int) -> None:
        with self._lock:
            self._op, self._tables = operation, tables
            self._t0 = time.perf_counter()

    def table_start(self, table_id: str, estimated_bytes: Optional[int] = None) -> None:
        with self._lock:
            self._current[table_id] = [0, 0, estimated_bytes]
            self._draw(force=True)

    def advance(self, table_id: str, nbytes: int, rows: int = 0) -> None:
        with self._lock:
            cur = self._current.setdefault(table_id, [0, 0, None])
            cur[0] += nbytes
            cur[1] += rows
            self._bytes += nbytes
            self._rows += rows
            self._draw()

    def table_done(self, table_id: str, rows: int, nbytes: int, seconds: float,
                   error: Optional[str] = None) -> None:
        with self._lock:
            cur = self._current.pop(table_id, [0, 0, None])
            # the row count is only known at the end of a raw COPY: account for it now
            self._rows += max(rows - cur[1], 0)
            self._bytes += max(nbytes - cur[0], 0)
            self._done += 1
            if self.enabled:
                status = f"FAILED: {error}" if error else (
                    f"{rows} rows, {human_bytes(nbytes)}, {seconds:.2f} s")
                self._write_line(f"  {table_id}: {status}")
            self._draw(force=True)

    def message(self, text: str) -> None:
        with self._lock:
            if self.enabled:
                self._write_line(f"  {text}")
                self._draw(force=True)

    def finish(self) -> None:
        with self._lock:
            if self.enabled and self._width:
                self.stream.write("\r" + " " * self._width + "\r")
                self.stream.flush()
                self._width = 0

    # -- drawing (lock held) ------------------------------------------------------

    def _write_line(self, text: str) -> None:
        self.stream.write("\r" + text.ljust(self._width) + "\n")
        self._width = 0

    def _draw(self, force: bool = False) -> None:
        if not self.enabled:
            return
        now = time.perf_counter()
        if not force and now - self._last < self.interval:
            return
        self._last = now
        elapsed = now - self._t0
        parts = [f"{self._op} {self._done}/{self._tables} tables",
                 human_bytes(self._bytes),
                 human_rate(self._bytes / (1 << 20), elapsed, "MiB")]
        for tid, (nb, _rows, est) in list(self._current.items())[:2]:
            pct = f" {min(100, 100 * nb // est)}%" if est else ""
            parts.append(f"{tid} {human_bytes(nb)}{pct}")
        line = " | ".join(parts)
        cols = 120
        line = line[:cols - 1]
        self.stream.write("\r" + line.ljust(self._width))
        self.stream.flush()
        self._width = len(line)
