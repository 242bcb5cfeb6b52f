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

    def expect(self, total_bytes: Optional[int]) -> None:
        """The operation will move about ``total_bytes`` bytes (for a rate's ETA)."""

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
        self._total: Optional[int] = None

    def start(self, operation: str, tables: int) -> None:
        with self._lock:
            self._op, self._tables = operation, tables
            self._t0 = time.perf_counter()

    def expect(self, total_bytes: Optional[int]) -> None:
        with self._lock:
            self._total = total_bytes

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
                 human_bytes(self._bytes) + (f" of {human_bytes(self._total)}"
                                             if self._total else ""),
                 human_rate(self._bytes / (1 << 20), elapsed, "MiB")]
        if self._rows:
            parts.append(human_rate(self._rows, elapsed))
        if self._total and self._bytes and elapsed > 0:
            left = (self._total - self._bytes) / (self._bytes / elapsed)
            parts.append(f"ETA {int(max(left, 0)) // 60}:{int(max(left, 0)) % 60:02d}")
        for tid, (nb, _rows, est) in list(self._current.items())[:2]:
            pct = f" {min(100, 100 * nb // est)}%" if est else ""
            parts.append(f"{tid} {human_bytes(nb)}{pct}")
        line = " | ".join(parts)
        cols = 120
        line = line[:cols - 1]
        self.stream.write("\r" + line.ljust(self._width))
        self.stream.flush()
        self._width = len(line)


class _Totals:
    """What the progress classes below count, with a rate and an ETA."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.op = ""
        self.tables = 0
        self.done = 0
        self.bytes = 0
        self.rows = 0
        self.total_bytes: Optional[int] = None
        self.current: dict = {}          # table id -> [bytes, rows, estimated bytes]
        self.t0 = time.perf_counter()

    def rate(self) -> float:
        elapsed = time.perf_counter() - self.t0
        return self.bytes / elapsed if elapsed > 0 else 0.0

    def eta(self) -> Optional[float]:
        rate = self.rate()
        if not self.total_bytes or rate <= 0:
            return None
        return max(0.0, (self.total_bytes - self.bytes) / rate)


class JsonProgress(Progress):
    """One JSON object per line on ``stream`` every ``interval`` seconds while an
    operation runs, and one at its end (``--progress json``; docs/JSON.md, "Progress
    lines"): for tools that embed dumpcodec and show progress their own way."""

    VERSION = 1

    def __init__(self, stream: Optional[IO[str]] = None, interval: float = 1.0):
        self.stream = stream if stream is not None else sys.stderr
        self.interval = interval
        self._t = _Totals()
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None

    def start(self, operation: str, tables: int) -> None:
        with self._t.lock:
            self._t.op, self._t.tables = operation, tables
            self._t.t0 = time.perf_counter()
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._tick, name="dumpcodec-progress",
                                            daemon=True)
            self._thread.start()

    def expect(self, total_bytes: Optional[int]) -> None:
        with self._t.lock:
            self._t.total_bytes = total_bytes

    def table_start(self, table_id: str, estimated_bytes: Optional[int] = None) -> None:
        with self._t.lock:
            self._t.current[table_id] = [0, 0, estimated_bytes]

    def advance(self, table_id: str, nbytes: int, rows: int = 0) -> None:
        with self._t.lock:
            cur = self._t.current.setdefault(table_id, [0, 0, None])
            cur[0] += nbytes
            cur[1] += rows
            self._t.bytes += nbytes
            self._t.rows += rows

    def table_done(self, table_id: str, rows: int, nbytes: int, seconds: float,
                   error: Optional[str] = None) -> None:
        with self._t.lock:
            cur = self._t.current.pop(table_id, [0, 0, None])
            self._t.rows += max(rows - cur[1], 0)
            self._t.bytes += max(nbytes - cur[0], 0)
            self._t.done += 1

    def finish(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        self._emit(final=True)

    def _tick(self) -> None:
        while not self._stop.wait(self.interval):
            self._emit(final=False)

    def line(self, final: bool = False) -> dict:
        """The progress object written now (see docs/JSON.md)."""
        t = self._t
        with t.lock:
            eta = t.eta()
            return {"progress": self.VERSION, "operation": t.op,
                    "elapsed": round(time.perf_counter() - t.t0, 3), "final": final,
                    "tables": t.tables, "tables_done": t.done, "bytes": t.bytes,
                    "total_bytes": t.total_bytes, "rows": t.rows,
                    "bytes_per_second": round(t.rate(), 1),
                    "eta_seconds": None if eta is None else round(eta, 1),
                    "current": [{"table_id": tid, "bytes": b, "rows": r,
                                 "total_bytes": est}
                                for tid, (b, r, est) in sorted(t.current.items())]}

    def _emit(self, final: bool) -> None:
        import json
        try:
            self.stream.write(json.dumps(self.line(final)) + "\n")
            self.stream.flush()
        except (OSError, ValueError):
            pass

