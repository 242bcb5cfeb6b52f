"""The backends: ``tar`` (plain), ``gzip``, ``zstd`` (the default), and ``dachs``.

Every member (tar header + data + padding) is written as its own compression unit: a
gzip member (RFC 1952 allows concatenated members) or a zstd frame.  ``gzip -d``,
``zstd -d`` and ``tar`` see one ordinary stream, while a reader that knows a member's
byte offset (``offset`` in the manifest) can start decompressing right there: that is
how one table is read from a compressed file without decompressing the others.

``dachs`` reads DaCHS dumps: a gzip reader that takes every archive for the DaCHS
layout (:mod:`.dachs`), which any reader otherwise recognises by its first member.
"""
from __future__ import annotations

import gzip
import io
import struct
import threading
import zlib
from typing import Any, BinaryIO, List, Optional

import zstandard

from ..errors import ArchiveError, IncompleteArchiveError
from ._tar import PIECE
from .reader import DumpReader
from .registry import register_backend
from .writer import DumpWriter

#: zstd frames may not ask for a larger window than this (bounds reader memory)
ZSTD_MAX_WINDOW = 1 << 27
#: members up to this size are joined and compressed in one call
SMALL_FRAME = 64 << 10


class TarReader(DumpReader):
    """Plain tar: skipping a member is a seek."""
    backend_name = "tar"
    plain = True


class TarWriter(DumpWriter):
    backend_name = "tar"


class GzipReader(DumpReader):
    backend_name = "gzip"

    def _locate_manifest(self) -> Optional[int]:
        return _parse_locator(self._read_tail(GZIP_TRAILER_SIZE), _GZ_HEAD, _GZ_TAIL)

    def _decompressor(self, raw: BinaryIO) -> BinaryIO:
        self._tail = _TailReader(raw, GZIP_TRAILER_SIZE)
        return gzip.GzipFile(fileobj=self._tail, mode="rb")

    def _check_stream_end(self, manifest_offset: Optional[int]) -> None:
        _check_locator(getattr(self, "_tail", None), _GZ_HEAD, _GZ_TAIL, manifest_offset,
                       "gzip stream", "locator member")


class _Blocks:
    """A write-only sink keeping what is written (a frame compressed off the writer's
    thread)."""

    def __init__(self, blocks: List[Any]):
        self.write = blocks.append


def _compress_to(out: Any, comp: Any, parts: List[Any]) -> None:
    """Compress ``parts`` as one unit (a gzip member, a zstd frame) into ``out``, in
    pieces of PIECE bytes so that a large chunk is never copied whole."""
    for part in parts:
        view = memoryview(part)
        for start in range(0, len(view), PIECE):
            block = comp.compress(view[start:start + PIECE])
            if block:
                out.write(block)
    out.write(comp.flush())


class GzipWriter(DumpWriter):
    """gzip, one gzip member per tar member; ``level`` 1-9 (default 6)."""
    backend_name = "gzip"

    def _setup(self, level: int = 6, **options: Any) -> None:
        super()._setup(**options)
        if not isinstance(level, int) or not 0 <= level <= 9:
            raise ValueError(f"gzip level must be 0..9, not {level!r}")
        self.level = level

    def _write_frame(self, parts: List[Any]) -> None:
        # 31: a gzip wrapper, one gzip member per tar member
        _compress_to(self._out, zlib.compressobj(self.level, zlib.DEFLATED, 31), parts)

    def _encode_frame(self, parts: List[Any]) -> List[Any]:
        blocks: List[Any] = []
        _compress_to(_Blocks(blocks), zlib.compressobj(self.level, zlib.DEFLATED, 31), parts)
        return blocks

    def _finish_stream(self, manifest_offset: int) -> None:
        self._out.write(gzip_trailer(manifest_offset))


#: what every compressed archive we write ends with: a locator that names the byte
#: offset of the ``manifest.json`` member's frame, so that a reader of a seekable file
#: finds the manifest without decompressing the data (``LOCATOR_MAGIC`` + uint64 LE)
LOCATOR_MAGIC = b"DCARCEND"
LOCATOR_SIZE = 16
#: zstd: a skippable frame (magic 0x184D2A5D) holding the locator, 24 bytes in all.
#: It also ends the stream visibly: zstd does not notice a cut inside its last frame.
ZSTD_SKIPPABLE = b"\x5d\x2a\x4d\x18" + struct.pack("<I", LOCATOR_SIZE)
ZSTD_TRAILER_SIZE = len(ZSTD_SKIPPABLE) + LOCATOR_SIZE
#: gzip: an empty gzip member whose FEXTRA field (subfield id "DC") holds the locator,
#: 42 bytes in all; decompresses to nothing
_GZ_EXTRA = b"DC" + struct.pack("<H", LOCATOR_SIZE)
_GZ_HEAD = (b"\x1f\x8b\x08\x04\x00\x00\x00\x00\x00\xff"
            + struct.pack("<H", len(_GZ_EXTRA) + LOCATOR_SIZE) + _GZ_EXTRA)
_GZ_TAIL = b"\x03\x00" + struct.pack("<II", 0, 0)   # empty final block, CRC 0, size 0
GZIP_TRAILER_SIZE = len(_GZ_HEAD) + LOCATOR_SIZE + len(_GZ_TAIL)


def zstd_trailer(manifest_offset: int) -> bytes:
    return ZSTD_SKIPPABLE + LOCATOR_MAGIC + struct.pack("<Q", manifest_offset)


def gzip_trailer(manifest_offset: int) -> bytes:
    return _GZ_HEAD + LOCATOR_MAGIC + struct.pack("<Q", manifest_offset) + _GZ_TAIL


def _parse_locator(tail: bytes, prefix: bytes, suffix: bytes) -> Optional[int]:
    size = len(prefix) + LOCATOR_SIZE + len(suffix)
    if len(tail) != size or not tail.startswith(prefix) or not tail.endswith(suffix):
        return None
    body = tail[len(prefix):len(prefix) + LOCATOR_SIZE]
    if body[:8] != LOCATOR_MAGIC:
        return None
    return struct.unpack("<Q", body[8:])[0]


def _check_locator(tail, prefix: bytes, suffix: bytes, manifest_offset: Optional[int],
                   stream: str, what: str) -> None:
    if tail is None:
        return
    found = _parse_locator(tail.tail, prefix, suffix) if tail.eof else None
    if found is None:
        raise IncompleteArchiveError(
            f"the {stream} does not end with the dumpcodec {what}: the file is "
            "truncated or its writer did not finish (or it was recompressed as one "
            "stream, which cannot tell a cut file from a whole one: decompress it and "
            "read the plain tar)")
    if manifest_offset is not None and found != manifest_offset:
        raise ArchiveError(f"the {stream}'s {what} names offset {found} for the "
                           f"manifest, the end marker says {manifest_offset}")


class _TailReader(io.RawIOBase):
    """Pass reads through, remembering the last bytes and whether EOF was seen."""

    def __init__(self, raw: BinaryIO, keep: int = ZSTD_TRAILER_SIZE):
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

    def _locate_manifest(self) -> Optional[int]:
        return _parse_locator(self._read_tail(ZSTD_TRAILER_SIZE), ZSTD_SKIPPABLE, b"")

    def _decompressor(self, raw: BinaryIO) -> BinaryIO:
        self._tail = _TailReader(raw)
        dctx = zstandard.ZstdDecompressor(max_window_size=ZSTD_MAX_WINDOW)
        return dctx.stream_reader(self._tail, read_size=PIECE, read_across_frames=True,
                                  closefd=False)

    def _check_stream_end(self, manifest_offset: Optional[int]) -> None:
        _check_locator(getattr(self, "_tail", None), ZSTD_SKIPPABLE, b"", manifest_offset,
                       "zstd stream", "locator (a skippable frame)")


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
        self._frame: Optional[bytearray] = None   # see _write_frame
        self._local = threading.local()           # _encode_frame's, per thread

    def _write_frame(self, parts: List[Any]) -> None:
        # One frame per member.  Up to a chunk's size it is compressed in one call from
        # a buffer kept for it: zstd's streaming path copies the input into its own
        # window and matches across that window's wrap, which costs ~10% more CPU (and
        # the frame comes out a little larger).  A larger member (one huge tuple, a
        # large manifest) streams in pieces, so memory stays bounded.
        size = 0
        for p in parts:
            size += memoryview(p).nbytes
        if size <= SMALL_FRAME:
            # a small member (a header, a footer, a small table's only chunk): one
            # join and one call; the buffer below costs more than the copy
            self._out.write(self._cctx.compress(b"".join(parts)))
            return
        views = [memoryview(p).cast("B") for p in parts]
        limit = self.chunk_size + PIECE
        if size > limit:
            _compress_to(self._out, self._cctx.compressobj(), parts)
            return
        if self._frame is None or len(self._frame) < size:
            grown = 2 * len(self._frame) if self._frame is not None else 0
            self._frame = bytearray(max(size, min(grown, limit)))   # not one per chunk
        frame = memoryview(self._frame)
        pos = 0
        for v in views:
            frame[pos:pos + v.nbytes] = v
            pos += v.nbytes
        self._out.write(self._cctx.compress(frame[:pos]))

    def _encode_frame(self, parts: List[Any]) -> List[Any]:
        # the same frame as _write_frame, with a compressor per thread (a ZstdCompressor
        # is not to be shared between threads)
        local = self._local
        cctx = getattr(local, "cctx", None)
        if cctx is None:
            cctx = local.cctx = zstandard.ZstdCompressor(
                level=self.level, threads=self.threads, write_checksum=True)
        size = sum(memoryview(p).nbytes for p in parts)
        if size > self.chunk_size + PIECE:
            blocks: List[Any] = []
            _compress_to(_Blocks(blocks), cctx.compressobj(), parts)
            return blocks
        frame = getattr(local, "frame", None)
        if frame is None or len(frame) < size:
            frame = local.frame = bytearray(max(size, self.chunk_size + 1024))
        view = memoryview(frame)
        pos = 0
        for p in parts:
            v = memoryview(p).cast("B")
            view[pos:pos + v.nbytes] = v
            pos += v.nbytes
        return [cctx.compress(view[:pos])]

    def _finish_stream(self, manifest_offset: int) -> None:
        self._out.write(zstd_trailer(manifest_offset))


class DachsReader(GzipReader):
    """A DaCHS dump: gzip tar, ``table_NNN.dump``/``.textdump``, ``index.txt`` last."""
    backend_name = "dachs"
    layout_hint = "dachs"


register_backend("zstd", ZstdReader, ZstdWriter, magic=(0, b"\x28\xb5\x2f\xfd"))
register_backend("gzip", GzipReader, GzipWriter, magic=(0, b"\x1f\x8b"))
register_backend("tar", TarReader, TarWriter, magic=(257, b"ustar"))
register_backend("dachs", DachsReader, None)

__all__ = ["TarReader", "TarWriter", "GzipReader", "GzipWriter", "ZstdReader",
           "ZstdWriter", "DachsReader"]
