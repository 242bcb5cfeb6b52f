"""File-object helpers of the archive layer: where the bytes come from and go to.

A writer that counts what it wrote (member offsets), a reader that serves bytes
peeked for detection before the rest of a pipe, and whether a file object allows
random access.
"""
from __future__ import annotations

import io
from typing import BinaryIO


class CountingWriter:
    """Write everything to ``raw`` (looping over short writes) and count the bytes."""

    def __init__(self, raw: BinaryIO):
        self.raw = raw
        self.count = 0

    def write(self, data) -> int:
        view = memoryview(data)
        total = len(view)
        while view:
            n = self.raw.write(view)
            if n is None:        # non-blocking raw stream that took nothing: retry
                continue
            view = view[n:]
        self.count += total
        return total

    def flush(self) -> None:
        self.raw.flush()


class PrefixReader(io.RawIOBase):
    """Serve ``prefix`` (the peeked magic bytes) and then the rest of ``raw``."""

    def __init__(self, prefix: bytes, raw: BinaryIO, own: bool = False):
        self._prefix = memoryview(prefix)
        self._raw = raw
        self._own = own

    def close(self) -> None:
        if not self.closed and self._own:
            self._raw.close()
        super().close()

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:
        if self._prefix:
            n = min(len(b), len(self._prefix))
            b[:n] = self._prefix[:n]
            self._prefix = self._prefix[n:]
            return n
        target = memoryview(b)
        if hasattr(self._raw, "readinto"):
            return self._raw.readinto(target) or 0
        data = self._raw.read(len(target))
        target[:len(data)] = data
        return len(data)


def is_seekable(f) -> bool:
    try:
        if not f.seekable():
            return False
        f.tell()
        return True
    except (AttributeError, OSError, ValueError):
        return False
