"""The backend registry and :func:`open_dump`, in the spirit of ``icat.dumpfile``.

A backend is a name, a reader class, a writer class and the magic bytes that
identify its files.  :mod:`.tarball` registers ``zstd``, ``gzip``, ``tar`` and
``dachs`` (importing :mod:`dumpcodec.archive` does that); :func:`register_backend` adds
or replaces one.  :func:`open_dump` opens a path, ``-`` or a file object with the
backend named, or for reading the one whose magic bytes the input starts with.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, Mapping, Optional, Tuple, Type, Union

from ..errors import ArchiveError
from .reader import DumpReader
from .streams import PrefixReader, Source, is_random_access, open_source
from .writer import DumpWriter


@dataclass
class Backend:
    name: str
    reader: Optional[Type[DumpReader]]
    writer: Optional[Type[DumpWriter]]
    magic: Optional[Tuple[int, bytes]]


#: the registered backends by name, in registration (and magic detection) order
backends: Dict[str, Backend] = {}

DEFAULT_BACKEND = "zstd"


def register_backend(name: str, reader_cls: Optional[Type[DumpReader]],
                     writer_cls: Optional[Type[DumpWriter]],
                     magic: Optional[Tuple[int, bytes]] = None) -> None:
    """Register (or replace) a backend.

    ``magic`` is ``(offset, bytes)``: :func:`open_dump` picks this backend for reading
    when the input has ``bytes`` at ``offset`` (at most 512).  Either class may be
    None for a read-only or write-only backend.
    """
    if magic is not None and (magic[0] < 0 or magic[0] + len(magic[1]) > 512):
        raise ValueError("magic must lie within the first 512 bytes")
    backends[name] = Backend(name, reader_cls, writer_cls, magic)


def _detect(head: bytes) -> Backend:
    for b in backends.values():
        if b.magic is not None and b.reader is not None:
            off, sig = b.magic
            if head[off:off + len(sig)] == sig:
                return b
    if not head:
        raise ArchiveError("empty input: not an archive")
    raise ArchiveError(f"not a recognised archive (first bytes {head[:8].hex(' ')}; "
                       f"known: {', '.join(n for n, b in backends.items() if b.magic)})")


def open_dump(path_or_file: Source, mode: str = "r",
              backend: Optional[str] = None, *,
              storage_options: Optional[Mapping[str, Any]] = None, **options: Any
              ) -> Union[DumpReader, DumpWriter]:
    """Open an archive for reading (``mode='r'``) or writing (``mode='w'``).

    ``path_or_file``: a path, ``'-'`` for stdin/stdout, a URL (``s3://bucket/key``,
    ``gs://``, ``az://``, ``memory://``, ``file://``: any fsspec URL, configured by
    ``storage_options`` and the filesystem's own environment; see
    :mod:`.remote`), or a binary file object
    (never closed by the reader/writer; a path is).  A URL is read by ranged
    requests (random access, like a regular file); written, it is uploaded as the
    writer goes and appears when the writer is closed.  A path that is not a regular
    file (a FIFO, ``/dev/stdin`` on a pipe) is read in one pass, never sought
    (:func:`~.streams.is_random_access`); a directory raises ArchiveError.  Reading
    picks the backend by ``backend`` name or else by the input's magic bytes (zstd,
    gzip, plain tar), peeking without seeking so that a pipe works.  Writing uses ``backend`` (default
    ``'zstd'``).  ``options`` go to the backend class (see :class:`DumpReader`,
    :class:`DumpWriter`).  Unknown backends and unrecognised input raise ArchiveError.
    """
    if mode not in ("r", "w", "rb", "wb"):
        raise ValueError(f"mode must be 'r' or 'w', not {mode!r}")
    writing = mode.startswith("w")
    if backend is not None and backend not in backends:
        raise ArchiveError(f"unknown archive backend {backend!r} (known: "
                           f"{', '.join(backends)})")
    fileobj, closefd = open_source(path_or_file, writing, storage_options)
    try:
        if writing:
            b = backends[backend or DEFAULT_BACKEND]
            if b.writer is None:
                raise ArchiveError(f"backend {b.name!r} cannot write")
            return b.writer(fileobj, closefd=closefd, **options)
        if backend is not None:
            b = backends[backend]
        else:
            if is_random_access(fileobj):
                pos = fileobj.tell()
                head = fileobj.read(512)
                fileobj.seek(pos)
            else:
                head = b""
                while len(head) < 512:
                    more = fileobj.read(512 - len(head))
                    if not more:
                        break
                    head += more
                fileobj = PrefixReader(head, fileobj, own=closefd)
                options.setdefault("seekable", False)
            b = _detect(head)
        if b.reader is None:
            raise ArchiveError(f"backend {b.name!r} cannot read")
        return b.reader(fileobj, closefd=closefd, **options)
    except BaseException:
        if closefd:
            fileobj.close()
        raise


__all__ = ["Backend", "backends", "DEFAULT_BACKEND", "register_backend", "open_dump"]
