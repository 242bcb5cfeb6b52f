"""Where :func:`dumpcodec.create_dump` writes: a file written under a temporary name
and renamed on success (written back to disk as it goes), a stream, or an object
uploaded to a URL (:mod:`dumpcodec.archive.remote`: completed on success, aborted on
failure)."""
from __future__ import annotations

import io
import os
import sys
import tempfile
from typing import IO, Any, Callable, Dict, Optional, Union


def _load_sync_file_range() -> Optional[Callable[[int, int, int, int], int]]:
    if not sys.platform.startswith("linux"):
        return None
    try:
        import ctypes
        f = ctypes.CDLL(None, use_errno=True).sync_file_range
    except (OSError, AttributeError):
        return None
    f.argtypes = (ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint)
    f.restype = ctypes.c_int
    return f


_sync_file_range = _load_sync_file_range()
_SYNC_FILE_RANGE_WRITE = 2
#: bytes written between two requests to start writing them back to disk
WRITEBACK_STEP = 8 << 20


class _Writeback(io.RawIOBase):
    """The archive file: asks the kernel to start writing back every WRITEBACK_STEP
    bytes as they are written (Linux ``sync_file_range``, as PostgreSQL does), so
    that the ``fsync`` at the end waits for the last few megabytes, not the whole
    archive.  Only a hint: the fsync is what makes the file durable."""

    def __init__(self, fd: int):
        self._fd = fd
        self._pos = 0
        self._synced = 0

    def writable(self) -> bool:
        return True

    def fileno(self) -> int:
        return self._fd

    def write(self, b) -> int:
        n = os.write(self._fd, b)
        self._pos += n
        if _sync_file_range is not None and self._pos - self._synced >= WRITEBACK_STEP:
            _sync_file_range(self._fd, self._synced, self._pos - self._synced,
                             _SYNC_FILE_RANGE_WRITE)
            self._synced = self._pos
        return n

    def close(self) -> None:
        if not self.closed:
            try:
                os.close(self._fd)
            finally:
                super().close()


class Destination:
    """A file written under a temporary name and renamed on success, or a stream."""

    def __init__(self, dest: Union[str, os.PathLike, IO[bytes]]):
        self.path: Optional[str] = None
        self.tmp: Optional[str] = None
        self.fileobj: Optional[IO[bytes]] = None
        self._own = False
        if isinstance(dest, (str, os.PathLike)) and str(dest) == "-":
            self.fileobj = sys.stdout.buffer
        elif isinstance(dest, (str, os.PathLike)):
            self.path = os.path.abspath(os.fspath(dest))
            if os.path.isdir(self.path):
                raise IsADirectoryError(f"{self.path} is a directory")
            d = os.path.dirname(self.path)
            if not os.path.isdir(d):
                raise FileNotFoundError(f"no directory {d} for {self.path}")
        else:
            self.fileobj = dest

    def open(self) -> IO[bytes]:
        if self.path is not None:
            fd, self.tmp = tempfile.mkstemp(
                prefix=f".{os.path.basename(self.path)}.", suffix=".partial",
                dir=os.path.dirname(self.path))
            self.fileobj = io.BufferedWriter(_Writeback(fd), buffer_size=1 << 20)
            self._own = True
        return self.fileobj

    def commit(self) -> Optional[int]:
        if self._own:
            self.fileobj.flush()
            os.fsync(self.fileobj.fileno())
            self.fileobj.close()
            os.chmod(self.tmp, 0o666 & ~_umask())
            os.replace(self.tmp, self.path)
            self.tmp = None
            return os.path.getsize(self.path)
        try:
            self.fileobj.flush()
        except (AttributeError, OSError):
            pass
        return None

    def discard(self) -> None:
        if self._own:
            try:
                self.fileobj.close()
            except OSError:
                pass
            if self.tmp and os.path.exists(self.tmp):
                os.unlink(self.tmp)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def open_destination(dest: Union[str, os.PathLike, IO[bytes]],
                     storage_options: Optional[Dict[str, Any]] = None) -> Any:
    """A URL's upload (:class:`~dumpcodec.archive.remote.RemoteDestination`), else a
    local :class:`Destination`; ``file://`` is a local path.  Both have ``open``,
    ``commit``, ``discard`` and ``path``."""
    if isinstance(dest, str) and "://" in dest:
        from .archive import remote
        if remote.is_url(dest):
            path = remote.local_path(dest)
            if path is None:
                return remote.RemoteDestination(dest, storage_options)
            dest = path
    return Destination(dest)
