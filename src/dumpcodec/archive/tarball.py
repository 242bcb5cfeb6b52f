"""Our tar backends: ``tar`` (plain), ``gzip`` and ``zstd`` (the default).

Every member (tar header + data + padding) is written as its own compression unit: a
gzip member (RFC 1952 allows concatenated members) or a zstd frame.  ``gzip -d``,
``zstd -d`` and ``tar`` see one ordinary stream, while a reader that knows a member's
byte offset (``offset`` in the manifest) can start decompressing right there: that is
how one table is read from a compressed file without decompressing the others.
"""
from __future__ import annotations

import gzip
import zlib
from typing import Any, BinaryIO, List

import zstandard

from ._tar import PIECE
from .base import DumpReader, DumpWriter, register_backend

#: zstd frames may not ask for a larger window than this (bounds reader memory)
ZSTD_MAX_WINDOW = 1 << 27


class TarReader(DumpReader):
    """Plain tar: skipping a member is a seek."""
    backend_name = "tar"
    plain = True


class TarWriter(DumpWriter):
    backend_name = "tar"


class GzipReader(DumpReader):
    backend_name = "gzip"

    def _decompressor(self, raw: BinaryIO) -> BinaryIO:
        return gzip.GzipFile(fileobj=raw, mode="rb")


class GzipWriter(DumpWriter):
    """gzip, one gzip member per tar member; ``level`` 1-9 (default 6)."""
    backend_name = "gzip"

    def _setup(self, level: int = 6, **options: Any) -> None:
        super()._setup(**options)
        if not isinstance(level, int) or not 0 <= level <= 9:
            raise ValueError(f"gzip level must be 0..9, not {level!r}")
        self.level = level

    def _write_frame(self, parts: List[Any]) -> None:
        comp = zlib.compressobj(self.level, zlib.DEFLATED, 31)   # 31: gzip wrapper
        out = self._out
        for part in parts:
            view = memoryview(part)
            for start in range(0, len(view), PIECE):
                block = comp.compress(view[start:start + PIECE])
                if block:
                    out.write(block)
        out.write(comp.flush())


class ZstdReader(DumpReader):
    backend_name = "zstd"

    def _decompressor(self, raw: BinaryIO) -> BinaryIO:
        dctx = zstandard.ZstdDecompressor(max_window_size=ZSTD_MAX_WINDOW)
        return dctx.stream_reader(raw, read_size=PIECE, read_across_frames=True,
                                  closefd=False)


class ZstdWriter(DumpWriter):
    """zstd, one frame per tar member with content checksums; ``level`` (default 3),
    ``threads`` (compression worker threads, default 0)."""
    backend_name = "zstd"

    def _setup(self, level: int = 3, threads: int = 0, **options: Any) -> None:
        super()._setup(**options)
        if not isinstance(level, int) or not -7 <= level <= 22:
            raise ValueError(f"zstd level must be -7..22, not {level!r}")
        self.level = level
        self.threads = threads
        self._cctx = zstandard.ZstdCompressor(level=level, threads=threads,
                                              write_checksum=True)

    def _write_frame(self, parts: List[Any]) -> None:
        comp = self._cctx.compressobj()
        out = self._out
        for part in parts:
            view = memoryview(part)
            for start in range(0, len(view), PIECE):
                block = comp.compress(view[start:start + PIECE])
                if block:
                    out.write(block)
        out.write(comp.flush())


register_backend("zstd", ZstdReader, ZstdWriter, magic=(0, b"\x28\xb5\x2f\xfd"))
register_backend("gzip", GzipReader, GzipWriter, magic=(0, b"\x1f\x8b"))
register_backend("tar", TarReader, TarWriter, magic=(257, b"ustar"))
