"""Where an archive's bytes come from and go to: paths, pipes and file objects.

:func:`is_random_access` says whether a source can be read at any offset (a regular
file) or only once, front to back (a pipe, a FIFO, ``/dev/stdin``, a socket);
:func:`open_source` opens what :func:`~.registry.open_dump` is given.  Also a writer
that counts what it wrote (member offsets) and a reader that serves the bytes peeked
for detection before the rest of a pipe.
"""
from __future__ import annotations

import io
import os
import stat
import sys
from typing import Any, BinaryIO, Mapping, Optional, Tuple, Union

from ..errors import ArchiveError

#: what :func:`open_dump` and :func:`is_random_access` take
Source = Union[str, bytes, "os.PathLike[str]", BinaryIO]


def _is_path(source: Any) -> bool:
    return isinstance(source, (str, bytes, os.PathLike))


def is_random_access(source: Source) -> bool:
    """Whether ``source`` can be read at any offset, as often as wanted.

    A URL (``s3://...``, any fsspec URL: :mod:`.remote`) is: objects are read by
    ranged requests, and each reader opens its own handle (no request is made here).

    ``source`` is what :func:`~.registry.open_dump` takes.  A path: True for a
    regular file (or a block device), which can also be opened again, e.g. once per
    worker thread; False for ``'-'`` and for a FIFO, a socket or a character device
    (``/dev/stdin`` on a pipe or a terminal), which are read once, front to back.  A
    file object: True when its ``seekable()`` says so and ``tell()`` works (a file
    object opened on a pipe says False).  A directory raises ArchiveError, a
    missing path FileNotFoundError.

    Readers use it to choose between random access (reading one table, the manifest
    first) and one pass (:meth:`~.reader.DumpReader.iter_tables`).
    """
    if _is_path(source):
        if os.fsdecode(source) == "-":
            return False
        if _is_url(source):
            from .remote import local_path
            path = local_path(os.fsdecode(source))
            if path is None:
                return True
            source = path
        mode = _stat(source).st_mode
        return stat.S_ISREG(mode) or stat.S_ISBLK(mode)
    try:
        if not source.seekable():
            return False
        source.tell()
        return True
    except (AttributeError, OSError, ValueError):
        return False


def _stat(path: Any) -> os.stat_result:
    st = os.stat(path)      # a missing path: FileNotFoundError, as open() would say
    if stat.S_ISDIR(st.st_mode):
        raise ArchiveError(f"archive {os.fsdecode(path)!r} is a directory, not an "
                           "archive file")
    return st


def _is_url(source: Any) -> bool:
    # a plain path never imports fsspec (nor .remote)
    return isinstance(source, (str, bytes)) and b"://" in os.fsencode(source)


def open_source(source: Source, writing: bool,
                storage_options: Optional[Mapping[str, Any]] = None
                ) -> Tuple[BinaryIO, bool]:
    """The binary file object for ``source`` and whether it was opened here (and so
    is to be closed by whoever gets it).

    ``'-'`` is stdout when ``writing``, else stdin; another path is opened (a
    directory raises ArchiveError, other failures OSError as ``open`` does); a URL
    (``s3://bucket/key``, any fsspec URL, with ``storage_options``) is read by
    ranged requests (:class:`.remote.RangedReader`) and written as one upload (the
    object appears when the writer is closed; to have it appear only after a
    successful dump, :func:`dumpcodec.create_dump` aborts it on failure); a file
    object is returned as it is.
    """
    if not _is_path(source):
        return source, False
    if os.fsdecode(source) == "-":
        return (sys.stdout.buffer if writing else sys.stdin.buffer), False
    if _is_url(source):
        from . import remote
        url = os.fsdecode(source)
        if remote.is_url(url):
            path = remote.local_path(url)
            if path is None:
                if writing:
                    return _UploadFile(remote.RemoteDestination(url, storage_options)), True
                return remote.RangedReader(url, storage_options), True
            source = path
    try:
        return open(source, "wb" if writing else "rb"), True
    except IsADirectoryError:
        raise ArchiveError(f"archive {os.fsdecode(source)!r} is a directory, not an "
                           "archive file") from None


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


class _UploadFile(io.RawIOBase):
    """A remote destination as a file: closing it completes the upload (the object
    appears); :meth:`discard` aborts it."""

    def __init__(self, dest: Any):
        self._dest = dest
        dest.open()

    def writable(self) -> bool:
        return True

    def write(self, b) -> int:
        return self._dest.write(b)

    def discard(self) -> None:
        if not self.closed:
            self._dest.discard()
            super().close()

    def __del__(self) -> None:
        # io's default closes (here: completes the upload) when collected; a writer
        # dropped without close() left an unfinished archive: abort instead
        if not self.closed:
            try:
                self.discard()
            except Exception:
                pass

    def close(self) -> None:
        if not self.closed:
            try:
                self._dest.commit()
            except BaseException:
                self._dest.discard()
                raise
            finally:
                super().close()


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


__all__ = ["is_random_access", "open_source", "CountingWriter", "PrefixReader"]
