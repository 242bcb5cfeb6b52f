"""Reader and writer base classes, the backend registry and ``open_dump``.

In the spirit of ``icat.dumpfile``: :class:`DumpReader` and :class:`DumpWriter` hold
the whole logic of the archive layout (docs/FORMAT.md); a backend subclass only says
how bytes are (de)compressed: :mod:`.tarball` registers ``tar`` (plain), ``gzip`` and
``zstd``, :mod:`.dachs` registers ``dachs`` (DaCHS dumps, read only).  Readers read both
layouts, ours and DaCHS's, whatever the compression.

Memory: a writer holds one chunk being cut (the codec's chunker buffer) and the piece
cut from it; a reader holds the chunk it is reading while its consumer may still hold
the previous one, on a pipe too: about two chunks either way, whatever the table size.
Every size an archive declares is checked against a limit before anything is read.
"""
from __future__ import annotations

import hashlib
import io
import os
import sys
import threading
import time
from collections import namedtuple
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import (Any, BinaryIO, Dict, Iterator, List, Optional, Tuple,
                    Type, Union)

from ..errors import (ArchiveError, ChecksumError, CopyFormatError,
                      IncompleteArchiveError)
from . import manifest as mf
from ._tar import (END_OF_ARCHIVE, TarEntry, TarStreamReader, drain_end,
                   member_header, pad)

#: bytes of COPY data per chunk member unless ``chunk_size=`` says otherwise (the
#: codec's default too).  A reader holds a few chunks at a time (the one its consumer
#: still has, the one being read), a writer about three (the chunker's buffer, the
#: piece in the writer's thread and, for zstd, the buffer it is compressed from).
#: 8 MiB: members compress as well as 32 MiB ones (0.3% larger on the benchmark
#: tables) and a dump is faster, because an allocation of 32 MiB or more is always a
#: fresh mmap with glibc (about 100,000 page faults more per dump of 346 MB of COPY
#: data).
DEFAULT_CHUNK_SIZE = 8 << 20
#: largest chunk_size a writer accepts (members stay far below ustar's 8 GiB limit)
MAX_CHUNK_SIZE = 1 << 30
#: largest data member a reader accepts by default: one PostgreSQL row is at most 1 GiB
#: (the server's allocation limit), so no honest chunk is larger
DEFAULT_MAX_MEMBER_SIZE = (1 << 30) + (1 << 20)
#: largest manifest.json / index.txt a reader accepts
DEFAULT_MAX_META_SIZE = 64 << 20
#: largest dumpcodec.json, table header/footer, end marker
MAX_SMALL_META_SIZE = 8 << 20

_COPY_HEADER_LEN = 19   # signature + flags + extension length (for text/binary sniffing)


# ==================================================================== data model

@dataclass
class MemberInfo:
    """One member of the archive as the metadata describes it."""
    name: str
    size: int
    rows: Optional[int] = None
    sha256: Optional[str] = None
    offset: Optional[int] = None           # byte offset in the archive file where the
    compressed_size: Optional[int] = None  # member's tar header (compressed frame) starts

    def to_json(self) -> Dict[str, Any]:
        doc: Dict[str, Any] = {"name": self.name, "size": self.size, "sha256": self.sha256}
        for key in ("rows", "offset", "compressed_size"):
            value = getattr(self, key)
            if value is not None:
                doc[key] = value
        return doc

    @classmethod
    def from_json(cls, doc: Dict[str, Any]) -> "MemberInfo":
        return cls(doc["name"], doc["size"], doc.get("rows"), doc.get("sha256"),
                   doc.get("offset"), doc.get("compressed_size"))


@dataclass
class TableInfo:
    """One table of an archive.

    ``members`` are the data (chunk) members in order; each is one complete COPY
    stream in ``format``.  ``rows``, ``raw_size`` (COPY bytes) and ``compressed_size``
    (bytes in the archive file, None where unknown) come from the footer/manifest;
    for a DaCHS dump ``rows`` is None, ``raw_size`` the member size, ``definition``,
    ``columns`` and ``types`` None.  ``dump_time`` is UTC unix seconds.

    While streaming (:meth:`DumpReader.iter_tables`) ``complete`` turns True once the
    table's footer has been read and checked, and ``verified`` once every data member
    was also read and its SHA-256 matched the footer.
    """
    table_id: str
    index: int
    format: str = "binary"
    columns: Optional[List[str]] = None
    types: Optional[List[str]] = None
    definition: Optional[Dict[str, Any]] = None
    dump_time: Optional[float] = None
    extra: Dict[str, Any] = field(default_factory=dict)
    members: List[MemberInfo] = field(default_factory=list)
    rows: Optional[int] = None
    raw_size: Optional[int] = None
    compressed_size: Optional[int] = None
    header: Optional[MemberInfo] = None
    footer: Optional[MemberInfo] = None
    chunk_size: Optional[int] = None
    layout: str = "dumpcodec"
    complete: bool = False
    verified: bool = False

    @property
    def has_definition(self) -> bool:
        return self.definition is not None

    @property
    def member_names(self) -> List[str]:
        return [m.name for m in self.members]

    def to_json(self) -> Dict[str, Any]:
        """The table as in ``manifest.json`` (plus ``layout``), for ``ls --json``."""
        doc = {
            "table_id": self.table_id, "index": self.index, "format": self.format,
            "columns": self.columns, "types": self.types, "definition": self.definition,
            "dump_time": self.dump_time, "extra": self.extra, "rows": self.rows,
            "raw_size": self.raw_size, "compressed_size": self.compressed_size,
            "members": [m.to_json() for m in self.members],
        }
        if self.header is not None:
            doc["header"] = self.header.to_json()
        if self.footer is not None:
            doc["footer"] = self.footer.to_json()
        if self.chunk_size is not None:
            doc["chunk_size"] = self.chunk_size
        return doc


#: what :func:`iter_table_infos` yields, after DaCHS's ``iterTableInfos``
TableInfoTuple = namedtuple("TableInfoTuple",
                            "member table_id has_definition dump_time size")


def iter_table_infos(reader: "DumpReader") -> Iterator[TableInfoTuple]:
    """Per table: (member name, table-id, has-definition, UTC unix dump time, size).

    As DaCHS's ``iterTableInfos``.  ``member`` is the first data member (the header
    member for a table without data), ``size`` the raw COPY bytes of the table.
    """
    for t in reader.tables():
        member = t.members[0].name if t.members else (t.header.name if t.header else "")
        yield TableInfoTuple(member, t.table_id, t.has_definition, t.dump_time,
                             t.raw_size)


def parse_index_file(src: Union[BinaryIO, bytes]) -> List[Tuple[str, str]]:
    """Parse an ``index.txt`` into ``(member_name, table_id)`` tuples (see manifest)."""
    return mf.parse_index_file(src)


# ==================================================================== I/O helpers

class _CountingWriter:
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


class _PrefixReader(io.RawIOBase):
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


def _is_seekable(f) -> bool:
    try:
        if not f.seekable():
            return False
        f.tell()
        return True
    except (AttributeError, OSError, ValueError):
        return False


def _utc_iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


# ==================================================================== writer

class TableWriter:
    """Receives one table's raw COPY stream and cuts it into chunk members.

    Obtained from :meth:`DumpWriter.add_table`.  ``write(data)`` takes the stream in
    pieces of any size, split anywhere; ``close()`` flushes the last chunk and writes
    the table's footer (rows, sizes, checksums).  A context manager: leaving the
    ``with`` by an exception aborts the whole archive (it stays incomplete).
    Attributes after close: ``rows``, ``raw_size``, ``members``.
    """

    def __init__(self, writer: "DumpWriter", info: TableInfo, chunk_size: int):
        self._writer = writer
        self.info = info
        self.table_id = info.table_id
        self.format = info.format
        self.rows = 0
        self.raw_size = 0
        self.members: List[MemberInfo] = []
        self.closed = False
        self._chunk_size = chunk_size
        self._fed = False
        if info.format == "binary":
            from ..codec import Chunker
            ncols = len(info.columns) if info.columns is not None else None
            self._chunker = Chunker(chunk_size, ncols)
        else:
            self._chunker = None
            self._text = bytearray()
            self._text_scan = 0

    def __enter__(self) -> "TableWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            self._writer.abort()
        elif not self.closed:
            self.close()

    def _check_open(self) -> None:
        if self.closed:
            raise ArchiveError(f"table {self.table_id!r}: write after close")
        if self._writer._failed:
            raise ArchiveError(f"table {self.table_id!r}: the archive writer was aborted")

    def write(self, data) -> None:
        """Add the next piece of the table's COPY stream (bytes-like, any size)."""
        self._check_open()
        try:
            if self._chunker is not None:
                self._fed = self._fed or len(data) > 0
                for piece, rows in self._chunker.feed(data):
                    self._emit(piece, rows)
            else:
                self._write_text(data)
        except CopyFormatError as exc:
            self._writer.abort()
            raise self._named(exc) from exc
        except BaseException:
            self._writer.abort()
            raise

    def _named(self, exc: CopyFormatError) -> CopyFormatError:
        # the codec's message names offset/row/column; say which table as well
        return CopyFormatError(f"table {self.table_id!r}: {exc}", exc.offset, exc.row,
                               exc.column)

    def _write_text(self, data) -> None:
        # text COPY: one row per line (newlines inside values are escaped as \n), so a
        # chunk is cut after a newline; a line longer than chunk_size goes alone
        buf = self._text
        buf += data
        size = self._chunk_size
        while len(buf) >= size:
            cut = buf.rfind(b"\n", 0, size)
            if cut < 0:
                cut = buf.find(b"\n", max(size, self._text_scan))
                if cut < 0:
                    self._text_scan = len(buf)
                    return
            piece = bytes(buf[:cut + 1])
            del buf[:cut + 1]
            self._text_scan = 0
            self._emit(piece, piece.count(b"\n"))

    def _emit(self, piece, rows: int) -> None:
        number = len(self.members)
        name = mf.chunk_member(self.info.index, number, self.format)
        member = MemberInfo(name, len(piece), rows=rows)
        self.members.append(member)
        self.rows += rows
        self.raw_size += len(piece)
        # checksum, compression and the write happen in the writer's helper thread
        self._writer._write_chunk(member, piece, self.info.dump_time)

    def close(self) -> None:
        """Flush the last chunk and write the footer.  Idempotent."""
        if self.closed:
            return
        self._check_open()
        try:
            if self._chunker is not None:
                # no data at all: a table without members (not a truncated stream)
                if self._fed:
                    for piece, rows in self._chunker.close():
                        self._emit(piece, rows)
            elif self._text:
                if not self._text.endswith(b"\n"):
                    raise ArchiveError(f"table {self.table_id!r}: text COPY data does not "
                                       "end with a newline")
                piece = bytes(self._text)
                self._text = bytearray()
                self._emit(piece, piece.count(b"\n"))
            self.closed = True
            self._writer._finish_table(self)
        except CopyFormatError as exc:
            self._writer.abort()
            raise self._named(exc) from exc
        except BaseException:
            self._writer.abort()
            raise


class _ChunkThread:
    """Writes a DumpWriter's data members in order, in one helper thread.

    At most one member is in hand at a time: ``submit`` waits until the previous one
    is written, so memory stays at one chunk being written plus the one the caller
    is filling.  An error is kept and raised by the next ``submit`` or ``wait``.  The
    thread ends after IDLE seconds without work (a writer never closed does not keep
    one waiting forever) and is started again by the next ``submit``.
    """

    IDLE = 2.0

    def __init__(self, writer: "DumpWriter"):
        self._writer = writer
        self._cond = threading.Condition()
        self._job: Optional[tuple] = None
        self._busy = False
        self._error: Optional[BaseException] = None
        self._stopped = False
        self._thread: Optional[threading.Thread] = None

    def _run(self) -> None:
        while True:
            with self._cond:
                if self._job is None and not self._stopped:
                    self._cond.wait(self.IDLE)
                if self._job is None:
                    self._thread = None      # idle or stopped: the next submit starts one
                    return
                job, self._job = self._job, None
            try:
                self._writer._put_chunk(*job)
            except BaseException as exc:   # raised in the caller's thread
                with self._cond:
                    self._error = exc
            finally:
                del job
                with self._cond:
                    self._busy = False
                    self._cond.notify_all()

    def wait(self) -> None:
        """Until the member in hand is written; raises what writing one raised."""
        with self._cond:
            while self._busy:
                self._cond.wait()
            if self._error is not None:
                raise self._error

    def submit(self, member: MemberInfo, piece, mtime: float) -> None:
        self.wait()
        with self._cond:
            if self._stopped:
                raise ArchiveError("the archive writer is closed")
            self._job = (member, piece, mtime)
            self._busy = True
            if self._thread is None:
                self._thread = threading.Thread(target=self._run,
                                                name="dumpcodec-archive-writer", daemon=True)
                self._thread.start()
            self._cond.notify_all()

    def stop(self, discard: bool = False) -> None:
        """End the thread after the member it is writing; ``discard``: drop a member
        submitted but not yet started."""
        with self._cond:
            self._stopped = True
            if discard and self._job is not None:
                self._job = None
                self._busy = False
            self._cond.notify_all()
            thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join()


class DumpWriter:
    """Writes an archive (docs/FORMAT.md) in one pass to a file object.

    Get one from :func:`open_dump` (``mode='w'``).  The target may be a pipe: nothing
    is ever sought.  Use as a context manager or call :meth:`close`; only
    ``close()`` after success writes the manifest, ``index.txt`` and the end marker,
    so an exception inside the ``with`` (or :meth:`abort`) leaves an archive that
    every reader reports as incomplete.  The file object is closed only if
    :func:`open_dump` opened it.

    Options: ``chunk_size`` (bytes of COPY data per member, default
    :data:`DEFAULT_CHUNK_SIZE`), ``level`` (compression level), ``threads`` (zstd
    worker threads, 0 = none), ``created`` (UTC unix time to record, default now).
    """

    backend_name = "?"

    def __init__(self, fileobj: BinaryIO, *, closefd: bool = False,
                 chunk_size: int = DEFAULT_CHUNK_SIZE, created: Optional[float] = None,
                 **options: Any):
        if not isinstance(chunk_size, int) or not 64 <= chunk_size <= MAX_CHUNK_SIZE:
            raise ValueError(f"chunk_size must be an integer from 64 to {MAX_CHUNK_SIZE}, "
                             f"not {chunk_size!r}")
        self._raw = fileobj
        self._closefd = closefd
        self._out = _CountingWriter(fileobj)
        self.chunk_size = chunk_size
        self.created = time.time() if created is None else float(created)
        self._info: Dict[str, Any] = {}
        self._server_version: Optional[str] = None
        self._client_encoding: Optional[str] = None
        self._started = False
        self._failed = False
        self.closed = False
        self._current: Optional[TableWriter] = None
        self._tables: List[TableWriter] = []
        self._ids: set = set()
        self._chunks: Optional[_ChunkThread] = None
        self._setup(**options)

    # ---- backend hooks
    def _setup(self, **options: Any) -> None:
        if options:
            raise TypeError(f"{type(self).__name__}: unknown options {sorted(options)}")

    def _write_frame(self, parts: List[Any]) -> None:
        """Write ``parts`` (bytes-like) as one independently decodable unit."""
        for p in parts:
            self._out.write(p)

    def _finish_stream(self, manifest_offset: int) -> None:
        """Called once after the last frame with the archive offset of the manifest
        member (compressed backends append their locator trailer)."""

    # ---- context manager
    def __enter__(self) -> "DumpWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            self.abort()
        else:
            self.close()

    # ---- public API
    def set_info(self, server_version: Optional[str] = None,
                 client_encoding: Optional[str] = None, **extra: Any) -> None:
        """Record archive-level facts: server version, client encoding, and any
        JSON-serialisable ``extra`` (stored under ``info``).  Call before the first
        table for them to appear in ``dumpcodec.json`` too; later calls update the
        manifest only."""
        if server_version is not None:
            self._server_version = str(server_version)
        if client_encoding is not None:
            self._client_encoding = str(client_encoding)
        mf.dump_json(extra)  # fail now, not at close, on what JSON cannot hold
        self._info.update(extra)

    def add_table(self, table_id: str, definition: Optional[Dict[str, Any]],
                  columns: Optional[List[str]], types: Optional[List[str]],
                  format: str = "binary", extra: Optional[Dict[str, Any]] = None,
                  ) -> TableWriter:
        """Start the next table; returns its :class:`TableWriter`.

        ``definition`` is the schema layer's ``TableDef.to_json()`` dict (stored as
        is) or None; ``columns`` the explicit column list of the COPY, ``types`` one
        type text per column (e.g. ``"numeric(12,2)"``); ``format`` ``'binary'`` or
        ``'text'`` (the COPY format of the data); ``extra`` any JSON object stored with
        the table.  Only one table is open at a time: close the previous one first.
        Table ids are unique within an archive.
        """
        self._check_usable()
        if self._current is not None and not self._current.closed:
            raise ArchiveError(f"add_table({table_id!r}): table "
                               f"{self._current.table_id!r} is still open")
        if not isinstance(table_id, str) or not table_id:
            raise ValueError(f"table_id must be a non-empty string, not {table_id!r}")
        if table_id in self._ids:
            raise ArchiveError(f"table {table_id!r} is already in the archive")
        if definition is not None and not isinstance(definition, dict):
            raise ValueError(f"table {table_id!r}: definition must be a dict or None")
        for what, value in (("columns", columns), ("types", types)):
            if value is not None and (not isinstance(value, (list, tuple))
                                      or not all(isinstance(v, str) for v in value)):
                raise ValueError(f"table {table_id!r}: {what} must be a list of strings")
        if columns is not None and types is not None and len(columns) != len(types):
            raise ValueError(f"table {table_id!r}: {len(types)} types for "
                             f"{len(columns)} columns")
        if format not in mf.TABLE_FORMATS:
            raise ValueError(f"table {table_id!r}: format must be one of "
                             f"{mf.TABLE_FORMATS}, not {format!r}")
        if extra is not None and not isinstance(extra, dict):
            raise ValueError(f"table {table_id!r}: extra must be a dict or None")
        self._start()
        index = len(self._tables)
        info = TableInfo(table_id, index, format,
                         list(columns) if columns is not None else None,
                         list(types) if types is not None else None,
                         definition, time.time(), dict(extra or {}),
                         chunk_size=self.chunk_size)
        header = {"archive_format": mf.FORMAT_NAME, "format_version": mf.FORMAT_VERSION,
                  "kind": "table-header", "table_id": table_id, "index": index,
                  "format": format, "columns": info.columns, "types": info.types,
                  "definition": definition, "dump_time": info.dump_time,
                  "extra": info.extra, "chunk_size": self.chunk_size}
        try:
            data = mf.dump_json(header)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"table {table_id!r}: definition/extra not JSON-serialisable: "
                             f"{exc}") from None
        try:
            info.header = self._write_member(mf.header_member(index), data, info.dump_time)
        except BaseException:
            self.abort()
            raise
        info.header.sha256 = hashlib.sha256(data).hexdigest()
        tw = TableWriter(self, info, self.chunk_size)
        self._ids.add(table_id)
        self._tables.append(tw)
        self._current = tw
        return tw

    def close(self) -> None:
        """Finish the archive (manifest, index.txt, end marker) and close what we
        opened.  An open table is closed first.  After :meth:`abort` this only
        closes the file."""
        if self.closed:
            return
        try:
            if not self._failed:
                if self._current is not None and not self._current.closed:
                    self._current.close()
                if not self._failed:
                    self._write_trailer()
        except BaseException:
            self._failed = True
            raise
        finally:
            if self._chunks is not None:
                self._chunks.stop()
            self.closed = True
            try:
                if not self._failed:
                    self._out.flush()
            finally:
                if self._closefd:
                    self._raw.close()

    def abort(self) -> None:
        """Give up: no manifest or end marker will be written (the archive stays
        incomplete); closes the file if we opened it."""
        self._failed = True
        if self._chunks is not None:
            self._chunks.stop(discard=True)   # nothing more is written; then the file closes
        if not self.closed:
            self.closed = True
            try:
                self._out.flush()
            except Exception:
                pass  # the stream may be what broke
            if self._closefd:
                try:
                    self._raw.close()
                except Exception:
                    pass

    # ---- internals
    def _check_usable(self) -> None:
        if self._failed:
            raise ArchiveError("the archive writer was aborted")
        if self.closed:
            raise ArchiveError("the archive writer is closed")

    def _info_doc(self, kind: str) -> Dict[str, Any]:
        from .. import __version__
        doc = {"archive_format": mf.FORMAT_NAME, "format_version": mf.FORMAT_VERSION,
               "kind": kind, "created": _utc_iso(self.created),
               "created_unix": self.created, "tool": f"dumpcodec {__version__}",
               "compression": self.backend_name, "chunk_size": self.chunk_size,
               "info": dict(self._info)}
        if self._server_version is not None:
            doc["server_version"] = self._server_version
        if self._client_encoding is not None:
            doc["client_encoding"] = self._client_encoding
        return doc

    def _start(self) -> None:
        if self._started:
            return
        self._started = True
        try:
            self._write_member(mf.INFO_MEMBER, mf.dump_json(self._info_doc("info")),
                               self.created)
        except BaseException:
            self.abort()
            raise

    def _write_chunk(self, member: MemberInfo, piece, mtime: float) -> None:
        """Queue a data member: its checksum, frame and write run in a helper thread
        while this one goes on receiving the next chunk (all three release the GIL)."""
        if self._chunks is None:
            self._chunks = _ChunkThread(self)
        self._chunks.submit(member, piece, mtime)

    def _put_chunk(self, member: MemberInfo, piece, mtime: float) -> None:
        digest = hashlib.sha256(piece).hexdigest()
        written = self._put_member(member.name, piece, mtime)
        member.sha256 = digest
        member.offset = written.offset
        member.compressed_size = written.compressed_size

    def _wait_chunks(self) -> None:
        """Until every queued data member is written; raises what writing one raised."""
        if self._chunks is not None:
            self._chunks.wait()

    def _write_member(self, name: str, data, mtime: float,
                      tail: bytes = b"") -> MemberInfo:
        self._wait_chunks()
        return self._put_member(name, data, mtime, tail)

    def _put_member(self, name: str, data, mtime: float,
                    tail: bytes = b"") -> MemberInfo:
        size = len(data)
        offset = self._out.count
        self._write_frame([member_header(name, size, mtime), data, bytes(pad(size)) + tail])
        return MemberInfo(name, size, offset=offset,
                          compressed_size=self._out.count - offset)

    def _finish_table(self, tw: TableWriter) -> None:
        self._wait_chunks()        # the members' offsets and checksums are final
        info = tw.info
        info.members = tw.members
        info.rows = tw.rows
        info.raw_size = tw.raw_size
        footer = {"archive_format": mf.FORMAT_NAME, "format_version": mf.FORMAT_VERSION,
                  "kind": "table-footer", "table_id": info.table_id, "index": info.index,
                  "rows": tw.rows, "raw_size": tw.raw_size,
                  "members": [m.to_json() for m in tw.members]}
        data = mf.dump_json(footer)
        info.footer = self._write_member(mf.footer_member(info.index), data, time.time())
        info.footer.sha256 = hashlib.sha256(data).hexdigest()
        info.compressed_size = (info.header.compressed_size + info.footer.compressed_size
                                + sum(m.compressed_size or 0 for m in info.members))
        info.complete = True
        self._current = None

    def _write_trailer(self) -> None:
        self._start()
        doc = self._info_doc("manifest")
        doc["tables"] = [tw.info.to_json() for tw in self._tables]
        manifest = mf.dump_json(doc)
        index = mf.format_index((m.name, tw.table_id)
                                for tw in self._tables for m in tw.members)
        now = time.time()
        manifest_member = self._write_member(mf.MANIFEST_MEMBER, manifest, now)
        self._write_member(mf.INDEX_MEMBER, index, now)
        end = {"archive_format": mf.FORMAT_NAME, "format_version": mf.FORMAT_VERSION,
               "kind": "end", "tables": len(self._tables),
               "members": 3 + sum(2 + len(tw.members) for tw in self._tables),
               "manifest_sha256": hashlib.sha256(manifest).hexdigest(),
               "index_sha256": hashlib.sha256(index).hexdigest(),
               "manifest_offset": manifest_member.offset}
        self._write_member(mf.END_MEMBER, mf.dump_json(end), now, tail=END_OF_ARCHIVE)
        self._finish_stream(manifest_member.offset)


# ==================================================================== reader

class _TableState:
    """What one pass has seen of a table: digests and row counts per data member."""

    def __init__(self, info: TableInfo):
        self.info = info
        self.seen: List[TarEntry] = []
        self.digests: Dict[str, str] = {}
        self.rows: Dict[str, int] = {}


class _Walker:
    """One sequential pass over the members, enforcing the layout (FORMAT.md).

    ``events()`` yields ``("info", doc)``, ``("header", TableInfo)``,
    ``("data", TableInfo, TarEntry)`` (read it with :meth:`read_member` or
    :meth:`stream_member`, or leave it to be skipped), ``("footer", TableInfo)``,
    ``("manifest", doc)``, ``("index", entries)``, ``("end", doc)``, and for DaCHS
    dumps ``("dachs", TableInfo, TarEntry)``; it returns after the end-of-archive
    blocks once completeness is checked.  Consistency problems (checksums, counts,
    manifest vs footers) go to ``problem()``, which raises unless ``lenient``, in
    which case they are collected in ``problems``; structural problems always raise.
    """

    def __init__(self, reader: "DumpReader", tar: TarStreamReader, *,
                 lenient: bool = False):
        self.reader = reader
        self.tar = tar
        self.lenient = lenient
        self.problems: List[ArchiveError] = []
        self.layout: Optional[str] = None
        self.info: Optional[Dict[str, Any]] = None
        self.tables: List[TableInfo] = []
        self.manifest: Optional[Dict[str, Any]] = None
        self.index: Optional[List[Tuple[str, str]]] = None
        self.end: Optional[Dict[str, Any]] = None
        self.names: Dict[str, int] = {}
        self.dachs_members: List[TarEntry] = []
        self._state: Optional[_TableState] = None
        self._states: List[_TableState] = []
        self._manifest_bytes = b""
        self._index_bytes = b""

    def problem(self, exc: ArchiveError) -> None:
        if not self.lenient:
            raise exc
        self.problems.append(exc)

    # ---- member data
    def _meta(self, entry: TarEntry, limit: int) -> bytes:
        if entry.size > limit:
            raise ArchiveError(f"member {entry.name!r} declares {entry.size} bytes, more "
                               f"than the {limit}-byte limit for metadata")
        return bytes(self.tar.read_data(entry))

    def _check_data_size(self, entry: TarEntry) -> None:
        limit = self.reader.max_member_size
        if self.layout == "dumpcodec" and entry.size > limit:
            raise ArchiveError(f"member {entry.name!r} declares {entry.size} bytes, more "
                               f"than the {limit}-byte limit for a chunk (a decompression "
                               "bomb or a corrupt header)")

    def read_member(self, entry: TarEntry) -> bytearray:
        """Read a whole data member (bounded), record its digest."""
        self._check_data_size(entry)
        data = self.tar.read_data(entry)
        self._record(entry, hashlib.sha256(data).hexdigest())
        return data

    def stream_member(self, entry: TarEntry) -> Iterator[memoryview]:
        """A data member in pieces; its digest is recorded once fully read."""
        h = hashlib.sha256()
        for piece in self.tar.iter_data(entry):
            h.update(piece)
            yield piece
        self._record(entry, h.hexdigest())

    def record_rows(self, entry: TarEntry, rows: int) -> None:
        if self._state is not None:
            self._state.rows[entry.name] = rows

    def _record(self, entry: TarEntry, digest: str) -> None:
        if self._state is not None:
            self._state.digests[entry.name] = digest

    # ---- the pass
    def events(self) -> Iterator[tuple]:
        tar = self.tar
        entry = tar.next()
        if entry is None:
            raise ArchiveError("the archive is empty (no members)")
        forced = self.reader.layout_hint
        if entry.name == mf.INFO_MEMBER and forced != "dachs":
            self.layout = "dumpcodec"
            yield from self._ours(entry)
        else:
            if forced == "dumpcodec":
                raise ArchiveError(f"not a dumpcodec archive: first member is "
                                   f"{entry.name!r}, not {mf.INFO_MEMBER!r}")
            self.layout = "dachs"
            yield from self._dachs(entry)

    def _note_name(self, entry: TarEntry) -> None:
        if entry.name in self.names:
            raise ArchiveError(f"duplicate member {entry.name!r} (stream offsets "
                               f"{self.names[entry.name]} and {entry.header_offset})")
        self.names[entry.name] = entry.header_offset

    def _ours(self, entry: TarEntry) -> Iterator[tuple]:
        tar = self.tar
        self._note_name(entry)
        self.info = mf.check_info(entry.name, mf.load_json(
            entry.name, self._meta(entry, MAX_SMALL_META_SIZE)))
        yield ("info", self.info)
        while True:
            entry = tar.next()
            if entry is None:
                raise IncompleteArchiveError(
                    f"archive ends after member {tar.last_name!r} without "
                    f"{mf.MANIFEST_MEMBER}, {mf.INDEX_MEMBER} and {mf.END_MEMBER}: the "
                    "writer did not finish")
            self._note_name(entry)
            index = len(self.tables)
            if entry.name == mf.header_member(index):
                yield from self._table(entry, index)
                continue
            if entry.name == mf.MANIFEST_MEMBER:
                break
            raise ArchiveError(f"unexpected member {entry.name!r} after "
                               f"{tar.last_name!r}: expected {mf.header_member(index)!r} "
                               f"or {mf.MANIFEST_MEMBER!r}")
        # manifest
        self._manifest_bytes = self._meta(entry, self.reader.max_meta_size)
        self.manifest = mf.check_manifest(entry.name, mf.load_json(
            entry.name, self._manifest_bytes))
        self._check_manifest()
        yield ("manifest", self.manifest)
        entry = self._expect(mf.INDEX_MEMBER)
        self._index_bytes = self._meta(entry, self.reader.max_meta_size)
        self.index = mf.parse_index_file(self._index_bytes)
        self._check_index()
        yield ("index", self.index)
        entry = self._expect(mf.END_MEMBER)
        self.end = mf.check_end(entry.name, mf.load_json(
            entry.name, self._meta(entry, MAX_SMALL_META_SIZE)))
        self._check_end()
        yield ("end", self.end)
        entry = tar.next()
        if entry is not None:
            raise ArchiveError(f"member {entry.name!r} after the end marker "
                               f"{mf.END_MEMBER!r}")
        drain_end(tar)
        self._check_stream_end()

    def tail_only(self) -> None:
        """Read manifest, index and end marker from a stream that starts at the
        manifest member; build the tables from the manifest."""
        tar = self.tar
        entry = tar.next()
        if entry is None or entry.name != mf.MANIFEST_MEMBER:
            raise ArchiveError("the locator does not point to the manifest")
        self._note_name(entry)
        self._manifest_bytes = self._meta(entry, self.reader.max_meta_size)
        self.manifest = mf.check_manifest(entry.name, mf.load_json(
            entry.name, self._manifest_bytes))
        self.tables = [_table_from_manifest(doc) for doc in self.manifest["tables"]]
        entry = self._expect(mf.INDEX_MEMBER)
        self._index_bytes = self._meta(entry, self.reader.max_meta_size)
        self.index = mf.parse_index_file(self._index_bytes)
        self._check_index()
        entry = self._expect(mf.END_MEMBER)
        self.end = mf.check_end(entry.name, mf.load_json(
            entry.name, self._meta(entry, MAX_SMALL_META_SIZE)))
        if (len(self.tables) != self.end["tables"]
                or hashlib.sha256(self._manifest_bytes).hexdigest() != self.end["manifest_sha256"]
                or hashlib.sha256(self._index_bytes).hexdigest() != self.end["index_sha256"]):
            raise ArchiveError("end marker does not match manifest/index")
        if tar.next() is not None:
            raise ArchiveError("member after the end marker")
        drain_end(tar)
        self._check_stream_end()

    def _check_stream_end(self) -> None:
        # The locator trailer is ours: only an archive still in the compression it
        # was written with has one.  A plain tar compressed afterwards (FORMAT.md,
        # section 6) is read in one pass; its compressor checks its own end.
        written = (self.manifest or self.info or {}).get("compression")
        if written in (None, self.reader.backend_name):
            self.reader._check_stream_end(self.end.get("manifest_offset"))

    def _expect(self, name: str) -> TarEntry:
        entry = self.tar.next()
        if entry is None:
            raise IncompleteArchiveError(
                f"archive ends after {self.tar.last_name!r} without {name!r} and the end "
                "marker: the writer did not finish")
        self._note_name(entry)
        if entry.name != name:
            raise ArchiveError(f"unexpected member {entry.name!r} after "
                               f"{self.tar.last_name!r}: expected {name!r}")
        return entry

    def _table(self, entry: TarEntry, index: int) -> Iterator[tuple]:
        tar = self.tar
        raw_header = self._meta(entry, MAX_SMALL_META_SIZE)
        doc = mf.check_header(entry.name, mf.load_json(entry.name, raw_header))
        if doc["index"] != index:
            raise ArchiveError(f"{entry.name}: index {doc['index']} in member of table "
                               f"{index}")
        if any(t.table_id == doc["table_id"] for t in self.tables):
            raise ArchiveError(f"{entry.name}: table id {doc['table_id']!r} appears twice")
        info = TableInfo(doc["table_id"], index, doc["format"], doc.get("columns"),
                         doc.get("types"), doc.get("definition"), float(doc["dump_time"]),
                         doc.get("extra") or {},
                         header=MemberInfo(entry.name, entry.size,
                                           sha256=hashlib.sha256(raw_header).hexdigest()),
                         chunk_size=doc.get("chunk_size"))
        state = _TableState(info)
        self.tables.append(info)
        self._states.append(state)
        self._state = state
        yield ("header", info)
        footer = mf.footer_member(index)
        while True:
            entry = tar.next()
            if entry is None:
                raise IncompleteArchiveError(
                    f"archive ends inside table {info.table_id!r} after member "
                    f"{tar.last_name!r} (no {footer!r}): the writer did not finish")
            self._note_name(entry)
            expected = mf.chunk_member(index, len(state.seen), info.format)
            if entry.name == expected:
                self._check_data_size(entry)
                state.seen.append(entry)
                yield ("data", info, entry)
                continue
            if entry.name == footer:
                break
            raise ArchiveError(f"unexpected member {entry.name!r} in table "
                               f"{info.table_id!r}: expected {expected!r} or {footer!r}")
        raw_footer = self._meta(entry, MAX_SMALL_META_SIZE)
        doc = mf.check_footer(entry.name, mf.load_json(entry.name, raw_footer))
        self._state = None
        self._check_footer(state, doc, entry)
        info.footer.sha256 = hashlib.sha256(raw_footer).hexdigest()
        yield ("footer", info)

    def _check_footer(self, state: _TableState, doc: Dict[str, Any],
                      entry: TarEntry) -> None:
        info = state.info
        where = f"{entry.name} (table {info.table_id!r})"
        if doc["table_id"] != info.table_id or doc["index"] != info.index:
            raise ArchiveError(f"{where}: footer is for table {doc['table_id']!r} "
                               f"(index {doc['index']})")
        members = [MemberInfo.from_json(m) for m in doc["members"]]
        names = [m.name for m in members]
        seen = [e.name for e in state.seen]
        if names != seen:
            diff = next((i for i, (a, b) in enumerate(zip(names, seen)) if a != b),
                        min(len(names), len(seen)))
            raise ArchiveError(f"{where}: footer lists {len(names)} members, the archive "
                               f"holds {len(seen)}; they differ at position {diff} "
                               f"({names[diff] if diff < len(names) else 'none'!r} vs "
                               f"{seen[diff] if diff < len(seen) else 'none'!r})")
        verified = True
        for m, e in zip(members, state.seen):
            if m.size != e.size:
                raise ArchiveError(f"member {e.name!r} (table {info.table_id!r}): tar "
                                   f"header says {e.size} bytes, footer says {m.size}")
            digest = state.digests.get(e.name)
            if digest is None:
                verified = False
            elif digest != m.sha256:
                self.problem(ChecksumError(
                    f"member {e.name!r} (table {info.table_id!r}): SHA-256 {digest} does "
                    f"not match {m.sha256} recorded in {entry.name}"))
                verified = False
            rows = state.rows.get(e.name)
            if rows is not None and m.rows is not None and rows != m.rows:
                self.problem(ArchiveError(
                    f"member {e.name!r} (table {info.table_id!r}): holds {rows} rows, "
                    f"{entry.name} says {m.rows}"))
                verified = False
        total_rows = sum(m.rows or 0 for m in members)
        if all(m.rows is not None for m in members) and total_rows != doc["rows"]:
            self.problem(ArchiveError(f"{where}: rows {doc['rows']} but its members hold "
                                      f"{total_rows}"))
        if sum(m.size for m in members) != doc["raw_size"]:
            self.problem(ArchiveError(f"{where}: raw_size {doc['raw_size']} but its "
                                      f"members hold {sum(m.size for m in members)} bytes"))
        info.members = members
        info.rows = doc["rows"]
        info.raw_size = doc["raw_size"]
        info.footer = MemberInfo(entry.name, entry.size)
        info.complete = True
        info.verified = verified

    def _check_manifest(self) -> None:
        man = self.manifest
        entries = man["tables"]
        if len(entries) != len(self.tables):
            self.problem(ArchiveError(f"{mf.MANIFEST_MEMBER}: lists {len(entries)} tables, "
                                      f"the archive holds {len(self.tables)}"))
        for doc, info in zip(entries, self.tables):
            where = f"{mf.MANIFEST_MEMBER}: table {info.table_id!r}"
            if doc["table_id"] != info.table_id or doc["index"] != info.index:
                self.problem(ArchiveError(f"{where}: manifest entry {doc['index']} names "
                                          f"{doc['table_id']!r}"))
                continue
            for key in ("format", "columns", "types", "definition"):
                if doc.get(key) != getattr(info, key):
                    self.problem(ArchiveError(f"{where}: {key} differs from "
                                              f"{info.header.name if info.header else ''}"))
            members = [MemberInfo.from_json(m) for m in doc["members"]]
            mine = [(m.name, m.size, m.sha256, m.rows) for m in members]
            theirs = [(m.name, m.size, m.sha256, m.rows) for m in info.members]
            if mine != theirs:
                self.problem(ArchiveError(f"{where}: members differ from "
                                          f"{info.footer.name if info.footer else 'footer'}"))
            if doc["rows"] != info.rows or doc["raw_size"] != info.raw_size:
                self.problem(ArchiveError(f"{where}: rows/raw_size {doc['rows']}/"
                                          f"{doc['raw_size']} differ from the footer's "
                                          f"{info.rows}/{info.raw_size}"))
            for key in ("header", "footer"):
                seen, listed = getattr(info, key), doc[key]
                if seen is not None and (seen.name, seen.size, seen.sha256) != \
                        (listed["name"], listed["size"], listed["sha256"]):
                    self.problem(ChecksumError(
                        f"{where}: {key} member {seen.name!r} does not match its entry "
                        "(name, size or SHA-256)"))
            # where the manifest agrees, take what only it knows: the archive offsets
            if mine == theirs:
                info.members = members
            info.header = MemberInfo.from_json(doc["header"])
            info.footer = MemberInfo.from_json(doc["footer"])
            info.compressed_size = doc.get("compressed_size")

    def _check_index(self) -> None:
        expected = [(m.name, t.table_id) for t in self.tables for m in t.members]
        if self.index != expected:
            missing = [e for e in self.index if e not in expected]
            extra = [e for e in expected if e not in self.index]
            detail = (f"names {missing[0][0]!r} ({missing[0][1]!r}) which is not a data "
                      "member of that table" if missing else
                      f"lacks {extra[0][0]!r} ({extra[0][1]!r})" if extra else
                      "lists the members in another order")
            self.problem(ArchiveError(f"{mf.INDEX_MEMBER}: {detail}"))

    def _check_end(self) -> None:
        end = self.end
        if end["tables"] != len(self.tables):
            self.problem(ArchiveError(f"{mf.END_MEMBER}: says {end['tables']} tables, the "
                                      f"archive holds {len(self.tables)}"))
        members = len(self.names)
        if end["members"] != members - 1:
            self.problem(ArchiveError(f"{mf.END_MEMBER}: says {end['members']} members "
                                      f"precede it, the archive holds {members - 1}"))
        if hashlib.sha256(self._manifest_bytes).hexdigest() != end["manifest_sha256"]:
            self.problem(ChecksumError(f"{mf.MANIFEST_MEMBER}: SHA-256 does not match "
                                       f"{mf.END_MEMBER}"))
        if hashlib.sha256(self._index_bytes).hexdigest() != end["index_sha256"]:
            self.problem(ChecksumError(f"{mf.INDEX_MEMBER}: SHA-256 does not match "
                                       f"{mf.END_MEMBER}"))

    # ---- DaCHS layout
    def _dachs(self, entry: Optional[TarEntry]) -> Iterator[tuple]:
        from .dachs import dachs_format
        tar = self.tar
        while entry is not None:
            self._note_name(entry)
            if entry.name == mf.INDEX_MEMBER:
                self._index_bytes = self._meta(entry, self.reader.max_meta_size)
                self.index = mf.parse_index_file(self._index_bytes)
                yield ("index", self.index)
            else:
                self.dachs_members.append(entry)
                info = TableInfo(entry.name, len(self.dachs_members) - 1,
                                 dachs_format(entry.name), dump_time=entry.mtime,
                                 members=[MemberInfo(entry.name, entry.size)],
                                 raw_size=entry.size, layout="dachs", complete=True)
                state = _TableState(info)
                state.seen.append(entry)
                self._state = state
                self._states.append(state)
                yield ("dachs", info, entry)
                self._state = None
            entry = tar.next()
        drain_end(tar)
        if self.index is None:
            raise IncompleteArchiveError(
                f"DaCHS dump without {mf.INDEX_MEMBER} (DaCHS writes it last: the dump "
                "is truncated or its writer did not finish)")
        self.tables = self._dachs_tables()

    def _dachs_tables(self) -> List[TableInfo]:
        by_name = {e.name: e for e in self.dachs_members}
        listed = set()
        tables: Dict[str, TableInfo] = {}
        for member, table_id in self.index:
            if member in listed:
                raise ArchiveError(f"{mf.INDEX_MEMBER}: member {member!r} listed twice")
            listed.add(member)
            entry = by_name.get(member)
            if entry is None:
                self.problem(ArchiveError(f"{mf.INDEX_MEMBER}: names member {member!r} "
                                          f"(table {table_id!r}) which is not in the archive"))
                continue
            info = tables.get(table_id)
            if info is None:
                info = tables[table_id] = TableInfo(
                    table_id, len(tables), "binary", dump_time=entry.mtime, raw_size=0,
                    layout="dachs", complete=True)
                from .dachs import dachs_format
                info.format = dachs_format(member)
            # a stream offset is a file offset only without compression
            info.members.append(MemberInfo(
                member, entry.size,
                offset=entry.header_offset if self.reader.plain else None))
            info.raw_size += entry.size
        for e in self.dachs_members:
            if e.name not in listed:
                self.problem(ArchiveError(f"member {e.name!r} is not listed in "
                                          f"{mf.INDEX_MEMBER}"))
        return list(tables.values())


def _table_from_manifest(doc: Dict[str, Any]) -> TableInfo:
    return TableInfo(
        doc["table_id"], doc["index"], doc["format"], doc.get("columns"),
        doc.get("types"), doc.get("definition"), float(doc["dump_time"]),
        doc.get("extra") or {}, [MemberInfo.from_json(m) for m in doc["members"]],
        doc["rows"], doc["raw_size"], doc.get("compressed_size"),
        MemberInfo.from_json(doc["header"]), MemberInfo.from_json(doc["footer"]),
        doc.get("chunk_size"), "dumpcodec", complete=True)


class DumpReader:
    """Reads an archive: ours (docs/FORMAT.md) or a DaCHS dump.

    Get one from :func:`open_dump`.  On a seekable file every method may be called
    any number of times and one table is read without reading the others' data; on
    a pipe the input can be read once: either :meth:`iter_tables` (one pass, table
    by table) or one of :meth:`tables`, :meth:`read_raw`, :meth:`read_rows`,
    :meth:`verify`.  A context manager; closes the file only if :func:`open_dump`
    opened it.

    Options: ``max_member_size`` (largest chunk member accepted, default
    :data:`DEFAULT_MAX_MEMBER_SIZE`), ``max_meta_size`` (largest manifest/index,
    default :data:`DEFAULT_MAX_META_SIZE`), ``chunk_size`` (how DaCHS members, which
    hold whole tables, are re-cut into chunks when read).

    Attributes after the first pass: ``layout`` (``'dumpcodec'`` or ``'dachs'``),
    ``info`` (the archive-level dict of ``manifest.json``; ``{}`` for DaCHS),
    ``complete`` (end marker seen and consistent).
    """

    backend_name = "?"
    #: stream offsets equal file offsets (no compression): skipping may seek
    plain = False
    #: 'dachs' forces the DaCHS layout, 'dumpcodec' ours, None detects
    layout_hint: Optional[str] = None

    def __init__(self, fileobj: BinaryIO, *, closefd: bool = False,
                 max_member_size: int = DEFAULT_MAX_MEMBER_SIZE,
                 max_meta_size: int = DEFAULT_MAX_META_SIZE,
                 chunk_size: int = DEFAULT_CHUNK_SIZE, seekable: Optional[bool] = None):
        self._raw = fileobj
        self._closefd = closefd
        self.max_member_size = max_member_size
        self.max_meta_size = max_meta_size
        self.chunk_size = chunk_size
        self.seekable = _is_seekable(fileobj) if seekable is None else seekable
        self._base = fileobj.tell() if self.seekable else 0
        self._used = False
        self.layout: Optional[str] = None
        self.info: Dict[str, Any] = {}
        self.complete: Optional[bool] = None
        self._tables: Optional[List[TableInfo]] = None
        self._incomplete: Optional[IncompleteArchiveError] = None
        self._owner: Optional[object] = None
        self.closed = False

    # ---- backend hooks
    def _decompressor(self, raw: BinaryIO) -> BinaryIO:
        """A readable (``readinto``) of the tar stream starting at raw's position."""
        return raw

    def _check_stream_end(self, manifest_offset: Optional[int]) -> None:
        """After a whole pass over one of our archives: check what the compression
        layer needs at the very end (the locator trailer, pointing to the manifest at
        ``manifest_offset`` as the end marker says); IncompleteArchiveError or
        ArchiveError if not."""

    def _locate_manifest(self) -> Optional[int]:
        """Archive offset of the manifest member from the file's locator trailer, or
        None (no trailer: plain tar, DaCHS, truncated)."""
        return None

    def _read_tail(self, n: int) -> bytes:
        raw = self._raw
        end = raw.seek(0, os.SEEK_END)
        if end - self._base < n:
            return b""
        raw.seek(end - n)
        self._file_size = end - self._base
        return raw.read(n)

    # ---- context manager
    def __enter__(self) -> "DumpReader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            if self._closefd:
                self._raw.close()

    # ---- streams
    def _open(self, offset: int = 0) -> TarStreamReader:
        if self.closed:
            raise ArchiveError("the archive reader is closed")
        if not self.seekable:
            if self._used:
                raise ArchiveError("the input is not seekable and was already read: "
                                   "open it again (or use iter_tables() for one pass)")
            self._used = True
            return TarStreamReader(self._decompressor(self._raw))
        self._owner = None    # any generator reading the previous stream must reopen
        self._raw.seek(self._base + offset)
        src = self._decompressor(self._raw)
        seek = size = None
        if self.plain:
            raw, base = self._raw, self._base
            seek = lambda pos: raw.seek(base + pos)  # noqa: E731
            size = raw.seek(0, os.SEEK_END) - base
            raw.seek(base + offset)
        return TarStreamReader(src, start=offset if self.plain else 0, seek=seek,
                               size=size)

    def _adopt(self, walker: _Walker) -> None:
        self.layout = walker.layout
        if walker.layout == "dumpcodec":
            src = walker.manifest if walker.manifest is not None else walker.info
            self.info = {k: v for k, v in (src or {}).items() if k != "tables"}
        else:
            self.info = {}

    # ---- listing
    def tables(self, *, allow_incomplete: bool = False) -> List[TableInfo]:
        """Every table in archive order (one pass skipping data, cached).

        An archive whose writer did not finish raises IncompleteArchiveError, unless
        ``allow_incomplete``: then the tables seen so far are returned (a table
        without footer has ``complete=False``) and ``self.complete`` is False.
        """
        if self._tables is not None:
            if self.complete is False and not allow_incomplete:
                raise self._incomplete
            return list(self._tables)
        if self.seekable and self._fast_tables():
            return list(self._tables)
        walker = _Walker(self, self._open())
        try:
            for _ in walker.events():
                pass
        except IncompleteArchiveError as exc:
            self._adopt(walker)
            self._tables = walker.tables
            self.complete = False
            self._incomplete = exc
            if not allow_incomplete:
                raise
            return list(self._tables)
        self._adopt(walker)
        self._tables = walker.tables
        self.complete = True
        return list(self._tables)

    def _fast_tables(self) -> bool:
        # Compressed archives end with a locator naming the manifest's offset: read
        # manifest, index and end marker from there instead of decompressing all the
        # data.  Anything unexpected falls back to the full pass, which then says
        # precisely what is wrong.
        try:
            offset = self._locate_manifest()
            if offset is None or offset >= getattr(self, "_file_size", 0):
                return False
            walker = _Walker(self, self._open(offset))
            walker.layout = "dumpcodec"
            walker.tail_only()
        except (ArchiveError, OSError, EOFError):
            return False
        self._adopt(walker)
        self._tables = walker.tables
        self.complete = True
        return True

    def table(self, table_id: str) -> TableInfo:
        """The :class:`TableInfo` of ``table_id``; ArchiveError naming the ids if absent."""
        for t in self.tables():
            if t.table_id == table_id:
                return t
        ids = [t.table_id for t in self.tables()]
        shown = ", ".join(repr(i) for i in ids[:10]) + (", ..." if len(ids) > 10 else "")
        raise ArchiveError(f"no table {table_id!r} in the archive (it holds {shown or 'none'})")

    # ---- one pass
    def iter_tables(self) -> Iterator[Tuple[TableInfo, Iterator[bytes]]]:
        """One pass in archive order: ``(TableInfo, chunks)`` per table.

        ``chunks`` yields each data member as a bytes-like object (a complete COPY
        stream).  Consume it before advancing the outer iterator (what is left is
        skipped).  When ``chunks`` is exhausted the table's footer has been read and
        checked: a checksum mismatch raises ChecksumError there, and afterwards
        ``info.rows``/``members`` are filled and ``info.verified`` is True.  After the
        last table the manifest, index and end marker are checked; a missing end
        marker raises IncompleteArchiveError.  Works on a pipe.  DaCHS dumps need a
        seekable file here (their index comes last).
        """
        dachs_ids: Optional[Dict[str, str]] = None
        if self.seekable and (self.layout == "dachs" or self._peek_layout() == "dachs"):
            dachs_ids = {m.name: t.table_id for t in self.tables() for m in t.members}
        walker = _Walker(self, self._open())
        token = self._owner = object()
        events = self._owned(walker.events(), token, "iter_tables()")
        for ev in events:
            kind = ev[0]
            if kind == "info":
                # known before any table: restore needs the client encoding up front
                self.layout = "dumpcodec"
                self.info = dict(ev[1])
            elif kind == "header":
                info = ev[1]
                chunks = self._table_chunks(walker, events, info)
                yield info, chunks
                chunks.close()
                if not info.complete:
                    for ev2 in events:
                        if ev2[0] == "footer":
                            break
            elif kind == "dachs":
                if dachs_ids is None:
                    raise ArchiveError("a DaCHS dump names its tables in index.txt, which "
                                       "comes last: read it from a seekable file, not a "
                                       "pipe")
                info, entry = ev[1], ev[2]
                table_id = dachs_ids.get(entry.name)
                if table_id is None:
                    continue    # not listed in index.txt: not a table
                full = next(t for t in self._tables if t.table_id == table_id)
                yield full, self._dachs_chunks(walker, entry, full)
        self._adopt(walker)
        if self._tables is None:
            self._tables = walker.tables
        self.complete = True

    def _table_chunks(self, walker: _Walker, events, info: TableInfo) -> Iterator[bytes]:
        for ev in events:
            if ev[0] == "data":
                data = walker.read_member(ev[2])
                yield data
                del data    # hold no chunk while reading the next one
            elif ev[0] == "footer":
                return
        raise IncompleteArchiveError(f"table {info.table_id!r}: archive ends without footer")

    def _dachs_chunks(self, walker: _Walker, entry: TarEntry,
                      info: TableInfo) -> Iterator[bytes]:
        from .dachs import rechunk
        yield from rechunk(walker.stream_member(entry), info.format, self.chunk_size,
                           entry.name)

    def _peek_layout(self) -> str:
        if self.layout is not None:
            return self.layout
        tar = self._open()
        first = tar.next()
        if first is None:
            raise ArchiveError("the archive is empty (no members)")
        if self.layout_hint:
            return self.layout_hint
        return "dumpcodec" if first.name == mf.INFO_MEMBER else "dachs"

    # ---- one table
    def read_raw(self, table_id: str) -> Iterator[bytes]:
        """The data of one table: each item one complete COPY stream (bytes-like).

        On a seekable file only this table's members are read (our archives: from the
        offsets in the manifest); each member's SHA-256 is checked against the
        manifest before it is yielded (ChecksumError names the member).  DaCHS
        members, which hold a whole table and have no checksum, are re-cut into
        complete streams of about ``chunk_size`` bytes.  On a pipe this consumes the
        input up to the table (checksums then checked at the table's footer).
        """
        if not self.seekable:
            return self._read_raw_stream(table_id)
        info = self.table(table_id)
        return self._read_raw_seek(info)

    def _read_raw_stream(self, table_id: str) -> Iterator[bytes]:
        found = False
        for info, chunks in self.iter_tables():
            if info.table_id == table_id:
                found = True
                yield from chunks
                break
        if not found:
            raise ArchiveError(f"no table {table_id!r} in the archive")

    def _read_raw_seek(self, info: TableInfo) -> Iterator[bytes]:
        if not info.members:
            return
        if info.layout == "dachs":
            yield from self._read_dachs_seek(info)
            return
        first = info.members[0]
        tar = entry = None
        if first.offset is not None:
            # the manifest's offsets hold for the file as written; an archive that was
            # recompressed since (zstd -d | gzip) has others: then walk from the start
            try:
                tar = self._open(first.offset)
                entry = tar.next()
                if entry is None or entry.name != first.name:
                    tar = None
            except (ArchiveError, OSError, EOFError):
                tar = None
        if tar is None:
            tar = self._open(0)
            while True:
                entry = tar.next()
                if entry is None:
                    raise ArchiveError(f"table {info.table_id!r}: member {first.name!r} "
                                       "not found")
                if entry.name == first.name:
                    break
        token = self._owner = object()
        walker = _Walker(self, tar)
        walker.layout = "dumpcodec"
        for i, m in enumerate(info.members):
            if i:
                if self._owner is not token:
                    # another read used the file meanwhile: resume at this member
                    tar = self._resume(info, i)
                    token = self._owner = object()
                    walker = _Walker(self, tar)
                    walker.layout = "dumpcodec"
                entry = tar.next()
            if entry is None or entry.name != m.name:
                got = entry.name if entry is not None else "the end of the archive"
                raise ArchiveError(f"table {info.table_id!r}: expected member {m.name!r}, "
                                   f"found {got!r}")
            if entry.size != m.size:
                raise ArchiveError(f"member {m.name!r} (table {info.table_id!r}): tar "
                                   f"header says {entry.size} bytes, manifest says {m.size}")
            data = walker.read_member(entry)
            digest = hashlib.sha256(data).hexdigest()
            if m.sha256 is not None and digest != m.sha256:
                raise ChecksumError(f"member {m.name!r} (table {info.table_id!r}): SHA-256 "
                                    f"{digest} does not match {m.sha256} in the manifest")
            yield data
            del data    # hold no chunk while reading the next one

    def _resume(self, info: TableInfo, i: int) -> TarStreamReader:
        """A stream positioned before member ``i`` of ``info``."""
        m = info.members[i]
        if m.offset is not None:
            try:
                return self._open(m.offset)   # the caller checks the member's name
            except (ArchiveError, OSError, EOFError):
                pass
        tar = self._open(0)
        previous = info.members[i - 1].name
        while True:
            entry = tar.next()
            if entry is None:
                raise ArchiveError(f"table {info.table_id!r}: member {previous!r} not found")
            if entry.name == previous:
                return tar

    def _read_dachs_seek(self, info: TableInfo) -> Iterator[bytes]:
        from .dachs import rechunk
        for m in info.members:
            if self.plain and m.offset is not None:
                tar = self._open(m.offset)
                entry = tar.next()
            else:
                tar = self._open(0)
                entry = tar.next()
                while entry is not None and entry.name != m.name:
                    entry = tar.next()
            if entry is None or entry.name != m.name:
                raise ArchiveError(f"member {m.name!r} (table {info.table_id!r}) not found")
            walker = _Walker(self, tar)
            walker.layout = "dachs"
            token = self._owner = object()
            for chunk in rechunk(self._owned(walker.stream_member(entry), token,
                                             f"member {m.name!r}"),
                                 info.format, self.chunk_size, m.name):
                yield chunk
                del chunk

    def _owned(self, items: Iterator, token: object, what: str) -> Iterator:
        # a stream that cannot be resumed elsewhere (a DaCHS member read in pieces, a
        # one-pass iteration): another read in between would have moved the file
        # under it, so say so instead of reading garbage
        items = iter(items)
        while True:
            if self._owner is not token:
                raise ArchiveError(f"{what}: another read used this reader meanwhile; "
                                   "use one reader per concurrent read")
            item = next(items, None)
            if item is None:
                return
            yield item

    def read_rows(self, table_id: str, decode: bool = True,
                  types: Optional[List[Any]] = None) -> Iterator[tuple]:
        """The rows of one table as tuples.

        Binary data goes through the codec's ``Decoder`` with the table's types (or
        ``types``) when ``decode``, else each field is ``bytes`` (None for NULL); a
        table without types (DaCHS) gives bytes.  Text data gives ``str`` fields
        (``bytes`` unless ``decode``) with COPY escapes undone, None for NULL.
        """
        if self.seekable:
            info = self.table(table_id)
            chunks = self._read_raw_seek(info)
            yield from _rows(info, chunks, decode, types, self.info.get("client_encoding"))
            return
        for info, chunks in self.iter_tables():
            if info.table_id == table_id:
                yield from _rows(info, chunks, decode, types,
                                 self.info.get("client_encoding"))
                return
        raise ArchiveError(f"no table {table_id!r} in the archive")

    # ---- verification
    def verify(self, *, scan: bool = True) -> "VerifyReport":
        """Read everything once and check it; never raises for archive problems.

        Checks every data member's SHA-256 and, with ``scan``, its COPY framing (the
        codec's Scanner; text: line structure) and row count against the footer and
        manifest; the layout, index and end marker.  Returns a :class:`VerifyReport`.
        """
        from .verify import verify_reader
        return verify_reader(self, scan=scan)

    def _walker(self, lenient: bool = False) -> _Walker:
        return _Walker(self, self._open(), lenient=lenient)


def _rows(info: TableInfo, chunks: Iterator[bytes], decode: bool,
          types: Optional[List[Any]], encoding: Optional[str]) -> Iterator[tuple]:
    if info.format == "text":
        from .dachs import text_rows
        yield from text_rows(chunks, decode, encoding)
        return
    from ..codec import Decoder
    spec = types if types is not None else info.types
    for chunk in chunks:
        if decode and spec is not None:
            dec = Decoder(spec, names=info.columns)
        else:
            dec = Decoder(None, raw=True)
        yield from dec.feed(chunk)
        dec.close()


@dataclass
class VerifyReport:
    """What :meth:`DumpReader.verify` found: ``ok`` only when nothing is wrong."""
    layout: Optional[str]
    tables: List[TableInfo]
    problems: List[str]
    complete: bool
    members: int = 0
    rows: int = 0

    @property
    def ok(self) -> bool:
        return self.complete and not self.problems


# ==================================================================== registry

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


def open_dump(path_or_file: Union[str, "os.PathLike[str]", BinaryIO], mode: str = "r",
              backend: Optional[str] = None, **options: Any
              ) -> Union[DumpReader, DumpWriter]:
    """Open an archive for reading (``mode='r'``) or writing (``mode='w'``).

    ``path_or_file``: a path, ``'-'`` for stdin/stdout, or a binary file object
    (never closed by the reader/writer; a path is).  Reading picks the backend by
    ``backend`` name or else by the input's magic bytes (zstd, gzip, plain tar),
    peeking without seeking so that a pipe works.  Writing uses ``backend`` (default
    ``'zstd'``).  ``options`` go to the backend class (see :class:`DumpReader`,
    :class:`DumpWriter`).  Unknown backends and unrecognised input raise ArchiveError.
    """
    if mode not in ("r", "w", "rb", "wb"):
        raise ValueError(f"mode must be 'r' or 'w', not {mode!r}")
    writing = mode.startswith("w")
    if backend is not None and backend not in backends:
        raise ArchiveError(f"unknown archive backend {backend!r} (known: "
                           f"{', '.join(backends)})")
    closefd = False
    if isinstance(path_or_file, (str, bytes, os.PathLike)):
        if path_or_file == "-":
            fileobj = sys.stdout.buffer if writing else sys.stdin.buffer
        else:
            fileobj = open(path_or_file, "wb" if writing else "rb")
            closefd = True
    else:
        fileobj = path_or_file
    try:
        if writing:
            b = backends[backend or DEFAULT_BACKEND]
            if b.writer is None:
                raise ArchiveError(f"backend {b.name!r} cannot write")
            return b.writer(fileobj, closefd=closefd, **options)
        if backend is not None:
            b = backends[backend]
        else:
            if _is_seekable(fileobj):
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
                fileobj = _PrefixReader(head, fileobj, own=closefd)
                options.setdefault("seekable", False)
            b = _detect(head)
        if b.reader is None:
            raise ArchiveError(f"backend {b.name!r} cannot read")
        return b.reader(fileobj, closefd=closefd, **options)
    except BaseException:
        if closefd:
            fileobj.close()
        raise
