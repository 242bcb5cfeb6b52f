"""Peak memory of writing and reading an archive is bounded by the chunk, not the table.

Writes one large synthetic table (a COPY BINARY stream of ``--size`` bytes, made of a
pre-encoded block repeated, so that generating it costs nothing) into an archive, then
reads it back three ways: random access on the file (``read_raw``), one pass from a
pipe (``iter_tables`` on stdin), and ``verify``.  Each step runs in its own child
process; its peak RSS comes from ``os.wait4`` (``ru_maxrss``).  Not a test: run it by
hand.

    python benchmarks/bench_archive_memory.py                 # 500 MB, zstd, 8 MiB chunks
    python benchmarks/bench_archive_memory.py --size 2000 --backend gzip --chunk-size 32

Sizes are in MB (10**6 bytes); chunk size in MiB.
"""
from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time

BLOCK_ROWS = 10_000


def _block() -> bytes:
    """About 1 MB of tuples (int8, text), pre-encoded."""
    import struct
    parts = []
    for i in range(BLOCK_ROWS):
        text = (b"row %08d " % i) * 9
        parts.append(struct.pack(">hiqi", 2, 8, i, len(text)) + text)
    return b"".join(parts)


def child_write(path: str, size: int, backend: str, chunk_size: int) -> None:
    from dumpcodec.archive import open_dump
    header = b"PGCOPY\n\xff\r\n\x00" + bytes(8)
    block = _block()
    rows = 0
    with open_dump(path, "w", backend=backend, chunk_size=chunk_size) as w:
        with w.add_table("public.big", None, ["id", "t"], ["int8", "text"]) as tw:
            tw.write(header)
            written = len(header)
            while written < size:
                tw.write(block)
                written += len(block)
                rows += BLOCK_ROWS
            tw.write(b"\xff\xff")
    print(f"rows={rows}")


def child_read(path: str, mode: str) -> None:
    from dumpcodec.archive import open_dump
    rows = 0
    nbytes = 0
    if mode == "seek":
        with open_dump(path) as r:
            for chunk in r.read_raw("public.big"):
                rows += _rows(chunk)
                nbytes += len(chunk)
    elif mode == "pipe":
        with open_dump("-") as r:
            for info, chunks in r.iter_tables():
                for chunk in chunks:
                    rows += _rows(chunk)
                    nbytes += len(chunk)
                if not info.verified:
                    raise SystemExit("footer not verified")
    else:
        with open_dump(path) as r:
            rep = r.verify()
            if not rep.ok:
                raise SystemExit("; ".join(rep.problems))
            rows, nbytes = rep.rows, sum(t.raw_size for t in rep.tables)
    print(f"rows={rows} bytes={nbytes}")


def _rows(chunk) -> int:
    from dumpcodec.copy import Scanner
    s = Scanner()
    s.feed(chunk)
    s.close()
    return s.rows


def _run(argv, stdin=None) -> tuple:
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, __file__] + argv, stdin=stdin,
                            stdout=subprocess.PIPE)
    out = proc.stdout.read().decode().strip()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        raise SystemExit(f"child {argv} failed ({proc.returncode}): {out}")
    # ru_maxrss is in KiB on Linux
    return usage.ru_maxrss / 1024.0, time.perf_counter() - t0, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size", type=int, default=500, help="table size in MB (default 500)")
    ap.add_argument("--backend", default="zstd", choices=("zstd", "gzip", "tar"))
    ap.add_argument("--chunk-size", type=int, default=8, help="MiB per chunk (default 8)")
    ap.add_argument("--dir", default=None, help="where to put the archive (default: tmp)")
    ap.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        if args.child[0] == "write":
            child_write(args.child[1], int(args.child[2]), args.child[3], int(args.child[4]))
        else:
            child_read(args.child[1], args.child[0])
        return
    size = args.size * 10**6
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        path = os.path.join(tmp, "big.dump")
        print(f"table {args.size} MB, backend {args.backend}, chunk {args.chunk_size} MiB")
        rss, secs, out = _run(["--child", "write", path, str(size), args.backend,
                               str(args.chunk_size << 20)])
        arch = os.path.getsize(path)
        print(f"  write        peak RSS {rss:7.1f} MiB  {secs:6.1f} s  "
              f"({size / secs / 1e6:.0f} MB/s)  archive {arch / 1e6:.1f} MB  {out}")
        for mode in ("seek", "pipe", "verify"):
            if mode == "pipe":
                with open(path, "rb") as f:
                    rss, secs, out = _run(["--child", "pipe", "-"], stdin=f)
            else:
                rss, secs, out = _run(["--child", mode, path])
            print(f"  read {mode:7} peak RSS {rss:7.1f} MiB  {secs:6.1f} s  "
                  f"({size / secs / 1e6:.0f} MB/s)  {out}")
        self_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
        print(f"  (this driver: {self_rss:.1f} MiB)")


if __name__ == "__main__":
    main()
