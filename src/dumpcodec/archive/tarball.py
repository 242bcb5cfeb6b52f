"""Our tar backends: ``tar`` (plain), ``gzip`` and ``zstd`` (the default).

Every member (tar header + data + padding) is written as its own compression unit: a
gzip member (RFC 1952 allows concatenated members) or a zstd frame.  ``gzip -d``,
``zstd -d`` and ``tar`` see one ordinary stream, while a reader that knows a member's
byte offset (``offset`` in the manifest) can start decompressing right there: that is
how one table is read from a compressed file without decompressing the others.
"""
from __future__ import annotations

import gzip
import io
import zlib
from typing import Any, BinaryIO, List

import zstandard

from ..errors import IncompleteArchiveError
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


#: a zstd skippable frame (magic 0x184D2A5D, 8 bytes of payload) that ends every zstd
#: archive we write: zstd does not notice a stream cut inside its last frame, this
#: trailer's absence does
ZSTD_TRAILER = b"\x5d\x2a\x4d\x18\x08\x00\x00\x00DCARCEND"


class _TailReader(io.RawIOBase):
    """Pass reads through, remembering the last bytes and whether EOF was seen."""

    def __init__(self, raw: BinaryIO, keep: int = len(ZSTD_TRAILER)):
        self._raw = raw
        self._keep = keep
        self.tail = b""
        self.eof = False

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:
        if hasattr(self._raw, "readinto"):
            n = self._raw.readinto(b) or 0
            data = bytes(memoryview(b)[max(0, n - self._keep):n])
        else:
            data = self._raw.read(len(b))
            n = len(data)
            memoryview(b)[:n] = data
            data = data[-self._keep:]
        if n == 0:
            self.eof = True
        else:
            self.tail = (self.tail + data)[-self._keep:]
        return n


class ZstdReader(DumpReader):
    backend_name = "zstd"

    def _decompressor(self, raw: BinaryIO) -> BinaryIO:
        self._tail = _TailReader(raw)
        dctx = zstandard.ZstdDecompressor(max_window_size=ZSTD_MAX_WINDOW)
        return dctx.stream_reader(self._tail, read_size=PIECE, read_across_frames=True,
                                  closefd=False)

    def _check_stream_end(self) -> None:
        tail = getattr(self, "_tail", None)
        if tail is None:
            return
        if not tail.eof or tail.tail != ZSTD_TRAILER:
            raise IncompleteArchiveError(
                "the zstd stream does not end with the dumpcodec trailer (a skippable "
                "frame): the file is truncated or its writer did not finish")


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

    def _finish_stream(self) -> None:
        self._out.write(ZSTD_TRAILER)


register_backend("zstd", ZstdReader, ZstdWriter, magic=(0, b"\x28\xb5\x2f\xfd"))
register_backend("gzip", GzipReader, GzipWriter, magic=(0, b"\x1f\x8b"))
register_backend("tar", TarReader, TarWriter, magic=(257, b"ustar"))
