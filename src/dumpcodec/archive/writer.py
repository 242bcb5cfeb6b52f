"""Writing an archive: :class:`DumpWriter` and its per-table :class:`TableWriter`.

The writer holds the layout of docs/FORMAT.md: the archive info first, per table a
header, chunk members cut from the table's COPY stream and a footer, then the
manifest, ``index.txt`` and the end marker.  It never seeks, so the target may be a
pipe.  A backend subclass (:mod:`.tarball`) only says how a member is compressed.

Memory: a writer holds one chunk being cut (the codec's chunker buffer) and the piece
cut from it, which a helper thread (:class:`_ChunkThread`) checksums, compresses and
writes while the caller goes on (a chunk under :data:`INLINE_CHUNK` is written in the
caller's thread: a small table costs no hand-off).
"""
from __future__ import annotations

import contextlib
import hashlib
import threading
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from typing import Any, BinaryIO, Dict, Iterator, List, Optional

from .._version import __version__
from ..copy import Chunker
from ..errors import ArchiveError, CopyFormatError
from . import manifest as mf
from ._tar import END_OF_ARCHIVE, member_header, pad
from .limits import (DEFAULT_CHUNK_SIZE, DEFAULT_MAX_META_SIZE, MAX_CHUNK_SIZE,
                     MAX_JSON_DEPTH, MAX_SMALL_META_SIZE, footer_limit, index_entry_bytes,
                     index_limit, manifest_limit)
from .model import MemberInfo, TableInfo
from .streams import CountingWriter
from .textcheck import TextCopyCheck


#: data members smaller than this are written in the caller's thread
INLINE_CHUNK = 256 << 10


def _utc_iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class TableWriter:
    """Receives one table's raw COPY stream and cuts it into chunk members.

    Obtained from :meth:`DumpWriter.add_table`.  ``write(data)`` takes the stream in
    pieces of any size, split anywhere; ``close()`` flushes the last chunk and writes
    the table's footer (rows, sizes, checksums).  A context manager: leaving the
    ``with`` by an exception aborts the whole archive (it stays incomplete).
    Attributes after close: ``rows``, ``raw_size``, ``members``.  ``info.definition``
    is not kept (the writer holds it encoded, as written in the header).
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
        #: split tables: one chunker per range stream still open (write_part)
        self._parts: Dict[int, Any] = {}
        self._parts_done: set = set()
        self._definition: Optional[mf.EncodedJSON] = None
        #: the table's manifest entry, encoded when the table is finished
        self._entry = b""
        self._text_check: Optional[TextCopyCheck] = None
        if info.format == "binary":
            ncols = len(info.columns) if info.columns is not None else None
            self._chunker = Chunker(chunk_size, ncols)
        else:
            self._chunker = None
            self._text = bytearray()
            self._text_scan = 0
            # rows a server would split otherwise are never written (.textcheck)
            self._text_check = TextCopyCheck(f"table {self.table_id!r}",
                                             writer._client_encoding)

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
        with self._aborting():
            if self._chunker is not None:
                self._fed = self._fed or len(data) > 0
                for piece, rows in self._chunker.feed(data):
                    self._emit(piece, rows)
            else:
                self._write_text(data)

    def write_part(self, part: int, data) -> None:
        """Add the next piece of the COPY stream of range ``part`` of a split table.

        A split table arrives as several complete COPY BINARY streams (one per range
        of its heap), interleaved in pieces of any size; each is cut into chunk members
        of its own, so every member holds rows of one range and records it as its
        ``range`` (docs/FORMAT.md 5.2).  Memory: one chunk being cut per open range.
        Binary format only; not to be mixed with :meth:`write` in one table.
        """
        self._check_open()
        if self._chunker is None or self._fed:
            raise ArchiveError(f"table {self.table_id!r}: write_part needs a binary table "
                               "not written with write()")
        if not isinstance(part, int) or part < 0 or part in self._parts_done:
            raise ArchiveError(f"table {self.table_id!r}: range {part!r} is closed or "
                               "not a range number")
        with self._aborting():
            chunker = self._parts.get(part)
            if chunker is None:
                ncols = len(self.info.columns) if self.info.columns is not None else None
                chunker = self._parts[part] = Chunker(self._chunk_size, ncols)
            for piece, rows in chunker.feed(data):
                self._emit(piece, rows, part)

    def close_part(self, part: int) -> None:
        """End range ``part``'s stream (flushes its last chunk)."""
        self._check_open()
        chunker = self._parts.pop(part, None)
        self._parts_done.add(part)
        if chunker is None:
            return
        with self._aborting():
            for piece, rows in chunker.close():
                self._emit(piece, rows, part)

    @contextlib.contextmanager
    def _aborting(self) -> Iterator[None]:
        """Any failure inside aborts the archive; a COPY format error names the table."""
        try:
            yield
        except CopyFormatError as exc:
            self._writer.abort()
            named = self._named(exc)
            if named is exc:
                raise
            raise named from exc
        except BaseException:
            self._writer.abort()
            raise

    def _named(self, exc: CopyFormatError) -> CopyFormatError:
        # the codec's message names offset/row/column; say which table as well (once:
        # close() runs close_part())
        if str(exc).startswith(f"table {self.table_id!r}: "):
            return exc
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

    def _emit(self, piece, rows: int, part: Optional[int] = None) -> None:
        if self._chunker is None:
            self._text_check.chunk(piece)
        number = len(self.members)
        name = mf.chunk_member(self.info.index, number, self.format)
        member = MemberInfo(name, len(piece), rows=rows, range=part)
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
        with self._aborting():
            for part in sorted(self._parts):
                self.close_part(part)
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
            self._chunker = self._text_check = None    # thousands of tables: keep no buffers
            self._writer._finish_table(self)


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


class _ChunkPool:
    """Writes a DumpWriter's data members in order while up to ``workers`` of them are
    checksummed and compressed at once, each by a thread of its own (hashlib, zlib and
    zstd release the GIL), for writers fed faster than one core compresses (a dump
    with several workers).  The compressed member is written by the caller's thread
    when it submits a member while ``workers + 1`` are in hand, or in :meth:`wait`, so
    memory stays at ``workers + 1`` chunks and their frames.  The same interface as
    :class:`_ChunkThread`."""

    def __init__(self, writer: "DumpWriter", workers: int):
        self._writer = writer
        self._workers = workers
        self._ex = ThreadPoolExecutor(max_workers=workers,
                                      thread_name_prefix="dumpcodec-compress")
        self._pending: "deque[tuple]" = deque()
        self._error: Optional[BaseException] = None
        self._stopped = False

    def _encode(self, member: MemberInfo, piece, mtime: float) -> tuple:
        size = len(piece)
        frame = self._writer._encode_frame([member_header(member.name, size, mtime), piece,
                                            bytes(pad(size))])
        return hashlib.sha256(piece).hexdigest(), frame

    def _write_oldest(self) -> None:
        member, future = self._pending.popleft()
        try:
            digest, frame = future.result()
            out = self._writer._out
            offset = out.count
            for block in frame:
                out.write(block)
        except BaseException as exc:
            self._error = exc
            raise
        member.sha256 = digest
        member.offset = offset
        member.compressed_size = out.count - offset

    def wait(self) -> None:
        """Until every member in hand is written; raises what writing one raised."""
        if self._error is not None:
            raise self._error
        while self._pending:
            self._write_oldest()

    def submit(self, member: MemberInfo, piece, mtime: float) -> None:
        if self._error is not None:
            raise self._error
        if self._stopped:
            raise ArchiveError("the archive writer is closed")
        while len(self._pending) >= self._workers:
            self._write_oldest()
        self._pending.append((member, self._ex.submit(self._encode, member, piece, mtime)))

    def stop(self, discard: bool = False) -> None:
        """No more members; ``discard``: drop those not written yet."""
        self._stopped = True
        if discard:
            for _, future in self._pending:
                future.cancel()
            self._pending.clear()
        self._ex.shutdown(wait=True)


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
    worker threads, 0 = none), ``created`` (UTC unix time to record, default now),
    ``workers`` (data members checksummed and compressed at once, each in a thread of
    its own, default 1; the archive's bytes do not depend on it).
    """

    backend_name = "?"

    def __init__(self, fileobj: BinaryIO, *, closefd: bool = False,
                 chunk_size: int = DEFAULT_CHUNK_SIZE, created: Optional[float] = None,
                 workers: int = 1, **options: Any):
        if not isinstance(chunk_size, int) or not 64 <= chunk_size <= MAX_CHUNK_SIZE:
            raise ValueError(f"chunk_size must be an integer from 64 to {MAX_CHUNK_SIZE}, "
                             f"not {chunk_size!r}")
        if not isinstance(workers, int) or not 1 <= workers <= 64:
            raise ValueError(f"workers must be an integer from 1 to 64, not {workers!r}")
        self._workers = workers
        self._raw = fileobj
        self._closefd = closefd
        self._out = CountingWriter(fileobj)
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
        self._chunks: Any = None      # _ChunkThread, or _ChunkPool with workers > 1
        self._setup(**options)

    # ---- backend hooks
    def _setup(self, **options: Any) -> None:
        if options:
            raise TypeError(f"{type(self).__name__}: unknown options {sorted(options)}")

    def _write_frame(self, parts: List[Any]) -> None:
        """Write ``parts`` (bytes-like) as one independently decodable unit."""
        for p in parts:
            self._out.write(p)

    def _encode_frame(self, parts: List[Any]) -> List[Any]:
        """What :meth:`_write_frame` would write, as bytes-like blocks; safe to call
        from several threads at once (``workers > 1``)."""
        return list(parts)

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
        merged = dict(self._info, **extra)
        try:
            mf.check_archive_info(merged)   # what readers type-check, never written wrong
        except ArchiveError as exc:
            raise ValueError(str(exc)) from None
        saved, self._info = self._info, merged
        try:
            self._check_meta(mf.INFO_MEMBER, self._info_doc("info"), MAX_SMALL_META_SIZE,
                             MAX_JSON_DEPTH)
        except ValueError:
            self._info = saved
            raise

    def add_table(self, table_id: str, definition: Optional[Dict[str, Any]],
                  columns: Optional[List[str]], types: Optional[List[str]],
                  format: str = "binary", extra: Optional[Dict[str, Any]] = None,
                  ) -> TableWriter:
        """Start the next table; returns its :class:`TableWriter`.

        ``definition`` is the schema layer's ``TableDef.to_json()`` dict (stored as
        is), the same already encoded (an :class:`~.manifest.EncodedJSON` of
        ``TableDef.to_json_text()``: the text of one JSON object as the json module
        writes it, spliced in unparsed), or None; ``columns`` the explicit column list of the COPY, ``types`` one
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
        if isinstance(definition, mf.EncodedJSON):
            if not (isinstance(definition.text, str) and definition.text.startswith("{")
                    and definition.text.endswith("}")):
                raise ValueError(f"table {table_id!r}: an encoded definition must be "
                                 "the text of a JSON object")
        elif definition is not None and not isinstance(definition, dict):
            raise ValueError(f"table {table_id!r}: definition must be a dict, an "
                             "EncodedJSON or None")
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
        try:
            mf.check_table_extra(extra or {}, f"table {table_id!r}: extra")
        except ArchiveError as exc:
            raise ValueError(str(exc)) from None
        self._start()
        index = len(self._tables)
        info = TableInfo(table_id, index, format,
                         list(columns) if columns is not None else None,
                         list(types) if types is not None else None,
                         None, time.time(), dict(extra or {}),
                         chunk_size=self.chunk_size)
        try:
            # encoded once for the header and the manifest, and kept as text only
            encoded = (definition if isinstance(definition, mf.EncodedJSON)
                       else mf.encode_value(definition))
            header = {"archive_format": mf.FORMAT_NAME, "format_version": mf.FORMAT_VERSION,
                      "kind": "table-header", "table_id": table_id, "index": index,
                      "format": format, "columns": info.columns, "types": info.types,
                      "definition": encoded, "dump_time": info.dump_time,
                      "extra": info.extra, "chunk_size": self.chunk_size}
            data = mf.dump_json(header)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"table {table_id!r}: definition/extra not JSON-serialisable: "
                             f"{exc}") from None
        # two levels below the limit: the manifest holds these fields two levels deeper
        self._check_meta(f"table {table_id!r}: {mf.header_member(index)}", header,
                         MAX_SMALL_META_SIZE, MAX_JSON_DEPTH - 2, data)
        try:
            info.header = self._write_member(mf.header_member(index), data, info.dump_time)
        except BaseException:
            self.abort()
            raise
        info.header.sha256 = hashlib.sha256(data).hexdigest()
        tw = TableWriter(self, info, self.chunk_size)
        tw._definition = encoded
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
                    self._close_raw()

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
                    self._close_raw()
                except Exception:
                    pass

    def _close_raw(self) -> None:
        # an upload we opened (open_dump on a URL) is aborted, never completed, when
        # the archive failed: no object appears under the name (.remote)
        discard = getattr(self._raw, "discard", None)
        if self._failed and discard is not None:
            discard()
        else:
            self._raw.close()

    # ---- internals
    @staticmethod
    def _check_meta(what: str, doc: Dict[str, Any], limit: int, depth: int,
                    data: Optional[bytes] = None) -> None:
        """ValueError unless ``doc`` serialises within what readers accept."""
        try:
            data = mf.dump_json(doc) if data is None else data
        except ValueError as exc:
            raise ValueError(f"{what}: {exc}") from None
        if mf.json_depth(data, depth) > depth:
            raise ValueError(f"{what}: JSON nested more than {depth} levels deep (readers "
                             "accept no more there)")
        if len(data) > limit:
            raise ValueError(f"{what}: {len(data)} bytes of JSON, more than the {limit} "
                             "bytes readers accept (definition or extra too large?)")

    def _check_within(self, name: str, size: int, limit: int) -> None:
        # cannot happen with the limits of .limits (they are sized for what this
        # writer writes); checked so that it never writes what its reader refuses
        if size > limit:
            self.abort()
            raise ArchiveError(f"{name} would be {size} bytes, more than the "
                               f"{limit} bytes readers accept")

    def _check_usable(self) -> None:
        if self._failed:
            raise ArchiveError("the archive writer was aborted")
        if self.closed:
            raise ArchiveError("the archive writer is closed")

    def _info_doc(self, kind: str) -> Dict[str, Any]:
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
        while this one goes on receiving the next chunk (all three release the GIL).
        A small one (a small table's only chunk) is written here: handing it over
        would cost more than writing it."""
        if len(piece) < INLINE_CHUNK:
            self._wait_chunks()
            self._put_chunk(member, piece, mtime)
            return
        if self._chunks is None:
            self._chunks = (_ChunkPool(self, self._workers) if self._workers > 1
                            else _ChunkThread(self))
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
        """``data``: bytes-like, or a list of them (a manifest, never joined)."""
        parts = data if isinstance(data, list) else [data]
        size = sum(len(p) for p in parts)
        offset = self._out.count
        self._write_frame([member_header(name, size, mtime), *parts,
                           bytes(pad(size)) + tail])
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
        self._check_within(mf.footer_member(info.index), len(data),
                           footer_limit(len(tw.members)))
        info.footer = self._write_member(mf.footer_member(info.index), data, time.time())
        info.footer.sha256 = hashlib.sha256(data).hexdigest()
        info.compressed_size = (info.header.compressed_size + info.footer.compressed_size
                                + sum(m.compressed_size or 0 for m in info.members))
        info.complete = True
        # the manifest entry, final now: encoded once and kept as bytes, which the
        # manifest is written from without copying (thousands of tables)
        tw._entry = mf.dump_json(dict(info.to_json(), definition=tw._definition))[:-1]
        tw._definition = None
        self._current = None

    def _manifest_parts(self) -> List[bytes]:
        """``manifest.json`` in pieces: the archive fields before ``tables``, each
        table's entry (encoded when the table was finished) on a line of its own, the
        fields after it.  Never joined: at 10,000 tables the document is tens of
        megabytes, and the entries are already held."""
        doc = self._info_doc("manifest")
        head = mf.dump_json({k: v for k, v in doc.items() if k < "tables"})[:-2]  # "}\n"
        after = {k: v for k, v in doc.items() if k > "tables"}
        tail = b"," + mf.dump_json(after)[1:] if after else b"}\n"
        if not self._tables:
            return [head, b',"tables":[]', tail]
        parts = [head, b',"tables":[\n']
        for tw in self._tables:
            parts += [tw._entry, b",\n"]
        parts[-1] = b"\n]"
        parts.append(tail)
        return parts

    def _manifest(self) -> bytes:
        """``manifest.json`` as one document (what :meth:`_manifest_parts` writes)."""
        return b"".join(self._manifest_parts())

    def _write_trailer(self) -> None:
        self._start()
        manifest = self._manifest_parts()
        manifest_size = sum(len(p) for p in manifest)
        manifest_sha = hashlib.sha256()
        for part in manifest:
            manifest_sha.update(part)
        index = mf.format_index((m.name, tw.table_id)
                                for tw in self._tables for m in tw.members)
        meta = sum(tw.info.header.size + tw.info.footer.size for tw in self._tables)
        self._check_within(mf.MANIFEST_MEMBER, manifest_size,
                           manifest_limit(DEFAULT_MAX_META_SIZE, len(self._tables), meta))
        self._check_within(mf.INDEX_MEMBER, len(index), index_limit(
            DEFAULT_MAX_META_SIZE, sum(index_entry_bytes(m.name, tw.table_id)
                                       for tw in self._tables for m in tw.members)))
        now = time.time()
        manifest_member = self._write_member(mf.MANIFEST_MEMBER, manifest, now)
        del manifest
        self._write_member(mf.INDEX_MEMBER, index, now)
        end = {"archive_format": mf.FORMAT_NAME, "format_version": mf.FORMAT_VERSION,
               "kind": "end", "tables": len(self._tables),
               "members": 3 + sum(2 + len(tw.members) for tw in self._tables),
               "manifest_sha256": manifest_sha.hexdigest(),
               "index_sha256": hashlib.sha256(index).hexdigest(),
               "manifest_offset": manifest_member.offset}
        self._write_member(mf.END_MEMBER, mf.dump_json(end), now, tail=END_OF_ARCHIVE)
        self._finish_stream(manifest_member.offset)


__all__ = ["DumpWriter", "TableWriter"]
