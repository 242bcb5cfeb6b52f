"""Joins chunk streams (each a complete COPY BINARY stream) into one COPY stream.

An archive holds a big table as several chunk members, each header + tuples +
trailer; a COPY FROM STDIN takes one stream.  :class:`ChunkJoiner` keeps the first
header and the last trailer and passes everything between through without copying.
"""
from __future__ import annotations

from typing import Any, List

from ..errors import ArchiveError
from .pure import HEADER_SIZE, SIGNATURE, TRAILER

__all__ = ["ChunkJoiner"]


def _header_size(buf: bytes) -> int:
    if len(buf) < HEADER_SIZE or buf[:len(SIGNATURE)] != SIGNATURE:
        raise ArchiveError("a chunk does not start with the COPY BINARY signature")
    return HEADER_SIZE + int.from_bytes(buf[HEADER_SIZE - 4:HEADER_SIZE], "big")


class ChunkJoiner:
    """Joins chunk streams (each header + tuples + trailer) into one COPY stream.

    ``feed(piece, chunk_no)`` returns the buffers to send (views into ``piece``: a
    chunk is not copied); pieces may split anywhere.  The first chunk's header
    is kept, every later one dropped; each chunk's 2-byte trailer is held back and
    only the last one is sent (``close()``).
    """

    def __init__(self, binary: bool = True):
        self.binary = binary
        self.chunk = -1
        self.head = b""        # the start of a chunk, until its header is complete
        self.tail = b""        # the last (up to) two bytes seen: a trailer candidate
        self.in_header = False

    def feed(self, piece, chunk: int) -> List[Any]:
        view = memoryview(piece).cast("B")
        if not self.binary:
            return [view]
        if chunk != self.chunk:
            self.chunk = chunk
            self.tail = b""       # the previous chunk's trailer: dropped
            self.in_header = True
            self.head = b""
        if self.in_header:
            before = len(self.head)          # this chunk's bytes seen in earlier pieces
            self.head += bytes(view[:max(0, 4096 - before)])
            if len(self.head) < HEADER_SIZE:
                return []
            hs = _header_size(self.head)
            if len(self.head) < hs:
                if len(self.head) >= 4096:
                    raise ArchiveError("a chunk's COPY header extension is too long")
                return []
            start_in_piece = hs - before     # > 0: the header was incomplete before
            self.in_header = False
            out: List[Any] = []
            if chunk == 0:
                out.append(self.head[:hs])
            self.head = b""
            view = view[start_in_piece:]
            return out + self._body(view)
        return self._body(view)

    def _body(self, view) -> List[Any]:
        out: List[Any] = []
        n = len(view)
        if n >= 2:
            if self.tail:
                out.append(self.tail)
            out.append(view[:n - 2])
            self.tail = bytes(view[n - 2:])
        else:
            data = self.tail + bytes(view)
            if len(data) > 2:
                out.append(data[:len(data) - 2])
            self.tail = data[-2:]
        return out

    def close(self) -> bytes:
        if not self.binary or self.chunk < 0:
            return b""
        if self.tail != TRAILER:
            raise ArchiveError("a chunk does not end with the COPY BINARY trailer")
        return self.tail
